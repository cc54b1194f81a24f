"""The processing element: rank-by-rank operand selection, prod(G) MACs, accumulator."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Shape, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hss import Pattern

from .config import value_shape
from .layouts import act_group_layout, group_layout
from .selector import GHSelector

__all__ = ["PE", "Multipliers", "AdderTree", "Accumulator", "PE_LATENCY"]

#: Cycles from a step's inputs (sampled with ``valid`` and ``en``) to its ``sum``:
#: a register after selection, after the multipliers and after the adder tree.
PE_LATENCY = 3


def _check_format(width, is_signed, acc_width=None):
    """Eager checks of the number format, named as the caller spells them."""
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise ValueError(f"width must be a positive integer, not {width!r}")
    if not isinstance(is_signed, bool):
        raise TypeError(f"is_signed must be a bool, not {is_signed!r}")
    if acc_width is not None and (not isinstance(acc_width, int) or isinstance(acc_width, bool)
                                  or acc_width < 2):
        raise ValueError(f"acc_width must be an integer of at least 2, not {acc_width!r}")


class Multipliers(wiring.Component):
    """``n`` independent multipliers, combinational: ``p[i] = a[i] * b[i]``."""

    def __init__(self, n: int, width: int, is_signed: bool):
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, not {n!r}")
        _check_format(width, is_signed)
        operand = value_shape(width, is_signed)
        super().__init__({
            "a": In(data.ArrayLayout(operand, n)),
            "b": In(data.ArrayLayout(operand, n)),
            "p": Out(data.ArrayLayout(value_shape(2 * width, is_signed), n)),
        })
        self.n = n

    def elaborate(self, platform):
        m = Module()
        for i in range(self.n):
            m.d.comb += self.p[i].eq(self.a[i] * self.b[i])
        return m


class AdderTree(wiring.Component):
    """A balanced adder tree over the products, combinational. ``partial`` is
    ``ceil(log2 n)`` bits wider than a product, so the tree cannot overflow."""

    def __init__(self, n: int, product_shape):
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, not {n!r}")
        self.n = n
        product = Shape.cast(product_shape)
        out_shape = Shape(product.width + (n - 1).bit_length(), product.signed)
        super().__init__({
            "products": In(data.ArrayLayout(product_shape, n)),
            "partial": Out(out_shape),
        })

    def elaborate(self, platform):
        m = Module()
        level = [self.products[i] for i in range(self.n)]
        while len(level) > 1:
            level = [level[i] + level[i + 1] if i + 1 < len(level) else level[i]
                     for i in range(0, len(level), 2)]
        m.d.comb += self.partial.eq(level[0])
        return m


class Accumulator(wiring.Component):
    """``sum = partial`` on the first step of a tile, else ``acc + partial``; the register
    takes ``sum`` on every enabled valid step. ``sum`` is combinational, so the array can
    capture a finished tile in the cycle its last step arrives."""

    def __init__(self, partial_shape, acc_shape):
        self.acc_shape = Shape.cast(acc_shape)
        super().__init__({
            "partial": In(partial_shape),
            "en": In(1), "valid": In(1), "first": In(1),
            "sum": Out(self.acc_shape),
        })

    def elaborate(self, platform):
        m = Module()
        acc = Signal(self.acc_shape, reset_less=True)
        m.d.comb += self.sum.eq(Mux(self.first, self.partial, acc + self.partial))
        with m.If(self.en & self.valid):
            m.d.sync += acc.eq(self.sum)
        return m


class PE(wiring.Component):
    """One PE: a compressed weight group and a dense activation group per step.

    Pipeline (advancing when ``en``): selection -> register (``selected``) -> multipliers ->
    register -> adder tree -> register (``partial``) -> accumulator (``sum``, combinational).
    ``sum_valid`` is high when ``sum`` holds a finished tile, i.e. the step that carried
    ``last`` reached the accumulator, ``PE_LATENCY`` enabled cycles after it was sampled.
    The tree and the accumulator adder get a stage each: together they were the critical path.

    Selection is rank by rank: the rank N-1 selector picks G(N-1) blocks of the group,
    each kept block feeds a rank N-2 selector, ..., down to rank 0 selectors that pick
    single activations for the multipliers. No selector is wider than one rank's H.
    A subclass that selects otherwise gives its ``signature`` (``FlexPE``) and ``src_loc_at``.
    """

    def __init__(self, pattern: Pattern, width: int, is_signed: bool, acc_width: int, *,
                 signature: dict | None = None, src_loc_at: int = 0):
        if not isinstance(pattern, Pattern):
            raise TypeError(f"pattern must be an hss.Pattern, not {pattern!r}")
        _check_format(width, is_signed, acc_width)
        self.pattern, self.width, self.is_signed = pattern, width, is_signed
        self.lanes = pattern.slots          # multipliers
        self.acc_shape = value_shape(acc_width, is_signed)
        super().__init__(signature if signature is not None else {
            "en": In(1), "valid": In(1), "first": In(1), "last": In(1),
            "weights": In(group_layout(pattern, width, is_signed)),
            "acts": In(act_group_layout(pattern, width, is_signed)),
            "selected": Out(data.ArrayLayout(value_shape(width, is_signed), pattern.slots)),
            "partial": Out(self.acc_shape),
            "sum": Out(self.acc_shape),
            "sum_valid": Out(1),
        }, src_loc_at=src_loc_at)

    def _select(self, m: Module) -> list[Value]:
        """Instantiate the selector tree; return the activation of each value slot."""
        p = self.pattern
        value = value_shape(self.width, self.is_signed)
        parents = [Value.cast(self.acts)]          # kept rank-r blocks, outer-major
        for r in reversed(range(p.num_ranks)):
            sub = data.ArrayLayout(value, p.span(r - 1)) if r else value
            children = []
            for k, parent in enumerate(parents):
                sel = GHSelector(p.G[r], p.H[r], sub)
                m.submodules[f"sel_r{r}_{k}"] = sel
                m.d.comb += Value.cast(sel.inputs).eq(parent)
                if not p.rank(r).dense:
                    offsets = getattr(self.weights.offsets, f"r{r}")
                    for i in range(p.G[r]):
                        m.d.comb += sel.offsets[i].eq(offsets[k * p.G[r] + i])
                children += [Value.cast(sel.outputs[i]) for i in range(p.G[r])]
            parents = children
        return parents

    def elaborate(self, platform):
        m = Module()
        chosen = self._select(m)

        # stage 1: selected activations and weight values
        weights = Signal.like(self.weights.values, reset_less=True)
        v1, f1, l1 = Signal(), Signal(), Signal()
        selected = Signal.like(self.selected, reset_less=True)
        with m.If(self.en):
            m.d.sync += [v1.eq(self.valid), f1.eq(self.first), l1.eq(self.last),
                         weights.eq(self.weights.values)]
            m.d.sync += [Value.cast(selected[i]).eq(c) for i, c in enumerate(chosen)]
        m.d.comb += self.selected.eq(selected)

        # stage 2: products
        m.submodules.mul = mul = Multipliers(self.lanes, self.width, self.is_signed)
        m.d.comb += [mul.a.eq(weights), mul.b.eq(selected)]
        products = Signal.like(mul.p, reset_less=True)
        v2, f2, l2 = Signal(), Signal(), Signal()
        with m.If(self.en):
            m.d.sync += [products.eq(mul.p), v2.eq(v1), f2.eq(f1), l2.eq(l1)]

        # stage 3: the adder tree's sum
        m.submodules.reduce = tree = AdderTree(self.lanes, mul.p.shape().elem_shape)
        m.d.comb += tree.products.eq(products)
        partial = Signal.like(tree.partial, reset_less=True)
        v3, f3, l3 = Signal(), Signal(), Signal()
        with m.If(self.en):
            m.d.sync += [partial.eq(tree.partial), v3.eq(v2), f3.eq(f2), l3.eq(l2)]

        # accumulation (combinational sum, registered accumulator)
        m.submodules.acc = acc = Accumulator(partial.shape(), self.acc_shape)
        m.d.comb += [acc.partial.eq(partial), acc.en.eq(self.en), acc.valid.eq(v3),
                     acc.first.eq(f3), self.partial.eq(partial), self.sum.eq(acc.sum),
                     self.sum_valid.eq(v3 & l3)]
        return m
