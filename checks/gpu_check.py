"""Prove the GPU path in one run and write one Markdown report (see gpu_check.sh).

Steps, each in its own process with a time limit (5 and 6 share one: each Python
that trains spends seconds importing torch), each a section of the report (a
failed step is reported with its last output lines and the run goes on):

1. Environment: card, driver, CUDA, cuDNN, torch, Python, date, which optional
   packages are present.
2. The CUDA-marked tests (``pytest -m cuda tests/test_cuda.py``), skipped with
   a line when pytest is absent.
3. ``bench_train.py``: 30 epochs, the library against the JPEG DataLoader
   (float32, cuDNN benchmark on), then the library alone in bf16.
4. ``bench_pca.py --device cuda``.
5. End to end: ``augtool expand`` of ``../shared/data/bccd-cells`` (else of a
   ``augtool synth`` set) -> train LeukemiaNet (the paper's settings but
   :data:`E2E_EPOCHS` epochs, so that the CPU run fits in the time) on CUDA ->
   evaluate on the test split, then the same seed on the CPU; test accuracies must agree within
   :data:`TOLERANCE`, and the CUDA model evaluated on the CPU must give the
   same predictions (agreement >= :data:`AGREEMENT`). Peak GPU memory of the
   CUDA run. ``expand`` needs neither Pillow nor tqdm (it reads image
   headers itself), so the set is always made by ``augtool expand``.
6. The streamed path on the device: the same training with a memory budget
   that forces streaming.

``--cpu`` is the dry mode: tiny sizes, everything on the CPU, no CUDA needed
(CI runs it); figures from it mean nothing.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CELLS = ROOT.parent / "shared" / "data" / "bccd-cells"
#: Largest allowed difference of test accuracy between the CUDA and the CPU run.
#: The two runs start from the same weights but draw their batch order from
#: different generators (CUDA's and the CPU's), and CUDA's float32 convolutions
#: sum in another order (TF32 where cuDNN allows it), so they are two runs of
#: the same recipe, not one run twice. docs/train.md measured 71.5 % vs 70.7 %
#: for two seeds of this recipe on the real cells, and single runs on their 43
#: test sources move by 2-3 points from epoch to epoch: 5 points is the bound.
TOLERANCE = 0.05
#: Epochs of the end-to-end runs (the paper's 30 would take the CPU run past the time).
E2E_EPOCHS = 10
#: Images in the --cpu dry run's expanded set (tiny: its figures mean nothing).
CPU_TARGET = 40
#: Image side of the --cpu dry run's sets (LeukemiaNet's smallest tested input).
CPU_SIZE = 32
#: Least fraction of test images on which the CUDA-trained model predicts the
#: same class on the CPU as on the GPU (same weights, two devices).
AGREEMENT = 0.99
SECTIONS = (
    "Environment",
    "CUDA-marked tests",
    "Training speed: library vs JPEG DataLoader",
    "PCA colour jitter",
    "End to end: expand, train on the device, evaluate, against the CPU",
    "Streamed training on the device",
    "Peak GPU memory",
    "Summary",
)


@dataclass
class Step:
    """What one step produced: ok, its text for the report, and figures for the summary."""

    ok: bool
    text: str
    figures: dict[str, object] = field(default_factory=dict)


def has(module: str) -> bool:
    """True when ``module`` can be imported here."""
    return importlib.util.find_spec(module) is not None


def run(command: list[str], timeout: float, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run a command from the repository root; (exit status, stdout+stderr). 124 on timeout."""
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    try:
        done = subprocess.run(
            command,
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as err:
        out = err.stdout if isinstance(err.stdout, str) else (err.stdout or b"").decode()
        return 124, out + f"\n(stopped after {timeout:.0f} s)"
    return done.returncode, done.stdout


def fenced(text: str, lines: int = 40) -> str:
    """The last ``lines`` lines of ``text`` in a Markdown code block."""
    tail = "\n".join(text.strip().splitlines()[-lines:])
    return f"```\n{tail}\n```"


def environment(cuda: bool) -> Step:
    """Card, driver, versions, date and the optional packages."""
    import torch

    rows = [
        ("date (UTC)", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M")),
        ("host", platform.node()),
        ("python", platform.python_version()),
        ("torch", torch.__version__),
        ("CPU threads (torch)", str(torch.get_num_threads())),
    ]
    if cuda:
        props = torch.cuda.get_device_properties(0)
        rows += [
            ("card", torch.cuda.get_device_name(0)),
            ("GPU memory", f"{props.total_memory / 2**30:.1f} GiB"),
            ("CUDA (torch build)", str(torch.version.cuda)),
            ("cuDNN", str(torch.backends.cudnn.version())),
            ("driver", driver_version()),
        ]
    else:
        rows.append(("card", "none (--cpu dry mode: figures below mean nothing)"))
    optional = {m: has(m) for m in ("pytest", "albumentations", "tqdm", "PIL", "skimage")}
    required = {m: has(m) for m in ("numpy", "h5py", "cv2", "click", "joblib")}
    rows.append(
        ("required packages", ", ".join(f"{m} {'yes' if v else 'NO'}" for m, v in required.items()))
    )
    rows.append(
        ("optional packages", ", ".join(f"{m} {'yes' if v else 'no'}" for m, v in optional.items()))
    )
    table = "| item | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)
    return Step(all(required.values()), table, {"optional": optional})


def driver_version() -> str:
    """The NVIDIA driver version from nvidia-smi, or why it is unknown."""
    if shutil.which("nvidia-smi") is None:
        return "unknown (no nvidia-smi)"
    status, out = run(
        ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], timeout=30
    )
    return out.strip().splitlines()[0] if status == 0 and out.strip() else "unknown"


def cuda_tests(cuda: bool, timeout: float) -> Step:
    """``pytest -m cuda`` on the CUDA test file."""
    if not has("pytest"):
        return Step(True, "Skipped: pytest is not installed on this machine.", {"tests": "skipped"})
    status, out = run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "cuda",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_cuda.py",
        ],
        timeout,
    )
    last = out.strip().splitlines()[-1] if out.strip() else ""
    note = "" if cuda else "\n\n(no CUDA here: every test is skipped, as expected)"
    return Step(
        status == 0,
        f"`pytest -m cuda tests/test_cuda.py`: exit {status}, {last}\n\n" + fenced(out, 25) + note,
        {"tests": last},
    )


