"""What a testbench folder's programs are given, computed from the vectors and the layouts.

tb.sv gets these as localparams, test_cocotb.py as ``tb_params.json``, and the data files
(``*.hex``) hold the beats; each is computed here once. Offsets are read from the stream
layouts of ``hdl`` rather than assumed, and checked where the testbench relies on them.
"""
from __future__ import annotations

from amaranth.hdl import Shape
from amaranth.lib import data

from hdl.stimulus import as_layers, tile_beat_rows
from hdl.top import last_beat_latency

from .tbkit import beat_nonzeros, beat_steps

__all__ = ["LAYER_FIELDS", "ACTION_KEYS", "RESET_CYCLES", "MAX_REPORT", "tb_params",
           "layer_table", "mode_steps", "expected_actions", "describe", "data_files"]

#: Reset cycles before the first beat may be taken.
RESET_CYCLES = 2
#: MISMATCH/OVERFLOW/LAST lines printed at most.
MAX_REPORT = 10

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


def _port_bits(c) -> tuple[int, int, data.StructLayout]:
    """Bits of a weights beat and an activations beat, and the tiles layout."""
    return c.weight_beat_bits, c.act_beat_bits, c.tile_layout()


def layer_table(layers) -> list[dict]:
    """One dict of ``LAYER_FIELDS`` per layer: the lines of layers.hex."""
    c = layers[0].config
    out, tiles, z_base, beats = [], 0, 0, 0
    for v in layers:
        tiles += v.tiles
        beats += v.beats
        out.append(dict(TILES_END=tiles, M=v.m, N=v.n, TILE_COLS=-(-v.n // c.cols),
                        Z_BASE=z_base, EXPECT_OVERFLOW=int(v.steps_per_tile > c.max_steps),
                        STEPS=v.steps, STEPS_PER_BEAT=v.steps_per_beat, BEATS_END=beats))
        z_base += v.m * v.n
    return [{k: int(x) for k, x in row.items()} for row in out]


def _beat_fields(c) -> dict:
    """Where a weights beat keeps its values and its mode, read from the stream layouts:
    value ``j`` of PE row ``i`` is the ``VALUE_BITS`` bits at ``VALUES_AT + i*ROW_BITS +
    j*VALUE_BITS`` (``ROW_VALUES`` values per row; a fixed build's ``groups[i].values``, a
    flexible build's ``rows[i].values``); the mode number is ``MODE_BITS`` bits at
    ``MODE_AT`` (``MODE_BITS`` 0: no mode field)."""
    beat = c.weight_beat_layout()
    rows = beat["rows"] if c.flexible else beat["groups"]    # the one name that differs
    mode = beat["mode"] if c.flexible and c.modes.mode_bits else None
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


def mode_steps(c) -> tuple[int, ...]:
    """PE steps a weights beat takes, per mode number (a fixed build: one mode, 1 step)."""
    return tuple(c.steps_per_beat(m) for m in range(len(c.modes)))


def expected_actions(vectors) -> list[dict]:
    """Per layer, what the testbench's ``ACTIONS`` line counts when the RTL takes every beat
    of ``vectors`` (one ``GemmVectors`` or a list): a dict of ``ACTION_KEYS``: ``wbeats``
    and ``abeats`` (beats of each input stream), ``tiles``, ``nonzero`` (nonzero value
    fields over the layer's weights beats: padding and unused fields hold zeros) and
    ``steps`` (the sum over its weights beats of their mode's steps per beat:
    ``GemmVectors.steps``). Counted by the functions test_cocotb.py counts with."""
    layers = as_layers(vectors)
    c = layers[0].config
    p, steps = dict(ROWS=c.rows, **_beat_fields(c)), mode_steps(c)
    return [dict(wbeats=v.beats, abeats=len(v.act_beats), tiles=v.tiles,
                 nonzero=sum(beat_nonzeros(b, p) for b in v.weight_beats),
                 steps=sum(beat_steps(b, p, steps) for b in v.weight_beats))
            for v in layers]


def tb_params(layers) -> dict:
    """tb.sv's localparams, by name and in its order: sizes, widths, the cycle limits and
    where a weights beat keeps its values and mode."""
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
    work = RESET_CYCLES + max(steps, n_tiles * c.tile_beats) + n_tiles + latency
    # the limit depends on the stalls, chosen at run time: both values are baked in
    limits = dict(MAX_CYCLES_NO_STALLS=1000 + work * 2, MAX_CYCLES_STALLS=1000 + work * 16)
    if limits["MAX_CYCLES_STALLS"] >= 1 << 31:
        raise ValueError(f"{steps} steps are too many for the testbench's 32-bit cycle "
                         f"counter: split the GEMM")
    p = dict(
        LAYERS=len(layers), Z_TOTAL=sum(v.m * v.n for v in layers), ROWS=c.rows,
        COLS=c.cols, TILES=n_tiles, TILE_BEATS=c.tile_beats, TILE_ROWS=c.tile_rows,
        BEATS=sum(v.beats for v in layers), STEPS=steps,
        W_BITS=w_bits, A_BITS=a_bits, T_BITS=tiles.size, ACC=c.acc_width, Z_BITS=z_bits,
        LATENCY=latency, **limits, RESET_CYCLES=RESET_CYCLES, MAX_REPORT=MAX_REPORT,
        **_beat_fields(c),
    )
    return {k: int(x) for k, x in p.items()}


def describe(layers, stall_seed) -> str:
    """One line on the build and its layers, for the programs' headers."""
    c = layers[0].config
    what = f"mode set {c.modes}" if c.flexible else f"pattern {c.pattern}"
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


def _hex_lines(words, bits: int) -> str:
    digits = max(1, -(-bits // 4))
    return "".join(f"{w:0{digits}x}\n" for w in words)


def _pack_tile(tile, acc_width: int) -> int:
    mask = (1 << acc_width) - 1
    word = 0
    for e, v in enumerate(tile.reshape(-1).tolist()):
        word |= (int(v) & mask) << (e * acc_width)
    return word


def data_files(layers, p: dict, table: list[dict]) -> dict[str, str]:
    """The four ``*.hex`` files, by name: one stream beat, expected tiles beat or layer per
    line, fixed-width hexadecimal."""
    c = layers[0].config
    expected = [_pack_tile(rows, c.acc_width) for v in layers for t in v.expected_tiles
                for rows in tile_beat_rows(c, t)]
    return {
        "weights.hex": _hex_lines([b for v in layers for b in v.weight_beats], p["W_BITS"]),
        "acts.hex": _hex_lines([b for v in layers for b in v.act_beats], p["A_BITS"]),
        "expected.hex": _hex_lines(expected, p["Z_BITS"]),
        "layers.hex": _hex_lines([sum(row[f] << (32 * i) for i, f in enumerate(LAYER_FIELDS))
                                  for row in table], 32 * len(LAYER_FIELDS)),
    }
