#!/usr/bin/env bash
# Time the README's two Quickstart commands as a new user runs them: a fresh
# clone of this checkout's HEAD, a fresh Python 3.11 venv inside it, each
# command exactly as the README gives it. Prints the machine, its load
# (uptime) before and after each command, the wall time of every part, and
# `git status` of the clone afterwards (nothing but ignored paths may be left).
#
#   bash checks/quickstart.sh [WORKDIR]     # default /tmp/augtool-quickstart
#
# The figures in README.md's Quickstart come from this script.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/augtool-quickstart}
rm -rf "$work"
git clone -q "$repo" "$work"
cd "$work"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "commit: $(git rev-parse --short HEAD)"

step() {
    local name=$1
    shift
    echo "load before $name: $(uptime | sed 's/.*load average: //')"
    local times="$work.$name.time"
    /usr/bin/time -o "$times" -f "%e %U %S" "$@" > "$work.$name.log" 2>&1 || { echo "$name FAILED, see $work.$name.log"; tail -20 "$work.$name.log"; exit 1; }
    read -r wall user sys < "$times"
    printf '%s: %.0f s wall, %.0f s CPU (user + system)\n' "$name" "$wall" "$(echo "$user + $sys" | bc)"
}

step venv python3.11 -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
step "1-pip-install" pip install -c constraints.txt -e .
step "1-synth" augtool synth demo/raw --overwrite
step "1-expand" augtool expand demo/raw demo/out --pca --overwrite
tail -5 "$work.1-expand.log"
step "2-pip-install" pip install -c constraints.txt -e '.[train,test]'
step "2-pytest" python -m pytest -n 2 --dist loadfile
tail -3 "$work.2-pytest.log"
echo "load after: $(uptime | sed 's/.*load average: //')"
echo "git status --porcelain (untracked and changed files; empty is right):"
git status --porcelain
echo "ignored paths left by the Quickstart:"
git status --porcelain --ignored | grep '^!!' | grep -v '__pycache__' || true
echo "demo/ size: $(du -sh demo | cut -f1)"
