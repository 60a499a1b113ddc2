"""mrsynth.model"""
