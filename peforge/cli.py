"""``peforge`` command line: formats, generate, verify, synth, cost, evaluate, sweep, doctor.

Every per-PE command takes the family as its first word (``peforge generate mac ...``), one
sub-command per family of :data:`peforge.families.FAMILIES`, with the family's spec options,
derived from the spec fields' metadata (:mod:`peforge.params`, :data:`FAMILY_OPTIONS`) and
shared by ``generate``, ``verify``, ``synth``, ``cost`` and ``evaluate``.  A family added with
:func:`peforge.families.extended` gets its commands too, built when first asked for.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from . import errors, params
from . import families as fam_mod
from . import spec as spec_mod
from .paths import output_dir, output_file

__all__ = ["app", "FAMILY_OPTIONS"]


def _click_exceptions() -> tuple[type[BaseException], ...]:
    """Click's own control-flow exceptions (usage errors, Exit, Abort), whichever click typer uses."""
    found: list[type[BaseException]] = [typer.Exit, typer.Abort]
    for module in ("typer._click.exceptions", "click.exceptions"):
        mod = sys.modules.get(module)
        found += [getattr(mod, n) for n in ("ClickException", "Exit", "Abort") if hasattr(mod, n)]
    return tuple(found)


class _ErrorPath(TyperGroup):
    """Root command group: the CLI's one error path.  Any exception a command raises becomes
    one line on stderr and the exit code of its class (:func:`peforge.errors.classify`);
    ``--debug`` (or ``PEFORGE_DEBUG=1``) prints the traceback first."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (SystemExit, GeneratorExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - mapped to a message and an exit code
            if isinstance(exc, _click_exceptions()):
                raise
            message, code = errors.classify(exc)
            if ctx.meta.get("peforge.debug") or os.environ.get("PEFORGE_DEBUG") == "1":
                traceback.print_exception(exc, file=sys.stderr)
            _print_error(message, interrupted=code == errors.ExitCode.INTERRUPTED)
            raise typer.Exit(int(code)) from None


app = typer.Typer(
    help="Design, verify and cost low-precision arithmetic PEs.",
    no_args_is_help=True,
    add_completion=False,
    cls=_ErrorPath,
    epilog="Exit codes: 0 ok, 1 a check failed, 2 bad usage or value, 3 file missing or unwritable, "
    "4 corrupt file, 5 results-directory conflict, 6 results directory locked, 7 external "
    "tool or service failed, 70 internal error, 130 interrupted.",
)


@app.callback()
def _root(
    ctx: typer.Context, debug: bool = typer.Option(False, "--debug", help="Show the Python traceback of an error.")
) -> None:
    """Design, verify and cost low-precision arithmetic PEs."""
    ctx.meta["peforge.debug"] = debug


class _PerFamily(TyperGroup):
    """A per-PE command group (``generate``, ``verify``, ...): one sub-command per family in use
    (:func:`peforge.families.table`).  The commands of :data:`~peforge.families.FAMILIES` are
    registered at import; a family added by :func:`~peforge.families.extended` gets its command
    built from the same recipe (:func:`_family_commands`) when it is asked for."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in fam_mod.names() if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in fam_mod.names():
            group = next(g.typer_instance for g in app.registered_groups if g.name == self.name)
            one = typer.Typer()
            _add_family_command(one, cmd_name, _RECIPES[id(group)])
            command = typer.main.get_command(one)
        return command


generate_app = typer.Typer(help="Generate Verilog + JSON manifest for a PE.", no_args_is_help=True, cls=_PerFamily)
verify_app = typer.Typer(
    help="Run the cocotb/Verilator regression of a PE against its golden model.", no_args_is_help=True, cls=_PerFamily
)
synth_app = typer.Typer(
    help="Synthesise a PE with Yosys (and optionally place and route it).", no_args_is_help=True, cls=_PerFamily
)
cost_app = typer.Typer(help="Analytic area / energy / timing estimate of a PE.", no_args_is_help=True, cls=_PerFamily)
app.add_typer(generate_app, name="generate")
app.add_typer(verify_app, name="verify")
app.add_typer(synth_app, name="synth")
app.add_typer(cost_app, name="cost")
evaluate_app = typer.Typer(
    help="Score a PE's numerical quality on one workload (yours or built in).", no_args_is_help=True, cls=_PerFamily
)
app.add_typer(evaluate_app, name="evaluate")

# Piped output (make run, CI logs) gets a wide console so tables are not truncated to 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=160)
err_console = Console(stderr=True)


def _parameter(option: params.CliOption) -> inspect.Parameter:
    """The typer parameter of one spec-field option (``--x/--no-x`` for a bool field)."""
    decls = [f"{option.flag}/--no-{option.flag[2:]}"] if option.type is bool else [option.flag]
    default = ... if option.required else option.default
    return inspect.Parameter(
        option.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(default, *decls, help=escape(option.help)),
        annotation=option.type,
    )


