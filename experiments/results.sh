#!/usr/bin/env bash
# Re-run the single-split figures of docs/results.md ("Single-split figures") and print
# each evaluation table. Those figures predate the cross-validation protocol; the
# figures every choice of which was made on validation folds come from experiments/cv.sh.
#
# Usage: experiments/results.sh [WORKDIR] [CELLS]
#   WORKDIR  where datasets and runs go (default: results-work/, created)
#   CELLS    the real cell set (default: ../shared/data/bccd-cells)
#
# Needs `pip install -e '.[train]'`. About 2 hours on a 2-core CPU (each LeukemiaNet
# run ~13-20 min, each CellNet run ~7 min); minutes on a GPU. Stops at the first
# failing command. Paste the printed tables into docs/results.md, and the date and
# the machine into experiments/NOTEBOOK.md.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-results-work}
CELLS=${2:-$REPO/../shared/data/bccd-cells}
if [ ! -d "$CELLS" ]; then
    echo "error: no cell set at $CELLS; pass its path as the second argument" >&2
    exit 2
fi
mkdir -p "$WORK"
cd "$WORK"

step() { echo; echo "=== $(date -u +%H:%M:%S) $*"; }
run() {  # run NAME DATA [train options...]: train, then evaluate on the test split
    local name=$1 data=$2
    shift 2
    step "$name: augtool train $data $*"
    augtool train "$data" "$name" --overwrite -q "$@"
    augtool evaluate "$name/model.pt" "$data" --subset test
}

step "datasets"
augtool expand "$CELLS" cells.h5 --pca --group-regex 'BloodImage_\d+' --overwrite
augtool verify cells.h5
augtool expand "$CELLS" cells-leaky.h5 --pca --split-by image --overwrite
augtool expand "$CELLS" cells-scaled.h5 --pca --group-regex 'BloodImage_\d+' \
    --translate-range 2.5,5 --sigma-range 0.4,0.8 --overwrite
augtool synth synth-raw --overwrite
augtool expand synth-raw synth.h5 --pca --overwrite

# Real cells, split by smear.
run run-leuk cells.h5 --arch leukemianet --seed 0
run run-cell cells.h5 --arch cellnet --seed 0
run run-leuk-flips cells.h5 --arch leukemianet --augment dihedral --seed 0
run run-leuk-dc cells.h5 --arch leukemianet --augment dihedral --schedule cosine --seed 0
run run-leuk-dc-s1 cells.h5 --arch leukemianet --augment dihedral --schedule cosine --seed 1
for seed in 1 2; do
    run "run-cell-s$seed" cells.h5 --arch cellnet --seed "$seed"
done
run run-cell-conv cells.h5 --arch cellnet --arch-option stem=conv --seed 0
step "run-cell with test-time augmentation"
augtool evaluate run-cell/model.pt cells.h5 --subset test --tta run-cell/eval-tta

# The paper's protocol (leaky), the scaled pixel lengths, the synthetic set.
run run-leuk-leaky cells-leaky.h5 --arch leukemianet --seed 0
run run-cell-scaled cells-scaled.h5 --arch cellnet --seed 0
run run-synth synth.h5 --arch leukemianet --seed 0
run run-synth-cell synth.h5 --arch cellnet --seed 0
step "done"
