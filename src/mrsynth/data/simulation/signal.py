"""MR signal equations, acquisition protocols, bias field and Rician noise."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mrsynth.data.simulation.tissues import (
    ENHANCING_TISSUES,
    TISSUES,
    TissueParameters,
    gadolinium_relaxivity,
    post_contrast_t1,
    tissue_table,
)

#: Contrasts the simulator can produce ("adc" is derived from the b=0 and b=1000 DWI images).
SIMULATED_CONTRASTS: tuple[str, ...] = ("t1", "t1c", "t2", "pd", "flair", "dwi", "adc")


@dataclass(frozen=True)
class SequenceParameters:
    """One acquisition: spin echo (``ti`` None) or inversion recovery; times in ms, b in s/mm^2."""

    tr: float
    te: float
    ti: float | None = None
    b: float = 0.0
    gadolinium: bool = False


def spin_echo(pd: float, t1: float, t2: float, tr: float, te: float) -> float:
    """Spin-echo signal PD (1 - exp(-TR/T1)) exp(-TE/T2)."""
    return pd * (1.0 - math.exp(-tr / t1)) * math.exp(-te / t2)


def inversion_recovery(pd: float, t1: float, t2: float, tr: float, te: float, ti: float) -> float:
    """Magnitude inversion-recovery signal PD |1 - 2 exp(-TI/T1) + exp(-TR/T1)| exp(-TE/T2)."""
    return pd * abs(1.0 - 2.0 * math.exp(-ti / t1) + math.exp(-tr / t1)) * math.exp(-te / t2)


def null_inversion_time(t1: float, tr: float) -> float:
    """Inversion time (ms) that nulls a tissue of longitudinal relaxation ``t1`` at repetition ``tr``."""
    return t1 * math.log(2.0 / (1.0 + math.exp(-tr / t1)))


def sequence_for(contrast: str, field_strength: float) -> SequenceParameters:
    """The clinical-style protocol used for ``contrast`` ("b0" is the unweighted DWI image)."""
    if contrast in ("t1", "t1c"):
        return SequenceParameters(tr=500.0, te=10.0, gadolinium=contrast == "t1c")
    if contrast == "t2":
        return SequenceParameters(tr=5000.0, te=100.0)
    if contrast == "pd":
        return SequenceParameters(tr=3000.0, te=15.0)
    if contrast == "flair":
        tr = 9000.0
        csf_t1 = tissue_table(field_strength)["csf"].t1
        return SequenceParameters(tr=tr, te=120.0, ti=null_inversion_time(csf_t1, tr))
    if contrast in ("dwi", "b0"):
        return SequenceParameters(tr=5000.0, te=80.0, b=1000.0 if contrast == "dwi" else 0.0)
    raise ValueError(f"no signal equation for contrast {contrast!r}")


def tissue_signal(tissue: TissueParameters, seq: SequenceParameters, t1: float | None = None) -> float:
    """Noise-free signal of one pure tissue (``t1`` overrides the tissue's T1, e.g. post-contrast)."""
    t1 = tissue.t1 if t1 is None else t1
    if seq.ti is None:
        value = spin_echo(tissue.pd, t1, tissue.t2, seq.tr, seq.te)
    else:
        value = inversion_recovery(tissue.pd, t1, tissue.t2, seq.tr, seq.te, seq.ti)
    # ADC is tabulated in 1e-3 mm^2/s and b in s/mm^2.
    return value * math.exp(-seq.b * tissue.adc * 1e-3)


def tissue_signals(
    contrast: str, field_strength: float, gd_concentration_mm: float = 0.2
) -> np.ndarray:
    """Signal of every tissue in ``TISSUES`` order for ``contrast`` (float32 vector)."""
    seq = sequence_for(contrast, field_strength)
    table = tissue_table(field_strength)
    r1 = gadolinium_relaxivity(field_strength)
    out = []
    for name in TISSUES:
        t1 = None
        if seq.gadolinium and name in ENHANCING_TISSUES:
            t1 = post_contrast_t1(table[name].t1, r1, gd_concentration_mm)
        out.append(tissue_signal(table[name], seq, t1))
    return np.asarray(out, dtype=np.float32)


def partial_volume_image(probabilities: np.ndarray, signals: np.ndarray) -> np.ndarray:
    """Sum over tissues of probability times tissue signal; ``probabilities`` is (T, ...)."""
    if probabilities.shape[0] != signals.shape[0]:
        raise ValueError("one signal per tissue probability map is needed")
    flat = probabilities.reshape(probabilities.shape[0], -1)
    return (signals.astype(np.float32) @ flat).reshape(probabilities.shape[1:])


def bias_field(coords: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Smooth multiplicative field exp(p) at points ``coords`` (3, N), p a random quadratic.

    ``coords`` are normalised to [-1, 1] over the grid; p has zero mean and max |p| drawn
    uniformly in [strength / 2, strength] over the given points, so the field stays within
    about exp(+-strength). Returns float32 (N,).
    """
    if strength <= 0:
        return np.ones(coords.shape[1], dtype=np.float32)
    a = rng.normal(size=9) * np.array([1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    x, y, z = coords
    f32 = np.float32
    # a0 x + a1 y + a2 z + a3 x^2 + a4 y^2 + a5 z^2 + a6 xy + a7 xz + a8 yz, in Horner-like form.
    poly = x * (f32(a[0]) + f32(a[3]) * x + f32(a[6]) * y + f32(a[7]) * z)
    poly += y * (f32(a[1]) + f32(a[4]) * y + f32(a[8]) * z)
    poly += z * (f32(a[2]) + f32(a[5]) * z)
    poly -= poly.mean(dtype=np.float64)
    poly *= f32(strength * rng.uniform(0.5, 1.0) / max(float(np.abs(poly).max()), 1e-12))
    return np.exp(poly, out=poly)


def add_rician_noise(values: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of ``values`` plus complex Gaussian noise of std ``sigma`` per channel (float32)."""
    noise = rng.standard_normal((2, *values.shape), dtype=np.float32)
    noise *= np.float32(sigma)
    noise[0] += values
    noise *= noise
    total = noise[0]
    total += noise[1]
    return np.sqrt(total, out=total)


def signal_to_noise_sigma(image: np.ndarray, white_matter: np.ndarray, snr: float) -> float:
    """Noise std giving ``snr`` = mean white-matter signal / sigma (``white_matter`` is boolean)."""
    if snr <= 0:
        raise ValueError("snr must be positive")
    if not white_matter.any():
        raise ValueError("no white-matter voxel to define the SNR")
    return float(image[white_matter].mean()) / snr

