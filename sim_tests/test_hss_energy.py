"""hss.energy: the table (default and users'), action counts, pricing; and the PE shapes the
hardware configs give it."""
import json

import pytest

from hdl import AcceleratorConfig
from hdl.config import FlexConfig
from hss.energy import (ALADDIN_TABLE, DEFAULT_TABLE, ActionCounts, EnergyError, EnergyTable,
                        PEShape, energy)


def test_default_table_is_45nm_and_scales_by_width():
    t = EnergyTable.load()
    assert t.name == "horowitz-45nm" and "Horowitz" in t.source and t.technology_nm == 45
    assert t.pj("multiply", 8) == pytest.approx(0.2)
    assert t.pj("multiply", 32) == pytest.approx(3.2)      # quadratic (Horowitz: 3.1 pJ)
    assert t.pj("add", 32) == pytest.approx(0.12)          # linear (Horowitz: 0.1 pJ)
    assert t.pj("register_bit") == pytest.approx(0.009)
    assert t.pj("gated_multiply", 8) < t.pj("multiply", 8) / 5


def test_aladdin_table_prices_aladdin_components_by_width():
    t = EnergyTable.load(ALADDIN_TABLE)
    assert t.name == "aladdin-40nm" and "Aladdin" in t.source and t.technology_nm == 40
    assert t.pj("multiply", 32) == pytest.approx(12.68)
    assert t.pj("multiply", 8) == pytest.approx(12.68 / 16)        # quadratic in width
    assert t.pj("add", 16) == pytest.approx(0.105)                  # linear in width


def _table(**change):
    data = json.loads(DEFAULT_TABLE.read_text())
    data.update(change)
    return data


@pytest.mark.parametrize("data, message", [
    ([], "expected an object"),
    ({k: v for k, v in _table().items() if k != "source"}, "missing 'source'"),
    (_table(actions={}), "missing actions multiply"),
    (_table(actions=dict(_table()["actions"], laser={"energy_pj": 1, "width": 1})),
     "unknown actions laser"),
    (_table(actions=dict(_table()["actions"], add={"energy_pj": -1, "width": 32})),
     "energy_pj must be a number >= 0"),
    (_table(actions=dict(_table()["actions"], add={"energy_pj": 1, "width": 0})),
     "width must be a positive integer"),
    (_table(actions=dict(_table()["actions"], add={"energy_pj": 1, "width": 8,
                                                    "scale": "cubic"})),
     "scale must be one of linear, quadratic"),
    (_table(technology_nm=0), "technology_nm must be a positive number"),
])
def test_bad_tables_are_one_line_errors(data, message):
    with pytest.raises(EnergyError, match=message):
        EnergyTable.from_dict(data)


def test_unreadable_table_files(tmp_path):
    with pytest.raises(EnergyError, match="No such file"):
        EnergyTable.load(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(EnergyError, match="is not JSON"):
        EnergyTable.load(tmp_path / "bad.json")


PE = PEShape(lanes=4, width=8, selectors=(("rank 1", 6), ("rank 0", 4)), register_bits=100,
             adds=(17, 17, 18, 24))


def test_counts_split_lane_steps_into_multiplies_gated_and_idle():
    c = ActionCounts.of_run(PE, pes=2, steps=5, cycles=9, multiplies=30, stream_bits=7)
    assert (c.multiplies, c.gated, c.idle) == (30, 4 * 2 * 5 - 30, 4 * 2 * 4)
    with pytest.raises(EnergyError, match="do not fit 40 lane-steps"):
        ActionCounts.of_run(PE, 2, 5, 9, 41, 0)
    with pytest.raises(EnergyError, match="fewer than"):
        ActionCounts.of_run(PE, 2, 5, 4, 1, 0)
    with pytest.raises(EnergyError, match="non-negative integer"):
        ActionCounts(-1, 0, 0, 0, 0, 0, 0)


def test_energy_is_the_sum_of_priced_actions():
    t = EnergyTable.load()
    c = ActionCounts.of_run(PE, pes=2, steps=5, cycles=5, multiplies=30, stream_bits=7)
    e = energy(c, PE, t)
    assert e.multipliers == pytest.approx(30 * t.pj("multiply", 8) + 10 * t.pj("gated_multiply", 8))
    assert e.selectors == pytest.approx(10 * 10 * t.pj("mux2_bit"))
    assert dict(e.selectors_by_level) == pytest.approx({"rank 1": 60 * t.pj("mux2_bit"),
                                                        "rank 0": 40 * t.pj("mux2_bit")})
    assert e.as_dict()["selectors rank 0"] == pytest.approx(40 * t.pj("mux2_bit"))
    assert e.registers == pytest.approx(10 * 100 * t.pj("register_bit"))
    assert e.accumulate == pytest.approx(10 * sum(t.pj("add", b) for b in PE.adds))
    assert e.stream_io == pytest.approx(7 * t.pj("stream_bit"))
    assert e.total == pytest.approx(sum(v for k, v in e.as_dict().items()
                                        if k != "total" and not k.startswith("selectors ")))
    # more nonzero weights cost more: a gated lane is cheaper than a multiply
    more = ActionCounts.of_run(PE, pes=2, steps=5, cycles=5, multiplies=40, stream_bits=7)
    assert energy(more, PE, t).total > e.total


def test_pe_shapes_follow_the_hardware():
    hss46 = AcceleratorConfig("4:6,2:4", acc_width=26).pe_shape
    # rank 1: one selector, 4 outputs of (6-4+1) blocks of 4 values: 2 mux2s per bit each;
    # rank 0: 4 selectors, 2 outputs of 3 values: 2 mux2s per bit each
    assert hss46.selectors == (("rank 1", 4 * 2 * 4 * 8), ("rank 0", 4 * 2 * 2 * 8))
    assert hss46.register_bits == 2 * 8 * 8 + 8 * 16 + (16 + 3) + 26
    assert len(hss46.adds) == 8 and hss46.adds[-1] == 26       # 7 tree adds + accumulator
    assert AcceleratorConfig("8:8").pe_shape.mux2_bits == 0      # dense: wires
    assert AcceleratorConfig("4:4,2:4").pe_shape.selectors == (("rank 0", 4 * 2 * 2 * 8),)
    flex = FlexConfig("4:4|4:5|4:6|4:7,4:4|2:4|1:4")
    assert flex.pe_shape.mux2_bits == (flex.schedule.mux_inputs - flex.macs) * 8
