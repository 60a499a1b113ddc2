"""Synthesis settings beyond the left-right flip: front-back flips, smoothing across slices, and
the front-back flip as a training augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter1d

from mrsynth.errors import MrsynthError
from mrsynth.inference import Synthesizer
from mrsynth.model import ModelConfig
from mrsynth.training import TrainConfig, load_checkpoint, train_model
from mrsynth.training.augmentation import AugmentConfig, SliceAugmenter
from mrsynth.training.batches import Batch
from mrsynth.training.presets import DEFAULT, PAPER, Levers

from toy import toy_slices

TINY = dict(encoder_features=4, latent_channels=4, decoder_features=4)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    slices = toy_slices()
    run = tmp_path_factory.mktemp("run")
    train_model(slices, ModelConfig(inputs=slices.contrasts, target="flair", **TINY),
                TrainConfig(epochs=1, batch_size=8, device="cpu", progress=False), run)
    return load_checkpoint(run / "model.pt")[0], slices


def _raw(synthesizer: Synthesizer, stack: np.ndarray, present: list[bool], axes: tuple[int, ...]) -> np.ndarray:
    """The network's output for the ``axes``-flipped stack, flipped back, without any other step."""
    images = torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32))
    mask = torch.tensor(present).expand(len(stack), -1)
    with torch.inference_mode():
        flipped = images.flip(axes) if axes else images
        out = synthesizer.model(flipped, mask, decode_individual=False).image[:, 0]
    return (out.flip(axes) if axes else out).numpy()


def test_front_back_flips_average_every_combination_with_the_left_right_one(trained) -> None:
    checkpoint, slices = trained
    stack, present = np.asarray(slices.inputs[:6]), [True, False, True]
    background = ~((stack > 0) & np.array(present)[None, :, None, None]).any(axis=1)
    for flip_average, flip_ap, runs in [(True, True, [(), (-1,), (-2,), (-2, -1)]), (False, True, [(), (-1,)]),
                                        (True, False, [(), (-2,)]), (False, False, [()])]:
        synthesizer = Synthesizer(checkpoint, device="cpu", flip_average=flip_average, flip_ap=flip_ap, calibrate=False)
        assert sorted(synthesizer.flips) == sorted(runs)
        expected = np.mean([_raw(synthesizer, stack, present, axes) for axes in runs], axis=0)
        expected[background] = 0.0
        np.testing.assert_allclose(synthesizer.predict_stack(stack, present), expected, rtol=1e-5, atol=1e-6)
    # the front-back flips change the result: the toy model is not symmetric
    plain = Synthesizer(checkpoint, device="cpu", flip_average=True, flip_ap=False).predict_stack(stack, present)
    both = Synthesizer(checkpoint, device="cpu", flip_average=True, flip_ap=True).predict_stack(stack, present)
    assert not np.allclose(plain, both)


def test_slice_smoothing_is_a_gaussian_across_slices_before_masking(trained) -> None:
    checkpoint, slices = trained
    stack, present = np.asarray(slices.inputs[:8]), [True, True, False]
    raw = Synthesizer(checkpoint, device="cpu", flip_average=False, calibrate=False)
    smooth = Synthesizer(checkpoint, device="cpu", flip_average=False, calibrate=False, slice_smoothing=1.5)
    expected = gaussian_filter1d(_raw(raw, stack, present, ()), 1.5, axis=0, mode="nearest")
    expected[~((stack > 0) & np.array(present)[None, :, None, None]).any(axis=1)] = 0.0
    got = smooth.predict_stack(stack, present)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(got, raw.predict_stack(stack, present))
    with pytest.raises(ValueError, match="slice smoothing"):
        Synthesizer(checkpoint, device="cpu", slice_smoothing=-1.0)
    with pytest.raises(ValueError, match="slice_smoothing"):
        ModelConfig(inputs=("t1",), target="flair", slice_smoothing=-0.5)


