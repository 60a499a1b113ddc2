"""One simulated subject: random anatomy, optional lesion, every requested contrast."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mrsynth.contrasts import canonical_contrast, parse_contrast_list
from mrsynth.data.simulation.anatomy import BrainTemplate, DeformationSettings, load_template, random_subject_anatomy
from mrsynth.data.simulation.lesions import TumourSize, canonical_lesion, insert_lesions, random_lesions
from mrsynth.data.simulation.signal import (
    SIMULATED_CONTRASTS,
    add_rician_noise,
    bias_field,
    partial_volume_image,
    sequence_for,
    signal_to_noise_sigma,
    tissue_signals,
)
from mrsynth.data.simulation.tissues import TISSUES, supported_field_strengths
from mrsynth.errors import InputError

#: ADC maps are written in 1e-6 mm^2/s (normal white matter about 700), clipped to this maximum.
ADC_MAX = 4000.0


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. ``contrasts`` and ``lesions`` accept aliases (or a comma-separated string).

    Each subject gets, with probability ``lesion_probability``, one lesion type drawn uniformly
    from ``lesions``; otherwise it is healthy. ``snr`` is, per image, the mean noise-free
    (bias-corrupted) signal of pure white matter (probability > 0.9) over the Rician noise sigma
    (None: no noise). ``bias_strength`` bounds |log bias| (0.15: about +-15 %); the gadolinium
    concentration (mM) applies to enhancing tumour only; ``tumour_size`` gives the ranges of the
    tumour's radius and oedema. ``downsample`` simulates on a coarser
    grid (2: 2 mm voxels, the cheap path for tests). ADC maps are in 1e-6 mm^2/s.
    """

    subjects: int = 20
    seed: int = 0
    contrasts: tuple[str, ...] = ("t1", "t1c", "t2", "pd", "flair", "dwi")
    lesions: tuple[str, ...] = ("tumour", "stroke", "ms")
    lesion_probability: float = 0.8
    field_strength: float = 3.0
    snr: float | None = 30.0
    bias_strength: float = 0.15
    gd_concentration_mm: float = 0.2
    tumour_size: TumourSize = field(default_factory=TumourSize)
    downsample: int = 1
    deformation: DeformationSettings = field(default_factory=DeformationSettings)

    def __post_init__(self) -> None:
        contrasts = self.contrasts
        try:
            if isinstance(contrasts, str):
                contrasts = parse_contrast_list(contrasts)
            contrasts = tuple(canonical_contrast(c) for c in contrasts)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if not contrasts or len(set(contrasts)) != len(contrasts):
            raise InputError(f"contrasts must be non-empty and distinct, got {contrasts}")
        for name in contrasts:
            if name not in SIMULATED_CONTRASTS:
                raise InputError("the simulator cannot produce this contrast", contrast=name)
        lesions = self.lesions.split(",") if isinstance(self.lesions, str) else self.lesions
        try:
            lesions = tuple(dict.fromkeys(canonical_lesion(x) for x in lesions if x.strip()))
        except ValueError as exc:
            raise InputError(str(exc)) from None
        object.__setattr__(self, "contrasts", contrasts)
        object.__setattr__(self, "lesions", lesions)
        if self.subjects < 1:
            raise InputError(f"subjects must be at least 1, got {self.subjects}")
        if not 0.0 <= self.lesion_probability <= 1.0:
            raise InputError(f"lesion_probability must be in [0, 1], got {self.lesion_probability}")
        if not any(abs(self.field_strength - f) < 1e-6 for f in supported_field_strengths()):
            raise InputError(
                f"field_strength {self.field_strength} T has no tissue table; use one of {supported_field_strengths()}"
            )
        if self.snr is not None and self.snr <= 0:
            raise InputError(f"snr must be positive (or None for no noise), got {self.snr}")
        if self.downsample < 1 or int(self.downsample) != self.downsample:
            raise InputError(f"downsample must be a positive integer, got {self.downsample}")
        if self.bias_strength < 0 or self.gd_concentration_mm < 0:
            raise InputError("bias_strength and gd_concentration_mm must not be negative")


@dataclass(frozen=True)
class SimulatedSubject:
    """Images (contrast -> float32 volume), uint8 lesion labels, affine and the ground truth.

    ``tissue_maps`` holds the partial-volume probability of each tissue present (gm, wm, csf and
    any lesion tissue); ``noise_sigma`` the Rician noise sigma used for each image.
    """

    images: dict[str, np.ndarray]
    lesion_mask: np.ndarray
    affine: np.ndarray
    tissue_maps: dict[str, np.ndarray]
    brain_mask: np.ndarray
    lesion_type: str | None
    noise_sigma: dict[str, float]


def _choose_lesion(config: SimulationConfig, rng: np.random.Generator) -> str | None:
    """The lesion type of one subject, or None for a healthy one."""
    draw = rng.random()
    if not config.lesions or draw >= config.lesion_probability:
        return None
    return config.lesions[int(rng.integers(len(config.lesions)))]


