"""Constrained-random cosimulation: ``python -m bench fuzz [--minutes N] [--seed S] [--jobs J]``.

Each case draws a pattern, an array, number formats, a GEMM with extreme or random values
and optional back-pressure, emits the accelerator, runs the generated testbench in Verilator
and checks it against two references: the testbench compares every tile with the ``hss``
golden model (``expected.hex``), and this module compares ``z_out.txt`` with an int64
NumPy ``W @ A`` (and ``hss.matmul`` with ``W @ A``), plus ``cycles == steps + LATENCY``
when nothing stalls. A failing case is shrunk to a small reproducer saved under
``<out>/fuzz-failures/<case-id>/`` with the ``python -m gen`` command that replays it.

Case ``i`` depends only on ``(seed, i)`` (``numpy.random.default_rng([seed, i])``), so a
run is a prefix 0..n-1 of one deterministic sequence; only how far it gets depends on
the machine. Results: ``fuzz.md``, ``fuzz.csv`` (coverage histogram) and ``fuzz.json``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Hashable, Iterable, TypeVar

import numpy as np

import hss

from .common import Table, progress, write_outputs

__all__ = ["Case", "Outcome", "ShrinkResult", "generate_case", "random_pattern",
           "build_cost", "run_case", "shrink", "simplifications", "reproducer", "investigate",
           "run"]

# -- the bounds of a case --------------------------------------------------------------
# Every case must emit, build and simulate in seconds on one core, yet reach the corners:
# one to four ranks, G == H, G = 1, H = 16, 1:1, a dense single rank, 4x4 arrays, 16-bit
# values. Time grows with the selector muxes and multipliers of the whole array, so the
# bounds cap those (build_cost), not each knob alone: a pattern is redrawn until its
# group and multipliers fit, then the array is redrawn (or narrowed) until the cost fits.
MAX_RANKS = 4
MAX_H = 16
MAX_GROUP = 256       # S = prod(H): activation beats are cols*S*width bits (<= 16 Kib)
MAX_SLOTS = 16        # prod(G): multipliers (and adder-tree inputs) per PE
MAX_SIDE = 4          # rows, cols in 1..4
MAX_MULTIPLIERS = 256 # rows * cols * prod(G): 16:16 on 4x4 is the largest dense corner
MAX_COST = 60_000     # build_cost: at most ~8 s to emit and build (median case ~3 s)
WIDTHS = (2, 16)      # value width range, inclusive
MAX_ACC_EXTRA = 3     # accumulator width in [minimum, minimum + 3]
MAX_STEPS = 64        # groups per tile (K / S); the simulation is short whatever K is
MAX_TILE_SIDE = 3     # up to 3 x 3 tiles: M, N up to 3*rows, 3*cols (overhang included)
MAX_K = 8192          # largest max_k drawn (K itself is at most MAX_STEPS * S)

#: Failure kinds, in the order a case is checked.
KINDS = ("exception", "golden", "sim-error", "timeout", "mismatch", "z-mismatch", "cycles")
SIM_TIMEOUT = 900     # seconds per simulator step: only a hung tool reaches it
SHRINK_EVALS = 60     # simulations a shrink may spend
SHRINK_SECONDS = 600
MAX_FAILURES = 5      # a systematic bug fails every case: stop, shrink what we have

# Values of a tensor: how its nonzeros are drawn (coverage counts these).
VALUE_KINDS = ("uniform", "min", "max", "minmax", "small", "zero")


@dataclass(frozen=True, eq=False)
class Case:
    """One GEMM on one build: everything ``run_case`` needs, and what a reproducer saves."""
    case_id: str
    pattern: str
    rows: int
    cols: int
    width: int
    signed: bool
    max_k: int
    acc_width: int
    W: np.ndarray
    A: np.ndarray
    stall_seed: int | None
    w_kind: str = "uniform"
    a_kind: str = "uniform"
    modes: str | None = None      # a flexible build's mode set; ``pattern`` is one of its modes

    @property
    def config(self):
        from hdl import AcceleratorConfig
        from hdl.config import FlexConfig
        if self.modes is not None:
            return FlexConfig(self.modes, self.rows, self.cols, self.width, self.signed,
                              self.max_k, self.acc_width)
        return AcceleratorConfig(self.pattern, self.rows, self.cols, self.width, self.signed,
                                 self.max_k, self.acc_width)

    @property
    def p(self) -> hss.Pattern:
        return hss.Pattern.parse(self.pattern)

    @property
    def m(self) -> int:
        return int(self.W.shape[0])

    @property
    def k(self) -> int:
        return int(self.W.shape[1])

    @property
    def n(self) -> int:
        return int(self.A.shape[1])

    @property
    def steps(self) -> int:
        """Groups per tile: K / S rounded up."""
        return -(-self.k // self.p.group_size)

    @property
    def padded_k(self) -> int:
        return self.steps * self.p.group_size

    @property
    def tiles(self) -> int:
        return -(-self.m // self.rows) * -(-self.n // self.cols)

    @property
    def min_acc_width(self) -> int:
        """The narrowest safe accumulator (of a flexible build: for its densest mode)."""
        modes = hss.ModeSet.parse(self.modes).modes if self.modes else (self.p,)
        return hss.accumulator_bits(self.width, self.signed,
                                    max(hss.max_products(p, self.max_k) for p in modes))

    def replace(self, **changes) -> Case:
        return dataclasses.replace(self, **changes)

    def scalars(self) -> dict:
        return {"case_id": self.case_id, "pattern": self.pattern, "rows": self.rows,
                "cols": self.cols, "width": self.width, "signed": self.signed,
                "max_k": self.max_k, "acc_width": self.acc_width, "m": self.m, "k": self.k,
                "n": self.n, "stall_seed": self.stall_seed, "w_kind": self.w_kind,
                "a_kind": self.a_kind, "modes": self.modes}

    def key(self) -> str:
        """Identity of what is simulated (not of the id or the coverage labels)."""
        h = hashlib.sha256()
        s = self.scalars()
        for name in ("case_id", "w_kind", "a_kind"):
            del s[name]
        h.update(json.dumps(s, sort_keys=True).encode())
        for x in (self.W, self.A):
            h.update(np.ascontiguousarray(x, np.int64).tobytes())
        return h.hexdigest()


# -- case generation -------------------------------------------------------------------
def build_cost(pattern: hss.Pattern, rows: int, cols: int, width: int) -> int:
    """A proxy of the emit + Verilator build time of the array, in value-bit units.

    Per PE: every selector's mux inputs ((H-G+1) blocks of span(r-1) values for each of its
    G outputs), the multipliers (width^2 each) and a fixed price per selector instance
    (Amaranth emits one Verilog module per instance). Measured emit + build (runtime
    objects cached) on an idle 2-core machine: 4:6,2:4 4x4 int8 20,608 -> 5 s; 16:16 4x4
    int16 66,176 -> 6 s; 8:16,2:16 2x2 int16 106,912 -> 16 s; 2:16,8:16 4x4 int16
    227,200 -> 36 s; 15:16,1:16 4x4 int16 256,000 -> 60 s.
    """
    p = pattern
    per_pe = p.slots * width * width
    for r in range(p.num_ranks):
        parents = p.kept(r + 1) if r + 1 < p.num_ranks else 1
        per_pe += parents * 40
        if not p.rank(r).dense:
            per_pe += parents * p.G[r] * (p.H[r] - p.G[r] + 1) * p.span(r - 1) * width
    return rows * cols * per_pe


def _draw_rank(rng) -> hss.Rank:
    """H leans to small values but hits 16 and 1 often; G is H, 1 or anything between."""
    u = rng.random()
    h = 16 if u < 0.15 else 1 if u < 0.2 else int(rng.integers(2, 9)) if u < 0.8 \
        else int(rng.integers(9, 16))
    v = rng.random()
    g = h if v < 0.25 else 1 if v < 0.5 else int(rng.integers(1, h + 1))
    return hss.Rank(g, h)


def random_pattern(rng) -> hss.Pattern:
    """1-4 ranks (uniform), each rank redrawn until S <= MAX_GROUP and prod(G) <= MAX_SLOTS."""
    n = int(rng.integers(1, MAX_RANKS + 1))
    while True:
        p = hss.Pattern(tuple(_draw_rank(rng) for _ in range(n)))
        if p.group_size <= MAX_GROUP and p.slots <= MAX_SLOTS:
            return p


def _fits(p: hss.Pattern, rows: int, cols: int, width: int) -> bool:
    return rows * cols * p.slots <= MAX_MULTIPLIERS and build_cost(p, rows, cols, width) <= MAX_COST


#: Share of cases on a flexible build: a mode set around the case's pattern.
FLEX_SHARE = 0.25


def flex_cost(modes: hss.ModeSet, rows: int, cols: int, width: int) -> int | None:
    """``build_cost`` of a flexible build (its lane muxes and multipliers), None when no
    lane count keeps every mode busy."""
    from hss.lanes import LaneError, LaneSchedule, default_macs
    try:
        s = LaneSchedule(modes.modes, default_macs(modes.modes))
    except LaneError:
        return None
    return rows * cols * (s.mux_inputs * width + s.macs * width * width + 40 * s.macs)


def random_mode_set(rng, p: hss.Pattern, rows: int, cols: int, width: int) -> str | None:
    """A mode set holding ``p``: each rank gets up to two more alternatives (G or H moved
    by a little), in random order; None when none fits the bounds in a few draws."""
    for _ in range(8):
        alternatives = []
        for r in reversed(range(p.num_ranks)):
            rank = p.rank(r)
            alts = [rank]
            for _ in range(int(rng.integers(0, 3))):
                g = max(1, rank.g + int(rng.integers(-1, 2)) * int(rng.integers(1, 3)))
                h = max(g, rank.h + int(rng.integers(0, 3)))
                if hss.Rank(g, h) not in alts and h <= MAX_H:
                    alts.append(hss.Rank(g, h))
            rng.shuffle(alts)
            alternatives.append(tuple(alts))
        modes = hss.ModeSet(tuple(alternatives))
        if len(modes) == 1 or len(modes) > 12 or modes.max_group_size > MAX_GROUP:
            continue
        cost = flex_cost(modes, rows, cols, width)
        if cost is not None and cost <= MAX_COST:
            return str(modes)
    return None


def _values(rng, kind: str, shape, lo: int, hi: int) -> np.ndarray:
    if kind == "uniform":
        return rng.integers(lo, hi, shape, endpoint=True, dtype=np.int64)
    if kind == "min":
        return np.full(shape, lo, np.int64)
    if kind == "max":
        return np.full(shape, hi, np.int64)
    if kind == "minmax":
        return np.where(rng.random(shape) < 0.5, lo, hi).astype(np.int64)
    if kind == "small":
        return rng.integers(max(lo, -1), min(hi, 1), shape, endpoint=True, dtype=np.int64)
    return np.zeros(shape, np.int64)


def _kind(rng) -> str:
    return str(rng.choice(VALUE_KINDS, p=[0.35, 0.13, 0.13, 0.2, 0.14, 0.05]))


def _mask(rng, p: hss.Pattern, m: int, k: int) -> np.ndarray:
    """A random conforming support with prod(G) nonzeros per full group: pruning distinct
    random magnitudes keeps random positions (pruning equal values would keep the lowest)."""
    return hss.prune(rng.random((m, k)) + 0.5, p) != 0


def generate_case(seed: int, index: int) -> Case:
    """Case ``index`` of the sequence ``seed``: a function of both alone."""
    rng = np.random.default_rng([seed, index])
    while True:
        p = random_pattern(rng)
        width = int(rng.integers(WIDTHS[0], WIDTHS[1] + 1))
        for _ in range(8):        # redraw the array rather than bias it to thin shapes
            rows, cols = (int(x) for x in rng.integers(1, MAX_SIDE + 1, 2))
            if _fits(p, rows, cols, width):
                break
        while not _fits(p, rows, cols, width) and rows * cols > 1:
            if cols == 1 or (rows > 1 and rng.random() < 0.5):
                rows -= 1
            else:
                cols -= 1
        if _fits(p, rows, cols, width):
            break
    modes = random_mode_set(rng, p, rows, cols, width) if rng.random() < FLEX_SHARE else None
    signed = bool(rng.random() < 0.5)
    s = p.group_size
    lo, hi = hss.value_range(width, signed)

    # K: mostly few groups, sometimes many; not a multiple of S 40 % of the time
    u = rng.random()
    steps = 1 if u < 0.3 else int(rng.integers(2, 5)) if u < 0.7 else \
        int(rng.integers(5, 17)) if u < 0.9 else int(rng.integers(17, MAX_STEPS + 1))
    k = steps * s - (int(rng.integers(1, s)) if s > 1 and rng.random() < 0.4 else 0)
    # M, N: up to 3 tiles each way, overhanging the array half of the time
    m = rows * int(rng.integers(0, MAX_TILE_SIDE)) + int(rng.integers(1, rows + 1))
    n = cols * int(rng.integers(0, MAX_TILE_SIDE)) + int(rng.integers(1, cols + 1))

    # worst case for the accumulator 10 % of the time: full groups of the extreme product
    worst = rng.random() < 0.1
    if worst:
        w_kind = a_kind = "min" if signed else "max"
    else:
        w_kind, a_kind = _kind(rng), _kind(rng)
    mask = _mask(rng, p, m, k)
    if not worst and w_kind != "zero" and rng.random() < 0.3:   # sparser than the pattern
        mask &= rng.random(mask.shape) < rng.uniform(0.05, 0.8)
        w_kind += "+sparser"
    W = np.where(mask, _values(rng, w_kind.split("+")[0], (m, k), lo, hi), 0)
    A = _values(rng, a_kind, (k, n), lo, hi)
    if not worst and a_kind != "zero" and rng.random() < 0.2:
        A = np.where(rng.random(A.shape) < 0.5, A, 0)
        a_kind += "+zeros"

    padded = steps * s
    max_k = padded if worst or rng.random() < 0.5 else int(rng.integers(padded, max(padded, MAX_K) + 1))
    extra = 0 if worst and rng.random() < 0.7 else int(rng.integers(0, MAX_ACC_EXTRA + 1))
    stall_seed = None if rng.random() < 1 / 3 else int(rng.integers(0, 2 ** 31))
    case = Case(f"s{seed}-c{index:05d}", str(p), rows, cols, width, signed, max_k, 2,
                W.astype(np.int64), A.astype(np.int64), stall_seed, w_kind, a_kind, modes)
    return case.replace(acc_width=case.min_acc_width + extra)


def features(case: Case) -> dict:
    """What a case covers, for the histograms and the corner checks."""
    p = case.p
    return {
        "ranks": p.num_ranks, "width": case.width,
        "signedness": "signed" if case.signed else "unsigned",
        "array": f"{case.rows}x{case.cols}",
        "acc_extra": case.acc_width - case.min_acc_width,
        "stalls": case.stall_seed is not None,
        "g_eq_h": any(r.dense for r in p.ranks), "g_1": any(r.g == 1 for r in p.ranks),
        "h_16": any(r.h == 16 for r in p.ranks), "one_one": any(r.h == 1 for r in p.ranks),
        "dense_single": p.num_ranks == 1 and p.is_dense, "four_ranks": p.num_ranks == 4,
        "k_padded": case.k % p.group_size != 0, "m_overhang": case.m % case.rows != 0,
        "n_overhang": case.n % case.cols != 0, "tight_max_k": case.max_k == case.padded_k,
        "group_size": p.group_size, "slots": p.slots, "steps": case.steps,
        "tiles": case.tiles, "k": case.k, "w_kind": case.w_kind, "a_kind": case.a_kind,
        "build": "flexible" if case.modes else "fixed",
        "modes": len(hss.ModeSet.parse(case.modes)) if case.modes else 1,
    }


# -- one case through Verilator --------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    kind: str | None          # None: passed; else one of KINDS
    detail: str = ""
    cycles: int = -1
    steps: int = -1

    @property
    def ok(self) -> bool:
        return self.kind is None


@lru_cache(maxsize=8)
def _emit(config) -> str:
    """The accelerator's Verilog; shrinking re-simulates one build with many tensors."""
    from gen.emit import TOP, emit_verilog
    return emit_verilog(config)[0][TOP]


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_case(case: Case, work: Path) -> Outcome:
    """Emit, write the testbench, simulate in Verilator and compare; never raises for a
    case's own failure (a missing tool still raises ``ToolMissing``)."""
    from gen.emit import TOP
    from gen.simulate import SimError, ToolMissing, simulate
    from gen.testbench import write_testbench
    from hdl import LATENCY
    from hdl.stimulus import flex_gemm_vectors, gemm_vectors

    work = Path(work)
    shutil.rmtree(work, ignore_errors=True)
    try:
        config = case.config
        (work / "rtl").mkdir(parents=True)
        (work / "rtl" / f"{TOP}.v").write_text(_emit(config))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", hss.PaddingWarning)
            vectors = (flex_gemm_vectors(config, case.W, case.A, case.pattern) if case.modes
                       else gemm_vectors(config, case.W, case.A))
        write_testbench(work / "tb", vectors, top=TOP, rtl_rel=f"../rtl/{TOP}.v",
                        stall_seed=case.stall_seed)
    except Exception as e:  # a generation bug, whatever its type
        return Outcome("exception", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=4)}")
    reference = case.W.astype(np.int64) @ case.A.astype(np.int64)
    if not np.array_equal(vectors.expected, reference):
        bad = np.argwhere(vectors.expected != reference)[0]
        return Outcome("golden", f"hss.matmul {vectors.expected[tuple(bad)]} != W @ A "
                                 f"{reference[tuple(bad)]} at Z{list(map(int, bad))}")
    try:
        r = simulate(work / "tb", "verilator", timeout=SIM_TIMEOUT)
    except ToolMissing:
        raise
    except SimError as e:
        return Outcome("sim-error", f"{e}\n{_tail(work / 'tb' / 'sim-verilator.log')}")
    if not r.passed:
        kind = "timeout" if any(x.startswith("TIMEOUT") for x in r.messages) else "mismatch"
        return Outcome(kind, "\n".join(r.messages[:5]) or _tail(r.log), r.cycles, vectors.steps)
    try:
        z = np.array([int(x) for x in r.z_out.read_text().split()], np.int64)
    except (OSError, ValueError) as e:
        return Outcome("z-mismatch", f"z_out.txt unreadable: {e}", r.cycles, vectors.steps)
    if z.shape != (case.m * case.n,) or not np.array_equal(z.reshape(case.m, case.n), reference):
        if z.shape != (case.m * case.n,):
            return Outcome("z-mismatch", f"z_out.txt has {z.size} values, expected "
                                         f"{case.m * case.n}", r.cycles, vectors.steps)
        z = z.reshape(case.m, case.n)
        bad = np.argwhere(z != reference)[0]
        return Outcome("z-mismatch", f"z_out {z[tuple(bad)]} != W @ A {reference[tuple(bad)]} "
                                     f"at Z{list(map(int, bad))}", r.cycles, vectors.steps)
    if case.stall_seed is None and r.cycles != vectors.steps + LATENCY:
        return Outcome("cycles", f"{r.cycles} cycles without stalls, expected "
                                 f"{vectors.steps} steps + {LATENCY}", r.cycles, vectors.steps)
    return Outcome(None, "", r.cycles, vectors.steps)


