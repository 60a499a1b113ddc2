"""``mrsynth crossval``: k-fold cross-validation by subject of one model configuration, on every input subset."""

from __future__ import annotations

from pathlib import Path

from mrsynth.experiments.config import RunSettings
from mrsynth.experiments.folds import cross_validate
from mrsynth.experiments.methods import Method
from mrsynth.experiments.results import ExperimentResult, ResultTable, write_experiment, write_figures
from mrsynth.experiments.tasks import fold_notes, left_out_notes, load_task
from mrsynth.training.distributed import refuse_multiple_processes

LABEL = "proposed"


def run_crossval(data: str | Path, settings: RunSettings, out: str | Path, folds: int = 5, seed: int = 0,
                 layout: str | None = None, cache_dir: Path | None = None, progress: bool = True,
                 figures: bool = True) -> ExperimentResult:
    """Train one model per fold (validation split inside the training subjects) and pool the test results.

    Every subject is tested exactly once, on every non-empty subset of the inputs it has.
    """
    refuse_multiple_processes("mrsynth crossval")
    out = Path(out)
    inputs, target = settings.model.inputs, settings.target
    prepared = load_task(data, inputs, target, settings.preprocess, layout=layout, cache_dir=cache_dir, progress=progress)
    method = Method.model(LABEL, inputs, every_subset=True)
    result = cross_validate(prepared.slices, [method], settings, out, folds, seed, progress)
    first = result.folds[0]
    pictures = []
    if figures and method.slug in first.checkpoints:
        pictures = write_figures(first.checkpoints[method.slug], prepared.slices.select_subjects(first.test_subjects),
                                 out, settings.train.device)
    caption = (f"{len(result.folds)}-fold cross-validation by subject ({len(prepared.slices.subjects)} subjects; "
               f"folds in folds.json), one model per fold trained on {', '.join(inputs)} -> {target}, "
               "tested on every subset of its inputs.")
    recorded = {"data": str(data), "folds": folds, "seed": seed, "model": settings.model.to_dict(),
                "train": settings.train.to_dict(), "preprocess": settings.preprocess.to_dict()}
    item = ResultTable("crossval", f"Cross-validated synthesis of {target}", result.table, caption)
    notes = left_out_notes(prepared, "crossval") + fold_notes(result.folds, "crossval")
    return write_experiment("crossval", "Cross-validation", out, [item], recorded, pictures, notes,
                            {"crossval": result.folds})
