"""The paper's preprocessing (Joyce et al. 2017, section 5): trim, downsample, normalise by the mean.

A subject's volumes (on one grid, RAS voxel order, axis 2 axial) become stacks of 2D axial slices:

1. brain mask = union over contrasts of voxels > 0;
2. in-plane crop to the mask's bounding box plus ``margin`` voxels, widened (zero-padded if it
   leaves the grid) to the aspect ratio of ``size`` so that anatomy is not stretched;
3. keep only the axial slices that contain brain;
4. resize each slice to ``size`` (bilinear, antialiased);
5. divide each volume by its mean over its own non-zero (brain) voxels.

The inputs may be scaled differently from the target (``input_normalisation``): by a high
percentile of their brain voxels instead of the mean, which a bright lesion or a vessel-rich
contrast (T1c) moves less. The target always keeps ``normalisation``: the paper's error is
measured in its units.

Normalising over brain voxels rather than the whole volume (as the paper words it) makes the
scale independent of the field of view / amount of background; background stays 0 and all
values stay non-negative, as in the paper. :func:`restore_volume` inverts steps 2-5.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

NORMALISATIONS: tuple[str, ...] = ("mean", "none", "percentile")


@dataclass(frozen=True)
class PreprocessConfig:
    """Settings of :func:`prepare_subject`; stored in checkpoints via :meth:`to_dict`.

    ``normalisation`` scales the target and, unless ``input_normalisation`` is given, the inputs;
    ``percentile`` is the brain-voxel percentile that the "percentile" normalisation divides by.
    """

    size: tuple[int, int] = (128, 128)
    margin: int = 4
    normalisation: str = "mean"
    input_normalisation: str | None = None
    percentile: float = 99.0

    def __post_init__(self) -> None:
        size = tuple(int(n) for n in self.size)
        if len(size) != 2 or any(n <= 0 or n % 4 for n in size):
            raise ValueError(f"size must be two positive numbers divisible by 4 (for 2x2 pooling twice), got {self.size}")
        object.__setattr__(self, "size", size)
        if int(self.margin) < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")
        object.__setattr__(self, "margin", int(self.margin))
        for value in (self.normalisation, self.input_normalisation):
            if value is not None and value not in NORMALISATIONS:
                raise ValueError(f"normalisation must be one of {', '.join(NORMALISATIONS)}, got {value!r}")
        if not 0 < float(self.percentile) <= 100:
            raise ValueError(f"percentile must be in (0, 100], got {self.percentile}")
        if self.input_normalisation == self.normalisation:  # one spelling per setting (cache keys, checkpoints)
            object.__setattr__(self, "input_normalisation", None)

    @property
    def resolved_input_normalisation(self) -> str:
        """How the inputs are scaled: ``input_normalisation`` if given, else ``normalisation``."""
        return self.input_normalisation or self.normalisation

    def inputs_scaled_like_target(self, how: str) -> bool:
        """Whether the target and every input are scaled by ``how`` (e.g. "mean")."""
        return self.normalisation == how and self.resolved_input_normalisation == how

    def describe_normalisation(self) -> str:
        """How the volumes are scaled, in words (for model cards and reports)."""
        def words(how: str, whose: str) -> str:
            return {"mean": f"{whose} brain mean", "none": "no scaling",
                    "percentile": f"{whose} {self.percentile:g}th brain percentile"}[how]
        if self.resolved_input_normalisation == self.normalisation:
            return "each volume / " + words(self.normalisation, "its")
        return f"inputs / {words(self.resolved_input_normalisation, 'their')}, target / {words(self.normalisation, 'its')}"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the input settings only where they differ from the paper's, so older caches still match)."""
        out: dict[str, Any] = {"size": list(self.size), "margin": self.margin, "normalisation": self.normalisation}
        if self.input_normalisation is not None:
            out["input_normalisation"] = self.input_normalisation
        if "percentile" in (self.normalisation, self.input_normalisation):
            out["percentile"] = float(self.percentile)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PreprocessConfig":
        """Inverse of :meth:`to_dict`; rejects unknown keys."""
        unknown = set(data) - {"size", "margin", "normalisation", "input_normalisation", "percentile"}
        if unknown:
            raise ValueError(f"unknown preprocessing settings: {', '.join(sorted(unknown))}")
        defaults = cls()
        return cls(
            size=tuple(data.get("size", defaults.size)),  # type: ignore[arg-type]
            margin=int(data.get("margin", defaults.margin)),
            normalisation=str(data.get("normalisation", defaults.normalisation)),
            input_normalisation=data.get("input_normalisation"),
            percentile=float(data.get("percentile", defaults.percentile)),
        )


