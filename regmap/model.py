"""hss_system's register map as a small typed model, compiled from ``hss_system.rdl``.

The RDL is the one source; this model is what the hardware (``hdl.regs``), the golden
register model (``regmap.reference``) and the emitters read, so none of them walks the
SystemRDL compiler's node tree or re-derives access semantics on its own. ``build_model``
elaborates the RDL with a build's parameter values (the ``CONFIG*``/depth reset values) and
refuses, in one line, a parameter the RDL does not have or a value that does not fit.

Each field has one ``kind``, the few behaviours the register block implements:

- ``constant``: sw=r, hw=na: reads its reset value; no hardware port.
- ``status``: sw=r, hw=w, no storage: reads the hardware's input as it is now.
- ``control``: sw=rw, storage; hw=r gives an ``Out`` port holding it.
- ``pulse``: sw=w, hw=r, ``singlepulse``: a write of 1 gives a one-cycle pulse; reads 0.
- ``interrupt``: sw=rw with ``woclr``, hw=w, ``intr`` (sticky) or ``hwset``: the hardware
  input sets it, software writing 1 clears it; a set in the cycle of a clear wins.

Anything else in the RDL is refused here, before any hardware or emitter sees it.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

__all__ = ["RDL_PATH", "TOP", "DATA_BITS", "ADDRESS_BITS", "WINDOW_BYTES", "KINDS",
           "EnumMember", "Enum", "Field", "Register", "RegisterMap", "RegmapError",
           "build_model", "parameter_names", "default_parameters"]

RDL_PATH = Path(__file__).resolve().parent / "hss_system.rdl"
TOP = "hss_system"
DATA_BITS = 32
ADDRESS_BITS = 12
WINDOW_BYTES = 1 << ADDRESS_BITS
KINDS = ("constant", "status", "control", "pulse", "interrupt")

#: What a build's parameter may be, beyond fitting its field (the RDL checks that):
#: (lowest, highest or None, why). ``word_bytes`` is dma_bits / 8 of a 64- to 512-bit
#: AXI4 bus; a layer's modes are one 32-bit MODES mask.
_PARAMETER_RULES = {
    "rows": (1, None, "rows of the PE array"),
    "cols": (1, None, "columns of the PE array"),
    "value_width": (1, None, "bits of a value"),
    "acc_width": (1, None, "bits of an accumulator"),
    "word_bytes": (8, 64, "dma_bits / 8"),
    "num_modes": (1, 32, "modes of the build (one bit each of MODES)"),
    "requant": (0, 1, "1 with the requantization stage, else 0"),
    "tile_beats": (1, None, "tiles beats per output tile"),
    "fetch": (0, 1, "1 with rank 1 selected at the activation fetch, else 0"),
    "wbuf_depth": (1, None, "words of wbuf"),
    "abuf_depth": (1, None, "words of abuf"),
    "qbuf_depth": (0, None, "entries of qbuf, 0 without requantization"),
    "wbeat_words": (1, None, "DMA words per weights beat"),
    "abeat_words": (1, None, "DMA words per activations beat"),
    "tile_words": (1, None, "DMA words per output tile"),
    "tile_words_requant": (1, None, "DMA words per requantized output tile"),
}


class RegmapError(ValueError):
    """The RDL or a build's parameters are not what the register block can implement; the
    message is one line."""


@dataclass(frozen=True)
class EnumMember:
    name: str
    value: int
    desc: str


@dataclass(frozen=True)
class Enum:
    """An RDL ``enum`` a field is encoded with (``STATUS.ERROR_CODE``: the error codes)."""
    name: str
    members: tuple[EnumMember, ...]

    def value(self, name: str) -> int:
        for member in self.members:
            if member.name == name:
                return member.value
        raise KeyError(f"enum {self.name} has no member {name!r}")

    def name_of(self, value: int) -> str | None:
        """The member's name for ``value``, None for a value the enum does not name."""
        return next((m.name for m in self.members if m.value == value), None)


