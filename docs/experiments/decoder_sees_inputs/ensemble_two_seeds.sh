#!/bin/bash
# usage: ensemble_two_seeds.sh K S : two-seed ensemble of seed-0 fold K and seed-1 fold S (same test subject), with the decoder's input marks
K=$1; S=$2; cd /tmp/sf  # the folder that holds the fold runs dsi_foldK and dsi_s1_foldS
mkdir -p dsi_ens_fold$K/runs/fold$K
cp -r dsi_fold$K/runs/fold$K/model-t1+t1c+t2 dsi_ens_fold$K/runs/fold$K/
cp -r dsi_s1_fold$S/runs/fold$S/model-t1+t1c+t2 dsi_ens_fold$K/runs/fold$K/model-t1+t1c+t2-seed1
PYTHONPATH=/tmp/frozen/src OMP_NUM_THREADS=1 mrsynth experiment subsets --data /tmp/m26/prep48 --inputs t1,t1c,t2 --target flair --size 48x48 --epochs 30 --folds 8 --test-requires t1,t2 --device cpu --baselines none --no-per-subset --no-figures --no-progress --individual-mse-weight 1 --ensemble 2 --subset-fusion-weight 1 --decoder-sees-inputs --fold $K --resume --out dsi_ens_fold$K > log_dsi_ens$K.txt 2>&1