#: The spec options of every family's per-PE commands, derived from the spec fields' metadata
#: (:mod:`peforge.params`): names, flags, defaults, help and what is allowed are the spec's.
class _Options(dict[str, list[params.CliOption]]):
    """Family name -> its spec options; a family added by :func:`peforge.families.extended` (never
    one of the keys) gets its options derived when asked for, and not kept."""

    def __missing__(self, family: str) -> list[params.CliOption]:
        return params.cli_options(fam_mod.get(family).spec)


FAMILY_OPTIONS: dict[str, list[params.CliOption]] = _Options(
    {f.name: params.cli_options(f.spec) for f in fam_mod.FAMILIES}
)


def _print_error(message: str, interrupted: bool = False) -> None:
    label = "[bold yellow]interrupted:[/]" if interrupted else "[bold red]error:[/]"
    text = message.removeprefix("interrupted: ") if interrupted else message
    err_console.print(f"{label} {escape(text)}", soft_wrap=True)


def _fail(message: str, code: int = 2) -> None:
    _print_error(message)
    raise typer.Exit(code)


def _make_spec(family: str, values: dict[str, Any]) -> spec_mod.Spec:
    names = {o.name for o in FAMILY_OPTIONS[family]}
    try:
        return fam_mod.get(family).spec(**{k: v for k, v in values.items() if k in names})
    except ValueError as err:
        _fail(f"invalid {family} spec: {err}")
        raise  # unreachable


def _family_commands(
    group: typer.Typer,
    extra: list[inspect.Parameter],
    handler: Callable[[spec_mod.Spec, dict[str, Any]], None],
    doc: str,
) -> None:
    """Register one sub-command per family of :data:`~peforge.families.FAMILIES` on ``group``
    with spec options + ``extra``, and keep the recipe for families added later (:class:`_PerFamily`)."""
    _RECIPES[id(group)] = recipe = _Recipe(extra, handler, doc)
    for fam in fam_mod.FAMILIES:
        _add_family_command(group, fam.name, recipe)


class _Recipe(NamedTuple):
    """How a per-PE group makes one family's command: its parameters beyond the spec options,
    its handler and its docstring (``{family}`` filled in)."""

    extra: list[inspect.Parameter]
    handler: Callable[[spec_mod.Spec, dict[str, Any]], None]
    doc: str


#: id(per-PE group) -> the recipe of its family commands.
_RECIPES: dict[int, _Recipe] = {}


def _add_family_command(group: typer.Typer, family: str, recipe: _Recipe) -> None:
    """Register ``family``'s sub-command on ``group``; a family whose spec nests a PE spec
    (``array``) takes the PE's options after ``--pe FAMILY``."""
    extra, handler, doc = recipe
    if getattr(fam_mod.get(family).spec, "nests_pe", False):
        _nesting_command(group, family, extra, handler, doc)
        return

    def command(_family: str = family, **kwargs: Any) -> None:
        handler(_make_spec(_family, kwargs), kwargs)

    signature = inspect.Signature([_parameter(o) for o in FAMILY_OPTIONS[family]] + extra)
    setattr(command, "__signature__", signature)  # noqa: B010 - not a declared attribute of a function
    command.__doc__ = doc.format(family=family)
    group.command(family)(command)


def _pe_option_parser(family: str) -> Any:
    """A click command that parses ``family``'s spec options (the PE options of ``--pe FAMILY``),
    from the same field metadata as the family's own commands."""
    import click

    options: list[click.Parameter] = []
    for o in FAMILY_OPTIONS[family]:
        default = None if o.required else o.default
        if o.type is bool:
            options.append(click.Option([f"{o.flag}/--no-{o.flag[2:]}", o.name], default=default, help=o.help))
            continue
        base = next((t for t in (int, float, str) if o.type in (t, Optional[t])), str)
        options.append(click.Option([o.flag, o.name], type=base, default=default, required=o.required, help=o.help))
    return click.Command(f"--pe {family}", params=options, add_help_option=False)


def _nested_spec(family: str, values: dict[str, Any], rest: list[str]) -> spec_mod.Spec:
    """The spec of a nesting family (``array``): ``--pe`` is a PE family whose options are in
    ``rest``, or a PE spec as JSON (``spec.to_json()``, parsed by the spec's own converter)."""
    import ast

    import click

    pe_text = values["pe"]
    pe: Any
    if pe_text.lstrip().startswith("{"):
        if rest:
            raise ValueError(
                f"--pe takes a PE spec as JSON here, so the options {' '.join(rest)} have no PE to go "
                "to: give either --pe FAMILY with its options, or the whole PE as JSON"
            )
        try:
            pe = json.loads(pe_text)
        except json.JSONDecodeError:
            try:  # a Python dict literal (spec.to_dict() printed) reads too
                pe = ast.literal_eval(pe_text)
            except (ValueError, SyntaxError):
                raise ValueError(f"--pe {pe_text!r}: not a PE spec in JSON (spec.to_json())") from None
    else:
        pe_family = pe_text.strip()
        nesting = [f for f in fam_mod.names() if getattr(fam_mod.get(f).spec, "nests_pe", False)]
        if pe_family in nesting:
            raise ValueError(
                f"--pe {pe_family!r}: an array is built from a PE, allowed "
                f"{', '.join(f for f in fam_mod.names() if f not in nesting)}"
            )
        fam_mod.get(pe_family)  # ValueError naming the allowed families
        try:
            ctx = _pe_option_parser(pe_family).make_context(f"array --pe {pe_family}", list(rest))
        except click.UsageError as err:
            raise ValueError(
                f"PE options of --pe {pe_family}: {err.format_message()} (allowed: the options of "
                f"`peforge generate {pe_family}`)"
            ) from None
        pe = _make_spec(pe_family, dict(ctx.params))
    own = {k: v for k, v in values.items() if k in {o.name for o in FAMILY_OPTIONS[family]} and k != "pe"}
    make: Callable[..., spec_mod.Spec] = fam_mod.get(family).spec
    try:
        return make(pe=pe, **own)
    except ValueError as err:
        _fail(f"invalid {family} spec: {err}")
        raise  # unreachable


