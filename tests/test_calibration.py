"""Mean calibration of a synthesised volume, and how the presets switch it."""

import numpy as np
import pytest

from mrsynth.errors import CheckpointError, MrsynthError
from mrsynth.inference.calibration import calibrate_mean, calibration_factor
from mrsynth.model.config import ModelConfig
from mrsynth.training.config import TrainConfig
from mrsynth.training.presets import DEFAULT, PAPER, Levers


def _stack(rng: np.random.Generator) -> np.ndarray:
    inputs = rng.uniform(0.5, 1.5, size=(6, 2, 8, 8)).astype(np.float32)
    inputs[:, :, :2] = 0.0  # background rows in every input
    inputs[:, 1, :, -2:] = 0.0  # the second input's brain is smaller
    return inputs


def test_factor_restores_the_inputs_mean_over_their_common_brain() -> None:
    inputs = _stack(np.random.default_rng(0))
    common = (inputs > 0).all(axis=1)
    truth = np.where(common, 1.3 * inputs.mean(axis=1), 0.0).astype(np.float32)
    expected = np.mean([inputs[:, c][common].mean() for c in range(2)])
    prediction = 0.7 * truth
    calibrated = calibrate_mean(prediction, inputs, np.array([True, True]))
    assert calibrated.dtype == prediction.dtype
    assert calibrated[common].mean() == pytest.approx(expected, rel=1e-5)
    assert calibration_factor(calibrated, inputs, np.array([True, True])) == pytest.approx(1.0, rel=1e-5)
    # only the present input counts: with the first alone, its own mean over its own brain
    alone = calibrate_mean(prediction, inputs, np.array([True, False]))
    brain = inputs[:, 0] > 0
    assert alone[brain].mean() == pytest.approx(inputs[:, 0][brain].mean(), rel=1e-5)


def test_factor_is_one_without_common_brain_or_signal_and_shapes_are_checked() -> None:
    inputs = _stack(np.random.default_rng(1))
    assert calibration_factor(np.zeros((6, 8, 8), np.float32), inputs, np.array([True, True])) == 1.0
    disjoint = inputs.copy()
    disjoint[:, 0, 4:] = 0.0
    disjoint[:, 1, :4] = 0.0
    assert calibration_factor(np.ones((6, 8, 8), np.float32), disjoint, np.array([True, True])) == 1.0
    with pytest.raises(ValueError, match="do not fit"):
        calibration_factor(np.ones((5, 8, 8), np.float32), inputs, np.array([True, True]))


def test_default_preset_calibrates_paper_does_not_and_percentile_scaling_excludes_it() -> None:
    model, train = ModelConfig(inputs=("t1", "t2"), target="flair"), TrainConfig()
    assert DEFAULT.apply(model, train)[0].calibrate_mean is True
    assert PAPER.apply(model, train)[0].calibrate_mean is False
    assert PAPER.apply(model, train, Levers(calibrate_mean=True))[0].calibrate_mean is True
    assert DEFAULT.apply(model, train, Levers(input_normalisation="percentile"))[0].calibrate_mean is False
    with pytest.raises(MrsynthError, match="percentile"):
        DEFAULT.apply(model, train, Levers(input_normalisation="percentile", calibrate_mean=True))


def test_calibration_is_a_synthesis_setting() -> None:
    trained = ModelConfig(inputs=("t1",), target="flair")
    used = ModelConfig(inputs=("t1",), target="flair", test_time_flip=True, calibrate_mean=True)
    assert trained.with_synthesis_of(used) == used
    assert ModelConfig.from_dict(trained.to_dict()).calibrate_mean is False


def test_synthesizer_calibrates_on_request_and_refuses_other_input_scaling() -> None:
    import dataclasses

    from mrsynth.inference import Synthesizer
    from mrsynth.pretrained import resolve_model_path
    from mrsynth.training.checkpoint import load_checkpoint

    checkpoint, _ = load_checkpoint(resolve_model_path("pretrained:sim-flair"))
    assert checkpoint.model_config.calibrate_mean is False  # shipped before calibration: off unless asked
    rng = np.random.default_rng(2)
    stack = np.zeros((3, len(checkpoint.model_config.inputs), 48, 48), np.float32)
    stack[:, :, 8:40, 8:40] = rng.uniform(0.5, 1.5, size=(3, stack.shape[1], 32, 32))
    present = np.array([True] + [False] * (stack.shape[1] - 1))
    plain = Synthesizer(checkpoint, device="cpu").predict_stack(stack, present)
    calibrated = Synthesizer(checkpoint, device="cpu", calibrate=True).predict_stack(stack, present)
    brain = stack[:, 0] > 0
    assert calibrated[brain].mean() == pytest.approx(stack[:, 0][brain].mean(), rel=1e-4)
    assert np.allclose(calibrated, plain * calibration_factor(plain, stack, present), rtol=1e-5)
    percentile = dict(checkpoint.preprocess, input_normalisation="percentile")
    other = dataclasses.replace(checkpoint, preprocess=percentile)
    with pytest.raises(CheckpointError, match="mean calibration needs"):
        Synthesizer(other, device="cpu", calibrate=True)
