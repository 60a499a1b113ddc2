"""The levers beyond the paper: augmentation, cosine schedule, fused MSE term, test-time flip, presets."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from mrsynth.data.preprocessing import PreprocessConfig
from mrsynth.errors import MrsynthError
from mrsynth.inference import Synthesizer
from mrsynth.model import LossWeights, ModelConfig
from mrsynth.training import TrainConfig, load_checkpoint, train_model
from mrsynth.training.augmentation import AugmentConfig, SliceAugmenter
from mrsynth.training.batches import Batch
from mrsynth.training.config import StandIn
from mrsynth.training.presets import DEFAULT, PAPER, Levers, Preset, get_preset

from toy import toy_slices

TINY = dict(encoder_features=4, latent_channels=4, decoder_features=4)


def _batch(context: bool = False) -> Batch:
    generator = torch.Generator().manual_seed(0)
    shape = (6, 3, 3, 16, 16) if context else (6, 3, 16, 16)
    images = torch.rand(shape, generator=generator) + 0.5
    present = torch.ones(6, 3, dtype=torch.bool)
    present[0, 1] = False
    images[0, 1] = 0.0
    # the target is the first input's (centre) channel, so any geometric change must reach both alike
    target = (images[:, 0, 1] if context else images[:, 0]).unsqueeze(1).clone()
    return Batch(images=images, present=present, target=target)


@pytest.mark.parametrize("context", [False, True])
def test_augmentation_moves_inputs_and_target_together(context: bool) -> None:
    config = AugmentConfig(enabled=True, probability=1.0, flip=1.0, intensity_scale=0.0, gamma=(1.0, 1.0), bias_field=0.0)
    batch = _batch(context)
    out = SliceAugmenter(config, seed=1)(batch)
    first = out.images[:, 0, 1] if context else out.images[:, 0]
    assert out.images.shape == batch.images.shape and out.target.shape == batch.target.shape
    torch.testing.assert_close(first, out.target[:, 0])  # same geometry for input and target
    assert not torch.allclose(out.target, batch.target)  # and the geometry did change
    assert torch.count_nonzero(out.images[0, 1]) == 0  # an absent contrast stays empty


@pytest.mark.parametrize("context", [False, True])
def test_elastic_augmentation_warps_inputs_and_target_alike_and_keeps_the_other_draws(context: bool) -> None:
    only_elastic = AugmentConfig(enabled=True, probability=0.0, flip=0.0, elastic=1.0, elastic_spacing=4, elastic_magnitude=2.0)
    batch = _batch(context)
    out = SliceAugmenter(only_elastic, seed=1)(batch)
    first = out.images[:, 0, 1] if context else out.images[:, 0]
    torch.testing.assert_close(first, out.target[:, 0])  # one deformation for input and target
    moved = (out.target - batch.target).abs().mean(dim=(1, 2, 3))
    assert (moved > 0.01).all()  # every sample deformed (probability 1)
    torch.testing.assert_close(out.target.mean(), batch.target.mean(), rtol=0.1, atol=0)  # warped, not emptied
    assert torch.count_nonzero(out.images[0, 1]) == 0  # an absent contrast stays empty
    # its random stream is its own: the other transforms draw as without it
    without = AugmentConfig(enabled=True, probability=1.0, flip=0.5, flip_ap=0.5)
    with_never = replace(without, elastic=1e-9)
    torch.testing.assert_close(SliceAugmenter(without, seed=5)(batch).images,
                               SliceAugmenter(with_never, seed=5)(batch).images, rtol=0, atol=0)


def test_intensity_augmentation_changes_inputs_only_and_is_seeded() -> None:
    config = AugmentConfig(enabled=True, probability=1.0, flip=0.0, rotate_degrees=0.0, scale=0.0)
    batch = _batch()
    out = SliceAugmenter(config, seed=3)(batch)
    again = SliceAugmenter(config, seed=3)(batch)
    torch.testing.assert_close(out.target, batch.target, rtol=0, atol=0)
    assert not torch.allclose(out.images[:, 0], batch.images[:, 0])
    assert (out.images >= 0).all()
    torch.testing.assert_close(out.images, again.images, rtol=0, atol=0)


def test_augment_config_rejects_bad_ranges() -> None:
    with pytest.raises(ValueError, match="gamma"):
        AugmentConfig(gamma=(1.2, 0.8))
    with pytest.raises(ValueError, match="probabilities"):
        AugmentConfig(probability=2.0)
    with pytest.raises(ValueError, match="probabilities"):
        AugmentConfig(elastic=-0.1)
    with pytest.raises(ValueError, match="spacing"):
        AugmentConfig(elastic_spacing=0)


def test_cosine_schedule_decays_to_zero() -> None:
    config = TrainConfig(epochs=10, learning_rate=1e-3, schedule="cosine")
    rates = [config.learning_rate_at(e) for e in range(10)]
    assert rates[0] == pytest.approx(1e-3) and all(a > b for a, b in zip(rates, rates[1:])) and rates[-1] < 5e-5
    assert TrainConfig(learning_rate=2e-3).learning_rate_at(7) == 2e-3
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="step")


def test_fused_mse_term_enters_the_total(tmp_path) -> None:
    from mrsynth.model import MultiInputSynthesisNet, synthesis_loss

    torch.manual_seed(0)
    net = MultiInputSynthesisNet(ModelConfig(inputs=("t1", "t2"), target="flair", **TINY))
    images, present, target = torch.rand(2, 2, 16, 16), torch.ones(2, 2, dtype=torch.bool), torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        output = net(images, present)
    plain = synthesis_loss(output, target)
    with_mse = synthesis_loss(output, target, LossWeights(fused_mse=2.0))
    expected = float(((output.image.detach() - target) ** 2).mean())
    assert float(plain.fused_mse) == pytest.approx(expected, rel=1e-5)
    assert float(with_mse.total) == pytest.approx(float(plain.total) + 2 * expected, rel=1e-5)
    with pytest.raises(ValueError):
        LossWeights(fused_mse=-1.0)


def test_individual_mse_term_sums_each_latent_decoded_alone() -> None:
    from mrsynth.model import MultiInputSynthesisNet, synthesis_loss

    torch.manual_seed(0)
    net = MultiInputSynthesisNet(ModelConfig(inputs=("t1", "t2"), target="flair", **TINY))
    images, target = torch.rand(3, 2, 16, 16), torch.rand(3, 1, 16, 16)
    present = torch.tensor([[True, True], [True, False], [False, True]])
    with torch.no_grad():
        output = net(images, present)
    plain = synthesis_loss(output, target)
    weighted = synthesis_loss(output, target, LossWeights(individual_mse=0.5))
    # one term per (sample, present input) pair, summed and divided by the batch size, like the MAEs
    pairs = [(0, 0), (0, 1), (1, 0), (2, 1)]
    decoded = {(int(b), int(c)): image for b, c, image in zip(output.pair_batch, output.pair_contrast, output.individual_images)}
    expected = sum(float(((decoded[pair] - target[pair[0]]) ** 2).mean()) for pair in pairs) / 3
    assert sorted(decoded) == pairs
    assert float(plain.individual_mse) == pytest.approx(expected, rel=1e-5)
    assert float(weighted.total) == pytest.approx(float(plain.total) + 0.5 * expected, rel=1e-5)
    assert PAPER.resolve().individual_mse == 0.0 and DEFAULT.resolve().individual_mse == 1.0
    with pytest.raises(ValueError):
        LossWeights(individual_mse=-0.1)


def test_subset_fusion_term_decodes_each_proper_subset_of_the_present_inputs(tmp_path) -> None:
    from mrsynth.model import MultiInputSynthesisNet, synthesis_loss

    torch.manual_seed(0)
    net = MultiInputSynthesisNet(ModelConfig(inputs=("t1", "t1c", "t2"), target="flair", **TINY))
    images, target = torch.rand(3, 3, 16, 16), torch.rand(3, 1, 16, 16)
    present = torch.tensor([[True, True, True], [True, False, True], [False, True, False]])
    with torch.no_grad():
        plain_output = net(images, present)
        output = net(images, present, decode_subsets=True)
        # only sample 0 has a proper subset of two or more: its pairs t1+t1c, t1+t2, t1c+t2, in that order
        assert output.subset_batch.tolist() == [0, 0, 0]
        own = output.aligned_latents[output.pair_batch == 0]
        pairs = [torch.maximum(own[i], own[j]) for i, j in ((0, 1), (0, 2), (1, 2))]
        torch.testing.assert_close(output.subset_images, net.decoder(torch.stack(pairs)))
    torch.testing.assert_close(output.image, plain_output.image)  # the other outputs do not change
    torch.testing.assert_close(output.individual_images, plain_output.individual_images)
    assert plain_output.subset_images is None
    errors = [output.subset_images[q] - target[0] for q in range(3)]
    expected = sum(float(e.abs().mean() + e.square().mean()) for e in errors) / 3  # summed per sample, / batch size
    plain = synthesis_loss(output, target)
    weighted = synthesis_loss(output, target, LossWeights(subset_fusion=0.5))
    assert float(plain.subset_fusion) == pytest.approx(expected, rel=1e-5)
    assert float(weighted.total) == pytest.approx(float(plain.total) + 0.5 * expected, rel=1e-5)
    with pytest.raises(ValueError, match="decode_subsets"):
        synthesis_loss(plain_output, target, LossWeights(subset_fusion=1.0))
    with pytest.raises(ValueError, match="needs decode_individual"):
        net(images, present, decode_individual=False, decode_subsets=True)
    assert PAPER.resolve().subset_fusion == 0.0 and DEFAULT.resolve().subset_fusion == 1.0
    assert not PAPER.resolve().decoder_sees_inputs and DEFAULT.resolve().decoder_sees_inputs
    with pytest.raises(ValueError):
        LossWeights(subset_fusion=-1.0)
    # training with the term records it per epoch
    slices = toy_slices(contrasts=("t1", "t1c", "t2"))
    config = TrainConfig(epochs=1, batch_size=8, device="cpu", progress=False,
                         loss_weights=LossWeights(subset_fusion=1.0))
    result = train_model(slices, ModelConfig(inputs=slices.contrasts, target="flair", **TINY), config, tmp_path / "run")
    assert result.history[0]["train_subset_fusion"] > 0


def test_presets_fill_what_the_user_did_not_give() -> None:
    model, train = ModelConfig(inputs=("t1",), target="flair"), TrainConfig()
    paper_model, paper_train = PAPER.apply(model, train)
    assert paper_model.context_slices == 0 and not paper_model.test_time_flip
    assert not paper_train.augment.enabled and paper_train.schedule == "constant"
    assert paper_train.loss_weights == LossWeights() and paper_train.val_fraction == 0.2
    user_model, user_train = PAPER.apply(model, train, Levers(augment=True, context_slices=1))
    assert user_train.augment.enabled and user_model.context_slices == 1 and user_train.schedule == "constant"
    assert DEFAULT.apply(model, train, Levers(latent_variance=0.1))[1].loss_weights.latent_variance == 0.1
    assert DEFAULT.resolve().latent_variance == PAPER.resolve().latent_variance == 1.0  # recorded, not None
    assert PAPER.preprocess(PreprocessConfig()) == PreprocessConfig()
    chosen = PAPER.preprocess(PreprocessConfig(), Levers(input_normalisation="percentile"))
    assert chosen.resolved_input_normalisation == "percentile" and chosen.normalisation == "mean"
    assert get_preset("default") is DEFAULT
    with pytest.raises(ValueError, match="paper"):
        get_preset("fancy")


def test_augmented_cosine_training_runs_and_test_time_flip_is_recorded(tmp_path) -> None:
    slices = toy_slices()
    model_config = ModelConfig(inputs=slices.contrasts, target="flair", test_time_flip=True, context_slices=1, **TINY)
    config = TrainConfig(epochs=2, batch_size=8, device="cpu", progress=False, schedule="cosine", val_fraction=0.0,
                         augment=AugmentConfig(enabled=True), loss_weights=LossWeights(fused_mse=1.0))
    train_model(slices, model_config, config, tmp_path / "run")
    checkpoint, _ = load_checkpoint(tmp_path / "run" / "model.pt")
    assert checkpoint.train_config.augment.enabled and checkpoint.train_config.schedule == "cosine"
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["augment"]["enabled"] is True
    synth = Synthesizer(checkpoint, device="cpu")
    assert synth.flip_average is True and Synthesizer(checkpoint, device="cpu", flip_average=False).flip_average is False
    stack = np.asarray(slices.inputs[:5])
    mirrored = synth.predict_stack(stack[:, :, ::-1].copy(), [True, True, True])[:, ::-1]
    np.testing.assert_allclose(synth.predict_stack(stack, [True, True, True]), mirrored, atol=1e-5)


def test_warm_start_matches_encoders_by_contrast(tmp_path) -> None:
    from mrsynth.errors import CheckpointError
    from mrsynth.training.warm_start import load_warm_start, warm_start

    slices = toy_slices()  # inputs t1, t2, dwi
    source_config = ModelConfig(inputs=slices.contrasts, target="flair", **TINY)
    train_model(slices, source_config, TrainConfig(epochs=1, batch_size=8, device="cpu", progress=False), tmp_path / "src")
    source, _ = load_checkpoint(tmp_path / "src" / "model.pt")
    start = load_warm_start(tmp_path / "src", ModelConfig(inputs=("dwi", "pd"), target="flair", **TINY))
    assert start.initialised == ("dwi",) and start.fresh == ("pd",)
    dwi = source.model_config.inputs.index("dwi")
    for key, value in start.state_dict.items():
        if key.startswith("encoders.0."):
            torch.testing.assert_close(value, source.state_dict[f"encoders.{dwi}." + key[len("encoders.0."):]])
        elif not key.startswith("encoders."):
            torch.testing.assert_close(value, source.state_dict[key])
    with pytest.raises(CheckpointError, match="encoder_features"):
        warm_start(source, ModelConfig(inputs=("t1",), target="flair", encoder_features=8, latent_channels=4,
                                       decoder_features=4))
    with pytest.raises(CheckpointError, match="synthesises flair"):
        warm_start(source, ModelConfig(inputs=("t1",), target="t2", **TINY))


def test_warm_start_from_an_ensemble_starts_member_k_from_network_k(tmp_path) -> None:
    from mrsynth.training.checkpoint import combine_checkpoints, save_checkpoint
    from mrsynth.training.warm_start import load_warm_start, warn_unused_networks

    slices = toy_slices()
    config = ModelConfig(inputs=slices.contrasts, target="flair", **TINY)
    train_model(slices, config, TrainConfig(epochs=1, batch_size=8, device="cpu", progress=False), tmp_path / "src")
    first, _ = load_checkpoint(tmp_path / "src" / "model.pt")
    second = replace(first, state_dict={key: value + 1.0 for key, value in first.state_dict.items()})
    save_checkpoint(combine_checkpoints([first, second]), tmp_path / "pair.pt")
    key = "decoder.to_image.weight"
    starts = [load_warm_start(tmp_path / "pair.pt", config, member=k) for k in range(3)]
    for start, network in zip(starts, [first, second, first]):  # a third member cycles back to network 1
        torch.testing.assert_close(start.state_dict[key], network.state_dict[key])
    assert [start.source[-len("(network 1 of 2)"):] for start in starts] == [f"(network {n} of 2)" for n in (1, 2, 1)]
    with pytest.warns(UserWarning, match=r"holds 2 networks and this run trains 1: it starts from network 1 only"):
        load_warm_start(tmp_path / "pair.pt", config, member=0, ensemble=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as many networks as the run trains: nothing goes unused
        load_warm_start(tmp_path / "pair.pt", config, member=0, ensemble=2)
    with pytest.warns(UserWarning, match=r"holds 3 networks and this run trains 2: it starts from networks 1-2 only"):
        warn_unused_networks("trio.pt", 3, 2)  # also what a fold run says when its source ensemble is larger
    single = load_warm_start(tmp_path / "src", config, member=1)
    torch.testing.assert_close(single.state_dict[key], first.state_dict[key])
    assert single.source == str(tmp_path / "src")


WARM_PRESENT = torch.tensor([[True, True, True], [True, False, True], [False, False, True], [True, True, False]])


def _source_and_warm_started(tmp_path, **change):
    """A tiny trained model, the network it makes, and a network of its configuration with ``change``
    warm-started from it."""
    from mrsynth.model import MultiInputSynthesisNet
    from mrsynth.training.warm_start import warm_start

    slices = toy_slices()
    train_model(slices, ModelConfig(inputs=slices.contrasts, target="flair", **TINY),
                TrainConfig(epochs=1, batch_size=8, device="cpu", progress=False), tmp_path / "src")
    source, _ = load_checkpoint(tmp_path / "src" / "model.pt")
    original = MultiInputSynthesisNet(source.model_config)
    original.load_state_dict(source.state_dict)
    started = MultiInputSynthesisNet(replace(source.model_config, **change))
    started.load_state_dict(warm_start(source, started.config).state_dict)
    return source, original, started


def test_a_2d_warm_start_inflates_to_a_25d_model_that_computes_the_same(tmp_path) -> None:
    from mrsynth.errors import CheckpointError
    from mrsynth.training.warm_start import warm_start

    source, flat, deep = _source_and_warm_started(tmp_path, context_slices=1)
    images = torch.rand(4, 3, 3, 16, 16, generator=torch.Generator().manual_seed(1))  # (B, C, K, H, W): neighbours differ
    with torch.no_grad():
        expected = flat(images[:, :, 1], WARM_PRESENT).image
        torch.testing.assert_close(deep(images, WARM_PRESENT).image, expected)
        deep.encoders[0].down1[0].weight[:, 0] += 0.1  # the neighbours' weights are there to be learnt
        assert not torch.allclose(deep(images, WARM_PRESENT).image, expected)
    wider = replace(source.model_config, context_slices=2)
    with pytest.raises(CheckpointError, match="reads 1 neighbouring slice.*model 2"):
        warm_start(replace(source, model_config=deep.config, state_dict=deep.state_dict()), wider)


def test_a_shallower_decoder_starts_a_deeper_one_that_computes_the_same(tmp_path) -> None:
    from mrsynth.errors import CheckpointError
    from mrsynth.training.warm_start import warm_start

    source, shallow, deep = _source_and_warm_started(tmp_path, decoder_layers=4)
    assert [name for name, _ in deep.decoder.named_children()][:4] == ["conv1", "conv2", "conv3", "conv4"]
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = shallow(images, WARM_PRESENT).image
        torch.testing.assert_close(deep(images, WARM_PRESENT).image, expected)
        deep.decoder.to_image.weight[:, -1] += 0.1  # the new layers' outputs are there to be used
        assert not torch.allclose(deep(images, WARM_PRESENT).image, expected)
    with pytest.raises(CheckpointError, match="decoder has 4 layers and the model's 3"):
        warm_start(replace(source, model_config=deep.config, state_dict=deep.state_dict()),
                   replace(source.model_config, decoder_layers=3))
    with pytest.raises(ValueError, match="decoder_layers"):
        ModelConfig(inputs=("t1",), target="flair", decoder_layers=0)


def test_a_decoder_that_sees_the_inputs_starts_from_one_that_does_not_and_reads_the_marks(tmp_path) -> None:
    from mrsynth.model import MultiInputSynthesisNet, synthesis_loss
    from mrsynth.training.warm_start import warm_start

    source, plain, seeing = _source_and_warm_started(tmp_path, decoder_sees_inputs=True, decoder_layers=3)
    assert seeing.decoder.conv1.in_channels == plain.decoder.conv1.in_channels + 3  # one mark per input contrast
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = plain(images, WARM_PRESENT).image
        torch.testing.assert_close(seeing(images, WARM_PRESENT).image, expected)  # zero weights on the marks
        seeing.decoder.conv1.weight[:, 4 + 2] += 0.5  # the dwi mark (third input, after the 4 latent channels) is read
        moved = seeing(images, WARM_PRESENT).image
        assert not torch.allclose(moved[:3], expected[:3])  # samples 0-2 fuse dwi
        torch.testing.assert_close(moved[3], expected[3])  # sample 3 has no dwi: its mark is 0
        # in training, each latent decoded alone carries its own contrast's mark, each subset its members'
        output = seeing(images, WARM_PRESENT, decode_subsets=True)
        own = output.aligned_latents[output.pair_contrast == 2]
        alone = torch.cat([own, torch.zeros(len(own), 3, 16, 16)], dim=1)
        alone[:, 4 + 2] = 1.0
        torch.testing.assert_close(output.individual_images[output.pair_contrast == 2], seeing.decoder(alone))
        first = output.aligned_latents[output.pair_batch == 0]  # sample 0's pairs: t1+t2, t1+dwi, t2+dwi
        pair = torch.cat([torch.maximum(first[0], first[2])[None], torch.tensor([1.0, 0.0, 1.0])[None, :, None, None]
                          .expand(1, 3, 16, 16)], dim=1)
        torch.testing.assert_close(output.subset_images[1:2], seeing.decoder(pair))
    assert float(synthesis_loss(output, images[:, :1]).total) > 0
    # the seeing decoder starts another one that sees them, matched by contrast whatever the input order
    reordered = MultiInputSynthesisNet(replace(seeing.config, inputs=("dwi", "t1", "t2")))
    start = warm_start(replace(source, model_config=seeing.config, state_dict=seeing.state_dict()), reordered.config)
    torch.testing.assert_close(start.state_dict["decoder.conv1.weight"][:, 4], seeing.decoder.conv1.weight[:, 4 + 2])
    with pytest.warns(UserWarning, match="does not start out as the source's"):  # the marks' weights are dropped
        warm_start(replace(source, model_config=seeing.config, state_dict=seeing.state_dict()),
                   replace(seeing.config, decoder_sees_inputs=False))
    assert ModelConfig(inputs=("t1", "t2"), target="flair").decoder_in_channels == 16
    assert ModelConfig(inputs=("t1", "t2"), target="flair", decoder_sees_inputs=True).decoder_in_channels == 18


def test_ensemble_checkpoint_averages_its_members(tmp_path) -> None:
    from mrsynth.errors import CheckpointError
    from mrsynth.training import save_checkpoint
    from mrsynth.training.checkpoint import combine_checkpoints

    slices = toy_slices()
    model_config = ModelConfig(inputs=slices.contrasts, target="flair", **TINY)
    for seed in (0, 1):
        train_model(slices, model_config, TrainConfig(epochs=1, batch_size=8, device="cpu", progress=False, seed=seed),
                    tmp_path / f"s{seed}")
    a, b = (load_checkpoint(tmp_path / f"s{seed}" / "model.pt")[0] for seed in (0, 1))
    path = save_checkpoint(combine_checkpoints([a, b], ["a", "b"]), tmp_path / "ensemble.pt")
    ensemble, _ = load_checkpoint(path)
    assert len(ensemble.members) == 1 and [m["name"] for m in ensemble.training_data["ensemble"]] == ["a", "b"]
    stack, present = np.asarray(slices.inputs[:4]), [True, False, True]
    expected = 0.5 * (Synthesizer(a, device="cpu", flip_average=False).predict_stack(stack, present)
                      + Synthesizer(b, device="cpu", flip_average=False).predict_stack(stack, present))
    got = Synthesizer(ensemble, device="cpu", flip_average=False).predict_stack(stack, present)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # a model trained with cross-synthesis joins a plain one; its training-only input decoders are dropped
    train_model(slices, replace(model_config, cross_synthesis=True),
                TrainConfig(epochs=1, batch_size=8, device="cpu", progress=False, loss_weights=LossWeights(cross_synthesis=0.5)),
                tmp_path / "cross")
    cross = load_checkpoint(tmp_path / "cross" / "model.pt")[0]
    assert any(key.startswith("input_decoders.") for key in cross.state_dict)
    mixed, _ = load_checkpoint(save_checkpoint(combine_checkpoints([cross, a], ["cross", "a"]), tmp_path / "mixed.pt"))
    assert not mixed.model_config.cross_synthesis
    assert not any(key.startswith("input_decoders.") for state in [mixed.state_dict, *mixed.members] for key in state)
    expected = 0.5 * (Synthesizer(cross, device="cpu", flip_average=False).predict_stack(stack, present)
                      + Synthesizer(a, device="cpu", flip_average=False).predict_stack(stack, present))
    got = Synthesizer(mixed, device="cpu", flip_average=False).predict_stack(stack, present)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    other = load_checkpoint(tmp_path / "s1" / "model.pt")[0]
    other.preprocess = {"size": [8, 8]}
    with pytest.raises(CheckpointError, match="preprocessing differs"):
        combine_checkpoints([a, other], ["a", "odd"])


def test_resuming_a_finished_run_with_another_flip_rewrites_the_best_model(tmp_path, caplog) -> None:
    slices = toy_slices()
    config = TrainConfig(epochs=1, batch_size=8, device="cpu", progress=False)
    with_flip = ModelConfig(inputs=slices.contrasts, target="flair", test_time_flip=True, **TINY)
    train_model(slices, with_flip, config, tmp_path / "run", preprocess=PreprocessConfig().to_dict())
    train_model(slices, replace(with_flip, test_time_flip=False), config, tmp_path / "run", resume=True)
    assert load_checkpoint(tmp_path / "run" / "model.pt")[0].model_config.test_time_flip is False
    assert "other training settings" not in caplog.text
    train_model(slices, with_flip, replace(config, learning_rate=5e-4, epochs=2), tmp_path / "run", resume=True)
    assert "other training settings than it was started with: learning_rate 0.001 -> 0.0005" in caplog.text
    assert "epochs" not in caplog.text.split("started with:")[1]  # a longer run is not a different recipe
    assert "cosine" not in caplog.text  # with a constant rate, a longer run just goes on
    cosine = replace(config, schedule="cosine")
    train_model(slices, with_flip, cosine, tmp_path / "cosine", preprocess=PreprocessConfig().to_dict())
    train_model(slices, with_flip, replace(cosine, epochs=2), tmp_path / "cosine", resume=True)
    assert "for 2 epochs, where it was started for 1: its cosine learning rate" in caplog.text
    with pytest.raises(MrsynthError, match="other preprocessing"):
        train_model(slices, with_flip, config, tmp_path / "run", resume=True,
                    preprocess=PreprocessConfig(input_normalisation="percentile").to_dict())


def test_warmup_ramps_the_rate_within_the_first_epochs() -> None:
    config = TrainConfig(epochs=10, learning_rate=1e-3, schedule="cosine", warmup_epochs=2)
    assert config.learning_rate_at(0, 0.0) == pytest.approx(1e-6)
    assert config.learning_rate_at(0, 0.5) == pytest.approx(0.25e-3)
    assert config.learning_rate_at(1, 0.0) == pytest.approx(0.5 * 1e-3 * 0.5 * (1 + np.cos(np.pi / 10)))
    assert config.learning_rate_at(2, 0.0) == pytest.approx(1e-3 * 0.5 * (1 + np.cos(2 * np.pi / 10)))
    with pytest.raises(ValueError, match="warmup"):
        TrainConfig(warmup_epochs=-1)


def test_the_default_preset_starts_from_the_shipped_simulator_model_where_it_fits() -> None:
    from mrsynth.pretrained import shipped_models
    from mrsynth.training.warm_start import load_warm_start, resolve_init

    if "sim-flair" not in shipped_models():
        pytest.skip("no pretrained:sim-flair in this installation")
    assert DEFAULT.levers.init_from == "simulator" and PAPER.levers.init_from == "none"
    fits = ModelConfig(inputs=("t2", "t1"), target="flair", encoder_features=16)
    assert resolve_init("simulator", fits) == "pretrained:sim-flair"
    assert load_warm_start("pretrained:sim-flair", fits).initialised == ("t2", "t1")
    assert resolve_init("simulator", replace(fits, context_slices=1)) == "pretrained:sim-flair"  # inflated to 2.5D
    with pytest.warns(UserWarning, match="pretrained:sim-flair does not fit this model.*encoder_features: 16 there, 8 here"):
        assert resolve_init("simulator", ModelConfig(inputs=("t1",), target="flair", encoder_features=8)) is None
    percentile = PreprocessConfig(size=(48, 48), input_normalisation="percentile")
    with pytest.warns(UserWarning, match="trained with each volume / its brain mean; this run uses inputs / their 99th"):
        load_warm_start("pretrained:sim-flair", fits, preprocess=percentile)
    assert resolve_init("simulator", ModelConfig(inputs=("t1",), target="t2", encoder_features=16)) is None
    assert resolve_init("none", fits) is None and resolve_init("runs/x", fits) == "runs/x"


def test_ensemble_size_is_the_presets_unless_given() -> None:
    assert DEFAULT.ensemble_size() == 2 and PAPER.ensemble_size() == 1  # the default averages 2 seeds since stop 24
    assert DEFAULT.ensemble_size(Levers(ensemble=3)) == 3
    with pytest.raises(ValueError, match="at least 1 model"):
        PAPER.ensemble_size(Levers(ensemble=0))


def test_a_presets_stand_in_acts_only_where_the_model_has_both_contrasts_and_the_users_must_fit() -> None:
    def stand_in(preset, inputs, levers=None):
        return preset.apply(ModelConfig(inputs=inputs, target="flair"), TrainConfig(), levers)[1].stand_in

    assert stand_in(DEFAULT, ("t1", "t1c", "t2")) is None and stand_in(PAPER, ("t1", "t1c")) is None  # off in both
    with_stand_in = Preset("with-stand-in", "the default, T1 standing in for T1c", replace(DEFAULT.levers, stand_in="t1:t1c"))
    assert stand_in(with_stand_in, ("t1", "t1c", "t2")) == StandIn("t1", "t1c", 0.5)
    assert stand_in(with_stand_in, ("t1", "t2")) is None and stand_in(with_stand_in, ("t1c",)) is None  # dropped, no error
    assert stand_in(with_stand_in, ("t1", "t1c"), Levers(stand_in="none")) is None
    assert stand_in(with_stand_in, ("t1", "t1c"), Levers(stand_in_probability=0.0)) is None
    assert stand_in(PAPER, ("t2", "flair"), Levers(stand_in="t2:flair", stand_in_probability=1.0)) == StandIn("t2", "flair", 1.0)
    with pytest.raises(MrsynthError, match=r"--stand-in t1:t1c: t1c is not among the model's inputs \(t1, t2\)"):
        stand_in(DEFAULT, ("t1", "t2"), Levers(stand_in="t1:t1c"))  # the user's own: an error before any training
    config = TrainConfig(stand_in=StandIn("t1", "t1c"))
    assert config.for_inputs(("t1", "t1c")) is config and config.for_inputs(("t1", "t2")).stand_in is None
