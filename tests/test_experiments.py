"""Experiments end to end on a tiny NIfTI dataset: evaluate, cross-validation, the four paper experiments."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from mrsynth.cli import main
from mrsynth.cli.experiments import _report
from mrsynth.data.misalignment import (RigidPerturbation, misalign_subject_volume, misalign_volume,
                                       write_misaligned_dataset)
from mrsynth.errors import DataError, MrsynthError
from mrsynth.evaluation.evaluate import evaluate_written
from mrsynth.experiments import ExperimentConfig, evaluate_checkpoint, run_experiment
from mrsynth.experiments.methods import Method, blend_predictor
from mrsynth.experiments.single_input import single_input_methods
from mrsynth.experiments.subsets import chosen_subsets, subset_methods
from mrsynth.training import load_checkpoint
from mrsynth.training.config import StandIn

from toy import write_toy_nifti_dataset

CONTRASTS = ("t1", "t2", "dwi", "flair")


def tiny(config: ExperimentConfig) -> ExperimentConfig:
    """Even smaller than --quick: 16x16 slices, one epoch of two batches, two folds, two trees."""
    return replace(config.quick(), size=(16, 16), epochs=1, max_batches_per_epoch=2, folds=2, trees=2,
                   forest_samples=200, device="cpu", progress=False)


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("experiments")
    return root, write_toy_nifti_dataset(root / "data", subjects=4, contrasts=CONTRASTS, seed=1)


def _cli_common(root: Path) -> list[str]:
    return ["--device", "cpu", "--no-progress", "--cache-dir", str(root / "cache")]


@pytest.fixture(scope="module")
def crossval_run(toy) -> Path:
    root, manifest = toy
    out = root / "cv"
    code = main(["crossval", "--data", str(manifest), "--inputs", "t1,t2,dwi", "--target", "flair", "--out", str(out),
                 "--folds", "3", "--epochs", "1", "--size", "16x16", "--features", "4", "--latent-channels", "4",
                 "--batch-size", "8", *_cli_common(root)])
    assert code == 0
    return out


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as stream:
        return list(csv.DictReader(stream))


def test_crossval_folds_partition_subjects(crossval_run) -> None:
    folds = json.loads((crossval_run / "folds.json").read_text())
    assert len(folds) == 3
    tested = [name for fold in folds for name in fold["test_subjects"]]
    assert sorted(tested) == [f"sub{i}" for i in range(4)]  # every subject tested exactly once
    for fold in folds:
        assert not set(fold["train_subjects"]) & set(fold["test_subjects"])
        for val in fold["val_subjects"].values():
            assert set(val) <= set(fold["train_subjects"])
    rows = _csv_rows(crossval_run / "crossval.csv")
    assert len(rows) == 4 * 7
    for subset in {r["subset"] for r in rows}:
        assert sorted(r["subject"] for r in rows if r["subset"] == subset) == [f"sub{i}" for i in range(4)]
    report = (crossval_run / "report.md").read_text()
    assert "| proposed |" in report and "t1+t2+dwi" in report
    assert (crossval_run / "fig4_synthesis.png").stat().st_size > 0 and (crossval_run / "fig2_latents.png").is_file()


def test_evaluate_writes_every_subset_and_matches_written_volumes(crossval_run, toy) -> None:
    root, manifest = toy
    model = crossval_run / "fold1" / "model-t1+t2+dwi" / "model.pt"
    out = root / "eval"
    assert main(["evaluate", "--model", str(model), "--data", str(manifest), "--out", str(out), "--save-volumes",
                 *_cli_common(root)]) == 0
    summary = _csv_rows(out / "summary.csv")
    assert [r["subset"] for r in summary] == ["t1", "t2", "dwi", "t1+t2", "t1+dwi", "t2+dwi", "t1+t2+dwi"]
    markdown = (out / "summary.md").read_text()
    assert sum(line.startswith("| proposed |") for line in markdown.splitlines()) == 7 + 1  # 7 rows + MSE layout
    assert "Warning" in markdown  # the fold's training subjects are among the evaluated ones
    in_memory = evaluate_checkpoint(model, manifest, root / "eval_api", device="cpu", cache_dir=root / "cache",
                                    progress=False).table
    written = evaluate_written(out / "volumes", "proposed")
    key = lambda row: (row.subject, row.subset)  # noqa: E731
    assert len(in_memory) == len(written) == 4 * 7
    for a, b in zip(sorted(in_memory.rows, key=key), sorted(written.rows, key=key)):
        assert key(a) == key(b) and a.metrics == b.metrics


def test_misalignment_is_seeded_bounded_and_keeps_shape(tmp_path) -> None:
    volume = np.zeros((20, 20, 8), np.float32)
    volume[5:15, 5:15, 2:6] = 1.0
    moved, params = misalign_subject_volume(volume, "sub0", seed=3, max_angle=8.0, max_shift=2.0, voxel_size=(1, 1, 2))
    again, params_again = misalign_subject_volume(volume, "sub0", seed=3, max_angle=8.0, max_shift=2.0, voxel_size=(1, 1, 2))
    other = misalign_subject_volume(volume, "sub1", seed=3)[1]
    assert params == params_again and np.array_equal(moved, again) and other != params
    assert moved.shape == volume.shape and moved.dtype == np.float32 and not np.allclose(moved, volume)
    assert all(abs(a) <= 8.0 for a in params.angles_deg) and all(abs(s) <= 2.0 for s in params.shift_voxels)
    identity = RigidPerturbation((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    assert np.allclose(misalign_volume(volume, identity), volume)
    shifted = misalign_volume(volume, RigidPerturbation((0.0, 0.0, 0.0), (1.0, 0.0, 0.0)))
    assert np.allclose(shifted[6:16], volume[5:15])


def test_misaligned_dataset_copy(toy, tmp_path) -> None:
    _, manifest = toy
    copy = write_misaligned_dataset(manifest, "t1", tmp_path / "moved", ("t1", "t2", "flair"), seed=0)
    rows = _csv_rows(copy.manifest)
    assert len(rows) == 4 * 3 and sorted(copy.perturbations) == [f"sub{i}" for i in range(4)]
    t1 = next(r for r in rows if r["subject"] == "sub0" and r["contrast"] == "t1")["path"]
    original = nib.load(str(manifest.parent / "sub0" / "sub0_t1.nii.gz"))
    assert Path(t1).is_relative_to(tmp_path) and nib.load(t1).shape == original.shape
    assert not np.allclose(nib.load(t1).get_fdata(), original.get_fdata())


def _report_rows(report: Path) -> dict[str, list[str]]:
    """The first table of report.md (the MSE one): {row label: cells}, plus the header under key ''."""
    lines = report.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    block = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        block.append([c.strip() for c in line.strip("|").split("|")])
    assert block[0][0] == "mse"
    return {"": block[0][1:], **{cells[0]: cells[1:] for cells in block[2:]}}


def test_single_input_experiment_cli_quick(toy, capsys) -> None:
    root, manifest = toy
    out = root / "single"
    code = main(["experiment", "single-input", "--data", str(manifest), "--out", str(out), "--quick", "--folds", "2",
                 "--size", "16x16", "--epochs", "1", "--trees", "2", "--samples", "200", "--lr", "0.002",
                 "--variance-weight", "0.25", "--fusion", "mean", *_cli_common(root)])
    assert code == 0 and "report:" in capsys.readouterr().out
    table = _report_rows(out / "report.md")
    assert table[""] == ["t1 -> t2", "t1 -> flair"]
    assert set(table) - {""} == {"proposed", "rf", "dedis", "linear"}
    assert all(cell for row in table.values() for cell in row)
    settings = json.loads((out / "settings.json").read_text())
    assert settings["size"] == [16, 16] and settings["encoder_features"] == 4  # --quick, then explicit overrides
    assert settings["learning_rate"] == 0.002
    run_config = json.loads(next((out / "t1_to_flair").rglob("config.json")).read_text())
    assert run_config["train"]["learning_rate"] == 0.002
    assert run_config["train"]["loss_weights"]["latent_variance"] == 0.25 and run_config["model"]["fusion"] == "mean"
    assert (out / "t1_to_flair_fig4_synthesis.png").is_file()


def test_single_input_without_any_runnable_task_is_an_error(toy) -> None:
    root, manifest = toy
    config = tiny(ExperimentConfig(manifest, root / "single_adc", target="adc", baselines=("linear",),
                                   cache_dir=root / "cache"))
    with pytest.raises(DataError, match="no single-input task can run: task t1 -> adc skipped"):
        run_experiment("single-input", config)
    assert not (root / "single_adc" / "report.md").exists()


def test_a_fold_missing_from_a_later_task_fails_before_any_training(toy, capsys) -> None:
    """4 subjects have T2, only 2 FLAIR: --folds 3 --fold 3 exists for t1 -> t2 but not for t1 -> flair."""
    root, manifest = toy
    rows = _csv_rows(manifest)
    kept = [r for r in rows if not (r["contrast"] == "flair" and r["subject"] in ("sub2", "sub3"))]
    assert len(kept) == len(rows) - 2
    fewer = manifest.parent / "fewer_flair.csv"  # paths are relative to the manifest
    with fewer.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
    out = root / "fold3_of_two"
    assert main(["experiment", "single-input", "--data", str(fewer), "--out", str(out), "--quick", "--folds", "3",
                 "--fold", "3", "--size", "16x16", "--epochs", "1", "--baselines", "linear", *_cli_common(root)]) == 2
    assert "fold 3 does not exist: the split has folds 1 to 2" in capsys.readouterr().err
    assert not (out / "t1_to_t2").exists()  # nothing was trained for the first task


def test_subsets_experiment(toy) -> None:
    root, manifest = toy
    result = run_experiment("subsets", tiny(ExperimentConfig(manifest, root / "subsets", cache_dir=root / "cache")))
    table = _report_rows(result.report)
    assert table[""] == ["t1", "t2", "dwi", "t1+t2", "t1+dwi", "t2+dwi", "t1+t2+dwi"]
    assert set(table) - {""} == {"(A) proposed, one model per subset", "(B) proposed, one model, missing inputs",
                                 "(C) rf", "(C) linear"}
    assert all(all(cells) for cells in table.values())
    assert (root / "subsets" / "fig4_synthesis.png").is_file() and (root / "subsets" / "subsets.csv").is_file()
    # (A) on the full set is the (B) model: trained once per fold, as the default's ensemble of 2 seeds
    models = sorted(path.name for path in (root / "subsets" / "runs" / "fold1").glob("model-*"))
    assert len(models) == 14 and sum(name.endswith("-seed1") for name in models) == 7


def test_subsets_experiment_on_chosen_subsets_only(toy, capsys) -> None:
    root, manifest = toy
    out = root / "chosen"
    args = ["experiment", "subsets", "--data", str(manifest), "--inputs", "t1,t2,dwi", "--quick", "--size", "16x16",
            "--epochs", "1", "--folds", "2", "--fold", "1", "--baselines", "linear", "--ensemble", "1", "--no-figures",
            "--stand-in", "t1:t2", *_cli_common(root)]
    assert main([*args, "--subset", "t2+t1", "--subset", "dwi", "--subset", "t1+t2", "--out", str(out)]) == 0
    table = _report_rows(out / "report.md")
    assert table[""] == ["dwi", "t1+t2"]  # in the inputs' order, each once
    assert all(len(cells) == 2 and all(cells) for cells in table.values())
    models = {p.name: p for p in (out / "runs" / "fold1").glob("model-*")}
    assert sorted(models) == ["model-dwi", "model-t1+t2", "model-t1+t2+dwi"]
    stand_ins = {name: load_checkpoint(path / "model.pt")[0].train_config.stand_in for name, path in models.items()}
    assert stand_ins["model-dwi"] is None  # the one-per-subset model without T1 and T2 trains without the stand-in
    assert stand_ins["model-t1+t2"] == stand_ins["model-t1+t2+dwi"] == StandIn("t1", "t2")
    assert json.loads((out / "settings.json").read_text())["subsets"] == [["dwi"], ["t1", "t2"]]  # as chosen
    assert "from the subsets dwi, t1+t2 of t1+t2+dwi" in (out / "report.md").read_text()
    assert main(["experiment", "single-input", "--data", str(manifest), "--subset", "t1", "--out", str(root / "si_subset"),
                 *_cli_common(root)]) == 2
    assert "--subset: the single-input experiment does not take it" in capsys.readouterr().err
    assert main([*args, "--subset", "t1+pd", "--out", str(root / "chosen_bad")]) == 2
    assert "--subset t1+pd: pd is not among the inputs t1, t2, dwi" in capsys.readouterr().err
    assert not (root / "chosen_bad").exists()
    assert chosen_subsets(("t1", "t2")) == [("t1",), ("t2",), ("t1", "t2")]


def test_misalignment_experiment(toy) -> None:
    root, manifest = toy
    config = tiny(ExperimentConfig(manifest, root / "misaligned", inputs=("t1", "t2"), cache_dir=root / "cache"))
    result = run_experiment("misalignment", config)
    table = _report_rows(result.report)
    assert table[""] == ["aligned", "misaligned"]
    assert set(table) - {""} == {"proposed", "proposed, no spatial transformer", "rf", "proposed, t2 only", "rf, t2 only"}
    assert table["proposed"][0] and table["proposed"][1] and table["rf, t2 only"][1]
    assert (root / "misaligned" / "misaligned_data" / "manifest.csv").is_file()


def test_transfer_finetunes_only_the_decoder(toy, tmp_path) -> None:
    root, manifest = toy
    new = write_toy_nifti_dataset(tmp_path / "new", subjects=4, contrasts=CONTRASTS, seed=1)
    config = tiny(ExperimentConfig(manifest, root / "transfer", target_data=new, cache_dir=root / "cache"))
    result = run_experiment("transfer", replace(config, epochs=2))
    table = _report_rows(result.report)
    assert set(table) - {""} == {"as is (trained on the source data)", "decoder fine-tuned on 1 volume",
                                 "decoder fine-tuned on 2 volumes", "decoder fine-tuned on 3 volumes",
                                 "trained from scratch on the 3 volumes"}
    records = result.folds["transfer"]
    source = load_checkpoint(next(iter(records[0].checkpoints.values())))[0].state_dict
    for record in records[1:4]:
        tuned = load_checkpoint(next(iter(record.checkpoints.values())))[0].state_dict
        encoder_keys = [k for k in source if not k.startswith("decoder.")]
        assert encoder_keys and all(torch.equal(source[k], tuned[k]) for k in encoder_keys)
        assert any(not torch.equal(source[k], tuned[k]) for k in source if k.startswith("decoder."))
        assert len(record.test_subjects) == 1  # the subject outside the largest fine-tuning set


def test_experiment_cli_quick_and_errors(toy, capsys) -> None:
    root, manifest = toy
    code = main(["experiment", "transfer", "--data", str(manifest), "--out", str(root / "bad"), "--quick",
                 *_cli_common(root)])
    assert code == 2 and "--target-data" in capsys.readouterr().err
    assert main(["experiment", "nope", "--data", str(manifest), "--out", str(root / "bad")]) != 0
    code = main(["experiment", "subsets", "--data", str(manifest), "--out", str(root / "bad"), "--forest-jobs", "0"])
    assert code == 2 and "--forest-jobs" in capsys.readouterr().err
    code = main(["experiment", "subsets", "--data", str(manifest), "--out", str(root / "bad"), "--fusion", "median"])
    assert code == 2 and "--fusion) must be one of max, mean, got 'median'" in capsys.readouterr().err
    code = main(["experiment", "subsets", "--data", str(manifest), "--out", str(root / "bad"), "--no-full-model",
                 "--no-per-subset", "--baselines", "none"])
    assert code == 2 and "nothing to run" in capsys.readouterr().err
    code = main(["experiment", "subsets", "--data", str(manifest), "--out", str(root / "bad"), "--blend-forest", "0.3",
                 "--blend-forest", "1.5"])
    assert code == 2 and "--blend-forest is the forest's weight, between 0 and 1 (exclusive), got 1.5" in capsys.readouterr().err
    code = main(["experiment", "subsets", "--data", str(manifest), "--out", str(root / "bad"), "--decoder-layers", "0"])
    assert code == 2 and "--decoder-layers) must be at least 1, got 0" in capsys.readouterr().err
    assert ExperimentConfig(manifest, root / "x", forest_jobs=2).run_settings("flair", ("t1",)).forest.n_jobs == 2
    assert ExperimentConfig(manifest, root / "x", decoder_layers=3).run_settings("flair", ("t1",)).model.decoder_layers == 3


def test_single_input_with_an_ensemble_and_the_paper_preset(toy) -> None:
    root, manifest = toy
    config = tiny(ExperimentConfig(manifest, root / "ensemble", target="flair", baselines=(), cache_dir=root / "cache",
                                   ensemble=2, preset="paper"))
    result = run_experiment("single-input", config)
    assert len(result.table("single_input")) > 0
    fold = root / "ensemble" / "t1_to_flair" / "fold1"
    assert (fold / "model-t1" / "ensemble.pt").is_file() and (fold / "model-t1-seed1" / "model.pt").is_file()
    settings = json.loads((root / "ensemble" / "settings.json").read_text())
    assert settings["preset"] == "paper" and settings["ensemble"] == 2 and settings["levers"]["test_time_flip"] is False
    assert settings["levers"]["encoder_features"] == settings["encoder_features"] == 4  # --quick's width wins
    checkpoint, _ = load_checkpoint(fold / "model-t1" / "ensemble.pt")
    assert len(checkpoint.members) == 1 and not checkpoint.model_config.test_time_flip
    assert checkpoint.train_config.schedule == "constant"


def test_subsets_with_a_test_pool_and_without_per_subset_models(toy) -> None:
    root, manifest = toy
    rows = _csv_rows(manifest)
    partial = manifest.parent / "partial.csv"  # sub0 without T2: it may train, but is never tested
    with partial.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if not (r["subject"] == "sub0" and r["contrast"] == "t2"))
    config = tiny(ExperimentConfig(partial, root / "pool", cache_dir=root / "cache", baselines=("linear",),
                                   per_subset_models=False, test_requires=("t1", "t2"), folds=3))
    result = run_experiment("subsets", config)
    folds = json.loads((root / "pool" / "runs" / "folds.json").read_text())
    assert sorted(s for fold in folds for s in fold["test_subjects"]) == ["sub1", "sub2", "sub3"]
    assert all("sub0" in fold["train_subjects"] for fold in folds)
    methods = {row.method for row in result.table("subsets").rows}
    assert not any(m.startswith("(A)") for m in methods) and any(m.startswith("(B)") for m in methods)
    with pytest.raises(Exception, match="not an input"):
        run_experiment("subsets", replace(config, out=root / "pool2", test_requires=("pd",)))
    baselines_only = run_experiment("subsets", replace(config, out=root / "pool3", full_model=False))
    assert {row.method for row in baselines_only.table("subsets").rows} == {"(C) linear"}
    report = (root / "pool3" / "report.md").read_text()
    assert "(C) baselines fitted per subset" in report and "(B) one model trained" not in report
    assert json.loads((root / "pool3" / "runs" / "folds.json").read_text())[0]["test_subjects"] == folds[0]["test_subjects"]
    with pytest.raises(MrsynthError, match="nothing to run"):
        run_experiment("subsets", replace(config, out=root / "pool4", full_model=False, baselines=()))


def test_a_run_of_some_folds_tests_the_same_subjects_as_the_full_split_and_records_percentile_inputs(toy, capsys) -> None:
    root, manifest = toy
    common = ["--quick", "--inputs", "t1,t2", "--folds", "3", "--size", "16x16", "--epochs", "1", "--baselines", "linear",
              "--no-per-subset", "--no-figures", *_cli_common(root)]
    assert main(["experiment", "subsets", "--data", str(manifest), "--out", str(root / "all3"), *common]) == 0
    assert main(["experiment", "subsets", "--data", str(manifest), "--out", str(root / "only2"), "--fold", "2",
                 "--input-normalisation", "percentile", *common]) == 0
    full = json.loads((root / "all3" / "runs" / "folds.json").read_text())
    part = json.loads((root / "only2" / "runs" / "folds.json").read_text())
    assert [f["index"] for f in part] == [1] and part[0]["test_subjects"] == full[1]["test_subjects"]
    assert part[0]["of"] == 3 and not (root / "only2" / "runs" / "fold1").exists()
    tested = {row["subject"] for row in _csv_rows(root / "only2" / "subsets.csv")}
    assert tested == set(full[1]["test_subjects"])
    assert "folds 2 only of a 3-fold split" in (root / "only2" / "report.md").read_text()
    assert json.loads((root / "only2" / "settings.json").read_text())["levers"]["input_normalisation"] == "percentile"
    checkpoint, _ = load_checkpoint(root / "only2" / "runs" / "fold2" / "model-t1+t2" / "model.pt")
    assert checkpoint.preprocess["input_normalisation"] == "percentile"
    capsys.readouterr()
    assert main(["experiment", "subsets", "--data", str(manifest), "--out", str(root / "only9"), "--fold", "9",
                 *common]) == 2
    assert "fold 9 does not exist: the split has folds 1 to 3" in capsys.readouterr().err


def test_train_also_subjects_join_every_training_fold_and_are_never_tested(toy, capsys) -> None:
    root, manifest = toy
    rows = _csv_rows(manifest)
    extra = manifest.parent / "extra.csv"  # the same volumes under other subject names
    with extra.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**r, "subject": "extra" + r["subject"]} for r in rows if r["subject"] in ("sub0", "sub1"))
    common = ["--quick", "--inputs", "t1,t2", "--folds", "2", "--size", "16x16", "--epochs", "1", "--baselines", "linear",
              "--no-per-subset", "--no-figures", *_cli_common(root)]
    assert main(["experiment", "subsets", "--data", str(manifest), "--out", str(root / "also"), "--train-also", str(extra),
                 "--val-fraction", "0.5", *common]) == 0
    folds = json.loads((root / "also" / "runs" / "folds.json").read_text())
    assert sorted(s for fold in folds for s in fold["test_subjects"]) == ["sub0", "sub1", "sub2", "sub3"]
    assert all({"extrasub0", "extrasub1"} <= set(fold["train_subjects"]) and len(fold["train_subjects"]) == 4
               for fold in folds)
    for fold in folds:  # validation draws from the dataset's own training subjects only
        validation = fold["val_subjects"]["model-t1+t2"]
        assert len(validation) == 1 and validation[0] in fold["train_subjects"] and not validation[0].startswith("extra")
    assert "2 subjects of" in (root / "also" / "report.md").read_text()
    assert {row["subject"] for row in _csv_rows(root / "also" / "subsets.csv")} == {"sub0", "sub1", "sub2", "sub3"}
    assert json.loads((root / "also" / "settings.json").read_text())["train_also"] == [str(extra)]
    capsys.readouterr()
    code = main(["experiment", "subsets", "--data", str(manifest), "--out", str(root / "also2"), "--train-also",
                 str(manifest), *common])
    assert code == 2 and "sub0, sub1, sub2, sub3 appear in more than one" in capsys.readouterr().err
    code = main(["experiment", "misalignment", "--data", str(manifest), "--out", str(root / "also3"), "--train-also",
                 str(extra), *common])
    assert code == 2 and "--train-also: the misalignment experiment does not take it" in capsys.readouterr().err
    code = main(["experiment", "single-input", "--data", str(manifest), "--out", str(root / "also4"), "--train-also",
                 str(manifest), *common[:1], "--inputs", "t1", *common[3:]])
    assert code == 2 and "--train-also" in capsys.readouterr().err  # an error, not a skipped task
    assert not any((root / name).exists() for name in ("also2", "also3", "also4"))


def test_a_blend_of_the_model_and_the_forest_is_their_weighted_mean(toy) -> None:
    root, manifest = toy
    config = tiny(ExperimentConfig(manifest, root / "blend", inputs=("t1", "t2"), cache_dir=root / "cache", baselines=(),
                                   per_subset_models=False, blend_forest=(0.25, 0.5), figures=False))
    result = run_experiment("subsets", config)
    mse = {(r.method, r.subset, r.subject): r.metrics.mse for r in result.table("subsets").rows}
    model, forest = "(B) proposed, one model, missing inputs", "(C) rf"  # the forest is fitted for the blend
    for weight in (0.25, 0.5):
        blend = f"(D) blend of (B) and rf, forest weight {weight:g}"
        keys = [(subset, subject) for method, subset, subject in mse if method == blend]
        assert len(keys) == 3 * 4  # every subset, every subject
        for key in keys:  # squared error is convex: the blend is no worse than the weighted mean of the two errors
            assert mse[(blend, *key)] <= (1 - weight) * mse[(model, *key)] + weight * mse[(forest, *key)] + 1e-9
            assert mse[(blend, *key)] not in (mse[(model, *key)], mse[(forest, *key)])
    assert "(D) (B) and the forest averaged voxel by voxel" in result.report.read_text()
    with pytest.raises(MrsynthError, match="needs \\(B\\)"):
        run_experiment("subsets", replace(config, out=root / "blend2", full_model=False))
    with pytest.raises(ValueError, match="between 0 and 1"):
        replace(config, blend_forest=(1.0,))
    with pytest.raises(ValueError, match="must differ"):
        replace(config, blend_forest=(0.3, 0.3))
    with pytest.raises(MrsynthError, match="--blend-forest: the transfer experiment does not take it"):
        run_experiment("transfer", replace(config, out=root / "blend3"))


def test_blend_methods_check_their_parts_and_weights() -> None:
    model = Method.model("m", ("t1", "t2"), every_subset=True)
    forest = Method.baseline("rf", ("t1",))
    blend = Method.blend("b", ("t1",), (model, forest), (0.7, 0.3))
    assert blend.training_key != Method.blend("b", ("t1",), (model, forest), (0.5, 0.5)).training_key
    with pytest.raises(ValueError, match="sum to 1"):
        Method.blend("b", ("t1",), (model, forest), (0.7, 0.7))
    with pytest.raises(ValueError, match="tested on the blend's subsets"):
        Method.blend("b", ("t2",), (model, forest), (0.5, 0.5))
    with pytest.raises(ValueError, match="one weight each"):
        Method("b", "blend", ("t1",), (("t1",),))
    for methods in (subset_methods(("t1", "t2"), (), per_subset=False, blend_forest=(0.2,)),
                    single_input_methods(("t1",), (), blend_forest=(0.2,))):
        blends = [m for m in methods if m.kind == "blend"]
        assert blends and all(m.weights == (0.8, 0.2) and m.parts[0].kind == "model" and m.parts[1].kind == "rf"
                              and m.parts[1].inputs == m.inputs for m in blends)
        assert any(m.kind == "rf" for m in methods)  # the forest is fitted before the blends that use it
    predict = blend_predictor([lambda s, p: np.ones(2), lambda s, p: np.full(2, 3.0)], (0.75, 0.25))
    assert np.allclose(predict(None, None), 1.5)


def test_resuming_a_finished_experiment_tests_with_the_new_synthesis_settings(toy) -> None:
    from mrsynth.training.presets import Levers

    root, manifest = toy
    config = tiny(ExperimentConfig(manifest, root / "resynth", cache_dir=root / "cache", baselines=(),
                                   per_subset_models=False, init_from="none",
                                   levers=Levers(slice_smoothing=0.0, test_time_flip_ap=False)))
    first = run_experiment("subsets", config)
    model = root / "resynth" / "runs" / "fold1" / "model-t1+t2+dwi" / "model.pt"
    weights = load_checkpoint(model)[0].state_dict
    again = run_experiment("subsets", replace(config, resume=True, levers=Levers(slice_smoothing=2.0, test_time_flip_ap=True)))
    before = {(r.subject, r.subset): r.metrics.mse for r in first.table("subsets").rows}
    after = {(r.subject, r.subset): r.metrics.mse for r in again.table("subsets").rows}
    assert before.keys() == after.keys() and any(before[k] != after[k] for k in before)
    resumed = load_checkpoint(model)[0]
    assert all(torch.equal(weights[name], resumed.state_dict[name]) for name in weights)  # re-tested, not retrained
    assert resumed.model_config.slice_smoothing == 2.0 and resumed.model_config.test_time_flip_ap is True
    # resumed with a model setting the run was not trained with: the method is skipped, and the CLI says so as an error
    mismatched = run_experiment("subsets", replace(config, resume=True, levers=Levers(decoder_sees_inputs=False)))
    assert not mismatched.table("subsets").rows
    assert any("different model configuration" in note and "decoder_sees_inputs" in note for note in mismatched.notes)
    with pytest.raises(MrsynthError, match="produced no results: every method was skipped"):
        _report(mismatched)
    _report(again)  # an experiment with results is not an error


def test_crossval_takes_the_presets_warm_start_and_an_ensemble(toy) -> None:
    root, manifest = toy
    out = root / "cv_default"
    code = main(["crossval", "--data", str(manifest), "--inputs", "t1,t2", "--target", "flair", "--out", str(out),
                 "--folds", "2", "--epochs", "1", "--size", "16x16", "--batch-size", "8",
                 "--no-figures", *_cli_common(root)])
    assert code == 0
    ensembles = sorted(out.rglob("ensemble.pt"))
    assert len(ensembles) == 2  # one per fold: the default preset's ensemble of 2
    checkpoint, _ = load_checkpoint(ensembles[0])
    assert len(checkpoint.members) == 1
    single = root / "cv_single"  # the option wins over the preset
    assert main(["crossval", "--data", str(manifest), "--inputs", "t1,t2", "--target", "flair", "--out", str(single),
                 "--folds", "2", "--epochs", "1", "--size", "16x16", "--batch-size", "8", "--ensemble", "1",
                 "--no-figures", *_cli_common(root)]) == 0
    assert not list(single.rglob("ensemble.pt")) and not list(single.rglob("*-seed1"))
    assert [m["training_data"]["init_from"] for m in checkpoint.training_data["ensemble"]] == ["pretrained:sim-flair"] * 2
