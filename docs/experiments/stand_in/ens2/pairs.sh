#!/bin/bash
# usage (from the folder holding the seed-0 runs foldK and the seed-1 runs s1_foldS): pairs.sh 1:5 2:4 3:7 4:6 5:1 6:2 7:3 8:8
# Two-network ensembles of --stand-in t1:t1c: seed-0 fold K with the seed-1 fold S that tested the same subject, evaluated
# as --ensemble 2 (docs/experiments/ensemble_two_runs.sh checks seeds, subject and levers), into ens_foldK (stop 37).
here=$(dirname "$(readlink -f "$0")")
for pair in "$@"; do
  K=${pair%:*}; S=${pair#*:}
  bash "$here/../../ensemble_two_runs.sh" fold$K s1_fold$S ens_fold$K --stand-in t1:t1c && echo "ens_fold$K done"
done