@dataclass(frozen=True)
class Field:
    """One field: where it is, who may read and write it, and how it behaves."""
    register: str
    name: str
    lsb: int
    width: int
    sw: str                     # "r", "w" or "rw"
    hw: str                     # "na", "r" or "w"
    reset: int | None           # None: no storage (a status field reads its input)
    singlepulse: bool
    woclr: bool
    hwset: bool                 # the hardware sets it (RDL ``hwset``, or ``intr``'s sticky bit)
    intr: bool
    enable: tuple[str, str] | None   # (register, field) gating it onto irq
    encode: Enum | None
    desc: str

    @property
    def msb(self) -> int:
        return self.lsb + self.width - 1

    @property
    def mask(self) -> int:
        """The field's bits in its register word."""
        return ((1 << self.width) - 1) << self.lsb

    @property
    def kind(self) -> str:
        """One of ``KINDS`` (see the module docstring)."""
        return _kind(self)

    @property
    def port(self) -> str | None:
        """The register block's hardware port of this field (``<reg>_<field>``, lower
        case), None for a constant or a control field the hardware does not read."""
        if self.kind == "constant" or (self.kind == "control" and self.hw == "na"):
            return None
        return f"{self.register}_{self.name}".lower()

    @property
    def port_direction(self) -> str | None:
        """``"in"`` (status, interrupt set) or ``"out"`` (control, pulse), from the block."""
        if self.port is None:
            return None
        return "in" if self.kind in ("status", "interrupt") else "out"


@dataclass(frozen=True)
class Register:
    name: str
    offset: int                 # byte address in the 4 KiB window
    fields: tuple[Field, ...]   # in lsb order
    title: str                  # the RDL ``name``
    desc: str

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name} has no field {name!r}")

    @property
    def reset(self) -> int:
        """The word a read returns after reset with every hardware input 0."""
        return sum((f.reset or 0) << f.lsb for f in self.fields
                   if "r" in f.sw and f.kind != "pulse")


@dataclass(frozen=True)
class RegisterMap:
    """The compiled register map of one build: its parameters, registers in offset order,
    and the elaborated SystemRDL tree the PeakRDL emitters take (``root``)."""
    name: str
    parameters: Mapping[str, int]
    registers: tuple[Register, ...]
    root: object = field(compare=False, repr=False)

    def register(self, name: str) -> Register:
        for r in self.registers:
            if r.name == name:
                return r
        raise KeyError(f"{self.name} has no register {name!r}")

    def at(self, offset: int) -> Register | None:
        """The register at byte address ``offset`` (its low two bits ignored), or None."""
        word = offset & ~3 & (WINDOW_BYTES - 1)
        return next((r for r in self.registers if r.offset == word), None)

    @property
    def fields(self) -> tuple[Field, ...]:
        return tuple(f for r in self.registers for f in r.fields)

    def field(self, register: str, name: str) -> Field:
        return self.register(register).field(name)

    @property
    def interrupts(self) -> tuple[Field, ...]:
        """The fields whose OR (each gated by its ``enable``) is ``irq``."""
        return tuple(f for f in self.fields if f.kind == "interrupt" and f.intr)

    @property
    def enums(self) -> tuple[Enum, ...]:
        seen: dict[str, Enum] = {}
        for f in self.fields:
            if f.encode is not None:
                seen.setdefault(f.encode.name, f.encode)
        return tuple(seen.values())


def _kind(f: Field) -> str:
    if f.sw == "r" and f.hw == "na" and f.reset is not None:
        return "constant"
    if f.sw == "r" and f.hw == "w" and f.reset is None and not f.hwset:
        return "status"
    if f.singlepulse and f.sw == "w" and f.hw == "r" and not (f.woclr or f.hwset):
        return "pulse"
    if f.hwset and f.woclr and f.sw == "rw" and f.hw in ("w", "na") and f.reset is not None:
        return "interrupt"
    if f.sw == "rw" and f.hw in ("r", "na") and f.reset is not None and not (
            f.singlepulse or f.woclr or f.hwset or f.intr):
        return "control"
    raise RegmapError(f"field {f.register}.{f.name} (sw={f.sw}, hw={f.hw}, reset={f.reset}, "
                      f"singlepulse={f.singlepulse}, woclr={f.woclr}, hwset={f.hwset}, "
                      f"intr={f.intr}) is none of the kinds the register block implements: "
                      f"{', '.join(KINDS)}")


