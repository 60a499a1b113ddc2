"""The main job runs end to end (tiny settings) and writes what it promises."""

from __future__ import annotations

import nibabel as nib
import pytest

from mrsynth.demo import DemoConfig, run_demo
from mrsynth.errors import MrsynthError


def test_quick_demo_writes_table_figure_and_nifti(tmp_path) -> None:
    config = DemoConfig.quick(out=tmp_path / "demo", subjects=3, epochs=1, size=(16, 16), encoder_features=4,
                              device="cpu", progress=False)
    result = run_demo(config, log=lambda *_: None)
    subsets = {row.subset for row in result.table.rows}
    assert subsets == {"t1", "t2", "dwi", "t1+t2", "t1+dwi", "t2+dwi", "t1+t2+dwi"}
    header = result.table_markdown.read_text()
    assert "t1+t2+dwi" in header and "linear floor" in header
    assert result.figure.stat().st_size > 1000
    image = nib.load(str(result.synthesized))
    source = nib.load(str(next((tmp_path / "demo" / "data").glob("*/*_t1.nii.gz"))))
    assert image.ndim == 3 and image.shape == source.shape
    with pytest.raises(MrsynthError, match="--force"):
        run_demo(config, log=lambda *_: None)
    # --force with the default preset replaces the one-network run with the preset's ensemble of 2
    from dataclasses import replace

    from mrsynth.training import load_checkpoint

    again = run_demo(replace(config, preset="default", force=True), log=lambda *_: None)
    checkpoint, _ = load_checkpoint(again.model)
    assert again.model == tmp_path / "demo" / "run" / "model.pt" and len(checkpoint.members) == 1
    assert checkpoint.train_config.loss_weights.individual_mse == 1.0
    assert len(checkpoint.training_data["ensemble"]) == 2
    assert [load_checkpoint(again.model.parent / f"member{k}" / "model.pt")[0].train_config.seed for k in (1, 2)] == [0, 1]
