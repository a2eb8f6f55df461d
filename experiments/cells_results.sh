#!/usr/bin/env bash
# Re-run the BCCD result of docs/cells.md: cut a 3-class cell set from the annotated
# smears, expand it (split 70/15/15 by smear, from cells.csv), train CellNet with its
# defaults, and evaluate on the test split once.
#
# Usage: experiments/cells_results.sh [WORKDIR] [DATA]
#   WORKDIR  where the cell set, dataset and run go (default: cells-work/, created)
#   DATA     the shared data folder (default: ../shared/data)
#
# Needs `pip install -e '.[train]'`. About an hour on a busy 2-core CPU; minutes on a GPU.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-cells-work}
DATA=${2:-$REPO/../shared/data}
if [ ! -d "$DATA/bccd-smears" ] || [ ! -d "$DATA/bccd-annotations" ]; then
    echo "error: no bccd-smears/ and bccd-annotations/ in $DATA; pass the folder as the second argument" >&2
    exit 2
fi
mkdir -p "$WORK"

augtool cells "$DATA/bccd-smears" "$DATA/bccd-annotations" "$WORK/bccd-cells3" \
    --annotation-format voc --skip-invalid --exclude-overlap WBC --max-per-class 250 --overwrite
augtool expand "$WORK/bccd-cells3" "$WORK/cells3.h5" --pca --split 0.7,0.15,0.15 --overwrite
augtool verify "$WORK/cells3.h5"
augtool train "$WORK/cells3.h5" "$WORK/run-cellnet" --arch cellnet --overwrite -q
augtool evaluate "$WORK/run-cellnet/model.pt" "$WORK/cells3.h5" --subset test
