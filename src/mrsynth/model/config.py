"""Architecture settings of the multi-input synthesis network, stored in every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, get_args

from mrsynth.contrasts import canonical_contrast

FusionKind = Literal["max", "mean"]
FUSIONS: tuple[str, ...] = get_args(FusionKind)
# settings that change only what synthesis does with the trained weights, not the weights themselves
SYNTHESIS_SETTINGS: tuple[str, ...] = ("test_time_flip", "test_time_flip_ap", "slice_smoothing", "calibrate_mean")


@dataclass(frozen=True)
class ModelConfig:
    """What the network is: its input contrasts (in order), target, and layer sizes.

    The defaults follow the paper (Joyce et al. 2017, Fig. 3): a 16-channel latent, one
    U-Net-like encoder per input, an affine spatial transformer and voxel-wise max fusion.
    """

    inputs: tuple[str, ...]
    target: str
    latent_channels: int = 16
    encoder_features: int = 32
    decoder_features: int = 16
    decoder_layers: int = 2  # densely connected 3x3 convolutions of the decoder (the paper's: 2)
    use_spatial_transformer: bool = True
    fusion: FusionKind = "max"
    context_slices: int = 0  # neighbouring slices on each side fed as extra channels (0: the paper's 2D)
    test_time_flip: bool = False  # synthesis averages the output with that of the left-right flipped input
    test_time_flip_ap: bool = False  # ... and over front-back flips too (with test_time_flip: all four flips)
    slice_smoothing: float = 0.0  # synthesis smooths the output across slices: Gaussian sigma, in slices (0: off)
    calibrate_mean: bool = False  # synthesis rescales the output to its inputs' brain mean (inference.calibration)
    cross_synthesis: bool = False  # one extra decoder per input contrast, trained to synthesise the inputs (training only)
    decoder_sees_inputs: bool = False  # the decoder also gets one constant channel per input contrast: 1 if fused, else 0

    def __post_init__(self) -> None:
        inputs = tuple(canonical_contrast(c) for c in self.inputs)
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "target", canonical_contrast(self.target))
        if not inputs:
            raise ValueError("a model needs at least one input contrast")
        if len(set(inputs)) != len(inputs):
            raise ValueError(f"input contrasts repeat: {inputs}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, not {self.fusion!r}")
        if self.latent_channels < 1 or self.encoder_features < 1 or self.decoder_features < 1:
            raise ValueError("layer sizes must be positive")
        if self.decoder_layers < 1:
            raise ValueError(f"decoder_layers must be at least 1, got {self.decoder_layers}")
        if self.context_slices < 0:
            raise ValueError("context_slices must be >= 0")
        if not self.slice_smoothing >= 0:
            raise ValueError(f"slice smoothing (slice_smoothing) must be >= 0, a Gaussian sigma in slices; got {self.slice_smoothing}")

    @property
    def channels_per_input(self) -> int:
        return 1 + 2 * self.context_slices

    @property
    def decoder_in_channels(self) -> int:
        """What the synthesis decoder reads: the latent, and with ``decoder_sees_inputs`` one channel per input."""
        return self.latent_channels + (len(self.inputs) if self.decoder_sees_inputs else 0)

    def with_synthesis_of(self, other: "ModelConfig") -> "ModelConfig":
        """This architecture with ``other``'s synthesis-only settings (:data:`SYNTHESIS_SETTINGS`)."""
        return replace(self, **{name: getattr(other, name) for name in SYNTHESIS_SETTINGS})

    def describe_synthesis(self) -> str:
        """The synthesis-only settings in words (for ``mrsynth models``)."""
        flips = [name for name, on in (("left-right", self.test_time_flip), ("front-back", self.test_time_flip_ap)) if on]
        smoothing = f"Gaussian, sigma {self.slice_smoothing:g} slices" if self.slice_smoothing > 0 else "off"
        return (f"flip averaging: {' and '.join(flips) or 'off'}; smoothing across slices: {smoothing}; "
                f"mean calibration: {'on' if self.calibrate_mean else 'off'}")

    def differences(self, other: "ModelConfig") -> list[tuple[str, Any, Any]]:
        """``(field, this value, other's value)`` for every field in which the two differ."""
        return [(name, getattr(self, name), getattr(other, name)) for name in self.__dataclass_fields__
                if getattr(self, name) != getattr(other, name)]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["inputs"] = list(self.inputs)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["inputs"] = tuple(kwargs["inputs"])
        return cls(**kwargs)


@dataclass(frozen=True)
class LossWeights:
    """Weights of the paper's three cost terms (default 1, 1, 1), and of an optional fused MSE term.

    ``fused_mse`` (0 in the paper) adds the mean squared error of the fused output: the
    evaluation metric is MSE, and a squared loss predicts the conditional mean where MAE predicts
    the median. ``cross_synthesis`` (0 in the paper) weighs the MAE of the model's input decoders
    (``ModelConfig.cross_synthesis``), which synthesise every input contrast the sample has from
    the fused latent and from each latent alone. ``subset_fusion`` (0 in the paper) weighs the MAE +
    MSE of the decoded fusion of each proper subset of two or more of a sample's aligned latents
    (e.g. T1 + T2 of a sample that has T1, T1c and T2), summed like the individual terms, so a
    sample with n inputs adds 2**n - n - 2 of them (3 with three inputs, 10 with four).
    """

    fused_mae: float = 1.0
    latent_variance: float = 1.0
    individual_mae: float = 1.0
    fused_mse: float = 0.0
    cross_synthesis: float = 0.0
    individual_mse: float = 0.0
    subset_fusion: float = 0.0

    def __post_init__(self) -> None:
        if min(self.fused_mae, self.latent_variance, self.individual_mae, self.fused_mse, self.cross_synthesis,
               self.individual_mse, self.subset_fusion) < 0:
            raise ValueError("loss weights must be >= 0")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


__all__ = ["FusionKind", "LossWeights", "ModelConfig", "SYNTHESIS_SETTINGS", "field"]
