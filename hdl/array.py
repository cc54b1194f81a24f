"""A rows x cols array of PEs: weights broadcast along rows, activations down columns."""
from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .config import AcceleratorConfig
from .layouts import act_group_layout, group_layout, sums_member
from .pe import PE

__all__ = ["PEArray"]


class PEArray(wiring.Component):
    """``rows x cols`` PEs in lockstep. PE (i, j) multiplies weight row i with activation
    column j; ``sums[i][j]`` is its output, valid (for all PEs at once) with ``sum_valid``
    (``hdl.layouts.sums_member``: one signal, or one per row for a large tile).
    """

    def __init__(self, config: AcceleratorConfig):
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        self.config = c = config
        super().__init__({
            "en": In(1), "valid": In(1), "first": In(1), "last": In(1),
            "weights": In(data.ArrayLayout(group_layout(c.pattern, c.width, c.signed), c.rows)),
            "acts": In(data.ArrayLayout(act_group_layout(c.pattern, c.width, c.signed), c.cols)),
            "sums": sums_member(c),
            "sum_valid": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.config
        for i in range(c.rows):
            for j in range(c.cols):
                pe = PE(c.pattern, c.width, c.signed, c.acc_width)
                m.submodules[f"pe_{i}_{j}"] = pe
                m.d.comb += [pe.en.eq(self.en), pe.valid.eq(self.valid),
                             pe.first.eq(self.first), pe.last.eq(self.last),
                             pe.weights.eq(self.weights[i]), pe.acts.eq(self.acts[j]),
                             self.sums[i][j].eq(pe.sum)]
                if i == 0 and j == 0:  # all PEs run in lockstep: one speaks for all
                    m.d.comb += self.sum_valid.eq(pe.sum_valid)
        return m
