"""Counting actions in the RTL (issue 11): the emitted testbench (tb.sv on Verilator and
Icarus, test_cocotb.py on cocotb) counts per layer, on the simulated RTL's streams, the
weights and activations beats and the tiles taken, the nonzero weight values of the weights
beats taken and the PE steps they took, and prints ``ACTIONS <l> WBEATS <n> ABEATS <n>
TILES <n> NONZERO <n> STEPS <n>``; ``gen.simulate`` parses them into
``SimResult.layer_actions``.

Expected numbers are computed here from the vectors, independently of gen.testbench's (tbkit's)
bit arithmetic: beats and tiles from ``GemmVectors``, nonzeros by unpacking each beat with
its Amaranth layout (``simkit.unpack``), steps as ``GemmVectors.steps``; and, independently
of any payload decoding, from W itself: a layer's NONZERO is ``nnz(W)`` once per column tile
(its weight beats are streamed once per column tile; padding rows, K padding and unused
fields hold zeros), the sum of the terms' nnz for a TASD layer.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from amaranth.back import verilog

import hss
from gen.simulate import ACTION_KEYS as SIM_ACTION_KEYS
from gen.simulate import parse_report, simulate
from gen.testbench import ACTION_KEYS, LAYER_FIELDS, expected_actions, write_testbench
from hdl import AcceleratorConfig, HSSAccelerator
from hdl.config import FlexConfig
from hdl.flex import FlexAccelerator, flex_weight_beat_layout
from hdl.stimulus import flex_gemm_vectors, gemm_vectors, segment_vectors
from hdl.top import weight_beat_layout
from simkit import unpack

SIMS = ("verilator", "icarus")
HIGHLIGHT = "4:4|4:5|4:6|4:7,4:4|2:4|1:4"
STALL_SEEDS = (3, 2**32 - 1)


@pytest.fixture(autouse=True)
def _no_stalls_from_the_environment(monkeypatch):
    """The Makefile and test_cocotb.py honour STALLS from the environment: tests set it."""
    monkeypatch.delenv("STALLS", raising=False)


def _nonzero_ints(rng, lo, hi, shape):
    x = rng.integers(lo, hi, shape, endpoint=True)
    return np.where(x == 0, 1, x)


def _limits(c):
    return (-(1 << (c.width - 1)), (1 << (c.width - 1)) - 1) if c.signed \
        else (0, (1 << c.width) - 1)


def _fixed_4_6_2_4():
    """4:6,2:4 on 2x2, int8: a padded row and K padding (40 -> 48), one and two column
    tiles, and an all-zero layer. Each case returns (config, layers, nnz(W) per layer)."""
    p = hss.Pattern.parse("4:6,2:4")
    c = AcceleratorConfig(p, 2, 2, 8, True)
    rng = np.random.default_rng(11)
    lo, hi = _limits(c)
    layers, nnz = [], []
    for m, k, n, zero in ((3, 40, 2, False), (4, 48, 3, False), (2, 24, 2, True)):
        W = np.zeros((m, k), np.int64) if zero else hss.prune(_nonzero_ints(rng, lo, hi, (m, k)), p)
        A = rng.integers(lo, hi, (k, n), endpoint=True)
        layers.append(gemm_vectors(c, W, A))
        nnz.append(int(np.count_nonzero(W)))
    return c, layers, nnz


def _fixed_2_4():
    """2:4 on 1x3, uint6: random (some kept values zero), three column tiles, and a TASD
    layer (a dense W as the segments 2:4 + 2:4)."""
    p = hss.Pattern.parse("2:4")
    c = AcceleratorConfig(p, 1, 3, 6, False)
    rng = np.random.default_rng(12)
    lo, hi = _limits(c)
    layers, nnz = [], []
    for m, k, n in ((2, 10, 3), (1, 8, 7)):
        W = hss.prune(rng.integers(lo, hi, (m, k), endpoint=True), p)
        layers.append(gemm_vectors(c, W, rng.integers(lo, hi, (k, n), endpoint=True)))
        nnz.append(int(np.count_nonzero(W)))
    W = _nonzero_ints(rng, lo, hi, (2, 13))
    d = hss.decompose(W, "2:4+2:4")
    assert d.exact
    A = rng.integers(lo, hi, (13, 3), endpoint=True)
    layers.append(segment_vectors(c, [(t, 0) for t in d.terms], A))
    nnz.append(sum(int(np.count_nonzero(t)) for t in d.terms))
    assert nnz[-1] == np.count_nonzero(W)
    return c, layers, nnz


def _flex_highlight():
    """HighLight's 12 modes on 2x2 (8 lanes): layers in a 2-step mode (4:4,4:4), a
    2-groups-per-beat mode (4:7,1:4), a 1:1 mode (4:6,2:4), and a TASD layer of two terms in
    different modes (4:4,2:4 + 4:6,1:4), each tile streaming both terms' beats."""
    c = FlexConfig(HIGHLIGHT, 2, 2)
    rng = np.random.default_rng(13)
    lo, hi = _limits(c)
    layers, nnz = [], []
    for mode, (m, k, n) in (("4:4,4:4", (3, 20, 2)), ("4:7,1:4", (2, 60, 3)),
                            ("4:6,2:4", (3, 30, 2))):
        W = hss.prune(_nonzero_ints(rng, lo, hi, (m, k)), hss.Pattern.parse(mode))
        A = rng.integers(lo, hi, (k, n), endpoint=True)
        layers.append(flex_gemm_vectors(c, W, A, mode))
        nnz.append(int(np.count_nonzero(W)))
    W = _nonzero_ints(rng, lo, hi, (3, 37))
    d = hss.decompose(W, "4:4,2:4+4:6,1:4")
    A = rng.integers(lo, hi, (37, 4), endpoint=True)
    layers.append(segment_vectors(c, list(zip(d.terms, ("4:4,2:4", "4:6,1:4"))), A))
    nnz.append(sum(int(np.count_nonzero(t)) for t in d.terms))
    assert len({v.mode for v in layers}) == 4
    assert {v.steps_per_beat for v in layers} == {1, 2}
    return c, layers, nnz


