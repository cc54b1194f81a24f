"""Build and run a testbench folder written by ``gen.testbench.write_testbench``.

``simulate(tb_dir, "verilator" | "icarus")`` runs the folder's Makefile (``build-<sim>``,
then ``run-<sim>``) with ``cwd=tb_dir``, logs both steps to ``tb_dir/sim-<sim>.log`` and
parses the testbench's report (``PASS``/``FAIL``, ``CYCLES``, ``MISMATCHES``, per layer
``LAYER`` cycles and ``ACTIONS``: the beats, tiles, nonzero weights and PE steps the RTL's
streams carried). ``trace=True`` runs it with ``TRACE=1``: every signal goes to
``tb_dir/waves.vcd`` (``SimResult.waves``). A failing run names its first mismatching tile
(``SimResult.first_mismatch``), and ``rerun_command`` gives the shell command that runs the
same simulation again, same stalls, with the waveform dump on.
``simulate_cocotb(tb_dir, "icarus" | "verilator")`` runs the folder's ``test_cocotb.py``
(also reachable as ``simulate(tb_dir, "cocotb-icarus")``).

A missing tool raises ``ToolMissing`` naming what installs it; a build that fails, or a run
that ends without a verdict, raises ``SimError`` naming the log. A run that completes with
wrong results is not an exception: ``SimResult.passed`` is False.
"""
from __future__ import annotations

import importlib.util
import re
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from synth import tools
from synth.tools import ToolMissing

__all__ = ["SIMULATORS", "SimResult", "ToolMissing", "SimError", "simulate", "simulate_cocotb",
           "parse_report", "needed_tools", "rerun_command", "ACTION_KEYS", "WAVES"]

#: Names ``simulate`` accepts.
SIMULATORS = ("verilator", "icarus", "cocotb-icarus", "cocotb-verilator")

#: The waveform file a traced run writes into the testbench folder (tb.sv's ``+trace``).
WAVES = "waves.vcd"

_HINT_COCOTB = "pip install 'cocotb~=2.1' (or the project's extra `cosim`)"


class SimError(RuntimeError):
    """A build failed, or a simulation ended without a verdict; the message names the log."""


@dataclass(frozen=True)
class SimResult:
    passed: bool
    cycles: int             # first input handshake to last tile handshake, inclusive; -1 if none
    ideal: int              # steps (beats per input stream)
    log: Path
    z_out: Path             # the computed Z (row-major, one decimal per line)
    seconds_build: float
    seconds_run: float
    latency: int = -1
    mismatches: int = -1    # count reported by the testbench; -1 when it did not report one
    messages: tuple[str, ...] = field(default=())   # MISMATCH / OVERFLOW / TIMEOUT lines
    layer_cycles: tuple[int, ...] = field(default=())  # per layer (LAYER lines), in order
    #: per layer (ACTIONS lines), in order: dicts of ``ACTION_KEYS`` (wbeats, abeats, tiles,
    #: nonzero, steps) counted on the RTL's streams; empty when the testbench printed none
    layer_actions: list[dict[str, int]] = field(default_factory=list)
    stalls: str | None = None   # the run's stall choice (its STALLS line): a seed or "off"
    waves: Path | None = None   # the waveform dump of a traced run

    @property
    def overhead(self) -> int:
        """Cycles beyond the ideal ``steps`` (``LATENCY`` when nothing stalled)."""
        return self.cycles - self.ideal

    @property
    def first_mismatch(self) -> dict | None:
        """The first tile that came out wrong, from ``messages``: ``tile``, ``elements``
        (its wrong values: dicts of ``row``, ``col`` (Z coordinates), ``got``,
        ``expected``; among the first mismatches the testbench prints, so a tile with
        more may be cut short) and ``overflow`` (``got``, ``expected``; None when right);
        None when no tile mismatched (a pass, or a timeout)."""
        wrong = [(int(m[1]), m) for m in map(_TILE_MESSAGE.match, self.messages) if m]
        if not wrong:
            return None
        tile = wrong[0][0]
        out = {"tile": tile, "elements": [], "overflow": None}
        for t, m in wrong:
            if t != tile:
                continue
            if m[2] is not None:
                out["elements"].append({"row": int(m[2]), "col": int(m[3]), "got": int(m[4]),
                                        "expected": int(m[5])})
            else:
                out["overflow"] = {"got": int(m[6]), "expected": int(m[7])}
        return out


_CYCLES = re.compile(r"\bCYCLES (-?\d+) IDEAL (\d+) LATENCY (\d+)")
_MISMATCHES = re.compile(r"\bMISMATCHES (\d+)")
_LAYER = re.compile(r"\bLAYER (\d+) CYCLES (-?\d+)")
#: keys of SimResult.layer_actions, in the order of the ACTIONS line (gen.testbench.ACTION_KEYS)
ACTION_KEYS = ("wbeats", "abeats", "tiles", "nonzero", "steps")
_ACTIONS = re.compile(r"\bACTIONS (\d+) WBEATS (\d+) ABEATS (\d+) TILES (\d+) "
                      r"NONZERO (\d+) STEPS (\d+)")
