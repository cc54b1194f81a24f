"""``python -m gen --tasd``: layers run as TASD decompositions (``hss.tasd``), each term a
segment of every tile into the same accumulators, cosimulated in Verilator and Icarus against
NumPy; ``auto`` picks per layer; the accumulators are sized for all the terms of a tile; bad
specs are refused in one line."""
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import hss
from genkit import gen, read_z
from gen.options import Options
from gen.inputs import InputError
from gen.plan import Plan
from hdl import AcceleratorConfig
from hdl.stimulus import gemm_vectors, segment_vectors

ROOT = Path(__file__).resolve().parents[1]
HIGHLIGHT = "4:4|4:5|4:6|4:7,4:4|2:4|1:4"


def save(path: Path, x) -> Path:
    np.save(path, np.asarray(x, np.int64))
    return path


def unstructured(rng, m, k, density):
    """int8 weights with no structure: what real layers look like to HSS hardware."""
    return rng.integers(-128, 128, (m, k)) * (rng.random((m, k)) < density)


def plan(*argv):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        return Plan(Options.from_argv(["--sim", "none", "--no-synth", *map(str, argv)]))


@pytest.mark.parametrize("sim, stalls", [("verilator", ["--stalls", "5"]), ("icarus", [])])
def test_flexible_build_runs_decompositions_bit_exact(tmp_path, sim, stalls):
    """An explicit decomposition and an auto choice, one layer each, back to back: Z of every
    layer equals NumPy's ``sum_t W_t @ A`` on the terms of ``hss.decompose``."""
    rng = np.random.default_rng(3)
    W1, A1 = unstructured(rng, 6, 100, 1.0), rng.integers(-128, 128, (100, 5))
    W2, A2 = unstructured(rng, 5, 64, 0.3), rng.integers(-128, 128, (64, 3))
    w1, a1, w2, a2 = (save(tmp_path / f"{n}.npy", x) for n, x in
                      (("w1", W1), ("a1", A1), ("w2", W2), ("a2", A2)))
    out = tmp_path / "o"
    r = gen("--ranks", HIGHLIGHT, "--rows", 2, "--cols", 2, "--sim", sim, "--no-synth",
            "--out", out, *stalls, "--weights", w1, "--activations", a1,
            "--tasd", "4:4,2:4+4:6,1:4", "--weights", w2, "--activations", a2,
            "--tasd", "auto", "--max-error", "0.02",
            # the engine's cycles are this test's subject; on Verilator the system runs too
            "--testbench", "both" if sim == "verilator" else "engine")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "TASD 4:4,2:4+4:6,1:4" in r.stdout
    report = json.loads((out / "report.json").read_text())
    first, second = report["layers"]
    assert first["tasd"]["decomposition"] == "4:4,2:4+4:6,1:4"
    assert second["tasd"]["requested"] == "auto" and second["tasd"]["error"] <= 0.02
    # the choice is hss's: the cheapest candidate within the budget on this build
    chosen = hss.tasd.choose(W2, hss.tasd.candidates(HIGHLIGHT, 2), 0.02, 8)
    assert second["mode"] == str(chosen.decomposition)
    z1, z2 = read_z(out / "tb" / "z_out.txt", [(6, 5), (5, 3)])
    if sim == "verilator":          # the system's Z is checked against tb/z_out.txt as well
        run = report["system"]["testbench"]
        assert run["passed"] and run["z_agrees_with_engine_testbench"]
        assert all(l["exact"] and l["counters_as_golden"] for l in run["layers"])
    d1 = hss.decompose(W1, "4:4,2:4+4:6,1:4")
    assert np.array_equal(z1, sum(t @ A1 for t in d1.terms))
    assert np.array_equal(z1, d1.approximation() @ A1)
    assert np.array_equal(z2, chosen.approximation() @ A2)
    assert first["tasd"]["error"] == pytest.approx(d1.error, abs=1e-6)
    assert first["tasd"]["nonzeros"] == list(d1.nonzeros)
    assert not first["tasd"]["exact"] and first["tasd"]["max_abs_error"] == d1.max_abs_error
    # steps: every term's beats, segments of one tile back to back; without stalls no bubble
    assert first["steps"] == first["tiles"] * hss.tasd.steps("4:4,2:4+4:6,1:4", 100, 8)
    if not stalls:
        assert [l["cycles"] for l in report["layers"]] == [l["steps"] for l in report["layers"]]
    # config.json regenerates the resolved choice, not "auto"
    command = json.loads((out / "config.json").read_text())["command"]
    assert f"--tasd {second['mode']}" in command and "auto" not in command
    md = (out / "report.md").read_text()
    assert "### TASD" in md and "`auto` (<= 0.02)" in md


