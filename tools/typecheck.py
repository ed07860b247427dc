"""Type-check peforge with mypy, mapping the source folders to their package names."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from mypy import build
from mypy.fscache import FileSystemCache
from mypy.main import process_options
from mypy.modulefinder import BuildSource

ROOT = Path(__file__).resolve().parent.parent


def sources() -> list[BuildSource]:
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dirs = conf["tool"]["setuptools"]["package-dir"]
    out = []
    for pkg, d in dirs.items():
        base = ROOT / d
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base).with_suffix("")
            parts = [p for p in rel.parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mod = ".".join([pkg, *parts])
            # nested package dirs mapped elsewhere (peforge/rtl is not a folder; skip duplicates)
            out.append(BuildSource(str(path), mod, None, base_dir=str(ROOT)))
    return out


def main() -> int:
    fscache = FileSystemCache()
    _, options = process_options(["--config-file", str(ROOT / "pyproject.toml"), "-c", "pass"], fscache=fscache)
    srcs = sources()
    res = build.build(srcs, options, fscache=fscache)
    for line in res.errors:
        print(line)
    n = len([e for e in res.errors if ": error:" in e])
    print(f"mypy: {n} error(s) in {len(srcs)} modules")
    return 1 if n else 0


if __name__ == "__main__":
    sys.exit(main())