def _acquire(
    config: SimulationConfig,
    names: tuple[str, ...],
    probabilities: np.ndarray,
    mask: np.ndarray,
    bias_rngs: dict[str, np.random.Generator],
    noise_rngs: dict[str, np.random.Generator],
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every requested image of one subject's tissue ``probabilities`` and its noise sigma.

    Signals are computed on the brain voxels only; everything outside ``mask`` is 0.
    """
    inside = np.flatnonzero(mask)
    tissues_in = probabilities.reshape(len(names), -1)[:, inside]
    white_matter = tissues_in[names.index("wm")] > 0.9
    coords = np.stack(np.unravel_index(inside, mask.shape)).astype(np.float32)
    coords *= (2.0 / (np.asarray(mask.shape, dtype=np.float32) - 1.0))[:, None]
    coords -= 1.0
    index = [TISSUES.index(n) for n in names]

    def clean(contrast: str, bias: np.ndarray) -> np.ndarray:
        signals = tissue_signals(contrast, config.field_strength, config.gd_concentration_mm)[index]
        values = partial_volume_image(tissues_in, signals)
        values *= bias
        return values

    def volume(values: np.ndarray) -> np.ndarray:
        out = np.zeros(mask.shape, dtype=np.float32)
        out.reshape(-1)[inside] = values
        return out

    images: dict[str, np.ndarray] = {}
    sigmas: dict[str, float] = {}
    wanted = set(config.contrasts) | ({"dwi"} if "adc" in config.contrasts else set())
    for contrast in SIMULATED_CONTRASTS:
        if contrast not in wanted or contrast == "adc":
            continue
        bias = bias_field(coords, bias_rngs[contrast], config.bias_strength)
        values = clean(contrast, bias)
        sigma = 0.0 if config.snr is None else signal_to_noise_sigma(values, white_matter, config.snr)
        if sigma > 0:
            values = add_rician_noise(values, sigma, noise_rngs[contrast])
        images[contrast], sigmas[contrast] = volume(values), sigma
        if contrast == "dwi" and "adc" in config.contrasts:
            # The b=0 image of the same acquisition: same coil bias, same noise sigma.
            b0 = clean("b0", bias)
            if sigma > 0:
                b0 = add_rician_noise(b0, sigma, noise_rngs["adc"])
            b = sequence_for("dwi", config.field_strength).b
            with np.errstate(divide="ignore", invalid="ignore"):
                adc = np.log(b0 / values) * np.float32(1e6 / b)
            adc = np.clip(np.nan_to_num(adc, nan=0.0, posinf=ADC_MAX, neginf=0.0), 0.0, ADC_MAX)
            images["adc"], sigmas["adc"] = volume(adc.astype(np.float32)), sigma
    return images, sigmas


def simulate_subject(
    config: SimulationConfig,
    rng: np.random.Generator,
    *,
    template: BrainTemplate | None = None,
    noise_rng: np.random.Generator | None = None,
) -> SimulatedSubject:
    """Simulate one subject from ``rng`` (same generator state -> identical arrays).

    ``template`` (from ``load_template(config.downsample)``) saves reloading it for every subject.
    ``noise_rng``, when given, replaces only the noise stream: anatomy, lesion and bias fields stay
    those that ``rng`` gives, so two calls differ by their noise alone.
    """
    template = template if template is not None else load_template(config.downsample)
    if abs(template.spacing - config.downsample) > 1e-6:
        raise ValueError(f"template has {template.spacing} mm voxels but config.downsample is {config.downsample}")
    anatomy_rng, lesion_rng, bias_rng, own_noise_rng = rng.spawn(4)
    noise_parent = own_noise_rng if noise_rng is None else noise_rng
    # One stream per possible contrast, so a contrast's bias and noise do not depend on the others.
    bias_rngs = dict(zip(SIMULATED_CONTRASTS, bias_rng.spawn(len(SIMULATED_CONTRASTS))))
    noise_rngs = dict(zip(SIMULATED_CONTRASTS, noise_parent.spawn(len(SIMULATED_CONTRASTS))))

    subject_anatomy = random_subject_anatomy(template, anatomy_rng, config.deformation)
    anatomy = subject_anatomy.maps
    kind = _choose_lesion(config, lesion_rng)
    lesions = []
    if kind is not None:
        lesions = random_lesions(kind, anatomy, subject_anatomy.template_mm(), template.spacing, lesion_rng,
                                 config.tumour_size)
    kind = kind if lesions else None  # no plausible place found: the subject stays healthy
    names, probabilities, labels = insert_lesions(anatomy, lesions)
    mask = anatomy[3] > 0.5
    labels[~mask] = 0
    images, sigmas = _acquire(config, names, probabilities, mask, bias_rngs, noise_rngs)
    return SimulatedSubject(
        images={c: images[c] for c in config.contrasts},
        lesion_mask=labels,
        affine=template.affine.copy(),
        tissue_maps=dict(zip(names, probabilities)),
        brain_mask=mask,
        lesion_type=kind,
        noise_sigma={c: sigmas[c] for c in config.contrasts},
    )
