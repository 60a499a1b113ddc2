"""Reading/writing volumes, resampling and reorientation (mrsynth.io.volumes / mrsynth.io.resample)."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from mrsynth.errors import InputError
from mrsynth.io.layouts import discover_dataset
from mrsynth.io.resample import reorient_to_ras, resample_to, undo_reorientation
from mrsynth.io.volumes import Volume, load_volume, read_grid, save_volume

LPS_AFFINE = np.array([[-1.0, 0, 0, 10], [0, -1.0, 0, 20], [0, 0, 2.0, -5], [0, 0, 0, 1]])


def blob(shape=(12, 10, 8), seed=0) -> np.ndarray:
    """A positive 'brain' in the middle of a zero background."""
    rng = np.random.default_rng(seed)
    data = np.zeros(shape, np.float32)
    data[2:-2, 2:-2, 1:-1] = rng.uniform(1, 5, size=(shape[0] - 4, shape[1] - 4, shape[2] - 2))
    return data


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray = LPS_AFFINE) -> Path:
    nib.save(nib.Nifti1Image(np.asarray(data), affine), str(path))
    return path


# ------------------------------------------------------------------------------------- loading


def test_load_nifti_gives_float32_and_affine(tmp_path: Path) -> None:
    data = blob().astype(np.int16)
    path = write_nifti(tmp_path / "t1.nii.gz", data)
    volume = load_volume(path, "t1")
    assert volume.data.dtype == np.float32 and volume.shape == data.shape
    np.testing.assert_array_equal(volume.data, data)
    np.testing.assert_allclose(volume.affine, LPS_AFFINE)
    assert volume.voxel_size == pytest.approx((1.0, 1.0, 2.0))
    assert volume.path == path and volume.contrast == "t1"


def test_trailing_singleton_fourth_dim_is_squeezed(tmp_path: Path) -> None:
    path = write_nifti(tmp_path / "t2.nii", blob()[..., None])
    assert load_volume(path, "t2").shape == (12, 10, 8)


def test_negative_values_are_not_an_error(tmp_path: Path) -> None:
    data = blob()
    data[0, 0, 0] = -3
    assert load_volume(write_nifti(tmp_path / "neg.nii.gz", data)).data.min() == -3


def _missing(tmp: Path) -> Path:
    return tmp / "missing_t1.nii.gz"


def _garbage(tmp: Path) -> Path:
    path = tmp / "garbage.nii.gz"
    path.write_bytes(b"this is not an image at all" * 10)
    return path


def _truncated(tmp: Path) -> Path:
    full = write_nifti(tmp / "full.nii.gz", blob((30, 30, 30)))
    path = tmp / "truncated.nii.gz"
    path.write_bytes(full.read_bytes()[:2000])
    return path


def _not_gzip(tmp: Path) -> Path:
    path = tmp / "plain_named_gz.nii.gz"
    path.write_bytes(gzip.compress(b"\x00" * 100))
    return path


def _text(tmp: Path) -> Path:
    path = tmp / "notes.txt"
    path.write_text("hello")
    return path


def _four_d(tmp: Path) -> Path:
    return write_nifti(tmp / "series.nii.gz", np.stack([blob(), blob()], axis=-1))


def _with_value(value: float, name: str):
    def make(tmp: Path) -> Path:
        data = blob()
        data[5, 5, 4] = value
        return write_nifti(tmp / name, data)

    return make


def _zeros(tmp: Path) -> Path:
    return write_nifti(tmp / "zeros.nii.gz", np.zeros((6, 6, 6), np.float32))


@pytest.mark.parametrize(
    "make, words",
    [
        (_missing, "not found"),
        (_garbage, "cannot read"),
        (_truncated, "cannot read"),
        (_not_gzip, "cannot read"),
        (_text, "not a NIfTI"),
        (_four_d, "4D"),
        (_with_value(np.nan, "nan.nii.gz"), "NaN"),
        (_with_value(np.inf, "inf.nii.gz"), "infinite"),
        (_zeros, "zero"),
    ],
    ids=["missing", "garbage", "truncated", "gzip-not-nifti", "txt", "4d", "nan", "inf", "all-zero"],
)
def test_bad_inputs_raise_input_error_naming_file_and_contrast(tmp_path: Path, make, words: str) -> None:
    path = make(tmp_path)
    with pytest.raises(InputError) as info:
        load_volume(path, "flair")
    message = str(info.value)
    assert path.name in message and "flair" in message and words in message
    assert "Traceback" not in message and "\n" not in message


def test_bad_mha_raises_input_error(tmp_path: Path) -> None:
    path = tmp_path / "broken_t1.mha"
    path.write_bytes(b"ObjectType = Image\nNDims = 3\nnonsense")
    with pytest.raises(InputError, match="broken_t1.mha"):
        load_volume(path, "t1")


# ------------------------------------------------------------------------------------- MetaImage


def _itk_image() -> sitk.Image:
    rng = np.random.default_rng(1)
    array = rng.uniform(1, 10, size=(5, 7, 9)).astype(np.float32)  # ITK order (z, y, x)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.9, 1.1, 3.0))
    image.SetOrigin((12.0, -30.0, 7.5))
    angle = np.deg2rad(10)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    image.SetDirection(tuple(rotation.ravel()))
    return image


@pytest.mark.parametrize("suffix", [".mha", ".mhd"])
def test_metaimage_affine_matches_equivalent_nifti(tmp_path: Path, suffix: str) -> None:
    image = _itk_image()
    sitk.WriteImage(image, str(tmp_path / f"vol{suffix}"))
    sitk.WriteImage(image, str(tmp_path / "vol.nii.gz"))
    mha = load_volume(tmp_path / f"vol{suffix}", "t1")
    nii = load_volume(tmp_path / "vol.nii.gz", "t1")
    assert mha.shape == nii.shape == (9, 7, 5)
    np.testing.assert_allclose(mha.affine, nii.affine, atol=1e-4)
    np.testing.assert_array_equal(mha.data, nii.data)
    header = read_grid(tmp_path / f"vol{suffix}")
    assert header.shape == (9, 7, 5) and np.allclose(header.affine, mha.affine)


# ------------------------------------------------------------------------------------- saving


def test_save_round_trip_refuses_overwrite_and_creates_folders(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "out" / "synth.nii.gz"
    data = blob()
    assert save_volume(data, LPS_AFFINE, path) == path
    loaded = load_volume(path)
    np.testing.assert_array_equal(loaded.data, data)
    np.testing.assert_allclose(loaded.affine, LPS_AFFINE)
    assert nib.load(str(path)).get_data_dtype() == np.float32
    with pytest.raises(InputError, match="--force") as info:
        save_volume(data * 2, LPS_AFFINE, path)
    assert "synth.nii.gz" in str(info.value)
    save_volume(data * 2, LPS_AFFINE, path, force=True, header_from=loaded)
    np.testing.assert_allclose(load_volume(path).data, data * 2)
    assert sorted(p.name for p in path.parent.iterdir()) == ["synth.nii.gz"]  # no temp files left


def test_save_rejects_non_nifti_name(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=".nii"):
        save_volume(blob(), LPS_AFFINE, tmp_path / "out.png")


# ------------------------------------------------------------------------------------- resampling


def test_resample_to_other_grid_follows_world_coordinates() -> None:
    x, y, z = np.meshgrid(np.arange(20), np.arange(20), np.arange(20), indexing="ij")
    ramp = (1 + x + 2 * y + 3 * z).astype(np.float32)  # linear: exactly reproduced by linear interpolation
    moving = Volume(ramp, np.eye(4), contrast="t2")
    ref_affine = np.diag([2.0, 2.0, 2.0, 1.0])
    ref_affine[:3, 3] = [1.0, 2.0, 3.0]
    reference = Volume(np.ones((8, 8, 8), np.float32), ref_affine, contrast="t1")
    out = resample_to(moving, reference)
    assert out.shape == (8, 8, 8) and np.allclose(out.affine, ref_affine)
    i, j, k = 3, 2, 5
    wx, wy, wz = ref_affine[:3, :3] @ [i, j, k] + ref_affine[:3, 3]
    assert out.data[i, j, k] == pytest.approx(1 + wx + 2 * wy + 3 * wz, rel=1e-5)


def test_non_overlapping_grids_raise_input_error(tmp_path: Path) -> None:
    far = LPS_AFFINE.copy()
    far[:3, 3] += 1000.0
    moving = load_volume(write_nifti(tmp_path / "far_t2.nii.gz", blob(), far), "t2")
    reference = load_volume(write_nifti(tmp_path / "ref_t1.nii.gz", blob()), "t1")
    with pytest.raises(InputError, match="does not overlap t1 in space") as info:
        resample_to(moving, reference)
    assert "far_t2.nii.gz" in str(info.value) and "contrast t2" in str(info.value)


def test_reorient_to_ras_and_back() -> None:
    data = blob()
    volume = Volume(data, LPS_AFFINE)
    ras, info = reorient_to_ras(volume)
    assert nib.aff2axcodes(ras.affine) == ("R", "A", "S")
    # the same voxel keeps its world position
    world = LPS_AFFINE @ [1, 2, 3, 1]
    ijk = np.round(np.linalg.inv(ras.affine) @ world).astype(int)[:3]
    assert ras.data[tuple(ijk)] == data[1, 2, 3]
    np.testing.assert_array_equal(undo_reorientation(ras.data, info), data)


def test_resampling_real_raw_t2_onto_t1_overlaps(shared_data: Path) -> None:
    index = discover_dataset(shared_data / "raw_scanner_space")
    files = index.subjects[0].files
    t1, t2 = load_volume(files["t1"], "t1"), load_volume(files["t2"], "t2")
    assert t1.shape != t2.shape
    out = resample_to(t2, t1)
    assert out.shape == t1.shape
    both = (out.data > 0) & (t1.data > 0)
    assert both.sum() > 0.3 * (t1.data > 0).sum()
