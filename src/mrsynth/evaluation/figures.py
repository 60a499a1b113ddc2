"""Figures in the paper's layout: synthesis from each input subset next to the ground truth (Fig. 4)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _middle_slice(stack: np.ndarray, target: np.ndarray) -> int:
    """The slice with the most target brain voxels: a representative axial view."""
    return int(np.argmax((target > 0).reshape(len(target), -1).sum(axis=1)))


def plot_subset_examples(predictions: Mapping[str, np.ndarray], target: np.ndarray, path: str | Path,
                         title: str = "", slice_index: int | None = None) -> Path:
    """One row: the prediction of each input subset (labelled), then the ground truth.

    ``predictions`` maps a subset label (``"t1"``, ``"t1+t2+dwi"``) to an ``(S, H, W)`` stack;
    all panels share one grey scale (0 to the target's 99.5th brain percentile).
    """
    index = _middle_slice(target, target) if slice_index is None else slice_index
    panels = [(label, stack[index]) for label, stack in predictions.items()] + [("ground truth", target[index])]
    brain = target[target > 0]
    vmax = float(np.percentile(brain, 99.5)) if brain.size else 1.0
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 2.6), squeeze=False)
    for ax, (label, image) in zip(axes[0], panels):
        ax.imshow(np.rot90(image), cmap="gray", vmin=0, vmax=vmax)
        ax.set_title(label.replace("+", " + "), fontsize=9)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_volume_comparison(synthesized: np.ndarray, truth: np.ndarray, path: str | Path, title: str = "",
                           labels: tuple[str, str] = ("synthesised", "real"), slices: int = 3) -> Path:
    """Axial slices of two volumes on one grid, each divided by its brain mean, side by side.

    Rows are the two volumes; columns are ``slices`` evenly spaced axial positions through the
    part of the grid where both have signal.
    """
    both = (synthesized > 0) & (truth > 0)
    z_axis = np.flatnonzero(both.reshape(-1, both.shape[2]).any(axis=0))
    if z_axis.size == 0:
        raise ValueError("the two volumes have no voxels in common")
    positions = np.linspace(z_axis[0], z_axis[-1], slices + 2)[1:-1].round().astype(int)
    rows = [(label, volume / volume[volume > 0].mean()) for label, volume in zip(labels, (synthesized, truth))]
    vmax = float(np.percentile(rows[1][1][both], 99.5))
    fig, axes = plt.subplots(2, slices, figsize=(2.6 * slices, 5.4), squeeze=False)
    for r, (label, volume) in enumerate(rows):
        for c, z in enumerate(positions):
            ax = axes[r][c]
            ax.imshow(np.rot90(volume[:, :, z]), cmap="gray", vmin=0, vmax=vmax)
            ax.set_title(f"{label}, slice {z}", fontsize=9)
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
