"""Measure how much ``expand --pca`` copies differ from their originals, per mode and strength.

For every (mode, std) of a grid, renders exactly the PCA copies that
``augtool expand RAW OUT --pca`` would write (same plan, same per-output
generators, same originals at the output size; only the PCA settings vary) and
reports over those copies:

* ``identical``: % of copies byte-identical to their original;
* ``median MAE`` / ``p99 MAE``: median and 99th percentile over copies of the
  mean absolute change (grey levels, over all pixels and channels);
* ``p99 |change|``: 99th percentile of the absolute change over all pixel
  values of all copies;
* ``newly clipped``: % of pixels (over all copies) with a channel at 0 or 255
  whose original pixel had none;
* ``ok``: whether the default's criteria hold (<= 1 % identical, median MAE
  >= 2 grey levels, <= 1 % newly clipped).

RAW is ``../shared/data/bccd-cells`` (141 real cells, 184 PCA copies) when it
exists, else a generated set of the same class sizes (``augtool.tools.synth``).
Copies of one source are not independent samples: the figures describe this
set, not a population.

Run: ``python experiments/pca_measure.py [--stds 0.1,0.5] [--modes pixel] [--raw DIR | --synth]``.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from augtool.engine.options import ExpandOptions
from augtool.engine.plan import plan_run
from augtool.engine.render import RenderSettings, SourceTask, render_source
from augtool.engine.scan import scan
from augtool.pipeline.builtins import PcaSettings
from augtool.pipeline.steps import PCA
from augtool.progress import NoProgress
from tests.workloads import PAPER_CLASSES, SHARED_DATA, machine

CELLS = SHARED_DATA / "bccd-cells"
#: The legacy settings of the issue's measurement, shown for comparison.
LEGACY = (
    PcaSettings(std=0.1, k=3, mode="shift", scale="unit"),
    PcaSettings(std=0.1, k=3, mode="shift", scale="byte"),
)


@dataclass(frozen=True)
class Row:
    """The figures of one PCA setting."""

    settings: PcaSettings
    copies: int
    identical: float
    median_mae: float
    p99_mae: float
    p99_change: float
    newly_clipped: float

    @property
    def ok(self) -> bool:
        """Whether the criteria of the default hold."""
        return self.identical <= 1.0 and self.median_mae >= 2.0 and self.newly_clipped <= 1.0


def tasks_with_pca(raw: Path, options: ExpandOptions) -> list[SourceTask]:
    """One task per source that gets PCA copies: its original (copy 0) and those copies."""
    run = plan_run(scan(raw, workers=1), options, NoProgress())
    by_source: dict[int, list[tuple[int, int, str]]] = {}
    for i, job in enumerate(run.jobs):
        if job.copy == 0 or job.transform == PCA:
            by_source.setdefault(job.source, []).append((i, job.copy, job.transform))
    tasks = []
    for s, jobs in sorted(by_source.items()):
        if len(jobs) > 1:
            src = run.scan.sources[s]
            tasks.append(
                SourceTask(str(raw / src.path), src.sha256, src.width, src.height, tuple(jobs))
            )
    return tasks


def measure(tasks: list[SourceTask], settings: RenderSettings) -> Row:
    """Render the PCA copies of ``tasks`` with ``settings`` and compare them to their originals."""
    maes, changes, identical, new_clip, pixels = [], [], 0, 0, 0
    for task in tasks:
        rendered = render_source(task, settings)
        original = np.asarray(rendered[0].payload).astype(np.int16)
        clipped_before = np.any((original == 0) | (original == 255), axis=2)
        for item in rendered[1:]:
            copy = np.asarray(item.payload).astype(np.int16)
            change = np.abs(copy - original)
            identical += int(not change.any())
            maes.append(float(change.mean()))
            changes.append(change.ravel())
            clipped = np.any((copy == 0) | (copy == 255), axis=2)
            new_clip += int(np.count_nonzero(clipped & ~clipped_before))
            pixels += clipped.size
    n = len(maes)
    return Row(
        settings=settings.pca,
        copies=n,
        identical=100.0 * identical / n,
        median_mae=float(np.median(maes)),
        p99_mae=float(np.percentile(maes, 99)),
        p99_change=float(np.percentile(np.concatenate(changes), 99)),
        newly_clipped=100.0 * new_clip / pixels,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stds", default="0.05,0.1,0.2,0.3,0.4,0.5,0.75,1", help="comma-separated stds"
    )
    parser.add_argument(
        "--raw", type=Path, default=None, help="RAW folder (default: the real cells, else synth)"
    )
    parser.add_argument("--modes", default="pixel,shift", help="comma-separated modes")
    parser.add_argument(
        "--synth", action="store_true", help="use generated smears even if the real cells exist"
    )
    args = parser.parse_args()
    stds = [float(s) for s in args.stds.split(",")]
    modes = args.modes.split(",")

    with tempfile.TemporaryDirectory() as tmp:
        if args.raw is not None:
            raw, origin = args.raw, str(args.raw)
        elif CELLS.is_dir() and not args.synth:
            raw, origin = CELLS, f"{CELLS.resolve()} (141 real BCCD cells)"
        else:
            from augtool.tools.synth import synthesize

            raw = Path(tmp) / "raw"
            synthesize(
                raw,
                per_class=PAPER_CLASSES,
            )
            origin = "generated by augtool.tools.synth (seed 0, 49 / 33 / 59 per class)"
        options = ExpandOptions(pca_count=184)
        tasks = tasks_with_pca(raw, options)
        base = RenderSettings(size=options.size, seed=options.seed, encoding="array")
        grid = [PcaSettings(std=s, k=3, mode=m) for m in modes for s in stds] + list(LEGACY)
        started = time.perf_counter()
        rows = [measure(tasks, replace(base, pca=pca)) for pca in grid]
        seconds = time.perf_counter() - started

    print(f"RAW: {origin}; {rows[0].copies} PCA copies of expand --pca (seed 0, 227x227, k=3)")
    print(f"machine: {machine()}; {datetime.date.today().isoformat()}; {seconds:.0f} s")
    print()
    print(
        "| mode | scale | std | identical | median MAE | p99 MAE | p99 \\|change\\| "
        "| newly clipped | meets criteria |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        p = r.settings
        print(
            f"| {p.mode} | {p.scale} | {p.std:g} | {r.identical:.1f} % | {r.median_mae:.2f} "
            f"| {r.p99_mae:.2f} | {r.p99_change:.0f} | {r.newly_clipped:.2f} % "
            f"| {'yes' if r.ok else 'no'} |"
        )


if __name__ == "__main__":
    main()
