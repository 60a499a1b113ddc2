"""Per network and per pair of seeds: the default of stops 24-33 (seeds 0-3) against the subset-fusion
term with the marks, the default since stop 34 (seeds 0-3), leave-one-out on the manifest, T1/T1c/T2 -> FLAIR.

Run from the repository root: ``python docs/experiments/seeds_stop33/per_network.py``. Each ratio is
of row means over the 8 subjects (7 with T1c), the per-network ones of the mean over seeds.
"""

from __future__ import annotations

import glob

import pandas as pd

B = "(B) proposed, one model, missing inputs"
D = "docs/experiments/"
RUNS = {  # column: (folder pattern, method)
    "forest": ("manifest_loo/rf_[ab]", "(C) rf"),
    "default s0": ("individual_mse_stop22/loo/fold*", B), "default s1": ("seeds_stop23/imse1_seed1/fold*", B),
    "default s2": ("seeds_stop33/seed2/fold*", B), "default s3": ("seeds_stop33/seed3/fold*", B),
    "default s0+1": ("seeds_stop23/imse1_2seeds/fold*", B), "default s2+3": ("seeds_stop33/ens23/fold*", B),
    "marks s0": ("decoder_sees_inputs/fold*", B), "marks s1": ("decoder_sees_inputs/seed1/fold*", B),
    "marks s0+1": ("decoder_sees_inputs/ens2/fold*", B),
    "marks s2": ("default_stop35/seed2/fold*", B), "marks s3": ("default_stop35/seed3/fold*", B),
    "marks s2+3": ("default_stop35/ens23/fold*", B),
}


def row_errors(pattern: str, method: str) -> pd.Series:
    """MSE per (subject, subset) of one method in the runs matching ``pattern``."""
    frames = [pd.read_csv(path) for path in glob.glob(D + pattern + "/subsets.csv")]
    table = pd.concat(frames)
    return table[table.method == method].set_index(["subject", "subset"]).mse


def main() -> None:
    errors = pd.DataFrame({name: row_errors(*run) for name, run in RUNS.items()}).dropna()
    print("subjects:", errors.index.get_level_values("subject").nunique())
    means = errors.groupby(level="subset").mean()
    default_nets = means[[f"default s{k}" for k in range(4)]].mean(axis=1)
    marks_nets = means[[f"marks s{k}" for k in range(4)]].mean(axis=1)
    ratios = pd.DataFrame({
        "default per network / forest": default_nets / means["forest"],
        "marks per network / forest": marks_nets / means["forest"],
        "marks / default, per network": marks_nets / default_nets,
        "default s0+1 / forest": means["default s0+1"] / means["forest"],
        "default s2+3 / forest": means["default s2+3"] / means["forest"],
        "marks s0+1 / forest": means["marks s0+1"] / means["forest"],
        "marks s2+3 / forest": means["marks s2+3"] / means["forest"],
        "marks s2+3 / marks s0+1": means["marks s2+3"] / means["marks s0+1"],
        "marks, mean of its pairs / forest": means[["marks s0+1", "marks s2+3"]].mean(axis=1) / means["forest"],
        "marks pairs / default pairs": means[["marks s0+1", "marks s2+3"]].mean(axis=1)
        / means[["default s0+1", "default s2+3"]].mean(axis=1),
    })
    with pd.option_context("display.width", 250):
        print(ratios.round(3).T.to_string())


if __name__ == "__main__":
    main()
