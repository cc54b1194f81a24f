"""bench.fuzz_system: system cases depend only on (seed, i), every build they draw is valid
and the draws reach the options that matter; a real case passes in Verilator, and a wrong
golden Z is caught as a failure with a replayable case.json."""
from collections import Counter

import pytest

from bench import fuzz_system as fz
from systemkit import wrong_golden


@pytest.fixture(scope="module")
def draws():
    return [fz.generate_case(5, i) for i in range(300)]


def test_case_i_depends_only_on_seed_and_i():
    assert fz.generate_case(3, 7) == fz.generate_case(3, 7)
    assert fz.generate_case(3, 7) != fz.generate_case(3, 8)


def test_every_build_is_valid_and_the_draws_cover_the_options(draws):
    seen = Counter()
    for case in draws:
        config = fz.build_config(case["build"])
        for layer in case["layers"]:          # one m-tile of every layer fits the buffers
            assert layer["k"] <= 12 * max(m.group_size for m in config.engine.modes.modes)
        b = case["build"]
        seen.update({f"fetch={b['fetch']}", f"lanes={b['requant_lanes']}",
                     f"requant={b['requant']}", f"dma={b['dma_bits']}",
                     f"flexible={len(config.engine.modes) > 1}",
                     f"stalls={case['stall_seed'] is not None}"})
        seen.update(f"layer_requant={bool(l.get('requant'))}" for l in case["layers"])
        seen.update([f"slverr={bool(case['slverr'])}"])
    for key in ("fetch=shared", "fetch=pe", "lanes=2", "requant=False", "dma=64", "dma=512",
                "flexible=True", "stalls=False", "layer_requant=True", "slverr=True"):
        assert seen[key] >= 5, (key, seen)


def test_a_real_case_passes_and_a_wrong_answer_fails(tmp_path, monkeypatch):
    case = next(c for c in (fz.generate_case(2, i) for i in range(50))
                if c["build"]["fetch"] == "shared")
    good = fz.run_case(case, tmp_path / "good")
    assert good["kind"] is None and good["cycles"] > 0, good["detail"][-2000:]
    wrong_golden(monkeypatch)
    record = fz.fuzz_one(2, int(case["case_id"].split("-c")[1]), str(tmp_path / "work"),
                         str(tmp_path / "failures"), shrink_budget=2)
    assert record["kind"] == "mismatch" and record["shrink_runs"] == 2
    folder = tmp_path / "failures" / case["case_id"]
    assert (folder / "case.json").is_file() and (folder / "minimal.json").is_file()
    assert "replay" in record["reproducer"]


def test_an_slverr_case_ends_its_first_layer_and_runs_the_rest():
    case = next(c for c in (fz.generate_case(3, i) for i in range(80))
                if c["slverr"] and len(c["layers"]) > 1)
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        out = fz.run_case(case, Path(tmp))
    assert out["kind"] is None, out["detail"][-2000:]


def test_simplifications_are_smaller():
    case = next(c for c in (fz.generate_case(4, i) for i in range(50)) if len(c["layers"]) > 1)
    smaller = list(fz.simplifications(case))
    assert any(len(c["layers"]) < len(case["layers"]) for c in smaller)
    assert all(c != case for c in smaller)
