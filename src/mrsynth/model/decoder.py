"""Shallow decoder with skip connections: latent -> one non-negative output channel."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ShallowDecoder(nn.Module):
    """Two 3x3 convolutions whose inputs are densely skip-connected to the latent (paper, Fig. 3).

    Kept shallow on purpose, so that the latent itself has to carry the information. The output
    goes through softplus rather than ReLU: it is non-negative like the mean-normalised images,
    and unlike a ReLU output it cannot "die" at zero early in training (which we saw happen with
    small networks). The last bias starts so that the first outputs are about 1, the image mean.
    """

    def __init__(self, latent_channels: int = 16, features: int = 16):
        super().__init__()
        self.conv1 = nn.Conv2d(latent_channels, features, 3, padding=1)
        self.conv2 = nn.Conv2d(latent_channels + features, features, 3, padding=1)
        self.to_image = nn.Conv2d(latent_channels + 2 * features, 1, 1)
        self.act = nn.ReLU(inplace=True)
        nn.init.constant_(self.to_image.bias, math.log(math.e - 1.0))  # softplus(b) = 1

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h1 = self.act(self.conv1(z))
        h2 = self.act(self.conv2(torch.cat([z, h1], dim=1)))
        return F.softplus(self.to_image(torch.cat([z, h1, h2], dim=1)))
