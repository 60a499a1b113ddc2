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


TOY_AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
TOY_MAPS = {"t1": lambda a: 0.2 + a, "t2": lambda a: 1.4 - a, "dwi": lambda a: 0.5 + np.sin(3 * a),
            "flair": lambda a: 0.3 + a**2}


def write_toy_nifti_dataset(root, subjects: int = 3, contrasts: tuple[str, ...] = ("t1", "t2", "flair"),
                            seed: int = 0):
    """A manifest dataset of 20x20x8 NIfTI volumes: smooth monotone maps of one random anatomy per subject."""
    import csv
    from pathlib import Path

    import nibabel as nib

    root = Path(root)
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(subjects):
        anatomy = gaussian_filter(rng.random((20, 20, 8)), 2)
        anatomy = (anatomy - anatomy.min()) / np.ptp(anatomy)
        brain = np.zeros_like(anatomy, bool)
        brain[3:-3, 3:-3, 1:-1] = True
        for contrast in contrasts:
            path = root / f"sub{s}" / f"sub{s}_{contrast}.nii.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            image = (TOY_MAPS[contrast](anatomy) * brain * 100).astype(np.float32)
            nib.save(nib.Nifti1Image(image, TOY_AFFINE), str(path))
            rows.append({"subject": f"sub{s}", "contrast": contrast, "path": str(path.relative_to(root))})
    with (root / "manifest.csv").open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["subject", "contrast", "path"])
        writer.writeheader()
        writer.writerows(rows)
    return root / "manifest.csv"
