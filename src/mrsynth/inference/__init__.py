"""mrsynth.inference"""
