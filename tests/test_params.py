"""Spec fields declare their limits once (peforge.params): validation, CLI options and the
design-space checker all come from that declaration, so they cannot drift apart."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import pytest
from typer.testing import CliRunner

from peforge import params
from peforge.cli import FAMILY_OPTIONS, app
from peforge.dse.space import Space
from peforge.families import FAMILIES
from peforge.spec import LutSpec, MinifloatMacSpec, ShiftAddSpec, Spec

runner = CliRunner()
#: The commands that take a spec: each has one sub-command per family with the spec's options.
PER_PE_COMMANDS = ("generate", "verify", "synth", "cost", "evaluate")


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.name)
def test_cli_options_are_the_spec_fields(fam):
    fields = dataclasses.fields(fam.spec)
    opts = {o.name: o for o in FAMILY_OPTIONS[fam.name]}
    assert list(opts) == [f.name for f in fields]
    for f in fields:
        o = opts[f.name]
        assert o.flag == "--" + f.name.replace("_", "-")
        if f.default is dataclasses.MISSING:
            assert o.required
        else:  # the CLI's default is the spec's (as the CLI spells it)
            assert o.default == (f.default if not isinstance(f.default, int) or o.type is not str else str(f.default))
            assert fam.spec(**{**_required(fam), f.name: o.default}) == fam.spec(**_required(fam))
    for command in PER_PE_COMMANDS:
        res = runner.invoke(app, [command, fam.name, "--help"], env={"COLUMNS": "250"})
        assert res.exit_code == 0, (command, res.output)
        for o in opts.values():
            assert o.flag in res.output, (command, o.flag)


def _required(fam):
    """Values of the spec's required fields (those of its first example)."""
    ex = fam.examples[0]
    return {f.name: getattr(ex, f.name) for f in dataclasses.fields(fam.spec) if f.default is dataclasses.MISSING}


def test_shiftadd_fields_the_spec_requires_are_required_options():
    required = {o.name for o in FAMILY_OPTIONS["shiftadd"] if o.required}
    assert required == {"act", "weight", "mode"}
    with pytest.raises(TypeError):
        ShiftAddSpec()  # type: ignore[call-arg]
    res = runner.invoke(app, ["cost", "shiftadd", "--weight", "pot4", "--mode", "pot"])
    assert res.exit_code == 2 and "Missing option '--act'" in res.output


def _static_int_fields():
    for fam in FAMILIES:
        for f, p in params.params(fam.spec):
            if isinstance(p.lo, int) and isinstance(p.hi, int) and not p.needs:
                yield pytest.param(fam, f.name, p.lo, p.hi, id=f"{fam.name}.{f.name}")


@pytest.mark.parametrize("fam, name, lo, hi", list(_static_int_fields()))
def test_integer_ranges_checked_and_named(fam, name, lo, hi):
    base = _required(fam)
    for bad in (lo - 1, hi + 1, True, 2.0):
        with pytest.raises(ValueError) as err:
            fam.spec(**base, **{name: bad})
        assert f"{name}={bad!r}" in str(err.value)
        if not isinstance(bad, bool) and isinstance(bad, int):
            assert f"{lo}..{hi}" in str(err.value)


def test_choices_and_converters_name_field_value_and_allowed():
    with pytest.raises(ValueError, match=r"mult='lmul2' is not allowed: use one of \('exact', 'lmul'\)"):
        MinifloatMacSpec(mult="lmul2")
    with pytest.raises(ValueError, match=r"subnormals=1 must be True or False"):
        MinifloatMacSpec(subnormals=1)
    with pytest.raises(ValueError, match=r"acc=e4m3fn must use the ieee"):
        MinifloatMacSpec(acc="e4m3fn")
    # a bound that reads other fields: acc_bits >= the step sum's width
    with pytest.raises(ValueError, match=r"acc_bits=7 is out of range: allowed integers 8\.\.64"):
        LutSpec("int4", 2, group=4, acc_bits=7)  # 4 * (-8..7) * (-2..1) = -56..64: 8 bits
    assert LutSpec("int4", 2, group=4, acc_bits=8).width == 8
    # a converted field reads as what it converts to (typed Converted[FloatFormat, ...])
    assert MinifloatMacSpec("e5m2").a.name == "e5m2" and MinifloatMacSpec().acc_format.bits == 32


def test_cli_shows_what_is_allowed():
    res = runner.invoke(app, ["generate", "mac", "--help"], env={"COLUMNS": "250"})
    assert "1..64" in res.output and "exact, lmul" in res.output
    res = runner.invoke(app, ["generate", "mac", "--mult", "nope"])
    assert res.exit_code == 2 and "mult='nope'" in res.output and "lmul" in res.output


def test_evaluate_checks_spec_options_against_the_metadata():
    """``peforge evaluate`` takes its spec options from the metadata like the other per-PE
    commands: same names, same checks, before any workload is read."""
    res = runner.invoke(app, ["evaluate", "mac", "--mult", "nope", "-w", "gaussian"])
    assert res.exit_code == 2 and "mult='nope'" in res.output and "lmul" in res.output
    res = runner.invoke(app, ["evaluate", "intmac", "--lanes", "65", "-w", "gaussian"])
    assert res.exit_code == 2 and "lanes=65 is out of range: allowed integers 1..64" in res.output
    res = runner.invoke(app, ["evaluate", "shiftadd", "--weight", "pot4", "--mode", "pot", "-w", "gaussian"])
    assert res.exit_code == 2 and "Missing option '--act'" in res.output


def test_field_without_metadata_is_refused():
    @dataclass(frozen=True)
    class Bare(Spec):
        lanes: int = 1
        family: ClassVar[str] = "bare"

    with pytest.raises(TypeError, match=r"Bare\.lanes declares no limits"):
        Bare()


def test_space_checks_each_axis_value_against_the_metadata():
    space = Space(
        pes=[{"family": "mac", "lanes": [1, 100], "mult": ["exact", "nope"]}], targets=["ice40"], workloads=["gaussian"]
    )
    points, invalid = space.expand()
    assert len(points) == 1 and len(invalid) == 3
    reasons = {(i.params["lanes"], i.params["mult"]): i.reason for i in invalid}
    assert "lanes=100 is out of range: allowed integers 1..64" in reasons[(100, "exact")]
    assert "mult='nope'" in reasons[(1, "nope")]
    _, invalid = Space(pes=[{"family": "mac", "lane": 2}], targets=["ice40"], workloads=["gaussian"]).expand()
    assert "lane: not a parameter of family 'mac'" in invalid[0].reason and "'lanes'" in invalid[0].reason