def test_fixed_build_runs_terms_as_segments_exactly(tmp_path):
    """A fixed build has one mode: ``2:4+2:4`` covers any dense W exactly, so the RTL's Z is
    the dense product, at the cost of a dense PE with the same multipliers (one tile)."""
    rng = np.random.default_rng(4)
    W, A = rng.integers(-128, 128, (5, 30)), rng.integers(-128, 128, (30, 6))
    out = tmp_path / "o"
    r = gen("--ranks", "2:4", "--rows", 2, "--cols", 3, "--no-synth", "--out", out,
            "--weights", save(tmp_path / "w.npy", W), "--activations",
            save(tmp_path / "a.npy", A), "--tasd", "2:4+2:4")
    assert r.returncode == 0, r.stdout + r.stderr
    [z] = read_z(out / "tb" / "z_out.txt", [(5, 6)])
    assert np.array_equal(z, W @ A)
    report = json.loads((out / "report.json").read_text())
    [layer] = report["layers"]
    assert layer["tasd"]["exact"] and layer["tasd"]["error"] == 0
    assert layer["steps"] == layer["tiles"] * 2 * 8           # 2 terms x ceil(30/4) groups
    assert "### TASD" in (out / "report.md").read_text()


def test_random_dense_layer_per_tasd(tmp_path):
    """Without tensors, each --tasd gets one random dense layer (not projected onto a mode)."""
    out = tmp_path / "o"
    r = gen("--ranks", "4:4|2:4|1:4", "--rows", 1, "--cols", 2, "--no-synth", "--out", out,
            "--tasd", "2:4+2:4", "--tasd", "4:4", "--tasd", "1:4")
    assert r.returncode == 0, r.stdout + r.stderr
    layers = json.loads((out / "report.json").read_text())["layers"]
    assert [l["tasd"]["exact"] for l in layers] == [True, True, False]
    assert layers[2]["tasd"]["error"] > 0.5          # 1:4 keeps a quarter of a dense W


