"""Dataset intensity profiles (mrsynth.data.profile) and ``mrsynth profile``."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from mrsynth.cli import main
from mrsynth.data.profile import QUANTILES, histogram_overlap, profile_dataset, volume_stats

from toy import write_toy_nifti_dataset


def test_volume_stats_are_in_brain_mean_units() -> None:
    data = np.zeros((10, 10, 10), np.float32)
    data[2:8, 2:8, 2:8] = np.linspace(50, 150, 216, dtype=np.float32).reshape(6, 6, 6)
    stats = volume_stats(data, (1.0, 1.0, 2.0))
    assert stats.quantiles[QUANTILES.index(50)] == pytest.approx(1.0, abs=0.01)
    assert stats.quantiles[0] == pytest.approx(0.51, abs=0.01) and stats.quantiles[-1] == pytest.approx(1.49, abs=0.01)
    assert stats.roughness == pytest.approx(36 * 100 / 215 / 100, rel=1e-3)  # one x-step of the ramp / mean 100
    with pytest.raises(ValueError, match="no voxel above zero"):
        volume_stats(np.zeros((4, 4, 4), np.float32), (1.0, 1.0, 1.0))


def test_a_cohort_overlaps_itself_fully_and_another_contrast_less(tmp_path, capsys) -> None:
    manifest = write_toy_nifti_dataset(tmp_path / "a", subjects=3, contrasts=("t1", "flair"), seed=0)
    same = profile_dataset(manifest)
    assert set(same) == {"t1", "flair"} and same["t1"].subjects == 3
    assert histogram_overlap(same["t1"], same["t1"]) == pytest.approx(1.0)
    assert histogram_overlap(same["t1"], same["flair"]) < 1.0
    assert main(["profile", "--data", str(manifest), "--against", str(manifest), "--contrasts", "t1"]) == 0
    out = capsys.readouterr().out
    assert "| t1 | 3 |" in out and "- t1: 1.00" in out and "flair" not in out


def test_an_empty_volume_is_named_in_the_error(tmp_path, capsys) -> None:
    manifest = write_toy_nifti_dataset(tmp_path / "a", subjects=2, contrasts=("t1",), seed=0)
    first = sorted((tmp_path / "a").rglob("*.nii*"))[0]
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), str(first))
    assert main(["profile", "--data", str(manifest)]) != 0
    err = capsys.readouterr().err
    assert first.name in err and "(contrast t1)" in err and "empty" in err and "Traceback" not in err