def bench_train(cuda: bool, timeout: float) -> Step:
    """bench_train.py: float32 with cuDNN benchmark, both ways; then bf16, library only."""
    if cuda:
        base = ["--device", "cuda", "--epochs", "30", "--cudnn-benchmark"]
    else:
        base = [
            *("--device", "cpu", "--epochs", "1", "--images", "15", "--size", str(CPU_SIZE)),
            *("--workers", "0", "--batch-size", "8"),
        ]
    script = [sys.executable, "benchmarks/bench_train.py"]
    status, out = run([*script, *base], timeout * 0.75)
    figures: dict[str, object] = {}
    for line in out.splitlines():
        if line.startswith("| library"):
            figures["library_s"] = float(line.split("|")[3])
        elif line.startswith("| naive"):
            figures["naive_s"] = float(line.split("|")[3])
    text = (
        f"`python benchmarks/bench_train.py {' '.join(base)}` (float32): exit {status}\n\n"
        + fenced(out, 20)
    )
    if not cuda:
        text += "\n\nThe bf16 run is left out in --cpu mode (bf16 on a CPU says nothing)."
        return Step(status == 0, text, figures)
    status_bf16, out_bf16 = run([*script, *base, "--skip-naive", "--amp", "bf16"], timeout * 0.25)
    for line in out_bf16.splitlines():
        if line.startswith("| library"):
            figures["library_bf16_s"] = float(line.split("|")[3])
    text += f"\n\nThe library alone with `--amp bf16`: exit {status_bf16}\n\n" + fenced(out_bf16, 6)
    return Step(status == 0 and status_bf16 == 0, text, figures)


def bench_pca(cuda: bool, timeout: float) -> Step:
    """bench_pca.py, on the GPU too when there is one."""
    # --cpu: a few images, and no albumentations (a GPU machine has none: the dry run
    # takes the path the GPU run takes, without albumentations' seconds of imports).
    args = (
        ["--device", "cuda"]
        if cuda
        else ["--device", "cpu", "--count", "4", "--repeats", "1", "--skip-albumentations"]
    )
    status, out = run([sys.executable, "benchmarks/bench_pca.py", *args], timeout)
    same = "cuda result identical to the CPU's: True" in out
    ok = status == 0 and (same or not cuda)
    return Step(
        ok,
        f"`python benchmarks/bench_pca.py {' '.join(args)}`: exit {status}\n\n" + fenced(out, 20),
        {"pca_same_bytes": same if cuda else "n/a"},
    )


