"""Sweep results on disk: an append-only JSON-lines journal plus an atomically rewritten CSV.

``results.jsonl`` is the source of truth: every finished point is appended as one line by a
single ``write`` on an ``O_APPEND`` descriptor and fsynced, so a killed sweep keeps every
finished row and at worst leaves one torn last line, which :meth:`ResultStore.rows` ignores
(and the next append starts on a fresh line); skipped lines are listed in
:attr:`ResultStore.problems` so callers can say so.  A line that parses but is not a result
row (no ``key``) cannot come from a torn write: it raises
:class:`~peforge.errors.CorruptFileError` naming the file and the line.  A key appended again (a resumed sweep
re-evaluating a point that had an error) replaces its earlier row.  ``results.csv`` (one row per design point, the
union of all columns) is rewritten to a temporary file and renamed over the old one after
every append, so readers never see a half-written CSV.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from ..errors import CorruptFileError

__all__ = ["ResultStore", "atomic_write", "read_csv", "FIRST_COLUMNS"]

FIRST_COLUMNS = ("key", "label", "family", "spec", "target", "options", "status")


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide results from other users
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)  # 'nan', 'inf', '-inf': JSON has no such numbers
    if hasattr(v, "item"):
        return _json_value(v.item())
    return v


def _from_json_value(v: Any) -> Any:
    return float(v) if v in ("nan", "inf", "-inf") else v


def _columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {c: None for c in FIRST_COLUMNS}
    for r in rows:
        seen.update((k, None) for k in r)
    return list(seen)


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_columns(rows), restval="", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue()


def read_csv(path: Path | str) -> list[dict[str, Any]]:
    """Rows of a results CSV with numbers parsed back to int/float (empty cells -> None)."""
    out = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            out.append({k: _parse(v) for k, v in r.items()})
    return out


def _parse(v: str) -> Any:
    if v == "":
        return None
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(v, v)


class ResultStore:
    """The results of one sweep directory (``results.jsonl`` + ``results.csv``)."""

    def __init__(self, directory: Path | str) -> None:
        self.dir = Path(directory)
        self.journal = self.dir / "results.jsonl"
        self.csv = self.dir / "results.csv"
        #: Lines the last :meth:`rows` call skipped (torn or unreadable), one message each.
        self.problems: list[str] = []

    def rows(self) -> list[dict[str, Any]]:
        """One row per key, in first-completion order; a torn line is skipped and a key's last
        complete line wins (a resumed sweep re-evaluates points that had errors)."""
        self.problems = []
        if not self.journal.exists():
            return []
        if self.journal.is_dir():
            raise CorruptFileError(self.journal, "is a directory, expected the sweep's results file")
        rows: dict[str, dict[str, Any]] = {}
        lines = self.journal.read_bytes().split(b"\n")
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                last = number == len(lines)  # no newline after it: the torn line of a killed writer
                self.problems.append(
                    f"{self.journal}, line {number}: {'torn' if last else 'unreadable'} line "
                    f"skipped (its point counts as not done)"
                )
                continue
            if not isinstance(row, dict) or not isinstance(row.get("key"), str):
                raise CorruptFileError(
                    self.journal,
                    "a JSON value that is not a result row (expected an object "
                    "with a 'key' string); the file was edited or damaged",
                    number,
                )
            rows[row["key"]] = {k: _from_json_value(v) for k, v in row.items()}
        return list(rows.values())

    def done_keys(self) -> set[str]:
        return {r["key"] for r in self.rows()}

    def clear(self) -> None:
        for p in (self.journal, self.csv):
            if p.exists():
                p.unlink()

    def append(self, row: dict[str, Any]) -> None:
        """Durably append one row, then refresh the CSV."""
        self.dir.mkdir(parents=True, exist_ok=True)
        line = json.dumps({k: _json_value(v) for k, v in row.items()}, sort_keys=False) + "\n"
        fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size and not self._ends_with_newline():
                line = "\n" + line  # a killed writer left a torn line: start a fresh one
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self.write_csv()

    def _ends_with_newline(self) -> bool:
        with open(self.journal, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"

    def write_csv(self) -> None:
        """Rewrite the CSV (rows sorted by key, so it does not depend on completion order)."""
        atomic_write(self.csv, _csv_text(sorted(self.rows(), key=lambda r: r["key"])))
