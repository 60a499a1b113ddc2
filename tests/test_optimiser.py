"""Adam for training runs: implementation choice, and a saved state loaded across layouts and implementations."""

from __future__ import annotations

import copy

import pytest
import torch

from mrsynth.training import TrainConfig, load_checkpoint, train_model
from mrsynth.training.config import SpeedSettings
from mrsynth.training.optimiser import load_optimiser_state, make_optimiser
from mrsynth.model import ModelConfig

from toy import toy_slices

PLAIN = SpeedSettings(channels_last=False, batched_encoders=False, compile=False, prefetch=False, amp=False)


def _conv_and_state(memory_format: torch.memory_format) -> tuple[torch.nn.Conv2d, dict]:
    """A conv whose Adam state was made (two steps) with its weight in ``memory_format``."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 6, 3).to(memory_format=memory_format)
    optimiser = torch.optim.Adam(conv.parameters(), lr=0.1, foreach=False)
    for _ in range(2):
        conv(torch.rand(2, 4, 8, 8)).square().mean().backward()
        optimiser.step()
        optimiser.zero_grad()
    return conv, copy.deepcopy(optimiser.state_dict())


def _one_step(conv: torch.nn.Conv2d, optimiser: torch.optim.Optimizer) -> torch.Tensor:
    torch.manual_seed(1)
    conv(torch.rand(2, 4, 8, 8)).square().mean().backward()
    optimiser.step()
    return conv.weight.detach().clone()


def test_make_optimiser_leaves_the_choice_to_torch_unless_fused() -> None:
    config = TrainConfig(learning_rate=0.01, weight_decay=0.001)
    plain = make_optimiser([torch.nn.Parameter(torch.zeros(2))], config, PLAIN)
    assert plain.defaults["fused"] is None and plain.defaults["foreach"] is None  # not False: that rules out foreach
    assert plain.defaults["lr"] == 0.01 and plain.defaults["weight_decay"] == 0.001


@pytest.mark.parametrize("fused", [False, True])
def test_state_saved_in_one_layout_loads_into_the_other(fused: bool) -> None:
    """Resuming with channels_last switched (or on another device) steps as if nothing had changed."""
    saved_conv, state = _conv_and_state(torch.contiguous_format)
    reference = copy.deepcopy(saved_conv)
    expected = _one_step(reference, _load(reference, state, PLAIN))

    nhwc = copy.deepcopy(saved_conv).to(memory_format=torch.channels_last)
    speed = SpeedSettings(**{**PLAIN.__dict__, "fused_optimiser": fused})
    optimiser = _load(nhwc, state, speed)
    moments = optimiser.state[nhwc.weight]
    assert moments["exp_avg"].stride() == nhwc.weight.stride() == moments["exp_avg_sq"].stride()
    assert optimiser.param_groups[0]["fused"] is (True if fused else None)
    torch.testing.assert_close(_one_step(nhwc, optimiser), expected, atol=1e-6, rtol=1e-5)


def _load(conv: torch.nn.Conv2d, state: dict, speed: SpeedSettings) -> torch.optim.Adam:
    optimiser = make_optimiser(conv.parameters(), TrainConfig(learning_rate=0.1), speed)
    load_optimiser_state(optimiser, copy.deepcopy(state), speed)  # loading shares the tensors, which steps change
    return optimiser


def test_resume_with_channels_last_switched(tmp_path) -> None:
    slices = toy_slices()
    model_config = ModelConfig(inputs=slices.contrasts, target="flair", encoder_features=4, latent_channels=4,
                               decoder_features=4)
    base = dict(batch_size=8, learning_rate=1e-3, val_fraction=0.25, device="cpu", progress=False)
    train_model(slices, model_config, TrainConfig(**base, epochs=1, channels_last=True), tmp_path / "run")
    state = load_checkpoint(tmp_path / "run" / "last.pt")[1]
    assert any(not v.is_contiguous() for s in state["optimiser"]["state"].values() for v in s.values()
               if isinstance(v, torch.Tensor) and v.dim() == 4)  # saved NHWC
    result = train_model(slices, model_config, TrainConfig(**base, epochs=2, channels_last=False), tmp_path / "run",
                         resume=True)
    assert len(result.history) == 2 and torch.isfinite(torch.tensor(result.history[-1]["train_total"]))
    resumed = load_checkpoint(tmp_path / "run" / "last.pt")[1]["optimiser"]["state"]
    assert all(v.is_contiguous() for s in resumed.values() for v in s.values() if isinstance(v, torch.Tensor))
