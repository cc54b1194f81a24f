"""What the generator and the cocotb test compute the same way, written once.

Pure Python without imports, so that hss-gen imports it (``gen.testbench``) and copies it
verbatim into each testbench folder beside ``test_cocotb.py``, which runs from there with
only cocotb installed. tb.sv does the same in Verilog: its functions ``xorshift``,
``stall_seed_of``, ``beat_nonzeros``, ``beat_steps`` and its tile check are the Verilog
twins of the functions here, and the tests hold the two to the same results.

``p`` is a folder's ``tb_params.json`` ``params`` (tb.sv's localparams, by the same names);
``layer`` one row of its ``layers`` (a line of layers.hex, tb.sv's ``L_*`` fields).
"""

MASK32 = 0xFFFFFFFF


def xorshift32(x):
    """The testbench's stall generator step (Marsaglia xorshift, 13/17/5)."""
    x ^= (x << 13) & MASK32
    x ^= x >> 17
    x ^= (x << 5) & MASK32
    return x & MASK32


def stall_seeds(stall_seed):
    """Nonzero 32-bit seeds of the weights, activations and tiles stall generators.

    32-bit wrap-around arithmetic, as tb.sv's ``stall_seed_of`` computes them at run time:
    only ``stall_seed mod 2**32`` matters, which is why seeds are limited to 32 bits.
    """
    out = []
    for k in (1, 2, 3):
        x = (stall_seed * 0x9E3779B1 + k * 0x85EBCA77) & MASK32
        for _ in range(4):
            x = xorshift32(x or 0x2545F491)
        out.append(x or 1)
    return tuple(out)


def beat_nonzeros(beat, p):
    """Nonzero weight values of a weights beat: value ``j`` of PE row ``i`` is the
    ``VALUE_BITS`` bits at ``VALUES_AT + i*ROW_BITS + j*VALUE_BITS``."""
    mask = (1 << p["VALUE_BITS"]) - 1
    return sum(1 for i in range(p["ROWS"]) for j in range(p["ROW_VALUES"])
               if (beat >> (p["VALUES_AT"] + i * p["ROW_BITS"] + j * p["VALUE_BITS"])) & mask)


def beat_steps(beat, p, mode_steps):
    """PE steps of a weights beat: ``mode_steps`` of the mode number in its ``MODE_BITS``
    bits at ``MODE_AT``; as the RTL, a mode number outside the set takes one step."""
    mode = (beat >> p["MODE_AT"]) & ((1 << p["MODE_BITS"]) - 1)
    return mode_steps[mode] if mode < len(mode_steps) else 1


def field(word, index, p, signed):
    """Element ``index`` of a tiles beat's ``z`` (``ACC`` bits each, two's complement when
    ``signed``)."""
    acc = p["ACC"]
    f = (word >> (index * acc)) & ((1 << acc) - 1)
    if signed and f >> (acc - 1):
        f -= 1 << acc
    return f


def check_tile_beat(beat, expected, t_idx, tile0, layer, p, signed):
    """Compare tiles beat number ``t_idx`` (``beat``, the whole payload) with its line of
    expected.hex (``expected``); ``tile0``: the first tile of ``layer``.

    Returns ``(z, errors)``: ``z`` the ``(index, value)`` pairs of the beat's elements that
    lie inside the layer's Z (index into z_out.txt; tile overhang cropped), ``errors`` the
    MISMATCH, OVERFLOW and LAST lines tb.sv prints for it, in its order.
    """
    tile, part = divmod(t_idx, p["TILE_BEATS"])
    tile_no = tile - tile0
    cols, z, errors = p["COLS"], [], []
    for e in range(p["TILE_ROWS"] * cols):
        got, exp = field(beat, e, p, signed), field(expected, e, p, signed)
        r = (tile_no // layer["TILE_COLS"]) * p["ROWS"] + part * p["TILE_ROWS"] + e // cols
        c = (tile_no % layer["TILE_COLS"]) * cols + e % cols
        if r < layer["M"] and c < layer["N"]:
            z.append((layer["Z_BASE"] + r * layer["N"] + c, got))
        if got != exp:
            errors.append(f"MISMATCH tile {tile} row {r} col {c} got {got} expected {exp}")
    overflow = (beat >> p["Z_BITS"]) & 1
    if overflow != layer["EXPECT_OVERFLOW"]:
        errors.append(f"OVERFLOW tile {tile} got {overflow} "
                      f"expected {layer['EXPECT_OVERFLOW']}")
    if p["TILE_BEATS"] > 1:
        last = (beat >> (p["Z_BITS"] + 1)) & 1
        if last != (part == p["TILE_BEATS"] - 1):
            errors.append(f"LAST tile {tile} beat {part} got {last} "
                          f"expected {int(part == p['TILE_BEATS'] - 1)}")
    return z, errors