def test_segment_vectors_of_a_fixed_build_sum_the_terms():
    c = AcceleratorConfig("2:4,2:2", 2, 2, 8, True, 64)
    rng = np.random.default_rng(5)
    W, A = rng.integers(-128, 128, (3, 13)), rng.integers(-128, 128, (13, 3))
    r = hss.decompose(W, "2:4,2:2+2:4,2:2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        v = segment_vectors(c, [(t, 0) for t in r.terms], A)
        one = gemm_vectors(c, r.terms[0], A)
    assert v.k == 13 and v.tiles == 4 and v.steps_per_tile == 2 * one.steps_per_tile
    assert np.array_equal(v.expected, W @ A)
    with pytest.raises(hss.HSSError, match="not the pattern"):
        segment_vectors(c, [(r.terms[0], "2:4")], A)


def test_accumulators_are_sized_for_every_term_of_a_tile():
    """A tile sums all its terms' products: the default max_k covers them, and a --max-k
    that does not is refused, naming the layer and the decomposition."""
    base = plan("--ranks", "2:4", "--rows", 1, "--cols", 1, "--shape", "1,4096,1")
    tasd = plan("--ranks", "2:4", "--rows", 1, "--cols", 1, "--shape", "1,4096,1",
                "--tasd", "2:4+2:4")
    assert tasd.config.max_k == 8192 and tasd.config.acc_width == base.config.acc_width + 1
    with pytest.raises(InputError, match=r"layer 0: --tasd 2:4\+2:4 streams K=4096 once per "
                                         r"term .*8192.* --max-k 4096"):
        plan("--ranks", "2:4", "--shape", "1,4096,1", "--tasd", "2:4+2:4", "--max-k", 4096)
    flex = plan("--ranks", HIGHLIGHT, "--shape", "1,4096,1", "--tasd", "4:4,4:4+4:4,1:4")
    assert flex.config.max_k == 8192
    assert flex.config.max_steps >= hss.tasd.steps("4:4,4:4+4:4,1:4", 4096, 8)


def test_extreme_values_do_not_overflow_the_sized_accumulator(tmp_path):
    """All -128: every product is 2**14 and two dense terms' worth are summed; with --max-k
    exactly what the tile needs, the accumulator holds the sum and flags no overflow."""
    W, A = np.full((1, 512), -128), np.full((512, 1), -128)
    out = tmp_path / "o"
    r = gen("--ranks", "2:4", "--rows", 1, "--cols", 1, "--no-synth", "--out", out,
            "--max-k", 1024, "--weights", save(tmp_path / "w.npy", W),
            "--activations", save(tmp_path / "a.npy", A), "--tasd", "2:4+2:4")
    assert r.returncode == 0, r.stdout + r.stderr
    [z] = read_z(out / "tb" / "z_out.txt", [(1, 1)])
    assert z[0, 0] == 512 * 2 ** 14
    assert json.loads((out / "config.json").read_text())["options"]["acc_width"] == \
        hss.accumulator_bits(8, True, 512)


@pytest.mark.parametrize("argv, message", [
    (["--tasd", "4:4,2:4+"], r"layer 0: --tasd '4:4,2:4\+': term 2: empty term"),
    (["--tasd", "4:4,2:4+2:4"], r"term 2 2:4 is not a mode of this build"),
    (["--tasd", "4:4,3:4"], r"term 1 4:4,3:4 is not a mode"),
    (["--tasd", "4:4,2:4", "--mode", "4:4,2:4"], "drop --mode"),
    (["--tasd", "4:4,2:4", "--max-error", "0.1"], "apply to --tasd auto"),
    (["--max-error", "0.1"], "apply to --tasd auto"),
    (["--tasd", "auto", "--max-error", "-1"], "--max-error must be"),
    (["--tasd", "auto", "--tasd-terms", "4"], "--tasd-terms must be between 1 and 3"),
])
def test_bad_tasd_is_one_line_exit_2(tmp_path, argv, message):
    r = gen("--ranks", HIGHLIGHT, "--no-synth", "--out", tmp_path / "o", *argv)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.count("\n") == 1 and re.search(message, r.stderr), r.stderr
    assert not (tmp_path / "o").exists()


def test_auto_without_a_fitting_candidate_names_the_best(tmp_path):
    r = gen("--ranks", "2:4|1:4", "--no-synth", "--out", tmp_path / "o", "--tasd", "auto",
            "--tasd-terms", "1", "--max-error", "0")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "no candidate reaches relative error <= 0 on the 8x32 W: the best of 2 is" in \
        r.stderr and "with '2:4'" in r.stderr


def test_tasd_count_must_match_the_layers(tmp_path):
    w = save(tmp_path / "w.npy", np.ones((2, 16)))
    a = save(tmp_path / "a.npy", np.ones((16, 2)))
    r = gen("--ranks", HIGHLIGHT, "--no-synth", "--out", tmp_path / "o",
            *["--weights", w, "--activations", a] * 3, "--tasd", "4:4,4:4", "--tasd", "auto")
    assert r.returncode == 2 and "--tasd is given 2 times for 3 layers" in r.stderr
    r = gen("--ranks", HIGHLIGHT, "--no-synth", "--out", tmp_path / "o", "--prune",
            "--weights", w, "--activations", a, "--tasd", "4:4,4:4")
    assert r.returncode == 2 and "--prune is the one-term --tasd MODE" in r.stderr


def test_auto_counts_the_steps_this_build_takes():
    """``hss.tasd.steps`` (what auto minimizes) equals the steps per tile the flexible
    build streams, for every 1- and 2-term candidate of HighLight's set and ragged K."""
    from hdl.config import FlexConfig
    c = FlexConfig(HIGHLIGHT, 1, 1, 8, True, 4096)
    rng = np.random.default_rng(6)
    for k in (16, 100):
        W, A = rng.integers(-128, 128, (1, k)), rng.integers(-128, 128, (k, 1))
        for d in hss.tasd.candidates(HIGHLIGHT, 2):
            r = hss.decompose(W, d)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", hss.PaddingWarning)
                v = segment_vectors(c, [(t, c.modes.index(p)) for t, p
                                        in zip(r.terms, d.terms)], A)
            assert v.steps_per_tile == hss.tasd.steps(d, k, 8), (str(d), k)
            assert np.array_equal(v.expected, r.approximation() @ A)
