"""``hdl.shared``: instances of shared modules stand in for elaborated components."""
import re

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hdl.pe import Multipliers, PE
from hdl.shared import SharedModules, instantiate
from hss import Pattern


def test_an_instance_has_the_components_ports_but_the_omitted():
    pe = PE(Pattern.parse("2:4"), 8, True, 20)
    m = Module()
    iface = instantiate(m, "pe_1_2", "the_pe", pe.signature, clocked=True, omit=("partial",))
    assert not hasattr(iface, "partial")
    assert len(iface.weights) == len(pe.weights.as_value()) and iface.sum.shape().signed
    text = verilog.convert(m, ports=[iface.en, iface.weights, iface.acts, iface.sum])
    ports = re.search(r"the_pe\s+pe_1_2 \((.*?)\);", text, re.S).group(1)
    names = set(re.findall(r"\.(\w+)\(", ports))
    assert names == {"en", "valid", "first", "last", "weights", "acts", "selected", "sum",
                     "sum_valid", "clk", "rst"}
    # the instance's port names are the component's own Verilog port names
    own = verilog.convert(pe, name="the_pe")
    header = re.search(r"module the_pe\((.*?)\);", own).group(1)
    assert names | {"partial"} == {p.strip() for p in header.split(",")}


def test_combinational_modules_get_no_clock():
    mul = Multipliers(2, 4, False)
    m = Module()
    instantiate(m, "mul", "mul", mul.signature, clocked=False)
    text = verilog.convert(m, ports=[])
    assert ".clk(" not in text and ".a(" in text
    verilog.convert(mul)             # elaborated: no warning


def test_shared_modules_list_each_module_with_its_ports():
    shared = SharedModules("top.array")
    a, b = Multipliers(2, 4, False), Multipliers(2, 4, False)
    shared.add("mul_a", a, clocked=False)
    shared.add("mul_b", b, clocked=False, omit=("p",))
    listed = {name: (c, ports) for name, c, ports in shared.modules()}
    assert list(listed) == ["top.array.mul_a", "top.array.mul_b"]
    assert listed["top.array.mul_a"][0] is a
    assert [len(p) for p in listed["top.array.mul_b"][1]] == [8, 8]    # a and b, no p
    m = Module()
    iface = shared.place(m, "m0", "mul_b")
    assert not hasattr(iface, "p") and hasattr(iface, "a")
    verilog.convert(m, ports=[])
    for c in (a, b):
        verilog.convert(c)


def test_bad_arguments():
    with pytest.raises(ValueError, match="prefix must be a non-empty module name"):
        SharedModules("")

    class Nested(wiring.Component):
        def __init__(self):
            super().__init__({"bus": Out(wiring.Signature({"x": Out(1)})), "y": In(1)})

        def elaborate(self, platform):
            return Module()

    nested, m = Nested(), Module()
    with pytest.raises(TypeError, match="member 'bus': only plain ports can be shared"):
        instantiate(m, "n", "nested", nested.signature, clocked=False)
    verilog.convert(nested)
    verilog.convert(m, ports=[])
