"""Subject loading onto one grid (mrsynth.io.subject) and the paper's preprocessing (mrsynth.data.preprocessing)."""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from mrsynth.data.preprocessing import (
    PreprocessConfig,
    SliceGeometry,
    brain_mask,
    prepare_subject,
    restore_volume,
)
from mrsynth.errors import InputError
from mrsynth.io.layouts import discover_dataset
from mrsynth.io.subject import load_subject, to_reference_grid

LPS_AFFINE = np.array([[-1.0, 0, 0, 20], [0, -1.0, 0, 24], [0, 0, 1.0, -8], [0, 0, 0, 1]])


def ellipsoid(shape=(40, 48, 24), radii=(14, 17, 8), centre=None) -> np.ndarray:
    grid = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    centre = centre or [n / 2 for n in shape]
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1


def smooth_brain(shape=(40, 48, 24), seed=0) -> np.ndarray:
    """Smooth positive intensities inside an ellipsoid 'brain', zero outside."""
    rng = np.random.default_rng(seed)
    texture = ndimage.gaussian_filter(rng.normal(size=shape), 4)
    texture = (texture - texture.min()) / np.ptp(texture)
    return np.where(ellipsoid(shape), 100 + 200 * texture, 0).astype(np.float32)


def write(path: Path, data: np.ndarray, affine: np.ndarray = LPS_AFFINE) -> Path:
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


# ------------------------------------------------------------------------------------- config


def test_config_validation_and_dict_round_trip() -> None:
    config = PreprocessConfig(size=(112, 80), margin=2)
    assert PreprocessConfig.from_dict(config.to_dict()) == config
    assert PreprocessConfig().size == (128, 128)
    with pytest.raises(ValueError, match="divisible by 4"):
        PreprocessConfig(size=(130, 128))
    with pytest.raises(ValueError, match="normalisation"):
        PreprocessConfig(normalisation="zscore")
    with pytest.raises(ValueError, match="unknown"):
        PreprocessConfig.from_dict({"size": [64, 64], "colour": 1})


def test_brain_mask_is_union_of_positive_voxels() -> None:
    a, b = np.zeros((3, 3, 3), np.float32), np.zeros((3, 3, 3), np.float32)
    a[0, 0, 0], b[2, 2, 2], b[1, 1, 1] = 1, 5, -1
    assert brain_mask({"t1": a, "t2": b}).sum() == 2


# ------------------------------------------------------------------------------------- preparing


def test_prepare_subject_crops_keeps_brain_slices_and_normalises() -> None:
    t1 = smooth_brain(seed=0)
    t2 = 3 * smooth_brain(seed=1)
    config = PreprocessConfig(size=(32, 32), margin=2)
    prepared = prepare_subject({"t1": t1, "t2": t2}, config)
    geometry = prepared.geometry
    kept = np.flatnonzero(brain_mask({"t1": t1}).any(axis=(0, 1)))
    assert geometry.slices == tuple(kept) and len(kept) < t1.shape[2]
    assert prepared.slices["t1"].shape == (len(kept), 32, 32) and prepared.slices["t1"].dtype == np.float32
    assert prepared.scales["t1"] == pytest.approx(t1[t1 > 0].mean(), rel=1e-5)
    for stack in prepared.slices.values():
        assert stack.min() >= 0
        assert stack[:, 0, :].max() == 0 and stack[:, :, 0].max() == 0  # background stays 0
        assert 0.8 < stack[stack > 0].mean() < 1.1  # mean over the brain ~ 1 (edges blur a little)
    x0, x1, y0, y1 = geometry.box
    assert (x1 - x0) == (y1 - y0)  # square crop for a square output: no stretching
    assert SliceGeometry.from_dict(geometry.to_dict()) == geometry


def test_percentile_scaling_of_the_inputs_leaves_the_target_in_mean_units() -> None:
    t1, flair = smooth_brain(seed=0), smooth_brain(seed=1)
    t1[20, 24, 12] = 1e7  # one hot voxel: it moves the mean, not the 99th percentile
    config = PreprocessConfig(size=(32, 32), margin=2, input_normalisation="percentile")
    prepared = prepare_subject({"t1": t1, "flair": flair}, config, crop_from=("t1",), target="flair")
    assert prepared.scales["t1"] == pytest.approx(np.percentile(t1[t1 > 0], 99), rel=1e-6)
    assert prepared.scales["flair"] == pytest.approx(flair[flair > 0].mean(), rel=1e-5)
    assert prepared.scales["t1"] < 300 < t1[t1 > 0].mean()  # the outlier does not set the input's scale
    assert PreprocessConfig.from_dict(config.to_dict()) == config
    assert "input_normalisation" not in PreprocessConfig().to_dict()  # paper settings keep their old cache key
    assert PreprocessConfig(input_normalisation="mean") == PreprocessConfig()  # one spelling per setting
    assert config.describe_normalisation() == "inputs / their 99th brain percentile, target / its brain mean"
    with pytest.raises(ValueError, match="percentile"):
        PreprocessConfig(input_normalisation="percentile", percentile=0)


