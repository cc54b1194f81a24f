"""Async Amaranth testbench helpers: stream producers/consumers with random stalls."""
from __future__ import annotations

import contextlib
import random
import warnings

import numpy as np
from amaranth.hdl import Shape, Value
from amaranth.lib import data
from amaranth.sim import Simulator

import hss

__all__ = ["Cycles", "send", "receive", "run", "run_gemms", "unpack", "chunks", "wrap",
           "WEIGHT_KINDS", "value_limits", "weights", "activations", "quiet_padding"]


class Cycles:
    """A cycle counter advanced by a background testbench; ``now`` is the current cycle."""

    def __init__(self):
        self.now = 0

    async def count(self, ctx):
        async for _ in ctx.tick():
            self.now += 1


async def send(ctx, port, beats, *, idle=0.0, seed=0, log=None, cycles=None):
    """Drive ``beats`` (packed ints) on a stream, idling with probability ``idle``."""
    rng = random.Random(seed)
    payload = Value.cast(port.payload)
    for beat in beats:
        while idle and rng.random() < idle:
            ctx.set(port.valid, 0)
            await ctx.tick()
        ctx.set(payload, beat)
        ctx.set(port.valid, 1)
        await ctx.tick().until(port.ready)
        if log is not None:
            log.append(cycles.now if cycles else None)
    ctx.set(port.valid, 0)


async def receive(ctx, port, count, *, stall=0.0, seed=0, log=None, cycles=None,
                  check_stable=False):
    """Take ``count`` beats from a stream, refusing with probability ``stall``.

    ``check_stable``: assert the stream rule that a beat offered (valid) and refused
    stays offered, unchanged, until it is taken.
    """
    rng = random.Random(seed)
    payload = Value.cast(port.payload)
    out = []
    refused = None
    while len(out) < count:
        ready = not (stall and rng.random() < stall)
        ctx.set(port.ready, ready)
        _clk, _rst, valid, value = await ctx.tick().sample(port.valid, payload)
        if check_stable and refused is not None:
            assert valid and value == refused, (
                f"a refused beat was withdrawn or changed: {refused:#x} -> "
                f"{value:#x} (valid={valid})")
        refused = value if valid and not ready else None
        if ready and valid:
            out.append(value)
            if log is not None:
                log.append(cycles.now if cycles else None)
    ctx.set(port.ready, 0)
    return out


def run(dut, testbenches, *, background=(), deadline_cycles=None, timeout_cycles=None,
        vcd=None):
    """Simulate ``dut`` with a 1 ns clock until all testbenches end.

    ``timeout_cycles``: fail (AssertionError) instead of hanging when the testbenches
    have not ended after that many cycles, e.g. when a stream never answers.
    """
    sim = Simulator(dut)
    sim.add_clock(1e-9)
    for tb in background:
        sim.add_testbench(tb.count if isinstance(tb, Cycles) else tb, background=True)
    if timeout_cycles:
        async def watchdog(ctx):
            for _ in range(timeout_cycles):  # (tick().repeat() warns when closed)
                await ctx.tick()
            raise AssertionError(f"simulation still running after {timeout_cycles} cycles")
        sim.add_testbench(watchdog, background=True)
    for tb in testbenches:
        sim.add_testbench(tb)
    if deadline_cycles:
        sim.run_until(deadline_cycles * 1e-9)
    else:
        sim.run()


# -- decoding packed values ---------------------------------------------------------------

def run_gemms(dut, vectors, *, idle=0.0, stall=0.0, seed=0):
    """Stream the beats of all ``vectors`` (GemmVectors) back to back into an accelerator's
    three streams; return (tiles payloads, weight handshake cycles, tiles handshake cycles),
    ``tile_beats`` payloads per tile. Random gaps on both inputs (``idle``), random refusals
    of the tiles (``stall``)."""
    w_beats = [b for v in vectors for b in v.weight_beats]
    a_beats = [b for v in vectors for b in v.act_beats]
    n_tiles = sum(v.tiles for v in vectors) * dut.config.tile_beats
    cycles, w_log, a_log, t_log, result = Cycles(), [], [], [], {}

    async def weights_tb(ctx):
        await send(ctx, dut.weights, w_beats, idle=idle, seed=seed, log=w_log, cycles=cycles)

    async def acts_tb(ctx):
        await send(ctx, dut.activations, a_beats, idle=idle, seed=seed + 1, log=a_log,
                   cycles=cycles)

    async def tiles_tb(ctx):
        result["tiles"] = await receive(ctx, dut.tiles, n_tiles, stall=stall, seed=seed + 2,
                                        log=t_log, cycles=cycles, check_stable=True)

    steps = sum(v.steps for v in vectors)
    run(dut, [weights_tb, acts_tb, tiles_tb], background=[cycles],
        timeout_cycles=50 * (steps + n_tiles) + 100)
    assert w_log == a_log, "the two input streams must advance together"
    return result["tiles"], w_log, t_log


