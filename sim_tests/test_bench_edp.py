"""bench edp's pieces that need no simulation (CI's `make bench-quick` runs the whole
benchmark): the naive design of each degree, the geomean, and the cross-check's verdicts."""
import math

import pytest

import hss
from bench import edp
from bench.cli import BENCHMARKS


def test_naive_design_has_the_density_of_each_highlight_degree():
    for p in hss.ModeSet.parse(edp.HIGHLIGHT).modes:
        g, h = (int(x) for x in edp.naive(p).split(":"))
        assert g == 8 and hss.Pattern.parse(edp.naive(p)).density == p.density
    with pytest.raises(ValueError, match="not an integer"):
        edp.naive(hss.Pattern.parse("3:7"))


def test_geomean_skips_missing_ratios():
    assert edp.geomean([0.5, 2.0]) == pytest.approx(1.0)
    assert edp.geomean([0.25, None, 1.0]) == pytest.approx(0.5)
    assert math.isnan(edp.geomean([]))


def _row(design, model, gate):
    return {"design": design, "weights": "4:6,2:4", "model_pj": model, "gate_pj": gate,
            "gate_over_model": gate / model}


def test_cross_check_verdicts_follow_the_target():
    notes = edp._toggle_notes([_row("dense 8:8", 100.0, 80.0),
                               _row("fixed 4:6,2:4", 50.0, 30.0)])
    assert "dense 8:8 on 4:6,2:4 weights: gate level / model = 0.800" in notes[0]
    assert "**met**" in notes[0] and "**not met**" in notes[1]
    assert "model 0.500, gate level 0.375" in notes[2]


def test_edp_is_a_benchmark_of_all():
    assert "edp" in BENCHMARKS
