"""The import rules between the parts (docs/architecture.md), enforced.

Every import statement of the source tree, lazy ones inside functions included, is read from
the syntax tree and resolved to a module name; a subprocess then imports the models with
Amaranth, cocotb, rtl, sim and fpga made unimportable and runs a golden model and a cost
estimate, so the rule holds at run time too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HDL = ("amaranth", "cocotb", "cocotb_tools")
#: module prefix -> module prefixes it must never import
RULES: dict[str, tuple[str, ...]] = {
    "peforge.models": (*HDL, "peforge.rtl", "peforge.sim", "peforge.fpga"),
    "peforge.rtl": ("peforge.models", "peforge.sim", "peforge.fpga", "cocotb", "cocotb_tools"),
    "peforge.workloads": (*HDL, "peforge.rtl", "peforge.sim", "peforge.fpga"),
    # the pure core: specs, formats, field metadata, geometry, the family table
    "peforge.formats": (*HDL, "peforge.rtl", "peforge.sim", "peforge.fpga", "peforge.models", "peforge.dse"),
    "peforge.spec": (*HDL, "peforge.rtl", "peforge.sim", "peforge.fpga", "peforge.models", "peforge.dse"),
    "peforge.params": (*HDL, "peforge.rtl", "peforge.sim", "peforge.fpga", "peforge.models", "peforge.dse"),
    "peforge.geometry": (*HDL, "peforge.rtl", "peforge.sim", "peforge.fpga", "peforge.models", "peforge.dse"),
    "peforge.families": (*HDL, "peforge.rtl", "peforge.sim", "peforge.fpga", "peforge.models", "peforge.dse"),
    "peforge.vectorset": (*HDL, "peforge.rtl", "peforge.sim", "peforge.fpga", "peforge.models", "peforge.dse"),
}


def _modules() -> dict[str, Path]:
    dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    out = {}
    for pkg, d in dirs.items():
        for path in (ROOT / d).rglob("*.py"):
            parts = list(path.relative_to(ROOT / d).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            name = ".".join([pkg, *(parts[:-1] if is_pkg else parts)])
            out[name] = path
    return out


def _imports(module: str, path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (``from x import y`` counts x and x.y)."""
    is_pkg = path.name == "__init__.py"
    package = module if is_pkg else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


def _violations() -> list[str]:
    bad = []
    for module, path in sorted(_modules().items()):
        for prefix, banned in RULES.items():
            if module != prefix and not module.startswith(prefix + "."):
                continue
            for name in sorted(_imports(module, path)):
                if any(name == b or name.startswith(b + ".") for b in banned):
                    bad.append(f"{path.relative_to(ROOT)} ({module}) imports {name}")
    return bad


def test_no_part_imports_what_its_layer_may_not():
    assert _violations() == []


def test_the_checker_sees_a_violation(tmp_path):
    fake = tmp_path / "x.py"
    fake.write_text("def f():\n    from ...rtl import mac\n    import amaranth.hdl\n")
    assert {"peforge.rtl", "peforge.rtl.mac", "amaranth.hdl"} <= _imports("peforge.models.cost.x", fake)


_BLOCKED_RUN = """
import sys
BANNED = ("amaranth", "cocotb", "cocotb_tools", "peforge.rtl", "peforge.sim", "peforge.fpga")

class Block:
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BANNED):
            raise ImportError(f"{name} is blocked: models must run without it")
        return None

sys.meta_path.insert(0, Block())
import numpy as np
from peforge.families import FAMILIES
from peforge.models import cost, golden
from peforge.models.cost import energy
for fam in FAMILIES:
    spec = fam.examples[0]
    x = np.random.default_rng(0).standard_normal((2, 8))
    w = np.random.default_rng(1).standard_normal((8, 2))
    assert golden.matmul(spec, x, w).shape == (2, 2)
    assert cost.estimate(spec, "ice40").luts > 0
    assert energy.energy(spec, energy.random_stream(spec, steps=8, batch=1, chain=4, seed=0)).energy_pj_per_mac > 0
print("ok", sorted(m for m in sys.modules if m.split(".")[0] in ("amaranth", "cocotb")))
"""


def test_models_run_with_hdl_tools_unimportable():
    res = subprocess.run([sys.executable, "-c", _BLOCKED_RUN], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip() == "ok []"
