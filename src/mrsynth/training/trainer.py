"""The training loop: Adam, subject-wise validation, early stopping, atomic checkpoints, resume.

Fast paths (channels-last, batched encoders, ``torch.compile``, prefetch, bf16 autocast on CUDA)
come from :meth:`TrainConfig.resolve_speed`; under ``torchrun`` the loop runs data-parallel
(:mod:`mrsynth.training.distributed`) with rank 0 writing every file.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from mrsynth.data.preprocessing import PreprocessConfig
from mrsynth.data.slices import SliceSet
from mrsynth.errors import MrsynthError
from mrsynth.model import PARTS, TERM_NAMES, LossTerms, LossWeights, ModelConfig, MultiInputSynthesisNet, synthesis_loss
from mrsynth.model.network import ExecutionOptions
from mrsynth.training.augmentation import SliceAugmenter
from mrsynth.training.batches import Batch, context_rows, iterate_batches, prefetch, rank_share, stand_in_eligible
from mrsynth.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from mrsynth.training.config import SpeedSettings, StandIn, TrainConfig
from mrsynth.training.distributed import (
    DistributedContext,
    all_reduce_sums,
    any_rank,
    broadcast_object,
    setup_distributed,
    teardown_distributed,
    wrap_model,
)
from mrsynth.training.optimiser import load_optimiser_state, make_optimiser
from mrsynth.training.splits import split_subjects

log = logging.getLogger(__name__)

BEST_NAME, LAST_NAME, HISTORY_NAME = "model.pt", "last.pt", "history.csv"
TERMS = TERM_NAMES


def progress_terms(values: dict[str, float], weights: LossWeights) -> dict[str, str]:
    """The cost terms shown on the progress bar: the paper's three, and the optional ones that are weighted in."""
    shown = {"loss": "total", "mae": "fused_mae", "mvv": "latent_variance", "ind": "individual_mae"}
    if weights.fused_mse > 0:
        shown["mse"] = "fused_mse"
    if weights.individual_mse > 0:
        shown["ind_mse"] = "individual_mse"
    if weights.subset_fusion > 0:
        shown["subsets"] = "subset_fusion"
    if weights.cross_synthesis > 0:
        shown["cross"] = "cross_mae"
    return {label: f"{values[name]:.4f}" for label, name in shown.items()}


@dataclass
class TrainResult:
    """Where a run left its files and how it went."""

    run_dir: Path
    best_checkpoint: Path
    best_epoch: int
    best_value: float
    history: list[dict[str, float]] = field(default_factory=list)
    train_subjects: list[str] = field(default_factory=list)
    val_subjects: list[str] = field(default_factory=list)
    members: list["TrainResult"] = field(default_factory=list)  # an ensemble's runs; best_checkpoint averages them


