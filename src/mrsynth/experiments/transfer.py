"""Sec. 5.4: transfer to data with other intensity characteristics by fine-tuning only the decoder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from mrsynth.errors import MrsynthError
from mrsynth.evaluation.metrics import MetricTable
from mrsynth.experiments.config import ExperimentConfig
from mrsynth.experiments.folds import run_fold
from mrsynth.experiments.methods import Method
from mrsynth.experiments.results import (ExperimentResult, ResultTable, task_label, with_column, write_experiment,
                                         write_figures)
from mrsynth.experiments.tasks import fold_notes, left_out_notes, load_for

DEFAULT_INPUTS = ("t1",)
DEFAULT_TARGET = "t2"
SOURCE_LABEL = "as is (trained on the source data)"


def finetune_split(subjects: tuple[str, ...], counts: tuple[int, ...], seed: int) -> tuple[list[str], list[int], list[str]]:
    """A seeded order of the new data's subjects, the usable fine-tuning counts, and the test subjects.

    Fine-tuning sets are nested (the first ``k`` of the order); every count is tested on the same
    subjects, those outside the largest set. Counts that leave no test subject are dropped.
    """
    order = [subjects[i] for i in np.random.default_rng(seed).permutation(len(subjects))]
    usable = sorted({k for k in counts if k < len(subjects)})
    largest = usable[-1] if usable else 0
    return order, usable, sorted(order[largest:])


def dataset_name(data: Path) -> str:
    """A short name for a dataset: its folder's name (a manifest's parent folder)."""
    path = Path(data)
    return path.parent.name if path.is_file() else path.name


def run_transfer(config: ExperimentConfig) -> ExperimentResult:
    """Train on ``config.data``; test on ``config.target_data`` as is, then after decoder-only fine-tuning."""
    if config.target_data is None:
        raise MrsynthError("the transfer experiment needs the new dataset: pass --target-data")
    if config.only_folds:
        raise MrsynthError("the transfer experiment has no cross-validation folds; leave out --fold")
    inputs = config.inputs or DEFAULT_INPUTS
    target = config.target or DEFAULT_TARGET
    settings = config.run_settings(target, inputs)
    source = load_for(config, inputs, target)
    new = load_for(config, inputs, target, data=config.target_data, layout=config.target_layout)
    order, counts, test_names = finetune_split(new.slices.subjects, config.finetune_volumes, config.seed)
    notes = left_out_notes(source, "source") + left_out_notes(new, "new data")
    notes += [f"fine-tuning on {k} volumes skipped: the new data has only {len(order)} subjects"
              for k in sorted(set(config.finetune_volumes) - set(counts))]
    test = new.slices.select_subjects(test_names)
    table, records = MetricTable(), []
    base = Method.model(SOURCE_LABEL, inputs)
    records.append(run_fold(source.slices, test, [base], settings, config.out / "source", table, 0, config.progress))
    if base.slug not in records[0].checkpoints:
        raise MrsynthError(f"the source model could not be trained: {'; '.join(records[0].skipped)}")
    source_model = Path(records[0].checkpoints[base.slug])
    tuned = replace(settings, train=replace(settings.train, epochs=config.finetune_epochs or config.epochs))
    runs: list[tuple[str, Method, int]] = []
    for k in counts:
        plural = "s" if k > 1 else ""
        runs.append((f"finetune_{k}", Method.model(f"decoder fine-tuned on {k} volume{plural}", inputs, initial=source_model,
                                                   trainable=("decoder",), validate=False), k))
    if counts:
        runs.append(("scratch", Method.model(f"trained from scratch on the {counts[-1]} volumes", inputs, validate=False),
                     counts[-1]))
    for i, (folder, method, k) in enumerate(runs, start=1):
        records.append(run_fold(new.slices.select_subjects(order[:k]), test, [method], tuned, config.out / folder,
                                table, i, config.progress))
    column = f"{task_label(inputs, target)} on {dataset_name(config.target_data)}"
    figures = []
    if config.figures and len(runs) > 1 and runs[-2][1].slug in records[-2].checkpoints:
        figures = write_figures(records[-2].checkpoints[runs[-2][1].slug], test, config.out, settings.train.device,
                                prefix="finetuned_")
    caption = (f"A model for {task_label(inputs, target)} trained on {dataset_name(config.data)} "
               f"({len(source.slices.subjects)} subjects), tested on {len(test_names)} subjects of "
               f"{dataset_name(config.target_data)} ({', '.join(test_names)}) as is, then with only its decoder "
               f"fine-tuned on {', '.join(map(str, counts)) or 'no'} volumes of the new data (nested sets, same test "
               "subjects for every row), and a model trained from scratch on the largest set for reference.")
    item = ResultTable("transfer", "Transfer learning (Sec. 5.4)", with_column(table, column), caption)
    return write_experiment("transfer", "Experiment: transfer by decoder fine-tuning (paper Sec. 5.4)", config.out,
                            [item], config.to_dict(), figures, notes + fold_notes(records, "transfer"),
                            {"transfer": records})
