"""augtool: offline, reproducible dataset augmentation for blood-smear images.

The library behind the ``augtool`` command (which is a client of it, in
``augtool.commands``; the library knows no terminal). The public names are
the functions of the commands, keyword for flag (:mod:`augtool.api`), and the
pipeline that makes every output, one image at a time::

    import augtool

    augtool.expand("raw/", "out/", pca=True)             # the paper's 1,676 set
    plan = augtool.dry_run("raw/", target=3000)            # nothing written
    report = augtool.verify("out/")                        # report.ok
    data = augtool.open_dataset("out/", split="train")     # numpy arrays

    pipe = augtool.Pipeline.paper()                        # or augtool.load_recipe("curator")
    sample = pipe.apply(image, "rotate", seed=0, source=sha256, copy=3, size=227)

docs/api.md has the whole of it. Importing ``augtool`` imports nothing else:
each name is imported when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AugtoolError",
    "Dataset",
    "DryRun",
    "ExpandSummary",
    "InputError",
    "OptionError",
    "OutputError",
    "Pipeline",
    "Sample",
    "StepType",
    "Targets",
    "VerifyReport",
    "__version__",
    "check_test_read",
    "cut_cells",
    "dry_run",
    "expand",
    "load_image_folder",
    "load_recipe",
    "open_dataset",
    "preview",
    "record_test_read",
    "report",
    "synthesize",
    "verify",
]

#: Where each public name is defined (imported on first use).
_HOME = {
    "expand": "augtool.api",
    "dry_run": "augtool.api",
    "verify": "augtool.api",
    "cut_cells": "augtool.api",
    "synthesize": "augtool.api",
    "preview": "augtool.api",
    "report": "augtool.tools.dataset_report",
    "open_dataset": "augtool.store.dataset",
    "load_image_folder": "augtool.tools.image_folder",
    "Dataset": "augtool.store.dataset",
    "check_test_read": "augtool.store.ledger",
    "record_test_read": "augtool.store.ledger",
    "Pipeline": "augtool.pipeline.core",
    "Sample": "augtool.pipeline.core",
    "load_recipe": "augtool.pipeline.core",
    "StepType": "augtool.pipeline.steps",
    "Targets": "augtool.ops.targets",
    "ExpandSummary": "augtool.engine.expand",
    "DryRun": "augtool.engine.dry_run",
    "VerifyReport": "augtool.engine.verify",
    "AugtoolError": "augtool.errors",
    "InputError": "augtool.errors",
    "OptionError": "augtool.errors",
    "OutputError": "augtool.errors",
}


#: Public names whose definition is named otherwise at home.
_ALIAS = {"report": "write_report"}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'augtool' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), _ALIAS.get(name, name))
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # for type checkers and IDEs only
    from augtool.api import cut_cells, dry_run, expand, preview, synthesize, verify
    from augtool.engine.dry_run import DryRun
    from augtool.engine.expand import ExpandSummary
    from augtool.engine.verify import VerifyReport
    from augtool.errors import AugtoolError, InputError, OptionError, OutputError
    from augtool.ops.targets import Targets
    from augtool.pipeline.core import Pipeline, Sample, load_recipe
    from augtool.pipeline.steps import StepType
    from augtool.store.dataset import Dataset, open_dataset
    from augtool.store.ledger import check_test_read, record_test_read
    from augtool.tools.dataset_report import write_report as report
