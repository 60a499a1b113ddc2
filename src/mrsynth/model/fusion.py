"""Fusion of the aligned latents of the contrasts that are present, sample by sample."""

from __future__ import annotations

from itertools import combinations

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


def fuse_subsets(kind: FusionKind, latents: torch.Tensor, pair_batch: torch.Tensor, pair_contrast: torch.Tensor,
                 batch_size: int, n_contrasts: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each sample's latents fused over every proper subset of two or more of its present contrasts.

    Returns the fused latents ``(Q, L, H, W)``, the sample each belongs to ``(Q,)`` and the
    contrasts each fuses ``(Q, n_contrasts)`` (bool); a sample with three contrasts gives its three
    pairs, one with two or fewer gives nothing (its full fusion and its single latents are the
    model's other outputs).
    """
    present = torch.zeros(batch_size, n_contrasts, dtype=torch.bool, device=latents.device)
    present[pair_batch, pair_contrast] = True
    dense = scatter_to_dense(latents, pair_batch, pair_contrast, batch_size, n_contrasts,
                             float("-inf") if kind == "max" else 0.0)
    counts = present.sum(dim=1)
    fused, owners, members = [], [], []
    for size in range(2, n_contrasts):
        for subset in combinations(range(n_contrasts), size):
            columns = list(subset)
            rows = (present[:, columns].all(dim=1) & (counts > size)).nonzero(as_tuple=True)[0]
            if rows.numel() == 0:
                continue
            chosen = dense[rows][:, columns]
            fused.append(chosen.amax(dim=1) if kind == "max" else chosen.mean(dim=1))
            owners.append(rows)
            member = torch.zeros(len(rows), n_contrasts, dtype=torch.bool, device=latents.device)
            member[:, columns] = True
            members.append(member)
    if not fused:
        return (latents.new_zeros((0, *latents.shape[1:])), pair_batch.new_zeros(0),
                torch.zeros(0, n_contrasts, dtype=torch.bool, device=latents.device))
    return torch.cat(fused), torch.cat(owners), torch.cat(members)
