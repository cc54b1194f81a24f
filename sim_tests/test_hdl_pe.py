"""PE (and its Multipliers / AdderTree / Accumulator parts) against ``hss.step``, step by step.

Each step carries one compressed weight group and one dense activation group. The
``selected`` register must equal ``step.selected`` one cycle after the step is sampled,
``partial`` must equal ``step.partial`` two cycles later, and the accumulated ``sum`` at the
step carrying ``last`` must equal the dot product of the tile's weight row and activation
column (``hss.matmul``). Tiles of every weight kind run back to back.
"""
import gc
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from amaranth.hdl import UnusedElaboratable, Value
from amaranth.sim import Simulator

import hss
from hdl.layouts import pack_group, pack_values
from hdl.pe import PE, PE_LATENCY, Accumulator, AdderTree, Multipliers
from simkit import (WEIGHT_KINDS, activations, quiet_padding, unpack, value_limits, weights,
                    wrap)

PATTERNS = ["2:4", "4:6,2:4", "3:4,2:4", "1:8", "8:8", "4:4,2:4", "8:24", "2:3,3:4,2:4"]
GROUPS_PER_TILE = 3


@dataclass
class Step:
    weights: int             # packed group_layout
    acts: int                # packed act group
    first: bool
    last: bool
    golden: hss.Step
    tile: int


