"""mrsynth.data"""
