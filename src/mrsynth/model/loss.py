"""The paper's cost: MAE of the fused output + mean voxel-wise latent variance + sum of individual MAEs.

Four optional terms go beyond the paper: the fused output's MSE, the MSE of each latent decoded
on its own (summed like the individual MAEs), the MAE + MSE of the output fused from each proper
subset of the present inputs (summed likewise), and the MAE of a cross-synthesis
model's input decoders (every present input contrast synthesised from the fused latent and from
each latent alone, in the manner of Chartsias et al., IEEE TMI 2018).
"""

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
    cross_mae: torch.Tensor
    individual_mse: torch.Tensor
    subset_fusion: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        return {name: float(getattr(self, name).detach()) for name in TERM_NAMES}


TERM_NAMES = ("total", "fused_mae", "latent_variance", "individual_mae", "fused_mse", "cross_mae", "individual_mse",
              "subset_fusion")


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


def cross_synthesis_mae(output: SynthesisOutput, inputs: torch.Tensor, available: torch.Tensor | None = None) -> torch.Tensor:
    """MAE of the input decoders' outputs against the input slices each sample has.

    ``inputs`` is the batch's ``(B, C, H, W)`` (or ``(B, C, K, H, W)``: the centre slice is the
    target). Every row of ``output.input_images`` (the fused latent, then each aligned latent) is
    compared with each input contrast its sample has: ``available`` ``(B, C)``, or, where it is
    None, the contrasts that were encoded. The sum of these per-image MAEs is divided by ``B * C``,
    so each input decoder's term is scaled like the paper's sum of individual MAEs (divided by ``B``).
    """
    if output.input_images is None:
        raise ValueError("cross-synthesis needs a model built with ModelConfig(cross_synthesis=True), "
                         "run with decode_individual=True")
    if inputs.dim() == 5:
        inputs = inputs[:, :, inputs.shape[2] // 2]
    batch_size, n_contrasts = inputs.shape[:2]
    if available is None:
        present = torch.zeros(batch_size, n_contrasts, dtype=torch.bool, device=inputs.device)
        present[output.pair_batch, output.pair_contrast] = True
    else:
        present = available.to(device=inputs.device, dtype=torch.bool)
    sample = torch.cat([torch.arange(batch_size, device=inputs.device), output.pair_batch])  # sample of each decoded row
    wanted = inputs.float()[sample].transpose(0, 1)  # (C, B + P, H, W)
    per_image = (output.input_images.float()[:, :, 0] - wanted).abs().flatten(2).mean(dim=2)  # (C, B + P)
    return (per_image * present[sample].T).sum() / (batch_size * n_contrasts)


def synthesis_loss(output: SynthesisOutput, target: torch.Tensor, weights: LossWeights = LossWeights(),
                   inputs: torch.Tensor | None = None, available: torch.Tensor | None = None) -> LossTerms:
    """Compute the paper's cost for one batch; ``target`` is ``(B, 1, H, W)`` or ``(B, H, W)``.

    ``inputs`` (the slices the input decoders are to synthesise, e.g. before intensity
    augmentation) is needed when the model has input decoders; ``available`` marks which of them
    each sample has, where input dropout hid some (:func:`cross_synthesis_mae`).
    """
    if target.dim() == 3:
        target = target.unsqueeze(1)
    target = target.float()
    batch_size = target.shape[0]
    error = output.image.float() - target
    fused_mae, fused_mse = error.abs().mean(), error.square().mean()
    variance = mean_voxelwise_variance(output.aligned_latents, output.pair_batch, batch_size)
    if output.individual_images is None:
        raise ValueError("the cost needs the individually decoded latents: run the model with decode_individual=True")
    individual_error = (output.individual_images.float() - target[output.pair_batch]).flatten(1)
    individual_mae = individual_error.abs().mean(dim=1).sum() / batch_size
    individual_mse = individual_error.square().mean(dim=1).sum() / batch_size
    total = (weights.fused_mae * fused_mae + weights.latent_variance * variance + weights.individual_mae * individual_mae
             + weights.fused_mse * fused_mse + weights.individual_mse * individual_mse)
    subsets = total.new_zeros(())
    if output.subset_images is not None and output.subset_batch is not None:
        subset_error = (output.subset_images.float() - target[output.subset_batch]).flatten(1)
        subsets = (subset_error.abs().mean(dim=1) + subset_error.square().mean(dim=1)).sum() / batch_size
        total = total + weights.subset_fusion * subsets
    elif weights.subset_fusion > 0:
        raise ValueError("a subset-fusion weight needs the subsets decoded: run the model with decode_subsets=True")
    cross = total.new_zeros(())
    if output.input_images is not None:  # added even at weight 0, so that every parameter takes part in the loss
        if inputs is None:
            raise ValueError("this model synthesises its inputs too: pass the input slices to synthesis_loss(inputs=...)")
        cross = cross_synthesis_mae(output, inputs, available)
        total = total + weights.cross_synthesis * cross
    elif weights.cross_synthesis > 0:
        raise ValueError("a cross-synthesis weight needs a model with input decoders (ModelConfig(cross_synthesis=True))")
    return LossTerms(total=total, fused_mae=fused_mae, latent_variance=variance, individual_mae=individual_mae,
                     fused_mse=fused_mse, cross_mae=cross, individual_mse=individual_mse, subset_fusion=subsets)
