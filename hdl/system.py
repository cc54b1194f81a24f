"""HSSSystem: ``hss_system``, the accelerator a system can use (docs/system.md).

The engine (``hss_accelerator``, the same RTL as the engine alone) behind the controller
(``hdl.controller``: buffers, the loop nest, requantization), the two DMA engines of the
AXI4 master (``hdl.dma``), the register block of the SystemRDL map (``hdl.regs`` over
``regmap``), and the interrupt. Ports as vendor tools and LiteX name them: ``aclk``,
``aresetn`` (active low; the one domain's reset), ``m_axi_*``, ``s_axil_*``, ``irq``.
"""
from __future__ import annotations

from amaranth.hdl import ClockDomain, ClockSignal, Instance, Module, ResetInserter, ResetSignal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

import regmap

from . import axi
from .accelerator import accelerator_for
from .controller import COUNTERS, Controller
from .dma import DMARead, DMAWrite
from .regs import Registers
from .sysconfig import SystemConfig

__all__ = ["HSSSystem", "register_parameters"]


def register_parameters(config: SystemConfig) -> dict[str, int]:
    """The register map's parameters (the ``CONFIG*`` and depth registers) of a build."""
    e = config.engine
    return {"rows": e.rows, "cols": e.cols, "value_width": e.width, "acc_width": e.acc_width,
            "word_bytes": config.word_bytes, "num_modes": len(e.modes),
            "requant": int(config.requant), "tile_beats": e.tile_beats,
            "fetch": int(config.fetch != "pe"),
            "wbuf_depth": config.wbuf_depth, "abuf_depth": config.abuf_depth,
            "qbuf_depth": config.qbuf_rows if config.requant else 0,
            "wbeat_words": config.weight_words, "abeat_words": config.act_words,
            "tile_words": config.tile_words, "tile_words_requant": config.quant_tile_words}


#: controller port -> register block port
_DESCRIPTOR = {"w_addr": "w_addr_addr", "a_addr": "a_addr_addr", "z_addr": "z_addr_addr",
               "q_addr": "q_addr_addr", "m_tiles": "m_tiles_count",
               "n_tiles": "n_tiles_count", "beats_per_tile": "beats_per_tile_count",
               "w_base": "w_base_index", "a_base": "a_base_index", "load_w": "flags_load_w",
               "load_a": "flags_load_a", "requant": "flags_requant", "relu": "flags_relu",
               "modes": "modes_mask", "start": "ctrl_start", "clear": "ctrl_clear"}
_STATUS = {"busy": "status_busy", "done": "status_done", "error": "status_error",
           "error_code": "status_error_code", "done_event": "int_status_done",
           "error_event": "int_status_error"}


class HSSSystem(wiring.Component):
    """``hss_system`` for ``config`` (an ``hdl.sysconfig.SystemConfig``). ``shared``: the
    engine's shared modules (``hdl.shared``), as for the engine alone.

    ``instances``: the engine is an instance of ``engine_module`` (the engine's own
    Verilog, converted apart, with its shared modules) and the buffers instances of
    ``hdl.ram.MACRO``, as ``python -m gen`` emits the system: one engine RTL for the engine
    alone and in the system, and a conversion that takes seconds whatever the array and
    the buffers. Without it (Amaranth's simulator, tests), everything is elaborated here."""

    def __init__(self, config: SystemConfig, *, shared=None, instances: bool = False,
                 engine_module: str = "hss_accelerator"):
        if not isinstance(config, SystemConfig):
            raise TypeError(f"config must be an hdl.sysconfig.SystemConfig, not {config!r}")
        self.config, self.shared = config, shared
        self.instances, self.engine_module = bool(instances), engine_module
        self.model = regmap.build_model(**register_parameters(config))
        self._read = axi.axi4_read_members(config.dma_bits, config.addr_bits)
        self._write = axi.axi4_write_members(config.dma_bits, config.addr_bits)
        self._lite = axi.axil_slave_members()
        super().__init__({
            "aclk": In(1), "aresetn": In(1),
            **axi.prefixed("s_axil_", self._lite),
            **axi.prefixed("m_axi_", {**self._read, **self._write}),
            "irq": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.config
        m.domains.sync = domain = ClockDomain("sync")
        m.d.comb += [domain.clk.eq(self.aclk), domain.rst.eq(~self.aresetn)]

        m.submodules.registers = regs = Registers(self.model)
        m.submodules.controller = ctrl = self._controller = Controller(c, macros=self.instances)
        m.submodules.dma_read = rd = DMARead(c.dma_bits, c.addr_bits,
                                             max_burst=c.max_burst, outstanding=c.outstanding)
        m.submodules.dma_write = wr = DMAWrite(c.dma_bits, c.addr_bits,
                                               max_burst=c.max_burst,
                                               outstanding=c.outstanding)
        engine = accelerator_for(c.core, shared=self.shared)
        if self.instances:
            m.submodules.engine = self._engine_instance(engine, ResetSignal() | ctrl.engine_reset)
        else:
            m.submodules.engine = ResetInserter(ctrl.engine_reset)(engine)

        axi.forward(m, regs, self, "s_axil_", self._lite)
        axi.forward(m, rd, self, "m_axi_", self._read)
        axi.forward(m, wr, self, "m_axi_", self._write)
        m.d.comb += self.irq.eq(regs.irq)
        for ours, theirs in _DESCRIPTOR.items():
            m.d.comb += getattr(ctrl, ours).eq(getattr(regs, theirs))
        for ours, theirs in _STATUS.items():
            m.d.comb += getattr(regs, theirs).eq(getattr(ctrl, ours))
        for name in COUNTERS:
            m.d.comb += getattr(regs, f"{name}_count").eq(getattr(ctrl, name))

        wiring.connect(m, ctrl.rd_cmd, rd.cmd)
        wiring.connect(m, rd.data, ctrl.rd_data)
        wiring.connect(m, ctrl.wr_cmd, wr.cmd)
        wiring.connect(m, ctrl.wr_data, wr.data)
        m.d.comb += [ctrl.rd_error.eq(rd.error), ctrl.rd_idle.eq(rd.idle), rd.clear.eq(ctrl.rd_clear),
                     ctrl.wr_error.eq(wr.error), ctrl.wr_idle.eq(wr.idle),
                     ctrl.wr_done.eq(wr.done), wr.clear.eq(ctrl.wr_clear)]

        for name in ("weights", "activations"):
            ours, theirs = getattr(ctrl, name), getattr(engine, name)
            m.d.comb += [Value.cast(theirs.payload).eq(ours.payload),
                         theirs.valid.eq(ours.valid), ours.ready.eq(theirs.ready)]
        m.d.comb += [ctrl.tiles.payload.eq(Value.cast(engine.tiles.payload)),
                     ctrl.tiles.valid.eq(engine.tiles.valid),
                     engine.tiles.ready.eq(ctrl.tiles.ready)]
        return m

    def _engine_instance(self, engine, reset):
        """``engine`` (not elaborated: its ports only) as an instance of
        ``engine_module``, port for port as Amaranth names them in its Verilog."""
        engine._MustUse__silence = True          # its signals are used, not the component
        ports = {"i_clk": ClockSignal(), "i_rst": reset}
        for path, member, value in engine.signature.flatten(engine):
            ports[("o_" if member.flow == Out else "i_") + "__".join(map(str, path))] = \
                Value.cast(value)
        return Instance(self.engine_module, **ports)
