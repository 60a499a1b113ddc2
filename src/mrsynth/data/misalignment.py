"""Random rigid misalignment of volumes, for the paper's robustness experiment (Sec. 5.3).

Each perturbed volume is rotated about all three axes by angles drawn uniformly from
``[-max_angle, max_angle]`` degrees and shifted along each axis by ``U[-max_shift, max_shift]``
voxels (not necessarily whole), about the centre of its grid, in 3D and before any slicing.
Rotations act in millimetres (voxel sizes are honoured), so anisotropic grids are not sheared.
:func:`write_misaligned_dataset` writes a perturbed copy of a dataset (NIfTI + manifest) that
the ordinary pipeline loads like any other dataset.
"""

from __future__ import annotations

import csv
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import affine_transform
from scipy.spatial.transform import Rotation

from mrsynth.errors import DataError
from mrsynth.io.layouts import discover_dataset
from mrsynth.io.volumes import load_volume, save_volume

MANIFEST_NAME = "manifest.csv"
RECORD_NAME = "misalignment.json"


@dataclass(frozen=True)
class RigidPerturbation:
    """Rotation angles about the x, y and z voxel axes (degrees) and a shift per axis (voxels)."""

    angles_deg: tuple[float, float, float]
    shift_voxels: tuple[float, float, float]

    def to_dict(self) -> dict[str, list[float]]:
        """Plain-JSON form."""
        return {"angles_deg": list(self.angles_deg), "shift_voxels": list(self.shift_voxels)}


def subject_rng(seed: int, subject: str) -> np.random.Generator:
    """A generator seeded by ``seed`` and the subject's name (stable across runs and machines)."""
    return np.random.default_rng([int(seed), zlib.crc32(subject.encode("utf-8"))])


def sample_perturbation(rng: np.random.Generator, max_angle: float = 8.0, max_shift: float = 2.0) -> RigidPerturbation:
    """Draw angles from ``U[-max_angle, max_angle]`` degrees and shifts from ``U[-max_shift, max_shift]`` voxels."""
    if max_angle < 0 or max_shift < 0:
        raise ValueError("max_angle and max_shift must be non-negative")
    angles = rng.uniform(-max_angle, max_angle, size=3)
    shift = rng.uniform(-max_shift, max_shift, size=3)
    return RigidPerturbation(tuple(float(a) for a in angles), tuple(float(s) for s in shift))  # type: ignore[arg-type]


