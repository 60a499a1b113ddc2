"""Dataset discovery in the manifest, BraTS, ISLES 2015 and plain-folder layouts (mrsynth.io.layouts)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from mrsynth.errors import DataError
from mrsynth.io.layouts import contrast_from_filename, discover_dataset, format_inspection


def tiny_nifti(path: Path, value: float = 1.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.full((4, 4, 3), value, np.float32), np.eye(4)), str(path))
    return path


def tiny_mha(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((3, 4, 4), np.float32)), str(path))
    return path


# ------------------------------------------------------------------------------------- real data


def test_shared_manifest(shared_data: Path) -> None:
    index = discover_dataset(shared_data)
    assert index.layout == "manifest" and len(index.subjects) == 19 and not index.skipped
    assert set(index.subject("Brats18_CBICA_AAB_1").files) == {"t1", "flair"}
    assert set(index.subject("sub-strokecase0009").files) == {"dwi", "adc", "flair"}
    assert discover_dataset(shared_data / "manifest.csv").names() == index.names()


def test_shared_brats4_as_folder(shared_data: Path) -> None:
    index = discover_dataset(shared_data / "brats4")
    assert index.layout == "folder" and len(index.subjects) == 4
    for entry in index.subjects:
        assert set(entry.files) == {"t1", "t1c", "t2", "flair"}, entry
    assert index.subject("BraTS-GLI-00001-000").files["flair"].name.endswith("-t2f.nii.gz")
    assert index.subject("TCGA-DU-7294").files["flair"].name == "TCGA-DU-7294_fla_bet.nii.gz"


def test_shared_raw_scanner_space_as_folder(shared_data: Path) -> None:
    index = discover_dataset(shared_data / "raw_scanner_space", layout="folder")
    (entry,) = index.subjects
    assert set(entry.files) == {"t1", "t1c", "t2", "flair"}
    assert "t1c" in entry.files["t1c"].name and "POST_GAD" in entry.files["t1c"].name
    report = format_inspection(index, inputs=("t1", "t2"), target="flair")
    assert "different grids" in report and "256x224x26" in report and "usable for t1,t2 -> flair: 1 of 1" in report


def test_folder_of_dataset_folders(shared_data: Path, tmp_path: Path) -> None:
    # a plain copy of the shared tree without its manifest: nested dataset folders, colliding names
    root = tmp_path / "all"
    for folder in ("brats4", "raw_scanner_space", "ms_mslesseg"):
        for src in (shared_data / folder).rglob("*.nii.gz"):
            dst = root / src.relative_to(shared_data)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src)
    index = discover_dataset(root)
    assert index.layout == "folder" and len(index.subjects) == 6
    assert "brats4/TCGA-FG-6692" in index.names() and "raw_scanner_space/TCGA-FG-6692" in index.names()
    assert set(index.subject("ms_mslesseg/MSLesSeg-P14").files) == {"t1", "t2", "flair"}


# ------------------------------------------------------------------------------------- synthetic layouts


def test_brats_2021_layout(tmp_path: Path) -> None:
    for case in ("BraTS2021_00000", "BraTS2021_00002"):
        for suffix in ("t1", "t1ce", "t2", "flair", "seg"):
            tiny_nifti(tmp_path / case / f"{case}_{suffix}.nii.gz")
    index = discover_dataset(tmp_path)
    assert index.layout == "brats" and index.names() == ["BraTS2021_00000", "BraTS2021_00002"]
    assert list(index.subjects[0].files) == ["t1", "t1c", "t2", "flair"] and not index.skipped
    assert index.subjects[0].files["t1c"].name == "BraTS2021_00000_t1ce.nii.gz"


def test_brats_2023_layout(tmp_path: Path) -> None:
    case = "BraTS-GLI-00005-000"
    for suffix in ("t1n", "t1c", "t2w", "t2f", "seg"):
        tiny_nifti(tmp_path / case / f"{case}-{suffix}.nii.gz")
    index = discover_dataset(tmp_path)
    assert index.layout == "brats"
    assert {c: p.name.split("-")[-1] for c, p in index.subjects[0].files.items()} == {
        "t1": "t1n.nii.gz", "t1c": "t1c.nii.gz", "t2": "t2w.nii.gz", "flair": "t2f.nii.gz"}


def test_brats_2015_mha_layout(tmp_path: Path) -> None:
    case = tmp_path / "HGG" / "brats_2013_pat0001_1"
    for i, contrast in enumerate(("T1", "T1c", "T2", "Flair")):
        name = f"VSD.Brain.XX.O.MR_{contrast}.5451{i}"
        tiny_mha(case / name / f"{name}.mha")
    tiny_mha(case / "VSD.Brain_3more.XX.O.OT.54517" / "VSD.Brain_3more.XX.O.OT.54517.mha")
    index = discover_dataset(tmp_path)
    assert index.layout == "brats" and index.names() == ["brats_2013_pat0001_1"]
    assert list(index.subjects[0].files) == ["t1", "t1c", "t2", "flair"] and not index.skipped
    assert index.subjects[0].files["t1c"].suffix == ".mha"


def test_isles2015_layout(tmp_path: Path) -> None:
    for case in ("1", "2"):
        for i, contrast in enumerate(("T1", "T2", "Flair", "DWI", "Tmax")):
            name = f"VSD.Brain.XX.O.MR_{contrast}.7061{i}"
            tiny_nifti(tmp_path / case / name / f"{name}.nii")
        tiny_nifti(tmp_path / case / "VSD.Brain.XX.O.OT.70618" / "VSD.Brain.XX.O.OT.70618.nii")
    index = discover_dataset(tmp_path)
    assert index.layout == "isles2015" and index.names() == ["1", "2"]
    assert list(index.subjects[0].files) == ["t1", "t2", "flair", "dwi"]
    assert [name for name, _ in index.skipped] == ["1/VSD.Brain.XX.O.MR_Tmax.70614", "2/VSD.Brain.XX.O.MR_Tmax.70614"]


@pytest.mark.parametrize(
    "name, contrast",
    [
        ("TCGA-FG-6692_MRHR_T1_AX_POST_GAD_SE_13_se2d1r_t1c.nii.gz", "t1c"),
        ("TCGA-FG-6692_MRHR_FLAIR_AX_SE_IR_5_tir2d1_21_fla.nii.gz", "flair"),
        ("P14_T2_FLAIR.nii.gz", "flair"),
        ("P14_T2_T1.nii.gz", "t1"),
        ("T1CE.nii.gz", "t1c"),
        ("x_fla_bet.nii.gz", "flair"),
        ("BraTS-GLI-00001-000-t1n.nii.gz", "t1"),
        ("sub-strokecase0009_ses-0001_adc.nii.gz", "adc"),
        ("subject_t1_ce.mha", "t1c"),
        ("anatomy.nii.gz", None),
    ],
)
def test_contrast_from_filename(name: str, contrast: str | None) -> None:
    assert contrast_from_filename(name) == contrast


def test_folder_layout_duplicates_masks_and_unknown_files(tmp_path: Path) -> None:
    tiny_nifti(tmp_path / "s1" / "s1_t1.nii.gz")
    tiny_nifti(tmp_path / "s1" / "s1_flair.nii.gz")
    tiny_nifti(tmp_path / "s1" / "s1_T2_FLAIR.nii.gz")  # second flair -> flair left out
    tiny_nifti(tmp_path / "s1" / "s1_seg.nii.gz")
    tiny_nifti(tmp_path / "s1" / "brain_mask.nii.gz")
    tiny_nifti(tmp_path / "s1" / "anatomy.nii.gz")
    (tmp_path / "s1" / "notes.json").write_text("{}")
    tiny_nifti(tmp_path / "s2" / "T1.nii.gz")
    index = discover_dataset(tmp_path, layout="folder")
    assert index.names() == ["s1", "s2"]
    assert set(index.subject("s1").files) == {"t1"}
    reasons = dict(index.skipped)
    assert "2 files for flair" in reasons["s1/flair"]
    assert "no known contrast" in reasons["s1/anatomy.nii.gz"]
    report = format_inspection(index, required=("t1",), target="flair")
    assert "left out: no flair" in report and "s1/flair" in report


def test_manifest_aliases_unknown_and_missing_files(tmp_path: Path) -> None:
    tiny_nifti(tmp_path / "a" / "one.nii.gz")
    tiny_nifti(tmp_path / "a" / "two.nii.gz")
    tiny_nifti(tmp_path / "a" / "three.nii.gz")
    (tmp_path / "list.csv").write_text(
        "subject,contrast,path\n"
        "A,T1ce,a/one.nii.gz\n"
        "A,adc,a/two.nii.gz\n"
        "A,swi,a/three.nii.gz\n"
        "A,flair,a/gone.nii.gz\n"
    )
    index = discover_dataset(tmp_path / "list.csv")
    assert index.layout == "manifest"
    assert {c: p.name for c, p in index.subject("A").files.items()} == {"t1c": "one.nii.gz", "adc": "two.nii.gz"}
    reasons = dict(index.skipped)
    assert "unknown contrast" in reasons["A/swi"] and "not found" in reasons["A/flair"]


def test_errors_for_missing_empty_and_unknown(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        discover_dataset(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no subject"):
        discover_dataset(tmp_path)
    with pytest.raises(DataError, match="unknown dataset layout"):
        discover_dataset(tmp_path, layout="bids")
    (tmp_path / "manifest.csv").write_text("name,file\nx,y\n")
    with pytest.raises(DataError, match="subject, contrast, path|subject"):
        discover_dataset(tmp_path)
