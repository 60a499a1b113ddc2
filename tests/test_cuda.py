"""The CUDA paths compute what the CPU computes: layouts, batched encoders, bf16, compile, training, synthesis.

Skipped where no CUDA device is present (CI); run on a GPU machine with
``python -m pytest tests/test_cuda.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrsynth.inference import Synthesizer
from mrsynth.model import ModelConfig, synthesis_loss
from mrsynth.model.network import ExecutionOptions, MultiInputSynthesisNet
from mrsynth.training import TrainConfig, load_checkpoint, train_model
from mrsynth.training.batches import iterate_batches, prefetch
from mrsynth.training.optimiser import make_optimiser
from mrsynth.training.trainer import build_model

from toy import toy_slices

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

TINY = dict(encoder_features=8, latent_channels=8, decoder_features=8)
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def exact_fp32():
    """Full fp32 matmuls/convolutions on CUDA (no TF32), so that the CPU is a reference."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def _inputs(seed: int = 0, all_present: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images, target = torch.rand(6, 3, 32, 24, generator=generator), torch.rand(6, 1, 32, 24, generator=generator)
    present = torch.ones(6, 3, dtype=torch.bool)
    if not all_present:  # the batched encoders need every contrast; otherwise the per-contrast loop runs
        present[1, 2] = present[3, 0] = present[4, 1] = present[4, 2] = False
    return images, present, target


def _run(device: torch.device, execution: ExecutionOptions, amp: bool = False, compile: bool = False,
         all_present: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    net = MultiInputSynthesisNet(ModelConfig(inputs=("t1", "t2", "dwi"), target="flair", **TINY), execution)
    with torch.no_grad():  # off the identity: there every sample point sits on a pixel centre, where bilinear
        # sampling has no gradient (only one-sided ones, picked by float rounding that differs per device)
        net.spatial_transformer.to_affine.bias += torch.tensor([0.02, 0.01, 0.013, -0.011, -0.015, 0.021])
    net.place(device)
    if compile:
        net.compile()
    if execution.channels_last:
        assert net.encoders[0].down1[2].weight.is_contiguous(memory_format=torch.channels_last)
    images, present, target = (t.to(device) for t in _inputs(all_present=all_present))
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
        out = net(images, present)
        loss = synthesis_loss(out, target).total
    loss.backward()
    return out.image.detach().float().cpu(), {n: p.grad.float().cpu() for n, p in net.named_parameters() if p.grad is not None}


PLAIN = ExecutionOptions(channels_last=False, batched_encoders=False)


def assert_grads_close(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], rtol: float = 1e-3) -> None:
    """Gradients agree up to ``rtol`` of each tensor's largest magnitude.

    Element-wise tolerances do not fit all of them: the affine head's gradient sums over every
    pixel with cancellations, so float rounding (atomics on CUDA, another summation order)
    moves small entries by more than their own size.
    """
    assert actual.keys() == expected.keys()
    for name, grad in expected.items():
        error = float((actual[name] - grad).abs().max())
        scale = float(grad.abs().max()) + 1e-6
        assert error <= rtol * scale, f"{name}: max error {error:.3g} against largest gradient {scale:.3g}"


def test_cuda_fp32_matches_cpu() -> None:
    cpu, gpu = _run(torch.device("cpu"), PLAIN), _run(CUDA, PLAIN)
    torch.testing.assert_close(gpu[0], cpu[0], atol=1e-4, rtol=1e-4)
    assert_grads_close(gpu[1], cpu[1])


@pytest.mark.parametrize("all_present", [True, False])
@pytest.mark.parametrize("execution", [ExecutionOptions(channels_last=True, batched_encoders=False),
                                       ExecutionOptions(channels_last=False, batched_encoders=True),
                                       ExecutionOptions(channels_last=True, batched_encoders=True)])
def test_cuda_layouts_match_plain(execution: ExecutionOptions, all_present: bool) -> None:
    plain, fast = _run(CUDA, PLAIN, all_present=all_present), _run(CUDA, execution, all_present=all_present)
    torch.testing.assert_close(fast[0], plain[0], atol=1e-4, rtol=1e-4)
    assert_grads_close(fast[1], plain[1])


def test_bf16_autocast_stays_close_to_fp32() -> None:
    plain, bf16 = _run(CUDA, PLAIN), _run(CUDA, ExecutionOptions(), amp=True)
    assert (bf16[0] - plain[0]).abs().max() < 0.05 * plain[0].abs().max()


def test_compiled_model_matches_eager_on_cuda() -> None:
    plain, compiled = _run(CUDA, PLAIN), _run(CUDA, PLAIN, compile=True)
    torch.testing.assert_close(compiled[0], plain[0], atol=1e-4, rtol=1e-4)
    assert_grads_close(compiled[1], plain[1])


def test_build_model_with_compile_trains_on_cuda() -> None:
    config = ModelConfig(inputs=("t1", "t2", "dwi"), target="flair", **TINY)
    train_config = TrainConfig(compile=True, learning_rate=1e-3)
    speed = train_config.resolve_speed("cuda")
    model = build_model(config, speed, CUDA)
    images, present, target = (t.to(CUDA) for t in _inputs())
    optimiser = make_optimiser(model.parameters(), train_config, speed)  # the trainer's CUDA optimiser (fused)
    assert optimiser.defaults["fused"]
    losses = []
    for _ in range(5):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = synthesis_loss(model(images, present), target).total
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss))
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_prefetch_to_cuda_without_an_index() -> None:
    """``--device cuda`` (no index) reaches the prefetch thread as ``torch.device("cuda")``."""
    slices = toy_slices()
    rows = np.arange(len(slices))
    direct = list(iterate_batches(slices, rows, 5, CUDA, np.random.default_rng(3)))
    fetched = list(prefetch(iterate_batches(slices, rows, 5, CUDA, np.random.default_rng(3)), device=CUDA))
    assert len(direct) == len(fetched)
    for a, b in zip(direct, fetched):
        assert b.images.is_cuda and torch.equal(a.images, b.images)


def test_training_on_cuda_with_defaults_then_synthesis_on_both_devices(tmp_path) -> None:
    slices = toy_slices(missing={1: 2})
    model_config = ModelConfig(inputs=slices.contrasts, target="flair", **TINY)
    config = TrainConfig(epochs=3, batch_size=8, learning_rate=1e-3, val_fraction=0.25, device="cuda", progress=False,
                         cudnn_benchmark=True)
    before = torch.backends.cudnn.benchmark
    result = train_model(slices, model_config, config, tmp_path / "run")
    assert torch.backends.cudnn.benchmark == before  # the autotuning was scoped to the run
    losses = [row["train_total"] for row in result.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    checkpoint = load_checkpoint(tmp_path / "run" / "model.pt")[0]
    stack = slices.inputs[:6]
    on_gpu = Synthesizer(checkpoint, device="cuda").predict_stack(stack, [True, True, True])
    on_cpu = Synthesizer(checkpoint, device="cpu").predict_stack(stack, [True, True, True])
    assert on_gpu.shape == on_cpu.shape == (6, 16, 16)
    # the CUDA synthesizer runs in bf16 autocast: close to the fp32 CPU result, not equal
    assert np.abs(on_gpu - on_cpu).max() < 0.05 * np.abs(on_cpu).max()
