"""The golden register model: what each read returns after a sequence of bus writes and
hardware events, transaction by transaction, from the compiled ``RegisterMap`` alone.

The register block (``hdl.regs.Registers``) is tested against it in a real simulator. It
says what the block does, not how: no cycles, no handshakes. A bus write is to a byte
address (its low two bits ignored) with byte enables; an unmapped address reads 0 and
ignores writes. Hardware inputs are named by their port (``Field.port``): ``drive`` sets
a status input to a level, ``hw_set`` gives an interrupt field's set input a pulse (a set
wins over a clear in the same cycle; between transactions they never coincide).
"""
from __future__ import annotations

from .model import DATA_BITS, Field, RegisterMap, RegmapError

__all__ = ["ReferenceRegisters", "strobe_mask"]


def strobe_mask(strobe: int) -> int:
    """The 32-bit mask of the bytes ``strobe`` enables (bit i: byte i)."""
    if not 0 <= strobe < 1 << (DATA_BITS // 8):
        raise RegmapError(f"write strobe 0x{strobe:x} is not {DATA_BITS // 8} bits")
    return sum(0xFF << (8 * i) for i in range(DATA_BITS // 8) if strobe >> i & 1)


class ReferenceRegisters:
    """The state of one register block: stored fields, hardware inputs, pulses given."""

    def __init__(self, model: RegisterMap):
        if not isinstance(model, RegisterMap):
            raise TypeError(f"ReferenceRegisters takes a regmap.RegisterMap, not {model!r}")
        self.model = model
        self._ports = {f.port: f for f in model.fields if f.port is not None}
        self.reset()

    def reset(self) -> None:
        """As after the bus's reset: stored fields at their reset values, inputs 0, no
        pulses counted."""
        self.stored = {(f.register, f.name): f.reset for f in self.model.fields
                       if f.kind in ("control", "interrupt")}
        self.inputs = {f.port: 0 for f in self.model.fields if f.kind == "status"}
        self.pulses = {f.port: 0 for f in self.model.fields if f.kind == "pulse"}

    def _port(self, name: str, kind: str) -> Field:
        f = self._ports.get(name)
        if f is None or f.kind != kind:
            raise KeyError(f"{name!r} is not the port of a {kind} field")
        return f

    # ---- the bus ------------------------------------------------------------------------

    def read(self, address: int) -> int:
        reg = self.model.at(address)
        if reg is None:
            return 0
        word = 0
        for f in reg.fields:
            if "r" not in f.sw:
                continue
            word |= self._value(f) << f.lsb
        return word

    def write(self, address: int, data: int, strobe: int = 0xF) -> None:
        reg = self.model.at(address)
        mask = strobe_mask(strobe)
        if reg is None:
            return
        for f in reg.fields:
            bits = (data & mask & f.mask) >> f.lsb
            enabled = (mask & f.mask) >> f.lsb
            key = (f.register, f.name)
            if f.kind == "control":
                self.stored[key] = (self.stored[key] & ~enabled) | bits
            elif f.kind == "interrupt":
                self.stored[key] &= ~bits
            elif f.kind == "pulse":
                # a pulse of a multi-bit field counts per bit written 1
                self.pulses[f.port] += bin(bits).count("1")

    # ---- the hardware side --------------------------------------------------------------

    def drive(self, port: str, value: int) -> None:
        """Set a status field's input (``status_busy``, ``cycles_count``, ...)."""
        f = self._port(port, "status")
        if not 0 <= value < 1 << f.width:
            raise RegmapError(f"{port} is {f.width} bits: {value} does not fit")
        self.inputs[port] = value

    def hw_set(self, port: str, bits: int = 1) -> None:
        """A set pulse on an interrupt field's input (``int_status_done``, ...)."""
        f = self._port(port, "interrupt")
        self.stored[(f.register, f.name)] |= bits & ((1 << f.width) - 1)

    def output(self, port: str) -> int:
        """The level of a control field's output port."""
        f = self._port(port, "control")
        return self.stored[(f.register, f.name)]

    @property
    def irq(self) -> int:
        """1 while any interrupt field is set and enabled."""
        for f in self.model.interrupts:
            value = self.stored[(f.register, f.name)]
            if f.enable is not None:
                value &= self.stored[f.enable]
            if value:
                return 1
        return 0

    def _value(self, f: Field) -> int:
        if f.kind == "constant":
            return f.reset
        if f.kind == "status":
            return self.inputs[f.port]
        return self.stored[(f.register, f.name)]
