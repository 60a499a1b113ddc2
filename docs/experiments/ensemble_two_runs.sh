#!/bin/bash
# usage: ensemble_two_runs.sh FIRST SECOND OUT [FLAGS...]
# Two-seed ensemble of two leave-one-out fold runs of `mrsynth experiment subsets` (each with --fold and
# --ensemble 1) that tested the same subject with seeds s and s + 1: copies both networks into OUT as members
# 0 and 1 of FIRST's fold and evaluates them with --ensemble 2 --resume, which is what `--ensemble 2 --seed s`
# trains (member k trains with seed s + k from the same warm start). FLAGS: the configuration flags both runs
# were trained with (e.g. --subset-fusion-weight 1). DATA (default /tmp/m26/prep48): the prepared slices.
# Checks the seeds, the tested subject and that both runs have the same levers first; afterwards checks that
# the evaluation used those levers (a preset default that changed since the runs needs FLAGS that restore it);
# an evaluation without results already fails in mrsynth experiment, and the log's tail is shown. Never writes over an existing OUT.
# The fixed flags below (T1/T1c/T2 -> FLAIR, 48x48, 8 folds, --test-requires t1,t2) are those of the manifest's
# leave-one-out runs in docs/experiments; runs with other ones need them changed here.
set -euo pipefail
first=$1; second=$2; out=$3; shift 3
DATA=${DATA:-/tmp/m26/prep48}; model=model-t1+t1c+t2
if [ -e "$out" ]; then echo "$out exists; move it away first" >&2; exit 1; fi
read -r fold seed second_fold < <(python - "$first" "$second" <<'PY'
import csv, json, sys
runs = []
for run in sys.argv[1:]:
    settings = json.load(open(f"{run}/settings.json"))
    subjects = {row["subject"] for row in csv.DictReader(open(f"{run}/subsets.csv"))}
    if settings["ensemble"] not in (None, 1) or len(settings["only_folds"] or []) != 1 or len(subjects) != 1:
        sys.exit(f"{run}: not a one-network run of one leave-one-out fold")
    runs.append((settings["only_folds"][0], settings["seed"], subjects, {**settings["levers"], "ensemble": None}))
(fold, seed, tested, levers), (second_fold, second_seed, second_tested, second_levers) = runs
if levers != second_levers:
    differ = sorted(k for k in levers if levers[k] != second_levers.get(k))
    sys.exit(f"{sys.argv[1]} and {sys.argv[2]} were trained with different levers: {', '.join(differ)}")
if second_seed != seed + 1 or tested != second_tested:
    sys.exit(f"{sys.argv[2]} must test the same subject as {sys.argv[1]} ({tested}) with seed {seed + 1}; "
             f"it tests {second_tested} with seed {second_seed}")
print(fold, seed, second_fold)
PY
)
mkdir -p "$out/runs/fold$fold"
cp -r "$first/runs/fold$fold/$model" "$out/runs/fold$fold/$model"
cp -r "$second/runs/fold$second_fold/$model" "$out/runs/fold$fold/$model-seed1"
OMP_NUM_THREADS=1 mrsynth experiment subsets --data "$DATA" --inputs t1,t1c,t2 --target flair --size 48x48 --epochs 30 --folds 8 --test-requires t1,t2 --device cpu --baselines none --no-per-subset --no-figures --no-progress --ensemble 2 --seed "$seed" --fold "$fold" --resume "$@" --out "$out" > "$out/ensemble.log" 2>&1 \
  || { tail -n 3 "$out/ensemble.log" >&2; exit 1; }
python - "$first" "$out" <<'PY'
import json, sys
run, out = sys.argv[1:]
trained, evaluated = (json.load(open(f"{folder}/settings.json"))["levers"] for folder in (run, out))
differ = sorted(k for k in trained if k != "ensemble" and trained[k] != evaluated.get(k))
if differ:
    sys.exit(f"{out} was evaluated with other levers than {run} was trained with ({', '.join(f'{k}: {evaluated.get(k)} against {trained[k]}' for k in differ)}); "
             "pass the flags that set them, or move the ensemble's folder away and rerun")
PY
