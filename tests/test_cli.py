"""The command line end to end on a tiny NIfTI dataset, and its one-line errors."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from mrsynth.cli import main
from mrsynth.training import load_checkpoint

from toy import write_toy_nifti_dataset



@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cli")
    manifest = write_toy_nifti_dataset(root / "data")
    code = main(["train", "--data", str(manifest), "--inputs", "t1,t2", "--target", "flair", "--out", str(root / "run"),
                 "--epochs", "2", "--size", "16x16", "--features", "4", "--latent-channels", "4", "--batch-size", "4",
                 "--device", "cpu", "--no-progress", "--cache-dir", str(root / "cache"), "--loss-weights", "1,0.5,1"])
    assert code == 0
    return root, manifest


def test_train_and_synthesize_any_subset(trained, capsys) -> None:
    root, _ = trained
    # the default preset trains an ensemble of two seeds: one run folder per member, their average as model.pt
    assert (root / "run" / "model.pt").is_file() and not (root / "run" / "history.csv").exists()
    assert all((root / "run" / f"member{k}" / "history.csv").is_file() for k in (1, 2))
    checkpoint, _ = load_checkpoint(root / "run" / "model.pt")
    assert len(checkpoint.members) == 1 and checkpoint.train_config.loss_weights.individual_mse == 1.0
    assert checkpoint.train_config.loss_weights.latent_variance == 0.5
    assert checkpoint.preprocess["size"] in ([16, 16], (16, 16)) and checkpoint.model_config.inputs == ("t1", "t2")
    t1, t2 = root / "data/sub0/sub0_t1.nii.gz", root / "data/sub0/sub0_t2.nii.gz"
    for inputs, name in ((["t1=" + str(t1)], "a"), (["t2=" + str(t2)], "b"), (["t1=" + str(t1), "t2=" + str(t2)], "c")):
        args = ["synthesize", "--model", str(root / "run" / "model.pt"), "--out", str(root / f"{name}.nii.gz"), "--device", "cpu"]
        for item in inputs:
            args += ["--input", item]
        assert main(args) == 0
        out = nib.load(str(root / f"{name}.nii.gz"))
        reference = nib.load(str(t1 if name != "b" else t2))
        assert out.shape == reference.shape and np.allclose(out.affine, reference.affine)
        assert out.get_data_dtype() == np.float32 and np.isfinite(out.get_fdata()).all()


def test_synthesize_whole_dataset(trained) -> None:
    root, manifest = trained
    code = main(["synthesize", "--model", str(root / "run"), "--data", str(manifest), "--out-dir", str(root / "all"), "--device", "cpu"])
    assert code == 0 and len(list((root / "all").glob("*_flair.nii.gz"))) == 3


def test_inspect_reports_subjects(trained, capsys) -> None:
    _, manifest = trained
    assert main(["inspect", "--data", str(manifest), "--inputs", "t1,t2", "--target", "flair"]) == 0
    out = capsys.readouterr().out
    assert "sub0" in out and "sub2" in out


@pytest.mark.parametrize("case", ["unknown_contrast", "no_input", "missing_file", "exists", "bad_checkpoint"])
def test_bad_input_is_one_line_exit_2(trained, case, capsys) -> None:
    root, _ = trained
    t1 = root / "data/sub0/sub0_t1.nii.gz"
    model = root / "run" / "model.pt"
    out = root / f"err_{case}.nii.gz"
    args = {
        "unknown_contrast": ["--input", f"dwi={t1}"],
        "no_input": [],
        "missing_file": ["--input", f"t1={root / 'nope.nii.gz'}"],
        "exists": ["--input", f"t1={t1}"],
        "bad_checkpoint": ["--input", f"t1={t1}"],
    }[case]
    if case == "exists":
        out.write_bytes(b"precious")
    if case == "bad_checkpoint":
        model = root / "junk.pt"
        model.write_bytes(b"junk")
    code = main(["synthesize", "--model", str(model), "--out", str(out), "--device", "cpu", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    if case == "exists":
        assert out.read_bytes() == b"precious"
    else:
        assert not out.exists()


def test_compare_writes_figure_and_refuses_overwrite(trained, capsys) -> None:
    root, _ = trained
    t1, flair = root / "data/sub1/sub1_t1.nii.gz", root / "data/sub1/sub1_flair.nii.gz"
    synth = root / "cmp_synth.nii.gz"
    assert main(["synthesize", "--model", str(root / "run"), "--input", f"t1={t1}", "--out", str(synth), "--device", "cpu"]) == 0
    figure = root / "cmp.png"
    assert main(["compare", "--synthesized", str(synth), "--truth", str(flair), "--out", str(figure)]) == 0
    assert figure.stat().st_size > 1000 and "MSE" in capsys.readouterr().out
    assert main(["compare", "--synthesized", str(synth), "--truth", str(flair), "--out", str(figure)]) == 2


def test_models_lists_or_says_none(capsys) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "pretrained:" in out or "no pretrained models" in out


def test_train_preset_levers_and_warm_start(trained, capsys, caplog, recwarn) -> None:
    root, manifest = trained
    common = ["train", "--data", str(manifest), "--inputs", "t2,t1", "--target", "flair", "--epochs", "1", "--size", "16x16",
              "--latent-channels", "4", "--batch-size", "4", "--device", "cpu", "--no-progress",
              "--cache-dir", str(root / "cache")]
    code = main(common + ["--out", str(root / "paper"), "--preset", "paper", "--features", "4", "--augment",
                          "--schedule", "cosine", "--mse-weight", "0.5", "--init-from", str(root / "run"),
                          "--loss-weights", "1,0.5,1", "--variance-weight", "0.2", "--decoder-layers", "3",
                          "--cross-synthesis", "0.5", "--test-time-flip-ap", "--slice-smoothing", "0.7",
                          "--augment-flip-ap", "0.25", "--augment-elastic", "0.5", "--individual-mse-weight", "0.75",
                          "--decoder-sees-inputs"])
    assert code == 0
    # the paper preset trains one network from the two-network run: said as one WARNING line, no Python warning
    assert f"{root / 'run'} holds 2 networks and this run trains 1: it starts from network 1 only" in caplog.text
    assert "UserWarning" not in capsys.readouterr().err
    assert not [w for w in recwarn if "holds 2 networks" in str(w.message)]  # shown by main, not left to Python
    checkpoint, _ = load_checkpoint(root / "paper" / "model.pt")
    train, model = checkpoint.train_config, checkpoint.model_config
    assert train.augment.enabled and train.schedule == "cosine" and train.loss_weights.fused_mse == 0.5
    assert train.loss_weights.latent_variance == 0.2  # --variance-weight wins over --loss-weights
    assert not model.test_time_flip and model.encoder_features == 4  # the paper preset, --features given
    assert model.decoder_layers == 3 and model.decoder_sees_inputs  # started from the 2-layer run's decoder (the default's: it reads the marks too)
    assert model.cross_synthesis and train.loss_weights.cross_synthesis == 0.5
    assert model.test_time_flip_ap and model.slice_smoothing == 0.7 and train.augment.flip_ap == 0.25
    assert train.augment.elastic == 0.5 and train.loss_weights.individual_mse == 0.75
    assert checkpoint.training_data["init_from"] == str(root / "run") and checkpoint.training_data["init_contrasts"] == ["t2", "t1"]
    assert main(common + ["--out", str(root / "default"), "--features", "4"]) == 0
    default = load_checkpoint(root / "default" / "model.pt")[0].model_config
    assert default.test_time_flip and default.test_time_flip_ap and default.slice_smoothing == 1.5  # the default preset
    capsys.readouterr()
    assert main(common + ["--out", str(root / "bad"), "--preset", "fancy"]) == 2
    assert "unknown preset 'fancy'" in capsys.readouterr().err
    assert main(common + ["--out", str(root / "bad"), "--variance-weight", "-1"]) == 2
    assert "--variance-weight" in capsys.readouterr().err
    assert main(common + ["--out", str(root / "bad"), "--features", "8", "--init-from", str(root / "run")]) == 2
    assert "encoder_features" in capsys.readouterr().err
    assert main(common + ["--out", str(root / "bad"), "--decoder-layers", "0"]) == 2
    assert "decoder_layers must be at least 1" in capsys.readouterr().err


def test_only_rank_zero_reports_warnings_under_torchrun(trained, monkeypatch, caplog, capsys) -> None:
    root, manifest = trained
    args = ["train", "--data", str(manifest), "--inputs", "t1,t2", "--target", "flair", "--epochs", "1", "--size", "16x16",
            "--features", "4", "--latent-channels", "4", "--batch-size", "4", "--device", "cpu", "--no-progress",
            "--cache-dir", str(root / "cache"), "--preset", "paper", "--init-from", str(root / "run"), "--no-ddp"]
    for rank in (1, 0):  # a second rank of a torchrun job (trained without DDP here), then rank 0 for contrast
        for name, value in {"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank)}.items():
            monkeypatch.setenv(name, value)
        caplog.clear()
        assert main(args + ["--out", str(root / f"rank{rank}")]) == 0
        assert ("holds 2 networks" in caplog.text) == (rank == 0)
    capsys.readouterr()
    monkeypatch.setenv("RANK", "1")
    assert main(args + ["--out", str(root / "rank0")]) == 2  # the run exists: errors still show on any rank
    assert "mrsynth: error:" in capsys.readouterr().err
    assert logging.getLogger("mrsynth").level == logging.NOTSET  # main leaves the log level as it found it


def test_ensemble_command_combines_and_refuses_overwrite(trained, capsys) -> None:
    root, _ = trained
    out = root / "ens.pt"
    assert main(["ensemble", "--model", str(root / "run"), "--model", str(root / "run" / "model.pt"), "--out", str(out)]) == 0
    assert len(load_checkpoint(out)[0].members) == 3  # each model is the default's ensemble of 2 networks: 4 in all
    capsys.readouterr()
    assert main(["ensemble", "--model", str(root / "run"), "--out", str(out)]) == 2
    assert "exists already" in capsys.readouterr().err
    assert main(["ensemble", "--model", str(root / "run"), "--model", str(root / "paper"), "--out", str(root / "e2.pt")]) == 2
    err = capsys.readouterr().err
    assert "differs from" in err and "decoder_layers: 3 there, 2 in" in err, err


def test_help_shows_the_defaults_written_in_option_help(capsys) -> None:
    # "[default: ...]" inside an option's help text must reach the user, not be read as markup
    assert main(["experiment", "subsets", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Folds by subject; as many as the test subjects or more is leave-one-out [default: 5]" in text
    assert "[default: the preset's" in text


def test_bare_command_prints_its_help_on_stdout(capsys) -> None:
    assert main([]) == 2
    captured = capsys.readouterr()
    assert "Usage" in captured.out and "experiment" in captured.out and captured.err == ""


def test_train_an_ensemble_of_seeds_and_keep_what_exists(trained, capsys) -> None:
    root, manifest = trained
    args = ["train", "--data", str(manifest), "--inputs", "t1,t2", "--target", "flair", "--epochs", "1", "--size", "16x16",
            "--features", "4", "--latent-channels", "4", "--batch-size", "4", "--device", "cpu", "--no-progress",
            "--cache-dir", str(root / "cache"), "--preset", "paper", "--ensemble", "2"]
    assert main(args + ["--out", str(root / "ens")]) == 0
    assert "ensemble of 2 models written to" in capsys.readouterr().out
    members = [load_checkpoint(root / "ens" / f"member{k}" / "model.pt")[0] for k in (1, 2)]
    assert [m.train_config.seed for m in members] == [0, 1]
    ensemble, _ = load_checkpoint(root / "ens" / "model.pt")
    assert len(ensemble.members) == 1 and len(ensemble.training_data["ensemble"]) == 2
    for key, value in members[1].state_dict.items():  # the second member is kept as it was trained
        assert torch.equal(ensemble.members[0][key], value)
    assert any(not torch.equal(value, members[0].state_dict[key]) for key, value in members[1].state_dict.items())
    kept = (root / "ens" / "model.pt").read_bytes()
    assert main(args + ["--out", str(root / "ens")]) == 2  # a trained ensemble is not overwritten
    assert "already holds a trained model" in capsys.readouterr().err
    assert (root / "ens" / "model.pt").read_bytes() == kept
    assert main(args[:-1] + ["1", "--out", str(root / "single")]) == 0  # one network: --ensemble 1
    single = (root / "single" / "model.pt").read_bytes()
    capsys.readouterr()
    assert main(args + ["--out", str(root / "single"), "--resume"]) == 2  # nor is a single model's run
    err = capsys.readouterr().err
    assert "single model's run" in err and "--ensemble 1" in err
    assert (root / "single" / "model.pt").read_bytes() == single and not (root / "single" / "member1").exists()
    assert main(args + ["--out", str(root / "fresh"), "--resume"]) == 2  # nothing to resume is an error, as for one model
    assert "nothing to continue" in capsys.readouterr().err and not (root / "fresh" / "member1").exists()
    first, average = ((root / "ens" / name).stat().st_mtime_ns for name in ("member1/model.pt", "model.pt"))
    shutil.rmtree(root / "ens" / "member2")  # as if interrupted before the second member
    assert main(args + ["--out", str(root / "ens"), "--resume"]) == 0
    assert (root / "ens" / "member1" / "model.pt").stat().st_mtime_ns == first  # the finished member is reused
    assert (root / "ens" / "member2" / "model.pt").is_file() and (root / "ens" / "model.pt").stat().st_mtime_ns != average
