"""Splits of subjects (never of slices): validation hold-out and k-fold cross-validation."""

from __future__ import annotations

import numpy as np


def split_subjects(subjects: tuple[str, ...] | list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Hold out about ``val_fraction`` of the subjects for validation (at least one train subject).

    With fewer than two subjects or ``val_fraction == 0`` the validation list is empty.
    """
    names = sorted(subjects)
    if len(names) < 2 or val_fraction <= 0:
        return names, []
    n_val = min(len(names) - 1, max(1, round(val_fraction * len(names))))
    order = np.random.default_rng(seed).permutation(len(names))
    val = sorted(names[i] for i in order[:n_val])
    return [n for n in names if n not in val], val


def kfold_subjects(subjects: list[str] | tuple[str, ...], folds: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """Return ``folds`` (train, test) pairs that partition the subjects; ``folds >= n`` is leave-one-out."""
    names = sorted(subjects)
    if len(names) < 2:
        raise ValueError(f"cross-validation needs at least 2 subjects, got {len(names)}")
    folds = min(folds, len(names))
    if folds < 2:
        raise ValueError("cross-validation needs at least 2 folds")
    order = np.random.default_rng(seed).permutation(len(names))
    groups = np.array_split(order, folds)
    result = []
    for group in groups:
        test = sorted(names[i] for i in group)
        result.append(([n for n in names if n not in test], test))
    return result
