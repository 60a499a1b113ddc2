"""Building slice sets of datasets, with and without the on-disk cache (mrsynth.data.cache)."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mrsynth.data.cache import build_slice_set, prepare_dataset
from mrsynth.data.preprocessing import PreprocessConfig, restore_volume
from mrsynth.errors import DataError
from mrsynth.io.layouts import DatasetIndex, discover_dataset

CONFIG = PreprocessConfig(size=(16, 16), margin=1)


def brain(seed: int, shape=(20, 20, 10)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = np.zeros(shape, np.float32)
    data[4:16, 3:17, 2:8] = rng.uniform(1, 9, size=(12, 14, 6))
    return data


def make_dataset(root: Path) -> Path:
    """s1: t1,t2,flair; s2: t1,flair (no t2); s3: t1,t2 (no flair); s4: dwi,flair (no input)."""
    contents = {"s1": ("t1", "t2", "flair"), "s2": ("t1", "flair"), "s3": ("t1", "t2"), "s4": ("dwi", "flair")}
    for i, (subject, contrasts) in enumerate(contents.items()):
        (root / subject).mkdir(parents=True)
        for j, contrast in enumerate(contrasts):
            nib.save(nib.Nifti1Image(brain(10 * i + j), np.eye(4)), str(root / subject / f"{subject}_{contrast}.nii.gz"))
    return root


def test_slice_set_keeps_incomplete_subjects_and_reports_left_out(tmp_path: Path) -> None:
    index = discover_dataset(make_dataset(tmp_path / "data"))
    slice_set, left_out = build_slice_set(index, ("t1", "t2"), "flair", CONFIG, progress=False)
    assert slice_set.subjects == ("s1", "s2") and slice_set.contrasts == ("t1", "t2")
    assert dict(left_out) == {"s3": "no flair", "s4": "none of the inputs t1,t2"}
    assert slice_set.inputs.shape == (12, 2, 16, 16) and slice_set.target.shape == (12, 16, 16)
    s2 = slice_set.subject == 1
    assert slice_set.present[s2, 0].all() and not slice_set.present[s2, 1].any()
    assert slice_set.inputs[s2, 1].max() == 0 and slice_set.inputs[s2, 0].max() > 0
    np.testing.assert_array_equal(slice_set.slice_index[s2], np.arange(6))


def test_cache_second_call_is_a_hit_with_identical_arrays(tmp_path: Path) -> None:
    index = discover_dataset(make_dataset(tmp_path / "data"))
    cache = tmp_path / "cache"
    first = prepare_dataset(index, ("t1", "t2"), "flair", CONFIG, cache_dir=cache, progress=False)
    assert not first.cache_hit and first.cache_path is not None and first.cache_path.parent == cache
    stamps = {p.name: p.stat().st_mtime_ns for p in first.cache_path.iterdir()}
    assert {"inputs.npy", "present.npy", "target.npy", "subject.npy", "slice_index.npy", "meta.json"} <= set(stamps)
    second = prepare_dataset(index, ("t1", "t2"), "flair", CONFIG, cache_dir=cache, progress=False)
    assert second.cache_hit and second.cache_path == first.cache_path
    assert {p.name: p.stat().st_mtime_ns for p in second.cache_path.iterdir()} == stamps
    assert isinstance(second.slice_set.inputs, np.memmap)
    for name in ("inputs", "present", "target", "subject", "slice_index"):
        np.testing.assert_array_equal(getattr(first.slice_set, name), getattr(second.slice_set, name))
    assert second.left_out == first.left_out and list(cache.iterdir()) == [first.cache_path]
    # per-subject geometry is kept for evaluation: the target restores onto its grid
    info = second.subjects["s1"]
    stack = np.asarray(second.slice_set.target[second.slice_set.subject == 0])
    restored = restore_volume(stack, info.geometry, scale=info.scales["flair"])
    assert restored.shape == (20, 20, 10) and info.reference_contrast == "flair"
    # the uncached build gives the same slices
    plain, _ = build_slice_set(index, ("t1", "t2"), "flair", CONFIG, progress=False)
    np.testing.assert_array_equal(plain.inputs, second.slice_set.inputs)


def test_cache_key_changes_with_settings_and_files(tmp_path: Path) -> None:
    index = discover_dataset(make_dataset(tmp_path / "data"))
    cache = tmp_path / "cache"
    first = prepare_dataset(index, ("t1", "t2"), "flair", CONFIG, cache_dir=cache, progress=False)
    other = prepare_dataset(index, ("t1", "t2"), "flair", PreprocessConfig(size=(8, 8)), cache_dir=cache,
                            progress=False)
    assert not other.cache_hit and other.cache_path != first.cache_path
    flair = index.subject("s1").files["flair"]
    os.utime(flair, ns=(flair.stat().st_atime_ns, flair.stat().st_mtime_ns + 10**9))
    touched = prepare_dataset(index, ("t1", "t2"), "flair", CONFIG, cache_dir=cache, progress=False)
    assert not touched.cache_hit and touched.cache_path != first.cache_path
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_no_usable_subject_is_a_data_error(tmp_path: Path) -> None:
    index = discover_dataset(make_dataset(tmp_path / "data"))
    with pytest.raises(DataError, match="no subject has pd"):
        build_slice_set(index, ("t1",), "pd", CONFIG, progress=False)


def test_real_two_subjects_cached(shared_data: Path, tmp_path: Path) -> None:
    full = discover_dataset(shared_data)
    picked = [full.subject("Brats18_CBICA_AAB_1"), full.subject("Brats18_CBICA_AOO_1")]
    index = DatasetIndex(full.root, full.layout, picked, [])
    config = PreprocessConfig(size=(32, 32))
    slice_set, left_out = build_slice_set(index, ("t1", "t2"), "flair", config, cache_dir=tmp_path, progress=False)
    again, _ = build_slice_set(index, ("t1", "t2"), "flair", config, cache_dir=tmp_path, progress=False)
    assert left_out == [] and slice_set.subjects == ("Brats18_CBICA_AAB_1", "Brats18_CBICA_AOO_1")
    assert slice_set.image_size == (32, 32) and len(slice_set) > 100
    assert slice_set.present[:, 0].all() and not slice_set.present[:, 1].any()
    assert 0.5 < float(slice_set.target[slice_set.target > 0].mean()) < 2.0
    np.testing.assert_array_equal(slice_set.target, again.target)
