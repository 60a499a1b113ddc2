"""Anatomy: the MNI152 2009 tissue template shipped with nilearn, and random per-subject warps."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

#: Channels of :attr:`BrainTemplate.maps`.
TEMPLATE_CHANNELS: tuple[str, ...] = ("gm", "wm", "csf", "mask")


@dataclass(frozen=True)
class BrainTemplate:
    """Tissue probability maps (gm, wm, csf, brain mask) on a cropped grid, with its affine."""

    maps: np.ndarray  # (4, X, Y, Z) float32
    affine: np.ndarray  # (4, 4) voxel -> MNI mm

    @property
    def shape(self) -> tuple[int, int, int]:
        """Spatial shape of the grid."""
        return tuple(int(n) for n in self.maps.shape[1:])  # type: ignore[return-value]

    @property
    def spacing(self) -> float:
        """Isotropic voxel size in mm."""
        return float(np.linalg.norm(self.affine[:3, 0]))


@dataclass(frozen=True)
class DeformationSettings:
    """Size of the random per-subject warp: affine part plus a smooth non-linear displacement."""

    rotation_deg: float = 5.0  # each Euler angle uniform in +-rotation_deg
    scaling: float = 0.05  # each axis scaled by a factor uniform in 1 +- scaling
    shift_mm: float = 3.0  # each axis shifted uniform in +-shift_mm
    displacement_mm: float = 2.0  # std of the control-point displacements
    control_spacing_mm: float = 20.0  # spacing of the displacement control grid


def load_template(downsample: int = 1, margin_mm: float = 8.0) -> BrainTemplate:
    """Load nilearn's 1 mm MNI152 GM/WM/brain-mask templates, crop to the brain and downsample.

    CSF is the brain mask minus GM minus WM (clipped at 0); GM and WM are restricted to the mask.
    The crop is the brain bounding box plus ``margin_mm`` (zero-padded beyond the template);
    ``downsample`` averages blocks of ``downsample``^3 voxels (partial volume is preserved) and
    the returned affine places each block's centre correctly.
    """
    from nilearn import datasets

    if downsample < 1:
        raise ValueError("downsample must be a positive integer")
    mask_img = datasets.load_mni152_brain_mask(resolution=1)
    mask = (np.asarray(mask_img.dataobj, dtype=np.float32) > 0.5).astype(np.float32)
    gm = np.asarray(datasets.load_mni152_gm_template(resolution=1).dataobj, dtype=np.float32)
    wm = np.asarray(datasets.load_mni152_wm_template(resolution=1).dataobj, dtype=np.float32)
    gm = np.clip(gm, 0.0, 1.0) * mask
    wm = np.clip(wm, 0.0, 1.0) * mask
    csf = np.clip(mask - gm - wm, 0.0, 1.0)
    affine = np.asarray(mask_img.affine, dtype=np.float64)

    nz = np.argwhere(mask > 0)
    margin = int(math.ceil(margin_mm))
    lo = nz.min(axis=0) - margin
    size = nz.max(axis=0) + 1 + margin - lo
    size = -(-size // downsample) * downsample
    cropped = np.zeros((4, *size), dtype=np.float32)
    src_lo = np.maximum(lo, 0)
    src_hi = np.minimum(lo + size, mask.shape)
    dst = tuple(slice(a - b, c - b) for a, b, c in zip(src_lo, lo, src_hi))
    src = tuple(slice(a, c) for a, c in zip(src_lo, src_hi))
    for channel, volume in enumerate((gm, wm, csf, mask)):
        cropped[(channel, *dst)] = volume[src]
    shift = np.eye(4)
    shift[:3, 3] = lo
    affine = affine @ shift

    if downsample > 1:
        f = downsample
        x, y, z = (int(n) // f for n in size)
        cropped = cropped.reshape(4, x, f, y, f, z, f).mean(axis=(2, 4, 6), dtype=np.float32)
        scale = np.diag([f, f, f, 1.0])
        scale[:3, 3] = (f - 1) / 2.0
        affine = affine @ scale
    return BrainTemplate(maps=np.ascontiguousarray(cropped), affine=affine)


def _rotation(angles_rad: np.ndarray) -> np.ndarray:
    """Rotation matrix from three Euler angles (x, then y, then z)."""
    cx, cy, cz = np.cos(angles_rad)
    sx, sy, sz = np.sin(angles_rad)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def random_sampling_grid(
    shape: tuple[int, int, int], spacing: float, rng: np.random.Generator, settings: DeformationSettings
) -> torch.Tensor:
    """Random warp as a ``grid_sample`` grid (1, X, Y, Z, 3), coordinates normalised to [-1, 1].

    Each output voxel x samples the template at c + A (x - c) + t + d(x): A a small rotation and
    scaling about the grid centre c, t a shift, d a smooth displacement (random control points
    about every ``control_spacing_mm``, interpolated trilinearly). All in voxel units of the grid.
    """
    angles = np.deg2rad(rng.uniform(-settings.rotation_deg, settings.rotation_deg, 3))
    scales = rng.uniform(1.0 - settings.scaling, 1.0 + settings.scaling, 3)
    matrix = _rotation(angles) @ np.diag(scales)
    shift = rng.uniform(-settings.shift_mm, settings.shift_mm, 3) / spacing
    coarse = tuple(max(2, int(round(n * spacing / settings.control_spacing_mm)) + 1) for n in shape)
    control = rng.normal(0.0, settings.displacement_mm / spacing, size=(1, 3, *coarse))

    # Source positions at the control points; since trilinear upsampling reproduces affine maps
    # exactly, upsampling them gives the affine part plus a smooth displacement everywhere.
    dims = np.asarray(shape, dtype=np.float64)
    centre = (dims - 1) / 2
    axes = [np.linspace(0.0, n - 1.0, c) for n, c in zip(shape, coarse)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=0)  # (3, cx, cy, cz)
    source = np.einsum("ij,j...->i...", matrix, points - centre[:, None, None, None])
    source += (centre + shift)[:, None, None, None] + control[0]
    normalised = source * (2.0 / (dims - 1))[:, None, None, None] - 1.0
    # grid_sample wants (W, H, D) order in the last axis, i.e. (z, y, x) for arrays indexed (x, y, z).
    tensor = torch.from_numpy(normalised[::-1].astype(np.float32))[None]
    grid = F.interpolate(tensor, size=tuple(shape), mode="trilinear", align_corners=True)
    return grid.permute(0, 2, 3, 4, 1)


def warp_maps(maps: np.ndarray, grid: torch.Tensor) -> np.ndarray:
    """Resample stacked maps (C, X, Y, Z) through ``grid`` with trilinear interpolation (0 outside)."""
    volume = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32))[None]
    warped = F.grid_sample(volume, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return warped[0].numpy()


@dataclass(frozen=True)
class SubjectAnatomy:
    """A subject's warped (gm, wm, csf, mask) maps and the warp that made them."""

    maps: np.ndarray  # (4, X, Y, Z) float32
    grid: torch.Tensor  # (1, X, Y, Z, 3) grid_sample grid into the template
    template_affine: np.ndarray

    def template_mm(self) -> np.ndarray:
        """(3, X, Y, Z) float32 MNI coordinates (mm) of the template point behind each voxel.

        Lets lesions be placed by atlas position (hemisphere, arterial territory) in subject space.
        """
        shape = np.asarray(self.maps.shape[1:], dtype=np.float32)
        normalised = self.grid[0].numpy()[..., ::-1]  # back to (x, y, z) order
        voxel = (normalised + 1.0) * ((shape - 1.0) / 2.0)
        world = voxel @ self.template_affine[:3, :3].T.astype(np.float32)
        world += self.template_affine[:3, 3].astype(np.float32)
        return np.moveaxis(world, -1, 0)


def random_subject_anatomy(
    template: BrainTemplate, rng: np.random.Generator, settings: DeformationSettings | None = None
) -> SubjectAnatomy:
    """The template's (gm, wm, csf, mask) maps under one random warp: a new subject's anatomy."""
    settings = settings or DeformationSettings()
    grid = random_sampling_grid(template.shape, template.spacing, rng, settings)
    # Interpolation is linear, so CSF = mask - GM - WM holds after the warp too: warp 3 maps, not 4.
    gm, wm, mask = warp_maps(template.maps[[0, 1, 3]], grid)
    csf = np.clip(mask - gm - wm, 0.0, 1.0)
    return SubjectAnatomy(np.stack([gm, wm, csf, mask]), grid, template.affine)
