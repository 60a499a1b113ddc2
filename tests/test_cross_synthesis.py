"""Cross-synthesis: training-only decoders that synthesise every input contrast from the latents."""

from __future__ import annotations

import pytest
import torch

from mrsynth.inference import Synthesizer
from mrsynth.model import LossWeights, ModelConfig, MultiInputSynthesisNet, cross_synthesis_mae, synthesis_loss
from mrsynth.training import TrainConfig, load_checkpoint, train_model
from mrsynth.training.augmentation import AugmentConfig, SliceAugmenter
from mrsynth.training.batches import Batch
from mrsynth.training.presets import DEFAULT, PAPER, Levers
from mrsynth.training.trainer import progress_terms
from mrsynth.training.warm_start import warm_start

from toy import toy_slices

TINY = dict(encoder_features=4, latent_channels=4, decoder_features=4)


def _net(cross: bool, seed: int = 0) -> MultiInputSynthesisNet:
    torch.manual_seed(seed)
    return MultiInputSynthesisNet(ModelConfig(inputs=("t1", "t1c", "t2"), target="flair", cross_synthesis=cross, **TINY))


def test_cross_synthesis_mae_compares_each_decoded_latent_with_each_present_input() -> None:
    net = _net(cross=True)
    images = torch.rand(2, 3, 8, 8) + 0.5
    present = torch.tensor([[True, False, True], [True, True, True]])
    with torch.no_grad():
        output = net(images, present)
    assert output.input_images is not None and output.input_images.shape == (3, 2 + 5, 1, 8, 8)
    # by hand: rows are the 2 fused latents, then the 5 (sample, contrast) pairs in order
    samples = [0, 1] + output.pair_batch.tolist()
    total = 0.0
    for c in range(3):
        for row, b in enumerate(samples):
            if present[b, c]:
                total += float((output.input_images[c, row, 0] - images[b, c]).abs().mean())
    assert float(cross_synthesis_mae(output, images)) == pytest.approx(total / (2 * 3), rel=1e-5)
    # an absent contrast's slice does not count, whatever it holds
    changed = images.clone()
    changed[0, 1] = 100.0
    assert float(cross_synthesis_mae(output, changed)) == pytest.approx(total / 6, rel=1e-5)
    # a contrast the sample has but input dropout hid from the encoders is synthesised too
    hidden = sum(float((output.input_images[1, row, 0] - changed[0, 1]).abs().mean())
                 for row, b in enumerate(samples) if b == 0)
    available = torch.ones(2, 3, dtype=torch.bool)
    assert float(cross_synthesis_mae(output, changed, available)) == pytest.approx((total + hidden) / 6, rel=1e-5)
    # 2.5D inputs: the centre slice is what the input decoders synthesise
    context = torch.stack([images * 0, images, images * 0], dim=2)
    assert float(cross_synthesis_mae(output, context)) == pytest.approx(total / 6, rel=1e-5)


def test_cross_synthesis_enters_the_total_with_its_weight_and_leaves_synthesis_alone() -> None:
    images, present, target = torch.rand(2, 3, 8, 8), torch.ones(2, 3, dtype=torch.bool), torch.rand(2, 1, 8, 8)
    plain, cross = _net(cross=False), _net(cross=True)
    assert cross.input_decoders is not None and plain.input_decoders is None
    with torch.no_grad():
        output = cross(images, present)
        assert cross(images, present, decode_individual=False).input_images is None
    off = synthesis_loss(output, target, LossWeights(), inputs=images)
    on = synthesis_loss(output, target, LossWeights(cross_synthesis=0.5), inputs=images)
    assert float(on.total) == pytest.approx(float(off.total) + 0.5 * float(off.cross_mae), rel=1e-5)
    assert float(off.cross_mae) > 0
    with pytest.raises(ValueError, match="input slices"):
        synthesis_loss(output, target, LossWeights(cross_synthesis=1.0))
    with torch.no_grad():
        plain_output = plain(images, present)
    with pytest.raises(ValueError, match="input decoders"):
        synthesis_loss(plain_output, target, LossWeights(cross_synthesis=1.0), inputs=images)
    assert float(synthesis_loss(plain_output, target).cross_mae) == 0.0
    # the input decoders take no part in synthesis: the shared weights alone give the same image
    plain.load_state_dict({k: v for k, v in cross.state_dict().items() if not k.startswith("input_decoders.")})
    with torch.no_grad():
        torch.testing.assert_close(plain(images, present, decode_individual=False).image,
                                   cross(images, present, decode_individual=False).image)


def test_the_lever_builds_the_decoders_and_sets_the_weight() -> None:
    model, train = ModelConfig(inputs=("t1", "t2"), target="flair"), TrainConfig()
    for preset in (DEFAULT, PAPER):
        off_model, off_train = preset.apply(model, train)
        assert not off_model.cross_synthesis and off_train.loss_weights.cross_synthesis == 0.0
    on_model, on_train = DEFAULT.apply(model, train, Levers(cross_synthesis=0.5))
    assert on_model.cross_synthesis and on_train.loss_weights.cross_synthesis == 0.5
    with pytest.raises(ValueError, match="cross-synthesis"):
        DEFAULT.apply(model, train, Levers(cross_synthesis=-1.0))


