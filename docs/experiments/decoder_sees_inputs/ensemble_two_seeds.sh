#!/bin/bash
# usage: ensemble_two_seeds.sh K S : two-seed ensemble of seed-0 fold K and seed-1 fold S (same test subject), with the decoder's input marks
# RUNS (default /tmp/sf) holds the fold runs dsi_foldK and dsi_s1_foldS; DATA (default /tmp/m26/prep48) the prepared slices.
# Writes RUNS/dsi_ens_foldK and refuses to touch one that exists. Stops 31-32 ran it with the code of b4a9351 (src/ unchanged since).
set -euo pipefail
K=$1; S=$2; RUNS=${RUNS:-/tmp/sf}
cd "$RUNS"
exec bash "$(cd "$(dirname "$0")" && pwd)/../ensemble_two_runs.sh" dsi_fold$K dsi_s1_fold$S dsi_ens_fold$K \
    --individual-mse-weight 1 --subset-fusion-weight 1 --decoder-sees-inputs