def test_the_model_config_carries_them_and_a_resume_may_change_them(trained, tmp_path) -> None:
    checkpoint, _ = trained
    used = ModelConfig(inputs=checkpoint.model_config.inputs, target="flair", test_time_flip_ap=True,
                       slice_smoothing=1.5, **TINY)
    assert checkpoint.model_config.with_synthesis_of(used) == used  # synthesis-only settings
    assert ModelConfig.from_dict(used.to_dict()) == used
    assert used.describe_synthesis() == ("flip averaging: front-back; smoothing across slices: Gaussian, sigma 1.5 slices; "
                                         "mean calibration: off")
    assert "flip averaging: off; smoothing across slices: off" in checkpoint.model_config.describe_synthesis()
    old = {k: v for k, v in used.to_dict().items() if k not in ("test_time_flip_ap", "slice_smoothing")}
    assert ModelConfig.from_dict(old).slice_smoothing == 0.0  # checkpoints from before load with both off
    checkpoint.model_config = used
    synthesizer = Synthesizer(checkpoint, device="cpu")
    assert synthesizer.flip_ap is True and synthesizer.slice_smoothing == 1.5


def test_presets_and_lever_overrides() -> None:
    model, train = ModelConfig(inputs=("t1", "t2"), target="flair"), TrainConfig()
    default_model, default_train = DEFAULT.apply(model, train)
    assert default_model.test_time_flip_ap is True and default_model.slice_smoothing == 1.5
    assert default_train.augment.flip_ap == 0.5  # front-back flips in training: default since stop 21
    paper_model, paper_train = PAPER.apply(model, train)
    assert paper_model.test_time_flip_ap is False and paper_model.slice_smoothing == 0.0
    assert paper_train.augment.flip_ap == 0.0
    given = DEFAULT.apply(model, train, Levers(test_time_flip_ap=False, slice_smoothing=0.0, augment_flip_ap=0.25,
                                               augment_elastic=0.3))
    assert given[0].test_time_flip_ap is False and given[0].slice_smoothing == 0.0 and given[1].augment.flip_ap == 0.25
    assert default_train.augment.elastic == paper_train.augment.elastic == 0.0 and given[1].augment.elastic == 0.3


def _batch() -> Batch:
    images = torch.rand((6, 2, 12, 12), generator=torch.Generator().manual_seed(0)) + 0.5
    return Batch(images=images, present=torch.ones(6, 2, dtype=torch.bool), target=images[:, :1].clone())


def test_front_back_flip_augmentation_flips_inputs_and_target_and_keeps_the_other_draws() -> None:
    only_ap = AugmentConfig(enabled=True, probability=0.0, flip=0.0, flip_ap=1.0)
    batch = _batch()
    out = SliceAugmenter(only_ap, seed=2)(batch)
    torch.testing.assert_close(out.images, batch.images.flip(-1), rtol=0, atol=0)
    torch.testing.assert_close(out.target, batch.target.flip(-1), rtol=0, atol=0)
    # its random stream is its own: the other transforms draw as without it
    without = AugmentConfig(enabled=True, probability=1.0, flip=0.5)
    with_never = AugmentConfig(enabled=True, probability=1.0, flip=0.5, flip_ap=1e-9)
    torch.testing.assert_close(SliceAugmenter(without, seed=5)(batch).images,
                               SliceAugmenter(with_never, seed=5)(batch).images, rtol=0, atol=0)
    with pytest.raises(ValueError, match="probabilities"):
        AugmentConfig(flip_ap=1.5)


def test_synthesize_options_override_the_model(tmp_path, monkeypatch) -> None:
    from mrsynth.cli import main

    seen: dict[str, object] = {}

    def load(model, **options):  # record what the command asked for, then stop it with a user error
        seen.update(options)
        raise MrsynthError("recorded")

    monkeypatch.setattr(Synthesizer, "load", staticmethod(load))
    args = ["synthesize", "--model", "m.pt", "--input", "t1=t1.nii.gz", "--out", str(tmp_path / "o.nii.gz")]
    assert main(args + ["--no-flip-average-ap", "--slice-smoothing", "0.5"]) == 2
    assert seen["flip_ap"] is False and seen["slice_smoothing"] == 0.5
    assert main(args) == 2
    assert seen["flip_ap"] is None and seen["slice_smoothing"] is None  # not given: as the model says
