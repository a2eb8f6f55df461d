"""Prove that a code change moved no output byte: hashes of reference runs, saved or compared.

Runs ``augtool expand`` from a source tree (``python -m cli`` in that tree, as
a user runs it) on the real data of ``../shared/data`` and hashes what each run
wrote. The reference runs:

* ``paper-1492``: the paper's set, every default (folder);
* ``paper-1676``: the same with ``--pca`` (folder);
* ``paper-1676-h5``: the 1,676 set as one HDF5 file;
* ``curator-folds``: the shipped curator recipe, 5 grouped folds;
* ``albumentations``: a recipe of built-ins and albumentations steps (skipped
  when albumentations is not installed);
* ``detection-voc``: the annotated smears with their VOC boxes;
* ``detection-letterbox``: the same at 416x320, letterboxed.

A folder is hashed file by file; ``augtool.json`` without what records the
moment and the command (``created_utc``, ``command_line``); an HDF5 file by
every dataset's bytes and every attribute but those two. Run it before a
change (``--save before.json``) and after (``--compare before.json``): it exits
1 and lists every file that differs.

Usage:
    python checks/bytes_proof.py --save /tmp/before.json [--tree ../other-checkout]
    python checks/bytes_proof.py --compare /tmp/before.json [--only paper-1492]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: What records when and how a run was started, not what it made.
VOLATILE = ("created_utc", "command_line")
ALBUMENTATIONS_RECIPE = """\
name = "bytes-proof"

[[transform]]
name = "rotate"
rotate_range = [-20.0, 20.0]

[[transform]]
name = "hsv"
albumentations = '''{hsv}'''

[[transform]]
name = "affine"
albumentations = '''{affine}'''
at = "work"

[[transform]]
name = "hue"
"""


def reference_runs(data: Path, work: Path) -> dict[str, list[str]]:
    """The ``augtool expand`` arguments of every reference run (RAW OUT first)."""
    cells, smears = data / "bccd-cells", data / "bccd-smears"
    voc = ["--annotations", str(data / "bccd-annotations"), "--annotation-format", "voc"]
    voc.append("--skip-invalid")  # one BCCD box has no area
    group = ["--group-regex", r"BloodImage_\d+"]
    runs = {
        "paper-1492": [str(cells), "{out}"],
        "paper-1676": [str(cells), "{out}", "--pca"],
        "paper-1676-h5": [str(cells), "{out}.h5", "--pca"],
        "curator-folds": [
            str(cells), "{out}", "--recipe", "curator", "--target", "600", "--size", "128",
            "--folds", "5", *group,
        ],
        "detection-voc": [str(smears), "{out}", *voc, "--factor", "2", "--size", "320", *group],
        "detection-letterbox": [
            str(smears), "{out}", *voc, "--factor", "1.5", "--size", "416x320", "--letterbox",
            *group,
        ],
    }  # fmt: skip
    recipe = albumentations_recipe(work)
    if recipe is not None:
        runs["albumentations"] = [
            str(cells), "{out}", "--recipe", str(recipe), "--target", "400", "--size", "128"
        ]  # fmt: skip
    return runs


def albumentations_recipe(work: Path) -> Path | None:
    """A recipe mixing built-ins with albumentations steps, or None without albumentations."""
    os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
    try:
        import albumentations as A
    except ImportError:
        return None
    path = work / "albumentations.toml"
    hsv = json.dumps(A.to_dict(A.HueSaturationValue(p=1.0)))
    affine = json.dumps(A.to_dict(A.Affine(rotate=(-30, 30), scale=(0.9, 1.1), p=1.0)))
    path.write_text(ALBUMENTATIONS_RECIPE.format(hsv=hsv, affine=affine), encoding="utf-8")
    return path


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def hash_recipe_file(path: Path) -> str:
    """``augtool.json`` without its volatile keys."""
    recorded = json.loads(path.read_text(encoding="utf-8"))
    for key in VOLATILE:
        recorded.pop(key, None)
    return sha256(json.dumps(recorded, sort_keys=True).encode())


def hash_folder(out: Path) -> dict[str, str]:
    """Every file of a folder output by relative path."""
    return {
        p.relative_to(out).as_posix(): (
            hash_recipe_file(p) if p.name == "augtool.json" else sha256(p.read_bytes())
        )
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def hash_hdf5(path: Path) -> dict[str, str]:
    """Every dataset's bytes and every attribute (volatile ones aside) of an HDF5 output."""
    import h5py
    import numpy as np

    found: dict[str, str] = {}
    with h5py.File(path, "r") as fh:

        def visit(name: str, obj: object) -> None:
            if isinstance(obj, h5py.Dataset):
                value = np.asarray(obj[()])
                if value.dtype.kind == "O":  # text: the strings, not the pointers to them
                    text = [v.decode() if isinstance(v, bytes) else str(v) for v in value.flat]
                    found[name] = sha256(json.dumps(text).encode())
                else:
                    found[name] = sha256(np.ascontiguousarray(value).tobytes())
            for key, value in obj.attrs.items():  # type: ignore[attr-defined]
                if key not in VOLATILE:
                    found[f"{name}@{key}"] = sha256(repr(value).encode())

        visit("/", fh)
        fh.visititems(visit)
    return found