def _nesting_command(
    group: typer.Typer,
    family: str,
    extra: list[inspect.Parameter],
    handler: Callable[[spec_mod.Spec, dict[str, Any]], None],
    doc: str,
) -> None:
    """Register the command of a nesting family: its own options, then ``--pe FAMILY`` and the
    PE's options (passed through click's extra arguments)."""

    def command(ctx: typer.Context, **kwargs: Any) -> None:
        # the click context is the command's own first parameter here; handlers that read it
        # (``_CTX`` among ``extra``) get it in their keyword arguments as usual
        handler(_nested_spec(family, kwargs, list(ctx.args)), {**kwargs, "ctx": ctx})

    ctx_param = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)
    signature = inspect.Signature(
        [ctx_param] + [_parameter(o) for o in FAMILY_OPTIONS[family]] + [p for p in extra if p.name != "ctx"]
    )
    setattr(command, "__signature__", signature)  # noqa: B010 - not a declared attribute of a function
    command.__doc__ = doc.format(family=family) + (
        "\n\nThe PE: --pe FAMILY followed by that family's options (those of the same command for FAMILY, "
        "e.g. --pe mac --a e4m3fn --b e4m3fn --acc fp32), or --pe '<PE spec JSON>'."
    )
    group.command(family, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(command)


def _opt(name: str, annotation: Any, default: Any, *decls: str, help: str) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=typer.Option(default, *decls, help=help), annotation=annotation
    )


_JSON = _opt("as_json", bool, False, "--json", help="Print machine-readable JSON.")


# ---- --fmax: pipelining directed by a clock target (peforge.pipelining) ------------------
_FMAX = _opt(
    "fmax",
    Optional[float],
    None,
    "--fmax",
    help="Clock goal in MHz: pick the fewest pipeline registers (--stages; an array: its PE's --stages "
    "and its own --pipeline) whose cost-model Fmax estimate for --target meets it.",
)
_MARGIN = _opt(
    "margin",
    Optional[float],
    None,
    "--margin",
    help="With --fmax: timing margin, a fraction (0.1 = the estimate must reach 1.1x the goal). "
    "Default: the delay model's held-out median error on --target (about 0.13 on ECP5); 0: the bare estimate.",
)
_STRICT = _opt(
    "strict",
    bool,
    False,
    "--strict",
    help="With --fmax: exit 1 (building nothing) when no pipeline depth reaches the goal, and after "
    "--pnr when place and route misses it. Default: build the fastest depth and warn.",
)
_CTX = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)


def _pick_table(pick: Any) -> Table:
    table = Table(
        title=f"--fmax {pick.fmax_goal_mhz:g} MHz on {pick.target} (margin {pick.margin:.0%}: a depth meets at "
        f"{pick.fmax_goal_mhz * (1 + pick.margin):.1f} MHz estimated): estimated Fmax per pipeline depth",
        title_justify="left",
    )
    for col in (*pick.pick.fields, "latency", "est. Fmax MHz", "limited by"):
        table.add_column(col, justify="left" if col == "limited by" else "right")
    for c in pick.candidates:
        mark = "[bold green]" if c is pick.pick else ""
        limit = "accumulate loop" if c.limit.loop else f"segment {c.limit.index + 1}/{c.limit.count}"
        table.add_row(
            *(f"{mark}{v}" for v in c.fields.values()),
            f"{mark}{c.spec.latency}",
            f"{mark}{c.fmax_mhz:.1f}",
            f"{mark}{limit}",
        )
    err = pick.delay_error
    if err.get("median") is not None:
        table.caption = f"delay model vs nextpnr, held out: median {err['median']:.0%}, worst {err['max']:.0%}" + (
            f"; {err['note']}" if err.get("note") else ""
        )
    return table


