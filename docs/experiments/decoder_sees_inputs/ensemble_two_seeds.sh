#!/bin/bash
# usage: ensemble_two_seeds.sh K S : two-seed ensemble of seed-0 fold K and seed-1 fold S (same test subject), with the decoder's input marks
# RUNS (default /tmp/sf) holds the fold runs dsi_foldK and dsi_s1_foldS; DATA (default /tmp/m26/prep48) the prepared slices.
# Writes RUNS/dsi_ens_foldK and refuses to touch one that exists. Stops 31-32 ran it with the code of b4a9351 (src/ unchanged since).
set -euo pipefail
K=$1; S=$2; RUNS=${RUNS:-/tmp/sf}; DATA=${DATA:-/tmp/m26/prep48}; model=model-t1+t1c+t2
cd "$RUNS"
out=dsi_ens_fold$K
if [ -e "$out" ]; then echo "$RUNS/$out exists; move it away first" >&2; exit 1; fi
mkdir -p $out/runs/fold$K
cp -r dsi_fold$K/runs/fold$K/$model $out/runs/fold$K/$model
cp -r dsi_s1_fold$S/runs/fold$S/$model $out/runs/fold$K/$model-seed1
OMP_NUM_THREADS=1 mrsynth experiment subsets --data "$DATA" --inputs t1,t1c,t2 --target flair --size 48x48 --epochs 30 --folds 8 --test-requires t1,t2 --device cpu --baselines none --no-per-subset --no-figures --no-progress --individual-mse-weight 1 --ensemble 2 --subset-fusion-weight 1 --decoder-sees-inputs --fold $K --resume --out $out > log_dsi_ens$K.txt 2>&1
