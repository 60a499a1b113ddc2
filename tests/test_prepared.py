"""``mrsynth prepare``: a dataset's slices in a folder that stands in for the images (mrsynth.data.prepared)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mrsynth.cli import main
from mrsynth.data.preprocessing import PreprocessConfig
from mrsynth.errors import DataError
from mrsynth.io.layouts import discover_dataset
from mrsynth.training.pipeline import load_task_data

from toy import write_toy_nifti_dataset

CONFIG = PreprocessConfig(size=(16, 16), margin=1)
PREPARE = ["--inputs", "t1,t2", "--target", "flair", "--size", "16x16", "--margin", "1", "--no-progress"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("prepared")
    manifest = write_toy_nifti_dataset(root / "data", subjects=3)
    assert main(["prepare", "--data", str(manifest), "--out", str(root / "slices"), *PREPARE]) == 0
    return manifest, root / "slices"


def test_prepared_slices_equal_those_made_from_the_images(prepared, tmp_path: Path) -> None:
    manifest, folder = prepared
    direct = load_task_data(manifest, ("t1", "t2"), "flair", CONFIG, cache_dir=None, progress=False)  # in memory
    loaded = load_task_data(folder, ("t1", "t2"), "flair", CONFIG, progress=False)
    assert loaded.slices.subjects == direct.slices.subjects and loaded.description["layout"] == "prepared"
    for name in ("inputs", "present", "target", "subject", "slice_index"):
        np.testing.assert_array_equal(getattr(loaded.slices, name), getattr(direct.slices, name))


def test_prepared_folder_for_other_settings_is_refused_with_the_difference(prepared) -> None:
    _, folder = prepared
    with pytest.raises(DataError, match=r"size \[16, 16\] \(this run: \[32, 32\]\)"):
        load_task_data(folder, ("t1", "t2"), "flair", PreprocessConfig(size=(32, 32), margin=1), progress=False)
    with pytest.raises(DataError, match=r"inputs t1,t2 \(this run: t2,t1\)"):
        load_task_data(folder, ("t2", "t1"), "flair", CONFIG, progress=False)


def test_damaged_folder_and_a_task_that_is_no_task_are_clear_errors(prepared, tmp_path: Path, capsys,
                                                                    monkeypatch) -> None:
    manifest, folder = prepared
    assert main(["prepare", "--data", str(manifest), "--out", str(tmp_path / "bad"), "--inputs", "t1,flair",
                 "--target", "flair", "--no-progress"]) == 2
    assert "target flair is also listed as an input" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    damaged = tmp_path / "damaged"
    shutil.copytree(folder, damaged)
    (damaged / "inputs.npy").unlink()
    with pytest.raises(DataError, match="damaged or incomplete"):
        load_task_data(damaged, ("t1", "t2"), "flair", CONFIG, progress=False)
    shutil.copytree(folder, tmp_path / "home" / "slices")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert len(load_task_data("~/slices", ("t1", "t2"), "flair", CONFIG, progress=False).slices.subjects) == 3


def test_prepare_never_overwrites_and_image_commands_say_what_is_wrong(prepared, capsys) -> None:
    manifest, folder = prepared
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert main(["prepare", "--data", str(manifest), "--out", str(folder), *PREPARE]) == 2
    assert "already exists" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    with pytest.raises(DataError, match="holds prepared slices"):
        discover_dataset(folder)


def test_train_from_prepared_slices(prepared, tmp_path: Path, capsys) -> None:
    _, folder = prepared
    code = main(["train", "--data", str(folder), "--inputs", "t1,t2", "--target", "flair", "--out", str(tmp_path / "run"),
                 "--epochs", "1", "--size", "16x16", "--margin", "1", "--features", "4", "--latent-channels", "4",
                 "--batch-size", "4", "--device", "cpu", "--no-progress", "--init-from", "none"])
    assert code == 0 and (tmp_path / "run" / "model.pt").is_file()
    code = main(["train", "--data", str(folder), "--inputs", "t1,t2", "--target", "flair", "--out", str(tmp_path / "r2"),
                 "--epochs", "1", "--size", "16x16", "--device", "cpu", "--no-progress", "--init-from", "none"])
    assert code == 2 and "margin 1 (this run: 4)" in capsys.readouterr().err


def test_experiment_on_a_folder_prepared_for_another_task_stops_with_the_difference(prepared, tmp_path: Path,
                                                                                   capsys) -> None:
    _, folder = prepared
    code = main(["experiment", "single-input", "--data", str(folder), "--inputs", "t1", "--target", "flair",
                 "--size", "16x16", "--folds", "2", "--epochs", "1", "--baselines", "none",
                 "--device", "cpu", "--no-progress", "--out", str(tmp_path / "exp")])
    assert code == 2 and "inputs t1,t2 (this run: t1)" in capsys.readouterr().err
    assert not (tmp_path / "exp" / "report.md").exists()

