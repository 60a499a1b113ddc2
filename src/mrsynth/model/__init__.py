"""The paper's network: per-contrast encoders, spatial transformer, fusion, decoder and cost."""

from mrsynth.model.config import LossWeights, ModelConfig
from mrsynth.model.loss import LossTerms, mean_voxelwise_variance, synthesis_loss
from mrsynth.model.network import MultiInputSynthesisNet, SynthesisOutput

__all__ = [
    "LossTerms",
    "LossWeights",
    "ModelConfig",
    "MultiInputSynthesisNet",
    "SynthesisOutput",
    "mean_voxelwise_variance",
    "synthesis_loss",
]
