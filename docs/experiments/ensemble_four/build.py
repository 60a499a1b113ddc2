"""How this folder's runs were assembled (stop 36), as run: no network was trained for it.

For each leave-one-out subject, the four one-network runs of the default since stop 34 that tested
it (seed 0: ../decoder_sees_inputs/fold*, seed 1: ../decoder_sees_inputs/seed1/fold*, seeds 2 and 3:
../default_stop35/seed2|seed3/fold*; their models lived under /tmp/sf on the machine that trained
them and are not in the repository) are copied into seed 0's fold as members 0-3, the folders that
`--ensemble 4 --seed 0` trains (member k: `model-t1+t1c+t2-seedk`, seed k). The seeds put a subject
in different fold numbers, so the runs are matched by the subject they tested. Then, per fold K:
OMP_NUM_THREADS=1 mrsynth experiment subsets --data /tmp/m26/prep48 --inputs t1,t1c,t2 --target flair \
  --size 48x48 --epochs 30 --folds 8 --test-requires t1,t2 --device cpu --baselines none --no-per-subset \
  --no-figures --no-progress --ensemble 4 --seed 0 --fold K --resume --out ens4_foldK
which only evaluates (every member is already trained).
"""
import csv
import json
import shutil
from pathlib import Path

sf = Path("/tmp/sf")
model = "model-t1+t1c+t2"
runs = {s: [sf / f"{p}{k}" for k in range(1, 9)] for s, p in [(0, "dsi_fold"), (1, "dsi_s1_fold"), (2, "m_s2_fold"), (3, "m_s3_fold")]}


def subject(run: Path) -> str:
    return next(csv.DictReader(open(run / "subsets.csv")))["subject"]


def fold(run: Path) -> int:
    return json.load(open(run / "settings.json"))["only_folds"][0]


by_subject = {s: {subject(r): r for r in rs} for s, rs in runs.items()}
for run in runs[0]:
    tested, k = subject(run), fold(run)
    out = Path(f"/tmp/e4/ens4_fold{k}/runs/fold{k}")
    out.mkdir(parents=True)
    for s in range(4):
        source = by_subject[s][tested]
        shutil.copytree(source / "runs" / f"fold{fold(source)}" / model, out / (model if s == 0 else f"{model}-seed{s}"))
    print(k, tested)