def train_steps(cuda: bool, work: Path, timeout: float) -> tuple[Step, Step]:
    """The end-to-end step and the streamed step, trained in one Python process.

    Each Python that imports torch and builds its first optimizer spends seconds
    on imports (torch, then torch._dynamo), so both steps' training shares one:
    the end-to-end part prints a ``RESULT`` line, the streamed part a ``STREAM``
    line; a part that raises prints its traceback and the other still runs.
    """
    t_start = time.perf_counter()
    data, how = build_cells(cuda, work, timeout * 0.3)
    if data is None:
        return Step(False, how), Step(False, "Not run: the end-to-end data was not built.")
    code = AGREEMENT_HELPER + end_to_end_code(cuda) + streamed_code(cuda) + TWO_PARTS
    status, out = run(
        [sys.executable, "-c", code, str(data), str(work / "runs"), str(work / "stream")],
        timeout - (time.perf_counter() - t_start),
    )
    return end_to_end(cuda, how, status, out), streamed(cuda, status, out)


TWO_PARTS = """
import traceback
failed = False
for tag, part in (("RESULT", _end_to_end), ("STREAM", _streamed)):
    try:
        print(tag + " " + json.dumps(part(), default=str), flush=True)
    except Exception:
        traceback.print_exc()
        failed = True
sys.exit(1 if failed else 0)
"""


def end_to_end_code(cuda: bool) -> str:
    """``_end_to_end()``: train (device, then CPU, same seed) and evaluate; its figures."""
    epochs, device = e2e_epochs(cuda), device_of(cuda)
    return f"""
import json, sys, torch
from model.evaluation import evaluate_run
from model.run import train_run
from model.train import TrainConfig

def _end_to_end():
    config = TrainConfig.for_arch("leukemianet", epochs={epochs}, seed=0)
    out = {{}}
    for device in ("{device}", "cpu"):
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        run = train_run(sys.argv[1], sys.argv[2] + "/" + device, config, device)
        report = evaluate_run(sys.argv[2] + "/" + device + "/model.pt", sys.argv[1], "test",
                              device=device).report
        out[device] = {{"accuracy": report["accuracy"], "seconds": run.metrics["train_seconds"],
                       "best_epoch": run.metrics["best_epoch"],
                       "data_path": run.metrics["data_path"]}}
        if device == "cuda":
            out[device]["peak_bytes"] = torch.cuda.max_memory_allocated()
            on_cpu = evaluate_run(sys.argv[2] + "/cuda/model.pt", sys.argv[1], "test",
                                  device="cpu")
            out["cuda_model_on_cpu"] = {{"accuracy": on_cpu.report["accuracy"]}}
            out["agreement"] = _agreement(sys.argv[2] + "/cuda/model.pt", sys.argv[1])
        if "{device}" == "cpu":
            break
    return out
"""


def end_to_end(cuda: bool, how: str, status: int, out: str) -> Step:
    """The end-to-end step from the training process's output; accuracies compared."""
    epochs, device = e2e_epochs(cuda), device_of(cuda)
    result = parse_result(out)
    if result is None:
        return Step(False, f"{how}\n\nTraining failed (exit {status}):\n\n" + fenced(out))
    figures: dict[str, object] = {}
    lines = [
        how,
        "",
        f"LeukemiaNet, the paper's settings but {epochs} epoch(s), seed 0, trained and "
        "evaluated on each device (`model.run.train_run`, `model.evaluation.evaluate_run`).",
        "",
        "| run | test accuracy | train seconds | kept epoch |",
        "|---|---|---|---|",
    ]
    for name in (device, "cpu") if cuda else ("cpu",):
        r = result[name]
        lines.append(
            f"| LeukemiaNet, seed 0, on {name} | {r['accuracy']:.3f} | "
            f"{r['seconds']:.1f} | {r['best_epoch']} |"
        )
        figures[f"accuracy_{name}"] = r["accuracy"]
    ok = True
    if cuda:
        diff = abs(result["cuda"]["accuracy"] - result["cpu"]["accuracy"])
        agree = result["agreement"]
        ok = diff <= TOLERANCE and agree >= AGREEMENT
        lines += [
            "",
            f"|CUDA - CPU| test accuracy: {diff:.3f} (tolerance {TOLERANCE}: "
            f"{'within' if diff <= TOLERANCE else 'OUTSIDE'}). The two runs share the initial "
            "weights but not the batch order (CUDA and the CPU have separate generators), so "
            "they are two runs of one recipe; copies of one cell are not independent, so the "
            "test accuracy is an estimate over 43 test sources, not 512 images.",
            f"The CUDA-trained model evaluated on the CPU: accuracy "
            f"{result['cuda_model_on_cpu']['accuracy']:.3f}; same predicted class on "
            f"{agree:.1%} of the test images (needed: {AGREEMENT:.0%}).",
        ]
        figures["peak_bytes"] = result["cuda"]["peak_bytes"]
        figures["agreement"] = agree
        figures["diff"] = diff
    else:
        lines += ["", "(--cpu: the device run is the CPU run; nothing to compare.)"]
    return Step(ok, "\n".join(lines), figures)


