"""Single-input deep encoder-decoder baseline, after DEDIS (Sevetlidis, Giuffrida, Tsaftaris 2016).

A whole-slice convolutional encoder (two conv + 2x2 max-pool stages) feeds a decoder (two
upsample + conv stages) with no skip connections; it is trained with MSE on whole slices using
Adam. Slices whose size is not a multiple of 4 are zero-padded (background) and cropped back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mrsynth.baselines.base import check_stack, complete_rows, finish_prediction, input_columns, require_fitted
from mrsynth.data.slices import SliceSet


@dataclass(frozen=True)
class DedisConfig:
    """Training settings; ``features`` is the width of the first encoder stage (doubled in the second)."""

    epochs: int = 50
    batch_size: int = 32
    lr: float = 1e-3
    features: int = 32
    device: str = "cpu"
    seed: int = 0


def _conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel_size=3, padding=1), nn.ReLU(inplace=True)]


class DedisNet(nn.Module):
    """Encoder (conv-conv-pool twice) -> decoder (upsample-conv-conv twice) -> 1x1 conv; no skips."""

    def __init__(self, features: int = 32) -> None:
        super().__init__()
        f = features
        self.encoder = nn.Sequential(
            *_conv(1, f), *_conv(f, f), nn.MaxPool2d(2), *_conv(f, 2 * f), *_conv(2 * f, 2 * f), nn.MaxPool2d(2)
        )
        self.decoder = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            *_conv(2 * f, 2 * f),
            *_conv(2 * f, f),
            nn.Upsample(scale_factor=2, mode="nearest"),
            *_conv(f, f),
            *_conv(f, f),
            nn.Conv2d(f, 1, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` -> ``(B, 1, H, W)``; H and W must be multiples of 4."""
        return self.decoder(self.encoder(x))


def _pad4(x: torch.Tensor) -> torch.Tensor:
    """Zero-pad the last two dimensions up to multiples of 4."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, (-w) % 4, 0, (-h) % 4))


class DedisBaseline:
    """One-input whole-slice encoder-decoder synthesis (the paper's "DEDIS" comparison)."""

    name = "dedis"

    def __init__(self, config: DedisConfig | None = None) -> None:
        self.config = config or DedisConfig()
        self.inputs: tuple[str, ...] = ()
        self.net: DedisNet | None = None
        self.loss_history: list[float] = []  # mean training MSE of each epoch

    def fit(self, train: SliceSet, inputs: tuple[str, ...]) -> "DedisBaseline":
        """Train from scratch on the slices where the single input is present."""
        inputs = tuple(inputs)
        if len(inputs) != 1:
            raise ValueError(f"DEDIS synthesises from exactly one input contrast, got {len(inputs)}: {', '.join(inputs)}")
        cfg = self.config
        rows = complete_rows(train, inputs)
        col = input_columns(train, inputs)[0]
        device = torch.device(cfg.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            net = DedisNet(cfg.features).to(device)
        optimiser = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        rng = np.random.default_rng(cfg.seed)
        history = []
        net.train()
        for _ in range(cfg.epochs):
            total = 0.0
            order = rng.permutation(rows)
            for start in range(0, order.size, cfg.batch_size):
                batch = np.sort(order[start : start + cfg.batch_size])
                x = torch.from_numpy(np.asarray(train.inputs[batch, col], dtype=np.float32)).unsqueeze(1)
                y = torch.from_numpy(np.asarray(train.target[batch], dtype=np.float32)).unsqueeze(1)
                x, y = _pad4(x).to(device), _pad4(y).to(device)
                optimiser.zero_grad(set_to_none=True)
                loss = F.mse_loss(net(x), y)
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * batch.size
            history.append(total / order.size)
        net.eval()
        self.net, self.inputs, self.loss_history = net, inputs, history
        return self

    def predict_volume(self, stack: np.ndarray) -> np.ndarray:
        """Synthesise each slice of an ``(S, 1, H, W)`` stack, in batches, without gradients."""
        inputs = require_fitted(self.inputs, self.name)
        assert self.net is not None
        stack = check_stack(stack, len(inputs))
        height, width = stack.shape[2:]
        device = next(self.net.parameters()).device
        out = np.zeros((stack.shape[0], height, width), dtype=np.float32)
        self.net.eval()
        with torch.inference_mode():
            for start in range(0, stack.shape[0], self.config.batch_size):
                x = _pad4(torch.from_numpy(stack[start : start + self.config.batch_size])).to(device)
                out[start : start + x.shape[0]] = self.net(x)[:, 0, :height, :width].cpu().numpy()
        return finish_prediction(out, stack)
