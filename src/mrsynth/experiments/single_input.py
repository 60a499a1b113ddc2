"""Table 1: single-input synthesis (T1 -> T2, T1 -> FLAIR), the proposed model against the baselines."""

from __future__ import annotations

from pathlib import Path

from mrsynth.errors import DataError, MrsynthError, PreparedMismatchError
from mrsynth.evaluation.metrics import MetricTable
from mrsynth.evaluation.evaluate import subset_label
from mrsynth.experiments.config import ExperimentConfig
from mrsynth.experiments.folds import FoldRecord, cross_validate, describe_folds, select_folds
from mrsynth.experiments.methods import Method, blend_label
from mrsynth.experiments.results import (ExperimentResult, ResultTable, task_label, with_column, write_experiment,
                                         write_figures)
from mrsynth.experiments.tasks import fold_notes, load_crossval_task

DEFAULT_INPUT = ("t1",)
DEFAULT_TARGETS = ("t2", "flair")


def single_input_methods(inputs: tuple[str, ...], baselines: tuple[str, ...],
                         blend_forest: tuple[float, ...] = ()) -> list[Method]:
    """The proposed model and every requested baseline, all on the same single input.

    ``blend_forest`` adds, per weight, the voxel-wise mean of the model's and the forest's
    predictions with that weight on the forest (fitted for it even when not among ``baselines``).
    """
    proposed = Method.model("proposed", inputs)
    names = list(baselines) + (["rf"] if blend_forest and "rf" not in baselines else [])
    methods = [proposed] + [Method.baseline(name, inputs) for name in names]
    return methods + [Method.blend(blend_label("proposed", weight), inputs, (proposed, Method.baseline("rf", inputs)),
                                   (1 - weight, weight)) for weight in blend_forest]


def run_single_input(config: ExperimentConfig) -> ExperimentResult:
    """Cross-validate each single-input task the data has; a task it lacks is skipped with the reason."""
    inputs = config.inputs or DEFAULT_INPUT
    if len(inputs) != 1:
        raise MrsynthError(f"the single-input experiment takes one input contrast, got {', '.join(inputs)}")
    targets = (config.target,) if config.target else DEFAULT_TARGETS
    table, notes, figures = MetricTable(), [], []
    folds: dict[str, list[FoldRecord]] = {}
    tasks = []
    for target in targets:  # every task's data first, so that a wrong --fold fails before any training
        label = task_label(inputs, target)
        try:
            task = load_crossval_task(config, inputs, target, label)
        except PreparedMismatchError:
            raise
        except DataError as error:
            notes.append(f"task {label} skipped: {error}")
            continue
        select_folds(config.only_folds, min(config.folds, len(task.slices.subjects if task.pool is None else task.pool)))
        tasks.append((target, label, task))
    if not tasks:
        raise DataError("no single-input task can run: " + "; ".join(notes))
    for target, label, task in tasks:
        notes += task.notes
        settings = config.run_settings(target, inputs)
        task_dir = Path(config.out) / f"{subset_label(inputs)}_to_{target}"
        methods = single_input_methods(inputs, config.baselines, config.blend_forest)
        result = cross_validate(task.slices, methods, settings, task_dir, config.folds, config.seed, config.progress,
                                test_pool=task.pool, only=config.only_folds, train_only=task.train_only)
        with_column(result.table, label, into=table)
        folds[label] = result.folds
        notes += fold_notes(result.folds, label)
        first = result.folds[0]
        proposed = Method.model("proposed", inputs).slug
        if config.figures and proposed in first.checkpoints:
            test = task.slices.select_subjects(first.test_subjects)
            figures += write_figures(first.checkpoints[proposed], test, config.out, settings.train.device,
                                     prefix=f"{subset_label(inputs)}_to_{target}_")
    caption = ("Table 1 layout: single-input synthesis, MSE over non-background voxels of the mean-normalised "
               f"volume, {describe_folds(next(iter(folds.values()), []))} (same folds for every method).")
    item = ResultTable("single_input", "Single-input synthesis (Table 1)", table, caption)
    return write_experiment("single-input", "Experiment: single-input synthesis (paper Table 1)", config.out, [item],
                            config.to_dict(), figures, notes, folds)