# -- shrinking -------------------------------------------------------------------------
T = TypeVar("T")


@dataclass(frozen=True)
class ShrinkResult:
    case: object
    evaluations: int
    complete: bool            # False: the budget ran out before a local minimum


def shrink(case: T, fails: Callable[[T], bool], simplify: Callable[[T], Iterable[T]], *,
           key: Callable[[T], Hashable] = repr, max_evals: int = SHRINK_EVALS,
           deadline: float | None = None) -> ShrinkResult:
    """Greedy shrinking to a local minimum.

    ``simplify(c)`` yields smaller variants of ``c``, most aggressive first; the first one
    that still ``fails`` replaces ``c`` and the search restarts from it. A variant already
    tried (same ``key``) is not tried again, so each costs one evaluation at most.
    ``case`` itself is assumed to fail. Stops after ``max_evals`` evaluations or at
    ``deadline`` (``time.monotonic()``).
    """
    seen = {key(case)}
    evals = 0
    while True:
        for candidate in simplify(case):
            k = key(candidate)
            if k in seen:
                continue
            if evals >= max_evals or (deadline is not None and time.monotonic() > deadline):
                return ShrinkResult(case, evals, False)
            seen.add(k)
            evals += 1
            if fails(candidate):
                case = candidate
                break
        else:
            return ShrinkResult(case, evals, True)


