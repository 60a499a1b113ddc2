"""Bringing volumes onto one grid (through their affines) and into RAS voxel order for slicing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from nibabel import orientations
from scipy import ndimage

from mrsynth.errors import InputError
from mrsynth.io.volumes import Volume

#: A moving volume must cover at least this fraction of the smaller of (its own non-zero region,
#: the reference grid) once resampled, else it "does not overlap" the reference.
MIN_OVERLAP_FRACTION = 0.01


def same_grid(a: Volume, b: Volume, atol: float = 1e-3) -> bool:
    """True when both volumes have the same shape and (nearly) the same affine."""
    return a.shape == b.shape and bool(np.allclose(a.affine, b.affine, atol=atol))


def _world_box(volume: Volume, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World-space (RAS mm) bounding box of the voxel index box ``lo..hi`` (inclusive)."""
    lo, hi = np.asarray(lo) - 0.5, np.asarray(hi) + 0.5
    corners = np.array([[x, y, z, 1.0] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    world = corners @ volume.affine.T
    return world[:, :3].min(axis=0), world[:, :3].max(axis=0)


def _no_overlap(volume: Volume, reference: Volume) -> InputError:
    name = reference.contrast or (reference.path.name if reference.path else "the reference")
    return InputError(
        f"does not overlap {name} in space (its header places it elsewhere: check that both files "
        "belong to the same subject and that their affines are right)",
        path=volume.path,
        contrast=volume.contrast,
    )


def resample_to(volume: Volume, reference: Volume, order: int = 1) -> Volume:
    """Resample ``volume`` onto ``reference``'s grid through both affines (outside = 0).

    Returns a copy when the grids already match. Raises :class:`InputError` when the moving
    volume's non-zero region has (almost) no overlap with the reference grid.
    """
    if same_grid(volume, reference):
        return Volume(volume.data.copy(), reference.affine.copy(), volume.path, volume.contrast)
    nonzero = volume.data != 0
    idx = [np.flatnonzero(nonzero.any(axis=tuple(a for a in range(3) if a != k))) for k in range(3)]
    mov_lo, mov_hi = _world_box(volume, np.array([i[0] for i in idx]), np.array([i[-1] for i in idx]))
    ref_lo, ref_hi = _world_box(reference, np.zeros(3), np.array(reference.shape) - 1)
    if np.any(mov_hi <= ref_lo) or np.any(ref_hi <= mov_lo):
        raise _no_overlap(volume, reference)
    # reference voxel -> world -> moving voxel
    matrix = np.linalg.inv(volume.affine) @ reference.affine
    data = ndimage.affine_transform(
        volume.data,
        matrix[:3, :3],
        offset=matrix[:3, 3],
        output_shape=reference.shape,
        order=order,
        mode="constant",
        cval=0.0,
        prefilter=order > 1,
    ).astype(np.float32, copy=False)
    moving_mm3 = float(nonzero.sum()) * float(np.prod(volume.voxel_size))
    ref_voxel_mm3 = float(np.prod(reference.voxel_size))
    overlap_mm3 = float(np.count_nonzero(data)) * ref_voxel_mm3
    grid_mm3 = float(np.prod(reference.shape)) * ref_voxel_mm3
    if overlap_mm3 < MIN_OVERLAP_FRACTION * min(moving_mm3, grid_mm3):
        raise _no_overlap(volume, reference)
    return Volume(data, reference.affine.copy(), volume.path, volume.contrast)


@dataclass(frozen=True)
class Reorientation:
    """How a volume was put in RAS voxel order, and what is needed to put it back."""

    transform: np.ndarray  # (3, 2) nibabel orientation transform: original -> RAS
    original_shape: tuple[int, int, int]
    original_affine: np.ndarray

    @property
    def ras_shape(self) -> tuple[int, int, int]:
        """Grid shape in the RAS (working) voxel order."""
        axes = self.transform[:, 0].astype(int)
        shape = [0, 0, 0]
        for src, dst in enumerate(axes):
            shape[dst] = self.original_shape[src]
        return tuple(shape)  # type: ignore[return-value]

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        return {
            "transform": self.transform.tolist(),
            "original_shape": list(self.original_shape),
            "original_affine": self.original_affine.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Reorientation":
        """Inverse of :meth:`to_dict`."""
        return cls(
            transform=np.asarray(data["transform"], dtype=np.float64),
            original_shape=tuple(int(n) for n in data["original_shape"]),  # type: ignore[arg-type]
            original_affine=np.asarray(data["original_affine"], dtype=np.float64),
        )


def reorient_to_ras(volume: Volume) -> tuple[Volume, Reorientation]:
    """Flip/permute voxel axes so that axis 0 runs left->right, 1 posterior->anterior, 2 inferior->superior.

    Axis 2 is then the axial axis used for slicing. No interpolation: only a permutation/flip,
    to the nearest RAS axes for oblique scans. Returns the volume and the transform to undo it.
    """
    current = orientations.io_orientation(volume.affine)
    transform = orientations.ornt_transform(current, orientations.axcodes2ornt("RAS"))
    data = np.ascontiguousarray(orientations.apply_orientation(volume.data, transform))
    affine = volume.affine @ orientations.inv_ornt_aff(transform, volume.shape)
    info = Reorientation(transform=transform, original_shape=volume.shape, original_affine=volume.affine.copy())
    return Volume(data, affine, volume.path, volume.contrast), info


def undo_reorientation(array: np.ndarray, info: Reorientation) -> np.ndarray:
    """Put an array in RAS working order back into the original voxel order of :func:`reorient_to_ras`."""
    if tuple(array.shape[:3]) != info.ras_shape:
        raise ValueError(f"array of shape {array.shape} is not on the working grid {info.ras_shape}")
    axes = info.transform[:, 0].astype(int)
    flips = info.transform[:, 1]
    inverse = np.zeros((3, 2))
    for src, dst in enumerate(axes):
        inverse[dst] = (src, flips[src])
    return np.ascontiguousarray(orientations.apply_orientation(array, inverse))
