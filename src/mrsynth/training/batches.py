"""Batches read from a SliceSet with vectorised indexing: no per-slice Python in the hot loop."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from mrsynth.data.slices import SliceSet


@dataclass
class Batch:
    images: torch.Tensor  # (B, C, H, W) or (B, C, K, H, W)
    present: torch.Tensor  # (B, C) bool
    target: torch.Tensor  # (B, 1, H, W)


def context_rows(slices: SliceSet, context: int) -> np.ndarray:
    """For every row, the rows of its ``2*context+1`` neighbouring slices in the same subject.

    Neighbours beyond a subject's first or last slice repeat the edge slice.
    """
    n = len(slices)
    offsets = np.arange(-context, context + 1)
    rows = np.arange(n)[:, None] + offsets[None, :]
    rows = np.clip(rows, 0, n - 1)
    same = (slices.subject[rows] == slices.subject[:, None]) & (
        slices.slice_index[rows] == slices.slice_index[:, None] + offsets[None, :]
    )
    return np.where(same, rows, np.arange(n)[:, None]) if context else rows


def drop_inputs(present: np.ndarray, probability: float, rng: np.random.Generator) -> np.ndarray:
    """Hide each present input with ``probability``, always keeping at least one per sample."""
    if probability <= 0:
        return present
    keep = present & (rng.random(present.shape) >= probability)
    empty = ~keep.any(axis=1)
    if empty.any():
        # give each emptied sample back one of its present contrasts, chosen at random
        scores = rng.random(present.shape) * present
        keep[empty, scores[empty].argmax(axis=1)] = True
    return keep


def read_batch(slices: SliceSet, rows: np.ndarray, device: torch.device, neighbours: np.ndarray | None = None,
               present: np.ndarray | None = None) -> Batch:
    """Gather ``rows`` (sorted for memory-mapped reads) into tensors on ``device``."""
    if neighbours is not None and neighbours.shape[1] > 1:
        images = np.asarray(slices.inputs[neighbours[rows].ravel()])
        images = images.reshape(len(rows), neighbours.shape[1], *images.shape[1:]).swapaxes(1, 2)
    else:
        images = np.asarray(slices.inputs[rows])
    present = np.asarray(slices.present[rows]) if present is None else present
    target = np.asarray(slices.target[rows])[:, None]
    pin = device.type == "cuda"

    def move(array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        return (tensor.pin_memory() if pin else tensor).to(device, non_blocking=pin)

    return Batch(images=move(images.astype(np.float32, copy=False)), present=move(present.astype(bool)),
                 target=move(target.astype(np.float32, copy=False)))


def iterate_batches(slices: SliceSet, rows: np.ndarray, batch_size: int, device: torch.device,
                    rng: np.random.Generator | None = None, input_dropout: float = 0.0,
                    neighbours: np.ndarray | None = None, max_batches: int | None = None) -> Iterator[Batch]:
    """Yield batches over ``rows``; shuffled when ``rng`` is given, in order otherwise."""
    order = rng.permutation(rows) if rng is not None else np.asarray(rows)
    for i, start in enumerate(range(0, len(order), batch_size)):
        if max_batches is not None and i >= max_batches:
            break
        chunk = np.sort(order[start : start + batch_size])
        present = np.asarray(slices.present[chunk])
        if rng is not None:
            present = drop_inputs(present, input_dropout, rng)
        yield read_batch(slices, chunk, device, neighbours, present)
