"""The journal of a partial output: what is written, so that ``--resume`` skips it.

One JSON line per batch of finished outputs, after a first line holding the
run's fingerprint; a torn last line (the process died while writing it) is
ignored.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from augtool.errors import OutputRefused, literal

#: Journal of finished sources inside a partial folder (beside a partial HDF5 file).
JOURNAL_NAME = ".augtool-journal.jsonl"


class Journal:
    """Append-only record of finished outputs, so ``--resume`` can skip them.

    The first line holds the run's fingerprint (a hash of everything that
    determines the bytes); each further line is a JSON list of records that
    were completely written before the line was. A torn last line (the process
    died while writing it) is ignored.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: Any = None

    def start(self, fingerprint: str) -> None:
        """Begin a new journal."""
        self._fh = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 (kept open across calls)
        self._fh.write(json.dumps({"fingerprint": fingerprint}) + "\n")
        self._fh.flush()

    def load(self, fingerprint: str) -> dict[int, dict]:
        """Read the records of an earlier run and continue the journal.

        Raises:
            OutputRefused: If the journal belongs to a run with other options.
        """
        lines = self.path.read_text(encoding="utf-8").splitlines()
        try:
            header = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            header = {}
        if header.get("fingerprint") != fingerprint:
            raise OutputRefused(
                f"{literal(self.path.parent)}: the partial output was made by a run with other "
                "inputs or options; run again without {resume} to start over",
                refs=True,
            )
        done: dict[int, dict] = {}
        for line in lines[1:]:
            try:
                batch = json.loads(line)
            except json.JSONDecodeError:
                break
            for record in batch:
                done[int(record["index"])] = record
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        return done

    def count(self) -> int:
        """How many outputs an earlier run recorded as written (0 if none or unreadable)."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return 0
        written = 0
        for line in lines[1:]:
            try:
                batch = json.loads(line)
            except json.JSONDecodeError:
                break
            written += len(batch) if isinstance(batch, list) else 0
        return written

    def append(self, records: Sequence[dict]) -> None:
        """Record outputs that are completely written."""
        self._fh.write(json.dumps(list(records), ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        """Close the file (it stays on disk); a failed last flush (full disk) is ignored."""
        if self._fh is not None:
            with contextlib.suppress(OSError):  # a torn last line is ignored by load()
                self._fh.close()
            self._fh = None
