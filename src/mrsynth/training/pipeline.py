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
from mrsynth.training.checkpoint import combine_checkpoints, load_checkpoint, save_checkpoint
from mrsynth.training.config import TrainConfig
from mrsynth.training.distributed import setup_distributed, teardown_distributed
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
    ``ensemble`` > 1 trains that many models (:func:`train_ensemble`).
    """
    check_ensemble_folder(Path(run_dir), ensemble, resume, overwrite)  # before the (slow) loading
    init_from = resolve_init(init_from, model_config)
    prepared = load_task_data(data, model_config.inputs, model_config.target, preprocess, layout, cache_dir,
                              progress=train_config.progress)
    return train_ensemble(prepared.slices, model_config, train_config, run_dir, preprocess=preprocess,
                          training_data=prepared.description, resume=resume, overwrite=overwrite,
                          init_from=init_from, ensemble=ensemble)


def check_ensemble_folder(run_dir: Path, ensemble: int, resume: bool, overwrite: bool) -> None:
    """Refuse (:class:`MrsynthError`) an ensemble size below 1, or a folder an ensemble must not replace or resume.

    ``overwrite`` (the demo's ``--force``) lets an ensemble replace what the folder holds.
    """
    if ensemble < 1:
        raise MrsynthError(f"an ensemble needs at least 1 model, got {ensemble}")
    if ensemble == 1:
        return  # the trainer checks a single model's folder
    if (run_dir / LAST_NAME).exists() and not overwrite:
        raise MrsynthError(f"{run_dir} holds a single model's run, which an ensemble of {ensemble} would replace; "
                           "choose another --out, or continue it as one model with --ensemble 1 and the options it "
                           "was started with (its config.json; before stop 34 the default preset had "
                           "--subset-fusion-weight 0 --no-decoder-sees-inputs, and before stop 24 also --individual-mse-weight 0)")
    if (run_dir / BEST_NAME).exists() and not (resume or overwrite):
        raise MrsynthError(f"{run_dir} already holds a trained model; use --resume to continue it or choose another --out")
    if resume and not any((run_dir / f"member{k + 1}" / LAST_NAME).exists() for k in range(ensemble)):
        raise MrsynthError(f"--resume: {run_dir} holds no ensemble member's run ({run_dir / 'member1' / LAST_NAME} "
                           "does not exist), so there is nothing to continue")


def train_ensemble(slices: SliceSet, model_config: ModelConfig, train_config: TrainConfig, run_dir: str | Path, *,
                   preprocess: PreprocessConfig, training_data: dict[str, object] | None = None,
                   resume: bool = False, overwrite: bool = False, init_from: str | Path | None = None,
                   ensemble: int = 1) -> TrainResult:
    """Train ``ensemble`` models on ``slices``, with seeds ``seed``, ``seed + 1``, ...; one model in ``run_dir`` itself.

    Members go to ``run_dir/member1``, ``run_dir/member2``, ..., and ``run_dir/model.pt`` is one
    checkpoint that averages them (:func:`~mrsynth.training.checkpoint.combine_checkpoints`); the
    result is then the first member's, with ``best_checkpoint`` the average and ``members`` every
    run. ``resume`` reuses finished members and continues the others. Under ``torchrun`` the ranks
    train each member together in one process group, kept for all members (setting a group up
    again on the same port while another rank still tears the last one down can hang), and rank
    0, which holds the checkpoints, writes the average.
    ``init_from`` (already resolved, see :func:`~mrsynth.training.warm_start.resolve_init`) starts
    every member from its weights (member k from its network k where it is an ensemble itself).
    """
    run_dir = Path(run_dir)
    check_ensemble_folder(run_dir, ensemble, resume, overwrite)
    if ensemble == 1:
        return _train_members(slices, model_config, train_config, run_dir, preprocess, training_data, resume, overwrite,
                              init_from, 1)[0]
    context, _ = setup_distributed(train_config.ddp, train_config.device)  # one group for every member
    try:
        members = _train_members(slices, model_config, train_config, run_dir, preprocess, training_data, resume,
                                 overwrite, init_from, ensemble)
        path = run_dir / BEST_NAME
        if context.is_main:
            checkpoints = [load_checkpoint(member.best_checkpoint)[0] for member in members]
            save_checkpoint(combine_checkpoints(checkpoints, [str(m.best_checkpoint) for m in members]), path)
    except BaseException:
        teardown_distributed(context, wait=False)  # the other ranks may never reach a barrier
        raise
    teardown_distributed(context)
    return replace(members[0], run_dir=run_dir, best_checkpoint=path, history=[], members=members)


def _train_members(slices: SliceSet, model_config: ModelConfig, train_config: TrainConfig, run_dir: Path,
                   preprocess: PreprocessConfig, training_data: dict[str, object] | None, resume: bool, overwrite: bool,
                   init_from: str | Path | None, ensemble: int) -> list[TrainResult]:
    """:func:`train_ensemble`'s members, in turn; one model in ``run_dir`` itself."""
    members = []
    for k in range(ensemble):
        member_config = replace(train_config, seed=train_config.seed + k)
        member_dir = run_dir if ensemble == 1 else run_dir / f"member{k + 1}"
        initial_state, description = None, {}
        if init_from is not None:
            start = load_warm_start(init_from, model_config, member_config.seed, preprocess, member=k, ensemble=ensemble)
            initial_state = start.state_dict
            description = {"init_from": str(init_from), "init_source": start.source,
                           "init_contrasts": list(start.initialised)}
            if start.fresh and k == 0:
                log.warning("%s has no encoder for %s; those start from scratch", init_from, ", ".join(start.fresh))
        member_resume = resume and (ensemble == 1 or (member_dir / LAST_NAME).exists())
        members.append(train_model(slices, model_config, member_config, member_dir,
                                   preprocess=preprocess.to_dict(), training_data={**(training_data or {}), **description},
                                   resume=member_resume, overwrite=overwrite, initial_state=initial_state))
    return members
