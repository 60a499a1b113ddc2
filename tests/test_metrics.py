"""Masked image metrics and the per-(method, subset) metric table."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from mrsynth.evaluation.metrics import (
    MetricTable,
    VolumeMetrics,
    compute_volume_metrics,
    masked_mae,
    masked_psnr,
    masked_ssim,
    nonbackground_mask,
    nonbackground_mse,
)


def _blob_volume(seed: int = 0, shape: tuple[int, int, int] = (3, 12, 12)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vol = rng.uniform(0.5, 2.0, size=shape).astype(np.float32)
    vol[:, :2] = 0.0  # background rows
    return vol


def test_hand_computed_values_exclude_background() -> None:
    target = np.array([[[0.0, 1.0], [2.0, 3.0]]])
    pred = np.array([[[5.0, 1.0], [1.0, 5.0]]])  # error 5 on the background voxel is ignored
    assert nonbackground_mask(target).tolist() == [[[False, True], [True, True]]]
    assert nonbackground_mse(pred, target) == pytest.approx(5.0 / 3.0)
    assert masked_mae(pred, target) == pytest.approx(1.0)
    assert masked_psnr(pred, target) == pytest.approx(10 * math.log10(9.0 / (5.0 / 3.0)))
    mask = np.array([[[False, False], [True, False]]])
    assert nonbackground_mse(pred, target, mask) == pytest.approx(1.0)
    assert masked_psnr(pred, target, mask) == pytest.approx(10 * math.log10(4.0))


def test_identical_prediction_is_perfect() -> None:
    target = _blob_volume()
    m = compute_volume_metrics(target.copy(), target)
    assert m.mse == 0.0 and m.mae == 0.0 and math.isinf(m.psnr)
    assert m.ssim == pytest.approx(1.0, abs=1e-9)


def test_ssim_is_the_mask_average_of_skimage_slice_maps() -> None:
    target = _blob_volume(1)
    pred = target + np.random.default_rng(2).normal(0, 0.2, target.shape).astype(np.float32)
    mask = target > 0
    dr = float(target[mask].max())
    maps = [structural_similarity(t, p, win_size=7, data_range=dr, full=True)[1] for t, p in zip(target.astype(np.float64), pred.astype(np.float64))]
    expected = np.concatenate([mp[mk] for mp, mk in zip(maps, mask)]).mean()
    assert masked_ssim(pred, target) == pytest.approx(expected)
    assert masked_ssim(pred, target) < 1.0


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError):
        nonbackground_mse(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError):
        nonbackground_mse(np.zeros((2, 2)), np.zeros((2, 2)))  # all background


def _row(mse: float) -> VolumeMetrics:
    return VolumeMetrics(mse=mse, mae=mse / 2, psnr=10 * mse, ssim=1 - mse / 10)


def test_table_mean_sd_and_outputs(tmp_path) -> None:
    table = MetricTable()
    for subject, mse in zip("abc", (1.0, 2.0, 3.0)):
        table.add(subject, "proposed", "T1", _row(mse))
    table.add("a", "rf", "T1", _row(4.0))
    table.add("a", "rf", "T1+T2", _row(0.5))
    summary = {(g.method, g.subset): g for g in table.summary()}
    g = summary[("proposed", "T1")]
    assert g.n == 3 and g.mean.mse == pytest.approx(2.0) and g.sd.mse == pytest.approx(1.0)
    assert g.mean.ssim == pytest.approx(0.8) and g.sd.psnr == pytest.approx(10.0)
    assert math.isnan(summary[("rf", "T1")].sd.mse)

    md = table.to_markdown("mse")
    assert "| mse | T1 | T1+T2 |" in md
    assert "| proposed | **2.000 ± 1.000** |  |" in md and "| rf | 4.000 | 0.500 |" in md
    assert "| proposed | T1 | 3 | 2.000 ± 1.000 |" in table.to_markdown(None)

    path = table.to_csv(tmp_path / "rows.csv")
    back = MetricTable.from_csv(path)
    assert back.rows == table.rows
    summary_csv = table.to_csv(tmp_path / "summary.csv", summary=True).read_text().splitlines()
    assert summary_csv[0].startswith("method,subset,n,mse_mean,mse_sd")
    assert len(summary_csv) == 4
    table.reset()
    assert len(table) == 0
