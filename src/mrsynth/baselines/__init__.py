"""mrsynth.baselines"""
