"""The paper's network: per-contrast encoders, spatial transformer, fusion, decoder and cost."""

from mrsynth.model.config import LossWeights, ModelConfig
from mrsynth.model.loss import TERM_NAMES, LossTerms, cross_synthesis_mae, mean_voxelwise_variance, synthesis_loss
from mrsynth.model.network import PARTS, MultiInputSynthesisNet, SynthesisOutput

__all__ = [
    "PARTS",
    "TERM_NAMES",
    "LossTerms",
    "LossWeights",
    "ModelConfig",
    "MultiInputSynthesisNet",
    "SynthesisOutput",
    "cross_synthesis_mae",
    "mean_voxelwise_variance",
    "synthesis_loss",
]
