"""The protocol every baseline follows, and the slice-set helpers they share.

A baseline is fitted for one input subset: ``fit(train, inputs)`` learns from the training slices
whose ``inputs`` are all present, and ``predict_volume(stack)`` maps a subject's ``(S, C, H, W)``
stack, whose channels are the baseline's ``inputs`` in order, to an ``(S, H, W)`` prediction that
is non-negative and 0 wherever every input is 0 (the background).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import numpy as np

from mrsynth.data.slices import SliceSet
from mrsynth.errors import DataError


@runtime_checkable
class Baseline(Protocol):
    """A comparison method trained for one input subset (paper Sec. 5.1 / Table 2 (A))."""

    name: str
    inputs: tuple[str, ...]

    def fit(self, train: SliceSet, inputs: tuple[str, ...]) -> "Baseline":
        """Learn from the slices of ``train`` whose ``inputs`` are all present; returns self."""
        ...

    def predict_volume(self, stack: np.ndarray) -> np.ndarray:
        """Map an ``(S, len(inputs), H, W)`` stack to an ``(S, H, W)`` prediction."""
        ...


def input_columns(train: SliceSet, inputs: tuple[str, ...]) -> list[int]:
    """Channel indices of ``inputs`` in ``train``; raises DataError for an unknown or repeated name."""
    if not inputs:
        raise DataError("a baseline needs at least one input contrast")
    if len(set(inputs)) != len(inputs):
        raise DataError(f"input contrasts repeat: {', '.join(inputs)}")
    missing = [name for name in inputs if name not in train.contrasts]
    if missing:
        raise DataError(f"input contrast(s) {', '.join(missing)} not in the slice set ({', '.join(train.contrasts)})")
    return [train.contrasts.index(name) for name in inputs]


def complete_rows(train: SliceSet, inputs: tuple[str, ...]) -> np.ndarray:
    """Indices of the slices whose ``inputs`` are all present; DataError when there are none."""
    cols = input_columns(train, inputs)
    rows = np.flatnonzero(np.asarray(train.present)[:, cols].all(axis=1))
    if rows.size == 0:
        raise DataError(f"no training slice has all of {', '.join(inputs)} present")
    return rows


def subject_runs(train: SliceSet, inputs: tuple[str, ...]) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(subject, rows)`` for each run of consecutive slices with all ``inputs`` present.

    Rows are ordered by ``slice_index``; a gap in the slice indices (a slice where an input is
    missing) starts a new run, so 3D neighbourhoods never join slices that are not adjacent.
    """
    rows = complete_rows(train, inputs)
    subjects = np.asarray(train.subject)[rows]
    positions = np.asarray(train.slice_index)[rows]
    for subject in np.unique(subjects):
        own = subjects == subject
        order = np.argsort(positions[own], kind="stable")
        mine, pos = rows[own][order], positions[own][order]
        breaks = np.flatnonzero(np.diff(pos) != 1) + 1
        for run in np.split(mine, breaks):
            yield int(subject), run


def load_stack(train: SliceSet, rows: np.ndarray, inputs: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The ``(S, C, H, W)`` float32 input stack of ``inputs`` and the ``(S, H, W)`` target at ``rows``."""
    cols = input_columns(train, inputs)
    rows = np.asarray(rows)
    stack = np.asarray(train.inputs[rows], dtype=np.float32)[:, cols]
    target = np.asarray(train.target[rows], dtype=np.float32)
    return np.ascontiguousarray(stack), target


def check_stack(stack: np.ndarray, n_inputs: int) -> np.ndarray:
    """Validate an ``(S, n_inputs, H, W)`` stack and return it as float32."""
    stack = np.asarray(stack, dtype=np.float32)
    if stack.ndim != 4 or stack.shape[1] != n_inputs:
        raise ValueError(f"expected a stack of shape (S, {n_inputs}, H, W), got {stack.shape}")
    return stack


def foreground(stack: np.ndarray) -> np.ndarray:
    """``(S, H, W)`` bool: voxels where any input is non-zero (the rest is background)."""
    return np.any(stack != 0, axis=1)


def brain_mask(stack: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``(S, H, W)`` bool: the training voxels, where the target or any input is non-zero."""
    return (np.asarray(target) > 0) | foreground(stack)


def finish_prediction(pred: np.ndarray, stack: np.ndarray) -> np.ndarray:
    """Clip to non-negative values and zero the background; float32 ``(S, H, W)``."""
    out = np.clip(np.asarray(pred, dtype=np.float32), 0.0, None)
    out[~foreground(stack)] = 0.0
    return out


def require_fitted(inputs: tuple[str, ...], name: str) -> tuple[str, ...]:
    """The fitted inputs (empty before ``fit``), or RuntimeError when ``fit`` has not run yet."""
    if not inputs:
        raise RuntimeError(f"the {name} baseline must be fitted before it can predict")
    return inputs
