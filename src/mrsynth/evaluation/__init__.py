"""mrsynth.evaluation"""
