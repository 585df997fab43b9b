#!/usr/bin/env bash
# The GPU checks of issue #7 as one run on a lent device (H100/H200), sized to ~8 minutes (one 10-minute
# call; a machine's start takes 1-2 more of a 15-minute lease). Everything it prints and writes lands in $OUT (or ./device_out).
#   device tool:  run  command="bash bench/device_check.sh"  timeout_s=600
# Order: what must not be lost first (correctness on the GPU), then the speed figures.
set -u
OUT=${OUT:-device_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD JUKEBOX_REFERENCE_DIR=${JUKEBOX_REFERENCE_DIR:-shared/fixtures/jukebox_reference}
log() { echo "== $(date -u +%H:%M:%S) $*"; }

log "device"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv | tee "$OUT/nvidia-smi.csv"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"

log "CUDA tests: graph replay = eager tokens, no host sync per step (tests/jukebox_model/test_cuda_graph.py)"
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/jukebox_model/test_cuda_graph.py 2>&1 | tail -15 | tee "$OUT/cuda_tests.txt"

log "bench/gpu_sampling.py (F, G1-G5, G7), bf16, official widths"
timeout 330 python3 bench/gpu_sampling.py --device cuda --dtype bfloat16 --batches 1,3,16 --repeats 3 \
    --e2e-seconds 8 --markdown --json "$OUT/gpu_sampling.json" 2>&1 | tee "$OUT/gpu_sampling.txt" | tail -80

log "C: the step fused by torch.compile (each row prints as soon as it is measured; the timeout may cut the last)"
timeout 150 python3 bench/gpu_sampling.py --device cuda --dtype bfloat16 --workloads C --batches 1 --repeats 3 \
    --json "$OUT/compiled.json" 2>&1 | tee "$OUT/compiled.txt" | tail -20

log "bench/vqvae.py (G6)"
timeout 60 python3 bench/vqvae.py --device cuda --dtype bf16 --seconds 60 --batch 16 --markdown 2>&1 | tail -12 | tee "$OUT/vqvae.txt"
log "done"