def perturbation_transform(perturbation: RigidPerturbation, shape: tuple[int, ...],
                           voxel_size: tuple[float, ...] = (1.0, 1.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """``(matrix, offset)`` for ``scipy.ndimage.affine_transform`` (output voxel -> input voxel).

    The forward map is ``x' = A (x - c) + c + t`` with ``c`` the grid centre, ``t`` the shift and
    ``A = S^-1 R S`` the rotation expressed in voxels (``S`` = diag(voxel sizes)).
    """
    scale = np.diag(np.asarray(voxel_size, dtype=np.float64))
    rotation = Rotation.from_euler("xyz", perturbation.angles_deg, degrees=True).as_matrix()
    forward = np.linalg.inv(scale) @ rotation @ scale
    inverse = np.linalg.inv(forward)
    centre = (np.asarray(shape[:3], dtype=np.float64) - 1.0) / 2.0
    shift = np.asarray(perturbation.shift_voxels, dtype=np.float64)
    offset = centre - inverse @ (centre + shift)
    return inverse, offset


def misalign_volume(data: np.ndarray, perturbation: RigidPerturbation,
                    voxel_size: tuple[float, ...] = (1.0, 1.0, 1.0), order: int = 1) -> np.ndarray:
    """Rotate and shift a 3D volume about its centre (linear interpolation, zeros outside); float32, same shape."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim != 3:
        raise ValueError(f"misalign_volume expects a 3D volume, got shape {data.shape}")
    matrix, offset = perturbation_transform(perturbation, data.shape, voxel_size)
    return affine_transform(data, matrix, offset=offset, output_shape=data.shape, order=order,
                            mode="constant", cval=0.0).astype(np.float32, copy=False)


def misalign_subject_volume(data: np.ndarray, subject: str, seed: int, max_angle: float = 8.0, max_shift: float = 2.0,
                            voxel_size: tuple[float, ...] = (1.0, 1.0, 1.0)) -> tuple[np.ndarray, RigidPerturbation]:
    """Perturb one subject's volume with parameters seeded by ``seed`` and the subject's name."""
    perturbation = sample_perturbation(subject_rng(seed, subject), max_angle, max_shift)
    return misalign_volume(data, perturbation, voxel_size), perturbation


@dataclass
class MisalignedDataset:
    """A perturbed copy of a dataset: its manifest and each subject's perturbation."""

    manifest: Path
    contrast: str
    perturbations: dict[str, RigidPerturbation]


def _settings(data: Path, contrast: str, contrasts: tuple[str, ...], seed: int, max_angle: float, max_shift: float) -> dict:
    return {"source": str(Path(data).resolve()), "contrast": contrast, "contrasts": list(contrasts), "seed": seed,
            "max_angle": max_angle, "max_shift": max_shift}


def write_misaligned_dataset(data: str | Path, contrast: str, out_dir: str | Path, contrasts: tuple[str, ...],
                             seed: int = 0, max_angle: float = 8.0, max_shift: float = 2.0,
                             layout: str | None = None) -> MisalignedDataset:
    """Write ``out_dir/manifest.csv`` listing ``contrasts`` of every subject, with ``contrast`` perturbed.

    Perturbed volumes are written as ``out_dir/<subject>/<contrast>.nii.gz`` (same grid and
    affine as the original); the other contrasts point at the original files. A folder already
    written with the same settings is reused.
    """
    out_dir = Path(out_dir)
    settings = _settings(Path(data), contrast, contrasts, seed, max_angle, max_shift)
    record_path = out_dir / RECORD_NAME
    if record_path.is_file() and (out_dir / MANIFEST_NAME).is_file():
        record = json.loads(record_path.read_text())
        if record.get("settings") == settings:
            perturbations = {name: RigidPerturbation(tuple(p["angles_deg"]), tuple(p["shift_voxels"]))
                             for name, p in record["subjects"].items()}
            return MisalignedDataset(out_dir / MANIFEST_NAME, contrast, perturbations)
    index = discover_dataset(data, layout)
    rows: list[dict[str, str]] = []
    perturbations: dict[str, RigidPerturbation] = {}
    for entry in index.subjects:
        for name in contrasts:
            path = entry.files.get(name)
            if path is None:
                continue
            if name == contrast:
                volume = load_volume(path, name)
                moved, perturbations[entry.subject] = misalign_subject_volume(
                    volume.data, entry.subject, seed, max_angle, max_shift, volume.voxel_size)
                path = save_volume(moved, volume.affine, out_dir / entry.subject / f"{name}.nii.gz", force=True)
            rows.append({"subject": entry.subject, "contrast": name, "path": str(Path(path).resolve())})
    if not perturbations:
        raise DataError(f"{data}: no subject has the contrast {contrast} to misalign")
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / MANIFEST_NAME).open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["subject", "contrast", "path"])
        writer.writeheader()
        writer.writerows(rows)
    record = {"settings": settings, "subjects": {name: p.to_dict() for name, p in perturbations.items()}}
    record_path.write_text(json.dumps(record, indent=1))
    return MisalignedDataset(out_dir / MANIFEST_NAME, contrast, perturbations)


__all__ = [
    "MisalignedDataset",
    "RigidPerturbation",
    "misalign_subject_volume",
    "misalign_volume",
    "perturbation_transform",
    "sample_perturbation",
    "subject_rng",
    "write_misaligned_dataset",
]
