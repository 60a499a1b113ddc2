"""Fusion of the aligned latents of the contrasts that are present, sample by sample."""

from __future__ import annotations

import torch

from mrsynth.model.config import FusionKind


def scatter_to_dense(latents: torch.Tensor, pair_batch: torch.Tensor, pair_contrast: torch.Tensor,
                     batch_size: int, n_contrasts: int, fill: float) -> torch.Tensor:
    """Place per-(sample, contrast) latents ``(P, L, H, W)`` in a ``(B, C, L, H, W)`` tensor."""
    dense = latents.new_full((batch_size, n_contrasts, *latents.shape[1:]), fill)
    return dense.index_put((pair_batch, pair_contrast), latents)


def fuse_max(latents: torch.Tensor, pair_batch: torch.Tensor, pair_contrast: torch.Tensor,
             batch_size: int, n_contrasts: int) -> torch.Tensor:
    """Voxel-wise max over each sample's present latents; absent contrasts never take part."""
    dense = scatter_to_dense(latents, pair_batch, pair_contrast, batch_size, n_contrasts, float("-inf"))
    return dense.amax(dim=1)


def fuse_mean(latents: torch.Tensor, pair_batch: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Voxel-wise mean over each sample's present latents."""
    total = latents.new_zeros((batch_size, *latents.shape[1:])).index_add(0, pair_batch, latents)
    counts = torch.bincount(pair_batch, minlength=batch_size).clamp(min=1).to(latents.dtype)
    return total / counts.view(-1, *([1] * (latents.dim() - 1)))


def fuse(kind: FusionKind, latents: torch.Tensor, pair_batch: torch.Tensor, pair_contrast: torch.Tensor,
         batch_size: int, n_contrasts: int) -> torch.Tensor:
    """Fuse with the configured operation (``"max"``, the paper's, or ``"mean"``)."""
    if kind == "max":
        return fuse_max(latents, pair_batch, pair_contrast, batch_size, n_contrasts)
    return fuse_mean(latents, pair_batch, batch_size)
