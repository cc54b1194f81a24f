"""hdl.system.HSSSystem in Amaranth's simulator: the registers, controller, DMA engines and
engine together, the host driver on its AXI4-Lite port, an AXI4 RAM model on its master;
Z and the counters against the golden model. The quick loop: test_system.py runs the
emitted Verilog with cocotbext-axi."""
import numpy as np
import pytest
from amaranth.sim import Simulator

import hss
from axisim import AxiRamModel, LiteMaster, SimBus
from gen.emit import TOP, manifest, ports
from hdl import accelerator_for
from hdl.config import build_config
from hdl.sysconfig import SystemConfig
from hdl.system import HSSSystem
from hss.beats import StreamFormat
from host.driver import Driver, DriverError, run_now
from host.model import SystemModel

EXACT = ("steps", "dram_read_bytes", "dram_write_bytes", "wbuf_reads", "wbuf_writes",
         "abuf_reads", "abuf_writes", "obuf_reads", "obuf_writes", "qbuf_reads", "qbuf_writes")


def run_on_system(config, layers, *, pause=0.2, timeout_cycles=400_000, error_at=None,
                  before=None, fmt=None):
    """Run ``layers`` ([(segments, A, kwargs)]) through the driver on the system; results
    and the model's results (a ``DriverError`` in place of a layer's result when it ends
    in one). ``error_at(addr)``: the RAM's AXI response per beat address; ``before(i,
    descriptor)`` is called before layer ``i`` with the model's first descriptor of it."""
    engine = config.engine
    if fmt is None:
        fmt = StreamFormat.from_manifest(
            manifest(engine, {TOP: ports(accelerator_for(engine))}, {}))
    dut = HSSSystem(config)
    sim = Simulator(dut)
    ram = AxiRamModel(dut, config.word_bytes, pause=pause, error_at=error_at)
    out = []

    async def clock(ctx):
        # aclk is a port of the design, not a clock the simulator makes: toggle it
        for _ in range(timeout_cycles):
            ctx.set(dut.aclk, 0)
            await ctx.delay(0.5e-9)
            ctx.set(dut.aclk, 1)
            await ctx.delay(0.5e-9)

    async def host(ctx):
        ctx.set(dut.aresetn, 0)
        await ctx.delay(3.25e-9)        # ticks raise DomainReset while the reset is held
        ctx.set(dut.aresetn, 1)
        await ctx.tick()
        driver = Driver(SimBus(ctx, LiteMaster(dut), ram), fmt, dram_base=0,
                        dram_bytes=1 << 22, poll_limit=50_000)
        await driver.probe()
        model = Driver(SystemModel(config.shape, fmt), fmt, dram_base=0, dram_bytes=1 << 22)
        for i, (segments, A, kwargs) in enumerate(layers):
            driver.reset_memory()
            model.reset_memory()
            want = run_now(model.run_layer(segments, A, **kwargs))
            if before is not None:
                before(i, want.descriptors[0])
            try:
                got = await driver.run_layer(segments, A, **kwargs)
            except DriverError as error:
                got = error
            out.append((got, want))

    sim.add_process(clock)
    sim.add_process(ram.reads)
    sim.add_process(ram.writes)
    sim.add_testbench(host)
    sim.run()
    return out


def _layer(fmt_modes, seed, m, k, n, mode=0):
    rng = np.random.default_rng(seed)
    W = hss.prune(rng.integers(-128, 128, (m, k)), fmt_modes.mode(mode))
    return [(W, mode)], rng.integers(-128, 128, (k, n))


def _check(result, _, segments, A):
    got, want = result
    assert np.array_equal(got.Z, sum(w @ A for w, _ in segments))
    for name in EXACT:
        assert got.counters[name] == want.counters[name], name


def test_layers_through_the_driver():
    """A layer that fits, one the driver splits into eight descriptors (weights resident,
    then activations resident on the turn), and a requantized one with ReLU."""
    from hss import requant
    e = build_config("4:6,2:4", 2, 2)
    config = SystemConfig(e, wbuf_bytes=1024, abuf_bytes=1024, qbuf_rows=64)
    layers = [_layer(e.modes, 1, 5, 96, 3), _layer(e.modes, 2, 12, 240, 14)]
    segments, A = _layer(e.modes, 3, 6, 48, 5)
    Z = segments[0][0] @ A
    scales, shifts = requant.choose_scales(Z, relu=True)
    quant = dict(scales=scales, shifts=shifts, relu=True)
    results = run_on_system(config, [(s, A, {}) for s, A in layers] + [(segments, A, quant)])
    for result, (s, A) in zip(results, layers):
        _check(result, None, s, A)
    assert len(results[1][0].split.parts) > 1
    got, want = results[2]
    assert np.array_equal(got.Z, requant.requantize(Z, scales, shifts, True))
    for name in EXACT:
        assert got.counters[name] == want.counters[name], name


def test_axi_errors_end_the_layer():
    """A read answered SLVERR (in the weights) and a write answered DECERR (the first
    output tile) each end their layer with its code and nothing hangs; the same layer then
    runs exact."""
    e = build_config("4:6,2:4", 2, 2)
    config = SystemConfig(e, wbuf_bytes=1024, abuf_bytes=1024, qbuf_rows=64)
    segments, A = _layer(e.modes, 1, 5, 96, 3)
    window = {"range": range(0), "resp": 0}

    def before(i, where):
        regions = [range(where.w_addr, where.w_addr + 64), range(where.z_addr,
                                                                 where.z_addr + 16), range(0)]
        window.update(range=regions[i], resp=(2, 3, 0)[i])

    results = run_on_system(config, [(segments, A, {})] * 3, before=before,
                            error_at=lambda a: window["resp"] if a in window["range"] else 0)
    assert [r.code.name for r, _ in results[:2]] == ["READ_SLVERR", "WRITE_DECERR"]
    _check(results[2], None, segments, A)


def test_rank1_at_the_fetch_through_the_driver():
    """A fetch build (``fetch="shared"``) on the whole system in Amaranth's simulator: the
    driver reads CONFIG1.FETCH, packs with the FetchFormat, and a raw and a requantized
    layer come out as the golden model's, every counter equal."""
    from hss.fetch import prune_shared
    from hss.fetchbeats import FetchFormat
    from test_hss_system import fmt_of
    engine = build_config("4:6,2:4", 2, 2)
    config = SystemConfig(engine, dma_bits=128, wbuf_bytes=4096, abuf_bytes=4096,
                          qbuf_rows=64, m_chunk=2, fetch="shared")
    rng = np.random.default_rng(7)
    W = prune_shared(rng.integers(-128, 128, (5, 72)), "4:6,2:4", 2)
    A = rng.integers(-128, 128, (72, 5))
    layers = [([(W, 0)], A, {}), ([(W, 0)], A, {"scales": np.full(5, 300),
                                                 "shifts": np.full(5, 12), "relu": True})]
    fmt = FetchFormat(fmt_of("4:6,2:4", rows=2, cols=2))
    results = run_on_system(config, layers, fmt=fmt)
    for (got, want), (segments, A_, kwargs) in zip(results, layers):
        np.testing.assert_array_equal(got.Z, want.Z)
        for name in EXACT:
            assert got.counters[name] == want.counters[name], name
    np.testing.assert_array_equal(results[0][0].Z, W @ A)
    with pytest.raises(RuntimeError, match="rank 1 at the fetch"):
        run_on_system(config, layers[:1])          # the engine's format: refused by probe
