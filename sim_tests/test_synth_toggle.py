"""Gate-level toggle-count energy (synth.toggle): the mapped netlist under the generator's
own testbench, with the per-cell energies of cells.lib.

Small builds (1x1 arrays, int8, a few groups of K) keep each test to seconds; each design
is mapped once per module and its netlist shared by the workloads run on it.
`make test` installs Yosys and both simulators: a missing one fails, never skips.
"""
from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

import hss
import synth
from gen.emit import TOP, emit_verilog
from gen.testbench import write_testbench
from hdl import AcceleratorConfig
from hdl.config import FlexConfig
from hdl.stimulus import flex_gemm_vectors, gemm_vectors
from synth import toggle


def _tb(path, config, W, A, mode=None):
    """A testbench folder for Z = W @ A on ``config``; returns (folder, dense MACs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        v = (flex_gemm_vectors(config, W, A, mode) if isinstance(config, FlexConfig)
             else gemm_vectors(config, W, A))
    write_testbench(path, v)
    return path, W.shape[0] * W.shape[1] * A.shape[1]


def _random(config, m, k, n, seed, pattern=None):
    lo, hi = hss.value_range(config.width, config.signed)
    rng = np.random.default_rng(seed)
    W = rng.integers(lo, hi, (m, k), endpoint=True)
    A = rng.integers(lo, hi, (k, n), endpoint=True)
    return (W if pattern is None else hss.prune(W, pattern)), A


class Design:
    def __init__(self, root, config):
        self.root, self.config = root, config
        self.verilog = emit_verilog(config)[0][TOP]
        self.netlist = toggle.gate_netlist(self.verilog, TOP, root / "netlist")

    def energy(self, name, W, A, simulator="icarus", mode=None, **kw):
        tb, macs = _tb(self.root / name / "tb", self.config, W, A, mode)
        return toggle.toggle_energy(self.verilog, TOP, tb, self.root / name,
                                    simulator=simulator, macs=macs, netlist=self.netlist, **kw)


@pytest.fixture(scope="module")
def sparse(tmp_path_factory):
    """2:4 int8 on one PE."""
    return Design(tmp_path_factory.mktemp("sparse"),
                  AcceleratorConfig(hss.Pattern.parse("2:4"), 1, 1, 8, True))


@pytest.fixture(scope="module")
def twin(sparse, tmp_path_factory):
    """Its dense twin, 2:2."""
    return Design(tmp_path_factory.mktemp("twin"), sparse.config.dense_twin())


# ---- the energy table ----------------------------------------------------------------

def test_cells_sim_models_every_liberty_cell_with_its_pins():
    text = toggle.cells_sim_path().read_text()
    models = {m.group(1): [p.strip() for p in m.group(2).split(",")]
              for m in re.finditer(r"^module (\w+)\(([^)]*)\);", text, re.M)}
    lib = toggle.liberty_energies()
    assert set(models) == set(lib) == set(synth.TRANSISTORS)
    for cell, pins in models.items():
        assert sorted(pins) == sorted(lib[cell]["inputs"] + lib[cell]["outputs"]), cell
        assert len(lib[cell]["outputs"]) == 1
        assert (lib[cell]["clock_pin"] == "C") == lib[cell]["sequential"], cell


def test_liberty_energies_follow_the_documented_model():
    lib = toggle.liberty_energies()
    for cell, e in lib.items():
        model = toggle.model_switch_energy_fj(synth.TRANSISTORS[cell])
        assert e["switch_fj"] == pytest.approx(model, abs=0.005 + 1e-9), cell
        if e["sequential"]:
            assert e["clock_fj"] == pytest.approx(toggle.model_clock_energy_fj(), abs=0.005)
        else:
            assert e["clock_fj"] == 0.0
    # the anchor: a NAND2 output toggle at 45 nm, 1.1 V is 2.5 fF x 0.605 fJ/fF
    assert lib["NAND2"]["switch_fj"] == 1.51 and lib["DFF"]["clock_fj"] == 3.63
    # the header table of cells.lib lists the same numbers
    header = synth.liberty_path().read_text().split("*/", 1)[0]
    rows = {m.group(1): m.groups()[1:] for m in re.finditer(
        r"^ \*   (\w+)\s+([\d.]+)\s+(\d+)\s+([\d.]+)(?:\s+([\d.]+))?", header, re.M)}
    assert set(rows) == set(lib)
    for cell, (area, transistors, e_sw, e_clk) in rows.items():
        assert float(area) == synth.liberty_cells()[cell]["area"]
        assert int(transistors) == synth.TRANSISTORS[cell]
        assert float(e_sw) == lib[cell]["switch_fj"]
        assert float(e_clk or 0.0) == lib[cell]["clock_fj"]


# ---- the netlist -----------------------------------------------------------------------

def test_netlist_has_the_cells_of_the_area_flow(sparse, tmp_path):
    area = synth.area_nand2(sparse.verilog, TOP, tmp_path)
    n = sparse.netlist
    assert n["cells"] == area["total"]["cells"]
    assert n["nand2_eq"] == area["total"]["area"] and n["flip_flops"] == area["total"]["ff_count"]
    text = open(n["netlist"]).read()
    assert re.findall(r"^module\s+(\S+?)\(", text, re.M) == [TOP]
    assert "$" not in "".join(re.findall(r"^  (\S+) \S+ \($", text, re.M))


# ---- energy ----------------------------------------------------------------------------

def _check_sums(r):
    assert r["passed"] and r["energy_pj"] > 0 and r["energy_per_cycle_pj"] > 0
    assert all(v >= 0 for v in r["energy_by_cell_pj"].values())
    assert sum(r["energy_by_cell_pj"].values()) == pytest.approx(r["energy_pj"], rel=1e-12)
    assert r["switching_energy_pj"] + r["clock_energy_pj"] == pytest.approx(r["energy_pj"])
    assert r["combinational_energy_pj"] + r["flip_flop_energy_pj"] == \
        pytest.approx(r["energy_pj"])
    assert r["energy_per_cycle_pj"] * r["cycles"] == pytest.approx(r["energy_pj"])
    assert r["energy_per_mac_pj"] * r["macs"] == pytest.approx(r["energy_pj"])
    lib = toggle.liberty_energies()
    for t, e in r["energy_by_cell_pj"].items():
        expect = r["toggles"][t] * lib[t]["switch_fj"] \
            + r["clock_edges"].get(t, 0) * lib[t]["clock_fj"]
        assert e == pytest.approx(expect / 1000), t
    # one clock: every flip-flop sees every cycle
    assert sum(r["clock_edges"].values()) == r["flip_flops"] * r["cycles"]
    assert r["clock_energy_pj"] == pytest.approx(
        r["flip_flops"] * r["cycles"] * toggle.model_clock_energy_fj() / 1000, rel=0.01)
    assert 0 < r["activity"] < 1
    assert r["tb_cycles"] < r["cycles"]
    # the assumed fanout of 2 against each net's own: same order
    assert 0.5 < r["energy_load_aware_pj"] / r["energy_pj"] < 2


def test_netlist_passes_the_testbench_and_the_energy_adds_up(sparse):
    W, A = _random(sparse.config, 2, 32, 2, 1, sparse.config.pattern)
    r = sparse.energy("random", W, A)
    _check_sums(r)
    assert r["cells"] == sparse.netlist["cells"] and r["simulator"] == "icarus"
    assert set(r["seconds"]) == {"synth", "build", "run", "count"}
    saved = json.loads((sparse.root / "random" / "toggle.json").read_text())
    assert saved == {k: v for k, v in r.items() if k != "seconds"}


def test_toggles_are_deterministic(sparse):
    W, A = _random(sparse.config, 2, 32, 2, 2, sparse.config.pattern)
    a = sparse.energy("again", W, A)
    b = sparse.energy("again", W, A)
    a.pop("seconds"), b.pop("seconds")
    assert a == b


def test_zero_weights_or_activations_cost_clearly_less(sparse):
    W, A = _random(sparse.config, 2, 32, 2, 3, sparse.config.pattern)
    rand = sparse.energy("r", W, A)
    zero_w = sparse.energy("zw", np.zeros_like(W), A)
    zero_a = sparse.energy("za", W, np.zeros_like(A))
    assert zero_w["cycles"] == zero_a["cycles"] == rand["cycles"]
    assert zero_w["energy_pj"] < 0.85 * rand["energy_pj"]
    assert zero_a["energy_pj"] < 0.85 * rand["energy_pj"]
    # the clock costs the same whatever the data
    assert zero_w["clock_energy_pj"] == pytest.approx(rand["clock_energy_pj"])
    assert sum(zero_w["toggles"].values()) < sum(rand["toggles"].values())


def test_dense_workload_costs_more_per_cycle_than_sparse_on_the_dense_twin(twin):
    dense = twin.energy("dense", *_random(twin.config, 2, 32, 2, 4))
    sparse = twin.energy("sparse", *_random(twin.config, 2, 32, 2, 4, hss.Pattern.parse("1:4")))
    _check_sums(dense)
    assert dense["cycles"] == sparse["cycles"]
    assert dense["energy_per_cycle_pj"] > 1.1 * sparse["energy_per_cycle_pj"]


def test_verilator_counts_as_icarus_does(sparse):
    W, A = _random(sparse.config, 2, 32, 2, 5, sparse.config.pattern)
    ic = sparse.energy("ic", W, A, simulator="icarus")
    # a space in the path: Verilator's makefiles refuse it, so the build goes elsewhere
    vl = sparse.energy("v l", W, A, simulator="verilator")
    assert (sparse.root / "v l" / "sim-verilator" / "obj_dir" / "Vtb").is_file()
    _check_sums(vl)
    assert vl["cycles"] == ic["cycles"] and vl["tb_cycles"] == ic["tb_cycles"]
    assert vl["clock_energy_pj"] == ic["clock_energy_pj"]
    # Icarus does not count transitions out of x before the reset; Verilator starts at 0
    assert vl["energy_pj"] == pytest.approx(ic["energy_pj"], rel=0.05)


def test_stalls_stretch_the_run_and_lower_the_energy_per_cycle(sparse):
    W, A = _random(sparse.config, 2, 32, 2, 6, sparse.config.pattern)
    off = sparse.energy("off", W, A, stalls="off")
    on = sparse.energy("on", W, A, stalls=7)
    assert on["cycles"] > off["cycles"]
    assert on["energy_per_cycle_pj"] < off["energy_per_cycle_pj"]


def test_a_wrong_netlist_result_is_an_error(sparse, tmp_path):
    W, A = _random(sparse.config, 1, 8, 1, 7, sparse.config.pattern)
    tb, _ = _tb(tmp_path / "tb", sparse.config, W, A)
    exp = (tb / "expected.hex").read_text().splitlines()
    exp[0] = format(int(exp[0], 16) ^ 1, f"0{len(exp[0])}x")
    (tb / "expected.hex").write_text("\n".join(exp) + "\n")
    with pytest.raises(toggle.ToggleError, match="testbench FAIL"):
        toggle.toggle_energy(sparse.verilog, TOP, tb, tmp_path / "w", netlist=sparse.netlist)


def test_flexible_build_in_one_mode(tmp_path):
    c = FlexConfig("2:4|4:4", 1, 1, 8, True)
    design = Design(tmp_path, c)
    W, A = _random(c, 2, 32, 2, 8, hss.Pattern.parse("2:4"))
    r = design.energy("mode0", W, A, mode="2:4")
    _check_sums(r)


@pytest.mark.parametrize("variable, simulator", [
    ("IVERILOG", "icarus"), ("VVP", "icarus"), ("VERILATOR", "verilator"),
    ("YOSYS", "icarus")])
def test_a_missing_tool_is_tool_missing(sparse, tmp_path, monkeypatch, variable, simulator):
    monkeypatch.setenv(variable, str(tmp_path / "no-such-tool"))
    W, A = _random(sparse.config, 1, 8, 1, 9, sparse.config.pattern)
    tb, _ = _tb(tmp_path / "tb", sparse.config, W, A)
    with pytest.raises(synth.tools.ToolMissing):
        toggle.toggle_energy(sparse.verilog, TOP, tb, tmp_path / "w", simulator=simulator)
    assert not (tmp_path / "w").exists()


def test_bad_arguments(sparse, tmp_path):
    with pytest.raises(ValueError, match="simulator"):
        toggle.toggle_energy("", TOP, tmp_path, tmp_path, simulator="xsim")
    with pytest.raises(ValueError, match="stalls"):
        toggle.toggle_energy("", TOP, tmp_path, tmp_path, stalls="sometimes")
    with pytest.raises(FileNotFoundError, match="tb.sv"):
        toggle.toggle_energy("", TOP, tmp_path, tmp_path)