def test_the_progress_bar_shows_the_weighted_optional_terms() -> None:
    values = {"total": 1.0, "fused_mae": 0.5, "latent_variance": 0.25, "individual_mae": 0.125, "fused_mse": 0.0625,
              "cross_mae": 0.03125}
    assert list(progress_terms(values, LossWeights())) == ["loss", "mae", "mvv", "ind"]  # the paper's cost
    shown = progress_terms(values, LossWeights(fused_mse=1.0, cross_synthesis=0.5))
    assert shown["mse"] == "0.0625" and shown["cross"] == "0.0312" and shown["loss"] == "1.0000"


def test_input_decoders_learn_from_the_inputs_before_intensity_augmentation() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(4, 2, 16, 16, generator=generator) + 0.5
    batch = Batch(images=images, present=torch.ones(4, 2, dtype=torch.bool), target=images[:, :1].clone())
    assert batch.input_targets is batch.images
    intensity_only = AugmentConfig(enabled=True, probability=1.0, flip=0.0, rotate_degrees=0.0, scale=0.0)
    out = SliceAugmenter(intensity_only, seed=2)(batch)
    assert not torch.allclose(out.images, images)
    torch.testing.assert_close(out.input_targets, images, rtol=0, atol=1e-5)
    flipped = SliceAugmenter(AugmentConfig(enabled=True, probability=0.0, flip=1.0), seed=2)(batch)
    torch.testing.assert_close(flipped.input_targets, images.flip(-2), rtol=0, atol=1e-6)  # the geometry does apply


def test_a_training_step_gives_the_input_decoders_the_clean_inputs_and_updates_them() -> None:
    from mrsynth.training.trainer import train_step

    net = _net(cross=True)
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(4, 3, 8, 8, generator=generator) + 0.5
    clean = images * 0.5
    present = torch.ones(4, 3, dtype=torch.bool)
    present[0, 2] = False
    available = torch.ones(4, 3, dtype=torch.bool)
    batch = Batch(images=images, present=present, target=images[:, :1].clone(), clean_images=clean, available=available)
    with torch.no_grad():
        expected = float(cross_synthesis_mae(net(images, present), clean, available))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    config = TrainConfig(device="cpu", loss_weights=LossWeights(cross_synthesis=1.0))
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    terms = train_step(net, optimiser, batch, config, torch.device("cpu"), amp=False)
    assert float(terms.cross_mae.detach()) == pytest.approx(expected, rel=1e-5)
    assert not torch.equal(before["input_decoders.2.to_image.weight"], net.state_dict()["input_decoders.2.to_image.weight"])


def test_batches_keep_what_input_dropout_hid() -> None:
    import numpy as np

    from mrsynth.training.batches import iterate_batches

    slices = toy_slices()
    rows = np.arange(len(slices))
    batches = list(iterate_batches(slices, rows, 8, torch.device("cpu"), np.random.default_rng(0), input_dropout=0.6))
    assert all(b.available is None or b.available.sum() > b.present.sum() for b in batches)
    hid = [b for b in batches if b.available is not None]
    assert hid and all(bool((b.present <= b.available).all()) for b in hid)
    assert all(b.available is None for b in iterate_batches(slices, rows, 8, torch.device("cpu"), np.random.default_rng(0)))


def test_a_cross_synthesis_model_trains_synthesises_and_starts_from_a_plain_one(tmp_path) -> None:
    slices = toy_slices()
    model_config = ModelConfig(inputs=slices.contrasts, target="flair", cross_synthesis=True, **TINY)
    config = TrainConfig(epochs=2, batch_size=8, device="cpu", progress=False, val_fraction=0.0,
                         augment=AugmentConfig(enabled=True), loss_weights=LossWeights(cross_synthesis=1.0))
    torch.manual_seed(0)
    fresh = MultiInputSynthesisNet(model_config).state_dict()
    result = train_model(slices, model_config, config, tmp_path / "run")
    assert all(row["train_cross_mae"] > 0 for row in result.history)
    checkpoint, _ = load_checkpoint(tmp_path / "run" / "model.pt")
    assert checkpoint.model_config.cross_synthesis
    trained = checkpoint.state_dict
    assert all(not torch.equal(trained[k], fresh[k]) for k in trained if k.startswith("input_decoders.") and k.endswith("weight"))
    synthesizer = Synthesizer.load(tmp_path / "run", device="cpu")
    stack = slices.inputs[: 6]
    synthesised = synthesizer.predict_stack(stack, [True] * len(slices.contrasts))
    assert synthesised.shape == (6, *stack.shape[-2:]) and synthesised.max() > 0
    # a cross-synthesis model starts a plain one (its input decoders left out)
    plain = ModelConfig(inputs=slices.contrasts, target="flair", **TINY)
    started = warm_start(checkpoint, plain)
    assert not any(key.startswith("input_decoders.") for key in started.state_dict)
    torch.testing.assert_close(started.state_dict["decoder.to_image.weight"], checkpoint.state_dict["decoder.to_image.weight"])
    # input decoders are matched by contrast, like the encoders; a shallower source's are widened
    reordered = ModelConfig(inputs=tuple(reversed(slices.contrasts)), target="flair", cross_synthesis=True,
                            decoder_layers=3, **TINY)
    back = warm_start(checkpoint, reordered).state_dict
    last = len(slices.contrasts) - 1
    torch.testing.assert_close(back["input_decoders.0.conv1.weight"], trained[f"input_decoders.{last}.conv1.weight"])
    head, source_head = back["input_decoders.0.to_image.weight"], trained[f"input_decoders.{last}.to_image.weight"]
    torch.testing.assert_close(head[:, : source_head.shape[1]], source_head)
    assert not head[:, source_head.shape[1]:].any()  # the new layer's output weights start at zero
