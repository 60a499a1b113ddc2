"""benchmarks/ablation.py: rows against a reference on the same subjects, runs of separate folds merged."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ablation.py"


def _ablation():
    spec = importlib.util.spec_from_file_location("ablation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(folder: Path, rows: list[tuple[str, str, float]], table: str = "subsets.csv") -> Path:
    folder.mkdir(parents=True)
    with (folder / table).open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["subject", "method", "subset", "mse"])
        writer.writerows([subject, method, "t1", mse] for subject, method, mse in rows)
    return folder


def test_fold_runs_merge_and_ratios_are_per_common_subject(tmp_path, capsys) -> None:
    _run(tmp_path / "rf_fold1", [("a", "(C) rf", 0.10), ("b", "(C) rf", 0.20)])
    _run(tmp_path / "rf_fold2", [("c", "(C) rf", 0.30)])
    _run(tmp_path / "model", [("a", "(B) proposed", 0.05), ("b", "(B) proposed", 0.10), ("c", "(B) proposed", 0.60)])
    _run(tmp_path / "half", [("a", "(B) proposed", 0.05)])
    _run(tmp_path / "evaluated", [("c", "proposed", 0.15)], table="metrics.csv")  # mrsynth evaluate's table
    ablation = _ablation()
    assert ablation.main(["--reference", f"rf={tmp_path}/rf_fold*:(C) rf", f"B={tmp_path}/model",
                          f"half={tmp_path}/half"]) == 0
    lines = capsys.readouterr().out.splitlines()
    reference = next(line for line in lines if line.startswith("| rf |"))
    assert "0.2000" in reference  # mean of the three merged subjects
    model = next(line for line in lines if line.startswith("| B "))
    assert "| 1.25 |" in model and "2/3" in model  # 0.25 / 0.20; better on a and b
    assert "2 of the reference's subjects missing" in next(line for line in lines if line.startswith("| half "))
    assert ablation.main(["--reference", f"rf={tmp_path}/rf_fold*:(C) rf", f"evaluated={tmp_path}/evaluated"]) == 0
    evaluated = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| evaluated "))
    assert "| 0.50 |" in evaluated  # 0.15 / 0.30 on subject c
    assert ablation.main(["--reference", f"rf={tmp_path}/rf_fold1,{tmp_path}/rf_fold2:(C) rf", f"B={tmp_path}/model"]) == 0
    model = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| B "))
    assert "| 1.25 |" in model  # the comma-joined folders merged as the glob merged them
    (tmp_path / "rf_fold1" / "settings.json").write_text('{"epochs": 15, "out": "rf_fold1", "only_folds": [1]}')
    (tmp_path / "rf_fold2" / "settings.json").write_text('{"epochs": 30, "out": "rf_fold2", "only_folds": [2]}')
    with pytest.raises(SystemExit, match="differ in epochs"):
        ablation.main(["--reference", f"rf={tmp_path}/rf_fold*:(C) rf", f"B={tmp_path}/model"])
    (tmp_path / "rf_fold2" / "settings.json").write_text('{"epochs": 15, "levers": {"augment": true, "new": 1}}')
    (tmp_path / "rf_fold1" / "settings.json").write_text('{"epochs": 15, "levers": {"augment": false}}')
    with pytest.raises(SystemExit, match="differ in levers.augment"):
        ablation.main(["--reference", f"rf={tmp_path}/rf_fold*:(C) rf", f"B={tmp_path}/model"])
    (tmp_path / "rf_fold1" / "settings.json").write_text('{"epochs": 15, "levers": {"augment": true}, "out": "x", "forest_jobs": 2}')
    (tmp_path / "rf_fold2" / "settings.json").write_text('{"epochs": 15, "levers": {"augment": true}, "forest_jobs": 1}')
    assert ablation.main(["--reference", f"rf={tmp_path}/rf_fold*:(C) rf", f"B={tmp_path}/model"]) == 0  # cores do not matter
    (tmp_path / "rf_fold1" / "settings.json").write_text('{"epochs": 15, "levers": {"augment": true}, "subsets": [["t1"]]}')
    assert ablation.main(["--reference", f"rf={tmp_path}/rf_fold*:(C) rf", f"B={tmp_path}/model"]) == 0  # nor the rows each ran
    _run(tmp_path / "rf_fold3", [("c", "(C) rf", 0.99)])
    with pytest.raises(SystemExit, match="differs from an earlier run"):
        ablation.main(["--reference", f"rf={tmp_path}/rf_fold*:(C) rf", f"B={tmp_path}/model"])


def test_wide_table_has_a_line_per_run_and_common_restricts_the_reference(tmp_path, capsys) -> None:
    _run(tmp_path / "rf", [("a", "(C) rf", 0.10), ("b", "(C) rf", 0.30)])
    _run(tmp_path / "half", [("a", "(B) proposed", 0.05)])
    ablation = _ablation()
    assert ablation.main(["--wide", "--reference", f"rf={tmp_path}/rf:(C) rf", f"half={tmp_path}/half"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| row | t1 | subsets better |"
    assert lines[2].startswith("| rf | 0.2000 ± ")  # both subjects
    assert lines[3] == "| half | 0.0500 ± 0.0000 (×0.50, n=1) | 1/1 |"  # against a's 0.10 only
    assert ablation.main(["--wide", "--common", "--reference", f"rf={tmp_path}/rf:(C) rf", f"half={tmp_path}/half"]) == 0
    assert capsys.readouterr().out.splitlines()[2].startswith("| rf | 0.1000 ± 0.0000 |")
    with pytest.raises(SystemExit, match="no subject of the reference is in every row"):
        ablation.main(["--common", "--reference", f"rf={tmp_path}/rf:(C) rf", f"half={tmp_path}/half",
                       f"other={_run(tmp_path / 'other', [('z', '(B) proposed', 0.1)])}"])


def test_a_relative_data_path_recorded_elsewhere_matches_the_absolute_one(tmp_path) -> None:
    same = _ablation()._same_file
    assert same("../shared/data/manifest.csv", "/work/shared/data/manifest.csv")
    assert same("/work/shared/data/manifest.csv", "shared/data/manifest.csv")
    assert not same("../other/data/manifest.csv", "/work/shared/data/manifest.csv")
    assert not same("manifest.csv", "/work/shared/data/manifest.csv")  # one part is too little to tell
    assert not same("/a/data/m.csv", "/b/data/m.csv")
    (tmp_path / "m.csv").write_text("")
    assert same(str(tmp_path / "m.csv"), str(tmp_path / "." / "m.csv"))


def test_same_data_lets_a_rebuilt_data_folder_count_as_the_recorded_one(tmp_path, capsys) -> None:
    for fold, data, mse in ((1, "/tmp/old/prep", 0.2), (2, "/tmp/new/prep", 0.4)):
        _run(tmp_path / f"A_fold{fold}", [(f"s{fold}", "(A) proposed", mse)])
        (tmp_path / f"A_fold{fold}" / "settings.json").write_text(f'{{"data": "{data}", "epochs": 30}}')
    _run(tmp_path / "rf", [("s1", "(C) rf", 0.4), ("s2", "(C) rf", 0.4)])
    ablation = _ablation()
    rows = ["--reference", f"rf={tmp_path}/rf:(C) rf", f"A={tmp_path}/A_fold*"]
    with pytest.raises(SystemExit, match=r"differ in data: .*--same-data OLD=NEW"):
        ablation.main(rows)
    for mapping in ("/tmp/new/prep=/tmp/old/prep", "../new/prep=/tmp/old/prep"):  # a relative OLD names it too
        assert ablation.main(["--same-data", mapping, *rows]) == 0
        assert "| A ((A) proposed) | t1 | 0.3000 ± 0.1414 | 0.75 |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="differ in data"):  # the mapping names one path as another, not any path
        ablation.main(["--same-data", "/tmp/other=/tmp/old/prep", *rows])
