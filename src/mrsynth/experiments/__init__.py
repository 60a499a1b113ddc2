"""The paper's experiments (Tables 1-2, Sec. 5.3-5.4), cross-validation and model evaluation, as a Python API.

>>> result = run_experiment("subsets", ExperimentConfig(data="data/", out="results/subsets").quick())  # doctest: +SKIP
>>> result.report                                                                                    # doctest: +SKIP
PosixPath('results/subsets/report.md')
"""

from __future__ import annotations

from collections.abc import Callable

from mrsynth.errors import MrsynthError
from mrsynth.experiments.config import ExperimentConfig, RunSettings
from mrsynth.experiments.crossval import run_crossval
from mrsynth.experiments.evaluate_model import EvaluationResult, evaluate_checkpoint
from mrsynth.experiments.folds import CrossValResult, FoldRecord, cross_validate, run_fold
from mrsynth.experiments.methods import Method, baseline_predictor, model_predictor
from mrsynth.experiments.misalignment import run_misalignment
from mrsynth.experiments.results import ExperimentResult, ResultTable
from mrsynth.experiments.single_input import run_single_input
from mrsynth.experiments.subsets import run_subsets
from mrsynth.experiments.transfer import run_transfer
from mrsynth.training.distributed import refuse_multiple_processes

EXPERIMENTS: dict[str, Callable[[ExperimentConfig], ExperimentResult]] = {
    "single-input": run_single_input,
    "subsets": run_subsets,
    "misalignment": run_misalignment,
    "transfer": run_transfer,
}
CROSSVAL_OPTION_EXPERIMENTS = ("single-input", "subsets")  # the experiments that take --train-also and --blend-forest


def run_experiment(name: str, config: ExperimentConfig) -> ExperimentResult:
    """Run the experiment ``name`` (one of :data:`EXPERIMENTS`) and write its report under ``config.out``."""
    refuse_multiple_processes(f"mrsynth experiment {name}")
    try:
        runner = EXPERIMENTS[name]
    except KeyError:
        raise MrsynthError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}") from None
    for option, given in (("--train-also", config.train_also), ("--blend-forest", config.blend_forest)):
        if given and name not in CROSSVAL_OPTION_EXPERIMENTS:
            raise MrsynthError(f"{option}: the {name} experiment does not take it "
                               f"(only {' and '.join(CROSSVAL_OPTION_EXPERIMENTS)} do)")
    if config.subsets and name != "subsets":
        raise MrsynthError(f"--subset: the {name} experiment does not take it (only subsets does)")
    return runner(config)


__all__ = [
    "CROSSVAL_OPTION_EXPERIMENTS",
    "EXPERIMENTS",
    "CrossValResult",
    "EvaluationResult",
    "ExperimentConfig",
    "ExperimentResult",
    "FoldRecord",
    "Method",
    "ResultTable",
    "RunSettings",
    "baseline_predictor",
    "cross_validate",
    "evaluate_checkpoint",
    "model_predictor",
    "run_crossval",
    "run_experiment",
    "run_fold",
]
