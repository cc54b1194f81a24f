"""Gate-level energy from toggle counts: map to cells.lib, simulate, count, multiply.

An energy estimate that trusts no energy table of adders or multipliers: the design is
mapped to the gates of ``synth/cells.lib`` exactly as the area flow maps it, the gate
netlist runs under the design's own self-checking testbench (which must still pass: a
gate-level equivalence check for free), every cell output's transitions are counted, and

    energy = sum over cells of  toggles(output) x E_sw(cell)
           + sum over flip-flops of  rising clock edges x E_clk(cell)

with ``E_sw`` and ``E_clk`` the per-cell switching energies of cells.lib (attributes
``switch_energy_fj``, ``clock_energy_fj``).

Energy model (first order; the same text heads cells.lib). Dynamic switching energy of a
45 nm bulk CMOS process at VDD = 1.1 V (the nominal supply of 45 nm libraries such as
FreePDK45/Nangate45), 1/2 VDD^2 = 0.605 fJ/fF:

* ``E_sw = 1/2 VDD^2 (c_t T + F C_pin + C_wire)`` per output transition. A rise draws
  ``C VDD^2`` from the supply and burns half of it, the fall burns the other half: 1/2 C
  VDD^2 per transition on average. ``T`` is the cell's static-CMOS transistor count
  (``synth.TRANSISTORS``); ``c_t`` = 0.15 fF per transistor is the drain diffusion and
  internal-node capacitance that switches with the output (a minimum 45 nm device is
  90-135 nm wide, about 1 fF/um of gate plus diffusion; multi-stage cells switch internal
  nodes with their output, hence the scaling with ``T``); ``F`` = 2 driven input pins (the
  mean fanout of our mapped netlists: 2.07 on a 2x2 4:6,2:4 int8 accelerator) of ``C_pin``
  = 0.7 fF each; ``C_wire`` = 0.5 fF of local wire per net. NAND2: 0.605 x (0.6 + 1.4 +
  0.5) = 1.51 fJ per output toggle.
* ``E_clk = VDD^2 (C_pin + 12 c_t + C_wire)`` per clock cycle and flip-flop, with or without
  a data change: the clock pin and the two internal clock nodes (the local clock inverters
  driving the master and slave transmission gates, about 12 device terminals) and the
  clock's leaf wire rise and fall once every cycle: 1.21 x 3.0 fF = 3.63 fJ, about 2.4
  NAND2 toggles per idle cycle. A register's clock load dominates its energy unless its
  data toggles often.

Not modelled: leakage, short-circuit current, glitches (the simulation is zero-delay, so
each net changes at most once per cycle: a lower bound; in multipliers and adder trees the
glitches of a timed simulation can add tens of percent), the clock tree above the
flip-flops' clock pins, and the inputs' drivers (the testbench). The absolute scale is
good to about 2x; the relative weights of the cells, and so comparisons between designs
mapped to this library, are what it is for. ``energy_load_aware_pj`` repeats the sum with
each net's real fanout in place of ``F`` = 2, as a check of that assumption.

How toggles are counted: Yosys maps (``synth``, ``dfflegalize``, ``dfflibmap``, ``abc
-liberty``: the script of ``synth.area_nand2``), then ``flatten``, ``splitnets`` (Icarus is
about 10x faster on single-bit nets) and ``write_verilog -noattr``: one module named like
the RTL top, with its ports. ``cells_sim.v`` models the cells (zero delay; flip-flops start
unknown, so the reset must initialize what matters). Counters written into the netlist
module sample every cell output at each falling edge of ``clock`` (mid-cycle, when a
zero-delay circuit has settled after the rising edge) and add ``$countones(now ^ before)``:
functional transitions, one at most per net and cycle; transitions from or to ``x`` (before
reset, Icarus) are not counted. A ``final`` block prints the sums. Simulators: Icarus
Verilog (a build of seconds, then about 10 ms per cycle for 21k cells: the better choice up
to a few thousand cycles) or Verilator (built at -O0, 25-60 s for 21k cells, then about
50 us per cycle); their counts differ only by the start-up transitions that Verilator, being
two-state (flip-flops start at 0, not x), counts and Icarus does not: 1 % on a 20-cycle
run, 0.03 % on 2000 cycles.

Nothing here knows about the project: any Verilog, any testbench folder holding ``tb.sv``
(top module ``tb``, instantiating ``top``, reading its data files from the working folder and
printing ``PASS`` or ``FAIL``; a ``CYCLES <n>`` line is reported when present).
"""
from __future__ import annotations