def make_tiles(p, width, is_signed, seed, groups=GROUPS_PER_TILE):
    """Steps of tiles (one weight row x one activation column each) of every weight kind;
    the dot product of each tile from ``hss.matmul``."""
    rng = np.random.default_rng(seed)
    steps, dots = [], []
    for kind in WEIGHT_KINDS + ("random",):
        k = groups * p.group_size
        if kind == "random":  # once with K not a multiple of the group (padded)
            k -= max(1, p.group_size // 2) if groups > 1 else 0
        W = weights(rng, p, 1, k, width, is_signed, kind)
        A = activations(rng, k, 1, width, is_signed,
                        "extreme" if kind == "extreme" else "random")
        with quiet_padding():
            c = hss.compress(W, p)
        dots.append(int(hss.matmul(c, A)[0, 0]))
        assert dots[-1] == int(W.astype(np.int64)[0] @ A.astype(np.int64)[:, 0])
        Ap = np.zeros(c.groups * p.group_size, np.int64)
        Ap[:k] = A[:, 0]
        for g in range(c.groups):
            values, offsets = c.group(0, g)
            act = Ap[g * p.group_size:(g + 1) * p.group_size]
            steps.append(Step(pack_group(p, width, values, offsets), pack_values(act, width),
                              g == 0, g == c.groups - 1, hss.step(p, values, offsets, act),
                              len(dots) - 1))
    return steps, dots


def simulate_pe(p, width, is_signed, acc_width, steps, dots, *, gaps=0.0, en_stalls=0.0,
                seed=0):
    """Drive the PE cycle by cycle and check every register against a model of its
    pipeline: stage 1 (``selected``), stage 2 (products) and stage 3 (``partial``, ``sum``)
    advance when ``en``; the accumulator takes ``sum`` on an enabled valid stage-3 step."""
    pe = PE(p, width, is_signed, acc_width)
    rng = np.random.default_rng(seed)
    lo, hi = value_limits(width, is_signed)
    sums = []

    async def tb(ctx):
        stage1 = stage2 = stage3 = None
        acc = 0
        pending = list(steps)
        garbage_w = (1 << Value.cast(pe.weights).shape().width) - 1
        while pending or stage1 or stage2 or stage3:
            en = not (en_stalls and rng.random() < en_stalls)
            step = None
            if pending and not (gaps and rng.random() < gaps):
                step = pending.pop(0) if en else pending[0]
            ctx.set(pe.en, en)
            ctx.set(pe.valid, step is not None)
            if step is not None:
                ctx.set(Value.cast(pe.weights), step.weights)
                ctx.set(Value.cast(pe.acts), step.acts)
                ctx.set(pe.first, step.first)
                ctx.set(pe.last, step.last)
            else:  # an invalid step carries junk that must not count
                ctx.set(Value.cast(pe.weights), int(rng.integers(0, 1 << 62)) & garbage_w)
                ctx.set(Value.cast(pe.acts), pack_values(
                    rng.integers(lo, hi, p.group_size, endpoint=True), width))
                ctx.set(pe.first, int(rng.integers(2)))
                ctx.set(pe.last, int(rng.integers(2)))
            await ctx.tick()
            if en:
                if stage3 is not None:
                    acc = stage3.golden.partial + (0 if stage3.first else acc)
                stage1, stage2, stage3 = step, stage1, stage2
            if stage1 is not None:
                got = unpack(ctx.get(Value.cast(pe.selected)), pe.selected.shape())
                assert got == stage1.golden.selected.tolist(), "selected activations"
            assert ctx.get(pe.sum_valid) == (stage3 is not None and stage3.last)
            if stage3 is not None:
                assert ctx.get(pe.partial) == stage3.golden.partial, "partial"
                want = stage3.golden.partial + (0 if stage3.first else acc)
                assert ctx.get(pe.sum) == wrap(want, acc_width, is_signed), "running sum"
                if stage3.last and en:
                    sums.append(ctx.get(pe.sum))

    sim = Simulator(pe)
    sim.add_clock(1e-9)
    sim.add_testbench(tb)
    sim.run()
    assert sums == dots, "tile dot products"


def acc_width_for(p, width, is_signed, groups=GROUPS_PER_TILE):
    """The narrowest accumulator for the tiles run here (``max_k`` = their K)."""
    return hss.accumulator_bits(width, is_signed, hss.max_products(p, groups * p.group_size))


CASES = [(p, s) for p in PATTERNS for s in (True, False)]


@pytest.mark.parametrize("pattern,is_signed", CASES,
                         ids=[f"{p}-{'s8' if s else 'u8'}" for p, s in CASES])
def test_pe_steps_match_golden(pattern, is_signed):
    """en=1 throughout, a step every cycle, tiles of every weight kind back to back;
    the accumulator is exactly as wide as the tiles need (extremes included)."""
    p = hss.Pattern.parse(pattern)
    steps, dots = make_tiles(p, 8, is_signed, seed=sum(map(ord, pattern)) + is_signed)
    simulate_pe(p, 8, is_signed, acc_width_for(p, 8, is_signed), steps, dots)


@pytest.mark.parametrize("pattern,is_signed", [("4:6,2:4", True), ("2:3,3:4,2:4", False)],
                         ids=["4:6,2:4-s8", "2:3,3:4,2:4-u8"])
def test_pe_with_valid_gaps(pattern, is_signed):
    p = hss.Pattern.parse(pattern)
    steps, dots = make_tiles(p, 8, is_signed, seed=3)
    simulate_pe(p, 8, is_signed, acc_width_for(p, 8, is_signed), steps, dots, gaps=0.4,
                seed=4)


def test_pe_holds_while_disabled():
    """en=0 freezes the pipeline and the accumulator (the top stalls the array this way)."""
    p = hss.Pattern.parse("3:4,2:4")
    steps, dots = make_tiles(p, 8, True, seed=5)
    simulate_pe(p, 8, True, acc_width_for(p, 8, True), steps, dots, gaps=0.2, en_stalls=0.4,
                seed=6)


def test_pe_16bit():
    p = hss.Pattern.parse("4:6,2:4")
    steps, dots = make_tiles(p, 16, True, seed=16)
    simulate_pe(p, 16, True, acc_width_for(p, 16, True), steps, dots)


@pytest.mark.parametrize("pattern,is_signed,width", [
    ("4:6,2:4", True, 8), ("4:6,2:4", False, 8), ("8:24", True, 8), ("1:8", False, 8),
    ("2:4", True, 16)], ids=["4:6,2:4-s8", "4:6,2:4-u8", "8:24-s8", "1:8-u8", "2:4-s16"])
def test_pe_extreme_sum_at_the_accumulator_limit(pattern, is_signed, width):
    """Every slot full of (-2**(b-1)) * (-2**(b-1)) (signed) or (2**b-1)**2 (unsigned),
    summed over exactly the K the accumulator is sized for: the exact value, no wrap."""
    p = hss.Pattern.parse(pattern)
    groups = 4
    lo, hi = value_limits(width, is_signed)
    v = lo if is_signed else hi
    W = weights(np.random.default_rng(0), p, 1, groups * p.group_size, width, is_signed,
                "extreme")
    c = hss.compress(W, p)
    steps = []
    act = np.full(p.group_size, v, np.int64)
    for g in range(groups):
        values, offsets = c.group(0, g)
        steps.append(Step(pack_group(p, width, values, offsets), pack_values(act, width),
                          g == 0, g == groups - 1, hss.step(p, values, offsets, act), 0))
    want = groups * p.slots * v * v
    acc_width = acc_width_for(p, width, is_signed, groups)
    lo_acc, hi_acc = value_limits(acc_width, is_signed)
    assert lo_acc <= want <= hi_acc and want > hi_acc // 2  # it needs the top bit
    simulate_pe(p, width, is_signed, acc_width, steps, [want])


def test_multipliers_extremes():
    """Every corner product of int8 / uint8 operands, full width (no truncation)."""
    for is_signed in (True, False):
        lo, hi = value_limits(8, is_signed)
        corners = [lo, lo + 1, -1 if is_signed else 1, 0, 1, hi - 1, hi]
        pairs = [(a, b) for a in corners for b in corners]
        mul = Multipliers(len(pairs), 8, is_signed)

        async def tb(ctx):
            for i, (a, b) in enumerate(pairs):
                ctx.set(mul.a[i], a)
                ctx.set(mul.b[i], b)
            got = unpack(ctx.get(Value.cast(mul.p)), mul.p.shape())
            assert got == [a * b for a, b in pairs]

        sim = Simulator(mul)
        sim.add_testbench(tb)
        sim.run()


def test_adder_tree_sums_without_overflow():
    from amaranth.hdl import signed, unsigned
    for n, shape, values in ((3, signed(16), (-32768, -32768, -32768)),
                             (8, unsigned(16), (65535,) * 8), (1, signed(16), (-5,)),
                             (5, signed(16), (1, -2, 3, -4, 5))):
        tree = AdderTree(n, shape)

        async def tb(ctx, tree=tree, values=values):
            for i, v in enumerate(values):
                ctx.set(tree.products[i], v)
            assert ctx.get(tree.partial) == sum(values)

        sim = Simulator(tree)
        sim.add_testbench(tb)
        sim.run()


def test_accumulator_first_restarts():
    """``sum`` is ``partial`` on a first step and ``acc + partial`` otherwise; the
    accumulator only moves on enabled valid steps."""
    from amaranth.hdl import signed
    acc = Accumulator(signed(18), signed(24))
    script = [  # (partial, en, valid, first, expected sum before the edge)
        (6, 1, 1, 1, 6),
        (60, 1, 1, 0, 66),
        (100, 0, 1, 0, 166),      # disabled: acc stays 66
        (100, 1, 0, 0, 166),      # invalid: acc stays 66
        (-131072, 1, 1, 0, 66 - 131072),
        (15, 1, 1, 1, 15),        # a new tile
    ]

    async def tb(ctx):
        for partial, en, valid, first, want in script:
            ctx.set(acc.partial, partial)
            ctx.set(acc.en, en)
            ctx.set(acc.valid, valid)
            ctx.set(acc.first, first)
            assert ctx.get(acc.sum) == want
            await ctx.tick()

    sim = Simulator(acc)
    sim.add_clock(1e-9)
    sim.add_testbench(tb)
    sim.run()


def test_pe_latency_constant():
    assert PE_LATENCY == 3


@pytest.mark.parametrize("kwargs, error, message", [
    ({"width": 0}, ValueError, "width must be a positive integer, not 0"),
    ({"width": 8.0}, ValueError, "width must be a positive integer, not 8.0"),
    ({"is_signed": 1}, TypeError, "is_signed must be a bool, not 1"),
    ({"acc_width": 1}, ValueError, "acc_width must be an integer of at least 2, not 1"),
    ({"pattern": "2:4"}, TypeError, "pattern must be an hss.Pattern"),
])
def test_pe_checks_arguments_eagerly(kwargs, error, message):
    args = {"pattern": hss.Pattern.parse("2:4"), "width": 8, "is_signed": True, "acc_width": 20}
    args.update(kwargs)
    with warnings.catch_warnings():   # the half-built PE is never elaborated, by design
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(error, match=message):
            PE(**args)
        gc.collect()
