"""Stimulus for hdl.fetch.FetchArray from hss.fetch's way-(i) format, shared by the
Amaranth and the Verilator tests: one dict of input values per cycle, and the tiles the
array must produce, in order."""
import numpy as np

from hdl.fetch import FetchArray
from hdl.layouts import group_layout, pack_group, pack_values
from hss import pack_fields
from hdl.selector import offset_bits
from hss.fetch import compress_shared, rank0_pattern

INPUTS = ("wr_en", "wr_bank", "wr_addr", "wr_data", "en", "valid", "first", "last",
          "group", "offsets", "weights")


def plan(config, W, A, *, stalls=0.0, seed=0):
    """Cycles that fill the banks with one column tile of ``A`` and run every row tile
    of a conforming ``W`` over it (random ``en`` stalls with probability ``stalls``), then
    drain. Returns (cycles, expected tiles [rows][cols] ints, depth)."""
    c, p = config, config.pattern
    inner = rank0_pattern(p)
    rng = np.random.default_rng(seed)
    s = compress_shared(W, p, c.rows)
    groups = s.groups
    A = np.concatenate([A, np.zeros((groups * p.group_size - A.shape[0], A.shape[1]),
                                    A.dtype)])
    Wd = np.asarray(W, np.int64)
    Wd = np.concatenate([Wd, np.zeros((Wd.shape[0], A.shape[0] - Wd.shape[1]), np.int64)], 1)
    m, n = Wd.shape[0], A.shape[1]
    gbits = group_layout(inner, c.width, c.signed).size
    obits = offset_bits(p.G[1], p.H[1])
    idle = dict.fromkeys(INPUTS, 0)
    cycles, tiles = [], []

    def emit(step):
        while stalls and rng.random() < stalls:
            cycles.append(dict(step, en=0, wr_en=0))
        cycles.append(step)

    for c0 in range(0, n, c.cols):
        At = np.zeros((A.shape[0], c.cols), np.int64)
        At[:, :min(c.cols, n - c0)] = A[:, c0:c0 + c.cols]
        blocks = At.reshape(groups, p.H[1], p.H[0], c.cols)
        for g in range(groups):
            for b in range(p.H[1]):
                word = pack_values([int(v) for v in blocks[g, b].T.ravel()], c.width)
                emit(dict(idle, wr_en=1, wr_bank=b, wr_addr=g, wr_data=word, en=1))
        for r0 in range(0, m, c.rows):
            for g in range(groups):
                w = 0
                for i in range(c.rows):
                    if r0 + i < m:
                        vals = s.values[r0 + i, g]
                        off0 = s.offsets0[r0 + i, g]
                    else:
                        vals = np.zeros(p.slots, np.int64)
                        off0 = np.tile(np.arange(p.G[0]), p.G[1])
                    w |= pack_group(inner, c.width, [int(v) for v in vals],
                                    [[int(o) for o in off0], list(range(p.G[1]))]) << (i * gbits)
                off1 = [int(o) for o in s.tile_offsets[r0 // c.rows, g]]
                emit(dict(idle, en=1, valid=1, first=int(g == 0), last=int(g == groups - 1),
                          group=g, offsets=pack_fields(off1, obits) if obits else 0,
                          weights=w))
            Wt = np.zeros((c.rows, A.shape[0]), np.int64)
            Wt[:min(c.rows, m - r0)] = Wd[r0:r0 + c.rows]
            tiles.append(Wt @ At)
    for _ in range(FetchArray.latency + 2):
        emit(dict(idle, en=1))
    return cycles, tiles, groups
