"""A rows x cols array of PEs: weights broadcast along rows, activations down columns."""
from __future__ import annotations

from amaranth.hdl import Cat, Module
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .config import AcceleratorConfig
from .layouts import act_group_layout, group_layout, sums_member
from .pe import PE
from .shared import SharedModules

__all__ = ["PEArray"]


class PEArray(wiring.Component):
    """``rows x cols`` PEs in lockstep. PE (i, j) multiplies weight row i with activation
    column j; ``sums[i][j]`` is its output, valid (for all PEs at once) with ``sum_valid``
    (``hdl.layouts.sums_member``: one signal, or one per row for a large tile).

    ``shared``: an ``hdl.shared.SharedModules`` to instantiate one shared PE module at
    every position instead of elaborating each PE (for emitting large arrays); None
    elaborates them all (what Amaranth's simulator runs).
    """

    def __init__(self, config: AcceleratorConfig, *, shared: SharedModules | None = None):
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        self.config = c = config
        self.shared = share_pes(shared, self._pe)
        super().__init__({
            "en": In(1), "valid": In(1), "first": In(1), "last": In(1),
            "weights": In(data.ArrayLayout(group_layout(c.pattern, c.width, c.signed), c.rows)),
            "acts": In(data.ArrayLayout(act_group_layout(c.pattern, c.width, c.signed), c.cols)),
            "sums": sums_member(c),
            "sum_valid": Out(1),
        })

    def _pe(self) -> PE:
        c = self.config
        return PE(c.pattern, c.width, c.signed, c.acc_width)

    def elaborate(self, platform):
        m = Module()
        c = self.config
        for i in range(c.rows):
            row = []
            for j in range(c.cols):
                if self.shared is None:
                    m.submodules[f"pe_{i}_{j}"] = pe = self._pe()
                else:
                    pe = self.shared.place(m, f"pe_{i}_{j}", pe_module(i, j))
                m.d.comb += [pe.en.eq(self.en), pe.valid.eq(self.valid),
                             pe.first.eq(self.first), pe.last.eq(self.last),
                             pe.weights.eq(self.weights[i]), pe.acts.eq(self.acts[j])]
                drive_sum(m, self, i, j, pe, row)
        return m


def share_pes(shared: SharedModules | None, make_pe) -> SharedModules | None:
    """Check an array's ``shared`` argument and add its two PE modules (``make_pe()``
    each): ``pe_0_0``, which drives ``sum_valid``, and ``pe_0_1`` for every other position,
    without it, as Amaranth's own text has them; no PE's ``selected`` or ``partial`` is read
    outside it."""
    if shared is None:
        return None
    if not isinstance(shared, SharedModules):
        raise TypeError(f"shared must be an hdl.shared.SharedModules or None, not {shared!r}")
    unread = ("selected", "partial")
    shared.add("pe_0_0", make_pe(), clocked=True, omit=unread)
    shared.add("pe_0_1", make_pe(), clocked=True, omit=unread + ("sum_valid",))
    return shared


def pe_module(i: int, j: int) -> str:
    """The shared module of PE (i, j) (``share_pes``)."""
    return "pe_0_1" if i or j else "pe_0_0"


def drive_sum(m: Module, array, i: int, j: int, pe, row: list) -> None:
    """``array.sums[i][j]`` from PE (i, j), and ``sum_valid`` from PE (0, 0) (all PEs run
    in lockstep: one speaks for all). With shared modules, a row in one statement (``row``
    collects it): Amaranth checks each statement against every bit of the signal it
    drives, so a statement per PE costs PEs x tile bits (17 of 58 s of a 32x32 build's
    Verilog); a full elaboration keeps a statement per PE, in the order small builds' text
    always had."""
    if array.shared is None:
        m.d.comb += array.sums[i][j].eq(pe.sum)
    else:
        row.append(pe.sum)
        if j == array.config.cols - 1:
            m.d.comb += array.sums[i].eq(Cat(row))
    if i == 0 and j == 0:
        m.d.comb += array.sum_valid.eq(pe.sum_valid)
