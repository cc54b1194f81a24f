"""What a run tells its user: the printed summary and last lines, report.json's status,
report.md's units, and what it says of pruning and of TASD choices (issue 19's frictions)."""
import json
import re

import numpy as np
import pytest

import hss
from gen.report import edp_text, energy_text, si
from genkit import gen

HIGHLIGHT = "4:4|4:5|4:6|4:7,4:4|2:4|1:4"


def test_sim_none_says_generated_not_pass(tmp_path):
    out = tmp_path / "o"
    r = gen("--ranks", "2:4", "--rows", "1", "--cols", "1", "--sim", "none", "--no-synth",
            "--out", out)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[-1] == f"generated (not simulated): results in {out}"
    assert "PASS" not in r.stdout
    assert "testbench: generated, not simulated (--sim none)" in r.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "generated (not simulated)" and "testbench" not in report
    assert "Generated, not simulated" in (out / "report.md").read_text()


def test_the_end_of_a_run_points_at_its_results(tmp_path):
    out = tmp_path / "o"
    r = gen("--ranks", "2:4", "--rows", "1", "--cols", "1", "--no-synth", "--out", out)
    assert r.returncode == 0, r.stderr
    tail = r.stdout.strip().splitlines()[-4:]
    name = next(out.glob("*.core")).stem
    assert tail[0] == f"  report: {out / 'report.md'} (report.json for machines)"
    assert tail[1].startswith(f"  testbench: {out / 'tb'} (make -C ")
    assert tail[2] == f"  FuseSoC core: hss:gen:{name}:0.1.0 ({out / (name + '.core')})"
    assert tail[3] == f"PASS: results in {out}"
    assert json.loads((out / "report.json").read_text())["status"] == "pass"


def test_prune_reports_the_error_it_introduced(tmp_path):
    rng = np.random.default_rng(5)
    W = rng.integers(-100, 100, (3, 48))
    np.save(tmp_path / "W.npy", W)
    np.save(tmp_path / "A.npy", rng.integers(-100, 100, (48, 2)))
    out = tmp_path / "o"
    r = gen("--ranks", "4:6,2:4", "--rows", "2", "--cols", "2", "--weights", tmp_path / "W.npy",
            "--activations", tmp_path / "A.npy", "--prune", "--sim", "none", "--no-synth",
            "--out", out)
    assert r.returncode == 0, r.stderr
    expected = hss.decompose(W, "4:6,2:4")
    layer = json.loads((out / "report.json").read_text())["layers"][0]
    assert layer["prune"]["error"] == pytest.approx(expected.error, abs=1e-6)
    assert layer["prune"]["nonzeros"] == [int(np.count_nonzero(hss.prune(W, "4:6,2:4")))]
    assert layer["prune"]["weights_nonzeros"] == int(np.count_nonzero(W))
    assert f"pruned to 4:6,2:4 (error {100 * expected.error:.2f} %" in r.stdout
    assert "### Pruning" in (out / "report.md").read_text()


def test_dense_weights_without_prune_suggest_what_to_do(tmp_path):
    np.save(tmp_path / "W.npy", np.ones((2, 48), np.int8))
    np.save(tmp_path / "A.npy", np.ones((48, 2), np.int8))
    r = gen("--ranks", "4:6,2:4", "--weights", tmp_path / "W.npy", "--activations",
            tmp_path / "A.npy", "--sim", "none", "--no-synth", "--out", tmp_path / "o")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "pass --prune to project W onto 4:6,2:4" in r.stderr
    assert "or --tasd auto to decompose W" in r.stderr and not (tmp_path / "o").exists()


def test_tasd_auto_that_saves_nothing_says_so_and_names_the_best_candidate(tmp_path):
    """Dense int8 weights and a 1 % budget: auto ends on an exact cover that costs what dense
    costs; the summary says so and names the candidate that would save cycles, with its
    error."""
    rng = np.random.default_rng(2)
    W = rng.integers(-128, 128, (4, 64))
    np.save(tmp_path / "W.npy", W)
    np.save(tmp_path / "A.npy", rng.integers(-128, 128, (64, 4)))
    out = tmp_path / "o"
    r = gen("--ranks", HIGHLIGHT, "--rows", "2", "--cols", "2", "--weights", tmp_path / "W.npy",
            "--activations", tmp_path / "A.npy", "--tasd", "auto", "--sim", "none",
            "--no-synth", "--out", out)
    assert r.returncode == 0, r.stderr
    tasd = json.loads((out / "report.json").read_text())["layers"][0]["tasd"]
    assert tasd["saves"] is False and tasd["error"] <= 0.01
    best = tasd["best_saving"]
    assert best["steps"] < best["dense_steps"] and best["error"] > 0.01
    line = next(l for l in r.stdout.splitlines() if "layer 0: TASD" in l)
    assert "auto saves nothing over dense" in line
    assert f"the best candidate that does is {best['decomposition']}" in line
    assert f"at {100 * best['error']:.2f} % error" in line
    assert "saves no cycles over dense" in (out / "report.md").read_text()


def test_flexible_summary_shows_what_the_run_did(tmp_path):
    """Throughput per area of the run's own layers beside the best mode's limit: a run in the
    densest mode gets no credit for the sparsest."""
    out = tmp_path / "o"
    r = gen("--ranks", "4:4|4:6,2:4|1:4", "--rows", "1", "--cols", "1", "--mode", "4:4,2:4",
            "--sim", "none", "--target", "generic", "--out", out)
    assert r.returncode == 0, r.stderr
    report = json.loads((out / "report.json").read_text())
    tax = report["sparsity_tax"]
    layer = report["layers"][0]
    assert tax["run_throughput_per_area_vs_dense"] == pytest.approx(
        layer["dense_pe_cycles"] / layer["steps"] / tax["area_ratio"], rel=1e-3)
    assert tax["run_throughput_per_area_vs_dense"] < tax["throughput_per_area_vs_dense"]
    line = next(l for l in r.stdout.splitlines() if "NAND2-eq" in l and "area " in l)
    assert f"this run {tax['run_throughput_per_area_vs_dense']:.2f}x" in line
    assert f"up to {tax['throughput_per_area_vs_dense']:.2f}x dense ({tax['best_mode']})" in line


@pytest.mark.parametrize("value, unit, text", [
    (0.0205, "J", "20.5 mJ"), (802134e-12, "J", "802.1 nJ"), (1.0, "J", "1 J"),
    (999.96, "J", "1 kJ"), (0.9999, "J", "999.9 mJ"), (0, "J", "0"), (5e-13, "J", "500 fJ")])
def test_si_prefixes(value, unit, text):
    assert si(value, unit) == text


def test_energies_and_edp_read_without_counting_digits(tmp_path):
    assert energy_text(802134.0) == "802.1 nJ" and energy_text(None) == "-"
    assert edp_text(20_481_557_739_540.0) == "20.48 J x cycles"
    out = tmp_path / "o"
    r = gen("--ranks", "2:4", "--rows", "1", "--cols", "1", "--sim", "none", "--no-synth",
            "--out", out)
    assert r.returncode == 0, r.stderr
    md = (out / "report.md").read_text()
    energy = md[md.index("## Energy and EDP"):]
    energy = energy[:energy.find("\n## ")] if "\n## " in energy else energy
    assert re.search(r"\| \*\*EDP \(energy x cycles\)\*\* \| [\d.]+ [pnum]?J x cycles \|", energy)
    assert not re.search(r"\d{1,3}(,\d{3}){2,}", energy), "an unreadable long number"
