"""Shared modules: an array position instantiates a Verilog module by name instead of
elaborating its own copy of a component.

Amaranth elaborates, netlists and converts every submodule instance anew, so an array of N
identical PEs costs N times one PE at each step (a 64x64 array: 4,096 PEs, minutes of
Python). An array built with shared modules elaborates one ``Instance`` per position, and the
generator converts each distinct component once under the module name the instances use
(``gen.emit``): the same logic, with a module per distinct component, as
``synth.compose.distinct_modules`` makes of a fully elaborated design. Amaranth's simulator
cannot run an ``Instance``: tests simulate the fully elaborated array, and the shared form
is cosimulated as Verilog.
"""
from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal, Shape, Signal, Value
from amaranth.lib import wiring

__all__ = ["SharedModules", "instantiate"]


def _ports(signature: wiring.Signature, omit):
    """(name, member) of ``signature``'s ports but those in ``omit``: plain ports only (no
    sub-interfaces, no arrays of members), named as ``amaranth.back.verilog.convert`` names
    a component's."""
    for name, member in signature.members.items():
        if not member.is_port or member.dimensions:
            raise TypeError(f"member {name!r}: only plain ports can be shared")
        if name not in omit:
            yield name, member


def instantiate(m: Module, name: str, module: str, signature: wiring.Signature, *,
                clocked: bool, omit=()):
    """Add submodule ``name`` to ``m``: an ``Instance`` of Verilog module ``module`` with
    ``signature``'s ports but those named in ``omit``, and ``clk``/``rst`` of the sync
    domain when ``clocked``. Return an object with an attribute per port (none for the
    omitted), a plain signal of its width and signedness wired to the instance, to drive
    and read whole as the component's own port. Plain signals, not the ports' data
    layouts: a layout signal costs about a millisecond to make, seconds per thousand PEs."""
    iface, ports = SimpleNamespace(), {}
    for port, member in _ports(signature, omit):
        value = Signal(Shape.cast(member.shape), name=f"{name}__{port}")
        setattr(iface, port, value)
        ports[("i_" if member.flow == wiring.In else "o_") + port] = value
    if clocked:
        ports.update(i_clk=ClockSignal(), i_rst=ResetSignal())
    m.submodules[name] = Instance(module, **ports)
    return iface


class SharedModules:
    """The components an array shares, each under the Verilog module name its instances
    use: ``prefix + "." + key`` (e.g. ``hss_accelerator.array.pe_0_0``, the name Amaranth
    gives the first PE, so module names and area breakdowns read as in a full
    elaboration). ``omit`` names outputs that no instance reads: left out of the module's
    ports, as Amaranth leaves a port out of a submodule whose output nothing reads, so that
    synthesis drops the logic that drives only them (a PE's ``sum_valid`` pipeline, read
    from the first PE alone). ``modules()`` is what the generator converts."""

    def __init__(self, prefix: str):
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"prefix must be a non-empty module name, not {prefix!r}")
        self.prefix = prefix
        self._modules: dict[str, tuple[wiring.Component, bool, tuple[str, ...]]] = {}

    def add(self, key: str, component: wiring.Component, *, clocked: bool, omit=()) -> None:
        self._modules[f"{self.prefix}.{key}"] = (component, clocked, tuple(omit))

    def place(self, m: Module, name: str, key: str):
        """An instance of shared module ``key`` as submodule ``name`` (``instantiate``)."""
        module = f"{self.prefix}.{key}"
        component, clocked, omit = self._modules[module]
        return instantiate(m, name, module, component.signature, clocked=clocked, omit=omit)

    def modules(self):
        """(module name, component, its ports: the values to pass as ``ports=`` to
        ``amaranth.back.verilog.convert``), one per shared module."""
        for module, (component, _, omit) in self._modules.items():
            yield module, component, [Value.cast(getattr(component, port))
                                      for port, _ in _ports(component.signature, omit)]