def test_prepare_then_restore_is_close_inside_the_brain() -> None:
    volume = smooth_brain(shape=(44, 52, 20))
    prepared = prepare_subject({"t1": volume}, PreprocessConfig(size=(48, 48), margin=4))
    restored = restore_volume(prepared.slices["t1"], prepared.geometry, scale=prepared.scales["t1"])
    assert restored.shape == volume.shape
    inside = ndimage.binary_erosion(volume > 0, iterations=2)
    error = np.abs(restored - volume)[inside]
    assert error.mean() < 0.01 * volume[inside].mean() and error.max() < 0.08 * volume[inside].mean()
    assert restored[~ndimage.binary_dilation(volume > 0, iterations=3)].max() == 0


def test_restore_with_box_outside_the_grid() -> None:
    volume = np.zeros((20, 8, 6), np.float32)  # elongated brain: box widened past the grid in y
    volume[3:17, 1:7, 1:5] = 2.0
    prepared = prepare_subject({"t1": volume}, PreprocessConfig(size=(16, 16), margin=0))
    x0, x1, y0, y1 = prepared.geometry.box
    assert y0 < 0 and y1 > 8
    restored = restore_volume(prepared.slices["t1"], prepared.geometry, scale=prepared.scales["t1"])
    np.testing.assert_allclose(restored[5:15, 2:6, 1:5], 2.0, rtol=1e-4)


# ------------------------------------------------------------------------------------- subjects


def test_load_subject_resamples_clips_and_restores_order(tmp_path: Path, caplog) -> None:
    t1 = smooth_brain()
    t1[0, 0, 0] = -5.0
    coarse = LPS_AFFINE @ np.diag([2.0, 2.0, 2.0, 1.0])  # same field of view, half the resolution
    t2 = smooth_brain(seed=3)[::2, ::2, ::2].copy()
    files = {"t1": write(tmp_path / "t1.nii.gz", t1), "t2": write(tmp_path / "t2.nii.gz", t2, coarse)}
    with caplog.at_level(logging.INFO, logger="mrsynth.io.subject"):
        subject = load_subject(files, ("t1", "t2", "flair"), subject="s1")
    assert "t1.nii.gz" in caplog.text and "negative" in caplog.text
    assert subject.reference_contrast == "t1" and set(subject.volumes) == {"t1", "t2"}
    assert subject.volumes["t1"].shape == subject.volumes["t2"].shape == (40, 48, 24)
    assert nib.aff2axcodes(subject.affine) == ("R", "A", "S")
    assert subject.reference.data[0, 0, 0] == -5.0  # the original, as loaded
    overlap = (subject.volumes["t1"] > 0) & (subject.volumes["t2"] > 0)
    assert overlap.sum() > 0.8 * (subject.volumes["t1"] > 0).sum()
    back = to_reference_grid(subject.volumes["t1"], subject)
    np.testing.assert_array_equal(back, np.maximum(t1, 0))
    assert load_subject(files, ("t1", "t2"), reference="t2").volumes["t1"].shape == (20, 24, 12)
    one_by_one = load_subject(files, ("t1", "t2", "t2", "flair"), workers=1)  # a contrast named twice counts once
    assert list(one_by_one.volumes) == ["t1", "t2"]
    np.testing.assert_array_equal(one_by_one.volumes["t2"], subject.volumes["t2"])


def test_load_subject_errors(tmp_path: Path) -> None:
    t1 = write(tmp_path / "t1.nii.gz", smooth_brain())
    negative = write(tmp_path / "neg_t2.nii.gz", -smooth_brain())
    with pytest.raises(InputError, match="no brain voxels") as info:
        load_subject({"t1": t1, "t2": negative}, ("t1", "t2"))
    assert "neg_t2.nii.gz" in str(info.value) and "t2" in str(info.value)
    with pytest.raises(InputError, match="none of the contrasts"):
        load_subject({"t1": t1}, ("flair",))
    # files load in parallel threads; with two unreadable files the error names the first in order
    (tmp_path / "bad_t1.nii.gz").write_bytes(b"not a NIfTI")
    (tmp_path / "bad_t2.nii.gz").write_bytes(b"not a NIfTI either")
    for _ in range(3):
        with pytest.raises(InputError) as info:
            load_subject({"t1": tmp_path / "bad_t1.nii.gz", "t2": tmp_path / "bad_t2.nii.gz"}, ("t1", "t2"))
        assert "bad_t1.nii.gz" in str(info.value) and "bad_t2" not in str(info.value)


def test_real_raw_scanner_subject_on_one_grid(shared_data: Path) -> None:
    files = discover_dataset(shared_data / "raw_scanner_space").subjects[0].files
    subject = load_subject(files, ("t1", "t2"))
    assert subject.volumes["t1"].shape == subject.volumes["t2"].shape == subject.shape
    prepared = prepare_subject(subject.volumes, PreprocessConfig(size=(32, 32)))
    assert prepared.slices["t2"].shape[1:] == (32, 32) and prepared.slices["t2"].max() > 0
