"""Per-voxel features for the random-forest baseline, after Jog et al. 2017 (REPLICA).

For every input contrast a voxel is described by (a) the intensities of a small 3D patch around
it (3x3x3 by default) and (b) a multi-scale context descriptor: the mean intensity of boxes
placed at several radii in several in-plane directions around the voxel, whose sizes grow with
the radius. Box means come from ``scipy.ndimage.uniform_filter`` and are read at shifted
positions, so extraction is vectorised over voxels. Outside the volume intensities count as 0
(the background).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter


@dataclass(frozen=True)
class ContextConfig:
    """Layout of the voxel features.

    ``patch_radius`` 1 gives a 3x3x3 patch; a context box at distance ``r`` has in-plane
    half-width ``max(1, r // 2)`` and ``box_depth`` slices, centred ``r`` voxels away from the
    voxel in each of ``n_directions`` evenly spaced in-plane directions.
    """

    patch_radius: int = 1
    radii: tuple[int, ...] = (3, 6, 12)
    n_directions: int = 8
    box_depth: int = 3

    def __post_init__(self) -> None:
        if self.patch_radius < 0 or self.n_directions < 0 or self.box_depth < 1 or self.box_depth % 2 == 0:
            raise ValueError("ContextConfig needs patch_radius >= 0, n_directions >= 0 and an odd box_depth >= 1")
        if any(r < 1 for r in self.radii):
            raise ValueError("context radii must be positive")


def box_halfwidth(radius: int) -> int:
    """In-plane half-width of the context box at distance ``radius``."""
    return max(1, radius // 2)


def direction_offsets(radius: int, n_directions: int) -> list[tuple[int, int]]:
    """Integer in-plane ``(dy, dx)`` offsets at distance ``radius`` in evenly spaced directions."""
    angles = [2.0 * math.pi * k / n_directions for k in range(n_directions)]
    return [(int(round(radius * math.sin(a))), int(round(radius * math.cos(a)))) for a in angles]


def features_per_input(config: ContextConfig) -> int:
    """Number of features each input contrast contributes."""
    return (2 * config.patch_radius + 1) ** 3 + len(config.radii) * config.n_directions


def feature_names(inputs: tuple[str, ...], config: ContextConfig) -> list[str]:
    """Readable names of the feature columns, in the order ``extract_features`` returns them."""
    p = config.patch_radius
    names = []
    for name in inputs:
        names += [f"{name}:patch({dz},{dy},{dx})" for dz, dy, dx in itertools.product(range(-p, p + 1), repeat=3)]
        for r in config.radii:
            names += [f"{name}:box(r={r},{dy},{dx})" for dy, dx in direction_offsets(r, config.n_directions)]
    return names


def z_margin(config: ContextConfig) -> int:
    """How many slices above and below a voxel its features can read."""
    return max(config.patch_radius, config.box_depth // 2 if config.radii and config.n_directions else 0)


def extract_features(stack: np.ndarray, index: np.ndarray, config: ContextConfig) -> np.ndarray:
    """Features of the voxels ``index`` (flat indices into ``(S, H, W)``) of an ``(S, C, H, W)`` stack.

    Returns ``(len(index), C * features_per_input(config))`` float32, grouped by input contrast.
    """
    stack = np.asarray(stack, dtype=np.float32)
    n_slices, n_inputs, height, width = stack.shape
    z, y, x = np.unravel_index(np.asarray(index, dtype=np.int64), (n_slices, height, width))
    out = np.empty((z.size, n_inputs * features_per_input(config)), dtype=np.float32)
    p = config.patch_radius
    col = 0
    for c in range(n_inputs):
        volume = stack[:, c]
        padded = np.pad(volume, p)
        for dz, dy, dx in itertools.product(range(-p, p + 1), repeat=3):
            out[:, col] = padded[z + p + dz, y + p + dy, x + p + dx]
            col += 1
        for r in config.radii:
            if config.n_directions == 0:
                continue
            side = 2 * box_halfwidth(r) + 1
            boxes = uniform_filter(volume, size=(config.box_depth, side, side), mode="constant", cval=0.0)
            boxes = np.pad(boxes, ((0, 0), (r, r), (r, r)))
            for dy, dx in direction_offsets(r, config.n_directions):
                out[:, col] = boxes[z, y + r + dy, x + r + dx]
                col += 1
    return out


def iter_slabs(n_slices: int, slab: int, margin: int) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(lo, hi, z0, z1)``: slices ``z0:z1`` are computed from the sub-stack ``lo:hi``.

    The sub-stack extends ``margin`` slices beyond ``z0:z1`` (within the volume), so features of
    ``z0:z1`` computed on it equal those computed on the whole stack.
    """
    for z0 in range(0, n_slices, max(1, slab)):
        z1 = min(n_slices, z0 + max(1, slab))
        yield max(0, z0 - margin), min(n_slices, z1 + margin), z0, z1