AGREEMENT_HELPER = """
def _agreement(model_path, data_path):
    import numpy as np
    import torch
    from model.data import DeviceImages, align_labels, load_for_evaluation
    from model.checkpoint import load_checkpoint
    from model.train import evaluate
    predicted = []
    for device in ("cuda", "cpu"):
        ckpt = load_checkpoint(model_path, device)
        data = load_for_evaluation(data_path, "test", ckpt.input_size)
        labels = align_labels(data, ckpt.class_names)
        images = DeviceImages(data.images, labels, ckpt.normalization, torch.device(device))
        predicted.append(evaluate(ckpt.net, images).predicted)
    return float(np.mean(predicted[0] == predicted[1]))
"""


def parse_result(out: str, tag: str = "RESULT") -> dict | None:
    """The JSON after ``tag`` (``RESULT``) in a step's output."""
    for line in reversed(out.splitlines()):
        if line.startswith(tag + " "):
            return json.loads(line[len(tag) + 1 :])
    return None


def build_cells(cuda: bool, work: Path, timeout: float) -> tuple[Path | None, str]:
    """The expanded set: (HDF5 path or None on failure, a sentence saying how it was made)."""
    cli = [sys.executable, "-c", "import cli; cli.main()"]
    size = "227" if cuda else str(CPU_SIZE)
    raw, origin = CELLS, f"the 141 real cells of {CELLS}"
    if not CELLS.is_dir() or not cuda:  # --cpu: a tiny synth set, whatever is present
        raw = work / "synth-raw"
        per_class = [] if cuda else ["--per-class", "ALL=4,AML=3,normal=5", "--size", "160x120"]
        status, out = run([*cli, "synth", str(raw), *per_class, "--quiet"], timeout / 2)
        if status != 0:
            return None, "`augtool synth` failed:\n\n" + fenced(out)
        origin = (
            f"an `augtool synth` set ({CELLS} is absent)"
            if cuda
            else "a tiny `augtool synth` set (--cpu)"
        )
    target = work / "cells.h5"
    regex = ["--group-regex", r"BloodImage_\d+"] if raw == CELLS else []
    # --cpu: 40 images per class, not the default 1,492: the dry run shows that the
    # steps run, and training 4,476 images three times on a CPU only made it slow.
    extra = ["--pca"] if cuda else ["--target", str(CPU_TARGET)]
    status, out = run(
        [*cli, "expand", str(raw), str(target), "--size", size, *extra, *regex, "--quiet"], timeout
    )
    if status != 0:
        return None, "`augtool expand` failed:\n\n" + fenced(out)
    return target, (
        f"Data: {origin}, `augtool expand --size {size} {' '.join(extra + regex)}` (split 70/30 "
        "by source" + (", smears kept whole" if regex else "") + ")."
    )


def streamed_code(cuda: bool) -> str:
    """``_streamed()``: two training runs forced onto the streamed path, on the device."""
    return f"""
def _streamed():
    config = TrainConfig.for_arch("leukemianet", epochs={3 if cuda else 1}, seed=0)
    runs = [train_run(sys.argv[1], sys.argv[3] + f"/s{{i}}", config, "{device_of(cuda)}",
                      max_memory="{stream_budget(cuda)}")
            for i in range(2)]
    # Training scores no test image; the accuracy of each run is evaluate's, on test.
    return [{{"path": r.metrics["data_path"],
             "acc": evaluate_run(str(r.run_dir / "model.pt"), sys.argv[1], "test",
                                 device="{device_of(cuda)}").report["accuracy"],
             "ips": r.metrics["train_images_per_second"]}} for r in runs]
"""


def e2e_epochs(cuda: bool) -> int:
    """Epochs of each end-to-end training run (one in the dry run)."""
    return E2E_EPOCHS if cuda else 1


def device_of(cuda: bool) -> str:
    """The device the steps train on."""
    return "cuda" if cuda else "cpu"


def stream_budget(cuda: bool) -> str:
    """The ``max_memory`` of the streamed runs: below the set's size either way."""
    return "32M" if cuda else "64K"


