#!/usr/bin/env bash
# Round 3 of docs/results.md: changes on top of round 2's choice, on VALIDATION folds only.
#
# Usage: experiments/cv_round3.sh [WORKDIR]
#   WORKDIR  experiments/cv.sh's folder (default: cv-work), holding cells5-128.h5,
#            extra-128.h5 and the runs cv-cell-extra-128, cv-cell-128, cv-cell-crop50-128
#            and cv-cell-extra-128-s1 (SEED=1 SIZE=128 experiments/cv.sh ... cell-extra)
#
# Scores each candidate with `augtool evaluate RUN DATA --fold all --subset val` (or
# experiments/cv_prior.py) into WORKDIR/round3/<candidate>/, then prints the candidates
# ranked by mean validation accuracy (ties: validation macro F1). Nothing here scores a
# test fold; the rule in docs/results.md says when one is read, and how.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-cv-work}
cd "$WORK"
augtool() { PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" python -m cli "$@"; }
mkdir -p round3

BASE=cv-cell-extra-128
DATA=cells5-128.h5
candidate() {  # candidate NAME DESCRIPTION [evaluate options...]
    local name=$1 what=$2
    shift 2
    echo "== ($name) $what" >&2
    augtool evaluate "$BASE" "$DATA" "round3/$name" --fold all --subset val "$@" >"round3/$name.txt"
    printf '%s\n' "$what" >"round3/$name/what.txt"
}
candidate a "round 2's choice as it is"
candidate b "+ 8-view test-time augmentation" --tta
candidate c "averaged with cv-cell-128" --ensemble cv-cell-128
candidate d "averaged with cv-cell-128 and cv-cell-crop50-128" \
    --ensemble cv-cell-128 --ensemble cv-cell-crop50-128
echo "== (e) label-shift correction to the set's class mix" >&2
mkdir -p round3/e
python "$REPO/experiments/cv_prior.py" "$BASE" "$DATA" extra-128.h5 --json round3/e/prior.json \
    >round3/e.txt
printf '%s\n' "label-shift correction to the set's class mix" >round3/e/what.txt
candidate f "averaged with seed 1 of the same configuration" --ensemble cv-cell-extra-128-s1
candidate g "averaged with seed 1, + 8-view test-time augmentation" \
    --ensemble cv-cell-extra-128-s1 --tta

python "$REPO/experiments/cv_rank.py" round3
