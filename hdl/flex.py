"""A flexible HSS accelerator: one array that runs every mode of a mode set, per tile.

The lane mapping is ``hss.lanes.LaneSchedule`` (read its docstring first). Hardware:

- ``RowSteer`` (one per PE row, shared by the row's PEs): from the row's weights beat, the
  mode and the phase, each lane's weight value and the position of its activation in the
  lane's region. Mode-dependent wiring lives here, once per row, not in every PE.
- ``RegionWindow`` (one per PE column, shared by the column's PEs): the activation regions
  of the beat, each a copy of the group its lane row reads in this mode.
- ``FlexPE``: the ``PE`` pipeline (multipliers, adder tree, accumulator) behind one
  activation mux per lane, sized to the positions that lane can need in any mode
  (``LaneSchedule.candidates``), not to the window.
- ``FlexAccelerator``: the ``HSSAccelerator`` protocol, plus a ``mode`` field on the weights
  beat and phases: a beat of a mode whose group has more values than the PE has multipliers
  is taken in ``steps_per_beat`` steps, so the multipliers are busy in every mode.

Stream layouts (``flex_weight_beat_layout``, ``flex_act_beat_layout``): a weights beat is
``{rows[R]: {values[V], offsets.r<r>[F_r]}, mode, last}``: per PE row, the beat's groups in
the canonical compressed format of the mode (shared/HSS.md), concatenated (group 0's values,
then group 1's ...; likewise the offsets of each rank), each offset field as wide as the
widest alternative of its rank, unused fields zero. An activations beat is
``[cols][groups][S_max]``: per column, the beat's groups of activations, each at the start of
a slot of the largest group size.
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal, Value, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .config import FlexConfig
from .array import drive_sum, pe_module, share_pes
from .layouts import sums_member
from .pe import PE, PE_LATENCY
from .shared import SharedModules
from .top import HSSAccelerator, tile_layout

__all__ = ["FlexAccelerator", "FlexPE", "FlexPEArray", "RowSteer", "RegionWindow", "LaneSelect",
           "flex_row_layout", "flex_weight_beat_layout", "flex_act_beat_layout",
           "flex_tile_layout", "lane_layout", "FLEX_LATENCY"]

#: The same pipeline as the fixed build: steering and windows are combinational.
FLEX_LATENCY = PE_LATENCY + 1


def _check(config):
    if not isinstance(config, FlexConfig):
        raise TypeError(f"config must be a FlexConfig, not {config!r}")
    return config


def flex_row_layout(c: FlexConfig) -> data.StructLayout:
    """One PE row's part of a weights beat: values and padded offset fields."""
    s = c.schedule
    offsets = {f"r{r}": data.ArrayLayout(unsigned(s.offset_bits(r)), s.offset_fields(r))
               for r in reversed(range(s.num_ranks)) if s.offset_fields(r)}
    return data.StructLayout({"values": data.ArrayLayout(c.value_shape, s.beat_values),
                              "offsets": data.StructLayout(offsets)})


def flex_weight_beat_layout(c: FlexConfig) -> data.StructLayout:
    fields = {"rows": data.ArrayLayout(flex_row_layout(c), c.rows)}
    if c.modes.mode_bits:
        fields["mode"] = unsigned(c.modes.mode_bits)
    fields["last"] = 1
    return data.StructLayout(fields)


def _region_layout(c: FlexConfig) -> data.ArrayLayout:
    return data.ArrayLayout(c.value_shape, c.schedule.region_size)


def flex_act_beat_layout(c: FlexConfig) -> data.ArrayLayout:
    column = data.ArrayLayout(_region_layout(c), c.schedule.max_groups_per_beat)
    return data.ArrayLayout(column, c.cols)


def flex_tile_layout(c: FlexConfig) -> data.StructLayout:
    """``tile_layout``: the tiles stream does not depend on the modes."""
    return tile_layout(c)


def lane_layout(c: FlexConfig) -> data.StructLayout:
    """What a PE gets from its row's steering: per lane a value and an activation position."""
    position = unsigned(max(1, (c.schedule.region_size - 1).bit_length()))
    return data.StructLayout({"values": data.ArrayLayout(c.value_shape, c.macs),
                              "pos": data.ArrayLayout(position, c.macs)})


def _phase_shape(c: FlexConfig):
    return unsigned(max(1, (c.schedule.max_steps_per_beat - 1).bit_length()))


def _mode_shape(c: FlexConfig):
    return unsigned(max(1, c.modes.mode_bits))