import json
import operator
import os
import re
import shutil
import sys
import time
from pathlib import Path

from . import tools
from .flows import area_mapping, clean_name, summarize_area, top_arg
from .yosys import TRANSISTORS, SynthError, liberty_cells, liberty_path, run_yosys

__all__ = ["toggle_energy", "gate_netlist", "liberty_energies", "cells_sim_path",
           "model_switch_energy_fj", "model_clock_energy_fj", "ToggleError", "VDD",
           "C_PER_TRANSISTOR_FF", "C_PIN_FF", "C_WIRE_FF", "FANOUT", "CLOCK_TERMINALS",
           "SIMULATORS"]

#: The energy model's constants (see the module docstring and the header of cells.lib).
VDD = 1.1                   # V
C_PER_TRANSISTOR_FF = 0.15  # fF switched per transistor of the cell, with its output
C_PIN_FF = 0.7              # fF per driven input pin
C_WIRE_FF = 0.5             # fF of local wire per net
FANOUT = 2                  # driven input pins per net, assumed in cells.lib's E_sw
CLOCK_TERMINALS = 12        # device terminals on a flip-flop's internal clock nodes

SIMULATORS = ("icarus", "verilator")


class ToggleError(SynthError):
    """The gate-level simulation failed to build or run, or the netlist computed wrong
    results (the testbench said FAIL); the message names the log."""


def model_switch_energy_fj(transistors: int, fanout: float = FANOUT) -> float:
    """E_sw of the model: 1/2 VDD^2 (c_t T + F C_pin + C_wire), in fJ per output toggle."""
    return 0.5 * VDD ** 2 * (C_PER_TRANSISTOR_FF * transistors + fanout * C_PIN_FF + C_WIRE_FF)


def model_clock_energy_fj() -> float:
    """E_clk of the model: VDD^2 (C_pin + 12 c_t + C_wire), in fJ per flip-flop and cycle."""
    return VDD ** 2 * (C_PIN_FF + CLOCK_TERMINALS * C_PER_TRANSISTOR_FF + C_WIRE_FF)


def cells_sim_path() -> Path:
    """The behavioural Verilog models of the cells of cells.lib."""
    return Path(__file__).with_name("cells_sim.v")


_PIN = re.compile(r"\bpin\s*\(\s*\"?(\w+)\"?\s*\)\s*\{([^{}]*)\}")


def _attr(body: str, name: str):
    m = re.search(rf"\b{name}\s*:\s*\"?([^;\"]+)\"?\s*;", body)
    return m.group(1).strip() if m else None