def resolve_device(name: str) -> torch.device:
    """``"auto"`` picks CUDA when available, else CPU; other names go to ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MrsynthError(f"--device {name}: CUDA is not available on this machine (use --device cpu or auto)")
    return device


def _autocast(device: torch.device, enabled: bool):
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def _rows_of(slices: SliceSet, subjects: list[str]) -> np.ndarray:
    ids = [slices.subjects.index(s) for s in subjects]
    return np.flatnonzero(np.isin(slices.subject, ids))


def build_model(model_config: ModelConfig, speed: SpeedSettings, device: torch.device,
                initial_state: dict[str, torch.Tensor] | None = None) -> MultiInputSynthesisNet:
    """The network on ``device`` with the fast paths of ``speed`` (weights from ``initial_state`` if given).

    With ``speed.compile`` the spatial transformer, the decoder(s) and (unless the vmapped batched
    encoders are in force) each encoder are compiled in place, so state-dict keys do not change.
    """
    execution = ExecutionOptions(speed.channels_last, speed.batched_encoders).resolve(device.type)
    model = MultiInputSynthesisNet(model_config, execution)
    if initial_state is not None:
        model.load_state_dict(initial_state)
    model.place(device)
    if speed.compile:
        parts = [model.decoder, model.spatial_transformer, *(model.input_decoders or ())]
        if not execution.batched_encoders:
            parts.extend(model.encoders)
        for part in parts:
            if part is not None:
                part.compile()
    return model


def batch_loss(model: torch.nn.Module, batch: Batch, config: TrainConfig) -> LossTerms:
    """The cost of ``model`` on ``batch``, decoding what ``config.loss_weights`` needs."""
    output = model(batch.images, batch.present, decode_subsets=config.loss_weights.subset_fusion > 0)
    return synthesis_loss(output, batch.target, config.loss_weights, inputs=batch.input_targets,
                          available=batch.available)


def train_step(model: torch.nn.Module, optimiser: torch.optim.Optimizer, batch: Batch, config: TrainConfig,
               device: torch.device, amp: bool) -> LossTerms:
    """One Adam step on ``batch`` (its loss scaled by ``batch.weight``); returns the unscaled terms."""
    with _autocast(device, amp):
        terms = batch_loss(model, batch, config)
    optimiser.zero_grad(set_to_none=True)
    (terms.total if batch.weight == 1.0 else terms.total * batch.weight).backward()
    optimiser.step()
    return terms


def evaluate_loss(model: MultiInputSynthesisNet, slices: SliceSet, rows: np.ndarray, config: TrainConfig,
                  device: torch.device, neighbours: np.ndarray | None = None,
                  context: DistributedContext = DistributedContext()) -> dict[str, float]:
    """Average the cost terms over ``rows`` (weighted by batch size), without gradients.

    With several ranks each evaluates its contiguous share of ``rows`` and the sums are all-reduced.
    """
    model.eval()
    total_rows = len(rows)
    if context.enabled:
        rows = np.asarray(rows)[rank_share(len(rows), context.rank, context.world_size)]
    sums = dict.fromkeys(TERMS, 0.0)
    with torch.inference_mode(), _autocast(device, config.amp):
        for batch in iterate_batches(slices, rows, config.batch_size, device, neighbours=neighbours):
            terms = batch_loss(model, batch, config).as_floats()
            for name in TERMS:
                sums[name] += terms[name] * len(batch.target)
    sums = all_reduce_sums(sums, context, device)
    return {name: value / max(1, total_rows) for name, value in sums.items()}


def _write_history(path: Path, history: list[dict[str, float]]) -> None:
    if not history:
        return
    tmp = path.with_suffix(".csv.tmp")
    columns = list(dict.fromkeys(name for row in history for name in row))  # rows of older versions may lack some
    with tmp.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)
    tmp.replace(path)


@contextmanager
def cudnn_autotuning(enabled: bool) -> Iterator[None]:
    """Inside the block, cuDNN times its algorithms for each new convolution shape (``cudnn.benchmark``).

    The flag is process-wide, so it is restored on leaving; ``enabled=False`` leaves it as it is.
    """
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = before or enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def _check_same_subjects(last_path: Path, saved: list[str], now: tuple[str, ...]) -> None:
    """A run is resumed on the subjects it was started with; :class:`MrsynthError` names the difference."""
    added, gone = sorted(set(now) - set(saved)), sorted(set(saved) - set(now))
    if added or gone:
        parts = ([f"new now: {', '.join(added)}"] if added else []) + ([f"missing now: {', '.join(gone)}"] if gone else [])
        raise MrsynthError(f"{last_path}: the run being resumed was trained on other subjects ({'; '.join(parts)}); "
                           "start a new run instead")


def _stand_in_slots(stand_in: StandIn | None, inputs: tuple[str, ...]) -> tuple[int, int, float] | None:
    """The input slots (source, target) of ``stand_in`` in a model of ``inputs``, and its probability."""
    if stand_in is None:
        return None
    stand_in.require(inputs)
    return inputs.index(stand_in.source), inputs.index(stand_in.target), stand_in.probability


def train_model(slices: SliceSet, model_config: ModelConfig, config: TrainConfig, run_dir: str | Path, *,
                preprocess: dict[str, Any] | None = None, training_data: dict[str, Any] | None = None,
                resume: bool = False, overwrite: bool = False, initial_state: dict[str, torch.Tensor] | None = None,
                trainable: tuple[str, ...] = PARTS,
                val_subjects: list[str] | None = None) -> TrainResult:
    """Train the network on ``slices`` and keep the best checkpoint (lowest validation fused MAE).

    ``trainable`` names the parts whose weights are updated (default: every one of
    :data:`~mrsynth.model.PARTS`; ``("decoder",)`` fine-tunes the decoder alone, as in the paper's
    transfer experiment); ``initial_state`` starts from given
    weights. With ``resume`` the run continues from ``run_dir/last.pt``. Launched by ``torchrun``
    (or with ``config.ddp``), every process calls this and the ranks train one model together.
    """
    context, device = setup_distributed(config.ddp, config.device)
    try:
        device = device or resolve_device(config.device)
        with cudnn_autotuning(config.resolve_speed(device.type).cudnn_benchmark):
            result = _train(slices, model_config, config, Path(run_dir), context, device, preprocess=preprocess,
                            training_data=training_data, resume=resume, overwrite=overwrite,
                            initial_state=initial_state, trainable=trainable, val_subjects=val_subjects)
    except BaseException:
        teardown_distributed(context, wait=False)  # the other ranks may never reach a barrier
        raise
    teardown_distributed(context)
    return result


def _train(slices: SliceSet, model_config: ModelConfig, config: TrainConfig, run_dir: Path,
           context: DistributedContext, device: torch.device, *, preprocess: dict[str, Any] | None,
           training_data: dict[str, Any] | None, resume: bool, overwrite: bool,
           initial_state: dict[str, torch.Tensor] | None, trainable: tuple[str, ...],
           val_subjects: list[str] | None) -> TrainResult:
    """:func:`train_model` on this process's device, as rank ``context.rank`` of ``context.world_size``."""
    best_path, last_path = run_dir / BEST_NAME, run_dir / LAST_NAME
    main = context.is_main
    if slices.contrasts != model_config.inputs:
        slices = slices.select_contrasts(model_config.inputs)
    if len(slices) == 0:
        raise MrsynthError("no training slices: no subject has any of the model's input contrasts")
    stand_in = _stand_in_slots(config.stand_in, model_config.inputs)
    if any_rank(main and resume and not last_path.exists(), context, device):
        raise MrsynthError(f"--resume: {last_path} does not exist, so there is no run to continue")
    if any_rank(main and best_path.exists() and not (resume or overwrite), context, device):
        raise MrsynthError(f"{run_dir} already holds a trained model; use --resume to continue it or choose another --out")
    speed = config.resolve_speed(device.type)
    torch.manual_seed(config.seed)
    model = build_model(model_config, speed, device, initial_state)
    for name, module in model.named_children():
        for parameter in module.parameters():
            parameter.requires_grad_(name in trainable)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimiser = make_optimiser(parameters, config, speed)

    if val_subjects is None:
        train_subjects, val_subjects = split_subjects(slices.subjects, config.val_fraction, config.seed)
    else:
        train_subjects = [s for s in slices.subjects if s not in val_subjects]
    start_epoch, best_value, best_epoch, stale, history = 0, float("inf"), -1, 0, []
    saved_run = load_checkpoint(last_path) if main and resume and last_path.exists() else None
    saved_run = broadcast_object(saved_run, context, device)  # rank 0's file: no shared filesystem needed
    if saved_run is not None:
        saved, state = saved_run
        # synthesis-only settings (flip averaging, mean calibration): a finished run can be resumed to change them
        differing = saved.model_config.with_synthesis_of(model_config).differences(model_config)
        if differing:
            raise MrsynthError(f"{last_path}: the run being resumed has a different model configuration ("
                               + ", ".join(f"{name}: {there} there, {here} now" for name, there, here in differing) + ")")
        preprocess = preprocess or saved.preprocess  # resuming without saying keeps the saved preprocessing
        if saved.preprocess and PreprocessConfig.from_dict(saved.preprocess) != PreprocessConfig.from_dict(preprocess):
            raise MrsynthError(f"{last_path}: the run being resumed was trained on other preprocessing "
                               f"({saved.preprocess}, now {preprocess}); start a new run instead")
        changed = saved.train_config.recipe_changes(config) if saved.train_config is not None else []
        if changed and main:
            log.warning("resuming %s with other training settings than it was started with: %s", last_path,
                        "; ".join(changed))
        planned = saved.train_config.epochs if saved.train_config is not None else config.epochs
        if main and config.schedule == "cosine" and planned != config.epochs:
            log.warning("resuming %s for %d epochs, where it was started for %d: its cosine learning rate now follows "
                        "the new length, so the rate jumps at the epoch it resumes from", last_path, config.epochs, planned)
        model.load_state_dict(saved.state_dict)
        load_optimiser_state(optimiser, state["optimiser"], speed)
        if main and saved.model_config != model_config and best_path.exists():  # only synthesis settings can differ here
            best, _ = load_checkpoint(best_path)
            best.model_config = model_config
            save_checkpoint(best, best_path)
        start_epoch, best_value, best_epoch = int(state["epoch"]) + 1, float(state["best_value"]), int(state["best_epoch"])
        stale, history = int(state["stale"]), list(state["history"])
        train_subjects, val_subjects = list(state["train_subjects"]), list(state["val_subjects"])
        _check_same_subjects(last_path, train_subjects + val_subjects, slices.subjects)
        log.info("resuming %s at epoch %d", run_dir, start_epoch + 1)
    net = wrap_model(model, context, device)
    train_rows, val_rows = _rows_of(slices, train_subjects), _rows_of(slices, val_subjects)
    neighbours = context_rows(slices, model_config.context_slices) if model_config.context_slices else None
    monitor = "val_fused_mae" if len(val_rows) else "train_fused_mae"
    data_info = {**(training_data or {}), "train_subjects": train_subjects, "val_subjects": val_subjects,
                 "input_dropout": config.input_dropout, "monitor": monitor}
    if context.enabled:
        data_info["world_size"] = context.world_size
    if stand_in is not None:
        source, target, _ = stand_in
        data_info["stand_in_slices"] = int(stand_in_eligible(np.asarray(slices.present[train_rows]), source, target).sum())
        if main and not data_info["stand_in_slices"]:
            log.warning("--stand-in %s:%s: no training slice has %s without %s, so the stand-in never applies",
                        config.stand_in.source, config.stand_in.target, config.stand_in.source, config.stand_in.target)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(
            {"model": model_config.to_dict(), "train": config.to_dict(), "preprocess": preprocess or {}, "data": data_info},
            indent=2, default=str))
    progress = config.progress and main

    def checkpoint(epoch: int, metrics: dict[str, float]) -> Checkpoint:
        return Checkpoint(model_config=model_config, state_dict=model.state_dict(), preprocess=preprocess or {},
                          train_config=config, epoch=epoch, metrics=metrics, training_data=data_info)

    for epoch in range(start_epoch, config.epochs):
        if stale >= config.patience:
            break
        started = time.perf_counter()
        model.train()
        for group in optimiser.param_groups:
            group["lr"] = config.learning_rate_at(epoch)
        rng = np.random.default_rng([config.seed, epoch])
        sums, seen = dict.fromkeys(TERMS, 0.0), 0
        batches = iterate_batches(slices, train_rows, config.batch_size, device, rng, config.input_dropout,
                                  neighbours, config.max_batches_per_epoch, rank=context.rank, world=context.world_size,
                                  stand_in=stand_in)
        if config.augment.enabled:  # seeded per epoch and rank, so that --resume replays the same draws
            batches = map(SliceAugmenter(config.augment, seed=(config.seed * 100003 + epoch) * 64 + context.rank), batches)
        if speed.prefetch:
            batches = prefetch(batches, device=device)
        total_batches = -(-len(train_rows) // config.batch_size)
        if config.max_batches_per_epoch is not None:
            total_batches = min(total_batches, config.max_batches_per_epoch)
        bar = tqdm(batches, total=total_batches, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False,
                   disable=not progress)
        for step, batch in enumerate(bar):
            if epoch < config.warmup_epochs:
                for group in optimiser.param_groups:
                    group["lr"] = config.learning_rate_at(epoch, step / total_batches)
            values = train_step(net, optimiser, batch, config, device, speed.amp).as_floats()
            for name in TERMS:
                sums[name] += values[name] * batch.samples
            seen += batch.samples
            bar.set_postfix(progress_terms(values, config.loss_weights))
        totals = all_reduce_sums({**sums, "seen": float(seen)}, context, device)
        row: dict[str, float] = {"epoch": epoch + 1}
        row.update({f"train_{k}": totals[k] / max(1.0, totals["seen"]) for k in TERMS})
        if len(val_rows):
            row.update({f"val_{k}": v for k, v in
                        evaluate_loss(model, slices, val_rows, config, device, neighbours, context).items()})
        row["seconds"] = time.perf_counter() - started
        history.append(row)
        improved = row[monitor] < best_value
        if improved:
            best_value, best_epoch, stale = row[monitor], epoch + 1, 0
            if main:
                save_checkpoint(checkpoint(epoch + 1, {monitor: best_value}), best_path)
        else:
            stale += 1
        if main:
            save_checkpoint(checkpoint(epoch + 1, {monitor: row[monitor]}), last_path, extra={
                "optimiser": optimiser.state_dict(), "epoch": epoch, "best_value": best_value, "best_epoch": best_epoch,
                "stale": stale, "history": history, "train_subjects": train_subjects, "val_subjects": val_subjects})
            _write_history(run_dir / HISTORY_NAME, history)
        if progress:
            summary = "  ".join(f"{k}={v:.4f}" for k, v in row.items() if k not in ("epoch",))
            tqdm.write(f"epoch {epoch + 1}: {summary}{'  *best' if improved else ''}")
    return TrainResult(run_dir=run_dir, best_checkpoint=best_path, best_epoch=best_epoch, best_value=best_value,
                       history=history, train_subjects=train_subjects, val_subjects=val_subjects)
