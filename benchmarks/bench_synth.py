"""Time ``augtool synth`` at the paper's counts (141 images, 640x480) and print the figures.

Usage::

    python benchmarks/bench_synth.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from augtool.tools.synth import synthesize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    for run in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            cpu = time.process_time()
            summary = synthesize(Path(tmp) / "demo")
            cpu = time.process_time() - cpu
            size = sum(p.stat().st_size for p in (Path(tmp) / "demo").rglob("*.jpg"))
        print(
            f"run {run}: {sum(summary.counts.values())} images 640x480 in {summary.seconds:.2f} s "
            f"wall, {cpu:.2f} s CPU, {size / 2**20:.1f} MiB of JPEG"
        )


if __name__ == "__main__":
    main()
