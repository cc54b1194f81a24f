"""Large arrays (issue 12): the accelerator's Verilog defines each distinct module once above
``SHARE_MODULES_ABOVE_PES`` PEs, the shared Verilog cosimulates like Amaranth's own, and the
ECP5 resources of large fixed builds are composed from one synthesis per distinct PE.

The composed ECP5 count against the flat ``synth_ecp5`` (4:6,2:4): LUT4 +0.8 % at 2x2 and
+1.0 % at 4x4, carries and multipliers equal; flip-flops +12 % and +19 %, because the flat
flow merges equivalent registers of different PEs (a PE row's copies of the same weights)
and a composed count keeps one per PE."""
import re

import pytest

from bench.common import Measured
from bench.scale import STAGES, _targets
from gen import area as gen_area
from gen import emit as gen_emit
from gen.area import PE_MODULE, pe_count
from gen.emit import TOP, emit_verilog
from hdl.config import AcceleratorConfig, FlexConfig
from synth import flows
from synth.compose import distinct_modules

from genkit import gen

_MODULE = re.compile(r"^module ", re.MULTILINE)


def _emit(config) -> str:
    return emit_verilog(config)[0][TOP]


def test_shared_modules_only_above_the_threshold(monkeypatch):
    """Up to 4x4 the Verilog is Amaranth's, byte for byte; above, the array instantiates
    one shared PE module (``hdl.shared``): every PE still there, no copy left for
    ``synth.compose`` to find, and the same module count as Amaranth's text reduced."""
    small, big = AcceleratorConfig("2:4", 4, 4), AcceleratorConfig("2:4", 5, 4)
    shared_small, shared_big = _emit(small), _emit(big)
    monkeypatch.setattr(gen_emit, "SHARE_MODULES_ABOVE_PES", 10 ** 6)
    own_small, own_big = _emit(small), _emit(big)
    assert shared_small == own_small
    assert len(_MODULE.findall(own_small)) > 3 * 16       # a module per PE and per part
    assert pe_count(shared_big) == pe_count(own_big) == 20
    # PE (0, 0) drives sum_valid, the others share a module without it, as Amaranth's own
    instances = re.findall(rf"^\s+\\{re.escape(TOP)}\.array\.(pe_0_[01])\s+pe_\d+_\d+ \(",
                           shared_big, re.M)
    assert (instances.count("pe_0_0"), instances.count("pe_0_1")) == (1, 19)
    modules = len(_MODULE.findall(shared_big))
    assert modules == distinct_modules(shared_big, TOP).distinct
    assert modules <= distinct_modules(own_big, TOP).distinct <= 12


@pytest.mark.parametrize("sim, extra", [("verilator", ["--stalls", "5"]), ("icarus", [])])
def test_shared_verilog_cosimulates(sim, extra, tmp_path):
    """A 5x4 build (shared modules) passes its testbench, Z equal to the golden model."""
    r = gen("--ranks", "4:6,2:4", "--rows", 5, "--cols", 4, "--shape", "10,48,8",
            "--no-synth", "--sim", sim, *extra, "--out", tmp_path / "o")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS" in r.stdout
    text = (tmp_path / "o" / "rtl" / f"{TOP}.v").read_text()
    assert pe_count(text) == 20 and len(_MODULE.findall(text)) <= 12
    # Verilator keeps the modules apart above the same size (gen.testbench)
    assert "-fno-inline" in (tmp_path / "o" / "tb" / "Makefile").read_text()


@pytest.mark.parametrize("sim, extra", [("verilator", ["--stalls", "2"]), ("icarus", [])])
def test_shared_flexible_verilog_cosimulates(sim, extra, tmp_path):
    """A flexible 5x4 build: shared steering, windows and PEs; every mode of the set runs
    bit-exact (one layer per mode)."""
    r = gen("--ranks", "4:4|4:6,2:4|1:4", "--rows", 5, "--cols", 4, "--shape", "6,48,5",
            "--no-synth", "--sim", sim, *extra, "--out", tmp_path / "o")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS" in r.stdout
    text = (tmp_path / "o" / "rtl" / f"{TOP}.v").read_text()
    for part in ("steer_0", "window_0", "pe_0_0"):
        assert f"module \\{TOP}.array.{part} (" in text
    assert pe_count(text) == 20


