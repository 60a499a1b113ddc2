"""Named bundles of the settings that decide how well a model does: the paper's, and ours.

A preset fills in the model and training settings a user did not give; options given
explicitly always win (:meth:`Preset.apply`). ``paper`` reproduces Joyce et al. (2017): 2D
slices, the three-term cost, constant learning rate, early stopping on held-out subjects, no
augmentation, encoders 32 features wide at the first level (our reading of the paper's Fig. 3, which
gives no numbers in the text). ``default`` adds the levers that lowered the cross-validated error in the ablation
of ``README.md`` (section "Beyond the paper").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from mrsynth.data.preprocessing import PreprocessConfig
from mrsynth.errors import MrsynthError
from mrsynth.model.config import ModelConfig
from mrsynth.training.augmentation import AugmentConfig
from mrsynth.training.config import Schedule, StandIn, TrainConfig


INPUT_NORMALISATIONS = ("mean", "percentile")


@dataclass(frozen=True)
class Levers:
    """The settings a preset fixes; ``None`` in an override means "keep the preset's"."""

    encoder_features: int | None = None
    context_slices: int | None = None
    test_time_flip: bool | None = None
    test_time_flip_ap: bool | None = None  # synthesis also averages over front-back flips
    slice_smoothing: float | None = None  # synthesis smooths across slices: Gaussian sigma in slices (0: off)
    augment: bool | None = None
    augment_flip_ap: float | None = None  # probability of a front-back flip in augmentation (with augment)
    augment_elastic: float | None = None  # probability of an elastic deformation in augmentation (with augment)
    schedule: Schedule | None = None
    warmup_epochs: int | None = None
    fused_mse: float | None = None
    val_fraction: float | None = None
    input_dropout: float | None = None
    stand_in: str | None = None  # "t1:t1c": T1 images also train the T1c encoder where T1c is missing ("none": off)
    stand_in_probability: float | None = None  # probability per eligible training sample
    init_from: str | None = None  # "simulator", "none", or a model (see warm_start.resolve_init)
    input_normalisation: str | None = None  # "mean" (the paper's) or "percentile" (see data.preprocessing)
    latent_variance: float | None = None  # weight of the cost's latent-variance term (the paper's: 1)
    calibrate_mean: bool | None = None  # synthesis rescales the output to the inputs' brain mean (mean scaling only)
    cross_synthesis: float | None = None  # weight of input decoders' MAE (0: none; model.cross_synthesis)
    individual_mse: float | None = None  # weight of an MSE term on each latent decoded alone (the paper's: 0)
    subset_fusion: float | None = None  # weight of MAE + MSE of each proper subset's fusion decoded (the paper's: 0; the default's: 1)
    decoder_sees_inputs: bool | None = None  # the decoder also reads which inputs were fused (the paper's: False; the default's: True)
    ensemble: int | None = None  # models trained with seeds seed, seed + 1, ... and averaged at synthesis (the paper's: 1)

    def over(self, base: "Levers") -> "Levers":
        """These levers where set, ``base``'s elsewhere."""
        return Levers(**{name: getattr(base, name) if getattr(self, name) is None else getattr(self, name)
                         for name in self.__dataclass_fields__})

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class Preset:
    """A named, complete set of :class:`Levers` with a one-line description."""

    name: str
    description: str
    levers: Levers = field(default_factory=Levers)

    def resolve(self, overrides: Levers | None = None) -> Levers:
        """This preset's levers with ``overrides`` (options the user gave) on top."""
        return (overrides or Levers()).over(self.levers)

    def apply(self, model: ModelConfig, train: TrainConfig, overrides: Levers | None = None) -> tuple[ModelConfig, TrainConfig]:
        """``model`` and ``train`` with this preset's levers (and ``overrides``) written into them."""
        levers = self.resolve(overrides)
        if levers.cross_synthesis is not None and levers.cross_synthesis < 0:
            raise ValueError(f"the cross-synthesis weight must be >= 0, got {levers.cross_synthesis}")
        model = replace(model, encoder_features=levers.encoder_features, context_slices=levers.context_slices,
                        test_time_flip=levers.test_time_flip, test_time_flip_ap=levers.test_time_flip_ap,
                        slice_smoothing=levers.slice_smoothing, calibrate_mean=self.calibrates(overrides),
                        cross_synthesis=bool(levers.cross_synthesis), decoder_sees_inputs=bool(levers.decoder_sees_inputs))
        train = replace(train, schedule=levers.schedule, warmup_epochs=levers.warmup_epochs, val_fraction=levers.val_fraction,
                        input_dropout=levers.input_dropout, stand_in=self.stand_in(model.inputs, overrides),
                        augment=replace(train.augment, enabled=bool(levers.augment), flip_ap=levers.augment_flip_ap,
                                        elastic=levers.augment_elastic),
                        loss_weights=replace(train.loss_weights, fused_mse=levers.fused_mse,
                                             latent_variance=levers.latent_variance,
                                             cross_synthesis=levers.cross_synthesis or 0.0,
                                             individual_mse=levers.individual_mse,
                                             subset_fusion=levers.subset_fusion))
        return model, train

    def stand_in(self, inputs: tuple[str, ...], overrides: Levers | None = None) -> StandIn | None:
        """The stand-in for a model of ``inputs``: the user's, or the preset's where the model has both contrasts.

        A preset's stand-in is dropped for a model without both of its contrasts; one the
        user asked for that names a contrast the model lacks is an error (:class:`MrsynthError`).
        """
        levers = self.resolve(overrides)
        stand_in = StandIn.parse(levers.stand_in, levers.stand_in_probability)
        if stand_in is None or stand_in.fits(inputs):
            return stand_in
        if overrides is not None and overrides.stand_in is not None:
            stand_in.require(inputs)
        return None

    def ensemble_size(self, overrides: Levers | None = None) -> int:
        """How many models (seeds ``seed``, ``seed + 1``, ...) are trained and averaged; at least 1."""
        size = self.resolve(overrides).ensemble
        if size is None or size < 1:
            raise ValueError(f"an ensemble needs at least 1 model, got {size}")
        return size

    def calibrates(self, overrides: Levers | None = None) -> bool:
        """Whether synthesis calibrates the output's mean: the preset's choice, or the user's.

        Calibration needs the inputs scaled by their brain mean, like the target: with percentile
        scaling the preset's calibration is dropped, and asking for both is an error (:class:`MrsynthError`).
        """
        levers = self.resolve(overrides)
        if levers.input_normalisation != "percentile":
            return bool(levers.calibrate_mean)
        if overrides is not None and overrides.calibrate_mean:
            raise MrsynthError("mean calibration needs the inputs scaled by their brain mean; "
                             "it cannot be combined with percentile input scaling")
        return False

    def preprocess(self, config: PreprocessConfig, overrides: Levers | None = None) -> PreprocessConfig:
        """``config`` with this preset's (or the overriding) scaling of the inputs."""
        chosen = self.resolve(overrides).input_normalisation
        if chosen not in (None, *INPUT_NORMALISATIONS):
            raise ValueError(f"input normalisation must be one of {', '.join(INPUT_NORMALISATIONS)}, got {chosen!r}")
        return replace(config, input_normalisation=chosen)


