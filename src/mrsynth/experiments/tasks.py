"""Loading one synthesis task's data for an experiment, and turning what was skipped into report notes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mrsynth.data.preprocessing import PreprocessConfig
from mrsynth.data.slices import SliceSet, concatenate
from mrsynth.errors import DataError, MrsynthError
from mrsynth.experiments.config import ExperimentConfig
from mrsynth.experiments.folds import FoldRecord
from mrsynth.training.pipeline import PreparedData, default_cache_dir, load_task_data


def load_task(data: str | Path, inputs: tuple[str, ...], target: str, preprocess: PreprocessConfig,
              layout: str | None = None, cache_dir: Path | None = None, progress: bool = True,
              min_subjects: int = 2) -> PreparedData:
    """``inputs -> target`` slices of ``data``; :class:`DataError` when fewer than ``min_subjects`` are usable."""
    prepared = load_task_data(data, inputs, target, preprocess, layout=layout, cache_dir=cache_dir or default_cache_dir(),
                              progress=progress)
    if len(prepared.slices.subjects) < min_subjects:
        raise DataError(f"{data}: only {len(prepared.slices.subjects)} subject has {target} and any of "
                        f"{', '.join(inputs)}; at least {min_subjects} are needed")
    return prepared


def load_for(config: ExperimentConfig, inputs: tuple[str, ...], target: str, data: Path | None = None,
             layout: str | None = None) -> PreparedData:
    """:func:`load_task` with the experiment's preprocessing and cache; ``data`` defaults to ``config.data``."""
    return load_task(config.data if data is None else data, inputs, target, config.run_settings(target, inputs).preprocess,
                     layout=config.layout if data is None else layout, cache_dir=config.cache_dir, progress=config.progress)


def test_pool(config: ExperimentConfig, prepared: PreparedData) -> list[str] | None:
    """The subjects test folds may draw from: those with every contrast of ``config.test_requires``.

    Raises :class:`DataError` when fewer than two subjects qualify.
    """
    if not config.test_requires:
        return None
    slices = prepared.slices
    missing = [c for c in config.test_requires if c not in slices.contrasts]
    if missing:
        raise DataError(f"--test-requires {', '.join(missing)}: not an input of this task ({', '.join(slices.contrasts)})")
    columns = [slices.contrasts.index(c) for c in config.test_requires]
    pool = []
    for index, name in enumerate(slices.subjects):
        rows = slices.subject == index
        if rows.any() and slices.present[rows][:, columns].any(axis=0).all():
            pool.append(name)
    if len(pool) < 2:
        raise DataError(f"only {len(pool)} subject has all of {', '.join(config.test_requires)}; test folds need 2")
    return pool


@dataclass(frozen=True)
class CrossValTask:
    """One task's data for cross-validation: the dataset under test, and subjects that only ever train.

    ``slices`` holds the dataset's slices followed by those of ``config.train_also``, whose subjects
    ``train_only`` names; ``pool`` names the subjects test folds may draw from (None: every subject
    of ``slices``); ``notes`` says which subjects were left out or added, and why.
    """

    slices: SliceSet
    pool: list[str] | None
    train_only: tuple[str, ...]
    notes: list[str]


def load_crossval_task(config: ExperimentConfig, inputs: tuple[str, ...], target: str, context: str) -> CrossValTask:
    """``config.data``'s task with ``config.train_also``'s subjects added to every fold's training set.

    Extra datasets are discovered with their own layout detected. Raises :class:`DataError` when
    ``config.data`` cannot serve the task, :class:`MrsynthError` when an extra dataset cannot (so
    that an experiment never skips a task for a fault of its extra data).
    """
    prepared = load_for(config, inputs, target)
    pool = test_pool(config, prepared)
    notes = left_out_notes(prepared, context)
    if not config.train_also:
        return CrossValTask(prepared.slices, pool, (), notes)
    extras = []
    for data in config.train_also:
        try:
            extra = load_task(data, inputs, target, config.run_settings(target, inputs).preprocess,
                              cache_dir=config.cache_dir, progress=config.progress, min_subjects=1)
        except DataError as error:  # the user's extra data is wrong: an error, never a skipped task
            raise MrsynthError(f"--train-also {data}: {error}") from None
        notes += left_out_notes(extra, f"{context}, --train-also {data}")
        notes.append(f"{context}: {len(extra.slices.subjects)} subjects of {data} joined every fold's training set "
                     "(never tested, never validated on)")
        extras.append(extra.slices)
    try:
        slices = concatenate([prepared.slices, *extras])
    except ValueError as error:
        raise MrsynthError(f"--train-also {', '.join(map(str, config.train_also))}: {error}") from None
    train_only = tuple(name for extra in extras for name in extra.subjects)
    return CrossValTask(slices, list(prepared.slices.subjects) if pool is None else pool, train_only, notes)


def left_out_notes(prepared: PreparedData, context: str) -> list[str]:
    """One note per subject the task left out, with the reason."""
    return [f"{context}: subject {name} left out: {reason}" for name, reason in prepared.left_out]


def fold_notes(records: list[FoldRecord], context: str) -> list[str]:
    """One note per method a fold had to skip, with the reason."""
    return [f"{context}, fold {r.index + 1}: {item}" for r in records for item in r.skipped]
