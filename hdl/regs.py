"""Registers: hss_system's AXI4-Lite register block, built from the compiled register map.

Nothing here names a register: the block is elaborated from ``regmap.RegisterMap`` (the
RDL's registers and fields, their kinds and reset values), so the RDL stays the one source.
Per field (``Field.port``, ``<reg>_<field>`` in lower case):

- control (sw rw, hw r): ``Out(width)``, the stored value itself (reset value in reset);
- pulse (``singlepulse``): ``Out(width)``, high for the one cycle after the write of a 1;
- status (sw r, hw w): ``In(width)``, read as it is in the cycle the read is accepted;
- interrupt (``intr``/``hwset``, ``woclr``): ``In(width)``, a 1 sets the stored bit (a set
  wins over a clear in the same cycle); ``irq = Out(1)`` is the OR of every interrupt
  field ANDed with its ``enable``;
- constants have no port.

The bus (AXI4-Lite, 32-bit data, 12-bit byte address; ``awprot``/``arprot`` are ignored):
AW and W are each held in a one-entry register as they arrive, in either order or together,
and the write happens once both are there and no write response waits; one read and one
write are in flight at a time. The low two address bits are ignored (a register is a whole
word; ``wstrb`` chooses its bytes). An unmapped address reads 0 and ignores writes; every
response is OKAY. A read and a write accepted in the same cycle: the read sees the value
before the write. Every ``*ready`` is gated by a register that is 0 in reset and becomes 1
the cycle after it, every ``*valid`` is a register that is 0 in reset, so no handshake
output is high while the domain is in reset.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from regmap.model import ADDRESS_BITS, DATA_BITS, RegisterMap

__all__ = ["Registers", "AXIL_MEMBERS"]

#: The AXI4-Lite slave's members, from the block's side: (name, direction, bits).
AXIL_MEMBERS = (
    ("awaddr", "in", ADDRESS_BITS), ("awprot", "in", 3), ("awvalid", "in", 1),
    ("awready", "out", 1),
    ("wdata", "in", DATA_BITS), ("wstrb", "in", DATA_BITS // 8), ("wvalid", "in", 1),
    ("wready", "out", 1),
    ("bresp", "out", 2), ("bvalid", "out", 1), ("bready", "in", 1),
    ("araddr", "in", ADDRESS_BITS), ("arprot", "in", 3), ("arvalid", "in", 1),
    ("arready", "out", 1),
    ("rdata", "out", DATA_BITS), ("rresp", "out", 2), ("rvalid", "out", 1),
    ("rready", "in", 1),
)
_WORD_LSB = 2     # a register is 4 bytes: the word index is address[2:]


class Registers(wiring.Component):
    """The register block of ``model`` (see the module docstring for ports and bus)."""

    def __init__(self, model: RegisterMap):
        if not isinstance(model, RegisterMap):
            raise TypeError(f"Registers takes a regmap.RegisterMap (regmap.build_model()), "
                            f"not {model!r}")
        self.model = model
        members = {name: (In if way == "in" else Out)(bits) for name, way, bits in AXIL_MEMBERS}
        for f in model.fields:
            if f.port is None:
                continue
            if f.port in members or f.port == "irq":
                raise ValueError(f"field {f.register}.{f.name}'s port {f.port} clashes with "
                                 f"a bus member or irq")
            if f.port_direction == "in":
                members[f.port] = In(f.width)
            else:
                init = f.reset if f.kind == "control" else 0
                members[f.port] = Out(f.width, init=init)
        members["irq"] = Out(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        model = self.model

        # ready only from the cycle after reset: 0 throughout it
        live = Signal(init=0)
        m.d.sync += live.eq(1)

        # ---- stored fields: control fields are their own Out port, interrupts are here
        storage = {}
        for f in model.fields:
            if f.kind == "control":
                storage[f] = (getattr(self, f.port) if f.port is not None
                              else Signal(f.width, init=f.reset, name=f"{f.register}_{f.name}".lower()))
            elif f.kind == "interrupt":
                storage[f] = Signal(f.width, init=f.reset, name=f"{f.port}_state")

        # ---- write channel: AW and W each held until both are there
        aw_full = Signal()
        aw_addr = Signal(ADDRESS_BITS)
        w_full = Signal()
        w_data = Signal(DATA_BITS)
        w_strb = Signal(DATA_BITS // 8)
        bvalid = Signal()
        m.d.comb += [
            self.awready.eq(live & ~aw_full),
            self.wready.eq(live & ~w_full),
            self.bvalid.eq(bvalid),
            self.bresp.eq(0),
        ]
        with m.If(self.awvalid & self.awready):
            m.d.sync += [aw_full.eq(1), aw_addr.eq(self.awaddr)]
        with m.If(self.wvalid & self.wready):
            m.d.sync += [w_full.eq(1), w_data.eq(self.wdata), w_strb.eq(self.wstrb)]
        write = Signal()
        m.d.comb += write.eq(aw_full & w_full & ~bvalid)
        with m.If(write):
            m.d.sync += [aw_full.eq(0), w_full.eq(0), bvalid.eq(1)]
        with m.Elif(self.bready):
            m.d.sync += bvalid.eq(0)

        byte_mask = Signal(DATA_BITS)
        m.d.comb += byte_mask.eq(Cat(bit.replicate(8) for bit in w_strb))
        write_word = aw_addr[_WORD_LSB:]
        for reg in model.registers:
            hit = Signal(name=f"write_{reg.name.lower()}")
            m.d.comb += hit.eq(write & (write_word == reg.offset >> _WORD_LSB))
            for f in reg.fields:
                data = w_data[f.lsb:f.msb + 1]
                enabled = byte_mask[f.lsb:f.msb + 1]
                if f.kind == "control":
                    with m.If(hit):
                        m.d.sync += storage[f].eq((storage[f] & ~enabled) | (data & enabled))
                elif f.kind == "pulse":
                    pulse = getattr(self, f.port)
                    m.d.sync += pulse.eq(0)
                    with m.If(hit):
                        m.d.sync += pulse.eq(data & enabled)
                elif f.kind == "interrupt":
                    kept = Signal(f.width, name=f"{f.port}_kept")
                    m.d.comb += kept.eq(storage[f])
                    with m.If(hit):
                        m.d.comb += kept.eq(storage[f] & ~(data & enabled))
                    m.d.sync += storage[f].eq(kept | getattr(self, f.port))

        # ---- read channel: the word is taken in the cycle the address is accepted
        rvalid = Signal()
        rdata = Signal(DATA_BITS)
        m.d.comb += [
            self.arready.eq(live & ~rvalid),
            self.rvalid.eq(rvalid),
            self.rdata.eq(rdata),
            self.rresp.eq(0),
        ]
        read_word = Signal(DATA_BITS)
        with m.Switch(self.araddr[_WORD_LSB:]):
            for reg in model.registers:
                with m.Case(reg.offset >> _WORD_LSB):
                    m.d.comb += read_word.eq(self._word(reg, storage))
            with m.Default():
                m.d.comb += read_word.eq(0)
        with m.If(self.arvalid & self.arready):
            m.d.sync += [rvalid.eq(1), rdata.eq(read_word)]
        with m.Elif(self.rready):
            m.d.sync += rvalid.eq(0)

        # ---- irq: a level, from registers only (0 in reset)
        pending = []
        for f in model.interrupts:
            value = storage[f]
            if f.enable is not None:
                value = value & storage[model.field(*f.enable)]
            pending.append(value.any())
        m.d.comb += self.irq.eq(Cat(pending).any() if pending else 0)
        return m

    def _word(self, reg, storage):
        """What a read of ``reg`` returns, as a 32-bit value."""
        parts, at = [], 0
        for f in reg.fields:
            if f.lsb > at:
                parts.append(Const(0, f.lsb - at))
            if "r" not in f.sw:
                value = Const(0, f.width)
            elif f.kind == "constant":
                value = Const(f.reset, f.width)
            elif f.kind == "status":
                value = getattr(self, f.port)
            else:
                value = storage[f]
            parts.append(value)
            at = f.msb + 1
        if at < DATA_BITS:
            parts.append(Const(0, DATA_BITS - at))
        return Cat(*parts)
