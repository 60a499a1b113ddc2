"""Baselines on a tiny synthetic problem: target = 0.5*a + a*b inside an elliptic "brain"."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from mrsynth.baselines import (
    Baseline,
    ContextConfig,
    DedisBaseline,
    DedisConfig,
    ForestBaseline,
    ForestConfig,
    LinearBaseline,
    make_baseline,
)
from mrsynth.baselines.base import complete_rows, subject_runs
from mrsynth.baselines.context_features import extract_features, feature_names, features_per_input
from mrsynth.data.slices import SliceSet
from mrsynth.errors import DataError

S, H, W = 8, 16, 16
TINY_CONTEXT = ContextConfig(radii=(2, 4), n_directions=4)
TINY_FOREST = ForestConfig(n_estimators=12, min_samples_leaf=2, samples_per_subject=1500, context=TINY_CONTEXT)


def _brain() -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    inside = ((yy - 7.5) / 6.5) ** 2 + ((xx - 7.5) / 5.5) ** 2 <= 1.0
    return np.broadcast_to(inside, (S, H, W))


def _blob(rng: np.random.Generator) -> np.ndarray:
    field = gaussian_filter(rng.normal(size=(S, H, W)), sigma=(1.0, 1.5, 1.5))
    ranks = np.argsort(np.argsort(field, axis=None)).reshape(field.shape) / field.size  # uniform in [0, 1)
    return (0.2 + 1.8 * ranks) * _brain()


def _subjects(n: int = 3, relation=lambda a, b: 0.5 * a + a * b, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` subjects as ((S, 2, H, W) stack of a and b, (S, H, W) target)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a, b = _blob(rng), _blob(rng)
        out.append((np.stack([a, b], axis=1).astype(np.float32), (relation(a, b) * _brain()).astype(np.float32)))
    return out


def _slice_set(subjects: list[tuple[np.ndarray, np.ndarray]], present: np.ndarray | None = None) -> SliceSet:
    inputs = np.concatenate([s for s, _ in subjects]).copy()
    target = np.concatenate([t for _, t in subjects])
    n = inputs.shape[0]
    present = np.ones((n, 2), dtype=bool) if present is None else present
    inputs[~present] = 0.0
    return SliceSet(
        inputs=inputs,
        present=present,
        target=target,
        subject=np.repeat(np.arange(len(subjects)), S),
        slice_index=np.tile(np.arange(S), len(subjects)),
        subjects=tuple(f"s{i}" for i in range(len(subjects))),
        contrasts=("a", "b"),
    )


@pytest.fixture(scope="module")
def problem() -> tuple[SliceSet, np.ndarray, np.ndarray]:
    """Training slices of two subjects and the held-out stack and target of a third."""
    subjects = _subjects()
    return _slice_set(subjects[:2]), subjects[2][0], subjects[2][1]


@pytest.fixture(scope="module")
def fitted(problem) -> dict[str, Baseline]:
    train = problem[0]
    return {
        "linear": LinearBaseline().fit(train, ("a", "b")),
        "rf": ForestBaseline(TINY_FOREST).fit(train, ("a", "b")),
        "dedis": DedisBaseline(DedisConfig(epochs=5, batch_size=4, lr=5e-3, features=8)).fit(train, ("a",)),
    }


def _mse(pred: np.ndarray, target: np.ndarray) -> float:
    mask = target > 0
    return float(np.mean((pred[mask] - target[mask]) ** 2))


def test_forest_beats_linear_on_held_out_subject(problem, fitted) -> None:
    _, stack, target = problem
    linear_mse = _mse(fitted["linear"].predict_volume(stack), target)
    forest_mse = _mse(fitted["rf"].predict_volume(stack), target)
    assert forest_mse < 0.5 * linear_mse


def test_forest_on_two_cores_gives_the_same_prediction(problem, fitted) -> None:
    train, stack, _ = problem
    parallel = ForestBaseline(replace(TINY_FOREST, n_jobs=2)).fit(train, ("a", "b"))
    assert parallel.forest.n_jobs == 2
    np.testing.assert_allclose(parallel.predict_volume(stack), fitted["rf"].predict_volume(stack), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["linear", "rf", "dedis"])
def test_background_zero_and_non_negative(problem, fitted, name) -> None:
    baseline = fitted[name]
    assert isinstance(baseline, Baseline) and baseline.name == name
    stack = problem[1][:, : len(baseline.inputs)].copy()
    stack[:, :, :, :3] = 0.0  # widen the background: these columns have no input at all
    pred = baseline.predict_volume(stack)
    assert pred.shape == (S, H, W) and pred.dtype == np.float32
    assert np.all(pred >= 0)
    assert np.all(pred[~np.any(stack != 0, axis=1)] == 0)


def test_linear_recovers_exact_linear_relation_ignoring_incomplete_slices() -> None:
    subjects = _subjects(2, relation=lambda a, b: 2.0 * a + 0.5 * b + 0.3, seed=1)
    present = np.ones((2 * S, 2), dtype=bool)
    present[[2, 3, 11], 1] = False  # b missing on three slices
    train = _slice_set(subjects, present)
    train.target[[2, 3, 11]] = 50.0 * _brain()[0]  # garbage that must not be learnt from
    model = LinearBaseline().fit(train, ("a", "b"))
    np.testing.assert_allclose(model.coef, [2.0, 0.5, 0.3], atol=1e-4)
    stack, target = subjects[0]
    np.testing.assert_allclose(model.predict_volume(stack), target, atol=1e-4)
    single = LinearBaseline().fit(train, ("a",))  # all slices have a: uses the garbage ones too
    assert single.coef[-1] > 1.0


def test_forest_uses_only_complete_slices() -> None:
    subjects = _subjects(2, seed=2)
    present = np.ones((2 * S, 2), dtype=bool)
    present[[0, 1, 2, 12], 1] = False
    train = _slice_set(subjects, present)
    train.target[[0, 1, 2, 12]] = 50.0 * _brain()[0]
    model = ForestBaseline(TINY_FOREST).fit(train, ("a", "b"))
    assert model.n_training_voxels == (2 * S - 4) * int(_brain()[0].sum())
    assert model.predict_volume(subjects[0][0]).max() < 10.0
    runs = [(subject, rows.tolist()) for subject, rows in subject_runs(train, ("a", "b"))]
    assert runs == [(0, list(range(3, 8))), (1, [8, 9, 10, 11]), (1, [13, 14, 15])]


def test_missing_input_everywhere_is_a_data_error() -> None:
    train = _slice_set(_subjects(1), np.array([[True, False]] * S))
    with pytest.raises(DataError):
        complete_rows(train, ("a", "b"))
    with pytest.raises(DataError):
        LinearBaseline().fit(train, ("a", "c"))


def test_context_features_are_box_means() -> None:
    stack = np.zeros((3, 1, 9, 9), dtype=np.float32)
    stack[1, 0, 4, 4] = 27.0
    cfg = ContextConfig(patch_radius=1, radii=(2,), n_directions=4, box_depth=3)
    names = feature_names(("a",), cfg)
    feats = extract_features(stack, np.array([np.ravel_multi_index((1, 4, 4), (3, 9, 9)), np.ravel_multi_index((1, 4, 6), (3, 9, 9))]), cfg)
    assert feats.shape == (2, features_per_input(cfg)) == (2, len(names))
    assert feats[0, names.index("a:patch(0,0,0)")] == 27.0
    # the box 2 voxels to the left of (1, 4, 6) is centred on the spike: mean over 3x3x3 = 1
    assert feats[1, names.index("a:box(r=2,0,-2)")] == pytest.approx(1.0)
    assert feats[1, names.index("a:box(r=2,0,2)")] == 0.0


def test_dedis_learns_and_rejects_two_inputs(problem, fitted) -> None:
    model = fitted["dedis"]
    assert len(model.loss_history) == 5 and model.loss_history[-1] < 0.8 * model.loss_history[0]
    odd = np.abs(np.random.default_rng(0).normal(size=(3, 1, 18, 18))).astype(np.float32)
    assert model.predict_volume(odd).shape == (3, 18, 18)  # padded to a multiple of 4, cropped back
    with pytest.raises(ValueError):
        DedisBaseline(DedisConfig(epochs=1)).fit(problem[0], ("a", "b"))
    with pytest.raises(RuntimeError):
        make_baseline("dedis").predict_volume(odd)


def test_slab_wise_features_match_whole_stack() -> None:
    from mrsynth.baselines.context_features import iter_slabs, z_margin

    stack = _subjects(1, seed=3)[0][0]
    cfg = ContextConfig(radii=(2, 4), n_directions=8, box_depth=3)
    whole = extract_features(stack, np.arange(S * H * W), cfg).reshape(S, H * W, -1)
    for lo, hi, z0, z1 in iter_slabs(S, 3, z_margin(cfg)):
        part = extract_features(stack[lo:hi], np.arange((z0 - lo) * H * W, (z1 - lo) * H * W), cfg)
        np.testing.assert_allclose(part.reshape(z1 - z0, H * W, -1), whole[z0:z1], rtol=1e-6, atol=1e-6)
