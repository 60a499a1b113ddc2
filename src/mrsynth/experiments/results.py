"""What an experiment hands back, and how it is written: CSVs, report.md in the paper's layout, figures."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mrsynth.data.slices import SliceSet
from mrsynth.evaluation.evaluate import subject_stacks, subset_label
from mrsynth.evaluation.metrics import METRIC_NAMES, MetricTable
from mrsynth.evaluation.report import latent_figure, synthesis_grid_figure
from mrsynth.experiments.folds import FoldRecord
from mrsynth.experiments.methods import model_predictor
from mrsynth.training import load_checkpoint

METRIC_TITLES = {"mse": "MSE (the paper's metric, lower is better)", "mae": "MAE (lower is better)",
                 "psnr": "PSNR in dB (higher is better)", "ssim": "SSIM (higher is better)"}


@dataclass
class ResultTable:
    """One table of a report: rows are methods, columns tasks or input subsets (``MetricRow.subset``)."""

    slug: str
    title: str
    table: MetricTable
    caption: str = ""


@dataclass
class ExperimentResult:
    """An experiment's tables and the files it wrote (report.md, CSVs, figures), plus notes and folds."""

    name: str
    out_dir: Path
    tables: list[ResultTable]
    report: Path
    csv_files: list[Path] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    folds: dict[str, list[FoldRecord]] = field(default_factory=dict)

    def table(self, slug: str) -> MetricTable:
        """The metric table called ``slug``."""
        for item in self.tables:
            if item.slug == slug:
                return item.table
        raise KeyError(slug)


def with_column(table: MetricTable, column: str, into: MetricTable | None = None) -> MetricTable:
    """Copy ``table``'s rows with their subset replaced by ``column`` (e.g. a task label) into ``into``."""
    into = MetricTable() if into is None else into
    for row in table.rows:
        into.add(row.subject, row.method, column, row.metrics)
    return into


def reorder(table: MetricTable, methods: Sequence[str]) -> MetricTable:
    """A copy of ``table`` whose rows (hence the report's lines) follow ``methods``; others keep their place after."""
    rank = {name: i for i, name in enumerate(methods)}
    rows = sorted(table.rows, key=lambda row: rank.get(row.method, len(rank)))  # stable: columns keep their order
    return MetricTable(rows)


def task_label(inputs: Sequence[str], target: str) -> str:
    """``("t1",), "t2"`` -> ``"t1 -> t2"``."""
    return f"{subset_label(inputs)} -> {target}"


def write_figures(checkpoint_path: str | Path, test: SliceSet, out_dir: str | Path, device: str = "cpu",
                  prefix: str = "") -> list[Path]:
    """Fig. 4 and Fig. 2 for the first test subject that has all of the model's inputs (middle slice)."""
    checkpoint, _ = load_checkpoint(checkpoint_path)
    inputs = checkpoint.model_config.inputs
    if any(c not in test.contrasts for c in inputs):
        return []
    cols = [test.contrasts.index(c) for c in inputs]
    stack = next((s for s in subject_stacks(test) if s.present[cols].all()), None)
    if stack is None:
        return []
    predict = model_predictor(checkpoint, test.contrasts, device)
    predictions: dict[str, np.ndarray] = {}
    for name in inputs:
        predictions[name] = predict(stack.inputs, np.array([c == name for c in test.contrasts]))
    if len(inputs) > 1:
        predictions[subset_label(inputs)] = predict(stack.inputs, np.array([c in inputs for c in test.contrasts]))
    out_dir = Path(out_dir)
    target = checkpoint.model_config.target
    grid = synthesis_grid_figure(stack.inputs[:, cols], inputs, predictions, stack.target,
                                 out_dir / f"{prefix}fig4_synthesis.png", target_name=target,
                                 title=f"{target} of test subject {stack.subject} (middle slice)")
    latent = latent_figure(checkpoint.build_model(device), stack.inputs[:, cols], out_dir / f"{prefix}fig2_latents.png",
                           title=f"latents of test subject {stack.subject} (middle slice)")
    return [grid, latent]


def _table_markdown(item: ResultTable) -> list[str]:
    lines = [f"## {item.title}", ""]
    if item.caption:
        lines += [item.caption, ""]
    if len(item.table) == 0:
        return lines + ["(no results)", ""]
    n = {(g.method, g.subset): g.n for g in item.table.summary()}
    counts = sorted(set(n.values()))
    lines += [f"Mean ± s.d. over test subjects (n = {', '.join(map(str, counts))} per cell); best of each column in bold.", ""]
    for metric in METRIC_NAMES:
        lines += [f"### {METRIC_TITLES[metric]}", "", item.table.to_markdown(metric=metric), ""]
    return lines


def _timing_markdown(folds: dict[str, list[FoldRecord]]) -> list[str]:
    """Total train + test seconds of each method, summed over folds, per part of the experiment."""
    lines = ["## Run time", "", "| part | method | folds | seconds (train + test, folds run) |", "|---|---|---|---|"]
    for part, records in folds.items():
        totals: dict[str, list[float]] = {}
        for record in records:
            for label, seconds in record.seconds.items():
                totals.setdefault(label, []).append(seconds)
        lines += [f"| {part} | {label} | {len(values)} | {sum(values):.1f} |" for label, values in totals.items()]
    return lines + [""]


def write_experiment(name: str, title: str, out_dir: str | Path, tables: list[ResultTable], settings: dict[str, Any],
                     figures: Sequence[Path] = (), notes: Sequence[str] = (),
                     folds: dict[str, list[FoldRecord]] | None = None) -> ExperimentResult:
    """Write each table's per-subject and summary CSVs, ``settings.json`` and ``report.md``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_files: list[Path] = []
    for item in tables:
        csv_files.append(item.table.to_csv(out_dir / f"{item.slug}.csv"))
        if len(item.table):
            csv_files.append(item.table.to_csv(out_dir / f"{item.slug}_summary.csv", summary=True))
    (out_dir / "settings.json").write_text(json.dumps(settings, indent=1, default=str))
    lines = [f"# {title}", "", f"Data: `{settings.get('data', '?')}`. Settings: `settings.json`; per-subject results: "
             + ", ".join(f"`{p.name}`" for p in csv_files) + ".", ""]
    for item in tables:
        lines += _table_markdown(item)
    if figures:
        lines += ["## Figures", ""] + [f"![{p.stem}]({p.relative_to(out_dir) if p.is_relative_to(out_dir) else p})" for p in figures] + [""]
    if folds:
        lines += _timing_markdown(folds)
    if notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    report = out_dir / "report.md"
    report.write_text("\n".join(lines))
    return ExperimentResult(name, out_dir, list(tables), report, csv_files, list(figures), list(notes), dict(folds or {}))
