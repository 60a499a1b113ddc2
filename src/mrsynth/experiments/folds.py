"""The one routine every experiment uses: train the methods on one split, test them on another.

:func:`run_fold` fits each method on a training slice set and adds one row per (test subject,
input subset) to a :class:`MetricTable`; :func:`cross_validate` repeats it over k folds of the
subjects (never of slices), so every subject is tested exactly once per method and subset.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tqdm.auto import tqdm

from mrsynth.baselines import make_baseline
from mrsynth.data.slices import SliceSet
from mrsynth.errors import MrsynthError
from mrsynth.evaluation.evaluate import Predictor, evaluate_predictor
from mrsynth.evaluation.metrics import MetricTable
from mrsynth.experiments.config import RunSettings
from mrsynth.experiments.methods import BLEND, MODEL, Method, baseline_predictor, blend_predictor, model_predictor
from mrsynth.training import (TrainConfig, kfold_subjects, load_checkpoint, save_checkpoint, split_subjects,
                              train_model)
from mrsynth.training.checkpoint import combine_checkpoints
from mrsynth.training.warm_start import load_warm_start, resolve_init, warn_unused_networks


@dataclass
class FoldRecord:
    """What one fold did: its subjects, the trained models' checkpoints, timings and skipped methods."""

    index: int
    train_subjects: list[str]
    test_subjects: list[str]
    checkpoints: dict[str, str] = field(default_factory=dict)  # model method slug -> its best model.pt
    val_subjects: dict[str, list[str]] = field(default_factory=dict)  # model method slug -> validation subjects
    seconds: dict[str, float] = field(default_factory=dict)  # method label -> train + test time (summed)
    skipped: list[str] = field(default_factory=list)
    of: int = 0  # how many folds the split has (0: unknown); a run of some folds only holds fewer records


@dataclass
class CrossValResult:
    """Pooled per-subject results of every fold, and the folds themselves."""

    table: MetricTable
    folds: list[FoldRecord]


def _say(progress: bool, message: str) -> None:
    if progress:
        tqdm.write(message)


def _validation_subjects(method: Method, train: SliceSet, train_config: TrainConfig,
                         train_only: Sequence[str]) -> list[str] | None:
    """Who a model validates on: nobody (``validate=False``), the trainer's own draw (None), or a
    draw from the subjects outside ``train_only`` (extra training data is never validated on)."""
    if not method.validate:
        return []
    if not train_only:
        return None
    return split_subjects([s for s in train.subjects if s not in set(train_only)], train_config.val_fraction,
                          train_config.seed)[1]


def _fit(method: Method, train: SliceSet, settings: RunSettings, run_dir: Path, test_contrasts: tuple[str, ...],
         record: FoldRecord, train_only: Sequence[str] = ()) -> Predictor:
    """Train one method and return its predictor over ``test_contrasts``; models are kept in ``run_dir``."""
    if method.kind != MODEL:
        config = {"rf": settings.forest, "dedis": settings.dedis}.get(method.kind)
        baseline = make_baseline(method.kind, config).fit(train, method.inputs)
        return baseline_predictor(baseline, test_contrasts)
    model_config = settings.model_config(method.inputs, method.spatial_transformer)
    members = []
    for k in range(settings.ensemble):
        member_dir = Path(run_dir) if k == 0 else Path(f"{run_dir}-seed{k}")
        train_config = replace(settings.train.for_inputs(method.inputs), seed=settings.train.seed + k)
        initial_state, training_data = None, {"subjects": list(train.subjects)}
        if method.initial is not None:  # member k of an ensemble starts from the source's member k
            source, _ = load_checkpoint(method.initial)
            states = [source.state_dict, *source.members]
            if k == 0:
                warn_unused_networks(method.initial, len(states), settings.ensemble)
            initial_state, model_config = states[k % len(states)], source.model_config
            training_data["init_from"] = str(method.initial)
        elif (init := resolve_init(settings.init_from, model_config)) is not None:
            start = load_warm_start(init, model_config, train_config.seed, settings.preprocess, member=k,
                                    ensemble=settings.ensemble)
            initial_state = start.state_dict
            training_data.update(init_from=str(init), init_source=start.source)
        result = train_model(train, model_config, train_config, member_dir, preprocess=settings.preprocess.to_dict(),
                             training_data=training_data,
                             resume=settings.resume and (member_dir / "last.pt").exists(), overwrite=not settings.resume,
                             initial_state=initial_state, trainable=method.trainable,
                             val_subjects=_validation_subjects(method, train, train_config, train_only))
        members.append(result.best_checkpoint)
        if k == 0:
            record.val_subjects[method.slug] = list(result.val_subjects)
    checkpoints = [load_checkpoint(path)[0] for path in members]
    checkpoint = checkpoints[0] if len(members) == 1 else combine_checkpoints(checkpoints, [str(p) for p in members])
    best = members[0] if len(members) == 1 else save_checkpoint(checkpoint, Path(run_dir) / "ensemble.pt")
    record.checkpoints[method.slug] = str(best)
    checkpoint.model_config = checkpoint.model_config.with_synthesis_of(model_config)  # this run's synthesis settings
    return model_predictor(checkpoint, test_contrasts, settings.train.device)


