"""The shipped model synthesises FLAIR for a real case within its stated error."""

from __future__ import annotations

import csv

import pytest

from mrsynth.experiments.evaluate_model import evaluate_checkpoint
from mrsynth.pretrained import describe_shipped_models, model_card, resolve_model_path, shipped_models
from mrsynth.errors import CheckpointError
from mrsynth.training import load_checkpoint
from mrsynth.training.presets import DEFAULT

needs_shipped_flair = pytest.mark.skipif("flair" not in shipped_models(), reason="no pretrained:flair model in this installation")

SUBJECT = "BraTS-MET-00110-000"
FILES = {"t1": "t1.nii.gz", "t1c": "t1c.nii.gz", "t2": "t2.nii.gz", "flair": "flair.nii.gz"}


@needs_shipped_flair
def test_shipped_flair_model_on_a_real_case(shared_data, tmp_path) -> None:
    manifest = tmp_path / "case.csv"
    with manifest.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["subject", "contrast", "path"])
        for contrast, name in FILES.items():
            writer.writerow([SUBJECT, contrast, str(shared_data / "brats4" / SUBJECT / name)])
    result = evaluate_checkpoint("pretrained:flair", manifest, tmp_path / "eval", device="cpu",
                                 cache_dir=tmp_path / "cache", progress=False)
    card = model_card("flair")
    limits = card["acceptance_mse"]
    by_subset = {row.subset: row.metrics.mse for row in result.table.rows}
    assert set(by_subset) == set(limits)
    for subset, mse in by_subset.items():
        assert mse <= limits[subset], f"{subset}: MSE {mse:.3f} above {limits[subset]}"


def test_unknown_shipped_model_is_a_clear_error() -> None:
    with pytest.raises(CheckpointError, match="shipped"):
        resolve_model_path("pretrained:nonexistent")


@needs_shipped_flair
def test_models_listing_gives_each_subsets_error_beside_the_forests() -> None:
    card = model_card("flair")
    # the card's numbers were measured with these synthesis settings; the shipped file must synthesise the same way
    assert "mean calibration" in card["crossval_note"]
    config = load_checkpoint(resolve_model_path("pretrained:flair"))[0].model_config
    assert config.calibrate_mean and config.test_time_flip and config.test_time_flip_ap and config.slice_smoothing == 1.5
    shipped = load_checkpoint(resolve_model_path("pretrained:flair"))[0]
    train = shipped.train_config
    assert train.augment.enabled and train.augment.flip_ap == 0.5  # trained as the card's cross-validated runs were
    levers = DEFAULT.resolve()  # the shipped model is the default preset's configuration
    assert train.loss_weights.individual_mse == levers.individual_mse and train.loss_weights.subset_fusion == levers.subset_fusion
    assert config.decoder_sees_inputs == levers.decoder_sees_inputs and 1 + len(shipped.members) == levers.ensemble
    assert "--subset-fusion-weight 1 --decoder-sees-inputs" in card["command"] and "decoder_sees_inputs/ens2" in card["crossval_note"]
    listing = describe_shipped_models()
    assert "mean calibration: on; 2 networks (seeds of one configuration) averaged" in listing
    for subset, value in card["crossval_mse"].items():
        assert f"cross-validated MSE {subset}: {value}  (random forest, same folds: {card['crossval_forest_mse'][subset]})" in listing