def liberty_energies(path: str | os.PathLike | None = None) -> dict:
    """``{cell: {"switch_fj", "clock_fj", "inputs", "outputs", "clock_pin", "sequential"}}``
    from a Liberty file (cells.lib by default): the energy attributes (0.0 when absent)
    and the pins by direction (``clock_pin``: the pin marked ``clock : true``, or None)."""
    text = Path(path or liberty_path()).read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    starts = [(m.start(), m.group(1))
              for m in re.finditer(r"\bcell\s*\(\s*\"?(\w+)\"?\s*\)", text)]
    cells = {}
    for i, (pos, name) in enumerate(starts):
        body = text[pos:starts[i + 1][0] if i + 1 < len(starts) else len(text)]
        inputs, outputs, clock_pin = [], [], None
        for pin, pbody in _PIN.findall(body):
            direction = _attr(pbody, "direction")
            (outputs if direction == "output" else inputs).append(pin)
            if (_attr(pbody, "clock") or "").lower() == "true":
                clock_pin = pin
        head = _PIN.sub("", body)
        cells[name] = {
            "switch_fj": float(_attr(head, "switch_energy_fj") or 0.0),
            "clock_fj": float(_attr(head, "clock_energy_fj") or 0.0),
            "inputs": inputs, "outputs": outputs, "clock_pin": clock_pin,
            "sequential": re.search(r"\b(ff|latch)\s*\(", head) is not None,
        }
    return cells


# ---- 1. the gate netlist ----------------------------------------------------------------

def gate_netlist(verilog: str, top: str, workdir: str | os.PathLike, *, fast: bool = False,
                 timeout: float | None = None) -> dict:
    """Map ``verilog`` to cells.lib as ``synth.area_nand2`` does, flatten, write the netlist.

    Writes ``design.v``, ``cells.lib``, ``netlist.ys``/``.log``, ``area_stat.json`` and
    ``netlist.v`` (one module ``top``, same ports, single-bit internal nets) into
    ``workdir``. Returns ``{"top", "netlist" (path of netlist.v, str), "cells" ({type:
    count}), "cell_count", "flip_flops", "nand2_eq", "transistors"}``; the area figures are
    those ``area_nand2`` reports for the same design. ``fast``: as in ``area_nand2``.
    """
    top = top_arg(top)
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "design.v").write_text(verilog)
    shutil.copyfile(liberty_path(), workdir / "cells.lib")
    run_yosys("\n".join([
        # the area flow (synth.flows.area_nand2): each module mapped on its own
        *area_mapping(top, fast),
        # then one flat module of single-bit nets
        "flatten -noscopeinfo",
        "splitnets",
        "opt_clean",
        "write_verilog -noattr netlist.v",
        "",
    ]), workdir, "netlist", timeout=timeout)
    stat = json.loads((workdir / "area_stat.json").read_text())
    stat.pop("creator", None)
    (workdir / "area_stat.json").write_text(json.dumps(stat, indent=1, sort_keys=True) + "\n")
    lib = liberty_cells(workdir / "cells.lib")
    area = summarize_area(stat, top, lib)
    net = _parse_netlist((workdir / "netlist.v").read_text(), top)
    counts: dict[str, int] = {}
    for typ, _name, _pins in net["cells"]:
        counts[typ] = counts.get(typ, 0) + 1
    unknown = sorted(set(counts) - set(lib))
    if unknown:
        raise SynthError(f"the netlist of {top} has cells that are not in cells.lib: "
                         f"{', '.join(unknown)}; see {workdir / 'netlist.log'}")
    if dict(sorted(counts.items())) != area["total"]["cells"]:
        raise SynthError(f"the flat netlist of {top} has other cells than the mapped design "
                         f"({counts} vs {area['total']['cells']}); see {workdir / 'netlist.log'}")
    return {"top": top, "netlist": str(workdir / "netlist.v"),
            "cells": dict(sorted(counts.items())), "cell_count": sum(counts.values()),
            "flip_flops": area["total"]["ff_count"], "nand2_eq": area["total"]["area"],
            "transistors": area["total"]["transistors"]}


_MODULE = re.compile(r"^module\s+(\\\S+\s|[A-Za-z_][\w$]*)", re.M)
_INSTANCE = re.compile(r"^  ([A-Za-z_][\w$]*) (\\\S+ |[A-Za-z_][\w$]*) \($")
_CONNECTION = re.compile(r"^    \.(\w+)\((.*)\),?$")
_ASSIGN = re.compile(r"^  assign (\S+(?: \[\d+\])?)\s*= (\S+(?: \[\d+\])?)\s*;$")


