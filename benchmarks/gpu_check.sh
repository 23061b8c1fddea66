#!/usr/bin/env bash
# Screening throughput on CUDA: the same benchmark as bench_screen.py, on the GPU.
# Runs our pipeline (scan resident on the GPU, channels-last) in bf16 and fp16 autocast, eager and
# torch.compile(mode="reduce-overhead") = CUDA graphs, and prints patches/s for each.
# Usage (repo root):  bash benchmarks/gpu_check.sh [extra bench_screen.py args]
# Env: PYTHON (default: /work/venv/bin/python if present, else python3), BATCH (default 512),
#      SCANS (default 4), WIDTH (default 2000).
set -u
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x /work/venv/bin/python ]; then PY=/work/venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "gpu_check: no CUDA device visible to $PY (torch.cuda.is_available() is False); nothing to run" >&2
  exit 2
fi
"$PY" -c 'import torch; p = torch.cuda.get_device_properties(0); print(f"GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}")'
BATCH="${BATCH:-512}"; SCANS="${SCANS:-4}"; WIDTH="${WIDTH:-2000}"
COMMON=(--device cuda --scans "$SCANS" --width "$WIDTH" --batch "$BATCH" --rank-patches 256)
status=0
for prec in bf16 fp16; do
  echo; echo "=== $prec, eager and compiled (CUDA graphs) ==="
  "$PY" benchmarks/bench_screen.py "${COMMON[@]}" --precision "$prec" "$@" || status=1
done
echo; echo "=== fp32 eager (baseline) ==="
"$PY" benchmarks/bench_screen.py "${COMMON[@]}" --precision fp32 --no-compile --no-eager "$@" || status=1
exit $status
