"""From nothing to a trained, evaluated LeukemiaNet in a few minutes on a laptop CPU.

Runs the same commands a user would type:

1. ``augtool synth``    - generate 141 blood smears (ALL 49, AML 33, normal 59);
2. ``augtool expand``   - the paper's 1,676-image set (--pca), split 70/30 by source;
3. ``augtool verify``   - prove the files are what the manifest says;
4. ``augtool train``    - LeukemiaNet for a few epochs;
5. ``augtool evaluate`` - the paper's Table 1 on the test split.

Usage (from anywhere, with augtool installed with the ``train`` extra)::

    python examples/end_to_end.py                 # ~5 minutes on 2 CPU cores
    python examples/end_to_end.py --tiny          # seconds: what CI runs
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def augtool(*args: str) -> None:
    """Run one ``augtool`` command, echoing it, and stop on failure."""
    print("$ augtool " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "cli", *args], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="Where to write (default: a temp folder)."
    )
    parser.add_argument("--epochs", type=int, default=5, help="Training epochs.")
    parser.add_argument(
        "--tiny", action="store_true", help="A few small images and one epoch (CI)."
    )
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="augtool-example-"))
    work.mkdir(parents=True, exist_ok=True)
    raw, data, run = work / "raw", work / "data.h5", work / "run"
    if args.tiny:
        synth_opts = ["--per-class", "ALL=4,AML=3,normal=5", "--size", "160x120"]
        expand_opts = ["--target", "36", "--pca-count", "6", "--size", "64"]
        epochs = "1"
    else:
        synth_opts, expand_opts, epochs = [], ["--pca"], str(args.epochs)
    start = time.perf_counter()
    augtool("synth", str(raw), "--overwrite", "--seed", "0", *synth_opts)
    augtool("expand", str(raw), str(data), "--overwrite", *expand_opts)
    augtool("verify", str(data))
    augtool("train", str(data), str(run), "--epochs", epochs, "--overwrite", "--quiet")
    augtool("evaluate", str(run / "model.pt"), str(data), "--subset", "test")
    print(f"done in {time.perf_counter() - start:.0f} s; everything is in {work}")


if __name__ == "__main__":
    main()
