"""Shallow decoder with dense skip connections: latent -> one non-negative output channel."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ShallowDecoder(nn.Module):
    """3x3 convolutions whose inputs are densely skip-connected to the latent (paper, Fig. 3: two).

    Kept shallow on purpose, so that the latent itself has to carry the information; ``layers``
    above the paper's 2 is an option (``ModelConfig.decoder_layers``). Convolution ``k`` sees the
    latent and every earlier convolution's output, and the final 1x1 convolution sees them all.
    The output goes through softplus rather than ReLU: it is non-negative like the mean-normalised
    images, and unlike a ReLU output it cannot "die" at zero early in training (which we saw happen
    with small networks). The last bias starts so that the first outputs are about 1, the image mean.
    """

    def __init__(self, latent_channels: int = 16, features: int = 16, layers: int = 2):
        super().__init__()
        if layers < 1:
            raise ValueError("the decoder needs at least one convolution")
        self.layers = layers
        for k in range(1, layers + 1):  # named conv1, conv2, ... as in checkpoints of the paper's decoder
            self.add_module(f"conv{k}", nn.Conv2d(latent_channels + (k - 1) * features, features, 3, padding=1))
        self.to_image = nn.Conv2d(latent_channels + layers * features, 1, 1)
        self.act = nn.ReLU(inplace=True)
        nn.init.constant_(self.to_image.bias, math.log(math.e - 1.0))  # softplus(b) = 1

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        features = [z]
        for k in range(1, self.layers + 1):
            stacked = features[0] if k == 1 else torch.cat(features, dim=1)
            features.append(self.act(getattr(self, f"conv{k}")(stacked)))
        return F.softplus(self.to_image(torch.cat(features, dim=1)))
