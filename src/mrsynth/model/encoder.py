"""U-Net-like encoder: one per input contrast, a 2D slice -> an L-channel latent of the same size."""

from __future__ import annotations

import torch
from torch import nn


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 convolutions with ReLU, keeping height and width."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        nn.ReLU(inplace=True),
    )


class UNetEncoder(nn.Module):
    """Fully convolutional encoder with two 2x2 poolings and skip connections (paper, Fig. 3).

    Heights and widths divisible by 4 come out unchanged; the latent has no final activation
    so that max fusion can keep signed features.
    """

    def __init__(self, in_channels: int = 1, features: int = 32, latent_channels: int = 16):
        super().__init__()
        f = features
        self.down1 = conv_block(in_channels, f)
        self.down2 = conv_block(f, 2 * f)
        self.bottom = conv_block(2 * f, 4 * f)
        self.pool = nn.MaxPool2d(2)
        self.up2 = nn.Upsample(scale_factor=2, mode="nearest")
        self.merge2 = conv_block(4 * f + 2 * f, 2 * f)
        self.up1 = nn.Upsample(scale_factor=2, mode="nearest")
        self.merge1 = conv_block(2 * f + f, f)
        self.to_latent = nn.Conv2d(f, latent_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"slice size {tuple(x.shape[-2:])} must be divisible by 4")
        d1 = self.down1(x)
        d2 = self.down2(self.pool(d1))
        b = self.bottom(self.pool(d2))
        m2 = self.merge2(torch.cat([self.up2(b), d2], dim=1))
        m1 = self.merge1(torch.cat([self.up1(m2), d1], dim=1))
        return self.to_latent(m1)
