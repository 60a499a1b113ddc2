"""Physics checks of the brain MRI simulator, run on its cheap 2 mm grid."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from mrsynth.data.simulation import (
    TumourSize,
    LESION_LABELS,
    DeformationSettings,
    SimulationConfig,
    load_template,
    simulate_cohort,
    simulate_subject,
)
from mrsynth.data.simulation.signal import sequence_for, tissue_signals
from mrsynth.data.simulation.tissues import TISSUES, post_contrast_t1, tissue_table
from mrsynth.errors import DataError, MrsynthError

ALL = ("t1", "t1c", "t2", "pd", "flair", "dwi", "adc")


@pytest.fixture(scope="module")
def template():
    return load_template(downsample=2)


def _pure(subject, tissue: str) -> np.ndarray:
    """Voxels made (almost) only of ``tissue``, inside the brain."""
    return (subject.tissue_maps[tissue] > 0.9) & subject.brain_mask


def _relative(subject, contrast: str, tissue: str) -> float:
    """Mean signal of pure ``tissue`` over mean signal of pure white matter."""
    image = subject.images[contrast]
    return float(image[_pure(subject, tissue)].mean() / image[_pure(subject, "wm")].mean())


def _subject(template, seed: int = 0, **overrides):
    config = SimulationConfig(downsample=2, contrasts=ALL, **overrides)
    return simulate_subject(config, np.random.default_rng(seed), template=template)


@pytest.mark.parametrize("field_strength", [1.5, 3.0])
def test_normal_tissue_contrast(template, field_strength):
    s = _subject(template, lesion_probability=0.0, field_strength=field_strength)
    assert s.lesion_type is None and not s.lesion_mask.any()
    assert _relative(s, "t1", "gm") < 0.95 and _relative(s, "t1", "csf") < 0.6  # WM > GM > CSF on T1w
    assert _relative(s, "t1", "csf") < _relative(s, "t1", "gm")
    assert _relative(s, "t2", "csf") > 2.0 and _relative(s, "t2", "gm") > 1.1  # CSF > GM > WM on T2w
    assert _relative(s, "flair", "csf") < 0.3 and _relative(s, "flair", "gm") > 1.0  # CSF nulled
    assert _relative(s, "pd", "gm") > 1.0
    assert _relative(s, "dwi", "csf") < 0.5
    assert 600 < s.images["adc"][_pure(s, "wm")].mean() < 800  # 1e-6 mm^2/s
    assert s.images["adc"][_pure(s, "csf")].mean() > 2000
    for image in s.images.values():
        assert image.dtype == np.float32 and image.shape == s.brain_mask.shape
        assert not image[~s.brain_mask].any()  # skull-stripped convention


def test_signal_equations():
    table = tissue_table(3.0)
    flair = tissue_signals("flair", 3.0)
    assert flair[TISSUES.index("csf")] < 1e-3 * flair[TISSUES.index("wm")]
    assert sequence_for("flair", 3.0).ti == pytest.approx(4200 * math.log(2 / (1 + math.exp(-9000 / 4200))))
    assert post_contrast_t1(1000.0, 5.0, 0.2) == pytest.approx(1.0 / (1e-3 + 1e-3))
    pre, post = tissue_signals("t1", 3.0), tissue_signals("t1c", 3.0)
    changed = [t for t in TISSUES if pre[TISSUES.index(t)] != post[TISSUES.index(t)]]
    assert changed == ["enhancing"] and post[TISSUES.index("enhancing")] > pre[TISSUES.index("enhancing")]
    dwi, b0 = tissue_signals("dwi", 3.0), tissue_signals("b0", 3.0)
    wm = TISSUES.index("wm")
    assert dwi[wm] / b0[wm] == pytest.approx(math.exp(-1000 * table["wm"].adc * 1e-3), rel=1e-5)


def test_tumour_enhances_and_is_bright_on_flair(template):
    s = _subject(template, seed=1, lesions=("tumour",), lesion_probability=1.0)
    assert s.lesion_type == "tumour"
    labels = {int(v) for v in np.unique(s.lesion_mask)} - {0}
    assert {LESION_LABELS["enhancing"], LESION_LABELS["oedema"]} <= labels
    assert _relative(s, "t1c", "enhancing") > 1.3 * _relative(s, "t1", "enhancing")
    assert _relative(s, "t1c", "enhancing") > 1.2  # brighter than white matter after gadolinium
    assert _relative(s, "flair", "oedema") > 1.3
    assert _relative(s, "t2", "oedema") > 1.5
    tumour = s.lesion_mask > 0
    assert s.images["flair"][tumour].mean() > 1.2 * s.images["flair"][_pure(s, "wm")].mean()
    assert _relative(s, "adc", "oedema") > 1.5


def test_tumour_size_and_gadolinium_are_settings(template):
    def tumour_subject(**overrides):
        return _subject(template, seed=1, lesions=("tumour",), lesion_probability=1.0, **overrides)
    default, larger = tumour_subject(), tumour_subject(tumour_size=TumourSize((22.0, 26.0), (22.0, 26.0)))
    lesion = [int((s.lesion_mask > 0).sum()) for s in (default, larger)]
    assert lesion[1] > 2 * lesion[0] > 0
    more_gd = tumour_subject(gd_concentration_mm=0.5)
    assert _relative(more_gd, "t1c", "enhancing") > 1.1 * _relative(default, "t1c", "enhancing")
    with pytest.raises(ValueError, match="radius_mm"):
        TumourSize((20.0, 10.0))


def _mirror(mask: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, ...]:
    """Voxel indices of ``mask`` reflected across the mid-sagittal plane (world x -> -x)."""
    idx = np.argwhere(mask)
    world = idx @ affine[:3, :3].T + affine[:3, 3]
    world[:, 0] *= -1
    back = np.rint((world - affine[:3, 3]) @ np.linalg.inv(affine[:3, :3]).T).astype(int)
    keep = np.all((back >= 0) & (back < np.array(mask.shape)), axis=1)
    return tuple(back[keep].T)


def test_stroke_restricts_diffusion(template):
    s = _subject(template, seed=2, lesions=("stroke",), lesion_probability=1.0)
    assert s.lesion_type == "stroke"
    lesion = s.lesion_mask == LESION_LABELS["stroke"]
    assert lesion.sum() > 50
    contra = _mirror(lesion, s.affine)
    keep = s.brain_mask[contra] & ~lesion[contra]
    contra = tuple(axis[keep] for axis in contra)
    # World x = 0 is only roughly the subject's midline (the random warp rotates and shifts it).
    assert keep.mean() > 0.5
    assert s.images["dwi"][lesion].mean() > 1.4 * s.images["dwi"][contra].mean()
    assert s.images["adc"][lesion].mean() < 0.75 * s.images["adc"][contra].mean()


def test_ms_plaques_are_periventricular_and_flair_bright(template):
    s = _subject(template, seed=3, lesions=("ms",), lesion_probability=1.0)
    assert s.lesion_type == "ms"
    plaques = s.lesion_mask == LESION_LABELS["ms"]
    assert plaques.sum() > 5
    assert s.images["flair"][plaques].mean() > 1.2 * s.images["flair"][_pure(s, "wm")].mean()
    assert s.tissue_maps["csf"][plaques].mean() < 0.2
    deep = np.zeros_like(plaques)
    centre = np.array(plaques.shape) // 2
    deep[tuple(slice(c - 20, c + 20) for c in centre)] = True  # +-40 mm around the grid centre
    ventricles = (s.tissue_maps["csf"] > 0.7) & deep
    distance_mm = ndimage.distance_transform_edt(~ventricles) * 2.0
    assert np.median(distance_mm[plaques]) < 10.0


def test_noise_matches_requested_snr(template):
    config = SimulationConfig(downsample=2, snr=25.0, contrasts=("t1", "t2", "flair"), lesion_probability=0.0)
    a = simulate_subject(config, np.random.default_rng(4), template=template, noise_rng=np.random.default_rng(10))
    b = simulate_subject(config, np.random.default_rng(4), template=template, noise_rng=np.random.default_rng(11))
    np.testing.assert_array_equal(a.tissue_maps["wm"], b.tissue_maps["wm"])
    wm = _pure(a, "wm")
    for contrast in config.contrasts:
        sigma = float(np.std(a.images[contrast][wm] - b.images[contrast][wm]) / math.sqrt(2.0))
        snr = float(a.images[contrast][wm].mean()) / sigma
        assert snr == pytest.approx(25.0, rel=0.1), contrast
        assert a.noise_sigma[contrast] == pytest.approx(sigma, rel=0.1)


def test_same_seed_same_subject_and_seeds_differ(template):
    config = SimulationConfig(downsample=2, contrasts=("t1", "dwi"))
    first = simulate_subject(config, np.random.default_rng(7), template=template)
    again = simulate_subject(config, np.random.default_rng(7), template=template)
    other = simulate_subject(config, np.random.default_rng(8), template=template)
    for contrast in config.contrasts:
        np.testing.assert_array_equal(first.images[contrast], again.images[contrast])
        assert not np.array_equal(first.images[contrast], other.images[contrast])
    np.testing.assert_array_equal(first.lesion_mask, again.lesion_mask)
    assert not np.array_equal(first.tissue_maps["gm"], other.tissue_maps["gm"])  # anatomy differs


def test_downsampled_affine_matches_template(template):
    """Without warp, the 2 mm tissue map is the block average of the 1 mm MNI map at the same place."""
    from nilearn import datasets

    config = SimulationConfig(
        downsample=2, lesion_probability=0.0, snr=None, bias_strength=0.0, contrasts=("t1",),
        deformation=DeformationSettings(rotation_deg=0, scaling=0, shift_mm=0, displacement_mm=0),
    )
    s = simulate_subject(config, np.random.default_rng(0), template=template)
    mni = datasets.load_mni152_wm_template(resolution=1)
    mask = np.asarray(datasets.load_mni152_brain_mask(resolution=1).dataobj) > 0.5
    wm_1mm = np.asarray(mni.dataobj, dtype=np.float32) * mask
    assert np.allclose(np.linalg.norm(s.affine[:3, :3], axis=0), 2.0)
    probe = np.argwhere(s.tissue_maps["wm"] > 0.5)[:: 97]
    corners = (probe @ s.affine[:3, :3].T + s.affine[:3, 3]) - 0.5  # world of the block's first voxel
    first = np.rint((corners - mni.affine[:3, 3]) @ np.linalg.inv(mni.affine[:3, :3]).T).astype(int)
    for p, f in zip(probe, first):
        block = wm_1mm[f[0]:f[0] + 2, f[1]:f[1] + 2, f[2]:f[2] + 2]
        assert s.tissue_maps["wm"][tuple(p)] == pytest.approx(block.mean(), abs=1e-4)


def test_cohort_layout_manifest_and_overwrite(tmp_path: Path):
    config = SimulationConfig(subjects=2, downsample=2, contrasts=("t1", "flair"), seed=3)
    out = tmp_path / "sim"
    manifest = simulate_cohort(out, config, progress=False)
    assert manifest == out / "manifest.csv"
    with manifest.open(newline="") as handle:
        reader = csv.reader(handle)
        assert next(reader) == ["subject", "contrast", "path"]
        rows = list(reader)
    assert [(r[0], r[1]) for r in rows] == [(s, c) for s in ("sim001", "sim002") for c in ("t1", "flair")]
    first = {}
    for subject, contrast, rel in rows:
        image = nib.load(out / rel)
        assert rel == f"{subject}/{subject}_{contrast}.nii.gz"
        assert image.get_data_dtype() == np.float32
        assert np.allclose(image.header.get_zooms(), 2.0)
        first[rel] = np.asarray(image.dataobj)
    for subject in ("sim001", "sim002"):
        lesion = nib.load(out / subject / f"{subject}_lesion.nii.gz")
        assert lesion.get_data_dtype() == np.uint8
        assert set(np.unique(np.asarray(lesion.dataobj))) <= {0, *LESION_LABELS.values()}
    assert not any("lesion" in r[2] for r in rows)
    assert not list(out.rglob(".*partial*"))

    with pytest.raises(DataError):
        simulate_cohort(out, config, progress=False)
    assert issubclass(DataError, MrsynthError)
    simulate_cohort(out, config, overwrite=True, progress=False)
    for rel, data in first.items():  # same seed -> identical volumes
        np.testing.assert_array_equal(np.asarray(nib.load(out / rel).dataobj), data)
    smaller = SimulationConfig(subjects=1, downsample=2, contrasts=("t1",), seed=3)
    simulate_cohort(out, smaller, overwrite=True, progress=False)
    assert not (out / "sim002").exists()  # the old dataset's volumes are gone
    assert sorted(p.name for p in (out / "sim001").iterdir()) == ["sim001_lesion.nii.gz", "sim001_t1.nii.gz"]


def test_config_validation():
    assert SimulationConfig(contrasts=("T1ce", "T2-FLAIR")).contrasts == ("t1c", "flair")
    assert SimulationConfig(contrasts="t1,dwi", lesions=("tumor",)).lesions == ("tumour",)
    with pytest.raises(MrsynthError):
        SimulationConfig(contrasts=("t3",))
    with pytest.raises(MrsynthError):
        SimulationConfig(field_strength=7.0)
    with pytest.raises(MrsynthError):
        SimulationConfig(lesions=("fracture",))
    with pytest.raises(MrsynthError):
        SimulationConfig(snr=0.0)
