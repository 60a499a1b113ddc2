"""Training-time augmentation of slice batches with MONAI's random transforms.

Geometry (left-right flip, small rotation and scaling, optionally a front-back flip and an elastic
deformation) is drawn once per sample and applied to its inputs and target together, so they stay
aligned. Intensity (scale, gamma, smooth bias field) is drawn per input contrast and applied to
that contrast's channels only (all of its 2.5D neighbours alike); the target's intensities are
never changed, so the model learns to undo intensity differences between scanners instead of
copying them. The inputs after the geometry alone are kept in the batch (``Batch.clean_images``):
a cross-synthesis model's input decoders are trained to synthesise those.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from mrsynth.training.batches import Batch


@dataclass(frozen=True)
class AugmentConfig:
    """Which random transforms run and how strong they are; ``enabled=False`` turns them all off.

    ``rotate_degrees`` and ``scale`` bound the in-plane affine (uniform in +-); ``flip`` is the
    probability of a left-right flip; ``intensity_scale`` bounds a per-contrast multiplicative
    factor ``1 + u``; ``gamma`` is the (low, high) range of a per-contrast gamma; ``bias_field``
    bounds the coefficients of a smooth multiplicative field (MONAI ``RandBiasField``).
    ``probability`` applies to each of the affine and intensity transforms separately. ``flip_ap``
    is the probability of a front-back flip and ``elastic`` that of an elastic deformation (MONAI
    ``Rand2DElastic``: random offsets on a control grid ``elastic_spacing`` pixels apart, scaled by
    up to ``elastic_magnitude``, smoothly interpolated); both are 0 (none) unless asked for, and
    each has its own random stream, so the other draws do not change with them.
    """

    enabled: bool = False
    probability: float = 0.5
    flip: float = 0.5
    rotate_degrees: float = 10.0
    scale: float = 0.1
    intensity_scale: float = 0.1
    gamma: tuple[float, float] = (0.8, 1.25)
    bias_field: float = 0.2
    flip_ap: float = 0.0
    elastic: float = 0.0
    elastic_spacing: int = 12
    elastic_magnitude: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "gamma", tuple(float(g) for g in self.gamma))
        if not all(0.0 <= p <= 1.0 for p in (self.probability, self.flip, self.flip_ap, self.elastic)):
            raise ValueError("augmentation probabilities must be in [0, 1]")
        if min(self.rotate_degrees, self.scale, self.intensity_scale, self.bias_field, self.elastic_magnitude) < 0:
            raise ValueError("augmentation ranges must be >= 0")
        if self.elastic_spacing < 1:
            raise ValueError(f"the elastic control grid's spacing must be at least 1 pixel, got {self.elastic_spacing}")
        if len(self.gamma) != 2 or not 0 < self.gamma[0] <= self.gamma[1]:
            raise ValueError(f"gamma must be a (low, high) range of positive numbers, got {self.gamma}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["gamma"] = list(self.gamma)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AugmentConfig":
        return cls(**{k: (tuple(v) if k == "gamma" else v) for k, v in data.items() if k in cls.__dataclass_fields__})


def _plain(tensor: torch.Tensor) -> torch.Tensor:
    """MONAI returns MetaTensors; the training loop wants plain tensors."""
    return tensor.as_tensor() if hasattr(tensor, "as_tensor") else tensor


class SliceAugmenter:
    """Applies an :class:`AugmentConfig` to training batches, reproducibly from ``seed``."""

    def __init__(self, config: AugmentConfig, seed: int = 0):
        from monai.transforms import Rand2DElastic, RandAdjustContrast, RandAffine, RandBiasField, RandFlip, RandScaleIntensity

        self.config = config
        p = config.probability
        self.geometry = [
            RandFlip(prob=config.flip, spatial_axis=0),
            RandAffine(prob=p, rotate_range=(math.radians(config.rotate_degrees),),
                       scale_range=(config.scale, config.scale), mode="bilinear", padding_mode="zeros"),
        ]
        self.intensity = [
            RandScaleIntensity(factors=config.intensity_scale, prob=p),
            RandAdjustContrast(prob=p, gamma=config.gamma),
            RandBiasField(prob=p, coeff_range=(0.0, config.bias_field)),
        ]
        for i, transform in enumerate(self.geometry + self.intensity):
            transform.set_random_state(seed=(seed * 1009 + i) % 2**32)
        # optional transforms, seeded after the others, which keep their streams
        optional = [RandFlip(prob=config.flip_ap, spatial_axis=1) if config.flip_ap > 0 else None,
                    Rand2DElastic(spacing=config.elastic_spacing, magnitude_range=(0.0, config.elastic_magnitude),
                                  prob=config.elastic, mode="bilinear", padding_mode="zeros") if config.elastic > 0 else None]
        first = len(self.geometry) + len(self.intensity)
        for i, transform in enumerate(optional):
            if transform is not None:
                transform.set_random_state(seed=(seed * 1009 + first + i) % 2**32)
                self.geometry.append(transform)

    def __call__(self, batch: Batch) -> Batch:
        """A new batch with every real sample transformed (inputs and target share the geometry)."""
        images, target = batch.images, batch.target
        flat = images.flatten(1, -3) if images.dim() == 5 else images  # (B, C*K, H, W)
        per_contrast = flat.shape[1] // images.shape[1]
        out_images, out_target, clean = torch.empty_like(flat), torch.empty_like(target), torch.empty_like(flat)
        present = batch.present.cpu().numpy()  # one device sync, not one per sample
        for b in range(len(flat)):
            sample = torch.cat([flat[b], target[b]], dim=0)
            for transform in self.geometry:
                sample = _plain(transform(sample))
            inputs = sample[:-1]
            clean[b] = inputs  # a copy: the intensity transforms below write into inputs
            for c in range(images.shape[1]):
                if not present[b, c]:
                    continue
                block = inputs[c * per_contrast : (c + 1) * per_contrast]
                for transform in self.intensity:
                    block = _plain(transform(block))
                inputs[c * per_contrast : (c + 1) * per_contrast] = block.clamp_min(0.0)
            out_images[b], out_target[b] = inputs, sample[-1:]
        return Batch(images=out_images.view_as(images), present=batch.present, target=out_target,
                     weight=batch.weight, samples=batch.samples, clean_images=clean.view_as(images),
                     available=batch.available)