def _fmax_pick(spec: spec_mod.Spec, kw: dict[str, Any], target: Optional[str]) -> tuple[spec_mod.Spec, Any]:
    """``--fmax``: the picked spec and the :class:`~peforge.pipelining.StagePick` (None without it)."""
    from . import pipelining

    if kw["fmax"] is None:
        if kw["strict"]:
            raise ValueError("--strict set without --fmax: it applies to the --fmax pick only (add --fmax MHZ)")
        if kw["margin"] is not None:
            raise ValueError("--margin set without --fmax: it applies to the --fmax pick only (add --fmax MHZ)")
        return spec, None
    target = target or "ecp5"
    pipelining.check_goal(target, kw["fmax"])
    if kw["margin"] is not None:
        pipelining.check_margin(kw["margin"])
    ctx = kw["ctx"]
    own = pipelining.PIPELINE_FIELDS + pipelining.ARRAY_PIPELINE_FIELDS
    given = [
        o.flag
        for o in FAMILY_OPTIONS[spec.family]
        if o.name in own and getattr(ctx.get_parameter_source(o.name), "name", "DEFAULT") != "DEFAULT"
    ]
    pe = getattr(spec, "pe", None) if getattr(spec, "nests_pe", False) else None
    if pe is not None:  # an array: the PE's options follow --pe FAMILY among the extra arguments
        args = [str(a).split("=", 1)[0] for a in ctx.args]
        given += [
            f"--pe {pe.family} {o.flag}"
            for o in FAMILY_OPTIONS[pe.family]
            if o.name in pipelining.PIPELINE_FIELDS and o.flag in args
        ]
    if given:
        raise ValueError(f"{', '.join(given)} with --fmax: --fmax picks the pipeline depth, give one or the other")
    pick = pipelining.pick_stages(spec, target, kw["fmax"], kw["margin"])
    out = err_console if kw["as_json"] else console
    if not kw["as_json"]:
        console.print(_pick_table(pick))
    style = "green" if pick.met else "yellow"
    out.print(f"[{style}]{escape(pick.message())}[/]", soft_wrap=True)
    if not pick.met and kw["strict"]:
        _fail(
            f"--strict: no pipeline depth reaches --fmax {kw['fmax']:g} on {target} (see above)",
            int(errors.ExitCode.CHECK_FAILED),
        )
    return pick.spec, pick


# ---- generate ---------------------------------------------------------------------------
def _generate(spec: spec_mod.Spec, kw: dict[str, Any]) -> None:
    from . import rtl

    if kw["target"] is not None and kw["fmax"] is None:
        raise ValueError(
            f"--target {kw['target']} set without --fmax: generate reads the target only for the --fmax "
            "pick (add --fmax MHZ)"
        )
    spec, pick = _fmax_pick(spec, kw, kw["target"])
    extra = {"pipelining": pick.to_dict()} if pick is not None else None
    try:
        v_path, m_path = rtl.generate(spec, output_dir(kw["out"], "--out"), extra=extra)
    except ValueError as err:
        _fail(str(err))
    if kw["as_json"]:
        print(json.dumps({"verilog": str(v_path), "manifest": str(m_path), "module": spec.name, **(extra or {})}))
    else:
        console.print(f"[green]wrote[/] {v_path}\n[green]wrote[/] {m_path}")


_family_commands(
    generate_app,
    [
        _opt("out", Path, Path("build/rtl"), "-o", "--out", help="Output directory."),
        _opt(
            "target",
            Optional[str],
            None,
            "--target",
            help="With --fmax: the target whose delay estimate the pick uses (ecp5, ice40, xilinx; default ecp5).",
        ),
        _FMAX,
        _MARGIN,
        _STRICT,
        _JSON,
        _CTX,
    ],
    _generate,
    "Write DIR/<name>.v and DIR/<name>.json for a {family} PE.",
)


