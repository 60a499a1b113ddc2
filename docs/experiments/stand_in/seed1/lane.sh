#!/bin/bash
# Seed 1 of --stand-in t1:t1c on the six leave-one-out subjects not run in stop 36 (seed 1's folds 3-8), two
# processes of one thread at once, in the current folder (stop 37). Folds 1 and 2 ran the same way in stop 36.
lane() { for k in "$@"; do
  OMP_NUM_THREADS=1 mrsynth experiment subsets --data /tmp/m26/prep48 --inputs t1,t1c,t2 --target flair --size 48x48 --epochs 30 --folds 8 --test-requires t1,t2 --device cpu --baselines none --no-per-subset --no-figures --no-progress --ensemble 1 --seed 1 --fold $k --stand-in t1:t1c --out s1_fold$k > log_s1_$k.txt 2>&1
done; }
lane 3 5 7 &
lane 4 6 8 &
wait
