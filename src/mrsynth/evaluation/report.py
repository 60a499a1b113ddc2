"""Figures of the paper's kind, written as PNG with matplotlib's Agg backend.

* :func:`synthesis_grid_figure` (Fig. 4): the target synthesised from each single input, from
  all inputs, and the ground truth, for one slice of one test subject (inputs shown above).
* :func:`latent_figure` (Fig. 2): one latent channel of each input contrast after alignment,
  and the fused latent, for one slice.
* :func:`plot_volume_comparison`: a synthesised volume next to the real scan, on one grid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from mrsynth.model import MultiInputSynthesisNet  # noqa: E402

Panel = tuple[str, np.ndarray] | None


def middle_slice(n_slices: int) -> int:
    """Index of the middle slice of a stack of ``n_slices``."""
    if n_slices < 1:
        raise ValueError("an empty stack has no middle slice")
    return n_slices // 2


def _grid(rows: Sequence[Sequence[Panel]], path: str | Path, title: str, limits: Sequence[tuple[float, float]],
          cmap: str = "gray") -> Path:
    """Draw ``rows`` of (title, image) panels (None = empty cell), one colour range per row."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.2 * n_cols, 2.4 * n_rows), squeeze=False)
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.axis("off")
            panel = row[c] if c < len(row) else None
            if panel is None:
                continue
            name, image = panel
            ax.imshow(np.asarray(image).T[::-1], cmap=cmap, vmin=limits[r][0], vmax=limits[r][1], interpolation="nearest")
            ax.set_title(name, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _display_max(images: Sequence[np.ndarray]) -> float:
    values = np.concatenate([np.asarray(i).ravel() for i in images])
    positive = values[values > 0]
    return float(np.percentile(positive, 99.5)) if positive.size else 1.0


def synthesis_grid_figure(inputs: np.ndarray, contrasts: Sequence[str], predictions: Mapping[str, np.ndarray],
                          target: np.ndarray, path: str | Path, target_name: str = "target",
                          slice_index: int | None = None, title: str = "") -> Path:
    """Fig. 4: the inputs (top row) and each synthesis plus the ground truth (bottom row).

    ``inputs`` is one subject's ``(S, C, H, W)`` stack over ``contrasts``; ``predictions`` maps a
    column label (e.g. ``"t1"``, ``"t1+t2+dwi"``) to an ``(S, H, W)`` synthesis, in column order.
    """
    z = middle_slice(len(target)) if slice_index is None else slice_index
    top: list[Panel] = [(f"input {name}", inputs[z, c]) for c, name in enumerate(contrasts)]
    bottom: list[Panel] = [(f"from {label}", pred[z]) for label, pred in predictions.items()]
    bottom.append((f"true {target_name}", target[z]))
    top += [None] * (len(bottom) - len(top))
    limits = [(0.0, _display_max([p[1] for p in top if p])), (0.0, _display_max([target[z]]))]
    return _grid([top, bottom], path, title or f"{target_name} synthesis, slice {z}", limits)


def best_channel(latent: np.ndarray) -> int:
    """The channel of an ``(L, H, W)`` latent with the largest spatial variance (the most structure)."""
    return int(np.argmax(np.asarray(latent).reshape(latent.shape[0], -1).var(axis=1)))


@torch.inference_mode()
def latent_figure(model: MultiInputSynthesisNet, inputs: np.ndarray, path: str | Path, slice_index: int | None = None,
                  channel: int | None = None, title: str = "") -> Path:
    """Fig. 2: one latent channel per input contrast (after the spatial transformer) and the fused latent.

    ``inputs`` is one subject's ``(S, C, H, W)`` stack over the model's inputs, all present.
    ``channel`` defaults to the fused latent's channel with the largest spatial variance.
    """
    names = model.config.inputs
    if inputs.shape[1] != len(names):
        raise ValueError(f"expected {len(names)} input channels {names}, got {inputs.shape[1]}")
    z = middle_slice(len(inputs)) if slice_index is None else slice_index
    k = model.config.context_slices
    index = np.clip(np.arange(z - k, z + k + 1), 0, len(inputs) - 1)
    device = next(model.parameters()).device
    images = torch.from_numpy(np.ascontiguousarray(inputs[index], dtype=np.float32)).to(device)  # (K, C, H, W)
    images = images.permute(1, 0, 2, 3)[None] if k else images  # (1, C, K, H, W) or (1, C, H, W)
    present = torch.ones((1, len(names)), dtype=torch.bool, device=device)
    model.eval()
    out = model(images, present, decode_individual=False)
    fused = out.fused_latent[0].float().cpu().numpy()
    aligned = out.aligned_latents.float().cpu().numpy()
    c = best_channel(fused) if channel is None else channel
    panels: list[Panel] = [(f"{names[int(p)]} latent", aligned[i, c]) for i, p in enumerate(out.pair_contrast.tolist())]
    panels.append(("fused (max)" if model.config.fusion == "max" else f"fused ({model.config.fusion})", fused[c]))
    values = np.concatenate([p[1].ravel() for p in panels if p])
    lo, hi = float(np.percentile(values, 0.5)), float(np.percentile(values, 99.5))
    return _grid([panels], path, title or f"latent channel {c}, slice {z}", [(lo, hi if hi > lo else lo + 1.0)],
                 cmap="viridis")


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
