"""The fuzz campaign (bench/fuzz.py): case generation, the shrinker, real cases through
Verilator, and an injected fault caught and shrunk end to end."""
from __future__ import annotations

import dataclasses
import json
import shlex
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import hss
import hdl.stimulus
from bench import fuzz
from bench.cli import BENCHMARKS, build_parser
from bench.fuzz import Case, generate_case, shrink, simplifications

DRAWS = 300


@pytest.fixture(scope="module")
def draws():
    return [generate_case(3, i) for i in range(DRAWS)]


def test_case_i_depends_only_on_seed_and_i():
    a = [generate_case(5, i).key() for i in (0, 7, 42)]
    b = [generate_case(5, i).key() for i in (42, 7, 0)][::-1]     # other order, fresh calls
    assert a == b
    assert len(set(a)) == 3
    assert generate_case(6, 7).key() != generate_case(5, 7).key()
    assert generate_case(5, 7).case_id == "s5-c00007"


def test_cases_stay_within_bounds(draws):
    for c in draws:
        p = c.p
        assert 1 <= p.num_ranks <= fuzz.MAX_RANKS
        assert all(1 <= r.g <= r.h <= fuzz.MAX_H for r in p.ranks)
        assert p.group_size <= fuzz.MAX_GROUP and p.slots <= fuzz.MAX_SLOTS
        assert 1 <= c.rows <= fuzz.MAX_SIDE and 1 <= c.cols <= fuzz.MAX_SIDE
        assert c.rows * c.cols * p.slots <= fuzz.MAX_MULTIPLIERS
        assert fuzz.build_cost(p, c.rows, c.cols, c.width) <= fuzz.MAX_COST
        assert fuzz.WIDTHS[0] <= c.width <= fuzz.WIDTHS[1]
        assert c.min_acc_width <= c.acc_width <= c.min_acc_width + fuzz.MAX_ACC_EXTRA
        assert 1 <= c.steps <= fuzz.MAX_STEPS and c.padded_k <= c.max_k
        assert c.tiles <= fuzz.MAX_TILE_SIDE ** 2
        assert c.W.shape == (c.m, c.k) and c.A.shape == (c.k, c.n)
        assert hss.conforms(c.W, p), c.case_id
        hss.check_range(c.W, c.width, c.signed, "W")
        hss.check_range(c.A, c.width, c.signed, "A")
        c.config  # the hardware config accepts it


def test_cases_cover_the_corners(draws):
    f = [fuzz.features(c) for c in draws]
    count = Counter()
    for x in f:
        count.update(k for k, v in x.items() if v is True)
    for corner, _label in fuzz.CORNERS:
        assert count[corner] >= 5, corner
    pats = {c.pattern for c in draws}
    for corner in ("1:1", "16:16"):
        assert any(corner in p.split(",") for p in pats), corner
    assert {x["ranks"] for x in f} == {1, 2, 3, 4}
    assert {x["signedness"] for x in f} == {"signed", "unsigned"}
    assert {x["width"] for x in f} == set(range(2, 17))
    assert {x["acc_extra"] for x in f} == set(range(fuzz.MAX_ACC_EXTRA + 1))
    assert "4x4" in {x["array"] for x in f} and "1x1" in {x["array"] for x in f}
    steps = {x["steps"] for x in f}
    assert 1 in steps and max(steps) > fuzz.MAX_STEPS // 2
    assert any(x["tiles"] == fuzz.MAX_TILE_SIDE ** 2 for x in f)
    kinds = {k.split("+")[0] for x in f for k in (x["w_kind"], x["a_kind"])}
    assert kinds == set(fuzz.VALUE_KINDS)
    assert any("+sparser" in x["w_kind"] for x in f)
    # the accumulator's worst case: full groups of extreme products, K = max_k, minimum width
    worst = [c for c in draws if c.max_k == c.padded_k and c.acc_width == c.min_acc_width
             and c.k % c.p.group_size == 0 and c.w_kind == c.a_kind == (
                 "min" if c.signed else "max")]
    assert any(np.count_nonzero(c.W[0]) == c.steps * c.p.slots for c in worst)


