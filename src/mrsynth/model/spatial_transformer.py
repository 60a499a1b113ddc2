"""Affine spatial transformer that aligns a latent onto the reference latent (Jaderberg et al. 2015)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IDENTITY_AFFINE = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


class AffineSpatialTransformer(nn.Module):
    """A localisation network sees (reference latent, moving latent) and predicts a 2x3 affine.

    The last layer starts at zero weights and identity bias, so the transform is exactly the
    identity at initialisation and training moves it only as far as the cost asks.
    """

    def __init__(self, latent_channels: int = 16, features: int = 16):
        super().__init__()
        self.localisation = nn.Sequential(
            nn.Conv2d(2 * latent_channels, features, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(features, features, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(features, features, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(features * 16, 32),
            nn.ReLU(inplace=True),
        )
        self.to_affine = nn.Linear(32, 6)
        nn.init.zeros_(self.to_affine.weight)
        with torch.no_grad():
            self.to_affine.bias.copy_(torch.tensor(IDENTITY_AFFINE))

    def predict_affine(self, reference: torch.Tensor, moving: torch.Tensor) -> torch.Tensor:
        """Return the (N, 2, 3) affine that maps ``moving`` onto ``reference``."""
        features = self.localisation(torch.cat([reference, moving], dim=1))
        return self.to_affine(features).view(-1, 2, 3)

    def forward(self, reference: torch.Tensor, moving: torch.Tensor) -> torch.Tensor:
        theta = self.predict_affine(reference, moving)
        grid = F.affine_grid(theta.float(), list(moving.shape), align_corners=False)
        return F.grid_sample(moving, grid.to(moving.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