CASES = {"fixed_4-6_2-4_2x2": _fixed_4_6_2_4, "fixed_2-4_1x3": _fixed_2_4,
         "flex_highlight_2x2": _flex_highlight}


def _case(name):
    """(config, layers, expected NONZERO per layer): nnz(W) (of a TASD layer: the sum of
    its terms') once per column tile, as each column tile streams the weight rows again."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        c, layers, nnz = CASES[name]()
    return c, layers, [z * -(-v.n // c.cols) for z, v in zip(nnz, layers)]


def _independent_actions(c, layers) -> list[dict]:
    """The expected counts, decoding each weights beat with its Amaranth layout."""
    flex = isinstance(c, FlexConfig)
    layout = flex_weight_beat_layout(c) if flex else weight_beat_layout(c)
    out = []
    for v in layers:
        nonzero = steps = 0
        for beat in v.weight_beats:
            fields = unpack(beat, layout)
            rows = fields["rows"] if flex else fields["groups"]
            assert len(rows) == c.rows
            nonzero += sum(1 for row in rows for x in row["values"] if x != 0)
            steps += c.schedule.steps_per_beat(fields.get("mode", 0)) if flex else 1
        assert steps == v.steps
        out.append(dict(wbeats=len(v.weight_beats), abeats=len(v.act_beats), tiles=v.tiles,
                        nonzero=nonzero, steps=v.steps))
    return out


def _build(root: Path, c, layers, **kw) -> Path:
    (root / "rtl").mkdir(parents=True, exist_ok=True)
    top = FlexAccelerator(c) if isinstance(c, FlexConfig) else HSSAccelerator(c)
    (root / "rtl" / "hss_accelerator.v").write_text(verilog.convert(top, name="hss_accelerator"))
    write_testbench(root / "tb", layers, **kw)
    return root / "tb"


# -- Python only --------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(CASES))
def test_expected_actions_match_an_independent_decoding(name):
    c, layers, nnz = _case(name)
    expected = _independent_actions(c, layers)
    assert expected_actions(layers) == expected
    assert [a["nonzero"] for a in expected] == nnz
    assert [a["steps"] for a in expected] == [v.steps for v in layers]
    assert expected_actions(layers[0]) == expected[:1]          # one GemmVectors


def test_layers_hex_ends_each_layers_beats(tmp_path):
    c, layers, _ = _case("flex_highlight_2x2")
    write_testbench(tmp_path, layers)
    assert LAYER_FIELDS[-1] == "BEATS_END"
    at = LAYER_FIELDS.index("BEATS_END")
    words = [int(x, 16) for x in (tmp_path / "layers.hex").read_text().split()]
    ends = [(w >> (32 * at)) & 0xFFFFFFFF for w in words]
    assert ends == list(np.cumsum([v.beats for v in layers]))
    assert all(len(x) == 8 * len(LAYER_FIELDS)
               for x in (tmp_path / "layers.hex").read_text().split())


def test_parse_report_reads_actions_lines():
    text = ("STALLS off\nLAYER 0 CYCLES 8 STEPS 8\nLAYER 1 CYCLES 2 STEPS 2\n"
            "ACTIONS 1 WBEATS 2 ABEATS 2 TILES 1 NONZERO 32 STEPS 4\n"
            "   12.00ns INFO     cocotb.hss_accelerator             "
            "ACTIONS 0 WBEATS 8 ABEATS 8 TILES 4 NONZERO 5000000000 STEPS 8\n"
            "CYCLES 14 IDEAL 10 LATENCY 4\nMISMATCHES 0\nPASS\n")
    r = parse_report(text)
    assert r["layer_actions"] == [
        dict(wbeats=8, abeats=8, tiles=4, nonzero=5000000000, steps=8),
        dict(wbeats=2, abeats=2, tiles=1, nonzero=32, steps=4)]
    assert r["layer_cycles"] == (8, 2) and r["cycles"] == 14 and r["passed"]
    assert parse_report("PASS\n")["layer_actions"] == []
    assert SIM_ACTION_KEYS == ACTION_KEYS == ("wbeats", "abeats", "tiles", "nonzero", "steps")


# -- in the simulators --------------------------------------------------------------------

@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("name", list(CASES))
def test_rtl_counts_equal_the_vectors_with_and_without_stalls(tmp_path, name, sim):
    c, layers, nnz = _case(name)
    expected = _independent_actions(c, layers)
    tb = _build(tmp_path, c, layers)
    runs = {}
    for stalls in (None, *STALL_SEEDS):
        r = simulate(tb, sim, stalls=stalls)
        assert r.passed, r.log.read_text()
        runs[stalls] = r
        assert r.layer_actions == expected, (stalls, r.log.read_text())
        # independent of the payload decoding: nnz(W) per column tile, K/row padding zeros
        assert [a["nonzero"] for a in r.layer_actions] == nnz
        assert [a["steps"] for a in r.layer_actions] == [v.steps for v in layers]
        assert sum(a["steps"] for a in r.layer_actions) == r.ideal
        log = r.log.read_text()
        assert log.count("\nACTIONS ") == len(layers)
        for k, a in enumerate(expected):
            assert (f"\nACTIONS {k} WBEATS {a['wbeats']} ABEATS {a['abeats']} TILES "
                    f"{a['tiles']} NONZERO {a['nonzero']} STEPS {a['steps']}\n") in log
    # the stalls changed the timing, not what was counted
    assert runs[None].layer_cycles == tuple(v.steps for v in layers)
    assert all(runs[s].cycles > runs[None].cycles for s in STALL_SEEDS)
    assert len({tuple(map(str, r.layer_actions)) for r in runs.values()}) == 1


def test_baked_stalls_count_the_same(tmp_path):
    """A testbench written with ``stall_seed`` counts as one without."""
    c, layers, _ = _case("fixed_2-4_1x3")
    r = simulate(_build(tmp_path, c, layers, stall_seed=5), "icarus")
    assert r.passed, r.log.read_text()
    assert r.cycles > sum(v.steps for v in layers) + 4
    assert r.layer_actions == _independent_actions(c, layers)


def test_existing_lines_come_first_and_unchanged(tmp_path):
    """The new ACTIONS lines sit between the LAYER lines and CYCLES; every other line keeps
    its format (other code parses them)."""
    c, layers, _ = _case("fixed_4-6_2-4_2x2")
    r = simulate(_build(tmp_path, c, layers), "icarus")
    lines = [x for x in r.log.read_text().splitlines()
             if x.split(" ")[0] in ("STALLS", "LAYER", "ACTIONS", "CYCLES", "MISMATCHES",
                                    "PASS")]
    n = len(layers)
    assert lines[0] == "STALLS off"
    assert lines[1:1 + n] == [f"LAYER {k} CYCLES {v.steps} STEPS {v.steps}"
                              for k, v in enumerate(layers)]
    assert [x.split(" ")[:2] for x in lines[1 + n:1 + 2 * n]] == \
        [["ACTIONS", str(k)] for k in range(n)]
    steps = sum(v.steps for v in layers)
    assert lines[1 + 2 * n:] == [f"CYCLES {steps + 4} IDEAL {steps} LATENCY 4",
                                 "MISMATCHES 0", "PASS"]


@pytest.mark.parametrize("stalls", [None, "9"])
def test_cocotb_counts_the_same(tmp_path, monkeypatch, stalls):
    """test_cocotb.py prints the same ACTIONS lines as tb.sv (one small flexible case with
    a TASD layer: mode decoding, several layers)."""
    c = FlexConfig(HIGHLIGHT, 1, 2)
    rng = np.random.default_rng(21)
    lo, hi = _limits(c)
    W1 = hss.prune(_nonzero_ints(rng, lo, hi, (1, 16)), hss.Pattern.parse("4:4,4:4"))
    W2 = _nonzero_ints(rng, lo, hi, (1, 24))
    d = hss.decompose(W2, "4:4,2:4+4:6,1:4")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        layers = [flex_gemm_vectors(c, W1, rng.integers(lo, hi, (16, 2), endpoint=True),
                                    "4:4,4:4"),
                  segment_vectors(c, list(zip(d.terms, ("4:4,2:4", "4:6,1:4"))),
                                  rng.integers(lo, hi, (24, 3), endpoint=True))]
    tb = _build(tmp_path, c, layers)
    if stalls is not None:
        monkeypatch.setenv("STALLS", stalls)
    r = simulate(tb, "cocotb-icarus")
    assert r.passed, r.log.read_text()
    expected = _independent_actions(c, layers)
    assert r.layer_actions == expected
    assert [a["nonzero"] for a in expected] == \
        [np.count_nonzero(W1), sum(int(np.count_nonzero(t)) for t in d.terms) * 2]
    same = simulate(tb, "icarus", stalls=stalls)
    assert same.layer_actions == r.layer_actions and same.cycles == r.cycles
