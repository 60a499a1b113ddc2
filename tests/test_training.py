"""Training loop, checkpoints, resume, splits and batching."""

from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest
import torch

from mrsynth.data.slices import concatenate
from mrsynth.errors import CheckpointError, MrsynthError
from mrsynth.model import ModelConfig
from mrsynth.training import TrainConfig, kfold_subjects, load_checkpoint, split_subjects, train_model
from mrsynth.training.batches import context_rows, drop_inputs, iterate_batches
from mrsynth.training.config import StandIn

from toy import toy_slices

TINY = dict(encoder_features=4, latent_channels=4, decoder_features=4)


def quick_config(**overrides) -> TrainConfig:
    base = dict(epochs=3, batch_size=8, learning_rate=3e-3, val_fraction=0.25, device="cpu", progress=False)
    base.update(overrides)
    return TrainConfig(**base)


def test_tiny_run_reduces_loss_and_writes_files(tmp_path) -> None:
    slices = toy_slices(missing={1: 2})
    result = train_model(slices, ModelConfig(inputs=slices.contrasts, target="flair", **TINY),
                         quick_config(epochs=6), tmp_path / "run")
    first, last = result.history[0], result.history[-1]
    assert last["train_total"] < first["train_total"]
    assert (tmp_path / "run" / "model.pt").is_file() and (tmp_path / "run" / "last.pt").is_file()
    rows = list(csv.DictReader((tmp_path / "run" / "history.csv").open()))
    assert len(rows) == 6 and {"train_fused_mae", "train_latent_variance", "train_individual_mae", "val_total"} <= set(rows[0])
    assert set(result.train_subjects).isdisjoint(result.val_subjects) and len(result.val_subjects) == 1


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path) -> None:
    slices = toy_slices()
    config = ModelConfig(inputs=slices.contrasts, target="flair", **TINY)
    train_model(slices, config, quick_config(epochs=1), tmp_path, preprocess={"size": [16, 16]},
                training_data={"data": "toy"})
    checkpoint, _ = load_checkpoint(tmp_path / "model.pt")
    assert checkpoint.model_config == config and checkpoint.preprocess == {"size": [16, 16]}
    assert checkpoint.training_data["input_dropout"] == 0.0 and checkpoint.mrsynth_version
    model = checkpoint.build_model()
    images = torch.from_numpy(slices.inputs[:4])
    present = torch.ones(4, 3, dtype=torch.bool)
    again = load_checkpoint(tmp_path / "model.pt")[0].build_model()
    with torch.no_grad():
        torch.testing.assert_close(model(images, present).image, again(images, present).image, rtol=0, atol=0)


def test_training_is_reproducible_and_resume_continues(tmp_path) -> None:
    slices = toy_slices()
    model_config = ModelConfig(inputs=slices.contrasts, target="flair", **TINY)
    full = train_model(slices, model_config, quick_config(epochs=3, patience=99), tmp_path / "full")
    train_model(slices, model_config, quick_config(epochs=2, patience=99), tmp_path / "part")
    resumed = train_model(slices, model_config, quick_config(epochs=3, patience=99), tmp_path / "part", resume=True)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    assert resumed.history[-1]["train_total"] == pytest.approx(full.history[-1]["train_total"], rel=1e-5)


def test_a_run_resumes_only_on_the_subjects_it_started_with(tmp_path) -> None:
    slices = toy_slices()
    model = ModelConfig(inputs=slices.contrasts, target="flair", **TINY)
    train_model(slices, model, quick_config(epochs=1), tmp_path / "run")
    fewer = slices.select_subjects(["sub0", "sub1", "sub2"])
    with pytest.raises(MrsynthError, match="trained on other subjects \\(missing now: sub3\\)"):
        train_model(fewer, model, quick_config(epochs=2), tmp_path / "run", resume=True)
    deeper = replace(model, decoder_layers=3, test_time_flip=True)  # flip alone could change on resume
    with pytest.raises(MrsynthError, match="different model configuration \\(decoder_layers: 2 there, 3 now\\)$"):
        train_model(slices, deeper, quick_config(epochs=2), tmp_path / "run", resume=True)


def test_existing_run_is_not_overwritten(tmp_path) -> None:
    slices = toy_slices()
    config = ModelConfig(inputs=slices.contrasts, target="flair", **TINY)
    train_model(slices, config, quick_config(epochs=1), tmp_path)
    before = (tmp_path / "model.pt").read_bytes()
    with pytest.raises(MrsynthError, match="--resume"):
        train_model(slices, config, quick_config(epochs=1), tmp_path)
    assert (tmp_path / "model.pt").read_bytes() == before