def _with_pattern(case: Case, p: hss.Pattern) -> Case:
    """``case`` on another pattern: W projected onto it, max_k covering the padded K and
    the accumulator as many bits above its minimum as before."""
    extra = case.acc_width - case.min_acc_width
    s = p.group_size
    max_k = max(case.max_k, -(-case.k // s) * s)
    min_acc = hss.accumulator_bits(case.width, case.signed, hss.max_products(p, max_k))
    return case.replace(pattern=str(p), W=hss.prune(case.W, p).astype(np.int64),
                        max_k=max_k, acc_width=max(2, min_acc + extra))


def _pattern_variants(p: hss.Pattern) -> Iterable[hss.Pattern]:
    ranks = list(p.ranks)
    if len(ranks) > 1:
        for i in range(len(ranks)):
            yield hss.Pattern(tuple(ranks[:i] + ranks[i + 1:]))
    for i, r in enumerate(ranks):
        smaller = []
        if not r.dense:
            smaller.append(hss.Rank(r.g, r.g))           # dense: no selector
        if r.h > 1:
            smaller.append(hss.Rank(min(r.g, r.h - 1), r.h - 1))
        if r.g > 1:
            smaller.append(hss.Rank(1, r.h))
            smaller.append(hss.Rank(r.g - 1, r.h))
        for new in smaller:
            yield hss.Pattern(tuple(ranks[:i] + [new] + ranks[i + 1:]))


def _chunks(idx: np.ndarray) -> Iterable[np.ndarray]:
    """Halves, quarters, ... down to single entries (delta debugging's granularity)."""
    parts = 2
    while parts <= 2 * len(idx):
        for chunk in np.array_split(idx, min(parts, len(idx))):
            if len(chunk):
                yield chunk
        if parts >= len(idx):
            break
        parts *= 2


def _zeroed(x: np.ndarray, flat: np.ndarray) -> np.ndarray:
    out = x.copy()
    out.reshape(-1)[flat] = 0
    return out


def _needed_width(case: Case) -> int:
    both = np.concatenate([case.W.reshape(-1), case.A.reshape(-1), [0]])
    lo, hi = int(both.min()), int(both.max())
    for w in range(WIDTHS[0], case.width + 1):
        a, b = hss.value_range(w, case.signed)
        if a <= lo and hi <= b:
            return w
    return case.width


def simplifications(case: Case) -> Iterable[Case]:
    """Smaller variants of a case, most aggressive first: no stalls, a 1x1 array, K of one
    group, fewer rows of W and columns of A, a tight max_k and accumulator, fewer or
    smaller ranks, narrower values, then entries of W and A set to zero."""
    if case.stall_seed is not None:
        yield case.replace(stall_seed=None)
    for rows, cols in ((1, 1), (1, case.cols), (case.rows, 1), (case.rows - 1, case.cols),
                       (case.rows, case.cols - 1)):
        if rows >= 1 and cols >= 1 and (rows, cols) != (case.rows, case.cols):
            yield case.replace(rows=rows, cols=cols)
    s = case.p.group_size
    groups = case.steps
    spans = [(g * s, min(case.k, (g + 1) * s)) for g in range(groups)]
    picks = [spans[:1], spans[-1:]] + [[x] for x in spans[1:-1][:6]] + \
        [spans[:groups // 2], spans[:-1]]
    if case.k % s:
        picks.append([(0, case.k - case.k % s)])          # drop the padded tail
    for pick in picks:
        if pick and 0 < sum(b - a for a, b in pick) < case.k:
            cols_k = np.concatenate([np.arange(a, b) for a, b in pick])
            yield case.replace(W=case.W[:, cols_k], A=case.A[cols_k, :])
    for rows in _slices(case.m):
        yield case.replace(W=case.W[rows, :])
    for cols in _slices(case.n):
        yield case.replace(A=case.A[:, cols])
    if case.max_k > case.padded_k:
        extra = case.acc_width - case.min_acc_width
        tight = case.replace(max_k=case.padded_k)
        yield tight.replace(acc_width=max(2, tight.min_acc_width + extra))
    if case.acc_width > case.min_acc_width:
        yield case.replace(acc_width=case.min_acc_width)
    if case.modes is None:                 # a flexible build keeps its set (and its bug)
        for p in _pattern_variants(case.p):
            yield _with_pattern(case, p)
    if _needed_width(case) < case.width:
        narrow = case.replace(width=_needed_width(case))
        yield narrow.replace(acc_width=max(2, narrow.min_acc_width
                                           + case.acc_width - case.min_acc_width))
    for name in ("W", "A"):
        x = getattr(case, name)
        nz = np.flatnonzero(x)
        if len(nz):
            yield case.replace(**{name: np.zeros_like(x)})
            for chunk in _chunks(nz):
                if len(chunk) < len(nz):
                    yield case.replace(**{name: _zeroed(x, chunk)})


def _slices(size: int) -> Iterable[slice]:
    """One index, each single index (up to 8), the first half, all but the last."""
    if size <= 1:
        return
    yield slice(0, 1)
    for i in range(1, min(size, 8)):
        yield slice(i, i + 1)
    if size > 3:
        yield slice(0, size // 2)
    if size > 2:
        yield slice(0, size - 1)


# -- reproducers -----------------------------------------------------------------------
def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the current folder when inside it."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def reproducer(case: Case, folder: Path) -> str:
    """The ``python -m gen`` command that replays ``case`` from ``folder``'s W.npy, A.npy."""
    from gen.options import Options
    folder = Path(folder)
    options = Options(ranks=case.modes or case.pattern, rows=case.rows, cols=case.cols,
                      width=case.width, signed=case.signed, acc_width=case.acc_width,
                      max_k=case.max_k, weights=(_shown(folder / "W.npy"),),
                      activations=(_shown(folder / "A.npy"),),
                      mode=(case.pattern,) if case.modes else (), stalls=case.stall_seed,
                      synth=False, testbench="engine", out=f"build/fuzz-{case.case_id}",
                      force=True)
    return options.command()


def save_failure(folder: Path, original: Case, outcome: Outcome, shrunk: ShrinkResult,
                 final: Outcome, log: Path | None) -> dict:
    """W.npy, A.npy (minimal), case.json and the minimal run's simulator log."""
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    case = shrunk.case
    np.save(folder / "W.npy", case.W)
    np.save(folder / "A.npy", case.A)
    np.save(folder / "W_original.npy", original.W)
    np.save(folder / "A_original.npy", original.A)
    if log is not None and log.is_file():
        shutil.copyfile(log, folder / "sim-verilator.log")
    info = {
        "case_id": original.case_id, "kind": outcome.kind, "detail": outcome.detail,
        "command": reproducer(case, folder),
        "minimal": {**case.scalars(), "kind": final.kind, "detail": final.detail},
        "original": original.scalars(),
        "shrink": {"evaluations": shrunk.evaluations, "complete": shrunk.complete},
    }
    (folder / "case.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


# -- the campaign ----------------------------------------------------------------------
# Verilator recompiles its runtime (verilated.o, verilated_threads.o, verilated_timing.o:
# ~4.5 s of CPU, more than half of a small build) for every testbench, with the same
# flags. verilated.mk runs every compile through $(OBJCACHE), meant for ccache; this
# stand-in keeps only those runtime objects, keyed by the whole compile command, in the
# run's work folder. Everything else compiles as usual.
_OBJCACHE = """#!/bin/sh
cache="$(dirname "$0")/objcache"
out=; prev=
for a in "$@"; do [ "$prev" = "-o" ] && out=$a; prev=$a; done
case "$out" in verilated*.o) ;; *) exec "$@" ;; esac
key=$(printf '%s\\n' "$@" | sha256sum | cut -c1-40)
if [ -f "$cache/$key.o" ]; then
  cp "$cache/$key.d" "${out%.o}.d" 2>/dev/null
  cp "$cache/$key.o" "$out" && exit 0
fi
"$@" || exit $?
mkdir -p "$cache"
[ -f "${out%.o}.d" ] && cp "${out%.o}.d" "$cache/$key.d.$$" && mv "$cache/$key.d.$$" "$cache/$key.d"
cp "$out" "$cache/$key.o.$$" && mv "$cache/$key.o.$$" "$cache/$key.o"
exit 0
"""


def install_objcache(folder: Path) -> str:
    """Write the runtime-object cache into ``folder``; returns the OBJCACHE value."""
    script = Path(folder) / "objcache.sh"
    script.write_text(_OBJCACHE)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def _worker_init(objcache: str | None) -> None:
    if objcache:
        os.environ["OBJCACHE"] = objcache


def investigate(case: Case, outcome: Outcome, work: Path, folder: Path, *,
                max_evals: int = SHRINK_EVALS, seconds: float = SHRINK_SECONDS) -> dict:
    """Shrink a failing case (the same failure kind must persist), re-run the minimal case
    and save it under ``folder``; returns what ``case.json`` holds."""
    def fails(c: Case) -> bool:
        return run_case(c, Path(work) / "shrink").kind == outcome.kind

    shrunk = shrink(case, fails, simplifications, key=Case.key, max_evals=max_evals,
                    deadline=time.monotonic() + seconds)
    final_dir = Path(work) / "final"
    final = run_case(shrunk.case, final_dir)
    return save_failure(folder, case, outcome, shrunk, final,
                        final_dir / "tb" / "sim-verilator.log")


def fuzz_one(seed: int, index: int, work_root: str, failures_dir: str) -> dict:
    """Generate, run and (on failure) shrink case ``index``; its folder is removed after."""
    t0 = time.perf_counter()
    work = Path(work_root) / f"c{index:05d}"
    try:
        case = generate_case(seed, index)
    except Exception as e:
        return {"index": index, "case_id": f"s{seed}-c{index:05d}", "kind": "exception",
                "detail": f"case generation: {type(e).__name__}: {e}",
                "seconds": time.perf_counter() - t0}
    outcome = run_case(case, work / "run")
    record = {"index": index, **case.scalars(), **features(case), "kind": outcome.kind,
              "detail": outcome.detail, "cycles": outcome.cycles, "beats": outcome.steps}
    if not outcome.ok:
        info = investigate(case, outcome, work, Path(failures_dir) / case.case_id)
        record.update(reproducer=info["command"], minimal=info["minimal"],
                      shrink_evaluations=info["shrink"]["evaluations"])
    shutil.rmtree(work, ignore_errors=True)
    record["seconds"] = time.perf_counter() - t0
    return record


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def campaign(seed: int, minutes: float, jobs: int, out: Path) -> tuple[list[dict], float]:
    """Run cases 0, 1, ... on ``jobs`` workers until ``minutes`` pass (cases in flight then
    finish, so the result is always a prefix of the sequence)."""
    failures_dir = out / "fuzz-failures"
    t0 = time.monotonic()
    deadline = t0 + 60 * minutes
    records: dict[int, dict] = {}
    failed = 0
    with tempfile.TemporaryDirectory(prefix="hss-fuzz-") as work_root:
        objcache = install_objcache(Path(work_root))
        with ProcessPoolExecutor(max_workers=jobs, initializer=_worker_init,
                                 initargs=(objcache,)) as pool:
            in_flight, next_index, last_report = {}, 0, 0.0
            while True:
                while (len(in_flight) < jobs and time.monotonic() < deadline
                       and failed < MAX_FAILURES):
                    fut = pool.submit(fuzz_one, seed, next_index, work_root, str(failures_dir))
                    in_flight[fut] = next_index
                    next_index += 1
                if not in_flight:
                    break
                done, _ = wait(in_flight, timeout=5, return_when=FIRST_COMPLETED)
                for fut in done:
                    try:
                        rec = fut.result()
                    except BaseException:
                        for other in in_flight:
                            other.cancel()
                        raise
                    records[in_flight.pop(fut)] = rec
                    if rec["kind"] is not None:
                        failed += 1
                        progress(f"FAIL {rec['case_id']} ({rec['kind']}): "
                                 f"{rec.get('reproducer', rec['detail'][:200])}")
                now = time.monotonic()
                if done and (now - last_report > 10 or not in_flight):
                    last_report = now
                    n = len(records)
                    rate = n / max(now - t0, 1e-9) * 60
                    progress(f"{n} cases, {rate:.1f}/min, {failed} failed, "
                             f"{_clock(deadline - now)} left"
                             + (", finishing the cases in flight" if now >= deadline else ""))
    if failed >= MAX_FAILURES:
        progress(f"stopped after {failed} failures")
    return [records[i] for i in sorted(records)], time.monotonic() - t0


def _histogram(records, name, label, order=None) -> list[list]:
    counts = Counter(r[name] for r in records if name in r)
    stalls = Counter(r[name] for r in records if name in r and r["stalls"])
    fails = Counter(r[name] for r in records if name in r and r["kind"] is not None)
    keys = order if order is not None else sorted(counts, key=lambda x: (str(type(x)), x))
    return [[label, str(k), counts[k], stalls[k], fails[k]] for k in keys if counts[k]]


def _bucket(steps: int) -> str:
    for hi, name in ((1, "1"), (4, "2-4"), (16, "5-16")):
        if steps <= hi:
            return name
    return f"17-{MAX_STEPS}"


CORNERS = [("g_eq_h", "a G == H rank"), ("g_1", "a G = 1 rank"), ("h_16", "an H = 16 rank"),
           ("one_one", "a 1:1 rank"), ("dense_single", "dense single rank"),
           ("four_ranks", "4 ranks"), ("k_padded", "K padded to the group"),
           ("m_overhang", "M overhangs the array"), ("n_overhang", "N overhangs the array"),
           ("tight_max_k", "max_k = padded K (tight accumulator)"),
           ("stalls", "random back-pressure")]


def summarize(records: list[dict], seconds: float, jobs: int, seed: int, minutes: float,
              command: str) -> tuple[Table, dict]:
    ok = [r for r in records if "ranks" in r]     # generation succeeded
    for r in ok:
        r["steps_bucket"] = _bucket(r["steps"])
    failures = [r for r in records if r["kind"] is not None]
    mismatches = [r for r in failures if r["kind"] in ("mismatch", "z-mismatch", "golden")]
    patterns = Counter(r["pattern"] for r in ok)
    rows = [["total", "cases", len(records), sum(r["stalls"] for r in ok), len(failures)]]
    rows += _histogram(ok, "build", "build")
    rows += _histogram(ok, "modes", "modes in the build")
    rows += _histogram(ok, "ranks", "ranks")
    rows += _histogram(ok, "width", "value width")
    rows += _histogram(ok, "signedness", "signedness")
    rows += _histogram(ok, "array", "array")
    rows += _histogram(ok, "acc_extra", "acc width - minimum")
    rows += _histogram(ok, "steps_bucket", "groups per tile",
                       ["1", "2-4", "5-16", f"17-{MAX_STEPS}"])
    rows += _histogram(ok, "w_kind", "W values")
    rows += _histogram(ok, "a_kind", "A values")
    for key, label in CORNERS:
        sel = [r for r in ok if r[key]]
        rows.append(["corner", label, len(sel), sum(r["stalls"] for r in sel),
                     sum(r["kind"] is not None for r in sel)])
    per_case = seconds * jobs / max(len(records), 1)
    notes = [
        f"Seed {seed}, {minutes:g} minutes on {jobs} workers: {len(records)} cases in "
        f"{seconds:.0f} s ({60 * len(records) / max(seconds, 1e-9):.1f} per minute, "
        f"{per_case:.1f} worker-seconds per case); "
        f"{len(patterns)} distinct patterns; max K {max((r['k'] for r in ok), default=0)}; "
        f"{sum(r['stalls'] for r in ok)} cases with random back-pressure.",
        "",
        f"**Mismatches: {len(mismatches)}** (must be 0); failures of any kind: "
        f"{len(failures)}" + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(
            Counter(r['kind'] for r in failures).items())) + ")" if failures else "") + ".",
        "",
        "Each case: emitted Verilog in Verilator, every tile checked against the hss golden "
        "model by the testbench, z_out.txt against an int64 NumPy W @ A, hss.matmul against "
        "W @ A, and cycles == steps + LATENCY when nothing stalls. Columns: cases with that "
        "value, how many of them ran with random back-pressure, how many failed.",
    ]
    if failures:
        notes += ["", "Failures (minimal reproducers under fuzz-failures/<case>/):"]
    for r in failures:
        notes.append(f"- `{r['case_id']}` {r['kind']}: " + (
            f"`{r['reproducer']}`" if "reproducer" in r else r["detail"].splitlines()[0]))
    table = Table("fuzz", "Constrained-random cosimulation (Verilator) vs the golden model",
                  ["dimension", "value", "cases", "with stalls", "failed"], rows, command,
                  notes)
    summary = {
        "command": command, "seed": seed, "minutes": minutes, "jobs": jobs,
        "cases": len(records), "seconds": round(seconds, 1),
        "worker_seconds_per_case": round(per_case, 2),
        "distinct_patterns": len(patterns), "patterns": dict(sorted(patterns.items())),
        "max_k": max((r["k"] for r in ok), default=0),
        "stall_cases": sum(r["stalls"] for r in ok),
        "mismatches": len(mismatches), "failures": len(failures),
        "histogram": [dict(zip(table.columns, row)) for row in rows],
        "failed_cases": [{k: r.get(k) for k in ("case_id", "kind", "detail", "reproducer",
                                                 "minimal", "shrink_evaluations")}
                         for r in failures],
        "bounds": {"max_ranks": MAX_RANKS, "max_h": MAX_H, "max_group": MAX_GROUP,
                   "max_slots": MAX_SLOTS, "max_side": MAX_SIDE,
                   "max_multipliers": MAX_MULTIPLIERS, "max_cost": MAX_COST,
                   "widths": list(WIDTHS), "max_acc_extra": MAX_ACC_EXTRA,
                   "max_steps": MAX_STEPS, "max_tile_side": MAX_TILE_SIDE, "max_k": MAX_K},
        "case_list": [{k: r.get(k) for k in ("case_id", "pattern", "rows", "cols", "width",
                                             "signed", "acc_width", "max_k", "m", "k", "n",
                                             "stall_seed", "kind", "cycles", "seconds")}
                      for r in records],
    }
    return table, summary


def run(args) -> int:
    """``python -m bench fuzz``: the campaign, its summary files; 1 if any case failed."""
    minutes = args.minutes if args.minutes is not None else (2 if args.quick else 20)
    seed = args.seed if args.seed is not None else 1
    jobs = args.jobs
    from gen.simulate import ToolMissing
    progress(f"fuzzing for {minutes:g} min on {jobs} workers, seed {seed}")
    try:
        records, seconds = campaign(seed, minutes, jobs, Path(args.out))
    except ToolMissing as e:
        print(f"bench fuzz: error: {e}", file=sys.stderr)
        return 2
    table, summary = summarize(records, seconds, jobs, seed, minutes, args.command)
    write_outputs(table, Path(args.out), args.machine)
    (Path(args.out) / "fuzz.json").write_text(
        json.dumps({"machine": args.machine, **summary}, indent=1) + "\n")
    return 1 if summary["failures"] else 0
