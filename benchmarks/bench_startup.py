"""What a training process pays before its first batch: torch, and torch's compiler.

Prints the CPU seconds of each step of a fresh process's start-up, in order:
importing torch; building a network; importing ``torch._dynamo`` (with sympy),
which the first ``optimizer.step()`` does anyway (torch 2.13's
``_use_grad_for_differentiable`` imports it on every step to place graph
breaks, and ``add_param_group``/``zero_grad`` to mark themselves untraceable,
``torch/optim/optimizer.py``), here on its own to see its share; the first
optimizer and step; and the same once more. Every training process pays the
compiler's import once: each test that trains in its own process, each run
of ``augtool train``. A second child checks that a plain first step imports
the compiler, i.e. that the figure is a cost of training, not of this script.

Run: ``python benchmarks/bench_startup.py [--repeat 3]`` (each repeat is a new
process; the figures are the median).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys

_CHILD = """
import json, sys, time
t = time.process_time
marks = {}
start = t()
import torch
marks["import torch"] = t() - start
from model.config import TrainConfig
from model.networks import create_model
from model.train import make_optimizer
start = t()
net = create_model("leukemianet", 3, input_size=64)
marks["build LeukemiaNet"] = t() - start
def one_step():
    opt = make_optimizer(net, TrainConfig())
    opt.zero_grad()
    net(torch.ones(2, 3, 64, 64)).sum().backward()
    opt.step()
before = "torch._dynamo" in sys.modules
if sys.argv[1] == "split":
    start = t()
    import torch._dynamo
    marks["import torch._dynamo"] = t() - start
start = t()
one_step()
marks["first optimizer + step"] = t() - start
after = "torch._dynamo" in sys.modules and "sympy" in sys.modules
start = t()
one_step()
marks["second optimizer + step"] = t() - start
print(json.dumps({"marks": marks, "compiler_before": before, "compiler_after": after}))
"""


def main() -> None:
    """Run the child ``--repeat`` times and print the median of each step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    def child(mode: str) -> dict:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True
        ).stdout
        return json.loads(out.splitlines()[-1])

    plain = child("plain")
    runs = [child("split") for _ in range(args.repeat)]
    import torch

    print(f"torch {torch.__version__}, Python {platform.python_version()}, {args.repeat} processes")
    print(
        "a plain process: torch._dynamo imported before the first optimizer: "
        f"{plain['compiler_before']}; after its first step: {plain['compiler_after']}"
    )
    for mark in runs[0]["marks"]:
        seconds = statistics.median(run["marks"][mark] for run in runs)
        print(f"  {mark:<26} {seconds:5.2f} CPU s")


if __name__ == "__main__":
    main()
