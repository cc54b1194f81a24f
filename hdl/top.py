"""HSSAccelerator: the top the generator emits. See the class docstring for the protocol."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .array import PEArray
from .config import AcceleratorConfig
from .layouts import group_layout
from .pe import PE_LATENCY
from .shared import SharedModules

__all__ = ["HSSAccelerator", "LATENCY", "weight_beat_layout", "tile_layout", "last_beat_latency"]

#: Cycles from the cycle that accepts a tile's last group to the cycle its tile is valid.
LATENCY = PE_LATENCY + 1


def last_beat_latency(config) -> int:
    """Cycles from accepting a tile's last group to the handshake of its last ``tiles``
    beat when nothing stalls: ``LATENCY``, plus one cycle per further beat of the tile."""
    return LATENCY + config.tile_beats - 1


def weight_beat_layout(config: AcceleratorConfig) -> data.StructLayout:
    c = config
    return data.StructLayout({
        "groups": data.ArrayLayout(group_layout(c.pattern, c.width, c.signed), c.rows),
        "last": 1,
    })


def tile_layout(config) -> data.StructLayout:
    """A ``tiles`` beat: ``tile_rows`` rows of the tile, its ``overflow`` flag and, where a
    tile takes several beats, ``last`` on its final one."""
    c = config
    fields = {"z": data.ArrayLayout(data.ArrayLayout(c.acc_shape, c.cols), c.tile_rows),
              "overflow": 1}
    if c.tile_beats > 1:
        fields["last"] = 1
    return data.StructLayout(fields)


class HSSAccelerator(wiring.Component):
    """An HSS GEMM engine computing output tiles ``Z[rows, cols] = W[rows, K] @ A[K, cols]``.

    Ports (Amaranth ``lib.stream``; in Verilog ``<name>__payload/__valid/__ready``, plus
    ``clk`` and synchronous ``rst``):

    - ``weights`` (in): one beat per step = one compressed group per PE row,
      ``groups[i] = {values[prod(G)], offsets.r<r>[kept(r)]}`` (dense ranks have no
      offsets), and ``last``, set on the final group of a tile (K/S groups per tile).
    - ``activations`` (in): one beat per step = one dense group of S activations per PE
      column, ``[cols][S]``.
    - ``tiles`` (out): one beat per tile, ``z[rows][cols]`` (accumulator width, signedness
      of the values), and ``overflow``, set when the tile had more than ``ceil(max_k/S)``
      steps, beyond what the accumulator width is sized for. A tile too wide for one signal
      (``config.tile_beats > 1``) leaves in ``tile_beats`` consecutive beats of
      ``tile_rows`` rows each, top rows first, each with the tile's ``overflow``, the last
      with ``last``.

    A step happens in a cycle where both inputs are valid and the engine is ready; the two
    streams advance together (``ready`` of each depends on ``valid`` of the other). Tiles
    follow each other back to back with no idle cycle; a tile is valid ``LATENCY`` cycles
    after the cycle that accepted its last group. The output holds one tile while the next
    is computed; the engine stalls only when a second tile finishes before the first was
    taken (with several beats per tile: before its last beat was taken, so tiles of fewer
    steps than beats stall the engine).

    ``shared``: an ``hdl.shared.SharedModules`` named ``<top>.array`` makes the array
    instantiate shared modules (``PEArray``); they are known once the top is elaborated.
    The streams' layouts are the config's (``config.weight_beat_layout()`` ...), so a
    subclass keeps this constructor; ``src_loc_at`` as Amaranth's (``FlexAccelerator``).
    """

    def __init__(self, config: AcceleratorConfig, *, shared: SharedModules | None = None,
                 src_loc_at: int = 0):
        self.config = c = self._checked(config)
        super().__init__({
            "weights": In(stream.Signature(c.weight_beat_layout())),
            "activations": In(stream.Signature(c.act_beat_layout())),
            "tiles": Out(stream.Signature(c.tile_layout())),
        }, src_loc_at=src_loc_at)
        self.shared = shared

    def _array(self):
        return PEArray(self.config, shared=self.shared)

    def _feed(self, m: Module, array, step, en, first):
        """Drive the input readies and the array's data (``first``: this step starts a
        tile); return the signal that marks a tile's last step. Here one step a beat."""
        m.d.comb += [
            self.weights.ready.eq(self.activations.valid & en),
            self.activations.ready.eq(self.weights.valid & en),
            array.en.eq(en), array.valid.eq(step), array.first.eq(first),
            array.last.eq(self.weights.payload.last),
            array.weights.eq(self.weights.payload.groups),
            array.acts.eq(self.activations.payload),
        ]
        return self.weights.payload.last

    def elaborate(self, platform):
        m = Module()
        c = self.config
        m.submodules.array = array = self._array()

        full = Signal()                            # the output register holds a tile
        if c.tile_beats == 1:
            take = ~full | self.tiles.ready       # a finished tile can be stored now
        else:
            beat = Signal(range(c.tile_beats))    # the tile's beat on the port
            at_last = beat == c.tile_beats - 1
            take = ~full | (self.tiles.ready & at_last)
        en = Signal()
        m.d.comb += en.eq(~array.sum_valid | take)

        step = self.weights.valid & self.activations.valid & en
        first = Signal(init=1, name="first")   # the next step starts a tile
        last = self._feed(m, array, step, en, first)
        with m.If(step):
            m.d.sync += first.eq(last)

        # Steps of the current tile so far, saturating at max_steps: a tile overflows when
        # its last step finds max_steps steps before it.
        count = Signal(range(c.max_steps + 1))
        with m.If(step):
            with m.If(last):
                m.d.sync += count.eq(0)
            with m.Elif(count < c.max_steps):
                m.d.sync += count.eq(count + 1)
        over_in = count >= c.max_steps
        flags = [Signal(name=f"overflow_{i}") for i in range(PE_LATENCY)]
        with m.If(en):
            m.d.sync += flags[0].eq(over_in)
            m.d.sync += [flags[i].eq(flags[i - 1]) for i in range(1, PE_LATENCY)]

        if c.tile_beats > 1:
            self._drain(m, array, flags[-1], full, take, beat, at_last)
            return m
        tile = Signal(tile_layout(c), reset_less=True)
        with m.If(array.sum_valid & take):
            m.d.sync += [tile.z.eq(array.sums), tile.overflow.eq(flags[-1]), full.eq(1)]
        with m.Elif(self.tiles.ready):
            m.d.sync += full.eq(0)
        m.d.comb += [self.tiles.valid.eq(full), self.tiles.payload.eq(tile)]
        return m

    def _drain(self, m: Module, array, overflow, full, take, beat, at_last):
        """The output register of a tile that leaves in ``tile_beats`` beats: one register
        per beat's rows (no signal holds the whole tile), the port showing beat ``beat``."""
        c, out = self.config, self.tiles
        parts = [Signal(tile_layout(c)["z"].shape, name=f"tile_{b}", reset_less=True)
                 for b in range(c.tile_beats)]
        over = Signal(reset_less=True)
        with m.If(array.sum_valid & take):
            m.d.sync += [part.eq(Cat(array.sums[b * c.tile_rows + i] for i in range(c.tile_rows)))
                         for b, part in enumerate(parts)]
            m.d.sync += [over.eq(overflow), full.eq(1), beat.eq(0)]
        with m.Elif(out.ready & full):
            m.d.sync += beat.eq(beat + 1)
            with m.If(at_last):
                m.d.sync += [full.eq(0), beat.eq(0)]
        with m.Switch(beat):
            for b, part in enumerate(parts):
                with m.Case(b):
                    m.d.comb += out.payload.z.eq(part)
        m.d.comb += [out.valid.eq(full), out.payload.overflow.eq(over),
                     out.payload.last.eq(at_last)]

    @staticmethod
    def _checked(config: AcceleratorConfig) -> AcceleratorConfig:
        """``config``, if this top builds its kind (``FlexAccelerator``: a ``FlexConfig``)."""
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        return config