# ---- verify -----------------------------------------------------------------------------
def _verify(spec: spec_mod.Spec, kw: dict[str, Any]) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from . import sim
    from .sim.regression import check_request

    check_request(spec, kw["vectors"], kw["seed"])
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} vectors"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err_console,
        disable=kw["as_json"],
    ) as progress:
        task = progress.add_task(f"verify {spec.name}", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = sim.verify(spec, vectors=kw["vectors"], exhaustive=kw["exhaustive"], seed=kw["seed"], progress=report)
    summary = {
        "spec": spec.name,
        "checked": result.checked,
        "mismatches": result.mismatches,
        "seconds": round(result.seconds, 3),
        "build_seconds": round(result.build_seconds, 3),
        "vectors_per_s": round(result.vectors_per_s),
    }
    if kw["as_json"]:
        print(json.dumps(summary))
    else:
        colour = "green" if result.ok else "red"
        console.print(
            f"[{colour}]{spec.name}: {result.checked} vectors checked, {result.mismatches} mismatches, "
            f"{result.vectors_per_s:,.0f} vectors/s simulated; {result.seconds:.1f} s in all "
            f"(Verilator build {result.build_seconds:.1f} s)[/]"
        )
        if result.mismatches:
            console.print(result.report)
    if not result.ok:  # a mismatch, or nothing checked: never a pass
        raise typer.Exit(int(errors.ExitCode.CHECK_FAILED))


_family_commands(
    verify_app,
    [
        _opt("vectors", int, 20000, "--vectors", help="Random vectors (chain steps) to check."),
        _opt("exhaustive", bool, False, "--exhaustive", help="Also check every operand-code pair."),
        _opt("seed", int, 0, "--seed", help="Random seed."),
        _JSON,
    ],
    _verify,
    "Check the Verilator-simulated {family} PE against the golden model.",
)


# ---- synth ------------------------------------------------------------------------------
def _synth(spec: spec_mod.Spec, kw: dict[str, Any]) -> None:
    from . import fpga

    if not kw["pnr"]:
        given = [
            f
            for f, v in (("--device", kw["device"]), ("--seeds", kw["seeds"]), ("--clock-mhz", kw["clock_mhz"]))
            if v is not None
        ]
        if given:
            raise ValueError(
                f"{', '.join(given)} set without --pnr: {'they apply' if len(given) > 1 else 'it applies'} "
                f"only to place and route (add --pnr)"
            )
    if kw["seeds"] is not None and not 1 <= kw["seeds"] <= 64:
        raise ValueError(f"--seeds {kw['seeds']}: allowed 1..64 nextpnr seeds")
    if kw["clock_mhz"] is not None and not 0 < kw["clock_mhz"] < 10_000:
        raise ValueError(f"--clock-mhz {kw['clock_mhz']}: allowed a clock target in MHz, above 0")
    if kw["pnr"]:  # a wrong --target / --device pairing fails before synthesis
        from .fpga.pnr import device_for

        dev = device_for(kw["target"], kw["device"])
        if kw["dsp"] and not dev.has_dsp:
            raise ValueError(
                f"--dsp on device {dev.name} ({dev.part}), which has no DSP blocks: drop --dsp or "
                f"pick a {dev.family} device with DSPs "
                f"({', '.join(d.name for d in fpga.DEVICES.values() if d.family == dev.family and d.has_dsp)})"
            )
    spec, pick = _fmax_pick(spec, kw, kw["target"])
    # nextpnr times towards the goal unless told another clock
    clock_mhz = kw["clock_mhz"] if kw["clock_mhz"] is not None or pick is None else pick.fmax_goal_mhz
    report = fpga.synthesize(spec, kw["target"], dsp=kw["dsp"], widelut=kw["widelut"])  # ToolError: exit 7
    pnr = (
        fpga.place_and_route(
            report, kw["device"], seeds=list(range(1, kw["seeds"] + 1)) if kw["seeds"] else None, clock_mhz=clock_mhz
        )
        if kw["pnr"]
        else None
    )
    data = report.to_dict()
    if pnr is not None:
        data["pnr"] = pnr.to_dict()
    if pick is not None:
        data["pipelining"] = pick.confirmed(pnr.fmax_mhz, pnr.device) if pnr is not None else pick.to_dict()
    if kw["as_json"]:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        fpga.print_report(report, pnr, console=console)
    if pick is not None and pnr is not None:
        met = data["pipelining"]["met"]
        (console if not kw["as_json"] else err_console).print(
            f"[{'green' if met else 'yellow'}]{escape(pick.confirmation(pnr.fmax_mhz, pnr.device))}[/]", soft_wrap=True
        )
        if kw["strict"] and not met:
            raise typer.Exit(int(errors.ExitCode.CHECK_FAILED))


_family_commands(
    synth_app,
    [
        _opt("target", str, "ecp5", "--target", help="ice40, ecp5, xilinx, gowin or generic."),
        _opt("dsp", Optional[bool], None, "--dsp/--no-dsp", help="Allow DSP inference (default: target's default)."),
        _opt(
            "widelut",
            bool,
            False,
            "--widelut",
            help="ECP5: Yosys's wide-LUT (PFU mux) mapping instead of LUT4s only (more LUTs, sometimes faster).",
        ),
        _opt("pnr", bool, False, "--pnr", help="Also place and route with nextpnr and report Fmax."),
        _opt(
            "device",
            Optional[str],
            None,
            "--device",
            help="nextpnr device: ice40 hx8k (default), up5k; ecp5 25k (default), 45k, 85k. A design that does not "
            "fit it is refused before place and route, naming the devices that fit.",
        ),
        _opt("seeds", Optional[int], None, "--seeds", help="Run seeds 1..N (median Fmax reported)."),
        _opt(
            "clock_mhz",
            Optional[float],
            None,
            "--clock-mhz",
            help="Clock target for place and route (default: the --fmax goal, if given).",
        ),
        _FMAX,
        _MARGIN,
        _STRICT,
        _JSON,
        _CTX,
    ],
    _synth,
    "Synthesise a {family} PE and print its resource report.",
)


# ---- cost -------------------------------------------------------------------------------
def _cost(spec: spec_mod.Spec, kw: dict[str, Any]) -> None:
    from .models import cost

    try:
        result = cost.estimate(spec, kw["target"], node_nm=kw.get("node_nm"))
    except (ValueError, RuntimeError) as err:
        _fail(str(err))
    if kw["as_json"]:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        from .models.cost.report import table as cost_table

        console.print(cost_table(result))


_family_commands(
    cost_app,
    [
        _opt("target", str, "ecp5", "--target", help="ice40, ecp5, xilinx, asic45 or asicNN (NN = node in nm)."),
        _opt("node_nm", Optional[int], None, "--node-nm", help="ASIC node in nm (overrides asicNN)."),
        _JSON,
    ],
    _cost,
    "Estimate area, energy and timing of a {family} PE (with held-out error bars).",
)


# ---- evaluate ---------------------------------------------------------------------------
def _evaluate(spec: spec_mod.Spec, kw: dict[str, Any]) -> None:
    from .workloads.evaluate import evaluate

    workload: Any = kw["workload"]
    if kw["inputs"] is not None:
        workload = {"onnx": workload, "inputs": str(kw["inputs"])}
        workload.update({k: kw[k] for k in ("limit", "batch") if kw[k] is not None})
    elif kw["limit"] is not None:
        workload = (
            {"tensors": workload, "rows": kw["limit"]}
            if not workload.endswith(".onnx")
            else {"onnx": workload, "inputs": str(Path(workload).with_suffix(".npz")), "limit": kw["limit"]}
        )
    options = {"mode": kw["simd_mode"]} if kw["simd_mode"] is not None else {}
    # bad values exit 2, missing files 3 (peforge.errors, the CLI's one error path)
    result = evaluate(spec, workload, scaling=kw["scaling"], options=options, base_dir=Path.cwd())
    if kw["as_json"]:
        print(json.dumps(result, default=float))
        return
    table = Table(title=f"{spec.name} on {result['workload']} (scaling {result['scaling']})")
    table.add_column("metric")
    table.add_column("PE", justify="right")
    table.add_column("float baseline", justify="right")
    for k, v in result.items():
        if k in ("workload", "kind", "spec", "scaling") or k.startswith("baseline_"):
            continue
        base = result.get(f"baseline_{k}")
        table.add_row(k, f"{v:.6g}" if isinstance(v, float) else str(v), "" if base is None else f"{base:.6g}")
    console.print(table)


_family_commands(
    evaluate_app,
    [
        _opt(
            "workload",
            str,
            ...,
            "--workload",
            "-w",
            help="Built-in name (gaussian, outliers, llm, mlp, cnn, tiny_lm, ...), a tensor file (.npz, .npy, "
            ".safetensors, directory of .npy), an ONNX model (.onnx) or package.module:function.",
        ),
        _opt(
            "inputs",
            Optional[Path],
            None,
            "--inputs",
            help="ONNX: .npz of input samples (+ 'labels'); default MODEL.npz.",
        ),
        _opt("limit", Optional[int], None, "--limit", help="ONNX: first N samples; tensor files: first N rows of x."),
        _opt("batch", Optional[int], None, "--batch", help="ONNX: samples per run (activation scales are per batch)."),
        _opt(
            "scaling",
            str,
            "pe",
            "--scaling",
            help="pe (the family's own), tensor, channel or blockB, [:pow2|mx|fp32|FORMAT] [+smooth[ALPHA]].",
        ),
        _opt("simd_mode", Optional[str], None, "--simd-mode", help="SIMD: the mode to measure in (e.g. 8x8)."),
        _JSON,
    ],
    _evaluate,
    "Score a {family} PE on one workload (metrics against the float run).",
)


@app.command()
def calibrate(
    jobs: int = typer.Option(1, "--jobs", "-j", help="Parallel Yosys runs."),
    targets: str = typer.Option("generic,ice40,ecp5,xilinx", "--targets", help="Synthesis targets to fit."),
    xilinx_limit: Optional[int] = typer.Option(
        None, "--xilinx-limit", help="Cap the specs per set synthesised for xilinx (default: all)."
    ),
    fmax: bool = typer.Option(
        True, "--fmax/--no-fmax", help="Also place and route the Fmax set (iCE40 hx8k and ECP5-25k)."
    ),
    refit: bool = typer.Option(False, "--refit", help="Only refit from the stored measurements (no synthesis)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Calibration file (default: the shipped one)."),
    arrays: bool = typer.Option(
        False,
        "--arrays",
        help="Calibrate the PE-array composition instead: seeded arrays, targets generic, "
        "ecp5, ice40 (writes models/cost/data/family_array.json).",
    ),
) -> None:
    """Synthesise the cost model's training + held-out sets and refit its coefficients."""
    from .fpga.calibrate import FPGA_TARGETS
    from .fpga.calibrate import calibrate as run_calibration
    from .fpga.calibrate import refit as run_refit

    if jobs < 1:
        raise ValueError(f"--jobs {jobs}: allowed a positive number of parallel Yosys runs")
    if arrays:
        from .fpga.array_calibration import ARRAY_TARGETS, calibrate_arrays

        if targets != "generic,ice40,ecp5,xilinx" or xilinx_limit is not None or not fmax:
            raise ValueError(
                "--arrays calibrates on its own targets (generic, ecp5, ice40): drop --targets, "
                "--xilinx-limit and --no-fmax"
            )
        if out is not None:
            output_file(out, "--out")
        path = calibrate_arrays(targets=ARRAY_TARGETS, jobs=jobs, refit=refit, out=out)
        console.print(f"[green]wrote[/] {path}")
        return
    names = [t for t in targets.split(",") if t]
    bad = [t for t in names if t not in FPGA_TARGETS]
    if bad or not names:
        raise ValueError(f"--targets {targets!r}: allowed a comma-separated list of {', '.join(FPGA_TARGETS)}")
    if xilinx_limit is not None and xilinx_limit < 1:
        raise ValueError(f"--xilinx-limit {xilinx_limit}: allowed a positive number of specs per set")
    if refit:
        ignored = [
            o
            for o, used in (
                ("--jobs", jobs != 1),
                ("--targets", targets != "generic,ice40,ecp5,xilinx"),
                ("--xilinx-limit", xilinx_limit is not None),
                ("--no-fmax", not fmax),
            )
            if used
        ]
        if ignored:
            raise ValueError(
                f"{', '.join(ignored)} with --refit: --refit only refits from the stored measurements "
                f"(no synthesis), drop {'them' if len(ignored) > 1 else 'it'}"
            )
    if out is not None:
        output_file(out, "--out")
    path = (
        run_refit(out=out)
        if refit
        else run_calibration(  # a tool failure exits 7 (central error path)
            targets=tuple(t for t in targets.split(",") if t), xilinx_limit=xilinx_limit, fmax=fmax, jobs=jobs, out=out
        )
    )
    console.print(f"[green]wrote[/] {path}")


# ---- formats, sweep, doctor ---------------------------------------------------------------
@app.command()
def formats(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """Table of the built-in number formats and their facts."""
    from .formats import format_table

    rows = format_table()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="peforge number formats")
    for col in (
        "name",
        "ml_dtypes",
        "bits",
        "E",
        "M",
        "bias",
        "special",
        "max",
        "min_normal",
        "min_subnormal",
        "inf",
        "nan",
    ):
        table.add_column(col, justify="right" if col not in ("name", "ml_dtypes", "special") else "left")
    for r in rows:
        table.add_row(
            r["name"],
            r.get("ml_dtypes") or "-",
            str(r["bits"]),
            str(r["exp_bits"]),
            str(r["man_bits"]),
            str(r["bias"]),
            r["special"],
            f"{r['max']:.6g}",
            f"{r['min_normal']:.6g}",
            f"{r['min_subnormal']:.6g}",
            "yes" if r["has_inf"] else "-",
            "yes" if r["has_nan"] else "-",
        )
    console.print(table)


@app.command()
def sweep(
    space: Optional[Path] = typer.Argument(None, help="Space TOML file (default: the built-in default space)."),
    out: Path = typer.Option(Path("build/dse"), "-o", "--out", help="Results directory."),
    resume: bool = typer.Option(False, "--resume", help="Keep finished results and skip their points."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Discard earlier results in the directory."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="Local worker processes (default: CPU count)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Run on the Dask cluster at this address."),
    dask_local: Optional[int] = typer.Option(None, "--dask-local", help="Run on a new Dask LocalCluster of N workers."),
    synth: bool = typer.Option(False, "--synth", help="Add real Yosys / nextpnr numbers (cached) to every point."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Sweep a design space: cost, throughput, energy and accuracy of every point -> DIR/results.csv."""
    from . import dse

    sp = dse.load_space(space) if space is not None else dse.default_space()
    again = ["peforge sweep"] + ([_quote(space)] if space is not None else []) + ["-o", _quote(out), "--resume"]
    again += [f"--jobs {jobs}"] if jobs else []
    again += [f"--dask-local {dask_local}"] if dask_local else []
    again += [f"--scheduler {scheduler}"] if scheduler else []
    again += ["--synth"] if synth else []
    summary = dse.sweep(
        sp,
        out,
        resume=resume,
        overwrite=overwrite,
        jobs=jobs,
        scheduler=scheduler,
        dask_local=dask_local,
        synth=synth,
        progress=not as_json,
        console=err_console,
        resume_hint=" ".join(again),
    )
    if as_json:
        print(json.dumps(summary.to_dict()))
    else:
        console.print(
            f"[green]{summary.evaluated} point(s) evaluated[/], {summary.skipped} already done, "
            f"{len(summary.invalid)} invalid skipped, {summary.errors} with errors, "
            f"{summary.seconds:.1f} s ({summary.executor}) -> {out / 'results.csv'}"
        )
    if summary.errors:
        failed = [r for r in dse.ResultStore(out).rows() if r.get("status") != "ok"]
        reasons = list(dict.fromkeys(str(r.get("error")) for r in failed))
        err_console.print(
            f"[yellow]warning:[/] {len(failed)} point(s) recorded errors (column 'error' of "
            f"results.csv), e.g. {escape(reasons[0])}" + (f" ({len(reasons)} distinct)" if len(reasons) > 1 else ""),
            soft_wrap=True,
        )
        if summary.errors == summary.evaluated:
            _fail(f"every point evaluated failed ({summary.errors}): {reasons[0]}", int(errors.ExitCode.CHECK_FAILED))


@app.command()
def report(
    out: Path = typer.Argument(Path("build/dse"), help="Results directory of a sweep."),
    objective: Optional[list[str]] = typer.Option(
        None, "--objective", help="Extra Pareto table: 2-3 comma-separated column:min|max (repeatable)."
    ),
    top: int = typer.Option(15, "--top", help="Rows per printed Pareto table."),
) -> None:
    """Pareto tables, plots (PNG + SVG) and a self-contained DIR/report.html of a sweep."""
    from . import dse

    extra = [tuple(dse.parse_objective(o) for o in spec_.split(",")) for spec_ in (objective or [])]
    dse.report(out, console=console, top=top, extra=extra)


@app.command()
def doctor(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """Check every tool peforge needs: version and location; non-zero exit if one is missing."""
    from .doctor import check

    statuses = check()
    if as_json:
        print(json.dumps([s.to_dict() for s in statuses], indent=2))
    else:
        table = Table(title="peforge doctor")
        for col in ("tool", "version", "needs", "found at", "status"):
            table.add_column(col)
        for s in statuses:
            status = "[green]ok[/]" if s.ok else f"[bold red]FAIL[/] {s.note}"
            table.add_row(
                s.name, s.version or "-", f">= {s.minimum}" if s.minimum != "any" else "any", s.location or "-", status
            )
        console.print(table)
    bad = [s for s in statuses if not s.ok]
    if bad:
        err_console.print(
            f"[bold red]doctor: {len(bad)} tool(s) missing or too old:[/] "
            + "; ".join(f"{s.name}: {s.note}" for s in bad)
        )
        raise typer.Exit(1)


fpga_app = typer.Typer(help="Board bitstreams: a PE in an LFSR/signature self-test.", no_args_is_help=True)
app.add_typer(fpga_app, name="fpga")


@fpga_app.command("build")
def fpga_build(
    board: str = typer.Option(..., "--board", help="icebreaker or ulx3s."),
    family: str = typer.Option(
        "mac", "--family", help=f"PE family ({', '.join(fam_mod.names())}; ignored with --spec-json)."
    ),
    a: Optional[str] = typer.Option(None, "--a", help="Operand a format (mac, intmac; default: the spec's)."),
    b: Optional[str] = typer.Option(None, "--b", help="Operand b format."),
    acc: Optional[str] = typer.Option(None, "--acc", help="mac accumulator: fp32, bf16, fp16, ... or exact."),
    spec_json: Optional[str] = typer.Option(None, "--spec-json", help="Full spec as JSON (spec.to_json())."),
    n: int = typer.Option(1024, "--n", help="Self-test length in valid inputs."),
    clock_div_log2: int = typer.Option(2, "--clock-div-log2", help="Run the PE at board clock / 2**k."),
    out: Optional[Path] = typer.Option(None, "--out", help="Build directory (default build/boards/<board>)."),
) -> None:
    """Build a self-test bitstream: LEDs show pass (signature matches the golden model) or fail."""
    from peforge.fpga.board import build_board
    from peforge.fpga.selftest import SelfTestPlan

    try:
        spec = _spec_from_json(spec_json) if spec_json else _board_spec(family, {"a": a, "b": b, "acc": acc})
        if not 1 <= n <= 1 << 20:
            raise ValueError(f"--n {n}: allowed 1..{1 << 20} valid inputs")
        res = build_board(
            board,
            spec,
            plan=SelfTestPlan(n=n, first_every=min(16, n)),
            build_dir=output_dir(out, "--out") if out is not None else None,
            clock_div_log2=clock_div_log2,
        )
    except ValueError as err:
        _fail(str(err))
    console.print(
        f"{res.board}: {res.spec} -> {res.bitstream} ({res.seconds:.1f} s, "
        f"expected signature {res.expected_signature:#x})"
    )


def _board_spec(family: str, given: dict[str, Optional[str]]) -> spec_mod.Spec:
    """``family``'s spec from the options given (the rest at the spec's defaults)."""
    cls = fam_mod.get(family).spec
    fields = {f.name for f, _ in params.params(cls)}
    values = {k: v for k, v in given.items() if v is not None}
    for k in values:
        if k not in fields:
            raise ValueError(
                f"--{k} is not a field of family {family!r} (fields: {', '.join(sorted(fields))}): "
                "give the spec with --spec-json"
            )
    try:
        return cls(**values)
    except TypeError as err:
        raise ValueError(
            f"family {family!r} needs more than --a/--b/--acc ({err}): give the spec with --spec-json"
        ) from None


def _quote(path: Any) -> str:
    import shlex

    return shlex.quote(str(path))


def _spec_from_json(text: str) -> spec_mod.Spec:
    """``--spec-json``: one JSON object as written by ``spec.to_json()``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--spec-json: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"--spec-json: expected a JSON object such as spec.to_json() writes, got {data!r}")
    try:
        return spec_mod.from_dict(data)
    except TypeError as err:
        raise ValueError(f"--spec-json: {err}") from None


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
