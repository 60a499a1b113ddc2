"""``mrsynth evaluate``: a trained model on a dataset, for every non-empty subset of its inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mrsynth.data.preprocessing import PreprocessConfig
from mrsynth.evaluation.evaluate import all_subsets, evaluate_predictor, write_predictions
from mrsynth.evaluation.metrics import MetricTable
from mrsynth.experiments.methods import model_predictor
from mrsynth.pretrained import resolve_model_path
from mrsynth.training import load_checkpoint
from mrsynth.training.pipeline import default_cache_dir, load_task_data


@dataclass
class EvaluationResult:
    """Per-subject metrics and the files written; ``seen_in_training`` lists evaluated subjects the
    model was trained or validated on (by name), whose numbers are not test results."""

    table: MetricTable
    metrics_csv: Path
    summary_csv: Path
    markdown: Path
    volumes: Path | None = None
    seen_in_training: list[str] = field(default_factory=list)


def evaluate_checkpoint(model: str | Path, data: str | Path, out: str | Path, save_volumes: bool = False,
                        device: str = "auto", layout: str | None = None, cache_dir: Path | None = None,
                        progress: bool = True, method: str = "proposed") -> EvaluationResult:
    """Evaluate ``model`` on every subject of ``data`` (loaded with the checkpoint's own preprocessing).

    Writes ``metrics.csv`` (one line per subject and subset), ``summary.csv`` and ``summary.md``
    (mean ± s.d. per subset), and with ``save_volumes`` each prediction and target stack as NIfTI
    under ``volumes/`` (preprocessed space), from which :func:`evaluate_written` gives the same numbers.
    """
    checkpoint, _ = load_checkpoint(resolve_model_path(model))
    preprocess = PreprocessConfig.from_dict(checkpoint.preprocess) if checkpoint.preprocess else PreprocessConfig()
    inputs, target = checkpoint.model_config.inputs, checkpoint.model_config.target
    slices = load_task_data(data, inputs, target, preprocess, layout=layout, cache_dir=cache_dir or default_cache_dir(),
                            progress=progress).slices
    out = Path(out)
    volumes = out / "volumes" if save_volumes else None
    predict = model_predictor(checkpoint, slices.contrasts, device)
    table = MetricTable()
    for name in slices.subjects:  # one subject at a time: predictions never pile up in memory
        subject = slices.select_subjects([name])
        predictions: dict[tuple[str, str], np.ndarray] = {}
        evaluate_predictor(predict, subject, method, all_subsets(inputs), table, predictions)
        if volumes is not None:
            write_predictions(predictions, subject, volumes)
    trained_on = set(checkpoint.training_data.get("train_subjects", [])) | set(checkpoint.training_data.get("val_subjects", []))
    seen = [name for name in slices.subjects if name in trained_on]
    out.mkdir(parents=True, exist_ok=True)
    metrics_csv, summary_csv = table.to_csv(out / "metrics.csv"), table.to_csv(out / "summary.csv", summary=True)
    lines = [f"# Evaluation of `{model}` ({', '.join(inputs)} -> {target})", "",
             f"Data: `{data}`, {len(slices.subjects)} subjects; mean ± s.d. over subjects, per input subset.", ""]
    if seen:
        lines += [f"**Warning:** {len(seen)} of these subjects were used to train or validate the model "
                  f"({', '.join(seen)}); their numbers are not test results.", ""]
    lines += [table.to_markdown(metric=None), "", "MSE (the paper's metric) by subset:", "", table.to_markdown("mse")]
    markdown = out / "summary.md"
    markdown.write_text("\n".join(lines))
    return EvaluationResult(table, metrics_csv, summary_csv, markdown, volumes, seen)