def test_decoder_only_finetuning_freezes_encoders(tmp_path) -> None:
    slices = toy_slices()
    config = ModelConfig(inputs=slices.contrasts, target="flair", **TINY)
    train_model(slices, config, quick_config(epochs=1), tmp_path / "a")
    start, _ = load_checkpoint(tmp_path / "a" / "model.pt")
    train_model(slices, config, quick_config(epochs=2, val_fraction=0.0), tmp_path / "b",
                initial_state=start.state_dict, trainable=("decoder",))
    tuned, _ = load_checkpoint(tmp_path / "b" / "model.pt")
    for name, value in start.state_dict.items():
        same = torch.equal(value, tuned.state_dict[name])
        assert same == (not name.startswith("decoder")), name


def test_bad_checkpoints_are_reported(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"format": "mrsynth-checkpoint", "format_version": 99, "mrsynth_version": "9.9"}, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(tmp_path / "new.pt")


def test_subject_splits_never_share_subjects() -> None:
    names = [f"s{i}" for i in range(10)]
    train, val = split_subjects(names, 0.2, seed=3)
    assert len(val) == 2 and not set(train) & set(val) and set(train) | set(val) == set(names)
    folds = kfold_subjects(names, 5)
    tests = [t for _, t in folds]
    assert sorted(sum(tests, [])) == sorted(names)
    assert all(not set(tr) & set(te) for tr, te in folds)
    assert len(kfold_subjects(names[:4], 5)) == 4  # more folds than subjects: leave one out


def test_concatenated_slice_sets_keep_each_subject_s_slices() -> None:
    first, second = toy_slices(subjects=2, seed=1), toy_slices(subjects=3, seed=2)
    second = replace(second, subjects=("x0", "x1", "x2"))
    both = concatenate([first, second])
    assert both.subjects == ("sub0", "sub1", "x0", "x1", "x2") and len(both) == len(first) + len(second)
    assert np.array_equal(both.select_subjects(["x1"]).target, second.select_subjects(["x1"]).target)
    assert np.array_equal(both.select_subjects(["sub1"]).inputs, first.select_subjects(["sub1"]).inputs)
    with pytest.raises(ValueError, match="sub0, sub1 appear in more than one"):
        concatenate([first, first])
    with pytest.raises(ValueError, match="contrasts"):
        concatenate([first, replace(second, inputs=second.inputs[:, :2], present=second.present[:, :2], contrasts=("t1", "t2"))])
    with pytest.raises(ValueError, match="image size"):
        concatenate([first, toy_slices(subjects=1, size=8)])


def test_input_dropout_keeps_one_contrast() -> None:
    present = np.ones((500, 3), bool)
    present[:100, 1:] = False
    dropped = drop_inputs(present, 0.9, np.random.default_rng(0))
    assert dropped.any(axis=1).all() and not (dropped & ~present).any()
    assert dropped.sum() < present.sum()


def test_context_rows_stay_within_subject() -> None:
    slices = toy_slices(subjects=2, slices=4)
    rows = context_rows(slices, 1)
    assert rows[0].tolist() == [0, 0, 1] and rows[4].tolist() == [4, 4, 5] and rows[3].tolist() == [2, 3, 3]


def test_context_slices_model_trains(tmp_path) -> None:
    slices = toy_slices()
    result = train_model(slices, ModelConfig(inputs=slices.contrasts, target="flair", context_slices=1, **TINY),
                         quick_config(epochs=1), tmp_path)
    assert np.isfinite(result.best_value)


def test_context_rows_repeat_the_edge_slice_like_inference() -> None:
    slices = toy_slices(subjects=2, slices=4)
    rows = context_rows(slices, 2)
    assert rows[1].tolist() == [0, 0, 1, 2, 3] and rows[7].tolist() == [5, 6, 7, 7, 7]


def test_resume_without_a_previous_run_is_an_error(tmp_path) -> None:
    slices = toy_slices()
    with pytest.raises(MrsynthError, match="no run to continue"):
        train_model(slices, ModelConfig(inputs=slices.contrasts, target="flair", **TINY), quick_config(epochs=1),
                    tmp_path, resume=True)


def _all_batches(slices, stand_in, rng_seed=0, world=1, rank=0, dropout=0.0):
    rng = np.random.default_rng(rng_seed)
    return list(iterate_batches(slices, np.arange(len(slices)), 8, torch.device("cpu"), rng, dropout,
                                stand_in=stand_in, rank=rank, world=world))


