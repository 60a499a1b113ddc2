"""mrsynth.io"""
