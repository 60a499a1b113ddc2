"""mrsynth.experiments"""