def run_set(tree: Path, name: str, args: list[str], work: Path) -> tuple[dict[str, str], float]:
    """Run one reference set from ``tree``; its hashes and wall seconds."""
    out = work / name
    argv = [a.replace("{out}", str(out)) for a in args]
    cmd = [sys.executable, "-m", "cli", "expand", *argv, "--quiet", "--workers", "2"]
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(tree), "NO_ALBUMENTATIONS_UPDATE": "1"}
    done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{name}: augtool expand failed ({done.returncode}):\n{done.stderr}")
    target = Path(argv[1])
    return (hash_hdf5(target) if target.suffix == ".h5" else hash_folder(target)), seconds


def digest(hashes: dict[str, str]) -> str:
    """One hash of a whole set."""
    return sha256(json.dumps(hashes, sort_keys=True).encode())[:16]


def differences(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Files missing, new or changed between two hashings of one set."""
    lines = [f"  missing now: {k}" for k in sorted(set(before) - set(after))]
    lines += [f"  new: {k}" for k in sorted(set(after) - set(before))]
    lines += [f"  changed: {k}" for k in sorted(set(before) & set(after)) if before[k] != after[k]]
    return lines


def main() -> int:
    """Run the reference sets; save or compare their hashes; 1 when any byte differs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=REPO, help="source tree to run augtool from")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--save", type=Path, help="write the hashes to this JSON file")
    parser.add_argument("--compare", type=Path, help="compare with hashes saved before")
    parser.add_argument("--only", action="append", help="run only this set (repeatable)")
    args = parser.parse_args()
    if not (args.data / "bccd-cells").is_dir():
        raise SystemExit(f"{args.data}: no bccd-cells here; give --data")
    saved = json.loads(args.compare.read_text()) if args.compare else None
    results: dict[str, dict[str, str]] = {}
    failed = False
    with tempfile.TemporaryDirectory(prefix="bytes-proof-") as tmp:
        work = Path(tmp)
        for name, argv in reference_runs(args.data, work).items():
            if args.only and name not in args.only:
                continue
            hashes, seconds = run_set(args.tree.resolve(), name, argv, work)
            results[name] = hashes
            verdict = ""
            if saved is not None:
                if name not in saved:
                    verdict = "  (not in the saved hashes)"
                else:
                    lines = differences(saved[name], hashes)
                    verdict = "  same bytes" if not lines else f"  DIFFERS in {len(lines)} file(s)"
                    if lines:
                        failed = True
                        print("\n".join(lines[:20]))
            print(f"{name:22s} {len(hashes):5d} files  {digest(hashes)}  {seconds:6.1f} s{verdict}")
    if args.save:
        args.save.write_text(json.dumps(results, indent=1, sort_keys=True))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