# -- the shrinker, without a simulator ---------------------------------------------------
def test_shrink_reaches_a_local_minimum_and_memoizes():
    calls = []

    def fails(x):
        calls.append(x)
        return x >= 13

    r = shrink(100, fails, lambda x: [x // 2, x - 1] if x else [])
    assert r.case == 13 and r.complete
    assert len(calls) == len(set(calls)) == r.evaluations
    limited = shrink(100, fails, lambda x: [x // 2, x - 1] if x else [], max_evals=3)
    assert not limited.complete and limited.evaluations == 3 and limited.case >= 13


def _big_case() -> Case:
    p = hss.Pattern.parse("3:4,2:3,2:2")
    rng = np.random.default_rng(1)
    W = hss.prune(rng.integers(-100, 100, (7, 50)), p).astype(np.int64)
    A = rng.integers(-100, 100, (50, 5)).astype(np.int64)
    c = Case("fake", str(p), 3, 2, 9, True, 120, 0, W, A, 77)
    return c.replace(acc_width=c.min_acc_width + 2)


def test_shrink_cases_with_a_fake_predicate():
    """The failure needs two ranks, two PE columns and a nonzero weight: everything else
    must go, and every candidate along the way must be a valid case."""
    tried = []

    def fails(c: Case) -> bool:
        tried.append(c)
        assert hss.conforms(c.W, c.p) and c.padded_k <= c.max_k
        hss.check_range(c.W, c.width, c.signed, "W")
        hss.check_range(c.A, c.width, c.signed, "A")
        assert c.acc_width >= 2 and c.m >= 1 and c.n >= 1 and c.k >= 1
        return c.p.num_ranks >= 2 and c.cols >= 2 and np.count_nonzero(c.W) > 0

    start = _big_case()
    r = shrink(start, fails, simplifications, key=Case.key, max_evals=10_000)
    c = r.case
    assert r.complete
    assert c.p.num_ranks == 2 and all(rank.h == 1 for rank in c.p.ranks)   # "1:1,1:1"
    assert (c.rows, c.cols, c.m, c.n, c.k) == (1, 2, 1, 1, 1)
    assert c.stall_seed is None and np.count_nonzero(c.W) == 1 and not c.A.any()
    assert c.max_k == c.padded_k and c.acc_width == c.min_acc_width
    assert c.width == fuzz._needed_width(c)
    assert not any(fails(x) for x in simplifications(c))      # locally minimal indeed
    again = shrink(start, fails, simplifications, key=Case.key, max_evals=10_000)
    assert again.case.key() == c.key()                        # deterministic
    assert len({x.key() for x in tried}) > 20


def test_shrink_keeps_what_the_failure_needs():
    """A failure that needs a padded K, stalls and a 4-rank pattern keeps all three."""
    p = hss.Pattern.parse("1:2,2:2,1:1,3:4")
    rng = np.random.default_rng(2)
    W = hss.prune(rng.integers(0, 15, (3, 37)), p).astype(np.int64)
    start = Case("fake", str(p), 2, 2, 4, False, 64, 0, W,
                 rng.integers(0, 15, (37, 3)).astype(np.int64), 9)
    start = start.replace(acc_width=start.min_acc_width)

    def fails(c):
        return c.p.num_ranks == 4 and c.k % c.p.group_size != 0 and c.stall_seed is not None

    c = shrink(start, fails, simplifications, key=Case.key, max_evals=10_000).case
    assert c.p.num_ranks == 4 and c.stall_seed == 9 and c.k % c.p.group_size
    assert (c.rows, c.cols, c.m, c.n) == (1, 1, 1, 1)
    assert not c.W.any() and not c.A.any()


def test_reproducer_is_a_gen_command(tmp_path):
    from gen.options import Options
    c = _big_case()
    argv = shlex.split(fuzz.reproducer(c, tmp_path / "f"))
    assert argv[:3] == ["python", "-m", "gen"]
    a = Options.from_argv(argv[3:])
    assert (a.ranks, a.rows, a.cols, a.width, a.signed, a.acc_width, a.max_k) == (
        c.pattern, c.rows, c.cols, c.width, c.signed, c.acc_width, c.max_k)
    assert [p.rsplit("/", 1)[-1] for p in a.weights + a.activations] == ["W.npy", "A.npy"]
    assert a.stalls == 77 and not a.synth
    unsigned = Options.from_argv(shlex.split(fuzz.reproducer(
        c.replace(signed=False, stall_seed=None), tmp_path))[3:])
    assert not unsigned.signed and unsigned.stalls is None


def test_bench_cli_wiring():
    p = build_parser()
    a = p.parse_args(["fuzz", "--minutes", "0.5", "--seed", "3", "--jobs", "2"])
    assert (a.which, a.minutes, a.seed, a.jobs) == ("fuzz", 0.5, 3, 2)
    assert "fuzz" not in BENCHMARKS                 # `all` stays a measurement run
    for bad in (["fuzz", "--minutes", "0"], ["fuzz", "--jobs", "-1"], ["cycles", "--seed", "1"]):
        with pytest.raises(SystemExit):
            from bench.cli import main
            main(bad)


# -- through Verilator -------------------------------------------------------------------
@pytest.fixture(scope="module")
def objcache(tmp_path_factory):
    return fuzz.install_objcache(tmp_path_factory.mktemp("objcache"))


@pytest.fixture
def cached(objcache, monkeypatch):
    monkeypatch.setenv("OBJCACHE", objcache)


def _worst_case() -> Case:
    """int12 at the accumulator's limit: every product is (-2048)^2, K = max_k, minimum
    accumulator width; M and N overhang a 2x2 array; K is two full groups."""
    p = hss.Pattern.parse("3:4,1:2")
    lo, _ = hss.value_range(12, True)
    mask = hss.prune(np.random.default_rng(4).random((3, 16)) + 0.5, p) != 0
    W = np.where(mask, lo, 0).astype(np.int64)
    A = np.full((16, 3), lo, np.int64)
    c = Case("worst", str(p), 2, 2, 12, True, 16, 0, W, A, None)
    return c.replace(acc_width=c.min_acc_width)


def test_real_cases_pass_in_verilator(tmp_path, cached, objcache):
    worst = _worst_case()
    assert np.count_nonzero(worst.W[0]) == worst.steps * worst.p.slots
    ref = worst.W @ worst.A
    assert int(ref.max()).bit_length() + 1 == worst.acc_width       # one more and it would wrap
    o = fuzz.run_case(worst, tmp_path / "worst")
    assert o.ok, o.detail
    assert o.cycles == o.steps + hdl.LATENCY
    stalled = next(c for c in (generate_case(0, i) for i in range(100))
                   if c.stall_seed is not None and c.tiles > 1
                   and fuzz.build_cost(c.p, c.rows, c.cols, c.width) < 3000)
    o = fuzz.run_case(stalled, tmp_path / "stalled")
    assert o.ok, (stalled.scalars(), o.detail)
    # Verilator's runtime objects were compiled once and reused
    assert len(list((Path(objcache).parent / "objcache").glob("*.o"))) >= 3


def test_injected_fault_is_caught_and_shrunk(tmp_path, cached, monkeypatch):
    """Expected results with one wrong value in the last tile: the testbench must fail,
    and the shrinker must reduce the case to one tile of one group without stalls."""
    original = hdl.stimulus.gemm_vectors

    def wrong_last_tile(config, W, A):
        v = original(config, W, A)
        tiles = v.expected_tiles.copy()
        tiles[-1, 0, 0] += 1
        return dataclasses.replace(v, expected_tiles=tiles)

    monkeypatch.setattr(hdl.stimulus, "gemm_vectors", wrong_last_tile)
    p = hss.Pattern.parse("2:3,1:2")
    rng = np.random.default_rng(0)
    W = hss.prune(rng.integers(-8, 8, (3, 14)), p).astype(np.int64)
    case = Case("injected", str(p), 2, 2, 4, True, 18, 0, W,
                rng.integers(-8, 8, (14, 3)).astype(np.int64), 5)
    case = case.replace(acc_width=case.min_acc_width)
    outcome = fuzz.run_case(case, tmp_path / "run")
    assert outcome.kind == "mismatch" and "MISMATCH tile 3" in outcome.detail
    info = fuzz.investigate(case, outcome, tmp_path / "work", tmp_path / "failure",
                            max_evals=5)
    m = info["minimal"]
    assert m["kind"] == "mismatch"                            # the minimal case still fails
    assert (m["rows"], m["cols"], m["m"], m["n"], m["stall_seed"]) == (1, 1, 1, 1, None)
    assert m["k"] <= hss.Pattern.parse(m["pattern"]).group_size
    saved = json.loads((tmp_path / "failure" / "case.json").read_text())
    assert saved["command"] == info["command"] and "--stalls" not in saved["command"]
    W_min = np.load(tmp_path / "failure" / "W.npy")
    assert W_min.shape == (1, m["k"]) and hss.conforms(W_min, m["pattern"])
    assert (tmp_path / "failure" / "sim-verilator.log").is_file()


_STUB = """module hss_accelerator(input clk, input rst,
  input [4095:0] weights__payload, input weights__valid, output weights__ready,
  input [4095:0] activations__payload, input activations__valid, output activations__ready,
  output [4095:0] tiles__payload, output tiles__valid, input tiles__ready);
  assign weights__ready = 1'b1;
  assign activations__ready = 1'b1;
  assign tiles__valid = 1'b0;
  assign tiles__payload = 0;
endmodule
"""


def _fault(kind, monkeypatch):
    """Break one link of the chain so that exactly ``kind`` must be reported."""
    import gen.simulate
    if kind == "exception":
        def boom(config, W, A):
            raise RuntimeError("injected")
        monkeypatch.setattr(hdl.stimulus, "gemm_vectors", boom)
    elif kind == "golden":
        original = hdl.stimulus.gemm_vectors
        monkeypatch.setattr(hdl.stimulus, "gemm_vectors", lambda c, W, A: dataclasses.replace(
            original(c, W, A), expected=original(c, W, A).expected + 1))
    elif kind == "sim-error":
        monkeypatch.setattr(fuzz, "_emit", lambda config: "module hss_accelerator(;\n")
    elif kind == "timeout":
        monkeypatch.setattr(fuzz, "_emit", lambda config: _STUB)
    elif kind == "z-mismatch":
        real = gen.simulate.simulate

        def corrupt_z(tb_dir, simulator, **kw):
            r = real(tb_dir, simulator, **kw)
            lines = r.z_out.read_text().splitlines()
            r.z_out.write_text("\n".join([str(int(lines[0]) ^ 1)] + lines[1:]) + "\n")
            return r
        monkeypatch.setattr(gen.simulate, "simulate", corrupt_z)
    elif kind == "cycles":
        monkeypatch.setattr(hdl, "LATENCY", hdl.LATENCY + 1)


@pytest.mark.parametrize("kind", ["exception", "golden", "sim-error", "timeout", "z-mismatch",
                                  "cycles"])
def test_every_check_can_fail(kind, tmp_path, cached, monkeypatch):
    case = _worst_case().replace(rows=1, cols=1)
    _fault(kind, monkeypatch)
    o = fuzz.run_case(case, tmp_path)
    assert o.kind == kind, o.detail
