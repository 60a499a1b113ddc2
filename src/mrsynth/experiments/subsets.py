"""Table 2: synthesis from every subset of the inputs, and robustness to missing inputs."""

from __future__ import annotations

from dataclasses import replace

from mrsynth.errors import MrsynthError
from mrsynth.evaluation.evaluate import all_subsets, subset_label
from mrsynth.experiments.config import ExperimentConfig
from mrsynth.experiments.folds import cross_validate, describe_folds
from mrsynth.experiments.methods import Method, blend_label
from mrsynth.experiments.results import ExperimentResult, ResultTable, write_experiment, write_figures
from mrsynth.experiments.tasks import fold_notes, load_crossval_task

DEFAULT_INPUTS = ("t1", "t2", "dwi")
DEFAULT_TARGET = "flair"
SUBSET_BASELINES = ("rf", "linear")  # multi-input baselines (DEDIS takes one input only)
FULL_MODEL = "(B) proposed, one model, missing inputs"


def chosen_subsets(inputs: tuple[str, ...], wanted: tuple[tuple[str, ...], ...] = ()) -> list[tuple[str, ...]]:
    """``wanted`` in the inputs' order, each contrast ordered as in ``inputs``; every subset when empty.

    Raises :class:`MrsynthError` naming a subset that uses a contrast outside ``inputs``.
    """
    if not wanted:
        return all_subsets(inputs)
    chosen: list[tuple[str, ...]] = []
    for subset in wanted:
        outside = [c for c in subset if c not in inputs]
        if outside:
            raise MrsynthError(f"--subset {subset_label(subset)}: {', '.join(outside)} is not among the inputs "
                               f"{', '.join(inputs)}")
        ordered = tuple(c for c in inputs if c in subset)
        if ordered not in chosen:
            chosen.append(ordered)
    return [subset for subset in all_subsets(inputs) if subset in chosen]


def subset_methods(inputs: tuple[str, ...], baselines: tuple[str, ...], per_subset: bool = True,
                   full_model: bool = True, blend_forest: tuple[float, ...] = (),
                   subsets: tuple[tuple[str, ...], ...] = ()) -> list[Method]:
    """(A) one model per subset, (B) the all-inputs model tested on every subset, (C) baselines per subset.

    The (A) model for the full set is the (B) model (same training), so it is trained once per fold.
    ``per_subset=False`` leaves (A) out (it trains one model per subset and fold); ``full_model=False``
    leaves (B) out, e.g. to fit the baselines on the folds of an earlier run in a separate process.
    ``blend_forest`` adds (D): per subset and weight, (B)'s prediction and the forest's averaged with
    that weight on the forest (the forest is fitted for it even when not among ``baselines``).
    ``subsets`` keeps only those input subsets (:func:`chosen_subsets`): (A) trains, and (B), (C) and
    (D) are tested, on them alone; (B) still trains on every input.
    """
    if blend_forest and not full_model:
        raise MrsynthError("--blend-forest blends (B), the full model, with the forest: it needs (B) (drop --no-full-model)")
    subsets = chosen_subsets(inputs, subsets)
    methods = [Method.model("(A) proposed, one model per subset", subset) for subset in subsets] if per_subset else []
    full = replace(Method.model(FULL_MODEL, inputs, every_subset=True), test_subsets=tuple(subsets))
    if full_model:
        methods.append(full)
    wanted = [b for b in baselines if b in SUBSET_BASELINES]
    if blend_forest and "rf" not in wanted:
        wanted.append("rf")
    for name in wanted:
        methods += [Method.baseline(name, subset, label=f"(C) {name}") for subset in subsets]
    methods += [Method.blend(blend_label(FULL_MODEL[:3], weight), subset,
                             (full, Method.baseline("rf", subset, label="(C) rf")), (1 - weight, weight))
                for weight in blend_forest for subset in subsets]
    return methods


def run_subsets(config: ExperimentConfig) -> ExperimentResult:
    """Cross-validate (A), (B) and (C) on the same folds; columns are the input subsets."""
    inputs = config.inputs or DEFAULT_INPUTS
    target = config.target or DEFAULT_TARGET
    if config.subsets:  # recorded as chosen (ordered, each once), so fold runs given them differently still match
        config = replace(config, subsets=tuple(chosen_subsets(inputs, config.subsets)))
    methods = subset_methods(inputs, config.baselines, config.per_subset_models, config.full_model, config.blend_forest,
                             config.subsets)
    if not methods:
        raise MrsynthError("subsets: nothing to run: without (A) per-subset models and without (B), the full model "
                           "(--no-per-subset --no-full-model), a baseline is needed (--baselines rf,linear)")
    task = load_crossval_task(config, inputs, target, "subsets")
    settings = config.run_settings(target, inputs)
    result = cross_validate(task.slices, methods, settings,
                            config.out / "runs", config.folds, config.seed, config.progress,
                            test_pool=task.pool, only=config.only_folds,
                            train_only=task.train_only)
    notes = task.notes + fold_notes(result.folds, "subsets")
    figures = []
    first = result.folds[0]
    full = Method.model(FULL_MODEL, inputs).slug
    if config.figures and full in first.checkpoints:
        figures = write_figures(first.checkpoints[full], task.slices.select_subjects(first.test_subjects),
                                config.out, settings.train.device)
    ran = {method.label[:3] for method in methods}
    legend = [text for key, text in (("(A)", "(A) one model trained per subset"),
                                     ("(B)", "(B) one model trained on all inputs, tested with inputs missing"),
                                     ("(C)", "(C) baselines fitted per subset"),
                                     ("(D)", "(D) (B) and the forest averaged voxel by voxel")) if key in ran]
    columns = (f"the subsets {', '.join(subset_label(s) for s in config.subsets)} of {subset_label(inputs)}"
               if config.subsets else f"every subset of {subset_label(inputs)}")
    caption = (f"Table 2 layout: synthesising {target} from {columns} "
               f"(columns), {describe_folds(result.folds)}, same folds for every row. " + "; ".join(legend) + ".")
    item = ResultTable("subsets", f"Multi-input synthesis of {target} (Table 2)", result.table, caption)
    return write_experiment("subsets", "Experiment: any subset of inputs (paper Table 2)", config.out, [item],
                            config.to_dict(), figures, notes, {"subsets": result.folds})
