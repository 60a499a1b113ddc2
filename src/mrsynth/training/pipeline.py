"""From a dataset on disk to a trained run folder: discovery, preprocessing cache, training."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from mrsynth.data.cache import build_slice_set
from mrsynth.data.prepared import load_prepared
from mrsynth.data.preprocessing import PreprocessConfig
from mrsynth.data.slices import SliceSet
from mrsynth.errors import DataError, MrsynthError
from mrsynth.io.layouts import discover_dataset, is_prepared_folder
from mrsynth.model import ModelConfig
from mrsynth.training.config import TrainConfig
from mrsynth.training.checkpoint import combine_checkpoints, load_checkpoint, save_checkpoint
from mrsynth.training.trainer import BEST_NAME, LAST_NAME, TrainResult, train_model
from mrsynth.training.warm_start import load_warm_start, resolve_init

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    """A dataset's slices for one task, and the subjects left out with the reason."""

    slices: SliceSet
    left_out: list[tuple[str, str]] = field(default_factory=list)
    description: dict[str, object] = field(default_factory=dict)


def default_cache_dir() -> Path:
    """``$MRSYNTH_CACHE`` or ``~/.cache/mrsynth``: where preprocessed slices are kept between runs."""
    import os

    return Path(os.environ.get("MRSYNTH_CACHE", Path.home() / ".cache" / "mrsynth"))


def load_task_data(data: str | Path, inputs: tuple[str, ...], target: str, preprocess: PreprocessConfig,
                   layout: str | None = None, cache_dir: Path | None = None, progress: bool = True) -> PreparedData:
    """Discover ``data``, keep subjects that have the target and at least one input, and slice them.

    ``data`` may also be a folder of slices written by ``mrsynth prepare`` for this task and preprocessing.
    """
    if is_prepared_folder(data):
        prepared = load_prepared(Path(data).expanduser(), inputs, target, preprocess)
        slices, left_out, layout_name = prepared.slice_set, prepared.left_out, "prepared"
    else:
        index = discover_dataset(data, layout)
        slices, left_out = build_slice_set(index, inputs, target, preprocess, cache_dir=cache_dir, progress=progress)
        layout_name = index.layout
    if len(slices.subjects) == 0:
        raise DataError(f"{data}: no subject has {target} and any of {', '.join(inputs)}")
    for name, reason in left_out:
        log.warning("left out subject %s: %s", name, reason)
    description = {"data": str(data), "layout": layout_name, "subjects": list(slices.subjects),
                   "left_out": [list(item) for item in left_out]}
    return PreparedData(slices=slices, left_out=left_out, description=description)


def train_on_dataset(data: str | Path, model_config: ModelConfig, train_config: TrainConfig, run_dir: str | Path,
                     preprocess: PreprocessConfig = PreprocessConfig(), layout: str | None = None,
                     cache_dir: Path | None = None, resume: bool = False, overwrite: bool = False,
                     init_from: str | Path | None = None, ensemble: int = 1) -> TrainResult:
    """``mrsynth train``: the whole path from a dataset folder or manifest to ``run_dir/model.pt``.

    ``init_from`` (a checkpoint, run folder or ``pretrained:NAME``) starts from its weights
    (:mod:`mrsynth.training.warm_start`), e.g. a model pre-trained on simulated subjects.
    ``ensemble`` > 1 trains that many models, with seeds ``seed``, ``seed + 1``, ..., in
    ``run_dir/member1``, ``run_dir/member2``, ..., and writes ``run_dir/model.pt`` as one
    checkpoint that averages them (:func:`~mrsynth.training.checkpoint.combine_checkpoints`); the
    result is then the first member's, with ``best_checkpoint`` the average and ``members`` every run.
    """
    if ensemble < 1:
        raise MrsynthError(f"an ensemble needs at least 1 model, got {ensemble}")
    run_dir = Path(run_dir)
    if ensemble > 1 and (run_dir / LAST_NAME).exists():
        raise MrsynthError(f"{run_dir} holds a single model's run, which an ensemble of {ensemble} would replace; "
                           "choose another --out, or continue it as one model with --ensemble 1")
    if ensemble > 1 and (run_dir / BEST_NAME).exists() and not (resume or overwrite):
        raise MrsynthError(f"{run_dir} already holds a trained model; use --resume to continue it or choose another --out")
    init_from = resolve_init(init_from, model_config)
    prepared = load_task_data(data, model_config.inputs, model_config.target, preprocess, layout, cache_dir,
                              progress=train_config.progress)
    members = []
    for k in range(ensemble):
        member_config = replace(train_config, seed=train_config.seed + k)
        member_dir = run_dir if ensemble == 1 else run_dir / f"member{k + 1}"
        initial_state, description = None, {}
        if init_from is not None:
            start = load_warm_start(init_from, model_config, member_config.seed, preprocess)
            initial_state = start.state_dict
            description = {"init_from": str(init_from), "init_contrasts": list(start.initialised)}
            if start.fresh and k == 0:
                log.warning("%s has no encoder for %s; those start from scratch", init_from, ", ".join(start.fresh))
        member_resume = resume and (ensemble == 1 or (member_dir / LAST_NAME).exists())
        members.append(train_model(prepared.slices, model_config, member_config, member_dir,
                                   preprocess=preprocess.to_dict(), training_data={**prepared.description, **description},
                                   resume=member_resume, overwrite=overwrite, initial_state=initial_state))
    if ensemble == 1:
        return members[0]
    checkpoints = [load_checkpoint(member.best_checkpoint)[0] for member in members]
    path = save_checkpoint(combine_checkpoints(checkpoints, [str(m.best_checkpoint) for m in members]), run_dir / BEST_NAME)
    first = members[0]
    return replace(first, run_dir=run_dir, best_checkpoint=path, history=[], members=members)
