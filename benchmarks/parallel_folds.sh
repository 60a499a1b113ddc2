#!/usr/bin/env bash
# The folds of one `mrsynth experiment` as parallel processes, e.g. on one GPU whose small-slice
# training leaves it mostly idle with a single process, or on a many-core machine.
#
#   bash benchmarks/parallel_folds.sh OUT_DIR LIMIT_S "FOLDS" EXPERIMENT ARGS...
#   bash benchmarks/parallel_folds.sh /tmp/loo 450 "1 2 3 4" subsets --data prepared/ --folds 8 --device cuda ...
#
# Fold K runs `python -m mrsynth experiment ARGS --fold K --out OUT_DIR/foldK --no-progress` in the
# background with one CPU thread; every fold still running after LIMIT_S seconds is stopped. Each
# fold logs to OUT_DIR/foldK.log; OUT_DIR/folds.txt gets one line per fold: exit code and seconds.
# Merge the folds with benchmarks/ablation.py ("NAME=OUT_DIR/fold*:METHOD").
set -u
out=${1:?usage: parallel_folds.sh OUT_DIR LIMIT_S "FOLDS" EXPERIMENT ARGS...}
limit=${2:?LIMIT_S missing}
folds=${3:?FOLDS missing}
shift 3
mkdir -p "$out"
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
for k in $folds; do
    (
        start=$SECONDS
        timeout "$limit" python -m mrsynth experiment "$@" --fold "$k" --out "$out/fold$k" --no-progress \
            >"$out/fold$k.log" 2>&1
        echo "fold $k: exit $? after $((SECONDS - start)) s" >>"$out/folds.txt"
    ) &
done
wait
cat "$out/folds.txt"