def streamed(cuda: bool, status: int, out: str) -> Step:
    """The streamed step from the training process's output."""
    device, budget = device_of(cuda), stream_budget(cuda)
    result = parse_result(out, "STREAM")
    if result is None:
        return Step(False, f"Streamed training failed (exit {status}):\n\n" + fenced(out))
    same = result[0]["acc"] == result[1]["acc"]
    text = (
        f'`train_run(..., max_memory="{budget}")` twice, seed 0, on {device}: path '
        f"{result[0]['path']}, test accuracy {result[0]['acc']:.3f} and {result[1]['acc']:.3f} "
        f"({'equal' if same else 'DIFFERENT'}), {result[0]['ips']:.0f} training images/s."
    )
    return Step(result[0]["path"] == "streamed", text, {"stream_same": same})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu", action="store_true", help="dry mode: tiny sizes, CPU only")
    parser.add_argument("--report", default="gpu-check-report.md", help="Markdown report path")
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds for all steps [default: 290 on CUDA, 1800 with --cpu]",
    )
    args = parser.parse_args()

    import torch

    cuda = not args.cpu
    budget = args.budget or (290.0 if cuda else 1800.0)
    if cuda and not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA GPU; use --cpu for the dry mode", file=sys.stderr)
        return 2
    start = time.perf_counter()

    def left(share: float) -> float:
        return max(10.0, (budget - (time.perf_counter() - start)) * share)

    steps: dict[str, Step] = {}
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = Path(tmp)
        steps[SECTIONS[0]] = environment(cuda)
        steps[SECTIONS[1]] = cuda_tests(cuda, left(0.15))
        steps[SECTIONS[2]] = bench_train(cuda, left(0.4))
        steps[SECTIONS[3]] = bench_pca(cuda, left(0.1))
        e2e, steps[SECTIONS[5]] = train_steps(cuda, work, left(0.95))
        steps[SECTIONS[4]] = e2e
    peak = e2e.figures.get("peak_bytes")
    steps[SECTIONS[6]] = Step(
        True,
        f"`torch.cuda.max_memory_allocated()` over the CUDA training and evaluation of the "
        f"end-to-end step: {peak / 2**20:.0f} MiB."
        if isinstance(peak, int)
        else "Not measured (no CUDA run).",
    )
    steps[SECTIONS[7]] = summary(steps, cuda, time.perf_counter() - start)
    write_report(Path(args.report), steps, cuda)
    print(Path(args.report).read_text())
    return 0 if all(s.ok for s in steps.values()) else 1


def summary(steps: dict[str, Step], cuda: bool, seconds: float) -> Step:
    """Pass/fail per step and the targets of docs/performance.md."""
    lines = ["| step | result |", "|---|---|"]
    lines += [f"| {name} | {'ok' if step.ok else 'FAILED'} |" for name, step in steps.items()]
    train = steps[SECTIONS[2]].figures
    if cuda and "library_s" in train:
        lib = float(train["library_s"])  # type: ignore[arg-type]
        lines += [
            "",
            f"Target: 30 epochs over 1,173 images <= 2.6 s after CUDA start-up: "
            f"{lib:.2f} s ({'met' if lib <= 2.6 else 'NOT met'}).",
        ]
        if "naive_s" in train:
            ratio = float(train["naive_s"]) / lib  # type: ignore[arg-type]
            lines.append(
                f"Target: >= 10x the DataLoader: {ratio:.1f}x "
                f"({'met' if ratio >= 10 else 'NOT met'})."
            )
        if "library_bf16_s" in train:
            lines.append(
                f"bf16 autocast: {train['library_bf16_s']:.2f} s against float32 {lib:.2f} s."
            )
    lines.append(f"\nWhole check: {seconds:.0f} s.")
    return Step(True, "\n".join(lines))


def write_report(path: Path, steps: dict[str, Step], cuda: bool) -> None:
    """Write the report to ``path`` and, when ``$OUT`` is set, a copy there."""
    mode = "CUDA" if cuda else "--cpu dry mode (no GPU; the figures only show that it runs)"
    parts = [
        "# GPU check report",
        "",
        f"Written by `bash checks/gpu_check.sh` ({mode}). Every figure below was printed by "
        "the command named next to it, in this run.",
    ]
    for name in SECTIONS:
        step = steps[name]
        parts += ["", f"## {name}", "", step.text if step.ok else f"**FAILED**\n\n{step.text}"]
    text = "\n".join(parts) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    out = os.environ.get("OUT")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / path.name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
