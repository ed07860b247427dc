"""A test module's scratch directory under ``build/`` (kept out of the source tree and of /tmp,
so a failing test's files can be looked at until the module ends)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Iterator

BUILD = Path(__file__).resolve().parents[1] / "build"


def scratch_dir(name: str) -> Iterator[Path]:
    """A fresh ``build/<name>/<random>/`` directory, removed when the generator resumes: use it
    as ``yield from scratch_dir("test-x")`` in a fixture."""
    path = BUILD / name / uuid.uuid4().hex[:8]
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)