def test_small_builds_keep_their_verilator_flags(tmp_path):
    r = gen("--ranks", "2:4", "--rows", 4, "--cols", 4, "--shape", "4,8,4", "--no-synth",
            "--sim", "none", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "-fno-inline" not in (tmp_path / "o" / "tb" / "Makefile").read_text()


@pytest.mark.parametrize("side", [2, 4])
def test_ecp5_composed_against_flat(side, tmp_path):
    verilog = _emit(AcceleratorConfig("4:6,2:4", side, side))
    flat = flows.ecp5(verilog, TOP, tmp_path / "flat")
    comp = flows.ecp5_composed(verilog, TOP, tmp_path / "comp", keep=PE_MODULE)
    assert comp["composed"]["kept_instances"] == side * side
    assert comp["composed"]["kept_modules"] <= 4          # corner, edges, interior
    assert comp["lut4"] == pytest.approx(flat["lut4"], rel=0.02)
    assert (comp["mult18x18d"], comp["ccu2c"]) == (flat["mult18x18d"], flat["ccu2c"])
    assert flat["ff"] <= comp["ff"] <= 1.25 * flat["ff"]


def test_ecp5_composed_refuses_a_keep_that_matches_nothing(tmp_path):
    with pytest.raises(ValueError, match="matches"):
        flows.ecp5_composed(_emit(AcceleratorConfig("2:4", 1, 1)), TOP, tmp_path,
                            keep=r"\.no_such_module$")


def test_large_builds_compose_ecp5_but_flexible_ones_stay_flat(monkeypatch, tmp_path):
    """Composition is chosen by PE count, except for the flexible build's ECP5 count (its
    flat mapping differs by a third from a composed one, see gen.area)."""
    calls = []
    monkeypatch.setattr(gen_area, "ecp5_composed",
                        lambda *a, **k: calls.append("composed") or
                        {"lut4": 1, "ff": 1, "mult18x18d": 0, "ccu2c": 0, "composed": {}})
    monkeypatch.setattr(gen_area.synth, "ecp5", lambda *a, **k: calls.append("flat") or
                        {"lut4": 1, "ff": 1, "mult18x18d": 0, "ccu2c": 0})
    fixed = _emit(AcceleratorConfig("2:4", 5, 4))
    flexible = _emit(FlexConfig("4:4|2:4", 5, 4))
    assert pe_count(fixed) == pe_count(flexible) == 20
    r = gen_area.synthesize_design(fixed, tmp_path, ["ecp5"], False)
    assert r["ecp5"]["composed"] == {}
    r = gen_area.synthesize_design(flexible, tmp_path, ["ecp5"], False)
    assert "composed" not in r["ecp5"]
    gen_area.synthesize_design(_emit(AcceleratorConfig("2:4", 4, 4)), tmp_path, ["ecp5"],
                               False)
    assert calls == ["composed", "flat", "flat"]


def _results(seconds: dict[int, float], peak_mib: float = 100.0) -> dict:
    """Fake ``bench scale`` results: every stage of a side takes ``seconds[side]``."""
    return {side: {k: (Measured(s, peak_mib, ""), {}) for k, _ in STAGES}
            for side, s in seconds.items()}


def test_scale_targets_are_judged():
    sides = (16, 32, 64)
    t = _targets(_results({16: 20.0, 32: 80.0, 64: 320.0}), sides, "cmd")
    rows = {row[0]: row for row in t.rows}
    e2e = rows["16x16 end to end (s)"]
    assert e2e[1] == 120.0 and e2e[3] == "met"       # 6 stages of 20 s, elaborate excluded
    assert all(row[3] == "met" for row in t.rows)
    growth = [row for row in t.rows if row[0].startswith("growth")]
    assert len(growth) == len(STAGES) and all(row[1] == 1.0 for row in growth)
    t = _targets(_results({16: 31.0, 32: 200.0, 64: 1500.0}, 30000.0), sides, "cmd")
    assert [row[3] for row in t.rows].count("MISSED") == len(t.rows)
    assert _targets(_results({1: 1.0, 2: 1.0}), (1, 2), "cmd") is None
    # a run that stopped at 32x32: memory not measured, growth judged up to 32x32
    t = _targets(_results({16: 20.0, 32: 80.0}), (16, 32), "cmd")
    verdicts = [row[3] for row in t.rows]
    assert verdicts[:2] == ["met", "not measured"]
    assert set(verdicts[2:]) == {"met (to 32x32 only)"}


def test_report_states_the_composition():
    """Area composed from distinct modules says so in report.md, for the design and for its
    dense twin, NAND2 and ECP5 alike; a flat count says nothing of the kind."""
    import warnings

    from gen.options import Options
    from gen.plan import Plan
    from gen.report import markdown
    from gen.results import build_report
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = Plan(Options.from_argv(["--ranks", "2:4", "--rows", "1", "--cols", "1",
                                       "--sim", "none", "--no-synth"]))
        vectors = plan.vectors()

    def flows(composed_generic=None, composed_ecp5=None):
        generic = {"nand2_eq": 100.0, "flip_flops": 10, "transistors": 400,
                   "selector_share": 0.1, "breakdown": {"multipliers": 100.0}}
        ecp5 = {"lut4": 10, "ff": 4, "mult18x18d": 1, "ccu2c": 2}
        return {"generic": generic | ({"composed": composed_generic} if composed_generic
                                     else {}),
                "ecp5": ecp5 | ({"composed": composed_ecp5} if composed_ecp5 else {})}
    generic = {"distinct_modules": 9, "modules": 2306, "instances": 2305,
               "flat_equivalent": False}
    ecp5 = {"kept_modules": 4, "kept_instances": 256, "flat_equivalent": False}
    md = markdown(build_report(plan, vectors, None, {"design": flows(generic),
                                                     "dense_twin": flows(None, ecp5)}))
    assert "NAND2 area of the accelerator composed" in md and "9 distinct modules" in md
    assert "2,305 module instances" in md and "NAND2 area of its dense twin" not in md
    assert "ECP5 resources of its dense twin composed" in md and "256 PEs" in md
    assert "upper bound" in md
    flat = markdown(build_report(plan, vectors, None, {"design": flows(),
                                                       "dense_twin": flows()}))
    assert "composed" not in flat and "ECP5 (Yosys synth_ecp5, flattened)" in flat


def test_shared_modules_keep_the_area(monkeypatch, tmp_path):
    """The shared form is the same logic: its NAND2 area equals that of Amaranth's own text
    of the same 5x4 build (both composed, each distinct module mapped once)."""
    config = AcceleratorConfig("4:6,2:4", 5, 4)
    shared = _emit(config)
    monkeypatch.setattr(gen_emit, "SHARE_MODULES_ABOVE_PES", 10 ** 6)
    own = _emit(config)
    areas = [gen_area.synthesize_design(text, tmp_path / name, ["generic"], False)
             ["generic"]["nand2_eq"] for name, text in (("shared", shared), ("own", own))]
    assert areas[0] == areas[1]


def test_manifest_states_how_tiles_leave():
    """``manifest.json``: tile_rows and tile_beats always; the protocol text and the
    payload layout (with ``last``) where a tile takes several beats."""
    from gen.emit import manifest
    for config, beats in ((AcceleratorConfig("2:4", 4, 2), 1),
                          (AcceleratorConfig("2:4", 4, 2, tile_rows=1), 4)):
        m = manifest(config, emit_verilog(config)[1], {})
        assert (m["parameters"]["tile_rows"], m["parameters"]["tile_beats"]) == \
            (4 // beats, beats)
        assert ("tiles beats" in m["protocol"]) == (beats > 1)
        payload = next(p for p in m["ports"][TOP] if p["name"] == "tiles__payload")
        assert ("last" in payload["layout"]["fields"]) == (beats > 1)
