#!/bin/sh
# One short check of tracec on an NVIDIA GPU, ready to run on a machine that has one:
#
#   sh benchmarks/gpu_check.sh [SM_ARCH]        (default sm_90: H100, H200)
#
# Needs the repository, its venv (made here with `make venv` when it is missing) and a
# GPU with the NVIDIA driver (libcuda.so); the CUDA toolkit is not needed: IREE's CUDA
# driver in the iree-base-runtime wheel loads libcuda.so and JIT-compiles the PTX that
# iree-compile embedded. Compiles examples/lif2.py for --target cuda --cuda-arch SM_ARCH
# and for llvm-cpu, runs forward and both learning rules (d-rtrl, es-d-rtrl) through
# tracec.runtime on driver cuda, compares them with llvm-cpu to 1e-4, and times
# train_sequence on the GPU and on the CPU at H = 64, 256, 1024
# (benchmarks/gpu_check.py does the work; its docstring says what IREE 3.13 compiles
# for sm_90). Results: printed, and benchmarks/results/gpu_check.md.
#
# Exit status: 0 all equal; 1 a mismatch or a failure; 2 no CUDA device here (checked
# first, before anything is built or compiled).
set -eu
cd "$(dirname "$0")/.."
ARCH=${1:-sm_90}
case $ARCH in sm_[0-9]*) ;; *) echo "gpu_check.sh: SM_ARCH must look like sm_90, got '$ARCH'" >&2; exit 64 ;; esac

# No NVIDIA driver at all: say so before building anything.
if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "no CUDA device: nvidia-smi is not installed (no NVIDIA driver on this machine)" >&2
  exit 2
fi
if ! nvidia-smi -L >/dev/null 2>&1; then
  echo "no CUDA device: nvidia-smi lists no GPU ($(nvidia-smi -L 2>&1 | head -n 1))" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader || true

[ -x .venv/bin/python ] || make venv
# The helper checks again that IREE's cuda driver creates a device (exit 2 if not).
exec .venv/bin/python -m benchmarks.gpu_check --accel cuda --arch "$ARCH" --sizes 64,256,1024
