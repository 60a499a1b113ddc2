"""The paper's cost: MAE of the fused output + mean voxel-wise latent variance + sum of individual MAEs."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mrsynth.model.config import LossWeights
from mrsynth.model.network import SynthesisOutput


@dataclass
class LossTerms:
    """The total cost and its terms (unweighted), each a scalar tensor."""

    total: torch.Tensor
    fused_mae: torch.Tensor
    latent_variance: torch.Tensor
    individual_mae: torch.Tensor
    fused_mse: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        return {name: float(getattr(self, name).detach())
                for name in ("total", "fused_mae", "latent_variance", "individual_mae", "fused_mse")}


def mean_voxelwise_variance(latents: torch.Tensor, pair_batch: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Variance across each sample's present latents at every voxel and channel, averaged.

    Population variance (divide by the number of present contrasts); a sample with a single
    contrast contributes zero. The result is the mean over voxels, channels and samples.
    """
    latents = latents.float()
    counts = torch.bincount(pair_batch, minlength=batch_size).clamp(min=1).float()
    shape = (-1, *([1] * (latents.dim() - 1)))
    mean = latents.new_zeros((batch_size, *latents.shape[1:])).index_add(0, pair_batch, latents) / counts.view(shape)
    squared = (latents - mean[pair_batch]) ** 2
    variance = latents.new_zeros((batch_size, *latents.shape[1:])).index_add(0, pair_batch, squared) / counts.view(shape)
    return variance.mean()


def synthesis_loss(output: SynthesisOutput, target: torch.Tensor, weights: LossWeights = LossWeights()) -> LossTerms:
    """Compute the paper's cost for one batch; ``target`` is ``(B, 1, H, W)`` or ``(B, H, W)``."""
    if target.dim() == 3:
        target = target.unsqueeze(1)
    target = target.float()
    batch_size = target.shape[0]
    error = output.image.float() - target
    fused_mae, fused_mse = error.abs().mean(), error.square().mean()
    variance = mean_voxelwise_variance(output.aligned_latents, output.pair_batch, batch_size)
    if output.individual_images is None:
        raise ValueError("the cost needs the individually decoded latents: run the model with decode_individual=True")
    per_pair = (output.individual_images.float() - target[output.pair_batch]).abs().flatten(1).mean(dim=1)
    individual_mae = per_pair.sum() / batch_size
    total = (weights.fused_mae * fused_mae + weights.latent_variance * variance + weights.individual_mae * individual_mae
             + weights.fused_mse * fused_mse)
    return LossTerms(total=total, fused_mae=fused_mae, latent_variance=variance, individual_mae=individual_mae,
                     fused_mse=fused_mse)
