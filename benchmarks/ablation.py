"""Ablation table: experiment runs side by side, each as a ratio to a baseline measured on the same folds.

    python benchmarks/ablation.py --reference rf=RUN_DIR:rf LABEL=RUN_DIR[:METHOD] ... [--subset "t1 -> flair"]

Each RUN_DIR is the ``--out`` folder of one ``mrsynth experiment`` run; its per-subject CSV
(``single_input.csv`` or ``subsets.csv``) gives one MSE per subject and input subset; a quoted glob
(``'/tmp/rf_fold*:(C) rf'``) merges runs of separate folds (``--fold K``). For every
row the script prints the mean +- s.d. over subjects, the ratio of its mean to the reference's
mean (the issue's target is <= 0.75 against the forest), the mean of the per-subject ratios and
how many subjects it beats the reference on. All runs must share the folds (same --seed and
--folds); subjects missing from a run are reported, not silently dropped.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import sys
from pathlib import Path

import numpy as np

TABLES = ("single_input.csv", "subsets.csv", "misalignment.csv")


FOLD_ONLY_SETTINGS = {"out", "only_folds", "resume", "progress", "figures", "forest_jobs"}  # what runs of one split may differ in


def _same_file(a: object, b: object) -> bool:
    """Two recorded paths (e.g. ``--data`` given relative and absolute) naming one existing file."""
    return isinstance(a, str) and isinstance(b, str) and Path(a).exists() and Path(a).resolve() == Path(b).resolve()


def _differing(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Settings recorded in both ``a`` and ``b`` with other values (nested dicts key by key).

    A key recorded by one run only (an older mrsynth did not have that setting) is not compared.
    """
    out = []
    for key in sorted(a.keys() & b.keys()):
        if isinstance(a[key], dict) and isinstance(b[key], dict):
            out += _differing(a[key], b[key], f"{prefix}{key}.")
        elif a[key] != b[key] and not _same_file(a[key], b[key]):
            out.append(prefix + key)
    return out


def _check_same_settings(folders: list[str]) -> None:
    """Runs merged as folds of one split must have been run with the same settings (``settings.json``)."""
    first = None
    for folder in folders:
        path = Path(folder) / "settings.json"
        if not path.is_file():
            continue
        settings = {k: v for k, v in json.loads(path.read_text()).items() if k not in FOLD_ONLY_SETTINGS}
        if first is None:
            first = (folder, settings)
            continue
        differing = _differing(settings, first[1])
        if differing:
            raise SystemExit(f"{folder} and {first[0]} differ in {', '.join(differing)}: not folds of one experiment")


def read_mse(spec: str, subset: str | None) -> tuple[dict[tuple[str, str], float], str]:
    """``RUN_DIR[:METHOD]`` -> {(subject, subset): mse} of that method (default: the first model method).

    RUN_DIR may be a glob (``/tmp/runs/rf_fold*``): runs of different folds of one split
    (``mrsynth experiment ... --fold K``) are merged; a subject in two of them must agree.
    """
    folder, _, method = spec.rpartition(":") if ":" in spec else (spec, "", "")
    if glob.has_magic(folder):
        folders = sorted(f for f in glob.glob(folder) if Path(f).is_dir())
        if not folders:
            raise SystemExit(f"{folder}: no run folder matches")
        _check_same_settings(folders)
        merged: dict[tuple[str, str], float] = {}
        for one in folders:
            values, method = read_mse(f"{one}:{method}" if method else one, subset)
            clash = [key for key, value in values.items() if key in merged and abs(merged[key] - value) > 1e-6]
            if clash:
                raise SystemExit(f"{one}: {clash[0]} differs from an earlier run of {folder}; are these folds of one split?")
            merged.update(values)
        return merged, method
    path = next((Path(folder) / name for name in TABLES if (Path(folder) / name).is_file()), None)
    if path is None:
        raise SystemExit(f"{folder}: no per-subject results ({', '.join(TABLES)}); is it an experiment's --out folder?")
    with path.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    method = method or next((m for m in methods if "proposed" in m), methods[0])
    if method not in methods:
        raise SystemExit(f"{path}: no method {method!r}; it has {', '.join(methods)}")
    values = {(r["subject"], r["subset"]): float(r["mse"]) for r in rows
              if r["method"] == method and (subset is None or r["subset"] == subset)}
    return values, method


def _sd(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, help="LABEL=RUN_DIR:METHOD, e.g. rf=/tmp/abl/paper:rf")
    parser.add_argument("--subset", default=None, help="only this input subset (as the CSV names it)")
    parser.add_argument("rows", nargs="+", help="LABEL=RUN_DIR[:METHOD]")
    args = parser.parse_args(argv)
    ref_label, _, ref_spec = args.reference.partition("=")
    reference, _ = read_mse(ref_spec, args.subset)
    subsets = sorted({s for _, s in reference})
    print("| row | subset | MSE mean ± s.d. | × " + ref_label + " (means) | mean per-subject ratio | subjects better |")
    print("|---|---|---|---:|---:|---:|")
    for subset in subsets:
        ref = {subject: v for (subject, s), v in reference.items() if s == subset}
        ref_mean = np.mean(list(ref.values()))
        print(f"| {ref_label} | {subset} | {ref_mean:.4f} ± {_sd(np.array(list(ref.values()))):.4f} | 1.00 | 1.00 | |")
        for item in args.rows:
            label, _, spec = item.partition("=")
            values, method = read_mse(spec, subset)
            mine = {subject: v for (subject, s), v in values.items() if s == subset}
            common = sorted(set(mine) & set(ref))
            if not common:
                print(f"| {label} | {subset} | (no subjects in common with the reference) | | | |")
                continue
            ours = np.array([mine[s] for s in common])
            theirs = np.array([ref[s] for s in common])
            missing = f" ({len(ref) - len(common)} of the reference's subjects missing)" if len(common) < len(ref) else ""
            print(f"| {label} ({method}) | {subset} | {ours.mean():.4f} ± {_sd(ours):.4f}{missing} | {ours.mean() / theirs.mean():.2f} "
                  f"| {np.mean(ours / theirs):.2f} | {int((ours < theirs).sum())}/{len(common)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
