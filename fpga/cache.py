"""Result cache for synthesis and place-and-route, and parallel synthesis of many designs.

A result is stored as one JSON file named by the SHA-256 of its key: the design's content key
(the hash of its Verilog text, see :mod:`.design`), the target or device, the options and the tool
versions.  Writes are atomic (temporary file in the same directory, then ``os.replace``), so
parallel workers and interrupted runs never leave a half-written entry.

The cache lives in ``$PEFORGE_CACHE``, else ``<project>/build/fpga-cache`` when running from a
checkout, else ``~/.cache/peforge/fpga`` (``/tmp`` works too: see :func:`make_workdir`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

if TYPE_CHECKING:
    from .design import DesignLike
    from .synth import SynthReport

__all__ = ["ResultCache", "default_cache_dir", "make_workdir", "synthesize_many"]


def default_cache_dir() -> Path:
    """``$PEFORGE_CACHE``, else ``build/fpga-cache`` of the project checkout, else the user cache."""
    env = os.environ.get("PEFORGE_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    project = Path(__file__).resolve().parent.parent
    if (project / "pyproject.toml").is_file():
        return project / "build" / "fpga-cache"
    return Path.home() / ".cache" / "peforge" / "fpga"


def make_workdir(root: Path, prefix: str) -> Path:
    """A fresh work directory ``root/work/<prefix>-<random>``.

    Any location works, ``/tmp`` included: the tools run inside it and see only relative file
    names, which YoWASP resolves through its ``.`` preopen (it mounts a private directory over
    the absolute path ``/tmp``, so absolute paths there would be invisible to it).
    """
    path = root / "work" / f"{prefix}-{uuid.uuid4().hex[:10]}"
    path.mkdir(parents=True)
    return path


class ResultCache:
    """JSON result files under ``root``, keyed by a dict hashed with SHA-256.

    Parameters
    ----------
    root : Path, optional
        Cache directory (default :func:`default_cache_dir`).
    """

    def __init__(self, root: Path | str | None = None) -> None:
        self._root = Path(root).expanduser().resolve() if root is not None else default_cache_dir()

    @property
    def root(self) -> Path:
        return self._root

    @staticmethod
    def digest(key: Mapping[str, Any]) -> str:
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()

    def path(self, kind: str, key: Mapping[str, Any]) -> Path:
        d = self.digest(key)
        return self._root / kind / d[:2] / f"{d}.json"

    def get(self, kind: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        """The stored result for ``key``, or None (a missing or unreadable entry is a miss)."""
        path = self.path(kind, key)
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if entry.get("key") != json.loads(json.dumps(key, sort_keys=True, default=str)):
            return None  # hash collision or a stale format: treat as a miss
        return entry.get("result")

    def put(self, kind: str, key: Mapping[str, Any], result: Mapping[str, Any]) -> Path:
        """Store ``result`` atomically; return the file written."""
        path = self.path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({"key": key, "result": result}, f, sort_keys=True, indent=1, default=str)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def clear(self, kind: str | None = None) -> int:
        """Delete stored results (of one ``kind`` or all); return how many files went."""
        n = 0
        base = self._root / kind if kind else self._root
        for f in base.rglob("*.json") if base.exists() else []:
            if "work" in f.relative_to(self._root).parts[:1]:
                continue
            f.unlink()
            n += 1
        return n

    def __repr__(self) -> str:
        return f"ResultCache({str(self._root)!r})"


def _synth_one(args: tuple[Any, str, dict[str, Any]]) -> "SynthReport":
    from .synth import synthesize

    design, target, kwargs = args
    return synthesize(design, target, **kwargs)


def synthesize_many(
    designs: Iterable["DesignLike"],
    target: str,
    *,
    jobs: int | None = None,
    progress: bool = True,
    dsp: bool | None = None,
    cache: bool | str | Path | ResultCache = True,
) -> list["SynthReport"]:
    """Synthesise every design for ``target`` in a process pool; results in input order.

    ``jobs`` defaults to the CPU count.  Cached results return at once; a failing design
    raises its :class:`~peforge.fpga.tools.ToolError` after the others finish.
    """
    from .synth import check_target

    check_target(target)
    items: Sequence[Any] = list(designs)
    if isinstance(cache, ResultCache):
        cache = str(cache.root)
    kwargs = {"dsp": dsp, "cache": cache}
    jobs = max(1, jobs or os.cpu_count() or 1)
    results: list[Any] = [None] * len(items)
    errors: list[BaseException] = []

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("synth {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not progress,
        transient=False,
    ) as bar:
        task = bar.add_task(target, total=len(items))
        if jobs == 1 or len(items) <= 1:
            for i, d in enumerate(items):
                results[i] = _synth_one((d, target, kwargs))
                bar.advance(task)
        else:
            with ProcessPoolExecutor(max_workers=min(jobs, len(items))) as pool:
                futures = {pool.submit(_synth_one, (d, target, kwargs)): i for i, d in enumerate(items)}
                for fut in as_completed(futures):
                    try:
                        results[futures[fut]] = fut.result()
                    except BaseException as err:  # collect; raise after the rest finish
                        errors.append(err)
                    bar.advance(task)
    if errors:
        raise errors[0]
    return results
