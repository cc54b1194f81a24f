"""HSSDecompressor against ``hss.decompress_group``, through its streams.

Every required pattern, int8 signed and unsigned (and 16-bit once), random valid gaps on
the input and random ready backpressure on the output; and the throughput: one group per
cycle, N groups out in N + latency cycles, when nothing stalls.
"""
import numpy as np
import pytest

import hss
from hdl.decompressor import HSSDecompressor, decompressed_layout
from hdl.layouts import pack_group
from simkit import Cycles, WEIGHT_KINDS, quiet_padding, receive, run, send, unpack, weights

PATTERNS = ["2:4", "4:6,2:4", "3:4,2:4", "1:8", "8:8", "4:4,2:4", "8:24", "2:3,3:4,2:4"]


def compressed_groups(pattern, width, is_signed, seed, groups_per_kind=3):
    """(values, offsets) of groups from every kind of weights, in a fixed random order."""
    rng = np.random.default_rng(seed)
    out = []
    for kind in WEIGHT_KINDS:
        W = weights(rng, pattern, 2, groups_per_kind * pattern.group_size, width, is_signed,
                    kind)
        c = hss.compress(W, pattern)
        out += [c.group(row, g) for row in range(c.rows) for g in range(c.groups)]
    # also a K that is not a multiple of the group: the padded tail group
    W = weights(rng, pattern, 1, pattern.group_size + max(1, pattern.group_size // 3),
                width, is_signed)
    with quiet_padding():
        c = hss.compress(W, pattern)
    out += [c.group(0, g) for g in range(c.groups)]
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def simulate(pattern, width, is_signed, groups, *, idle=0.0, stall=0.0, seed=0):
    dec = HSSDecompressor(pattern, width, is_signed)
    beats = [pack_group(pattern, width, v, o) for v, o in groups]
    cycles, in_log, out_log, result = Cycles(), [], [], {}

    async def producer(ctx):
        await send(ctx, dec.i, beats, idle=idle, seed=seed, log=in_log, cycles=cycles)

    async def consumer(ctx):
        result["words"] = await receive(ctx, dec.o, len(beats), stall=stall, seed=seed + 1,
                                        log=out_log, cycles=cycles, check_stable=True)

    run(dec, [producer, consumer], background=[cycles], timeout_cycles=50 * len(beats) + 100)
    return dec, result["words"], in_log, out_log


def check_outputs(pattern, width, is_signed, groups, words):
    layout = decompressed_layout(pattern, width, is_signed)
    assert len(words) == len(groups)
    for n, ((values, offsets), word) in enumerate(zip(groups, words)):
        want_pos, want_dense = hss.decompress_group(pattern, values, offsets)
        got = unpack(word, layout)
        assert got["positions"] == want_pos.tolist(), f"group {n}: slot positions"
        assert got["dense"] == want_dense.tolist(), f"group {n}: dense group"


CASES = [(p, s) for p in PATTERNS for s in (True, False)]


@pytest.mark.parametrize("pattern,is_signed", CASES,
                         ids=[f"{p}-{'s8' if s else 'u8'}" for p, s in CASES])
def test_matches_golden_with_gaps_and_backpressure(pattern, is_signed):
    p = hss.Pattern.parse(pattern)
    groups = compressed_groups(p, 8, is_signed, seed=len(pattern) * 2 + is_signed)
    dec, words, _, _ = simulate(p, 8, is_signed, groups, idle=0.3, stall=0.4, seed=11)
    assert dec.latency == p.num_ranks
    check_outputs(p, 8, is_signed, groups, words)


def test_16bit_values():
    p = hss.Pattern.parse("4:6,2:4")
    groups = compressed_groups(p, 16, True, seed=16)
    _, words, _, _ = simulate(p, 16, True, groups, idle=0.2, stall=0.2, seed=5)
    check_outputs(p, 16, True, groups, words)


@pytest.mark.parametrize("stall", [0.0, 0.7], ids=["ready", "mostly-stalled"])
def test_heavy_backpressure_loses_nothing(stall):
    p = hss.Pattern.parse("2:3,3:4,2:4")
    groups = compressed_groups(p, 8, True, seed=3)
    _, words, _, _ = simulate(p, 8, True, groups, idle=0.0, stall=stall, seed=2)
    check_outputs(p, 8, True, groups, words)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_one_group_per_cycle(pattern):
    """No gaps, no backpressure: N groups go in on N consecutive cycles and come out
    ``latency`` cycles later, so the last one is out N + latency cycles after the first
    went in (counting both ends)."""
    p = hss.Pattern.parse(pattern)
    groups = compressed_groups(p, 8, True, seed=1)
    n = len(groups)
    dec, words, in_log, out_log = simulate(p, 8, True, groups)
    check_outputs(p, 8, True, groups, words)
    assert np.diff(in_log).tolist() == [1] * (n - 1), "input stalled"
    assert np.diff(out_log).tolist() == [1] * (n - 1), "output not back to back"
    assert out_log[0] - in_log[0] == dec.latency
    assert out_log[-1] - in_log[0] + 1 == n + dec.latency
