"""Evaluate a model or a baseline per subject and per input subset, in the preprocessed space.

The paper's metric (MSE over non-background voxels of the mean-normalised volume) and MAE,
PSNR and SSIM are computed on each subject's preprocessed slice stack: the space the model
works in, where every method is compared on the same voxels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import nibabel as nib
import numpy as np

from mrsynth.data.slices import SliceSet
from mrsynth.evaluation.metrics import MetricTable, compute_volume_metrics
from mrsynth.io.volumes import save_volume

#: predict(stack (S, C, H, W) over the slice set's contrasts, present (C,)) -> (S, H, W)
Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]


def all_subsets(inputs: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``inputs``, singles first, in the inputs' order (Table 2 layout)."""
    return [combo for k in range(1, len(inputs) + 1) for combo in combinations(tuple(inputs), k)]


def subset_label(subset: Sequence[str]) -> str:
    """``("t1", "t2")`` -> ``"t1+t2"``."""
    return "+".join(subset)


@dataclass
class SubjectStack:
    """One subject's slices in order: inputs ``(S, C, H, W)``, which inputs it has, and the target."""

    subject: str
    inputs: np.ndarray
    present: np.ndarray  # (C,) contrasts present on every slice
    target: np.ndarray  # (S, H, W)


def subject_stacks(slices: SliceSet) -> Iterator[SubjectStack]:
    """Yield each subject's ordered slice stack."""
    for index, name in enumerate(slices.subjects):
        rows = np.flatnonzero(slices.subject == index)
        if rows.size == 0:
            continue
        rows = rows[np.argsort(slices.slice_index[rows], kind="stable")]
        yield SubjectStack(name, np.asarray(slices.inputs[rows]), np.asarray(slices.present[rows]).all(axis=0),
                           np.asarray(slices.target[rows]))


def evaluate_predictor(predict: Predictor, slices: SliceSet, method: str, subsets: Sequence[tuple[str, ...]] | None = None,
                       table: MetricTable | None = None, predictions: dict[tuple[str, str], np.ndarray] | None = None) -> MetricTable:
    """Add one row per (subject, subset) to ``table``; subsets a subject lacks are skipped.

    ``predictions``, when given, receives every prediction keyed by (subject, subset label).
    """
    table = MetricTable() if table is None else table
    subsets = all_subsets(slices.contrasts) if subsets is None else subsets
    for stack in subject_stacks(slices):
        for subset in subsets:
            mask = np.array([c in subset for c in slices.contrasts])
            if not stack.present[mask].all():
                continue
            prediction = predict(stack.inputs, mask)
            table.add(stack.subject, method, subset_label(subset), compute_volume_metrics(prediction, stack.target))
            if predictions is not None:
                predictions[(stack.subject, subset_label(subset))] = prediction
    return table


def write_stack(array: np.ndarray, path: str | Path, force: bool = True) -> Path:
    """Write a preprocessed ``(S, H, W)`` stack as NIfTI with axes (H, W, S), unit voxels."""
    return save_volume(np.ascontiguousarray(np.moveaxis(array, 0, -1), dtype=np.float32), np.eye(4), path, force=force)


def read_stack(path: str | Path) -> np.ndarray:
    """Read back what :func:`write_stack` wrote, as ``(S, H, W)`` float32."""
    return np.moveaxis(np.asarray(nib.load(str(path)).dataobj, dtype=np.float32), -1, 0)


def evaluate_written(folder: str | Path, method: str, table: MetricTable | None = None) -> MetricTable:
    """Recompute the metrics from ``<subject>__<subset>__pred.nii.gz`` / ``<subject>__target.nii.gz`` files."""
    folder = Path(folder)
    table = MetricTable() if table is None else table
    for pred_path in sorted(folder.glob("*__pred.nii.gz")):
        subject, subset, _ = pred_path.name[: -len(".nii.gz")].split("__")
        target = read_stack(folder / f"{subject}__target.nii.gz")
        table.add(subject, method, subset, compute_volume_metrics(read_stack(pred_path), target))
    return table


def write_predictions(predictions: dict[tuple[str, str], np.ndarray], slices: SliceSet, folder: str | Path) -> None:
    """Write every prediction and each subject's target stack for :func:`evaluate_written`."""
    folder = Path(folder)
    for stack in subject_stacks(slices):
        write_stack(stack.target, folder / f"{stack.subject}__target.nii.gz")
    for (subject, subset), prediction in predictions.items():
        write_stack(prediction, folder / f"{subject}__{subset}__pred.nii.gz")
