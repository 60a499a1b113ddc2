#!/usr/bin/env bash
# Every GPU check of the speed work in one go, for a short-lived GPU machine:
#   the CUDA tests, benchmarks/speed.py (full, then with torch.compile), and a real-data
#   training run under torchrun with the NCCL backend (world of 1: DDP on one GPU).
#
#   bash benchmarks/gpu_checks.sh OUT_DIR [DATA]      # DATA: a dataset with t1, t1c, t2, flair (e.g. brats4)
#
# GPU_TESTS overrides the test files. Each step has its own time limit and the script goes on after a failure; everything is
# logged to OUT_DIR/log.txt, the benchmark results to OUT_DIR/speed*.md.
set -u
out=${1:?usage: gpu_checks.sh OUT_DIR [DATA]}
data=${2:-}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
log="$out/log.txt"

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit} s, started at ${SECONDS} s): $*" | tee -a "$log"
    timeout "$limit" "$@" >>"$log" 2>&1
    echo "== $name: exit $? at ${SECONDS} s" | tee -a "$log"
}

{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())"
} >>"$log" 2>&1

# shellcheck disable=SC2086  # GPU_TESTS: test files, space-separated
step tests 120 python -m pytest -q -p no:cacheprovider ${GPU_TESTS:-tests/test_cuda.py tests/test_speed_paths.py tests/test_distributed.py}
step speed 200 python benchmarks/speed.py --device cuda --out "$out/speed.md"
if [ -n "$data" ]; then
    rm -rf /tmp/plain-run /tmp/ddp-run  # fresh runs on a machine that ran this before
    step train 100 python -m mrsynth train --device cuda --data "$data" --inputs t1,t1c,t2 --target flair \
        --size 128x128 --preset paper --epochs 6 --out /tmp/plain-run --cache-dir /tmp/ddp-cache --no-progress
    cp /tmp/plain-run/history.csv "$out/train-history.csv" 2>>"$log"
    step ddp-train 100 python -m torch.distributed.run --nproc-per-node 1 -m mrsynth train --ddp --device cuda \
        --data "$data" --inputs t1,t1c,t2 --target flair --size 128x128 --preset paper --epochs 6 \
        --out /tmp/ddp-run --cache-dir /tmp/ddp-cache --no-progress
    cp /tmp/ddp-run/history.csv "$out/ddp-history.csv" 2>>"$log"
fi
step speed-compile 150 python benchmarks/speed.py --device cuda --compile --no-volume --out "$out/speed-compile.md"
step speed-batch128 60 python benchmarks/speed.py --device cuda --batch 128 --no-volume --out "$out/speed-batch128.md"
echo "total ${SECONDS} s" | tee -a "$log"
