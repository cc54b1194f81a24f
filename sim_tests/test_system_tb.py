"""The system testbench with its DRAM inside the simulator (gen.testbench.system): the files
python -m gen writes for hss_system, a SystemVerilog AXI4 DRAM and AXI4-Lite host replaying
the host driver's recorded program, then the driver replayed on what the simulator read;
every layer's Z bit-exact and its counters as the golden model's, on Verilator and on
Icarus, which agree cycle for cycle."""
from __future__ import annotations

import pytest

from gen.testbench import system as systb
from hdl.config import build_config
from hdl.sysconfig import SystemConfig

from systemkit import wrong_golden
from test_system import HIGHLIGHT

# chunks of 2 m-tiles: the split layer's parts walk several chunks (hss.system.tile_order);
# both rows of a tile requantized in one cycle (qbuf in two banks)
FIXED = SystemConfig(build_config("4:6,2:4", 2, 2), wbuf_bytes=1024, abuf_bytes=1024,
                     qbuf_rows=64, m_chunk=2, requant_lanes=2)
LAYERS = [{"m": 5, "k": 96, "n": 3, "seed": 1},                    # fits
          {"m": 12, "k": 240, "n": 14, "seed": 2},                 # split by the driver
          {"m": 6, "k": 48, "n": 5, "seed": 3, "requant": True, "relu": True}]


def _quiet(*_):
    pass


def _assert_exact(run):
    assert run.tb_pass, run.log[-2000:]
    for layer in run.layers:
        assert layer.exact, systb.summary(run)
    assert run.passed and run.verdict == "PASS"


def test_fixed_layers_exact_both_simulators_agree_one_build_serves_all(tmp_path):
    """Verilator and Icarus on the same layers and seeds; then the Verilator binary again
    (no rebuild) without back-pressure, with a long latency, and with an SLVERR range."""
    fast = systb.run_system(FIXED, LAYERS, tmp_path / "v", seed=3, latency=5,
                            progress=_quiet)
    _assert_exact(fast)
    assert [layer.parts for layer in fast.layers] == [1, 8, 1]
    assert all(layer.counters["cycles"] >= layer.bound for layer in fast.layers)
    slow = systb.run_system(FIXED, LAYERS, tmp_path / "i", seed=3, latency=5,
                            simulator="icarus", progress=_quiet)
    _assert_exact(slow)
    assert slow.cycles == fast.cycles
    assert [x.counters for x in slow.layers] == [x.counters for x in fast.layers]

    folder = tmp_path / "v"
    quick = systb.run_system(FIXED, LAYERS, folder, seed=None, latency=0, name="nobp",
                             progress=_quiet)
    _assert_exact(quick)
    assert quick.build_seconds < 5             # the binary of the first run, reused
    slow = systb.run_system(FIXED, LAYERS, folder, seed=9, latency=40, name="slow",
                            progress=_quiet)
    _assert_exact(slow)
    assert slow.cycles > quick.cycles
    # the first layer's weights lie at DRAM address 0: a read answered SLVERR ends that
    # layer with its code; the program clears it and the next layers run exact
    err = systb.run_system(FIXED, LAYERS, folder, seed=3, slverr=(0, 64), name="slverr",
                           progress=_quiet)
    assert err.tb_pass and not err.passed
    first, *rest = err.layers
    assert first.error_code == "READ_SLVERR" and not first.exact
    assert all(layer.exact for layer in rest)


def test_rank1_at_the_fetch_exact_both_simulators_agree(tmp_path):
    """``fetch="shared"``: hss_system around hss_system_engine (the rank-0 engine), abuf in
    banks; the fitting, split and requantized layers exact on Verilator and Icarus, cycle
    for cycle alike, and the banks read per step those the offsets name (G1 of H1)."""
    config = SystemConfig(build_config("4:6,2:4", 2, 2), wbuf_bytes=1024, abuf_bytes=1024,
                          qbuf_rows=64, m_chunk=2, fetch="shared")
    fast = systb.run_system(config, LAYERS, tmp_path / "v", seed=3, latency=5,
                            progress=_quiet)
    _assert_exact(fast)
    assert (tmp_path / "v" / "rtl" / "hss_system_engine.v").exists()
    assert not (tmp_path / "v" / "rtl" / "hss_accelerator.v").exists()
    for layer in fast.layers:
        c = layer.counters
        assert c["abuf_reads"] == 4 * c["wbuf_reads"] and c["steps"] == c["wbuf_reads"]
    slow = systb.run_system(config, LAYERS, tmp_path / "i", seed=3, latency=5,
                            simulator="icarus", progress=_quiet)
    _assert_exact(slow)
    assert slow.cycles == fast.cycles


def test_a_wrong_answer_fails(tmp_path, monkeypatch):
    """The comparison can fail: a golden Z off by one in one element is a FAIL."""
    wrong_golden(monkeypatch)
    run = systb.run_system(FIXED, LAYERS[:1], tmp_path, seed=3, simulator="icarus",
                           progress=_quiet)
    assert run.tb_pass and not run.passed and run.verdict == "FAIL"


def test_highlight_every_mode_and_tasd(tmp_path, monkeypatch):
    e = build_config(HIGHLIGHT, 2, 2)
    config = SystemConfig(e, dma_bits=64, wbuf_bytes=4096, abuf_bytes=4096, qbuf_rows=64)
    layers = [{"m": 4, "k": 60, "n": 3, "seed": 10 + mode, "mode": mode}
              for mode in range(len(e.modes))]
    layers.append({"m": 3, "k": 64, "n": 4, "seed": 30, "tasd": "4:6,2:4+4:4,1:4"})
    run = systb.run_system(config, layers, tmp_path / "hl", seed=5, latency=3,
                           progress=_quiet)
    _assert_exact(run)
    assert len(run.layers) == 13


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="simulator must be one of"):
        systb.run_system(FIXED, LAYERS, tmp_path, simulator="xsim")
    with pytest.raises(ValueError, match="latency must be a non-negative integer"):
        systb.run_system(FIXED, LAYERS, tmp_path, latency=-1)
    with pytest.raises(ValueError, match="no layers"):
        systb.run_system(FIXED, [], tmp_path)
    with pytest.raises(ValueError, match="m must be a positive integer"):
        systb.run_system(FIXED, [{"m": 0, "k": 4, "n": 1, "seed": 1}], tmp_path)
