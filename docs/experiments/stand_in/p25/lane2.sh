#!/bin/bash
# pilot, second pair (run after lane.sh): --stand-in-probability 0.25, seed 0, on TCGA-FG-6692 (fold 4) and BraTS-GLI-00001-000 (fold 7)
cd "${1:-.}"  # the folder the runs go to
for k in 4 7; do
  OMP_NUM_THREADS=1 mrsynth experiment subsets --data /tmp/m26/prep48 --inputs t1,t1c,t2 --target flair --size 48x48 --epochs 30 --folds 8 --test-requires t1,t2 --device cpu --baselines none --no-per-subset --no-figures --no-progress --ensemble 1 --seed 0 --fold $k --stand-in t1:t1c --stand-in-probability 0.25 --out p25_fold$k > log_p25_$k.txt 2>&1 &
done
wait
