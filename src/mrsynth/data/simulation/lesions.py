"""Random lesions (tumour, acute stroke, MS plaques) inserted into a subject's tissue maps.

Lesion label mask values (``LESION_LABELS``; BraTS 2023 numbering for the tumour parts):
0 no lesion, 1 necrotic tumour core, 2 peritumoural oedema, 3 enhancing tumour,
4 acute ischaemic infarct, 5 MS plaque.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

#: Lesion tissue -> integer label in the lesion mask.
LESION_LABELS: Mapping[str, int] = MappingProxyType(
    {"necrosis": 1, "oedema": 2, "enhancing": 3, "stroke": 4, "ms": 5}
)

#: Lesion types the simulator can place.
LESION_TYPES: tuple[str, ...] = ("tumour", "stroke", "ms")

_ALIASES: Mapping[str, str] = MappingProxyType({
    "tumour": "tumour", "tumor": "tumour", "glioma": "tumour",
    "stroke": "stroke", "infarct": "stroke", "ischaemia": "stroke", "ischemia": "stroke",
    "ms": "ms", "multiplesclerosis": "ms", "plaque": "ms", "plaques": "ms",
})

# Rough arterial territories of the right hemisphere in MNI mm (x, y, z ranges); the left
# hemisphere mirrors x. Weights reflect that most infarcts are in the MCA territory.
_TERRITORIES: tuple[tuple[str, float, tuple[tuple[float, float], ...]], ...] = (
    ("mca", 0.6, ((25.0, 60.0), (-70.0, 25.0), (-5.0, 50.0))),
    ("aca", 0.2, ((3.0, 20.0), (-30.0, 45.0), (15.0, 65.0))),
    ("pca", 0.2, ((5.0, 40.0), (-100.0, -55.0), (-15.0, 15.0))),
)


@dataclass(frozen=True)
class TumourSize:
    """Ranges (mm) drawn uniformly for each tumour: the radius of the enhancing tumour and how
    far the oedema reaches beyond it. The defaults are a mid-sized glioma; real BraTS cases are
    often larger (``mrsynth profile`` shows how a cohort's bright FLAIR/T2 tails compare)."""

    radius_mm: tuple[float, float] = (10.0, 20.0)
    oedema_mm: tuple[float, float] = (8.0, 20.0)

    def __post_init__(self) -> None:
        for name in ("radius_mm", "oedema_mm"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f"tumour {name} must be a range 0 < low <= high, got {low}, {high}")


# Region of MNI space holding the lateral and third ventricles (mm).
_VENTRICLE_BOX: tuple[tuple[float, float], ...] = ((-30.0, 30.0), (-45.0, 35.0), (-5.0, 30.0))


def canonical_lesion(name: str) -> str:
    """Canonical lesion type for ``name`` ("tumor" -> "tumour"); ``ValueError`` when unknown."""
    key = "".join(ch for ch in name.lower() if ch.isalnum())
    try:
        return _ALIASES[key]
    except KeyError:
        raise ValueError(f"unknown lesion type {name!r}; known: {', '.join(LESION_TYPES)}") from None


@dataclass(frozen=True)
class LesionPart:
    """One lesion tissue: the fraction of parenchyma it replaces on the lesion's box.

    The tissue probability becomes ``fraction * (gm_affinity * gm + wm_affinity * wm)`` and GM/WM
    lose the same amount, so tissue probabilities keep summing to the same total; CSF is untouched.
    """

    tissue: str
    fraction: np.ndarray  # float32, shape of the lesion's box
    gm_affinity: float = 1.0
    wm_affinity: float = 1.0


@dataclass(frozen=True)
class Lesion:
    """Parts of one lesion on a box of the grid; the parts' fractions sum to at most 1."""

    box: tuple[slice, slice, slice]
    parts: tuple[LesionPart, ...]


def _region_mask(mni: np.ndarray, box_mm: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Voxels whose template (MNI) coordinates ``mni`` (3, X, Y, Z) lie in the box ``box_mm``."""
    inside = np.ones(mni.shape[1:], dtype=bool)
    for axis, (lo, hi) in enumerate(box_mm):
        inside &= (mni[axis] >= lo) & (mni[axis] <= hi)
    return inside


def _pick(candidates: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """A random voxel index (3,) among True ``candidates``, or None when there is none."""
    flat = np.flatnonzero(candidates)
    if flat.size == 0:
        return None
    return np.array(np.unravel_index(flat[rng.integers(flat.size)], candidates.shape))


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3D rotation matrix."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def _box_around(centre: np.ndarray, half: float, shape: tuple[int, ...]) -> tuple[slice, slice, slice]:
    """Slices of a cube of half-size ``half`` voxels around ``centre``, clipped to ``shape``."""
    h = int(np.ceil(half))
    x, y, z = (slice(max(0, int(c) - h), min(int(n), int(c) + h + 1)) for c, n in zip(centre, shape))
    return x, y, z


def _smooth_noise(shape: tuple[int, ...], rng: np.random.Generator, nodes: int = 4) -> np.ndarray:
    """Smooth random field on ``shape`` with values roughly in [-1, 1]."""
    coarse = torch.from_numpy(rng.uniform(-1.0, 1.0, size=(1, 1, nodes, nodes, nodes)).astype(np.float32))
    return F.interpolate(coarse, size=tuple(shape), mode="trilinear", align_corners=True)[0, 0].numpy()


def _ellipsoid_distance(
    box: tuple[slice, slice, slice], centre: np.ndarray, radii_vox: np.ndarray, rotation: np.ndarray,
    rng: np.random.Generator, roughness: float, nodes: int = 4,
) -> np.ndarray:
    """Normalised ellipsoidal distance (1 on the surface) on ``box``, with a smooth random wobble."""
    axes = [np.arange(s.start, s.stop, dtype=np.float32) - np.float32(c) for s, c in zip(box, centre)]
    offsets = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    local = offsets @ rotation.astype(np.float32)  # coordinates along the ellipsoid's axes
    distance = np.sqrt(((local / radii_vox.astype(np.float32)) ** 2).sum(axis=-1))
    if roughness > 0:
        distance *= 1.0 + np.float32(roughness) * _smooth_noise(distance.shape, rng, nodes)
    return distance.astype(np.float32)


def _inside(distance: np.ndarray, boundary: float, radius_vox: float) -> np.ndarray:
    """Soft membership of ``distance < boundary`` with a one-voxel linear edge (partial volume)."""
    return np.clip(0.5 + (boundary - distance) * radius_vox, 0.0, 1.0).astype(np.float32)


def tumour(anatomy: np.ndarray, mni: np.ndarray, spacing: float, rng: np.random.Generator,
           size: TumourSize = TumourSize()) -> list[Lesion]:
    """A glioma-like tumour in supratentorial white matter: necrotic core, enhancing rim, oedema."""
    gm, wm, _, _ = anatomy
    region = _region_mask(mni, ((-70.0, 70.0), (-90.0, 60.0), (0.0, 60.0)))
    centre = _pick((wm > 0.9) & region, rng)
    if centre is None:
        return []
    radius_mm = rng.uniform(*size.radius_mm)
    radii = radius_mm * rng.uniform(0.8, 1.2, 3) / spacing
    r_vox = float(radii.mean())
    rim = rng.uniform(3.0, 6.0) / radius_mm
    core_edge = max(0.3, 1.0 - rim)
    oedema_edge = 1.0 + rng.uniform(*size.oedema_mm) / radius_mm
    rotation = _random_rotation(rng)
    box = _box_around(centre, float(radii.max()) * oedema_edge * 1.3 + 2, wm.shape)
    d = _ellipsoid_distance(box, centre, radii, rotation, rng, roughness=0.12)
    d_oedema = _ellipsoid_distance(box, centre, radii, rotation, rng, roughness=0.35, nodes=7)
    core = _inside(d, core_edge, r_vox)
    whole = _inside(d, 1.0, r_vox)
    oedema = np.clip(_inside(d_oedema, oedema_edge, r_vox) - whole, 0.0, 1.0)
    parts = (
        LesionPart("necrosis", core),
        LesionPart("enhancing", whole - core),
        # Vasogenic oedema spreads along white matter and spares most of the cortex.
        LesionPart("oedema", oedema, gm_affinity=0.3, wm_affinity=1.0),
    )
    return [Lesion(box, parts)]


def stroke(anatomy: np.ndarray, mni: np.ndarray, spacing: float, rng: np.random.Generator) -> list[Lesion]:
    """An acute infarct of cortex and underlying white matter in a random arterial territory."""
    gm, wm, _, _ = anatomy
    weights = np.array([w for _, w, _ in _TERRITORIES])
    _, _, box_mm = _TERRITORIES[rng.choice(len(_TERRITORIES), p=weights / weights.sum())]
    side = rng.choice([-1.0, 1.0])
    x_lo, x_hi = box_mm[0]
    x_range = (x_lo, x_hi) if side > 0 else (-x_hi, -x_lo)
    region = _region_mask(mni, (x_range, *box_mm[1:]))
    centre = _pick(((gm + wm) > 0.9) & region, rng)
    if centre is None:
        return []
    radii = rng.uniform(8.0, 22.0, 3) / spacing
    box = _box_around(centre, float(radii.max()) * 1.5 + 2, gm.shape)
    d = _ellipsoid_distance(box, centre, radii, _random_rotation(rng), rng, roughness=0.35, nodes=6)
    fraction = _inside(d, 1.0, float(radii.mean()))
    # An arterial territory does not cross the (subject's, i.e. warped template's) midline.
    fraction *= (side * mni[(0, *box)] > 0).astype(np.float32)
    return [Lesion(box, (LesionPart("stroke", fraction),))]


def ms_plaques(anatomy: np.ndarray, mni: np.ndarray, spacing: float, rng: np.random.Generator) -> list[Lesion]:
    """Several small ovoid periventricular white-matter plaques, long axis pointing away from the
    ventricles (Dawson's fingers)."""
    _, wm, csf, _ = anatomy
    margin = 12.0
    outer = tuple((lo - margin, hi + margin) for lo, hi in _VENTRICLE_BOX)
    region = _region_mask(mni, outer)
    idx = np.argwhere(region)
    if idx.size == 0:
        return []
    sub = tuple(slice(int(a), int(b) + 1) for a, b in zip(idx.min(axis=0), idx.max(axis=0)))
    ventricles = (csf[sub] > 0.7) & _region_mask(mni[(slice(None), *sub)], _VENTRICLE_BOX)
    if not ventricles.any():
        return []
    distance, nearest = ndimage.distance_transform_edt(~ventricles, return_indices=True)
    distance *= spacing
    candidates = (wm[sub] > 0.8) & (distance > 1.5) & (distance < 6.0)
    offset = np.array([s.start for s in sub])
    lesions = []
    for _ in range(int(rng.integers(4, 11))):
        local = _pick(candidates, rng)
        if local is None:
            break
        direction = local - nearest[(slice(None), *local)]
        direction = direction / max(np.linalg.norm(direction), 1e-6)
        basis = np.linalg.qr(np.column_stack([direction, rng.normal(size=(3, 2))]))[0]
        radii = np.array([rng.uniform(3.0, 7.0), rng.uniform(1.5, 3.0), rng.uniform(1.5, 3.0)]) / spacing
        centre = local + offset
        box = _box_around(centre, float(radii.max()) * 1.3 + 2, wm.shape)
        d = _ellipsoid_distance(box, centre, radii, basis, rng, roughness=0.1)
        fraction = _inside(d, 1.0, float(radii.mean()))
        lesions.append(Lesion(box, (LesionPart("ms", fraction, gm_affinity=0.3, wm_affinity=1.0),)))
    return lesions


def random_lesions(
    kind: str, anatomy: np.ndarray, mni: np.ndarray, spacing: float, rng: np.random.Generator,
    tumour_size: TumourSize = TumourSize(),
) -> list[Lesion]:
    """Lesions of type ``kind`` ("tumour", "stroke", "ms") for the (gm, wm, csf, mask) ``anatomy``.

    ``mni`` (3, X, Y, Z) holds the template coordinates of each voxel (``SubjectAnatomy.template_mm``)
    and ``spacing`` the voxel size in mm; ``tumour_size`` applies to tumours.
    """
    kind = canonical_lesion(kind)
    if kind == "tumour":
        return tumour(anatomy, mni, spacing, rng, tumour_size)
    return {"stroke": stroke, "ms": ms_plaques}[kind](anatomy, mni, spacing, rng)


def insert_lesions(
    anatomy: np.ndarray, lesions: list[Lesion]
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Tissue names, their stacked probability maps (T, X, Y, Z) and the uint8 lesion label mask.

    Lesions are applied one after the other, each taking its share of the GM/WM that is left; a
    voxel is labelled when lesion tissues make up at least half of it, with the largest one's label.
    """
    gm, wm, csf, _ = anatomy
    maps: dict[str, np.ndarray] = {"gm": gm.copy(), "wm": wm.copy(), "csf": csf}
    for lesion in lesions:
        g, w = maps["gm"][lesion.box], maps["wm"][lesion.box]
        g0, w0 = g.copy(), w.copy()
        for part in lesion.parts:
            if part.tissue not in maps:
                maps[part.tissue] = np.zeros_like(gm)
            from_gm = part.fraction * np.float32(part.gm_affinity) * g0
            from_wm = part.fraction * np.float32(part.wm_affinity) * w0
            maps[part.tissue][lesion.box] += from_gm + from_wm
            g -= from_gm
            w -= from_wm
        np.clip(g, 0.0, 1.0, out=g)
        np.clip(w, 0.0, 1.0, out=w)
    names = tuple(maps)
    labels = np.zeros(gm.shape, dtype=np.uint8)
    lesion_names = [n for n in names if n in LESION_LABELS]
    if lesion_names:
        # Only the bounding box of all lesion boxes can hold a label.
        box = tuple(
            slice(min(les.box[a].start for les in lesions), max(les.box[a].stop for les in lesions))
            for a in range(3)
        )
        stacked = np.stack([maps[n][box] for n in lesion_names])
        best = stacked.argmax(axis=0)
        values = np.array([LESION_LABELS[n] for n in lesion_names], dtype=np.uint8)
        labels[box] = np.where(stacked.sum(axis=0) >= 0.5, values[best], 0)
    return names, np.stack([maps[n] for n in names]), labels