def _parse_netlist(text: str, top: str) -> dict:
    """The cell instances of a ``write_verilog`` netlist: ``{"cells": [(type, name, {pin:
    expr})], "aliases": [(lhs, rhs)]}`` (single-bit ``assign``s), for the one module ``top``."""
    modules = [clean_name(m.group(1).strip()) for m in _MODULE.finditer(text)]
    if modules != [top]:
        raise SynthError(f"expected one flat module {top!r} in the netlist, found {modules}")
    cells, aliases = [], []
    current = None
    for line in text.splitlines():
        if current is not None:
            m = _CONNECTION.match(line)
            if m:
                current[2][m.group(1)] = m.group(2).strip()
                continue
            if line.strip() == ");":
                cells.append(current)
                current = None
                continue
            raise SynthError(f"unexpected line in a cell instance of the netlist: {line!r}")
        m = _INSTANCE.match(line)
        if m:
            current = (m.group(1), m.group(2).strip(), {})
            continue
        m = _ASSIGN.match(line)
        if m:
            aliases.append((m.group(1), m.group(2)))
    return {"cells": cells, "aliases": aliases}


# ---- 2. the instrumented netlist --------------------------------------------------------

_CONST = re.compile(r"^\d*'[bhdo][0-9a-fA-FxXzZ_]+$")


def _fanouts(net: dict, lib: dict) -> dict[str, int]:
    """Driven input pins per net, through single-bit ``assign`` aliases."""
    parent: dict[str, str] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in net["aliases"]:
        if not _CONST.match(b):
            parent[find(a)] = find(b)
    loads: dict[str, int] = {}
    for typ, _name, pins in net["cells"]:
        for pin in lib[typ]["inputs"]:
            expr = pins.get(pin)
            if expr and not _CONST.match(expr):
                root = find(expr)
                loads[root] = loads.get(root, 0) + 1
    out = {}
    for typ, _name, pins in net["cells"]:
        for pin in lib[typ]["outputs"]:
            expr = pins.get(pin)
            if expr:
                out[expr] = loads.get(find(expr), 0)
    return out


_MAX_ITEMS_PER_LINE = 8


