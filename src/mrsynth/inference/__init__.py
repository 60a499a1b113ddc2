"""Inference: synthesise a target contrast from files or slice stacks with a trained checkpoint."""

from mrsynth.inference.synthesizer import SynthesisResult, Synthesizer

__all__ = ["SynthesisResult", "Synthesizer"]
