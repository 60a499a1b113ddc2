"""Voxel-wise linear regression: the floor every method must beat.

The target intensity is modelled as a least-squares linear combination of the inputs' intensities
at the same voxel plus an intercept, in mean-normalised units, fitted on the brain voxels (target
or any input non-zero) of the training slices whose inputs are all present.
"""

from __future__ import annotations

import numpy as np

from mrsynth.baselines.base import (
    brain_mask,
    check_stack,
    complete_rows,
    finish_prediction,
    load_stack,
    require_fitted,
)
from mrsynth.data.slices import SliceSet


class LinearBaseline:
    """``target ≈ coef[:-1] · inputs + coef[-1]`` per voxel; the floor every method must beat."""

    name = "linear"

    def __init__(self, chunk_slices: int = 64) -> None:
        self.inputs: tuple[str, ...] = ()
        self.coef: np.ndarray | None = None  # (C + 1,): one weight per input, then the intercept
        self.chunk_slices = chunk_slices

    def fit(self, train: SliceSet, inputs: tuple[str, ...]) -> "LinearBaseline":
        """Least squares over the brain voxels of the slices with all ``inputs`` present.

        The normal equations are accumulated a chunk of slices at a time (float64), so memory
        stays small however large the slice set.
        """
        inputs = tuple(inputs)
        rows = complete_rows(train, inputs)
        k = len(inputs) + 1
        gram, moment, count = np.zeros((k, k)), np.zeros(k), 0
        for start in range(0, rows.size, self.chunk_slices):
            stack, target = load_stack(train, rows[start : start + self.chunk_slices], inputs)
            mask = brain_mask(stack, target)
            design = np.concatenate([stack.transpose(1, 0, 2, 3)[:, mask].T, np.ones((int(mask.sum()), 1))], axis=1)
            design = design.astype(np.float64)
            gram += design.T @ design
            moment += design.T @ target[mask].astype(np.float64)
            count += int(mask.sum())
        if count == 0:
            raise ValueError("the training slices hold no brain voxels to learn from")
        self.coef = np.linalg.lstsq(gram, moment, rcond=None)[0]
        self.inputs = inputs
        return self

    def predict_volume(self, stack: np.ndarray) -> np.ndarray:
        """Apply the linear map to every foreground voxel of an ``(S, C, H, W)`` stack."""
        inputs = require_fitted(self.inputs, self.name)
        assert self.coef is not None
        stack = check_stack(stack, len(inputs))
        pred = np.tensordot(self.coef[:-1], stack.astype(np.float64), axes=(0, 1)) + self.coef[-1]
        return finish_prediction(pred, stack)