def run_fold(train: SliceSet, test: SliceSet, methods: Sequence[Method], settings: RunSettings, fold_dir: str | Path,
             table: MetricTable, index: int = 0, progress: bool = True, train_only: Sequence[str] = ()) -> FoldRecord:
    """Fit every method on ``train`` and add its test rows (per subject and subset) to ``table``.

    Methods with the same training key share one fitted instance; a blend combines the predictors of
    methods listed before it. A method that cannot be
    trained on this split (e.g. no training slice has all its inputs) is skipped with the reason
    recorded in the returned :class:`FoldRecord`. Models never validate on ``train_only`` subjects.
    """
    fold_dir = Path(fold_dir)
    record = FoldRecord(index, list(train.subjects), list(test.subjects))
    fitted: dict[tuple[object, ...], Predictor] = {}
    for method in methods:
        started = time.perf_counter()
        key = method.training_key
        if method.kind == BLEND and key not in fitted:
            missing = [part.label for part in method.parts if part.training_key not in fitted]
            if missing:  # a part was skipped (its reason is recorded) or not asked for
                record.skipped.append(f"{method.label}: not fitted in this fold: {', '.join(missing)}")
                continue
            fitted[key] = blend_predictor([fitted[part.training_key] for part in method.parts], method.weights)
        if key not in fitted:
            _say(progress, f"fold {index + 1}: fitting {method.label} ({method.slug}) on {len(train.subjects)} subjects")
            try:
                fitted[key] = _fit(method, train, settings, fold_dir / method.slug, test.contrasts, record, train_only)
            except MrsynthError as error:
                record.skipped.append(f"{method.label}: {error}")
                _say(progress, f"fold {index + 1}: {method.label} skipped: {error}")
                continue
        evaluate_predictor(fitted[key], test, method.label, method.test_subsets, table)
        record.seconds[method.label] = record.seconds.get(method.label, 0.0) + time.perf_counter() - started
    return record


def cross_validate(slices: SliceSet, methods: Sequence[Method], settings: RunSettings, out_dir: str | Path,
                   folds: int = 5, seed: int = 0, progress: bool = True, table: MetricTable | None = None,
                   test_pool: Sequence[str] | None = None, only: Sequence[int] | None = None,
                   train_only: Sequence[str] = ()) -> CrossValResult:
    """k-fold cross-validation by subject (``folds >= subjects``: leave-one-out) of every method.

    With ``test_pool`` the folds split only those subjects; every other subject is always
    training data (e.g. incomplete cases that help training but cannot be tested on every subset);
    ``train_only`` subjects (outside ``test_pool``) are never validated on either.
    ``only`` runs just these folds (numbered from 1) of the same split, so that the folds of one
    experiment can run in separate processes or machines. Writes each fold's models under
    ``out_dir/fold<k>/<method>/`` and ``out_dir/folds.json``.
    """
    out_dir = Path(out_dir)
    table = MetricTable() if table is None else table
    records = []
    pool = list(slices.subjects) if test_pool is None else [s for s in slices.subjects if s in set(test_pool)]
    splits = [([s for s in slices.subjects if s not in test], test) for _, test in kfold_subjects(pool, folds, seed)]
    chosen = select_folds(only, len(splits))
    for k, (train_names, test_names) in enumerate(splits):
        if k + 1 not in chosen:
            continue
        _say(progress, f"fold {k + 1}/{len(splits)}: test subjects {', '.join(test_names)}")
        record = run_fold(slices.select_subjects(train_names), slices.select_subjects(test_names), methods,
                          settings, out_dir / f"fold{k + 1}", table, index=k, progress=progress, train_only=train_only)
        records.append(replace(record, of=len(splits)))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "folds.json").write_text(json.dumps([asdict(r) for r in records], indent=1))
    return CrossValResult(table, records)


def select_folds(only: Sequence[int] | None, count: int) -> set[int]:
    """The fold numbers (from 1) to run out of ``count``; every fold when ``only`` is empty."""
    if not only:
        return set(range(1, count + 1))
    wrong = sorted(k for k in only if not 1 <= k <= count)
    if wrong:
        raise MrsynthError(f"fold {', '.join(map(str, wrong))} does not exist: the split has folds 1 to {count}")
    return set(only)


def describe_folds(folds: list[FoldRecord]) -> str:
    """How the subjects were split, as a caption says it ("leave-one-subject-out (4 folds)").

    A run of some folds only says which ("folds 1, 2 only of a 4-fold split by subject").
    """
    total = max([f.of for f in folds] + [len(folds)])
    if len(folds) < total:
        return f"folds {', '.join(str(f.index + 1) for f in folds)} only of a {total}-fold split by subject"
    if folds and all(len(f.test_subjects) == 1 for f in folds):
        return f"leave-one-subject-out cross-validation ({total} folds)"
    return f"{total}-fold cross-validation by subject"
