"""Image-quality metrics over a subject's non-background voxels, and a table that aggregates them.

Volumes are a subject's preprocessed slice stack ``(S, H, W)`` in mean-normalised units with the
background at 0. The paper's error metric is the MSE over all non-background voxels of the volume
(Sec. 5, "Error Metric"); MAE, PSNR and SSIM are reported over the same voxels.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from skimage.metrics import structural_similarity

METRIC_NAMES: tuple[str, ...] = ("mse", "mae", "psnr", "ssim")
_HIGHER_IS_BETTER: frozenset[str] = frozenset({"psnr", "ssim"})


def nonbackground_mask(target: np.ndarray) -> np.ndarray:
    """The paper's "non-background voxels": ``target > 0``."""
    return np.asarray(target) > 0


def _prepare(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check shapes and return float64 pred/target and a non-empty bool mask."""
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from target shape {target.shape}")
    mask = nonbackground_mask(target) if mask is None else np.asarray(mask, dtype=bool)
    if mask.shape != target.shape:
        raise ValueError(f"mask shape {mask.shape} differs from target shape {target.shape}")
    if not mask.any():
        raise ValueError("the mask selects no voxels (is the target all background?)")
    return pred, target, mask


def nonbackground_mse(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared error over the mask (default: the target's non-background voxels)."""
    pred, target, mask = _prepare(pred, target, mask)
    return float(np.mean((pred[mask] - target[mask]) ** 2))


def masked_mae(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute error over the mask (default: the target's non-background voxels)."""
    pred, target, mask = _prepare(pred, target, mask)
    return float(np.mean(np.abs(pred[mask] - target[mask])))


def _data_range(target: np.ndarray, mask: np.ndarray) -> float:
    """Max of the target within the mask: the data range that PSNR and SSIM use."""
    value = float(target[mask].max())
    if value <= 0:
        raise ValueError("the target has no positive value within the mask, so its data range is undefined")
    return value


def masked_psnr(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB over the mask, with data range = max of the target within the mask.

    ``10 * log10(range**2 / mse)``; ``inf`` when the prediction is exact on the mask.
    """
    pred, target, mask = _prepare(pred, target, mask)
    mse = float(np.mean((pred[mask] - target[mask]) ** 2))
    data_range = _data_range(target, mask)
    if mse == 0.0:
        return math.inf
    return float(10.0 * np.log10(data_range**2 / mse))


def masked_ssim(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """SSIM averaged over the mask, computed slice-wise in 2D.

    Each axial slice with masked voxels goes through scikit-image's ``structural_similarity``
    (uniform 7x7 window, or the largest odd window that fits a smaller slice; ``full=True``) with
    one ``data_range`` for the whole volume (max of the target within the mask); the per-voxel
    SSIM maps are then averaged over all masked voxels of the volume. Slice-wise 2D matches the
    2D axial synthesis and works for stacks of any depth.
    """
    pred, target, mask = _prepare(pred, target, mask)
    if target.ndim == 2:
        pred, target, mask = pred[None], target[None], mask[None]
    if target.ndim != 3:
        raise ValueError(f"SSIM expects a (S, H, W) stack or a (H, W) slice, got shape {target.shape}")
    win = min(7, *target.shape[1:])
    win -= 1 - win % 2  # largest odd size that fits
    if win < 3:
        raise ValueError(f"slices of size {target.shape[1:]} are too small for SSIM (need at least 3x3)")
    data_range = _data_range(target, mask)
    total, count = 0.0, 0
    for z in np.flatnonzero(mask.any(axis=(1, 2))):
        _, ssim_map = structural_similarity(target[z], pred[z], win_size=win, data_range=data_range, full=True)
        total += float(ssim_map[mask[z]].sum())
        count += int(mask[z].sum())
    return total / count


@dataclass(frozen=True)
class VolumeMetrics:
    """The four metrics of one synthesised volume against its ground truth."""

    mse: float
    mae: float
    psnr: float
    ssim: float


def compute_volume_metrics(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> VolumeMetrics:
    """MSE, MAE, PSNR and SSIM over the mask (default: the target's non-background voxels)."""
    pred, target, mask = _prepare(pred, target, mask)
    return VolumeMetrics(
        mse=nonbackground_mse(pred, target, mask),
        mae=masked_mae(pred, target, mask),
        psnr=masked_psnr(pred, target, mask),
        ssim=masked_ssim(pred, target, mask),
    )


@dataclass(frozen=True)
class MetricRow:
    """One evaluated volume: which subject, which method, which input subset."""

    subject: str
    method: str
    subset: str
    metrics: VolumeMetrics


@dataclass(frozen=True)
class GroupSummary:
    """Mean and sample s.d. (ddof=1; ``nan`` for a single row) of one (method, subset) group."""

    method: str
    subset: str
    n: int
    mean: VolumeMetrics
    sd: VolumeMetrics


class MetricTable:
    """Accumulates per-volume metrics and aggregates them per (method, subset), MONAI-style.

    ``add`` one row per evaluated volume; ``summary`` gives each group's mean and s.d. (groups in
    the order first seen); ``to_csv`` / ``to_markdown`` write the rows or the summary.
    """

    def __init__(self, rows: Iterable[MetricRow] = ()) -> None:
        self._rows: list[MetricRow] = list(rows)

    def add(self, subject: str, method: str, subset: str, metrics: VolumeMetrics) -> None:
        """Record the metrics of one subject's volume for one method and input subset."""
        self._rows.append(MetricRow(str(subject), str(method), str(subset), metrics))

    def reset(self) -> None:
        """Forget every row."""
        self._rows.clear()

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def rows(self) -> tuple[MetricRow, ...]:
        """The recorded rows, in the order added."""
        return tuple(self._rows)

    def summary(self) -> list[GroupSummary]:
        """Mean and s.d. of every metric per (method, subset) group."""
        groups: dict[tuple[str, str], list[VolumeMetrics]] = {}
        for row in self._rows:
            groups.setdefault((row.method, row.subset), []).append(row.metrics)
        out = []
        for (method, subset), items in groups.items():
            values = np.array([[getattr(m, name) for name in METRIC_NAMES] for m in items], dtype=np.float64)
            mean = values.mean(axis=0)
            sd = values.std(axis=0, ddof=1) if len(items) > 1 else np.full(len(METRIC_NAMES), np.nan)
            out.append(
                GroupSummary(
                    method=method,
                    subset=subset,
                    n=len(items),
                    mean=VolumeMetrics(*map(float, mean)),
                    sd=VolumeMetrics(*map(float, sd)),
                )
            )
        return out

    def to_csv(self, path: str | Path, summary: bool = False) -> Path:
        """Write one line per row (``subject,method,subset,mse,...``), or per group with ``summary``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            if summary:
                writer.writerow(["method", "subset", "n"] + [f"{m}_{s}" for m in METRIC_NAMES for s in ("mean", "sd")])
                for g in self.summary():
                    cells = [v for m in METRIC_NAMES for v in (getattr(g.mean, m), getattr(g.sd, m))]
                    writer.writerow([g.method, g.subset, g.n] + [repr(float(v)) for v in cells])
            else:
                writer.writerow(["subject", "method", "subset", *METRIC_NAMES])
                for r in self._rows:
                    writer.writerow([r.subject, r.method, r.subset] + [repr(float(v)) for v in asdict(r.metrics).values()])
        return path

    @classmethod
    def from_csv(cls, path: str | Path) -> "MetricTable":
        """Read back the rows written by ``to_csv`` (not the summary form)."""
        with Path(path).open(newline="") as handle:
            rows = [
                MetricRow(rec["subject"], rec["method"], rec["subset"], VolumeMetrics(*(float(rec[m]) for m in METRIC_NAMES)))
                for rec in csv.DictReader(handle)
            ]
        return cls(rows)

    def to_markdown(self, metric: str | None = "mse", digits: int = 3, bold_best: bool = True) -> str:
        """A Markdown table of "mean ± s.d." cells.

        With ``metric`` (one of mse, mae, psnr, ssim) the table is laid out like the paper's
        Table 2: one line per method, one column per input subset, the best method of each
        column in bold when ``bold_best``. With ``metric=None`` it has one line per
        (method, subset) group and one column per metric.
        """
        groups = self.summary()
        if metric is None:
            lines = ["| method | subset | n | " + " | ".join(METRIC_NAMES) + " |", "|---|---|---|" + "---|" * len(METRIC_NAMES)]
            for g in groups:
                cells = [_cell(getattr(g.mean, m), getattr(g.sd, m), digits) for m in METRIC_NAMES]
                lines.append(f"| {g.method} | {g.subset} | {g.n} | " + " | ".join(cells) + " |")
            return "\n".join(lines) + "\n"
        if metric not in METRIC_NAMES:
            raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRIC_NAMES)}")
        methods = list(dict.fromkeys(g.method for g in groups))
        subsets = list(dict.fromkeys(g.subset for g in groups))
        by_key = {(g.method, g.subset): g for g in groups}
        best: dict[str, str] = {}  # subsets where several methods compete -> the best of them
        for subset in subsets:
            scored = [(getattr(by_key[(m, subset)].mean, metric), m) for m in methods if (m, subset) in by_key]
            if len(scored) > 1:
                best[subset] = (max if metric in _HIGHER_IS_BETTER else min)(scored)[1]
        lines = [f"| {metric} | " + " | ".join(subsets) + " |", "|---|" + "---|" * len(subsets)]
        for method in methods:
            cells = []
            for subset in subsets:
                g = by_key.get((method, subset))
                if g is None:
                    cells.append("")
                    continue
                text = _cell(getattr(g.mean, metric), getattr(g.sd, metric), digits)
                cells.append(f"**{text}**" if bold_best and best.get(subset) == method else text)
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


def _cell(mean: float, sd: float, digits: int) -> str:
    """Format "mean ± s.d.", or just the mean where the s.d. is undefined."""
    if math.isnan(sd):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


__all__ = [
    "METRIC_NAMES",
    "GroupSummary",
    "MetricRow",
    "MetricTable",
    "VolumeMetrics",
    "compute_volume_metrics",
    "masked_mae",
    "masked_psnr",
    "masked_ssim",
    "nonbackground_mask",
    "nonbackground_mse",
]
