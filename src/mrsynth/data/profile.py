"""Intensity profile of a dataset, per contrast, to check that two cohorts look alike.

Pre-training on simulated subjects (``mrsynth simulate``) helps most when the simulated cohort
resembles the real one. :func:`profile_dataset` summarises each contrast of a dataset the way the
model sees it (every volume divided by its brain mean): quantiles of the brain intensities, a
histogram, the voxel size, and a roughness (median absolute difference of neighbouring brain
voxels), which grows with noise and fine texture. :func:`histogram_overlap` says how much two
profiles' histograms share (1: the same distribution, 0: disjoint).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrsynth.data.preprocessing import normalisation_scale
from mrsynth.errors import InputError
from mrsynth.io.layouts import discover_dataset
from mrsynth.io.volumes import load_volume

QUANTILES: tuple[int, ...] = (1, 5, 25, 50, 75, 95, 99)
HISTOGRAM_RANGE: tuple[float, float] = (0.0, 4.0)  # in units of the brain mean
HISTOGRAM_BINS = 80


@dataclass(frozen=True)
class ContrastProfile:
    """One contrast of one dataset: medians over subjects, and the subjects' mean histogram."""

    contrast: str
    subjects: int
    quantiles: tuple[float, ...]  # brain intensity / brain mean at QUANTILES (per-subject median)
    roughness: float  # median |neighbour difference| / brain mean (per-subject median)
    voxel_size: tuple[float, float, float]  # mm, per-axis median
    histogram: np.ndarray  # density over HISTOGRAM_RANGE, HISTOGRAM_BINS bins


@dataclass(frozen=True)
class VolumeStats:
    """:class:`ContrastProfile`'s statistics for one volume."""

    quantiles: np.ndarray
    roughness: float
    voxel_size: tuple[float, float, float]
    histogram: np.ndarray


def volume_stats(data: np.ndarray, voxel_size: tuple[float, float, float]) -> VolumeStats:
    """The profile statistics of one volume (brain = voxels above zero)."""
    brain = data > 0
    if not brain.any():
        raise ValueError("no voxel above zero")
    scaled = data / np.float32(normalisation_scale(data, "mean"))  # what the model sees
    values = scaled[brain]
    both = brain[1:] & brain[:-1]
    steps = np.abs(np.diff(scaled, axis=0))[both]
    histogram, _ = np.histogram(values, bins=HISTOGRAM_BINS, range=HISTOGRAM_RANGE, density=True)
    return VolumeStats(np.percentile(values, QUANTILES), float(np.median(steps)) if steps.size else 0.0, voxel_size,
                       histogram)


def summarise(contrast: str, stats: list[VolumeStats]) -> ContrastProfile:
    """Medians over subjects (mean histogram) of one contrast's volume statistics."""
    return ContrastProfile(
        contrast=contrast, subjects=len(stats),
        quantiles=tuple(float(v) for v in np.median([s.quantiles for s in stats], axis=0)),
        roughness=float(np.median([s.roughness for s in stats])),
        voxel_size=tuple(float(v) for v in np.median([s.voxel_size for s in stats], axis=0)),  # type: ignore[arg-type]
        histogram=np.mean([s.histogram for s in stats], axis=0),
    )


def profile_dataset(data: str | Path, contrasts: Iterable[str] | None = None, layout: str | None = None,
                    max_subjects: int | None = None) -> dict[str, ContrastProfile]:
    """Profile every contrast (or ``contrasts``) of a dataset over its first ``max_subjects`` subjects."""
    index = discover_dataset(data, layout)
    wanted = None if contrasts is None else set(contrasts)
    stats: dict[str, list[VolumeStats]] = {}
    for entry in index.subjects[:max_subjects]:
        for contrast, path in entry.files.items():
            if wanted is not None and contrast not in wanted:
                continue
            volume = load_volume(path, contrast)
            try:
                stats.setdefault(contrast, []).append(volume_stats(volume.data, volume.voxel_size))
            except ValueError as error:
                raise InputError(str(error), path=path, contrast=contrast) from None
    return {contrast: summarise(contrast, items) for contrast, items in stats.items()}


def histogram_overlap(a: ContrastProfile, b: ContrastProfile) -> float:
    """Shared area of two profiles' intensity histograms, from 0 (disjoint) to 1 (identical)."""
    width = (HISTOGRAM_RANGE[1] - HISTOGRAM_RANGE[0]) / HISTOGRAM_BINS
    return float(np.minimum(a.histogram, b.histogram).sum() * width)


def profiles_markdown(profiles: list[tuple[str, dict[str, ContrastProfile]]]) -> str:
    """A table with one row per (dataset, contrast); with two (name, profile) datasets, each contrast's overlap."""
    header = ["dataset", "contrast", "subjects", "voxel size (mm)", "roughness",
              *[f"p{q}" for q in QUANTILES]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, by_contrast in profiles:
        for contrast, p in sorted(by_contrast.items()):
            size = "x".join(f"{v:.2g}" for v in p.voxel_size)
            lines.append(f"| {name} | {contrast} | {p.subjects} | {size} | {p.roughness:.3f} | "
                         + " | ".join(f"{v:.2f}" for v in p.quantiles) + " |")
    if len(profiles) == 2:
        (first, a), (second, b) = profiles
        shared = sorted(set(a) & set(b))
        lines += ["", f"Histogram overlap, {first} vs {second} (1 = same intensity distribution):", ""]
        lines += [f"- {c}: {histogram_overlap(a[c], b[c]):.2f}" for c in shared]
    return "\n".join(lines)
