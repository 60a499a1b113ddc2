#!/bin/bash
# usage: lane.sh FOLD... : the leave-one-out fold runs of this folder, one after the other (stop 36; two lanes
# at once: `lane.sh 5 6 1 3` and `lane.sh 8 7 4 2`). The default preset since stop 34 plus --stand-in t1:t1c, one
# network (seed 0) per fold. The code was stop 36's working tree (10f194e plus the stand-in) copied to /tmp/si_src
# and put first on PYTHONPATH, so that editing the checkout during the runs could not change them; it differs
# from the committed code only in a variable's name and in the multi-GPU branch, which these runs do not take.
cd /tmp/si
for k in "$@"; do
  PYTHONPATH=/tmp/si_src OMP_NUM_THREADS=1 mrsynth experiment subsets --data /tmp/m26/prep48 --inputs t1,t1c,t2 --target flair --size 48x48 --epochs 30 --folds 8 --test-requires t1,t2 --device cpu --baselines none --no-per-subset --no-figures --no-progress --ensemble 1 --seed 0 --fold $k --stand-in t1:t1c --out fold$k > log$k.txt 2>&1 || echo "fold $k failed" >> failed.txt
done
