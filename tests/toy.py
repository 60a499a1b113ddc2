"""A small synthetic slice set with a known relation between inputs and target, for fast tests."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from mrsynth.data.slices import SliceSet


def toy_slices(subjects: int = 4, slices: int = 6, size: int = 16, contrasts: tuple[str, ...] = ("t1", "t2", "dwi"),
               seed: int = 0, missing: dict[int, int] | None = None) -> SliceSet:
    """Smooth random "anatomy" per subject; each input is a different monotone map of it, the
    target another. ``missing`` maps subject index -> input column that subject lacks."""
    rng = np.random.default_rng(seed)
    n = subjects * slices
    anatomy = gaussian_filter(rng.random((subjects, slices, size, size)), sigma=(0, 1, 2, 2))
    anatomy = (anatomy - anatomy.min()) / (anatomy.max() - anatomy.min())
    brain = np.zeros((size, size), bool)
    brain[2:-2, 2:-2] = True
    maps = [lambda a: 0.3 + a, lambda a: 1.5 - a, lambda a: 0.5 + a**2, lambda a: 1.0 + 0.5 * np.sin(3 * a)]
    inputs = np.stack([maps[c % len(maps)](anatomy) for c in range(len(contrasts))], axis=2) * brain
    target = (0.2 + 2 * (anatomy - 0.5) ** 2 + anatomy) * brain
    present = np.ones((subjects, slices, len(contrasts)), bool)
    for subject, column in (missing or {}).items():
        present[subject, :, column] = False
        inputs[subject, :, column] = 0
    return SliceSet(
        inputs=inputs.reshape(n, len(contrasts), size, size).astype(np.float32),
        present=present.reshape(n, len(contrasts)),
        target=target.reshape(n, size, size).astype(np.float32),
        subject=np.repeat(np.arange(subjects), slices),
        slice_index=np.tile(np.arange(slices), subjects),
        subjects=tuple(f"sub{i}" for i in range(subjects)),
        contrasts=contrasts,
    )
