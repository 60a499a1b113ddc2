"""The methods an experiment compares, and how each becomes a predictor over a slice set's contrasts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrsynth.baselines import BASELINE_NAMES, Baseline
from mrsynth.evaluation.evaluate import Predictor, all_subsets, subset_label
from mrsynth.inference.synthesizer import Synthesizer
from mrsynth.model import PARTS
from mrsynth.training import Checkpoint

MODEL = "model"
BLEND = "blend"


@dataclass(frozen=True)
class Method:
    """One line of a results table: what is trained, on which inputs, and which subsets it is tested on.

    ``kind`` is ``"model"`` (the proposed network) or a baseline name (``rf``, ``linear``,
    ``dedis``). ``test_subsets`` defaults to the full input set; a model may also be tested on
    every non-empty subset (``Method.model(..., every_subset=True)``). ``initial`` (a checkpoint
    path) and ``trainable`` fine-tune an existing model; ``validate=False`` trains on every
    training subject (no validation hold-out, the best epoch is picked on the training loss).
    Methods with the same :attr:`training_key` in one fold share one trained instance.
    """

    label: str
    kind: str
    inputs: tuple[str, ...]
    test_subsets: tuple[tuple[str, ...], ...]
    spatial_transformer: bool | None = None
    initial: Path | None = None
    trainable: tuple[str, ...] = PARTS
    validate: bool = True
    parts: tuple["Method", ...] = ()
    weights: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in (MODEL, BLEND) and self.kind not in BASELINE_NAMES:
            raise ValueError(f"unknown method kind {self.kind!r}")
        if (self.kind == BLEND) != bool(self.parts) or len(self.parts) != len(self.weights):
            raise ValueError(f"{self.label}: a blend, and only a blend, has parts, one weight each")
        if self.weights and (min(self.weights) < 0 or abs(sum(self.weights) - 1) > 1e-6):
            raise ValueError(f"{self.label}: blend weights must be non-negative and sum to 1, got {list(self.weights)}")
        if any(subset not in part.test_subsets for part in self.parts for subset in self.test_subsets):
            raise ValueError(f"{self.label}: every part of a blend must be tested on the blend's subsets")
        if self.kind != MODEL and self.test_subsets != (self.inputs,):
            raise ValueError(f"the {self.kind} baseline can only be tested on the inputs it was trained on")
        if any(c not in self.inputs for subset in self.test_subsets for c in subset):
            raise ValueError(f"{self.label}: a test subset uses a contrast the method is not trained on")

    @classmethod
    def model(cls, label: str, inputs: tuple[str, ...], every_subset: bool = False, spatial_transformer: bool | None = None,
              initial: Path | None = None, trainable: tuple[str, ...] | None = None, validate: bool = True) -> "Method":
        """The proposed network trained on ``inputs``; tested on all of them, or on every subset."""
        subsets = tuple(all_subsets(inputs)) if every_subset else (tuple(inputs),)
        return cls(label, MODEL, tuple(inputs), subsets, spatial_transformer, initial,
                   trainable or PARTS, validate)

    @classmethod
    def baseline(cls, kind: str, inputs: tuple[str, ...], label: str | None = None) -> "Method":
        """A comparison method fitted for exactly ``inputs``."""
        return cls(label or kind, kind, tuple(inputs), (tuple(inputs),))

    @classmethod
    def blend(cls, label: str, inputs: tuple[str, ...], parts: tuple["Method", ...], weights: tuple[float, ...]) -> "Method":
        """The voxel-wise weighted mean of ``parts``' predictions from exactly ``inputs``."""
        return cls(label, BLEND, tuple(inputs), (tuple(inputs),), parts=tuple(parts), weights=tuple(weights))

    @property
    def training_key(self) -> tuple[object, ...]:
        """What determines the trained instance (methods equal in this share it within a fold)."""
        if self.kind == BLEND:
            return (self.kind, self.inputs, tuple(part.training_key for part in self.parts), self.weights)
        return (self.kind, self.inputs, self.spatial_transformer, self.initial, self.trainable, self.validate)

    @property
    def slug(self) -> str:
        """A folder name for this method's trained instance."""
        parts = [self.kind, subset_label(self.inputs)]
        if self.spatial_transformer is False:
            parts.append("nost")
        if self.initial is not None:
            parts.append("finetuned")
        return "-".join(parts)


def _columns(contrasts: tuple[str, ...], inputs: tuple[str, ...]) -> list[int]:
    missing = [c for c in inputs if c not in contrasts]
    if missing:
        raise ValueError(f"the slice set lacks the method's input(s) {', '.join(missing)}")
    return [contrasts.index(c) for c in inputs]


def model_predictor(checkpoint: Checkpoint, contrasts: tuple[str, ...], device: str = "auto") -> Predictor:
    """A predictor over a slice set's ``contrasts`` that feeds the model its own input channels.

    It synthesises with the checkpoint's synthesis settings (flips, smoothing, calibration).
    """
    synthesizer = Synthesizer(checkpoint, device=device)
    cols = _columns(contrasts, checkpoint.model_config.inputs)

    def predict(stack: np.ndarray, present: np.ndarray) -> np.ndarray:
        return synthesizer.predict_stack(stack[:, cols], np.asarray(present)[cols])

    return predict


def blend_label(model: str, forest_weight: float) -> str:
    """The table row of a model-forest blend, e.g. ``(D) blend of (B) and rf, forest weight 0.3``."""
    prefix = "(D) " if model.startswith("(") else ""
    return f"{prefix}blend of {model} and rf, forest weight {forest_weight:g}"


def blend_predictor(predictors: list[Predictor], weights: tuple[float, ...]) -> Predictor:
    """A predictor whose output is the ``weights``-weighted mean of ``predictors``' outputs."""

    def predict(stack: np.ndarray, present: np.ndarray) -> np.ndarray:
        return sum(weight * predictor(stack, present) for predictor, weight in zip(predictors, weights))

    return predict


def baseline_predictor(baseline: Baseline, contrasts: tuple[str, ...]) -> Predictor:
    """A predictor over a slice set's ``contrasts`` that gives the fitted baseline its own inputs."""
    cols = _columns(contrasts, baseline.inputs)

    def predict(stack: np.ndarray, present: np.ndarray) -> np.ndarray:
        return baseline.predict_volume(stack[:, cols])

    return predict
