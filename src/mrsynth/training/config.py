"""Training settings, stored in every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
import math
from typing import Any, Literal

from mrsynth.contrasts import canonical_contrast
from mrsynth.errors import MrsynthError
from mrsynth.model.config import LossWeights
from mrsynth.training.augmentation import AugmentConfig

Schedule = Literal["constant", "cosine"]


@dataclass(frozen=True)
class SpeedSettings:
    """Fast paths of one training run on one device; ``None`` model options resolve per device in the model."""

    channels_last: bool | None
    batched_encoders: bool | None
    compile: bool
    prefetch: bool
    amp: bool
    fused_optimiser: bool = False  # Adam's whole update in one kernel (CUDA only)
    cudnn_benchmark: bool = False  # cuDNN times its algorithms per convolution shape (CUDA only)


RECIPE_FIELDS = ("batch_size", "learning_rate", "weight_decay", "seed", "input_dropout", "stand_in", "loss_weights",
                 "schedule", "warmup_epochs", "augment")  # not val_fraction: a resumed run keeps its saved split


@dataclass(frozen=True)
class StandIn:
    """One input contrast's images also train another contrast's encoder, where a sample lacks the other.

    For a training sample that has ``source`` but not ``target``, with ``probability`` its
    ``source`` image is moved into the ``target`` slot (``source`` then counts as missing): e.g.
    ``t1`` standing in for ``t1c`` lets the T1c encoder see the subjects that have T1 only.
    """

    source: str
    target: str
    probability: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", canonical_contrast(self.source))
        object.__setattr__(self, "target", canonical_contrast(self.target))
        if self.source == self.target:
            raise ValueError(f"a contrast cannot stand in for itself ({self.source})")
        if not 0.0 < self.probability <= 1.0:
            raise ValueError(f"the stand-in probability must be in (0, 1], got {self.probability}")

    def fits(self, inputs: tuple[str, ...]) -> bool:
        """Whether a model of ``inputs`` has both contrasts, so that this stand-in can act."""
        return self.source in inputs and self.target in inputs

    def require(self, inputs: tuple[str, ...]) -> None:
        """Raise :class:`MrsynthError` naming the contrasts a model of ``inputs`` lacks for this stand-in."""
        missing = [c for c in (self.source, self.target) if c not in inputs]
        if missing:
            raise MrsynthError(f"--stand-in {self.source}:{self.target}: {' and '.join(missing)} "
                               f"{'is' if len(missing) == 1 else 'are'} not among the model's inputs ({', '.join(inputs)})")

    @classmethod
    def parse(cls, spec: str | None, probability: float | None = None) -> "StandIn | None":
        """``"t1:t1c"`` (T1 stands in for T1c) as a :class:`StandIn`; ``None``, ``""``, ``"none"`` or probability 0: none.

        ``probability`` None: the class's default.
        """
        if spec is None or spec.strip().lower() in ("", "none") or probability == 0:
            return None
        source, colon, target = spec.partition(":")
        if not colon or not source.strip() or not target.strip():
            raise ValueError(f"--stand-in must be SOURCE:TARGET, e.g. t1:t1c, not {spec!r}")
        try:
            return cls(source, target) if probability is None else cls(source, target, probability)
        except ValueError as error:
            raise ValueError(f"--stand-in {spec}: {error}") from None


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimiser, schedule, early stopping, device and reproducibility.

    ``input_dropout`` is the probability of hiding each input contrast of a training sample
    (at least one is always kept); 0 reproduces the paper, which trains on every input.
    ``stand_in`` (None in the paper) moves one contrast's images into another's missing slot
    (:class:`StandIn`), drawn before input dropout.

    Speed settings change how, not what, is computed; ``None`` means the device's default
    ``schedule`` is the learning rate over epochs: ``constant`` (the paper) or ``cosine`` (decays
    to 0 at ``epochs``); ``warmup_epochs`` ramps it up linearly, batch by batch, over the first
    epochs (against early collapse to a constant output); ``augment`` the random transforms
    applied to training batches.

    Speed settings change how, not what, is computed; ``None`` means the device's default (see
    :meth:`resolve_speed` and ``benchmarks/README.md`` for the measurements behind them):
    ``channels_last`` (NHWC convolutions), ``batched_encoders`` (one vmapped call for the
    encoders of all contrasts when all are present), ``compile`` (``torch.compile`` of the
    encoders, spatial transformer and decoder), ``prefetch`` (batches gathered by a background
    thread), ``cudnn_benchmark`` (cuDNN times its algorithms for each convolution shape during
    training: opt-in, not yet measured). ``amp`` is bf16 autocast on CUDA. ``ddp`` trains with
    DistributedDataParallel on the processes started by ``torchrun``: ``None`` does so whenever
    torchrun's ``WORLD_SIZE`` is above 1.
    """

    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    val_fraction: float = 0.2
    patience: int = 8
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    input_dropout: float = 0.0
    stand_in: StandIn | None = None
    max_batches_per_epoch: int | None = None
    loss_weights: LossWeights = field(default_factory=LossWeights)
    schedule: Schedule = "constant"
    warmup_epochs: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    progress: bool = True
    channels_last: bool | None = None
    batched_encoders: bool | None = None
    compile: bool | None = None
    prefetch: bool | None = None
    cudnn_benchmark: bool = False
    ddp: bool | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ValueError("epochs, batch size and patience must be at least 1")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError("val_fraction must be in [0, 1)")
        if not 0.0 <= self.input_dropout < 1.0:
            raise ValueError("input_dropout must be in [0, 1)")
        if self.learning_rate <= 0:
            raise ValueError("learning rate must be positive")
        if self.warmup_epochs < 0:
            raise ValueError("warmup_epochs must be >= 0")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine', not {self.schedule!r}")

    def learning_rate_at(self, epoch: int, progress: float = 0.0) -> float:
        """The learning rate of 0-based ``epoch``, ``progress`` (0-1) of the way through it."""
        rate = self.learning_rate
        if self.schedule == "cosine":
            rate *= 0.5 * (1.0 + math.cos(math.pi * epoch / self.epochs))
        if epoch < self.warmup_epochs:
            rate *= (epoch + progress) / self.warmup_epochs
        return max(rate, 1e-3 * self.learning_rate) if epoch < self.warmup_epochs else rate

    def resolve_speed(self, device_type: str) -> "SpeedSettings":
        """The speed settings in force on a device of ``device_type``, every ``None`` decided."""
        return SpeedSettings(
            # channels_last: off for training everywhere. On CUDA (H200, bf16) NHWC weights made cuDNN
            # pick a slow weight-gradient kernel: bf16 with NHWC trained at 982 slices/s, bf16 alone
            # at 1004 in the same run, and 1096 before the weights followed the option
            # (benchmarks/README.md). Synthesis keeps the device default (NHWC on CUDA, 1.08x).
            channels_last=bool(self.channels_last),
            batched_encoders=self.batched_encoders,
            # compile: on 2 CPU cores it did not pay back; on CUDA it gave 1.19x (H200), but shapes vary
            # with the contrasts present, each recompiles, and the compile time is unmeasured: opt-in.
            compile=bool(self.compile),
            prefetch=device_type == "cuda" if self.prefetch is None else self.prefetch,
            amp=self.amp and device_type == "cuda",
            fused_optimiser=device_type == "cuda",  # the same update in one kernel; a small gain on CUDA
            cudnn_benchmark=self.cudnn_benchmark and device_type == "cuda",
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def for_inputs(self, inputs: tuple[str, ...]) -> "TrainConfig":
        """This config for a model of ``inputs``: a stand-in that needs a contrast the model lacks is dropped."""
        return self if self.stand_in is None or self.stand_in.fits(inputs) else replace(self, stand_in=None)

    def recipe_changes(self, other: "TrainConfig") -> list[str]:
        """The settings that shape the optimisation (not length, device or speed) that differ in ``other``.

        E.g. ``["learning_rate 0.001 -> 0.0005"]``; used to warn when a run is resumed with other settings.
        """
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{name} {mine[name]} -> {theirs[name]}" for name in RECIPE_FIELDS if mine[name] != theirs[name]]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        kwargs = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if isinstance(kwargs.get("loss_weights"), dict):
            kwargs["loss_weights"] = LossWeights(**kwargs["loss_weights"])
        if isinstance(kwargs.get("augment"), dict):
            kwargs["augment"] = AugmentConfig.from_dict(kwargs["augment"])
        if isinstance(kwargs.get("stand_in"), dict):
            kwargs["stand_in"] = StandIn(**kwargs["stand_in"])
        return cls(**kwargs)