def _instrument(text: str, net: dict, lib: dict, clock: str):
    """The netlist with toggle counters before its ``endmodule``, and the meaning of each
    counter: ``groups`` [(cell type, fanout, nets)], ``clocks`` [(clock expr, {type:
    flip-flops})]."""
    fanout = _fanouts(net, lib)
    groups: dict[tuple[str, int], list[str]] = {}
    clocks: dict[str, dict[str, int]] = {}
    for typ, _name, pins in net["cells"]:
        for pin in lib[typ]["outputs"]:
            expr = pins.get(pin)
            if expr:
                groups.setdefault((typ, fanout[expr]), []).append(expr)
        cp = lib[typ]["clock_pin"]
        if cp:
            expr = pins.get(cp)
            if not expr or _CONST.match(expr):
                continue                  # a flip-flop whose clock never moves
            per = clocks.setdefault(expr, {})
            per[typ] = per.get(typ, 0) + 1
    group_list = sorted(groups.items())
    clock_list = sorted(clocks.items())
    v = ["", "  // ---- toggle counters of synth/toggle.py: not part of the design ----",
         "  reg [63:0] hss_tg_cycles = 64'd0;",
         "  reg hss_tg_first = 1'b1;",
         f"  always @(posedge {clock}) hss_tg_cycles = hss_tg_cycles + 64'd1;"]
    for k, (expr, _per) in enumerate(clock_list):
        v += [f"  reg [63:0] hss_tg_clk_{k} = 64'd0;",
              f"  always @(posedge {expr} ) hss_tg_clk_{k} = hss_tg_clk_{k} + 64'd1;"]
    for g, ((_typ, _f), nets) in enumerate(group_list):
        v += [f"  reg [{len(nets) - 1}:0] hss_tg_now_{g}, hss_tg_was_{g};",
              f"  reg [63:0] hss_tg_n_{g} = 64'd0;"]
    v.append(f"  always @(negedge {clock}) begin")
    for g, ((_typ, _f), nets) in enumerate(group_list):
        lines = [", ".join(f"{n} " for n in nets[i:i + _MAX_ITEMS_PER_LINE])
                 for i in range(0, len(nets), _MAX_ITEMS_PER_LINE)]
        v.append(f"    hss_tg_now_{g} = {{")
        v += [f"      {line}" + ("," if i + 1 < len(lines) else "")
              for i, line in enumerate(lines)]
        v.append("    };")
    # the difference goes through a variable: Icarus 11 miscounts $countones(a ^ b)
    v += [f"    hss_tg_was_{g} = hss_tg_was_{g} ^ hss_tg_now_{g};" for g in range(len(group_list))]
    v.append("    if (!hss_tg_first) begin")
    v += [f"      hss_tg_n_{g} = hss_tg_n_{g} + $countones(hss_tg_was_{g});"
          for g in range(len(group_list))]
    v.append("    end")
    v += [f"    hss_tg_was_{g} = hss_tg_now_{g};" for g in range(len(group_list))]
    v += ["    hss_tg_first = 1'b0;", "  end", "  final begin",
          '    $display("HSS_TOGGLE_CYCLES %0d", hss_tg_cycles);']
    v += [f'    $display("HSS_TOGGLE_CLOCK {k} %0d", hss_tg_clk_{k});'
          for k in range(len(clock_list))]
    v += [f'    $display("HSS_TOGGLE_GROUP {g} %0d", hss_tg_n_{g});'
          for g in range(len(group_list))]
    v += ["  end", ""]
    end = text.rstrip().rfind("endmodule")
    if end < 0:
        raise SynthError("no endmodule in the netlist")
    meaning = {"groups": [(typ, f, len(nets)) for (typ, f), nets in group_list],
               "clocks": [(expr, per) for expr, per in clock_list]}
    return text[:end] + "\n".join(v) + "\n" + text[end:], meaning


# ---- 3. simulation ----------------------------------------------------------------------

_CYCLES = re.compile(r"^\s*CYCLES (-?\d+)", re.M)


def _stall_args(stalls) -> list[str]:
    if stalls is None:
        return []
    if stalls == "off":
        return ["+nostalls"]
    if isinstance(stalls, int) and not isinstance(stalls, bool) and 0 <= stalls < 2 ** 32:
        return [f"+stalls={stalls}"]
    raise ValueError(f"stalls must be None, 'off' or a seed from 0 to 2**32-1, not {stalls!r}")


def _run_step(argv, cwd: Path, log, what: str, timeout, env=None,
              check: bool = True) -> float:
    log.write(f"$ {' '.join(str(a) for a in argv)}\n")
    log.flush()
    t0 = time.monotonic()
    try:
        code = tools.run(argv, cwd=cwd, stdout=log, what=what, log=Path(log.name), env=env,
                         timeout=timeout).returncode
    except tools.ToolTimeout as e:
        raise ToggleError(str(e)) from None
    log.flush()
    if code != 0 and check:
        raise ToggleError(f"{what} failed (exit {code}); log: {log.name}")
    return time.monotonic() - t0