def unpack(word: int, shape):
    """A packed ``word`` as nested Python values following an Amaranth shape: lists for
    ``ArrayLayout``, dicts for ``StructLayout``, ints (sign-extended if signed) otherwise."""
    if isinstance(shape, data.ArrayLayout):
        elem = Shape.cast(shape.elem_shape).width
        return [unpack(word >> (i * elem), shape.elem_shape) for i in range(shape.length)]
    if isinstance(shape, data.StructLayout):
        return {name: unpack(word >> field.offset, field.shape) for name, field in shape}
    s = Shape.cast(shape)
    value = word & ((1 << s.width) - 1)
    if s.signed and s.width and value >> (s.width - 1):
        value -= 1 << s.width
    return value


def chunks(word: int, bits: int, count: int) -> list[int]:
    """``count`` raw ``bits``-wide fields of ``word``, field 0 lowest."""
    return [(word >> (i * bits)) & ((1 << bits) - 1) for i in range(count)]


def wrap(value: int, bits: int, is_signed: bool) -> int:
    """``value`` reduced to a ``bits``-wide (two's complement if signed) integer."""
    value &= (1 << bits) - 1
    if is_signed and value >> (bits - 1):
        value -= 1 << bits
    return value


# -- operands -----------------------------------------------------------------------------

#: Weight matrices the hardware tests run: see :func:`weights`.
WEIGHT_KINDS = ("random", "zeros", "full", "sparser", "extreme")


def value_limits(width: int, is_signed: bool) -> tuple[int, int]:
    return (-(1 << (width - 1)), (1 << (width - 1)) - 1) if is_signed else (0, (1 << width) - 1)


def weights(rng, pattern, m: int, k: int, width: int, is_signed: bool, kind: str = "random"):
    """An (m, k) weight matrix conforming to ``pattern``, projected with ``hss.prune``.

    ``random``: uniform values, pruned. ``zeros``: all zero. ``full``: nonzero values, so
    every kept block is full (G nonzeros per rank-0 block, G non-empty blocks per rank).
    ``sparser``: pruned, then about 60 % of the survivors and some whole rank-0 blocks
    zeroed. ``extreme``: every value the most negative (signed) or the largest (unsigned),
    pruned: the pattern's limit with the largest products.
    """
    lo, hi = value_limits(width, is_signed)
    dtype = hss.dtype_for(width, is_signed)
    if kind == "zeros":
        return np.zeros((m, k), dtype)
    if kind == "extreme":
        W = np.full((m, k), lo if is_signed else hi, dtype)
    elif kind == "full":
        W = rng.integers(lo, hi, (m, k), endpoint=True)
        W = np.where(W == 0, 1, W).astype(dtype)
    else:
        W = rng.integers(lo, hi, (m, k), endpoint=True).astype(dtype)
    W = hss.prune(W, pattern)
    if kind == "sparser":
        keep = rng.random((m, k)) < 0.4
        h0 = pattern.H[0]
        whole_blocks = rng.random((m, -(-k // h0))) >= 0.3
        keep &= np.repeat(whole_blocks, h0, axis=1)[:, :k]
        W = np.where(keep, W, 0).astype(dtype)
    elif kind not in ("random", "full", "extreme"):
        raise ValueError(f"unknown weight kind {kind!r}, expected one of {WEIGHT_KINDS}")
    assert hss.conforms(W, pattern)
    if kind in ("full", "extreme"):  # every complete group holds prod(G) nonzeros
        s = pattern.group_size
        whole = W[:, :k - k % s].reshape(m, -1, s)
        assert ((whole != 0).sum(axis=2) == pattern.slots).all()
    return W


def activations(rng, k: int, n: int, width: int, is_signed: bool, kind: str = "random"):
    """A dense (k, n) activation matrix; ``extreme`` pairs with extreme weights for the
    largest positive products (all min for signed, all max for unsigned)."""
    lo, hi = value_limits(width, is_signed)
    dtype = hss.dtype_for(width, is_signed)
    if kind == "extreme":
        return np.full((k, n), lo if is_signed else hi, dtype)
    return rng.integers(lo, hi, (k, n), endpoint=True).astype(dtype)


@contextlib.contextmanager
def quiet_padding():
    """Silence ``hss.PaddingWarning`` where K is padded on purpose."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        yield