# ---- compiling the RDL -----------------------------------------------------------------

class _Collect:
    """A systemrdl MessagePrinter that keeps messages instead of printing them."""

    def __init__(self):
        self.errors: list[str] = []

    def print_message(self, severity, text, src_ref):
        if severity.name == "WARNING":
            return
        where = RDL_PATH.name
        if src_ref is not None and getattr(src_ref, "path", None):
            line = getattr(src_ref, "line", None)
            where = Path(src_ref.path).name + (f":{line}" if line else "")
        self.errors.append(f"{where}: {text}")


def _compile(parameters: dict[str, int]):
    from systemrdl import RDLCompileError, RDLCompiler
    from systemrdl.messages import MessagePrinter

    collect = _Collect()

    class Printer(MessagePrinter):
        def print_message(self, severity, text, src_ref):
            collect.print_message(severity, text, src_ref)

    compiler = RDLCompiler(message_printer=Printer())
    try:
        compiler.compile_file(str(RDL_PATH))
        return compiler.elaborate(TOP, parameters=parameters)
    except RDLCompileError as e:
        first = collect.errors[0] if collect.errors else f"{RDL_PATH.name}: {e}"
        given = ", ".join(f"{k}={v}" for k, v in parameters.items())
        raise RegmapError(first + (f" (with {given})" if given else "")) from None


@functools.lru_cache(maxsize=1)
def _defaults() -> dict[str, int]:
    root = _compile({})
    return {p.name: p.get_value() for p in root.top.inst.parameters}


def parameter_names() -> tuple[str, ...]:
    """The RDL's parameters, in declaration order."""
    return tuple(_defaults())


def default_parameters() -> dict[str, int]:
    """Each parameter's default in the RDL (the default build)."""
    return dict(_defaults())


def _check_parameters(params: dict) -> dict[str, int]:
    names = parameter_names()
    for name, value in params.items():
        if name not in names:
            raise RegmapError(f"{TOP} has no parameter {name!r}: choose from "
                              f"{', '.join(names)}")
        if not isinstance(value, int) or isinstance(value, bool):
            raise RegmapError(f"parameter {name} must be an integer, not {value!r}")
        lo, hi, what = _PARAMETER_RULES[name]
        if value < lo or (hi is not None and value > hi):
            bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
            raise RegmapError(f"parameter {name} ({what}) must be {bound}, not {value}")
    if "word_bytes" in params and params["word_bytes"] & (params["word_bytes"] - 1):
        raise RegmapError(f"parameter word_bytes (dma_bits / 8) must be a power of two, "
                          f"not {params['word_bytes']}")
    return {**_defaults(), **params}


def _access(value) -> str:
    return {"r": "r", "w": "w", "rw": "rw", "na": "na"}.get(value.name, value.name)