@dataclass(frozen=True)
class SliceGeometry:
    """Where a subject's slices came from on its working grid, to put results back.

    ``box`` = (x0, x1, y0, y1), half-open, in working-grid voxels; it may extend past the grid
    (that part is zero padding). ``slices`` are the kept axial (axis 2) indices, in order.
    Slice ``k`` of the stack is working-grid plane ``[x0:x1, y0:y1, slices[k]]`` resized to ``size``
    (rows follow axis 0, columns axis 1).
    """

    grid_shape: tuple[int, int, int]
    box: tuple[int, int, int, int]
    slices: tuple[int, ...]
    size: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"grid_shape": list(self.grid_shape), "box": list(self.box), "slices": list(self.slices),
                "size": list(self.size)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SliceGeometry":
        """Inverse of :meth:`to_dict`."""
        return cls(
            grid_shape=tuple(int(n) for n in data["grid_shape"]),  # type: ignore[arg-type]
            box=tuple(int(n) for n in data["box"]),  # type: ignore[arg-type]
            slices=tuple(int(n) for n in data["slices"]),
            size=tuple(int(n) for n in data["size"]),  # type: ignore[arg-type]
        )


@dataclass
class PreparedSubject:
    """A subject's preprocessed slices: ``slices[contrast]`` is (S, H, W) float32."""

    slices: dict[str, np.ndarray]
    geometry: SliceGeometry
    scales: dict[str, float]  # the divisor applied to each contrast


def brain_mask(volumes: Mapping[str, np.ndarray]) -> np.ndarray:
    """Union over contrasts of the voxels > 0 (bool array of the common shape)."""
    if not volumes:
        raise ValueError("brain_mask needs at least one volume")
    arrays = list(volumes.values())
    shape = arrays[0].shape
    if any(a.shape != shape for a in arrays):
        raise ValueError(f"volumes are on different grids: {[a.shape for a in arrays]}")
    mask = np.zeros(shape, dtype=bool)
    for array in arrays:
        mask |= array > 0
    return mask


def normalisation_scale(volume: np.ndarray, normalisation: str = "mean", percentile: float = 99.0) -> float:
    """The divisor for ``volume``: the mean ("mean") or the ``percentile``-th percentile ("percentile")
    of its non-zero voxels, or 1 ("none")."""
    if normalisation == "none":
        return 1.0
    brain = volume[volume > 0]
    if brain.size == 0:
        raise ValueError("cannot normalise a volume with no voxel above zero")
    if normalisation == "percentile":
        return float(np.percentile(brain, percentile))
    return float(brain.mean(dtype=np.float64))


def _span(lo: int, hi: int, length: int) -> tuple[int, int]:
    """Widen [lo, hi) symmetrically to ``length``."""
    extra = length - (hi - lo)
    return lo - extra // 2, hi + (extra - extra // 2)