def _simulate(sim_dir: Path, simulator: str, plusargs, timeout, jobs) -> tuple[str, float, float]:
    log_path = sim_dir / f"sim-{simulator}.log"
    sources = ["tb.sv", "netlist_toggle.v", "cells_sim.v"]
    with open(log_path, "w") as log:
        if simulator == "icarus":
            iverilog, vvp = tools.find("iverilog"), tools.find("vvp")
            build = _run_step([*iverilog.argv, "-g2012", "-s", "tb", "-o", "tb.vvp", *sources],
                              sim_dir, log, "iverilog build (gate level)", timeout)
            run = _run_step([*vvp.argv, "-n", "tb.vvp", *plusargs], sim_dir, log,
                            "vvp gate-level simulation", timeout, check=False)
        else:
            found = {n: tools.find(n) for n in ("verilator", "make", "perl", "c++")}
            # Verilator's makefiles refuse some paths: then it builds in a scratch folder
            with tools.build_folder(sim_dir, "hss-toggle-verilator.") as scratch:
                mdir = str(scratch) if scratch is not None else "obj_dir"
                if scratch is None:
                    (sim_dir / mdir).mkdir(exist_ok=True)
                env = tools.child_env({"TMPDIR": str(scratch or sim_dir / mdir)})
                build = _run_step([
                    *found["verilator"].argv,
                    *tools.verilator_flags(jobs=jobs or tools.cores()), "--Mdir", mdir,
                    # -O0: the build of a gate netlist takes 1/6 of the time at -Os, and
                    # the run is still microseconds per cycle
                    "-MAKEFLAGS", f"PYTHON3={sys.executable}", "-MAKEFLAGS", "OPT_FAST=-O0",
                    "-MAKEFLAGS", "OPT_SLOW=-O0", *sources], sim_dir, log,
                    "verilator build (gate level)", timeout, env=env)
                if scratch is not None:
                    (sim_dir / "obj_dir").mkdir(exist_ok=True)
                    shutil.copy2(scratch / "Vtb", sim_dir / "obj_dir" / "Vtb")
            run = _run_step([str(sim_dir / "obj_dir" / "Vtb"), *plusargs], sim_dir, log,
                            "verilator gate-level simulation", timeout, check=False)
    return log_path.read_text(errors="replace"), build, run


# ---- 4. everything ----------------------------------------------------------------------