_MESSAGE = re.compile(r"\b((?:MISMATCH|OVERFLOW|LAST|TIMEOUT) .*)$")
_TILE_MESSAGE = re.compile(r"(?:MISMATCH|OVERFLOW) tile (\d+) (?:row (\d+) col (\d+) got "
                           r"(-?\d+) expected (-?\d+)|got (\d+) expected (\d+))$")
_STALLS = re.compile(r"\bSTALLS (off|\d+)\b")
_BEATS = re.compile(r"localparam integer BEATS = (\d+);")
_SECONDS = re.compile(r"^SECONDS build ([\d.]+) run ([\d.]+)$", re.M)


def parse_report(text: str) -> dict:
    """The testbench's verdict in ``text`` (a log): passed (None if absent), cycles, ideal,
    latency, mismatches, messages, layer_cycles, layer_actions (a list of dicts of
    ``ACTION_KEYS`` per layer, in layer order), stalls (a seed or "off"; None if absent)."""
    verdict = None
    for line in text.splitlines():
        if line.strip() in ("PASS", "FAIL"):
            verdict = line.strip() == "PASS"
    m = _CYCLES.search(text)
    mm = _MISMATCHES.findall(text)
    stalls = _STALLS.search(text)
    messages = []
    for line in text.splitlines():
        hit = _MESSAGE.search(line)
        if hit and hit.group(1).strip() not in messages:
            messages.append(hit.group(1).strip())
    return {
        "passed": verdict,
        "cycles": int(m.group(1)) if m else -1,
        "ideal": int(m.group(2)) if m else -1,
        "latency": int(m.group(3)) if m else -1,
        "mismatches": int(mm[-1]) if mm else -1,
        "messages": tuple(messages),
        "layer_cycles": tuple(int(c) for _, c in sorted(
            ((int(i), c) for i, c in _LAYER.findall(text)))),
        "layer_actions": [dict(zip(ACTION_KEYS, map(int, counts))) for _, counts in sorted(
            {int(hit[0]): hit[1:] for hit in _ACTIONS.findall(text)}.items())],
        "stalls": stalls.group(1) if stalls else None,
    }


def _run(cmd: list[str], cwd: Path, log, timeout: float | None, what: str) -> tuple[int, float]:
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    t0 = time.monotonic()
    try:
        code = tools.run(cmd, cwd=cwd, stdout=log, what=what, log=Path(log.name),
                         timeout=timeout).returncode
    except tools.ToolTimeout as e:
        raise SimError(str(e)) from None
    log.flush()
    return code, time.monotonic() - t0


def _check_dir(tb_dir: Path, needed: str) -> Path:
    tb_dir = Path(tb_dir)
    if not (tb_dir / needed).is_file():
        raise FileNotFoundError(f"{tb_dir / needed} not found: write the testbench first "
                                f"(gen.testbench.write_testbench)")
    return tb_dir


def _ideal_from_tb(tb_dir: Path) -> int:
    try:
        m = _BEATS.search((tb_dir / "tb.sv").read_text())
    except OSError:
        return -1
    return int(m.group(1)) if m else -1


# Simulator reports carry wall times and the machine's install paths; masked so that the log
# written into an output folder is identical between identical runs on any machine.
_LOG_VOLATILE = [
    (re.compile(r"(Walltime|walltime|cpu) [\d.]+ s"), r"\1 # s"),
    (re.compile(r"\((elab|cvt|bld)=[^)]*\)"), "(#)"),
    (re.compile(r"(allocated) [\d.]+ MB"), r"\1 # MB"),
    (re.compile(r"(speed) [\d.]+ \S+/s"), r"\1 #"),
    (re.compile(r"^SECONDS build .*$", re.M), "SECONDS #"),
]


def scrub_log(text: str) -> str:
    for pattern, repl in _LOG_VOLATILE:
        text = pattern.sub(repl, text)
    for prefix, name in ((sys.prefix, "$VENV"), (sys.base_prefix, "$PYTHON")):
        text = text.replace(prefix + "/", name + "/")
    return text


def _result(tb_dir: Path, log_path: Path, z_out: Path, build_s: float, run_s: float,
            what: str, waves: Path | None = None) -> SimResult:
    text = scrub_log(log_path.read_text(errors="replace"))
    log_path.write_text(text)
    r = parse_report(text)
    if r["passed"] is None:
        raise SimError(f"{what} ended without PASS or FAIL: see {log_path}")
    ideal = r["ideal"] if r["ideal"] >= 0 else _ideal_from_tb(tb_dir)
    if waves is not None and not waves.is_file():
        raise SimError(f"{what} wrote no {waves.name}, though traced: see {log_path}")
    return SimResult(r["passed"], r["cycles"], ideal, log_path, z_out, build_s, run_s,
                     r["latency"], r["mismatches"], r["messages"], r["layer_cycles"],
                     r["layer_actions"], r["stalls"], waves)