class RowSteer(wiring.Component):
    """Per lane: the weight value and the activation position of the slot it takes in this
    mode and phase (``LaneSchedule.lane``). Combinational; one per PE row."""

    def __init__(self, config: FlexConfig):
        self.config = c = _check(config)
        super().__init__({
            "row": In(flex_row_layout(c)),
            "mode": In(_mode_shape(c)),
            "phase": In(_phase_shape(c)),
            "lanes": Out(lane_layout(c)),
        })

    def _drive(self, m: Module, mode: int, phase: int) -> None:
        s, row = self.config.schedule, self.row
        p = s.modes[mode]
        for k in range(s.macs):
            group, slot = s.lane(mode, phase, k)
            m.d.comb += self.lanes.values[k].eq(row.values[group * p.slots + slot])
            kept = p.slot_offsets(slot)
            terms = []
            for r in range(p.num_ranks):
                span = p.span(r - 1)
                if p.rank(r).dense:
                    terms.append(kept[r] * span)
                else:
                    field = getattr(row.offsets, f"r{r}")[group * p.kept(r)
                                                          + p.offset_index(r, slot)]
                    terms.append(field * span if span > 1 else field)
            pos = terms[0]
            for t in terms[1:]:
                pos = pos + t
            m.d.comb += self.lanes.pos[k].eq(pos)

    def elaborate(self, platform):
        m = Module()
        s = self.config.schedule
        with m.Switch(self.mode):
            for mode in range(len(s.modes)):
                with m.Case(mode):
                    if s.steps_per_beat(mode) == 1:
                        self._drive(m, mode, 0)
                    else:
                        with m.Switch(self.phase):
                            for phase in range(s.steps_per_beat(mode)):
                                with m.Case(phase):
                                    self._drive(m, mode, phase)
        return m


class RegionWindow(wiring.Component):
    """The activation regions of one PE column: region ``u`` is a copy of the beat group
    that lane row ``u`` reads in this mode (``LaneSchedule.region_group``). Combinational;
    a region with one source in every mode is plain wires."""

    def __init__(self, config: FlexConfig):
        self.config = c = _check(config)
        super().__init__({
            "groups": In(data.ArrayLayout(_region_layout(c), c.schedule.max_groups_per_beat)),
            "mode": In(_mode_shape(c)),
            "regions": Out(data.ArrayLayout(_region_layout(c), c.schedule.rows)),
        })

    def elaborate(self, platform):
        m = Module()
        s = self.config.schedule
        for u in range(s.rows):
            sources = {}
            for mode in range(len(s.modes)):
                sources.setdefault(s.region_group(mode, u), []).append(mode)
            if len(sources) == 1:
                m.d.comb += self.regions[u].eq(self.groups[next(iter(sources))])
                continue
            with m.Switch(self.mode):
                for group, modes in sorted(sources.items()):
                    with m.Case(*modes):
                        m.d.comb += self.regions[u].eq(self.groups[group])
        return m