def test_stand_in_moves_the_source_image_into_the_missing_slot() -> None:
    slices = toy_slices(missing={1: 1})  # subject 1 has t1 and dwi but no t2
    lacking = ~slices.present[:, 1]
    moved = seen = 0
    for batch in _all_batches(slices, (0, 1, 1.0)):
        images, present = batch.images.numpy(), batch.present.numpy()
        rows = np.flatnonzero(~present[:, 0])  # the samples whose t1 moved
        moved += len(rows)
        seen += len(present)
        assert (present[rows] == [False, True, True]).all()
        np.testing.assert_array_equal(images[rows, 1], images[rows, 0])  # t1's image now sits in t2's slot
        assert batch.available is None  # what the sample has after the move is what it shows
    assert moved == lacking.sum() and seen == len(slices)  # probability 1: every eligible sample, no other
    untouched = list(iterate_batches(slices, np.arange(len(slices)), 8, torch.device("cpu"), stand_in=(0, 1, 1.0)))
    assert all(b.present.numpy()[:, 0].all() for b in untouched)  # evaluation (no rng) never moves inputs


def test_stand_in_draws_per_sample_and_then_input_dropout_still_keeps_one() -> None:
    slices = toy_slices(subjects=8, slices=40, missing={1: 1, 2: 1, 3: 1, 4: 1})  # 160 samples without t2
    batches = _all_batches(slices, (0, 1, 0.5), dropout=0.5)
    present = np.concatenate([b.present.numpy() for b in batches])
    has = np.concatenate([(b.present if b.available is None else b.available).numpy() for b in batches])
    assert present.any(axis=1).all() and not (present & ~has).any()
    stood_in = (~has[:, 0] & has[:, 1]).sum()
    assert 0.35 * 160 < stood_in < 0.65 * 160  # about half of the eligible samples, none of the others
    assert (~has[:, 0]).sum() == stood_in and has.sum() == slices.present.sum()  # moved, not added or lost


def test_stand_in_is_drawn_once_for_the_global_batch_of_every_rank() -> None:
    slices = toy_slices(missing={1: 1, 2: 1})
    single = _all_batches(slices, (0, 1, 0.5), rng_seed=4)
    shares = [_all_batches(slices, (0, 1, 0.5), rng_seed=4, world=2, rank=r) for r in range(2)]
    assert any(not b.present[:, 0].all() for b in single)  # some samples did move
    for whole, first, second in zip(single, *shares):
        torch.testing.assert_close(torch.cat([first.images, second.images]), whole.images)
        assert torch.equal(torch.cat([first.present, second.present]), whole.present)


def test_stand_in_specs_parse_check_and_survive_the_checkpoint() -> None:
    assert StandIn.parse("T1:t1ce") == StandIn("t1", "t1c", 0.5)
    assert StandIn.parse("none") is None and StandIn.parse(None) is None and StandIn.parse("t1:t1c", 0.0) is None
    for spec, message in (("t1", "SOURCE:TARGET"), ("t1:t1", "itself"), ("t1:foo", "unknown contrast 'foo'")):
        with pytest.raises(ValueError, match=message):
            StandIn.parse(spec)
    with pytest.raises(ValueError, match="probability"):
        StandIn("t1", "t1c", 1.5)
    config = quick_config(stand_in=StandIn("t1", "t1c", 0.3))
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert quick_config().recipe_changes(config) == ["stand_in None -> {'source': 't1', 'target': 't1c', 'probability': 0.3}"]


def test_a_stand_in_run_records_its_slices_and_names_a_contrast_the_model_lacks(tmp_path) -> None:
    slices = toy_slices(missing={1: 1})
    model = ModelConfig(inputs=slices.contrasts, target="flair", **TINY)
    train_model(slices, model, quick_config(epochs=1, stand_in=StandIn("t1", "t2")), tmp_path / "run")
    checkpoint, _ = load_checkpoint(tmp_path / "run" / "model.pt")
    assert checkpoint.train_config.stand_in == StandIn("t1", "t2") and checkpoint.training_data["stand_in_slices"] > 0
    with pytest.raises(MrsynthError, match=r"--stand-in t1:t1c: t1c is not among the model's inputs \(t1, t2, dwi\)"):
        train_model(slices, model, quick_config(epochs=1, stand_in=StandIn("t1", "t1c")), tmp_path / "other")
