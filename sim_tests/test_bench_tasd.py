"""The TASD benchmark (bench/tasd.py): its choice rule against hss.tasd.choose, the
aggregates, and small real runs through ``python -m gen`` (Icarus, for speed): the digits MLP
layer after layer from the RTL's outputs, and a MiniLM slice with ``--tasd auto``."""
import numpy as np
import pytest

from bench import tasd as bench
from bench.cli import BENCHMARKS
from hss import tasd


def test_tasd_is_a_benchmark():
    assert "tasd" in BENCHMARKS


def test_pick_is_chooses_rule(minilm):
    """The grid-based pick chooses what hss.tasd.choose chooses, at every budget."""
    rng = np.random.default_rng(3)
    for W in (minilm[0].W[:8], minilm[5].W[:4], rng.integers(-127, 128, (4, 56))):
        grid = bench.layer_grid(W)
        assert [g["decomposition"] for g in grid] == [str(d) for d in bench.candidates()]
        assert len(grid) == 156 and sum(g["terms"] == 1 for g in grid) == 12
        for budget in (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0):
            chosen = bench._silent(tasd.choose, W, bench.candidates(), budget, bench.MACS)
            g = bench.pick(grid, budget)
            assert g["decomposition"] == str(chosen.decomposition)
            assert g["error"] == pytest.approx(chosen.error)


def test_aggregate_and_pareto():
    def layer(errors, steps, norm2, m=4, k=64):
        return {"norm2": norm2, "shape": [m, k], "dense_steps": k // 8,
                "grid": [{"decomposition": d, "terms": 1, "residual2": e * e * norm2,
                          "steps": s} for d, e, s in zip("abc", errors, steps)]}
    one = layer([0.0, 0.3, 0.5], [8, 4, 2], 10.0)
    agg = bench._aggregate([one])
    assert [a["error"] for a in agg] == pytest.approx([0.0, 0.3, 0.5])
    assert [a["speedup"] for a in agg] == [1.0, 2.0, 4.0]
    two = bench._aggregate([one, layer([0.0, 0.1, 0.5], [8, 4, 2], 30.0)])
    assert two[1]["error"] == pytest.approx(np.sqrt((0.09 * 10 + 0.01 * 30) / 40))
    points = [{"decomposition": d, "speedup": s, "error": e}
              for d, s, e in (("a", 1, 0), ("b", 2, 0.3), ("c", 2, 0.2), ("d", 3, 0.1),
                              ("e", 0.5, 0))]
    assert bench._pareto(points) == {"a", "d"}


def test_mlp_configurations(mlp):
    configs = bench.mlp_configs(mlp, quick=True)
    assert configs[0].kind == "dense" and configs[0].specs == (bench.DENSE,) * 3
    for c in configs:
        assert len(c.specs) == len(c.results) == 3
        for layer, spec, r in zip(mlp.layers, c.specs, c.results):
            assert str(r.decomposition) == spec
            if c.kind == "prune":
                assert len(r.decomposition) == 1
            if c.kind == "choose":
                chosen = bench._silent(tasd.choose, layer.W, bench.candidates(), c.budget, 8)
                assert str(chosen.decomposition) == spec and r.error <= c.budget
    full = bench.mlp_configs(mlp, quick=False)
    assert sum(c.kind == "prune" for c in full) == 11           # the 12 modes but dense


def test_mlp_through_the_rtl(mlp, tmp_path):
    """Three gen runs (one per network layer), each configuration's activations from the
    RTL's Z of the layer before: Z and accuracy equal the golden model's (run_mlp checks)."""
    configs = [c for c in bench.mlp_configs(mlp, quick=True)
               if c.name in ("dense", "prune 4:6,2:4", "TASD 4:6,2:4+4:6,1:4")]
    n = 8
    rows = bench.run_mlp(mlp, configs, mlp.X_test[:n], mlp.y_test[:n], tmp_path, jobs=2,
                         sim="icarus")
    by = {r["name"]: r for r in rows}
    dense, pruned, td = by["dense"], by["prune 4:6,2:4"], by["TASD 4:6,2:4+4:6,1:4"]
    assert dense["speedup"] == 1.0 and dense["delta_points"] == 0
    # cycles are the testbench's: no back-pressure, so every step is one cycle
    for r in rows:
        assert r["cycles"] == r["steps"] == sum(r["cycles_per_layer"])
    # a layer of N=8 images is 2 column tiles x ceil(M/4) row tiles x steps per tile
    tiles = [2 * -(-layer.W.shape[0] // 4) for layer in mlp.layers]
    assert dense["steps_per_layer"] == [t * layer.W.shape[1] // 8
                                        for t, layer in zip(tiles, mlp.layers)]
    assert td["steps_per_layer"] == [t * tasd.steps(td["specs"][0], layer.W.shape[1], 8)
                                     for t, layer in zip(tiles, mlp.layers)]
    assert pruned["speedup"] > td["speedup"] > 1.5
    for r in rows:
        assert r["accuracy"] == r["golden_accuracy"]
    assert bench.mlp_targets(rows)["dense_accuracy"] == dense["accuracy"]


def test_minilm_slice_through_the_rtl(minilm, tmp_path):
    rows = bench.rtl_slices([minilm[0]], tmp_path, jobs=2, sim="icarus")
    auto, fixed = rows
    assert auto["request"] == "auto 0.05" and auto["agree"] and fixed["agree"]
    assert auto["error"] <= 0.05
    assert fixed["gen_choice"] == str(bench._silent(
        tasd.choose, minilm[0].W[:8], bench.candidates(), bench.RTL_FIXED_BUDGET, 8
    ).decomposition)
    assert len(fixed["gen_choice"].split("+")) == 2 and fixed["steps"] < auto["steps"]


def test_gen_refusal_is_one_line(tmp_path):
    bad = bench.GenLayer(np.full((4, 16), 300), np.ones((16, 4), np.int64), "4:4,4:4")
    with pytest.raises(bench.GenFailed, match="refused its input") as e:
        bench.run_gen([bad], tmp_path, jobs=1, sim="none")
    assert "\n" not in str(e.value) and "gen.log" in str(e.value)
