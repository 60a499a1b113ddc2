"""Ablation table: experiment runs side by side, each as a ratio to a baseline measured on the same folds.

    python benchmarks/ablation.py --reference rf=RUN_DIR:rf LABEL=RUN_DIR[:METHOD] ... [--subset "t1 -> flair"]

Each RUN_DIR is the ``--out`` folder of one ``mrsynth experiment`` run, or of ``mrsynth evaluate``
on held-out subjects; its per-subject CSV (``single_input.csv``, ``subsets.csv``, ``metrics.csv``)
gives one MSE per subject and input subset; a quoted glob
(``'/tmp/rf_fold*:(C) rf'``) merges runs of separate folds (``--fold K``). For every
row the script prints the mean +- s.d. over subjects, the ratio of its mean to the reference's
mean (the issue's target is <= 0.75 against the forest), the mean of the per-subject ratios and
how many subjects it beats the reference on; ``--wide`` prints one line per run instead, a column
per input subset (mean +- s.d. and the ratio of means, on the subjects it shares with the
reference). All runs must share the folds (same --seed and
--folds); subjects missing from a run are reported, not silently dropped. Runs merged as folds must
record the same settings; ``--same-data OLD=NEW`` lets two recorded ``--data`` paths count as one
(the same ``mrsynth prepare`` folder rebuilt at another path, after checking that it gives the
same results).
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

TABLES = ("single_input.csv", "subsets.csv", "misalignment.csv", "metrics.csv")  # the last: mrsynth evaluate


FOLD_ONLY_SETTINGS = {"out", "only_folds", "subsets", "resume", "progress", "figures", "forest_jobs"}  # what runs of one split may differ in (subsets: the rows each ran)


def _same_file(a: object, b: object) -> bool:
    """Two recorded paths (e.g. ``--data`` given relative and absolute) naming one file.

    Relative paths resolve from here when they exist; one recorded from another working folder
    (``../shared/...`` read from a docs folder) matches an absolute path ending in the same parts.
    """
    if not (isinstance(a, str) and isinstance(b, str)):
        return False
    first, second = Path(a), Path(b)
    if first.exists() and first.resolve() == second.resolve():
        return True
    if first.is_absolute() == second.is_absolute():
        return False
    relative, absolute = (first, second) if second.is_absolute() else (second, first)
    parts = [part for part in relative.parts if part not in (".", "..")]
    return len(parts) >= 2 and list(absolute.parts[-len(parts):]) == parts


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


def _check_same_settings(folders: list[str], same_data: dict[str, str]) -> None:
    """Runs merged as folds of one split must have been run with the same settings (``settings.json``).

    ``same_data`` maps recorded ``data`` paths to the one they count as.
    """
    first = None
    for folder in folders:
        path = Path(folder) / "settings.json"
        if not path.is_file():
            continue
        settings = {k: v for k, v in json.loads(path.read_text()).items() if k not in FOLD_ONLY_SETTINGS}
        recorded = settings.get("data")
        for old, new in same_data.items():
            if recorded == old or _same_file(recorded, old):
                settings["data"] = new
        if first is None:
            first = (folder, settings)
            continue
        differing = _differing(settings, first[1])
        if differing:
            hint = " (a data folder rebuilt elsewhere? --same-data OLD=NEW)" if "data" in differing else ""
            raise SystemExit(f"{folder} and {first[0]} differ in {', '.join(differing)}: "
                             f"not folds of one experiment{hint}")


def read_mse(spec: str, subset: str | None,
             same_data: dict[str, str] | None = None) -> tuple[dict[tuple[str, str], float], str]:
    """``RUN_DIR[:METHOD]`` -> {(subject, subset): mse} of that method (default: the first model method).

    RUN_DIR may be a glob (``/tmp/runs/rf_fold*``), or several joined by commas
    (``a/fold[13],b/fold[24]``): runs of different folds of one split
    (``mrsynth experiment ... --fold K``) are merged; a subject in two of them must agree.
    ``same_data`` maps a recorded ``--data`` path to the one it counts as when runs are merged.
    """
    folder, _, method = spec.rpartition(":") if ":" in spec else (spec, "", "")
    if glob.has_magic(folder) or "," in folder:  # a glob, or several joined by commas
        folders = sorted({f for pattern in folder.split(",") for f in glob.glob(pattern) if Path(f).is_dir()})
        if not folders:
            raise SystemExit(f"{folder}: no run folder matches")
        _check_same_settings(folders, same_data or {})
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
        raise SystemExit(f"{folder}: no per-subject results ({', '.join(TABLES)}); is it the --out folder of an experiment or of mrsynth evaluate?")
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


def _mean_sd(values: dict[str, float]) -> str:
    """``mean ± s.d.`` of a subject -> MSE mapping, as the tables print it."""
    array = np.array(list(values.values()))
    return f"{array.mean():.4f} ± {_sd(array):.4f}"


class Comparison(NamedTuple):
    """One run against the reference on one input subset, over the subjects both have."""

    mean: float
    sd: float
    ratio_of_means: float
    mean_ratio: float
    better: int
    common: int
    missing: int  # reference subjects this run lacks


def compare(mine: dict[str, float], ref: dict[str, float]) -> Comparison | None:
    """``mine`` against ``ref`` (both subject -> MSE); None when they share no subject."""
    common = sorted(set(mine) & set(ref))
    if not common:
        return None
    ours, theirs = np.array([mine[s] for s in common]), np.array([ref[s] for s in common])
    return Comparison(float(ours.mean()), _sd(ours), float(ours.mean() / theirs.mean()), float(np.mean(ours / theirs)),
                      int((ours < theirs).sum()), len(common), len(ref) - len(common))


def _per_subset(values: dict[tuple[str, str], float], subset: str) -> dict[str, float]:
    return {subject: v for (subject, s), v in values.items() if s == subset}


def long_table(ref_label: str, reference: dict, rows: list[tuple[str, str, dict]], subsets: list[str]) -> list[str]:
    """One line per run and subset: mean +- s.d., ratio of means, mean per-subject ratio, subjects better."""
    lines = ["| row | subset | MSE mean ± s.d. | × " + ref_label + " (means) | mean per-subject ratio | subjects better |",
             "|---|---|---|---:|---:|---:|"]
    for subset in subsets:
        ref = _per_subset(reference, subset)
        lines.append(f"| {ref_label} | {subset} | {_mean_sd(ref)} | 1.00 | 1.00 | |")
        for label, method, values in rows:
            c = compare(_per_subset(values, subset), ref)
            if c is None:
                lines.append(f"| {label} | {subset} | (no subjects in common with the reference) | | | |")
                continue
            missing = f" ({c.missing} of the reference's subjects missing)" if c.missing else ""
            lines.append(f"| {label} ({method}) | {subset} | {c.mean:.4f} ± {c.sd:.4f}{missing} | {c.ratio_of_means:.2f} "
                         f"| {c.mean_ratio:.2f} | {c.better}/{c.common} |")
    return lines


def wide_table(ref_label: str, reference: dict, rows: list[tuple[str, str, dict]], subsets: list[str]) -> list[str]:
    """One line per run: per subset, mean +- s.d. and the ratio of means to the reference on the same subjects."""
    lines = ["| row | " + " | ".join(subsets) + " | subsets better |", "|---|" + "---|" * len(subsets) + "---:|"]
    refs = {subset: _per_subset(reference, subset) for subset in subsets}
    lines.append(f"| {ref_label} | " + " | ".join(_mean_sd(refs[subset]) for subset in subsets) + " | |")
    for label, _, values in rows:
        cells, better, compared = [], 0, 0
        for subset in subsets:
            c = compare(_per_subset(values, subset), refs[subset])
            if c is None:
                cells.append("")
                continue
            compared += 1
            better += c.ratio_of_means < 1
            cells.append(f"{c.mean:.4f} ± {c.sd:.4f} (×{c.ratio_of_means:.2f}, n={c.common})")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {better}/{compared} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, help="LABEL=RUN_DIR:METHOD, e.g. rf=/tmp/abl/paper:rf")
    parser.add_argument("--subset", default=None, help="only this input subset (as the CSV names it)")
    parser.add_argument("--wide", action="store_true",
                        help="one line per run, one column per subset (mean ± s.d., ×reference on the same subjects)")
    parser.add_argument("--common", action="store_true",
                        help="keep only the reference's subjects that every row has (e.g. rows run on some folds only)")
    parser.add_argument("--same-data", action="append", default=[], metavar="OLD=NEW",
                        help="runs that recorded --data OLD count as run on NEW (repeatable)")
    parser.add_argument("rows", nargs="+", help="LABEL=RUN_DIR[:METHOD]")
    args = parser.parse_args(argv)
    same_data = {}
    for pair in args.same_data:
        old, sep, new = pair.partition("=")
        if not (sep and old and new):
            parser.error(f"--same-data {pair!r}: expected OLD=NEW")
        same_data[old] = new
    ref_label, _, ref_spec = args.reference.partition("=")
    reference, _ = read_mse(ref_spec, args.subset, same_data)
    subsets = sorted({s for _, s in reference})
    rows = []
    for item in args.rows:
        label, _, spec = item.partition("=")
        values, method = read_mse(spec, args.subset, same_data)
        rows.append((label, method, values))
    if args.common:
        reference = {key: v for key, v in reference.items() if all(key in values for _, _, values in rows)}
        subsets = [s for s in subsets if any(key[1] == s for key in reference)]
        if not subsets:
            raise SystemExit("--common: no subject of the reference is in every row")
    print("\n".join((wide_table if args.wide else long_table)(ref_label, reference, rows, subsets)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
