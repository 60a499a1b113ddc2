"""The Adam optimiser of a training run, and loading a saved Adam state into it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from mrsynth.training.config import SpeedSettings, TrainConfig

MOMENTS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")


def make_optimiser(parameters: Iterable[torch.nn.Parameter], config: TrainConfig, speed: SpeedSettings) -> torch.optim.Adam:
    """Adam with the run's learning rate and weight decay; one fused kernel when ``speed.fused_optimiser``.

    Otherwise torch picks its implementation (``fused=None``): an explicit ``False`` would also
    rule out the multi-tensor one.
    """
    return torch.optim.Adam(parameters, lr=config.learning_rate, weight_decay=config.weight_decay,
                            fused=speed.fused_optimiser or None)


def load_optimiser_state(optimiser: torch.optim.Adam, state: dict[str, Any], speed: SpeedSettings) -> None:
    """Load a saved Adam state, whatever device, memory layout or implementation it was saved with.

    ``load_state_dict`` would restore the saved run's ``fused``/``foreach`` choice and keep the
    moments in their saved layout; a run resumed on another device or with ``channels_last``
    switched would then step with mismatched tensors. This keeps this run's choice and gives every
    moment its parameter's layout.
    """
    optimiser.load_state_dict(state)
    fused = speed.fused_optimiser or None
    for group in optimiser.param_groups:
        group["fused"], group["foreach"] = fused, None
        for parameter in group["params"]:
            saved = optimiser.state.get(parameter)
            if not saved:
                continue
            for key in MOMENTS:
                if key in saved and saved[key].stride() != parameter.stride():
                    saved[key] = torch.empty_like(parameter).copy_(saved[key])
            if "step" in saved:  # fused kernels keep the step count on the parameter's device, the others on the CPU
                saved["step"] = torch.as_tensor(float(saved["step"]), dtype=torch.float32,
                                                device=parameter.device if fused else "cpu")