class LaneSelect(wiring.Component):
    """One activation mux per lane: lane ``k`` reads region ``k // T`` at ``pos[k]``, among
    only the positions it can need in some mode (``LaneSchedule.candidates[k]``: 16 of 28
    per lane for HighLight's set at 8 lanes, where a one-rank flexible design needs 49 of
    56). Combinational; its own module so that area reports show the selection apart."""

    def __init__(self, config: FlexConfig):
        self.config = c = _check(config)
        super().__init__({
            "regions": In(data.ArrayLayout(_region_layout(c), c.schedule.rows)),
            "pos": In(lane_layout(c)["pos"].shape),
            "lanes": Out(data.ArrayLayout(c.value_shape, c.macs)),
        })

    def elaborate(self, platform):
        m = Module()
        s = self.config.schedule
        for k, positions in enumerate(s.candidates):
            region = self.regions[k // s.top_kept]
            with m.Switch(self.pos[k]):
                for pos in positions:
                    with m.Case(pos):
                        m.d.comb += self.lanes[k].eq(region[pos])
        return m


class FlexPE(PE):
    """The ``PE`` pipeline (registers, multipliers, adder tree, accumulator) behind a
    ``LaneSelect`` instead of the fixed selector tree."""

    def __init__(self, config: FlexConfig):
        """``PE`` for the dense twin's pattern (``macs:macs``: ``macs`` multipliers), with
        its own signature: lanes and regions for operands (``src_loc_at``: located here)."""
        self.config = c = _check(config)
        twin = c.dense_twin().pattern
        super().__init__(twin, c.width, c.signed, c.acc_width, src_loc_at=1, signature={
            "en": In(1), "valid": In(1), "first": In(1), "last": In(1),
            "weights": In(lane_layout(c)),
            "acts": In(data.ArrayLayout(_region_layout(c), c.schedule.rows)),
            "selected": Out(data.ArrayLayout(c.value_shape, c.macs)),
            "partial": Out(c.acc_shape),
            "sum": Out(c.acc_shape),
            "sum_valid": Out(1),
        })

    def _select(self, m: Module) -> list[Value]:
        m.submodules.lane_select = lanes = LaneSelect(self.config)
        m.d.comb += [lanes.regions.eq(self.acts), lanes.pos.eq(self.weights.pos)]
        return [Value.cast(lanes.lanes[k]) for k in range(self.config.macs)]


class FlexPEArray(wiring.Component):
    """``rows x cols`` FlexPEs in lockstep, a ``RowSteer`` per row and a ``RegionWindow``
    per column; ``sums`` and ``shared`` as in ``PEArray`` (steering, windows and PEs each
    one shared module)."""

    def __init__(self, config: FlexConfig, *, shared: SharedModules | None = None):
        self.config = c = _check(config)
        self.shared = share_pes(shared, lambda: FlexPE(c))
        if shared is not None:
            shared.add("steer_0", RowSteer(c), clocked=False)
            shared.add("window_0", RegionWindow(c), clocked=False)
        super().__init__({
            "en": In(1), "valid": In(1), "first": In(1), "last": In(1),
            "mode": In(_mode_shape(c)), "phase": In(_phase_shape(c)),
            "weights": In(data.ArrayLayout(flex_row_layout(c), c.rows)),
            "acts": In(flex_act_beat_layout(c)),
            "sums": sums_member(c),
            "sum_valid": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.config
        steers, windows = [], []

        def part(name, key, cls):
            if self.shared is not None:
                return self.shared.place(m, name, key)
            m.submodules[name] = component = cls(c)
            return component

        for i in range(c.rows):
            steer = part(f"steer_{i}", "steer_0", RowSteer)
            m.d.comb += [steer.row.eq(self.weights[i]), steer.mode.eq(self.mode),
                         steer.phase.eq(self.phase)]
            steers.append(steer)
        for j in range(c.cols):
            window = part(f"window_{j}", "window_0", RegionWindow)
            m.d.comb += [window.groups.eq(self.acts[j]), window.mode.eq(self.mode)]
            windows.append(window)
        for i in range(c.rows):
            row = []
            for j in range(c.cols):
                pe = part(f"pe_{i}_{j}", pe_module(i, j), FlexPE)
                m.d.comb += [pe.en.eq(self.en), pe.valid.eq(self.valid),
                             pe.first.eq(self.first), pe.last.eq(self.last),
                             pe.weights.eq(steers[i].lanes), pe.acts.eq(windows[j].regions)]
                drive_sum(m, self, i, j, pe, row)
        return m


class FlexAccelerator(HSSAccelerator):
    """``HSSAccelerator``'s protocol for a mode set: the weights beat carries ``mode`` (the
    number of the mode in ``config.modes``), and a beat of mode ``m`` is taken after
    ``steps_per_beat(m)`` steps (phases), the activations beat with it. Tiles of different
    modes follow each other back to back; the mode may also change between the beats of one
    tile: the tile is then computed in *segments* (TASD terms, ``flex_segment_vectors``)
    summed into the same accumulators until ``last``. A tile is valid ``FLEX_LATENCY``
    cycles after its last step. A mode number outside the set computes nothing defined.
    """

    def __init__(self, config: FlexConfig, *, shared: SharedModules | None = None):
        """``HSSAccelerator``'s (the streams' layouts are the config's); ``src_loc_at=1``
        locates the ports here, so that the RTL's ``src`` attributes name this file."""
        super().__init__(config, shared=shared, src_loc_at=1)

    @staticmethod
    def _checked(config: FlexConfig) -> FlexConfig:
        return _check(config)

    def _array(self):
        return FlexPEArray(self.config, shared=self.shared)

    def _feed(self, m: Module, array, step, en, first):
        s = self.config.schedule
        beat = self.weights.payload
        mode = beat.mode if self.config.modes.mode_bits else 0
        phase = Signal(_phase_shape(self.config))
        beat_done = Signal()                       # this step is the beat's last phase
        with m.Switch(mode):
            for mi in range(len(s.modes)):
                with m.Case(mi):
                    m.d.comb += beat_done.eq(phase == s.steps_per_beat(mi) - 1)
            with m.Default():
                m.d.comb += beat_done.eq(1)
        with m.If(step):
            m.d.sync += phase.eq(0)
            with m.If(~beat_done):
                m.d.sync += phase.eq(phase + 1)
        last = beat.last & beat_done
        m.d.comb += [
            self.weights.ready.eq(self.activations.valid & en & beat_done),
            self.activations.ready.eq(self.weights.valid & en & beat_done),
            array.en.eq(en), array.valid.eq(step), array.first.eq(first),
            array.last.eq(last), array.mode.eq(mode), array.phase.eq(phase),
            array.weights.eq(beat.rows), array.acts.eq(self.activations.payload),
        ]
        return last
