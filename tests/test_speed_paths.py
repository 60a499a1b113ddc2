"""Fast paths compute the same thing as the plain path: batched encoders, channels-last, prefetch, sharding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrsynth.model import ModelConfig, synthesis_loss
from mrsynth.model.network import ExecutionOptions, MultiInputSynthesisNet
from mrsynth.training import TrainConfig, load_checkpoint, train_model
from mrsynth.training.batches import iterate_batches, prefetch, rank_share
from mrsynth.training.trainer import build_model, cudnn_autotuning

from toy import toy_slices

TINY = dict(encoder_features=4, latent_channels=4, decoder_features=4)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny ops on a shared 2-core machine are far faster on one thread (no OpenMP spin-waits)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _net(execution: ExecutionOptions) -> MultiInputSynthesisNet:
    torch.manual_seed(0)
    return MultiInputSynthesisNet(ModelConfig(inputs=("t1", "t2", "dwi"), target="flair", **TINY), execution)


def _outputs_and_grads(execution: ExecutionOptions, images: torch.Tensor, present: torch.Tensor,
                       target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    net = _net(execution)
    out = net(images, present)
    synthesis_loss(out, target).total.backward()
    return out.image.detach(), {name: p.grad for name, p in net.named_parameters()}


@pytest.mark.parametrize("all_present", [True, False])
def test_batched_encoders_match_the_per_contrast_loop(all_present: bool) -> None:
    torch.manual_seed(1)
    images, target = torch.rand(4, 3, 16, 16), torch.rand(4, 1, 16, 16)
    present = torch.ones(4, 3, dtype=torch.bool)
    if not all_present:  # the batched call needs every contrast; otherwise the loop runs
        present[1, 2] = False
    loop = _outputs_and_grads(ExecutionOptions(channels_last=False, batched_encoders=False), images, present, target)
    batched = _outputs_and_grads(ExecutionOptions(channels_last=False, batched_encoders=True), images, present, target)
    torch.testing.assert_close(batched[0], loop[0], atol=1e-5, rtol=1e-5)
    for name, grad in loop[1].items():
        torch.testing.assert_close(batched[1][name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_channels_last_matches_the_default_layout() -> None:
    torch.manual_seed(2)
    images, target = torch.rand(3, 3, 16, 12), torch.rand(3, 1, 16, 12)
    present = torch.tensor([[True, True, True], [False, True, False], [True, False, True]])
    plain = _outputs_and_grads(ExecutionOptions(channels_last=False, batched_encoders=False), images, present, target)
    nhwc = _outputs_and_grads(ExecutionOptions(channels_last=True, batched_encoders=False), images, present, target)
    torch.testing.assert_close(nhwc[0], plain[0], atol=1e-5, rtol=1e-5)
    for name, grad in plain[1].items():
        torch.testing.assert_close(nhwc[1][name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_device_defaults() -> None:
    assert ExecutionOptions().resolve("cpu") == ExecutionOptions(channels_last=False, batched_encoders=False)
    assert ExecutionOptions().resolve("cuda") == ExecutionOptions(channels_last=True, batched_encoders=False)
    assert ExecutionOptions(channels_last=True).resolve("cpu").channels_last
    cpu, cuda = TrainConfig().resolve_speed("cpu"), TrainConfig().resolve_speed("cuda")
    assert not (cpu.compile or cpu.prefetch or cpu.amp)
    assert cuda.prefetch and cuda.amp and cuda.fused_optimiser and not (cuda.compile or cpu.fused_optimiser)
    # training keeps NCHW on CUDA too (NHWC made cuDNN's bf16 weight gradients slower); synthesis uses NHWC there
    assert cuda.channels_last is False and cpu.channels_last is False
    assert TrainConfig(channels_last=True).resolve_speed("cuda").channels_last
    assert not cuda.cudnn_benchmark and TrainConfig(cudnn_benchmark=True).resolve_speed("cuda").cudnn_benchmark
    assert not TrainConfig(cudnn_benchmark=True).resolve_speed("cpu").cudnn_benchmark


def test_cudnn_autotuning_is_scoped() -> None:
    before = torch.backends.cudnn.benchmark
    with cudnn_autotuning(True):
        assert torch.backends.cudnn.benchmark
    assert torch.backends.cudnn.benchmark == before
    with pytest.raises(RuntimeError), cudnn_autotuning(True):
        raise RuntimeError("a failing run")
    assert torch.backends.cudnn.benchmark == before
    assert not TrainConfig(amp=False, prefetch=False).resolve_speed("cuda").prefetch
    assert TrainConfig.from_dict(TrainConfig(compile=True, ddp=False).to_dict()) == TrainConfig(compile=True, ddp=False)


def test_compiled_model_keeps_its_state_dict_keys() -> None:
    config = ModelConfig(inputs=("t1", "t2"), target="flair", **TINY)
    speed = TrainConfig(compile=True).resolve_speed("cpu")
    compiled = build_model(config, speed, torch.device("cpu"))  # compilation itself happens lazily, at the first call
    assert list(compiled.state_dict()) == list(MultiInputSynthesisNet(config).state_dict())


def test_weights_follow_the_channels_last_option() -> None:
    config = ModelConfig(inputs=("t1", "t2"), target="flair", **TINY)
    nhwc = build_model(config, TrainConfig(channels_last=True).resolve_speed("cpu"), torch.device("cpu"))
    conv = nhwc.encoders[0].down1[2].weight  # 4 -> 4 channels (a 1-channel weight is both layouts)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    nhwc.set_execution(channels_last=False)
    assert conv.is_contiguous()  # the same parameter, re-laid out in place
    assert MultiInputSynthesisNet(config).place("cpu").encoders[0].down1[2].weight.is_contiguous()


def test_prefetch_keeps_order_and_reraises() -> None:
    slices = toy_slices()
    rows = np.arange(len(slices))
    direct = list(iterate_batches(slices, rows, 5, torch.device("cpu"), np.random.default_rng(3), 0.5))
    fetched = list(prefetch(iterate_batches(slices, rows, 5, torch.device("cpu"), np.random.default_rng(3), 0.5)))
    assert len(direct) == len(fetched)
    for a, b in zip(direct, fetched):
        assert torch.equal(a.images, b.images) and torch.equal(a.present, b.present)

    def broken():
        yield direct[0]
        raise RuntimeError("reader failed")
    with pytest.raises(RuntimeError, match="reader failed"):
        list(prefetch(broken()))
    early = prefetch(iterate_batches(slices, rows, 2, torch.device("cpu")))
    next(early)
    early.close()  # stops the producer thread without draining the epoch


def test_rank_shares_partition_each_global_batch() -> None:
    slices = toy_slices(missing={1: 2})
    rows = np.arange(len(slices))
    single = list(iterate_batches(slices, rows, 7, torch.device("cpu"), np.random.default_rng(5), 0.4))
    shares = [list(iterate_batches(slices, rows, 7, torch.device("cpu"), np.random.default_rng(5), 0.4,
                                   rank=r, world=3)) for r in range(3)]
    for b, whole in enumerate(single):
        parts = [shares[r][b] for r in range(3)]
        real = [p for p in parts if p.samples]
        assert torch.equal(torch.cat([p.target for p in real]), whole.target)
        assert torch.equal(torch.cat([p.present for p in real]), whole.present)  # same input dropout everywhere
        assert sum(p.weight for p in parts) == pytest.approx(3.0)
        assert sum(p.samples for p in parts) == len(whole.target)
    assert [len(s) for s in (rank_share(2, r, 3) for r in range(3))] == [1, 1, 0]
    last = [shares[r][-1] for r in range(3)]  # 24 rows in batches of 7: the last has 3, one per rank
    assert [p.samples for p in last] == [1, 1, 1]


def test_stand_in_row_for_an_empty_share() -> None:
    slices = toy_slices()
    batches = list(iterate_batches(slices, np.arange(3), 3, torch.device("cpu"), rank=3, world=4))
    assert len(batches) == 1 and batches[0].weight == 0.0 and batches[0].samples == 0 and len(batches[0].target) == 1


def test_training_with_fast_paths_matches_eager(tmp_path) -> None:
    slices = toy_slices()
    model_config = ModelConfig(inputs=slices.contrasts, target="flair", **TINY)
    base = dict(epochs=1, batch_size=8, learning_rate=1e-4, val_fraction=0.25, device="cpu", progress=False)
    eager = train_model(slices, model_config, TrainConfig(**base, channels_last=False, batched_encoders=False,
                                                          prefetch=False), tmp_path / "eager")
    fast = train_model(slices, model_config, TrainConfig(**base, channels_last=True, batched_encoders=True,
                                                         prefetch=True), tmp_path / "fast")
    assert fast.history[-1]["val_total"] == pytest.approx(eager.history[-1]["val_total"], rel=1e-4)
    a, b = load_checkpoint(tmp_path / "eager" / "last.pt")[0], load_checkpoint(tmp_path / "fast" / "last.pt")[0]
    for name, value in a.state_dict.items():
        torch.testing.assert_close(b.state_dict[name], value, atol=1e-5, rtol=1e-4, msg=name)
