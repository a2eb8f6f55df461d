#!/usr/bin/env bash
# Prove the GPU path in one run and write one Markdown report.
#
# Usage (from anywhere; the repository needs no install, only PYTHONPATH):
#   bash checks/gpu_check.sh [REPORT.md]          # on a CUDA machine, < 5 minutes on an H100/H200
#   bash checks/gpu_check.sh --cpu [REPORT.md]    # dry mode: tiny sizes, CPU only (CI)
#   --budget=SECONDS: time for all steps (default 290 on CUDA; each step gets a share
#   of what is left and is reported as failed when it runs out)
#
# Needs python3 with torch, numpy, h5py, OpenCV, click and joblib; pytest,
# albumentations, tqdm and Pillow are used when present and their absence is
# reported. The report (default gpu-check-report.md in the repository root) is
# also copied into $OUT when that is set. Steps: see checks/gpu_check.py.
# Exit status 0 when every step passed, 1 when one failed, 2 without CUDA
# (and without --cpu).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=.
mode=()
report=gpu-check-report.md
for arg in "$@"; do
    case "$arg" in
        --cpu) mode+=(--cpu) ;;
        --budget=*) mode+=(--budget "${arg#--budget=}") ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        -*) echo "gpu_check.sh: unknown option $arg" >&2; exit 2 ;;
        *) report="$arg" ;;
    esac
done
exec "${PYTHON:-python3}" checks/gpu_check.py "${mode[@]}" --report "$report"
