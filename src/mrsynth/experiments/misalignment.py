"""Sec. 5.3: robustness to misaligned inputs (one input randomly rotated and shifted in 3D)."""

from __future__ import annotations

import numpy as np

from mrsynth.data.misalignment import write_misaligned_dataset
from mrsynth.errors import MrsynthError
from mrsynth.evaluation.evaluate import subset_label
from mrsynth.evaluation.metrics import MetricTable
from mrsynth.experiments.config import ExperimentConfig
from mrsynth.experiments.folds import cross_validate, describe_folds
from mrsynth.experiments.methods import Method
from mrsynth.experiments.results import (ExperimentResult, ResultTable, reorder, with_column, write_experiment,
                                         write_figures)
from mrsynth.experiments.tasks import fold_notes, left_out_notes, load_for

DEFAULT_INPUTS = ("t1", "dwi")
DEFAULT_TARGET = "flair"
PROPOSED = "proposed"
ALIGNED, MISALIGNED = "aligned", "misaligned"


def misalignment_methods(inputs: tuple[str, ...], others: tuple[str, ...], baselines: tuple[str, ...],
                         misaligned: bool) -> list[Method]:
    """On aligned data: the model and forest on all inputs. On misaligned data also the model without
    the spatial transformer, and the model and forest on the unperturbed inputs only."""
    forest = "rf" in baselines
    methods = [Method.model(PROPOSED, inputs, spatial_transformer=True)]
    if misaligned:
        methods.append(Method.model(f"{PROPOSED}, no spatial transformer", inputs, spatial_transformer=False))
    if forest:
        methods.append(Method.baseline("rf", inputs))
    if misaligned:
        methods.append(Method.model(f"{PROPOSED}, {subset_label(others)} only", others, spatial_transformer=True))
        if forest:
            methods.append(Method.baseline("rf", others, label=f"rf, {subset_label(others)} only"))
    return methods


def run_misalignment(config: ExperimentConfig) -> ExperimentResult:
    """Perturb one input of every subject, then cross-validate on aligned and misaligned copies (same folds)."""
    inputs = config.inputs or DEFAULT_INPUTS
    target = config.target or DEFAULT_TARGET
    moved = config.misaligned or inputs[0]
    if len(inputs) < 2 or moved not in inputs:
        raise MrsynthError(f"the misalignment experiment needs at least two inputs including the perturbed one "
                           f"({moved}); got {', '.join(inputs)}")
    others = tuple(c for c in inputs if c != moved)
    perturbed = write_misaligned_dataset(config.data, moved, config.out / "misaligned_data", (*inputs, target),
                                         seed=config.seed, max_angle=config.max_angle, max_shift=config.max_shift,
                                         layout=config.layout)
    settings = config.run_settings(target, inputs)
    table, notes, folds, figures = MetricTable(), [], {}, []
    order = [m.label for m in misalignment_methods(inputs, others, config.baselines, misaligned=True)]
    for condition, data, layout in ((ALIGNED, None, None), (MISALIGNED, perturbed.manifest, "manifest")):
        prepared = load_for(config, inputs, target, data=data, layout=layout)
        notes += left_out_notes(prepared, condition)
        result = cross_validate(prepared.slices, misalignment_methods(inputs, others, config.baselines, condition == MISALIGNED),
                                settings, config.out / condition, config.folds, config.seed, config.progress,
                                only=config.only_folds)
        with_column(result.table, condition, into=table)
        folds[condition] = result.folds
        notes += fold_notes(result.folds, condition)
        first, slug = result.folds[0], Method.model(PROPOSED, inputs, spatial_transformer=True).slug
        if config.figures and condition == MISALIGNED and slug in first.checkpoints:
            figures = write_figures(first.checkpoints[slug], prepared.slices.select_subjects(first.test_subjects),
                                    config.out, settings.train.device, prefix="misaligned_")
    angles = np.array([p.angles_deg for p in perturbed.perturbations.values()])
    shifts = np.array([p.shift_voxels for p in perturbed.perturbations.values()])
    caption = (f"Synthesising {target} from {subset_label(inputs)}; in the misaligned column {moved} of every subject "
               f"is rotated about all three axes by U[-{config.max_angle:g}, {config.max_angle:g}] degrees and shifted by "
               f"U[-{config.max_shift:g}, {config.max_shift:g}] voxels per axis (3D, before slicing; mean |angle| "
               f"{np.abs(angles).mean():.2f} deg, mean |shift| {np.abs(shifts).mean():.2f} voxels; "
               f"per-subject values in misaligned_data/misalignment.json). {describe_folds(result.folds)}, "
               "same folds in both columns.")
    item = ResultTable("misalignment", "Robustness to misalignment (Sec. 5.3)", reorder(table, order), caption)
    return write_experiment("misalignment", "Experiment: misaligned inputs (paper Sec. 5.3)", config.out, [item],
                            config.to_dict(), figures, notes, folds)