PAPER = Preset("paper", "Joyce et al. 2017 as published: 2D, MAE cost, constant learning rate, early stopping, no augmentation",
               Levers(encoder_features=32, context_slices=0, test_time_flip=False, test_time_flip_ap=False, slice_smoothing=0.0, augment=False, augment_flip_ap=0.0, augment_elastic=0.0, schedule="constant", warmup_epochs=0, fused_mse=0.0,
                      val_fraction=0.2, input_dropout=0.0, stand_in="none", stand_in_probability=0.5, init_from="none", input_normalisation="mean", latent_variance=1.0,
                      calibrate_mean=False, cross_synthesis=0.0, individual_mse=0.0, subset_fusion=0.0, decoder_sees_inputs=False, ensemble=1))
DEFAULT = Preset("default", "the paper's model with the levers that helped in our ablation (README, 'Beyond the paper')",
                 Levers(encoder_features=16, context_slices=0, test_time_flip=True, test_time_flip_ap=True, slice_smoothing=1.5, augment=True, augment_flip_ap=0.5, augment_elastic=0.0, schedule="cosine", warmup_epochs=0, fused_mse=1.0,
                        val_fraction=0.0, input_dropout=0.0, stand_in="none", stand_in_probability=0.5, init_from="simulator", input_normalisation="mean",
                        latent_variance=1.0, calibrate_mean=True, cross_synthesis=0.0, individual_mse=1.0, subset_fusion=1.0, decoder_sees_inputs=True, ensemble=2))
PRESETS: dict[str, Preset] = {preset.name: preset for preset in (DEFAULT, PAPER)}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; a clear error lists the others."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


__all__ = ["AugmentConfig", "DEFAULT", "Levers", "PAPER", "PRESETS", "Preset", "get_preset"]
