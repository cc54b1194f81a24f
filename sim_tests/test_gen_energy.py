"""Energy and EDP in ``python -m gen``'s report: the design against its dense twin, priced by
the default table or the user's ``--energy-table``."""
import json
from pathlib import Path

import genkit
import pytest

from hss.energy import DEFAULT_TABLE

ROOT = Path(__file__).resolve().parents[1]


def gen(*args):
    return genkit.gen("--sim", "none", "--no-synth", *args, timeout=300)


def report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def test_hss_beats_its_dense_twin_on_edp(tmp_path):
    r = gen("--ranks", "4:6,2:4", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    e = report(tmp_path / "o")["energy"]
    t = e["total"]
    assert t["design"]["steps"] * 3 == t["dense_twin"]["steps"]
    assert t["design"]["multiplies"] == t["dense_twin"]["multiplies"]   # same nonzeros
    assert t["edp_ratio"] <= 0.4 and t["energy_ratio"] < 1
    assert t["design"]["selectors"] > 0 == t["dense_twin"]["selectors"]
    assert e["table"]["name"] == "horowitz-45nm"
    assert "EDP" in r.stdout and "## Energy and EDP" in (tmp_path / "o" / "report.md").read_text()


def test_users_table_reprices_the_run(tmp_path):
    data = json.loads(DEFAULT_TABLE.read_text())
    data["name"] = "mine"
    data["actions"]["multiply"]["energy_pj"] *= 2
    table = tmp_path / "mine.json"
    table.write_text(json.dumps(data))
    assert gen("--ranks", "2:4", "--out", tmp_path / "a").returncode == 0
    r = gen("--ranks", "2:4", "--out", tmp_path / "b", "--energy-table", table)
    assert r.returncode == 0, r.stderr
    a, b = report(tmp_path / "a")["energy"], report(tmp_path / "b")["energy"]
    assert b["table"]["name"] == "mine"
    assert b["total"]["design"]["registers"] == a["total"]["design"]["registers"]
    assert b["total"]["design"]["multipliers"] > a["total"]["design"]["multipliers"]
    assert "--energy-table" in json.loads((tmp_path / "b" / "config.json").read_text())["command"]


@pytest.mark.parametrize("content, message", [
    (None, "No such file"), ("{", "is not JSON"), ("{}", "missing 'name'")])
def test_bad_energy_table_is_one_line_exit_2(tmp_path, content, message):
    table = tmp_path / "t.json"
    if content is not None:
        table.write_text(content)
    r = gen("--ranks", "2:4", "--out", tmp_path / "o", "--energy-table", table)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()


def test_flexible_build_reports_energy_per_layer(tmp_path):
    r = gen("--ranks", "4:4|4:6,2:4|1:4", "--rows", 2, "--cols", 2, "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    rep = report(tmp_path / "o")
    layers = rep["energy"]["layers"]
    assert len(layers) == len(rep["layers"]) == 4
    # of two layers of the same shape, the sparser mode spends less (and takes fewer steps)
    by_mode = {l["mode"]: x["design"] for l, x in zip(rep["layers"], layers)}
    assert by_mode["4:6,1:4"]["total"] < by_mode["4:6,2:4"]["total"]
    assert by_mode["4:6,1:4"]["steps"] < by_mode["4:6,2:4"]["steps"]


def test_counts_come_from_the_rtl_and_agree_with_the_golden_model(tmp_path):
    """Simulated, the energy is priced from the testbench's ACTIONS counts (a TASD layer's
    terms included) and its measured cycles; stalls add idle lane-cycles, not multiplies."""
    out = tmp_path / "o"
    r = genkit.gen("--ranks", "4:4|4:6,2:4|1:4", "--rows", 2, "--cols", 2, "--no-synth",
                   "--out", out, "--tasd", "4:4,2:4+4:6,1:4", "--tasd", "4:6,2:4",
                   "--stalls", 7)
    assert r.returncode == 0, r.stderr
    rep = report(out)
    e = rep["energy"]
    assert e["counts"] == "rtl" and e["rtl_counts_match_golden"] is True
    for layer, x in zip(rep["layers"], e["layers"]):
        assert x["design"]["cycles"] >= layer["steps"] == x["design"]["steps"]
    assert sum(x["design"]["idle_lane_cycles"] for x in e["layers"]) > 0     # stalls
    unstalled = tmp_path / "u"
    assert genkit.gen("--ranks", "4:4|4:6,2:4|1:4", "--rows", 2, "--cols", 2, "--no-synth",
                      "--out", unstalled, "--tasd", "4:4,2:4+4:6,1:4", "--tasd",
                      "4:6,2:4").returncode == 0
    calm = report(unstalled)["energy"]["total"]["design"]
    assert calm["multiplies"] == e["total"]["design"]["multiplies"]
    assert calm["total"] < e["total"]["design"]["total"]
    assert calm["cycles"] == calm["steps"]


def test_impossible_rtl_counts_fall_back_to_the_golden_ones():
    """A failing design may count more multiplies than its lanes can do: the report still
    prices the run (from the golden counts) and says that the RTL's disagree."""
    import types
    import warnings

    from gen.options import Options
    from gen.plan import Plan
    from gen.results import _run_energy
    from hdl.stimulus import gemm_vectors
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = Plan(Options.from_argv(["--ranks", "2:4", "--sim", "none", "--no-synth",
                                               "--rows", "1", "--cols", "1"]))
        vectors = [gemm_vectors(plan.config, l.W, l.A) for l in plan.layers]
    sim = types.SimpleNamespace(layer_cycles=[1], layer_actions=[
        {"wbeats": 1, "abeats": 1, "tiles": 1, "steps": 1, "nonzero": 999}])
    e = _run_energy(plan, vectors, sim)
    assert e.rtl_counts_match_golden is False and e.layers[0].counts == "golden"
    assert e.design.steps == vectors[0].steps
    assert e.to_json()["layers"][0]["counts"] == "golden"
