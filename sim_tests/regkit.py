"""What the register block's tests share: random bus and hardware operations, the same for
the Amaranth simulation (test_regmap_hdl.py) and the cocotb test on Verilator
(regmap_cocotb.py), and their expected outcome from the golden model."""
from __future__ import annotations

import random
from dataclasses import dataclass

from regmap import RegisterMap
from regmap.reference import ReferenceRegisters

__all__ = ["Op", "operations", "expect"]

#: unmapped words of the 4 KiB window: gaps between the groups, past the last, the top
UNMAPPED = (0x008, 0x00C, 0x030, 0x03C, 0x050, 0x07C, 0x0AC, 0x0FC, 0x13C, 0x800, 0xFFC)


@dataclass(frozen=True)
class Op:
    """One step: ``write`` (address, data, strobe, order of AW and W), ``read`` (address),
    ``drive`` (a status port to a value) or ``set`` (a pulse on an interrupt's input)."""
    kind: str
    address: int = 0
    data: int = 0
    strobe: int = 0xF
    order: str = "together"     # "together", "aw_first" or "w_first"
    port: str = ""


def operations(model: RegisterMap, seed: int, count: int, *, contiguous: bool = False,
               orders=("together", "aw_first", "w_first")) -> list[Op]:
    """``count`` random operations. ``contiguous``: every write's enabled bytes are one run
    and its address points at the first of them (what an AXI master writing a byte string,
    as cocotbext-axi does, puts on the bus)."""
    rng = random.Random(seed)
    mapped = [r.offset for r in model.registers]
    writable = [r.offset for r in model.registers
                if any(f.kind in ("control", "pulse", "interrupt") for f in r.fields)]
    status = [f for f in model.fields if f.kind == "status"]
    interrupts = [f for f in model.fields if f.kind == "interrupt"]
    ops = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.45:
            word = rng.choice(writable if rng.random() < 0.7 else mapped + list(UNMAPPED))
            if contiguous:
                first = rng.randrange(4)
                length = rng.randint(1, 4 - first)
                strobe = ((1 << length) - 1) << first
                address = word + first
            else:
                strobe = rng.choice((0xF, 0xF, rng.randrange(16)))
                address = word + rng.randrange(4)
            data = rng.getrandbits(32)
            if word == model.register("INT_STATUS").offset or rng.random() < 0.3:
                data &= rng.choice((0x1, 0x2, 0x3, 0xFFFF_FFFF))   # small values matter
            ops.append(Op("write", address, data, strobe, rng.choice(orders)))
        elif roll < 0.8:
            word = rng.choice(mapped + list(UNMAPPED))
            ops.append(Op("read", word if contiguous else word + rng.randrange(4)))
        elif roll < 0.92:
            f = rng.choice(status)
            ops.append(Op("drive", port=f.port, data=rng.getrandbits(f.width)))
        else:
            ops.append(Op("set", port=rng.choice(interrupts).port))
    return ops


def expect(ref: ReferenceRegisters, op: Op) -> int | None:
    """Apply ``op`` to the golden model; the word a read must return, else None."""
    if op.kind == "write":
        ref.write(op.address, op.data, op.strobe)
    elif op.kind == "read":
        return ref.read(op.address)
    elif op.kind == "drive":
        ref.drive(op.port, op.data)
    elif op.kind == "set":
        ref.hw_set(op.port)
    else:
        raise ValueError(f"unknown operation {op.kind!r}")
    return None
