#!/usr/bin/env bash
# Re-run the cross-validation figures of docs/results.md (every choice on validation folds, never on test).
#
# Usage: experiments/cv.sh [WORKDIR] [CELLS] [STEP...]
#   WORKDIR  where the dataset and the runs go (default: cv-work/, created)
#   CELLS    the real cell set (default: ../shared/data/bccd-cells)
#   STEP     any of: data extra cell cell-nocoords cell-noaug cell-crop50 cell-crop30
#            cell-conv cell-extra leuk (default: data cell cell-nocoords cell-noaug leuk,
#            in that order)
#
# Environment:
#   SIZE      side of the expanded images (default 227, the paper's); the dataset is
#             cells5-SIZE.h5 and each run folder NAME-SIZE (NAME-SIZE-eEPOCHS with EPOCHS)
#   EPOCHS    train this many epochs instead of the architecture's default (30)
#   SEED      seed of the CellNet and LeukemiaNet runs (default 0); another seed
#             writes NAME-SIZE-sSEED (after -eEPOCHS when both are set)
#   CV_FOLDS  train only these folds (e.g. "0 2 4"), to spread one configuration over
#             several processes; a last run without it reuses them and writes cv.md
#
# `extra` cuts more training cells from the BCCD smears that hold none of CELLS' cells
# (`augtool cells`, RBC/Platelet windows that touch no white cell, at most 3 a class
# per smear and 100 a class) and expands them like DATA (about 10.6 copies and 1.3
# PCA copies a source) into extra-SIZE.h5; `cell-extra` adds them to every fold's
# training images (`--extra-train`): they are never validated or tested on, and
# train refuses them if a smear of theirs is in a validation or test fold.
#
# Uses this checkout's code (python -m cli), not an installed augtool. Each step
# trains all 5 folds (`augtool train --fold all`): test fold k, keep the epoch
# best on fold k+1, train on the other 3; it prints RUNS/cv.md (validation figures
# only: training never scores a test fold). A step that was interrupted continues
# where it stopped (--resume keeps finished folds). Progress goes to stderr, one
# line per epoch when it is a log file.
# The CellNet configurations are compared on mean VAL accuracy only
# (experiments/cv_compare.py RUN... prints that ranking and names the choice); the
# chosen run's test folds are then read once, by hand:
#   augtool evaluate RUN cells5-SIZE.h5 --fold all --subset test
# which records the read in cells5-SIZE.h5.test-reads.jsonl. Measured 2026-12-01 on
# the 2-core VM with OMP_NUM_THREADS=1 (one core per run, the other core busy): one
# fold of CellNet at 64 px or with crop=0.5 at 128 px about 2 minutes, crop=0.3 at 227
# px about 4, LeukemiaNet at 64 px about 1.5, at 128 px about 10. See docs/results.md.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-cv-work}
CELLS=${2:-$REPO/../shared/data/bccd-cells}
shift $(( $# < 2 ? $# : 2 ))
STEPS=${*:-data cell cell-nocoords cell-noaug leuk}
if [ ! -d "$CELLS" ]; then
    echo "error: no cell set at $CELLS; pass its path as the second argument" >&2
    exit 2
fi
mkdir -p "$WORK"
CELLS=$(cd "$CELLS" && pwd)
cd "$WORK"
SIZE=${SIZE:-227}
SEED=${SEED:-0}
DATA=cells5-$SIZE.h5
EXTRA=extra-$SIZE.h5
SMEARS=$(cd "$CELLS/.." && pwd)

augtool() { PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" python -m cli "$@"; }
step() { echo; echo "=== $(date -u +%H:%M:%S) $*"; }
cv() {  # cv NAME [train options...]: every fold of $DATA into NAME-$SIZE/
    local name=$1-$SIZE
    shift
    if [ -n "${EPOCHS:-}" ]; then
        name=$name-e$EPOCHS
        set -- "$@" --epochs "$EPOCHS"
    fi
    if [ "$SEED" != 0 ]; then
        name=$name-s$SEED
    fi
    set -- "$@" --seed "$SEED"
    if [ -n "${CV_FOLDS:-}" ]; then
        for k in $CV_FOLDS; do
            if [ -f "$name/fold-$k/metrics.json" ]; then continue; fi
            step "$name fold $k: augtool train $DATA $name/fold-$k --fold $k $*"
            augtool train "$DATA" "$name/fold-$k" --fold "$k" --overwrite "$@"
        done
        return
    fi
    step "$name: augtool train $DATA $name --fold all $*"
    augtool train "$DATA" "$name" --fold all --resume "$@"
}

for s in $STEPS; do
    case $s in
    data)
        step "dataset: 5 folds grouped by smear"
        augtool expand "$CELLS" "$DATA" --pca --group-regex 'BloodImage_\d+' --folds 5 \
            --size "$SIZE" --overwrite
        augtool verify "$DATA"
        ;;
    extra)
        step "extra training cells from the smears without a cell of $CELLS"
        rm -rf extra-smears extra-annotations
        mkdir -p extra-smears extra-annotations
        used=$(find "$CELLS" -name '*.jpg' -printf '%f\n' | grep -o 'BloodImage_[0-9]*' | sort -u)
        for smear in "$SMEARS"/bccd-smears/*.jpg; do
            id=$(basename "$smear" .jpg)
            if ! grep -qx "$id" <<<"$used"; then
                ln -s "$smear" extra-smears/
                ln -s "$SMEARS/bccd-annotations/$id.xml" extra-annotations/
            fi
        done
        augtool cells extra-smears extra-annotations extra-cells --annotation-format voc --skip-invalid \
            --exclude-overlap WBC --max-per-smear 3 --max-per-class 100 --overwrite
        sources=$(find extra-cells -name '*.png' | wc -l)
        augtool expand extra-cells "$EXTRA" --factor 10.58 --pca-count $((sources * 184 / 141)) \
            --size "$SIZE" --split none --overwrite
        ;;
    cell) cv cv-cell --arch cellnet ;;
    cell-extra) cv cv-cell-extra --arch cellnet --extra-train "$EXTRA" ;;
    cell-nocoords) cv cv-cell-nocoords --arch cellnet --arch-option coords=false ;;
    cell-noaug) cv cv-cell-noaug --arch cellnet --augment none ;;
    cell-crop50) cv cv-cell-crop50 --arch cellnet --arch-option crop=0.5 ;;
    cell-crop30) cv cv-cell-crop30 --arch cellnet --arch-option crop=0.3 ;;
    cell-conv) cv cv-cell-conv --arch cellnet --arch-option stem=conv ;;
    leuk) cv cv-leuk --arch leukemianet ;;
    *)
        echo "error: unknown step $s" >&2
        exit 2
        ;;
    esac
done
step "done"