def simulate(tb_dir: Path, simulator: str, *, timeout: float | None = None,
             stalls: int | str | None = None, trace: bool = False) -> SimResult:
    """Build and run the testbench in ``tb_dir`` with ``simulator`` (see ``SIMULATORS``).

    ``timeout`` (seconds) bounds the wall-clock time of each step; the testbench has its own
    cycle limit, so it only matters if a simulator itself hangs. ``stalls`` (a seed, or
    "off") overrides the testbench's back-pressure, as ``make sim-<sim> STALLS=...`` does.
    ``trace`` dumps every signal to ``tb_dir/waves.vcd`` (``make ... TRACE=1``: Verilator
    builds with ``--trace`` into its own folder). Tools come from ``synth.tools.find``
    (overrides ``VERILATOR``, ``IVERILOG``, ``VVP``).
    """
    if simulator.startswith("cocotb-"):
        if trace:
            raise ValueError("trace applies to the Makefile's simulators, verilator and icarus")
        return simulate_cocotb(tb_dir, simulator[len("cocotb-"):], timeout=timeout)
    if simulator not in ("verilator", "icarus"):
        raise ValueError(f"unknown simulator {simulator!r}: choose one of {', '.join(SIMULATORS)}")
    tb_dir = _check_dir(tb_dir, "Makefile")
    found = {name: tools.find(name) for name in needed_tools(simulator)}
    make = found["make"].path
    args = []
    if simulator == "verilator":
        args.append(f"VERILATOR={found['verilator'].path}")
    else:
        args += [f"IVERILOG={found['iverilog'].path}", f"VVP={found['vvp'].path}"]
    if stalls is not None:
        args.append(f"STALLS={stalls}")
    waves = tb_dir / WAVES if trace else None
    if trace:
        args.append("TRACE=1")
        waves.unlink(missing_ok=True)       # the dump must be this run's
    log_path = tb_dir / f"sim-{simulator}.log"
    z_out = tb_dir / "z_out.txt"
    z_out.unlink(missing_ok=True)
    with open(log_path, "w") as log:
        code, build_s = _run([make, "--no-print-directory", f"build-{simulator}", *args],
                             tb_dir, log, timeout, f"{simulator} build")
        if code != 0:
            raise SimError(f"{simulator} build failed (exit {code}): see {log_path}")
        _code, run_s = _run([make, "--no-print-directory", f"run-{simulator}", *args],
                            tb_dir, log, timeout, f"{simulator} simulation")
    return _result(tb_dir, log_path, z_out, build_s, run_s, f"{simulator} simulation", waves)


def rerun_command(tb_dir: str | Path, simulator: str, stalls: str | None) -> str:
    """The shell command that runs one simulation of ``tb_dir`` again (no Python needed),
    with the waveform dump on and the stalls of the run being repeated (``stalls``:
    ``SimResult.stalls``; None: the testbench's default)."""
    if simulator not in ("verilator", "icarus"):
        raise ValueError(f"no Makefile target for {simulator!r}: verilator or icarus")
    return shlex.join(["make", "-C", str(tb_dir), f"sim-{simulator}", "TRACE=1"]
                      + ([f"STALLS={stalls}"] if stalls is not None else []))


def needed_tools(simulator: str) -> tuple[str, ...]:
    """The ``synth.tools`` names a simulator needs, so a run can check them up front."""
    return {"verilator": ("make", "verilator", "perl", "c++"),
            "icarus": ("make", "iverilog", "vvp"),
            "cocotb-icarus": ("iverilog", "vvp"),
            "cocotb-verilator": ("make", "verilator", "perl", "c++")}[simulator]


def simulate_cocotb(tb_dir: Path, simulator: str = "icarus", *,
                    timeout: float | None = None) -> SimResult:
    """Run ``test_cocotb.py`` of ``tb_dir`` with cocotb's runner on ``simulator``.

    Builds into ``tb_dir/sim_build-<simulator>``, logs to ``sim-cocotb-<simulator>.log``;
    Z goes to ``z_out_cocotb.txt``.
    """
    if simulator not in ("verilator", "icarus"):
        raise ValueError(f"unknown cocotb simulator {simulator!r}: choose icarus or verilator")
    tb_dir = _check_dir(tb_dir, "test_cocotb.py")
    if importlib.util.find_spec("cocotb_tools") is None:
        raise ToolMissing(f"cocotb not found: {_HINT_COCOTB}")
    for name in needed_tools(f"cocotb-{simulator}"):
        tools.find(name)
    log_path = tb_dir / f"sim-cocotb-{simulator}.log"
    z_out = tb_dir / "z_out_cocotb.txt"
    z_out.unlink(missing_ok=True)
    with open(log_path, "w") as log:
        code, total = _run([sys.executable, "test_cocotb.py", simulator], tb_dir, log, timeout,
                           f"cocotb ({simulator})")
    m = _SECONDS.search(log_path.read_text(errors="replace"))
    if m is None and code != 0:
        raise SimError(f"cocotb ({simulator}) build or run failed (exit {code}): "
                       f"see {log_path}")
    build_s, run_s = (float(m.group(1)), float(m.group(2))) if m else (total, 0.0)
    return _result(tb_dir, log_path, z_out, build_s, run_s, f"cocotb ({simulator})")
