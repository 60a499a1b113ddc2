"""mrsynth.training"""