def toggle_energy(verilog: str, top: str, tb_dir: str | os.PathLike,
                  workdir: str | os.PathLike, *, simulator: str = "icarus",
                  macs: int | None = None, clock: str = "clk", stalls=None,
                  netlist: dict | None = None, fast: bool = False,
                  timeout: float | None = None, jobs: int | None = None) -> dict:
    """Gate-level energy of ``top`` running the testbench in ``tb_dir``.

    ``verilog``/``top``: the RTL, mapped by ``gate_netlist`` into ``workdir/netlist``
    (skipped when ``netlist``, an earlier ``gate_netlist`` result of the same design, is
    given: several workloads share one mapping). ``tb_dir``: a testbench folder (``tb.sv``
    with top module ``tb``, its ``*.hex``/``*.txt`` data files; ``gen.testbench`` writes
    one); it is copied, never written. The simulation runs in ``workdir/sim-<simulator>``.
    ``simulator``: "icarus" or "verilator". ``macs``: the workload's multiply-accumulates as
    the caller counts them (e.g. M*K*N of the dense GEMM), for ``energy_per_mac_pj``.
    ``clock``: the top's clock port (toggles are sampled at its falling edges).
    ``stalls``: None (the testbench's default), "off", or a seed (``+stalls=<seed>``).
    ``timeout``: seconds for each tool run. A missing tool raises ``tools.ToolMissing``;
    a failed build or a testbench FAIL on the netlist raises ``ToggleError``.

    Returns (energies in pJ; per cell type dicts sorted by type):
    ``top``, ``simulator``, ``passed`` (True), ``cycles`` (rising clock edges simulated,
    reset included: the denominator of ``energy_per_cycle_pj``), ``tb_cycles`` (the
    testbench's ``CYCLES``, None if it prints none), ``cells``, ``cell_count``,
    ``flip_flops``, ``nand2_eq``, ``toggles`` ({type: output transitions}),
    ``clock_edges`` ({type: sum over its flip-flops of rising clock edges}),
    ``activity`` (toggles per cell per cycle), ``energy_pj``, ``energy_per_cycle_pj``,
    ``macs``, ``energy_per_mac_pj`` (None without ``macs``), ``energy_by_cell_pj``
    ({type: output toggles + clock}; sums to ``energy_pj``), ``switching_energy_pj``
    (all output toggles), ``clock_energy_pj`` (flip-flop clocks), ``combinational_energy_pj``,
    ``flip_flop_energy_pj`` (flip-flop outputs and clocks), ``energy_load_aware_pj`` (each
    net's own fanout instead of the assumed 2), ``mean_fanout`` (of the cell outputs),
    ``mean_toggled_fanout`` (the same, weighted by toggles),
    ``vdd``, ``energy_fj`` ({type: {"switch", "clock"}}: the cells.lib values used), and
    ``seconds`` ({"synth", "build", "run", "count"}: wall times; the only volatile key,
    left out of the ``toggle.json`` written into ``workdir``).
    """
    if simulator not in SIMULATORS:
        raise ValueError(f"unknown simulator {simulator!r}: choose one of "
                         f"{', '.join(SIMULATORS)}")
    plusargs = _stall_args(stalls)
    tb_dir = Path(tb_dir)
    if not (tb_dir / "tb.sv").is_file():
        raise FileNotFoundError(f"{tb_dir / 'tb.sv'} not found: write the testbench first")
    if macs is not None:
        try:
            positive = operator.index(macs) > 0
        except TypeError:
            positive = False
        if not positive:
            raise ValueError(f"macs must be a positive integer, not {macs!r}")
        macs = operator.index(macs)
    workdir = Path(workdir).resolve()
    if netlist is not None and netlist["top"] != top_arg(top):
        raise ValueError(f"the netlist is of {netlist['top']!r}, not {top!r}")
    # every tool first: a missing one fails before minutes of synthesis
    needed = ("iverilog", "vvp") if simulator == "icarus" else ("verilator", "make", "perl", "c++")
    for name in (("yosys",) if netlist is None else ()) + needed:
        tools.find(name)
    seconds = {}
    t0 = time.monotonic()
    if netlist is None:
        netlist = gate_netlist(verilog, top, workdir / "netlist", fast=fast, timeout=timeout)
    seconds["synth"] = time.monotonic() - t0
    top = netlist["top"]
    lib = liberty_energies()

    t0 = time.monotonic()
    sim_dir = workdir / f"sim-{simulator}"
    if sim_dir.exists():
        shutil.rmtree(sim_dir)
    sim_dir.mkdir(parents=True)
    for f in tb_dir.iterdir():      # tb.sv and its data files; not what a run left there
        if f.is_file() and not re.fullmatch(r"z_out.*\.txt|.*\.log|tb\.vvp", f.name):
            shutil.copyfile(f, sim_dir / f.name)
    shutil.copyfile(cells_sim_path(), sim_dir / "cells_sim.v")
    text = Path(netlist["netlist"]).read_text()
    net = _parse_netlist(text, top)
    if not re.search(rf"^\s*input\s+{re.escape(clock)}\s*;", text, re.M):
        raise ValueError(f"{top} has no one-bit input {clock!r} to sample toggles on")
    instrumented, meaning = _instrument(text, net, lib, clock)
    (sim_dir / "netlist_toggle.v").write_text(instrumented)
    seconds["count"] = time.monotonic() - t0

    log, seconds["build"], seconds["run"] = _simulate(sim_dir, simulator, plusargs, timeout,
                                                      jobs)
    t0 = time.monotonic()
    verdict = [line.strip() for line in log.splitlines() if line.strip() in ("PASS", "FAIL")]
    log_path = sim_dir / f"sim-{simulator}.log"
    if not verdict:
        raise ToggleError(f"the gate-level simulation of {top} ended without PASS or FAIL; "
                          f"log: {log_path}")
    if verdict[-1] != "PASS":
        raise ToggleError(f"the gate-level netlist of {top} computed wrong results "
                          f"(testbench FAIL): log: {log_path}")
    found = {}
    for line in log.splitlines():
        m = re.match(r"\s*HSS_TOGGLE_(CYCLES|CLOCK|GROUP)\s+(?:(\d+)\s+)?(\d+)\s*$", line)
        if m:
            found[(m.group(1), int(m.group(2)) if m.group(2) else None)] = int(m.group(3))
    expected = {("CYCLES", None)} | {("CLOCK", k) for k in range(len(meaning["clocks"]))} \
        | {("GROUP", g) for g in range(len(meaning["groups"]))}
    if set(found) != expected:
        raise ToggleError(f"the toggle counters of {top} were not all printed; log: {log_path}")
    cycles = found[("CYCLES", None)]
    m = _CYCLES.search(log)
    tb_cycles = int(m.group(1)) if m else None

    toggles: dict[str, int] = {}
    load_aware_fj = 0.0
    fanout_sum = outputs = toggled_fanout = 0
    for g, (typ, f, n_nets) in enumerate(meaning["groups"]):
        n = found[("GROUP", g)]
        toggles[typ] = toggles.get(typ, 0) + n
        load_aware_fj += n * model_switch_energy_fj(TRANSISTORS.get(typ, 0), f)
        fanout_sum += f * n_nets
        outputs += n_nets
        toggled_fanout += f * n
    clock_edges: dict[str, int] = {}
    for k, (_expr, per) in enumerate(meaning["clocks"]):
        for typ, count in per.items():
            clock_edges[typ] = clock_edges.get(typ, 0) + count * found[("CLOCK", k)]
    switch_fj = {t: n * lib[t]["switch_fj"] for t, n in toggles.items()}
    clock_fj = {t: n * lib[t]["clock_fj"] for t, n in clock_edges.items()}
    load_aware_fj += sum(clock_fj.values())
    types = sorted(set(netlist["cells"]))
    by_cell = {t: (switch_fj.get(t, 0.0) + clock_fj.get(t, 0.0)) / 1000 for t in types}
    total = sum(by_cell.values())
    seq = {t for t in types if lib[t]["sequential"]}
    cell_count = netlist["cell_count"]
    result = {
        "top": top, "simulator": simulator, "passed": True,
        "cycles": cycles, "tb_cycles": tb_cycles,
        "cells": netlist["cells"], "cell_count": cell_count,
        "flip_flops": netlist["flip_flops"], "nand2_eq": netlist["nand2_eq"],
        "toggles": {t: toggles.get(t, 0) for t in types},
        "clock_edges": {t: clock_edges.get(t, 0) for t in types if t in seq},
        "activity": sum(toggles.values()) / (cell_count * cycles) if cell_count and cycles
        else 0.0,
        "energy_pj": total,
        "energy_per_cycle_pj": total / cycles if cycles else 0.0,
        "macs": macs,
        "energy_per_mac_pj": total / macs if macs else None,
        "energy_by_cell_pj": by_cell,
        "switching_energy_pj": sum(switch_fj.values()) / 1000,
        "clock_energy_pj": sum(clock_fj.values()) / 1000,
        "combinational_energy_pj": sum(v for t, v in by_cell.items() if t not in seq),
        "flip_flop_energy_pj": sum(v for t, v in by_cell.items() if t in seq),
        "energy_load_aware_pj": load_aware_fj / 1000,
        "mean_fanout": fanout_sum / outputs if outputs else 0.0,
        "mean_toggled_fanout": toggled_fanout / sum(toggles.values()) if any(toggles.values())
        else 0.0,
        "vdd": VDD,
        "energy_fj": {t: {"switch": lib[t]["switch_fj"], "clock": lib[t]["clock_fj"]}
                      for t in types},
    }
    (workdir / "toggle.json").write_text(json.dumps(result, indent=1) + "\n")
    seconds["count"] += time.monotonic() - t0
    result["seconds"] = {k: round(v, 3) for k, v in seconds.items()}
    return result
