"""One-file checkpoints that carry the weights and everything needed to use them."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

import mrsynth
from mrsynth.errors import CheckpointError
from mrsynth.model import ModelConfig, MultiInputSynthesisNet
from mrsynth.training.config import TrainConfig

CHECKPOINT_FORMAT = "mrsynth-checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """Weights plus the contrasts, preprocessing and settings they were trained with.

    ``members`` holds the weights of further networks of the same configuration (an ensemble,
    e.g. over seeds): synthesis averages all of them (:func:`combine_checkpoints`).
    """

    model_config: ModelConfig
    state_dict: dict[str, torch.Tensor]
    preprocess: dict[str, Any] = field(default_factory=dict)
    train_config: TrainConfig | None = None
    epoch: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    training_data: dict[str, Any] = field(default_factory=dict)
    mrsynth_version: str = mrsynth.__version__
    members: list[dict[str, torch.Tensor]] = field(default_factory=list)

    def build_model(self, device: torch.device | str = "cpu",
                    state_dict: dict[str, torch.Tensor] | None = None) -> MultiInputSynthesisNet:
        """Instantiate the network with these weights (or ``state_dict``), in eval mode."""
        model = MultiInputSynthesisNet(self.model_config)
        model.load_state_dict(self.state_dict if state_dict is None else state_dict)
        return model.place(device).eval()

    def build_models(self, device: torch.device | str = "cpu") -> list[MultiInputSynthesisNet]:
        """The network and every ensemble member, in eval mode."""
        return [self.build_model(device, state) for state in [self.state_dict, *self.members]]

    def to_payload(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "format_version": FORMAT_VERSION,
            "mrsynth_version": self.mrsynth_version,
            "model_config": self.model_config.to_dict(),
            "preprocess": self.preprocess,
            "train_config": None if self.train_config is None else self.train_config.to_dict(),
            "epoch": self.epoch,
            "metrics": self.metrics,
            "training_data": self.training_data,
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict.items()},
            "members": [{k: v.detach().cpu() for k, v in state.items()} for state in self.members],
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any], source: str = "checkpoint") -> "Checkpoint":
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{source}: not an mrsynth checkpoint")
        version = payload.get("format_version")
        if version != FORMAT_VERSION:
            raise CheckpointError(
                f"{source}: checkpoint format version {version} (written by mrsynth "
                f"{payload.get('mrsynth_version', '?')}) is not supported by mrsynth {mrsynth.__version__}, "
                f"which reads version {FORMAT_VERSION}"
            )
        try:
            train = payload.get("train_config")
            return cls(
                model_config=ModelConfig.from_dict(payload["model_config"]),
                state_dict=payload["state_dict"],
                preprocess=payload.get("preprocess", {}),
                train_config=None if train is None else TrainConfig.from_dict(train),
                epoch=int(payload.get("epoch", 0)),
                metrics=dict(payload.get("metrics", {})),
                training_data=dict(payload.get("training_data", {})),
                mrsynth_version=str(payload.get("mrsynth_version", "?")),
                members=list(payload.get("members", [])),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"{source}: checkpoint is incomplete or inconsistent ({error})") from None


def combine_checkpoints(checkpoints: list[Checkpoint], names: list[str] | None = None) -> Checkpoint:
    """One ensemble checkpoint from models of the same configuration and preprocessing.

    The first model's settings are kept; ``training_data["ensemble"]`` records every member's
    epoch, metrics and training data. Models trained with and without cross-synthesis mix: their
    training-only input decoders are dropped. Raises ``CheckpointError`` naming the first that differs.
    """
    if not checkpoints:
        raise CheckpointError("an ensemble needs at least one model")
    names = names or [f"model {i + 1}" for i in range(len(checkpoints))]
    if len({c.model_config.cross_synthesis for c in checkpoints}) > 1:  # some with input decoders, some without
        checkpoints = [without_input_decoders(c) for c in checkpoints]
    first = checkpoints[0]
    for name, other in zip(names[1:], checkpoints[1:]):
        differing = other.model_config.with_synthesis_of(first.model_config).differences(first.model_config)  # flip, calibration: first's
        if differing:
            raise CheckpointError(f"{name}: its model configuration differs from {names[0]}'s ("
                                  + ", ".join(f"{field}: {theirs} there, {ours} in {names[0]}" for field, theirs, ours in differing)
                                  + "), so they cannot be averaged")
        if other.preprocess != first.preprocess:
            raise CheckpointError(f"{name}: its preprocessing differs from {names[0]}'s, so they cannot be averaged")
    states = [state for c in checkpoints for state in [c.state_dict, *c.members]]
    record = [{"name": name, "epoch": c.epoch, "metrics": c.metrics, "training_data": c.training_data}
              for name, c in zip(names, checkpoints)]
    return Checkpoint(model_config=first.model_config, state_dict=states[0], preprocess=first.preprocess,
                      train_config=first.train_config, epoch=first.epoch, metrics=first.metrics,
                      training_data={**first.training_data, "ensemble": record}, members=states[1:])


def without_input_decoders(checkpoint: Checkpoint) -> Checkpoint:
    """``checkpoint`` without its cross-synthesis input decoders, which only training uses."""
    if not checkpoint.model_config.cross_synthesis:
        return checkpoint
    def strip(state: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in state.items() if not key.startswith("input_decoders.")}
    return replace(checkpoint, model_config=replace(checkpoint.model_config, cross_synthesis=False),
                   state_dict=strip(checkpoint.state_dict), members=[strip(m) for m in checkpoint.members])


def atomic_torch_save(payload: Any, path: Path) -> None:
    """Write with ``torch.save`` to a temporary file beside ``path``, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(payload, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(checkpoint: Checkpoint, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Save atomically; ``extra`` (optimiser state, early-stopping counters) is kept for ``--resume``."""
    payload = checkpoint.to_payload()
    if extra:
        payload["resume_state"] = extra
    atomic_torch_save(payload, Path(path))
    return Path(path)


def load_checkpoint(path: str | Path) -> tuple[Checkpoint, dict[str, Any]]:
    """Load a checkpoint and its resume state; raises ``CheckpointError`` with the reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a corrupt or foreign file
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(error).__name__}: {str(error).splitlines()[0][:200]})") from None
    checkpoint = Checkpoint.from_payload(payload, source=str(path))
    return checkpoint, dict(payload.get("resume_state") or {})