def _crop_box(mask2d: np.ndarray, margin: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    xs = np.flatnonzero(mask2d.any(axis=1))
    ys = np.flatnonzero(mask2d.any(axis=0))
    x0, x1 = int(xs[0]) - margin, int(xs[-1]) + 1 + margin
    y0, y1 = int(ys[0]) - margin, int(ys[-1]) + 1 + margin
    # widen the shorter side to the output aspect ratio (no anisotropic stretching)
    aspect = size[0] / size[1]
    if (x1 - x0) / (y1 - y0) < aspect:
        x0, x1 = _span(x0, x1, int(round((y1 - y0) * aspect)))
    else:
        y0, y1 = _span(y0, y1, int(round((x1 - x0) / aspect)))
    return x0, x1, y0, y1


def _overlap(lo: int, hi: int, length: int) -> tuple[slice, slice]:
    """(source slice in the grid, destination slice in the box) of box [lo, hi) on a grid axis."""
    a, b = max(lo, 0), min(hi, length)
    return slice(a, b), slice(a - lo, b - lo)


def _resize(stack: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a (S, h, w) stack to (S, *size), bilinear with antialiasing."""
    if stack.shape[1:] == tuple(size):
        return np.ascontiguousarray(stack, dtype=np.float32)
    tensor = torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32))[:, None]
    out = F.interpolate(tensor, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return out[:, 0].clamp_(min=0).numpy()


def compute_geometry(mask: np.ndarray, config: PreprocessConfig) -> SliceGeometry:
    """Crop box and kept slices for a brain ``mask`` on the working grid."""
    if mask.ndim != 3 or not mask.any():
        raise ValueError("the brain mask is empty: no voxel above zero in any contrast")
    slices = tuple(int(z) for z in np.flatnonzero(mask.any(axis=(0, 1))))
    box = _crop_box(mask.any(axis=2), config.margin, config.size)
    return SliceGeometry(grid_shape=tuple(mask.shape), box=box, slices=slices, size=config.size)  # type: ignore[arg-type]


def extract_slices(volume: np.ndarray, geometry: SliceGeometry) -> np.ndarray:
    """Crop, select and resize one working-grid volume into a (S, H, W) float32 stack."""
    if tuple(volume.shape) != geometry.grid_shape:
        raise ValueError(f"volume of shape {volume.shape} is not on the grid {geometry.grid_shape}")
    x0, x1, y0, y1 = geometry.box
    src_x, dst_x = _overlap(x0, x1, volume.shape[0])
    src_y, dst_y = _overlap(y0, y1, volume.shape[1])
    stack = np.zeros((len(geometry.slices), x1 - x0, y1 - y0), dtype=np.float32)
    picked = volume[src_x, src_y][:, :, list(geometry.slices)]
    stack[:, dst_x, dst_y] = np.moveaxis(picked, 2, 0)
    return _resize(stack, geometry.size)


def prepare_subject(volumes: Mapping[str, np.ndarray], config: PreprocessConfig,
                    crop_from: Sequence[str] | None = None, target: str | None = None) -> PreparedSubject:
    """Preprocess a subject's co-registered working-grid volumes into normalised axial slices.

    The crop box and kept slices come from the brain of the contrasts in ``crop_from``
    (default: all). Training passes the inputs only, so that the target never decides the
    crop: at synthesis time only the inputs exist. ``target`` (if among ``volumes``) is scaled
    by ``config.normalisation``, every other volume by ``config.resolved_input_normalisation``.
    """
    cropping = volumes if crop_from is None else {c: volumes[c] for c in crop_from if c in volumes}
    geometry = compute_geometry(brain_mask(cropping), config)
    slices: dict[str, np.ndarray] = {}
    scales: dict[str, float] = {}
    for contrast, volume in volumes.items():
        how = config.normalisation if contrast == target else config.resolved_input_normalisation
        scales[contrast] = normalisation_scale(volume, how, config.percentile)
        stack = extract_slices(volume, geometry)
        stack /= np.float32(scales[contrast])
        slices[contrast] = stack
    return PreparedSubject(slices=slices, geometry=geometry, scales=scales)


def restore_volume(slices: np.ndarray, geometry: SliceGeometry, scale: float = 1.0) -> np.ndarray:
    """Inverse of the preprocessing: (S, H, W) slices back onto the working grid (zeros elsewhere).

    ``scale`` (e.g. ``PreparedSubject.scales[target]``) undoes the normalisation.
    """
    slices = np.asarray(slices, dtype=np.float32)
    if slices.shape != (len(geometry.slices), *geometry.size):
        raise ValueError(f"slices of shape {slices.shape} do not match the geometry "
                         f"({len(geometry.slices)}, {geometry.size[0]}, {geometry.size[1]})")
    x0, x1, y0, y1 = geometry.box
    stack = _resize(slices, (x1 - x0, y1 - y0))
    out = np.zeros(geometry.grid_shape, dtype=np.float32)
    src_x, dst_x = _overlap(x0, x1, geometry.grid_shape[0])
    src_y, dst_y = _overlap(y0, y1, geometry.grid_shape[1])
    out[src_x, src_y, list(geometry.slices)] = np.moveaxis(stack[:, dst_x, dst_y], 0, 2) * np.float32(scale)
    return out
