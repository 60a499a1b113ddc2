#!/bin/bash
# pilot: --stand-in-probability 0.25, seed 0, on BraTS-GLI-00000-000 (fold 6) and GliomaGAN-example (fold 3)
cd "${1:-.}"  # the folder the runs go to
for k in 6 3; do
  OMP_NUM_THREADS=1 mrsynth experiment subsets --data /tmp/m26/prep48 --inputs t1,t1c,t2 --target flair --size 48x48 --epochs 30 --folds 8 --test-requires t1,t2 --device cpu --baselines none --no-per-subset --no-figures --no-progress --ensemble 1 --seed 0 --fold $k --stand-in t1:t1c --stand-in-probability 0.25 --out p25_fold$k > log_p25_$k.txt 2>&1 &
done
wait