def _field(reg_name: str, node) -> Field:
    from systemrdl.node import FieldNode

    enable = node.get_property("enable")
    if enable is not None and not isinstance(enable, FieldNode):
        raise RegmapError(f"field {reg_name}.{node.inst_name}: enable must name a field")
    if node.get_property("mask") is not None:
        raise RegmapError(f"field {reg_name}.{node.inst_name}: interrupt masks are not "
                          f"implemented, use enable")
    encode = node.get_property("encode")
    enum = None
    if encode is not None:
        enum = Enum(encode.type_name, tuple(
            EnumMember(m.name, m.value, (m.rdl_desc or "").strip()) for m in encode))
    intr = bool(node.get_property("intr"))
    if intr and not node.get_property("stickybit"):
        raise RegmapError(f"field {reg_name}.{node.inst_name}: only sticky interrupts are "
                          f"implemented")
    reset = node.get_property("reset")
    if reset is not None and not isinstance(reset, int):
        raise RegmapError(f"field {reg_name}.{node.inst_name}: reset must be a constant")
    if not node.implements_storage and node.get_property("sw").name == "r":
        reset = reset if node.get_property("hw").name == "na" else None
    f = Field(register=reg_name, name=node.inst_name, lsb=node.lsb, width=node.width,
              sw=_access(node.get_property("sw")), hw=_access(node.get_property("hw")),
              reset=reset, singlepulse=bool(node.get_property("singlepulse")),
              woclr=bool(node.get_property("woclr")),
              hwset=bool(node.get_property("hwset")) or intr, intr=intr,
              enable=(enable.parent.inst_name, enable.inst_name) if enable else None,
              encode=enum, desc=(node.get_property("desc") or "").strip())
    f.kind    # refuse what the register block cannot implement
    return f


@functools.lru_cache(maxsize=32)
def _build(items: tuple[tuple[str, int], ...]) -> RegisterMap:
    from systemrdl.node import RegNode

    params = dict(items)
    root = _compile({k: v for k, v in params.items() if v != _defaults()[k]})
    top = root.top
    registers = []
    for node in top.children():
        if not isinstance(node, RegNode) or node.is_array:
            raise RegmapError(f"{TOP}.{node.inst_name}: only plain registers are implemented")
        if node.size != DATA_BITS // 8 or node.get_property("regwidth") != DATA_BITS:
            raise RegmapError(f"register {node.inst_name} is not {DATA_BITS} bits")
        fields = tuple(sorted((_field(node.inst_name, f) for f in node.fields()),
                              key=lambda f: f.lsb))
        registers.append(Register(node.inst_name, node.absolute_address, fields,
                                  node.get_property("name"),
                                  (node.get_property("desc") or "").strip()))
    registers.sort(key=lambda r: r.offset)
    model = RegisterMap(top.inst_name, MappingProxyType(params), tuple(registers), root)
    _check_layout(model)
    return model


def _check_layout(model: RegisterMap) -> None:
    """What the register block assumes: aligned, in the window, no overlaps, one port name
    per field, every enable a control field of its width."""
    seen_offsets, ports = {}, {}
    for r in model.registers:
        if r.offset % (DATA_BITS // 8) or not 0 <= r.offset < WINDOW_BYTES:
            raise RegmapError(f"register {r.name} at 0x{r.offset:x} is not an aligned "
                              f"offset in the {WINDOW_BYTES}-byte window")
        if r.offset in seen_offsets:
            raise RegmapError(f"registers {seen_offsets[r.offset]} and {r.name} share "
                              f"offset 0x{r.offset:x}")
        seen_offsets[r.offset] = r.name
        used = 0
        for f in r.fields:
            if f.msb >= DATA_BITS or used & f.mask:
                raise RegmapError(f"field {r.name}.{f.name} [{f.msb}:{f.lsb}] overlaps "
                                  f"another or leaves the {DATA_BITS}-bit word")
            used |= f.mask
            if f.port is not None:
                if f.port in ports:
                    raise RegmapError(f"fields {ports[f.port]} and {r.name}.{f.name} both "
                                      f"make port {f.port}")
                ports[f.port] = f"{r.name}.{f.name}"
            if f.enable is not None:
                en = model.field(*f.enable)
                if en.kind != "control" or en.width != f.width:
                    raise RegmapError(f"field {r.name}.{f.name}: its enable "
                                      f"{en.register}.{en.name} is not a control field of "
                                      f"{f.width} bits")


def build_model(**parameters: int) -> RegisterMap:
    """The register map of a build: ``hss_system.rdl`` elaborated with ``parameters``
    (``rows``, ``cols``, ``value_width``, ... see ``parameter_names()``; the rest keep
    their defaults). Raises ``RegmapError`` (one line) for an unknown parameter, a value
    out of range, or one that does not fit its field."""
    params = _check_parameters(parameters)
    return _build(tuple(params.items()))
