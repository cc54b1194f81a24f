"""Synthesis reports for generated RTL: NAND2-equivalent area, FPGA resources, Fmax.

Takes Verilog text and a top module name (the caller converts from Amaranth),
runs the YoWASP builds of yosys and nextpnr (pip extras ``synth`` and
``pnr``), and returns plain JSON-ready dicts. No project imports, so it works
on any Verilog. ``synth.toggle`` estimates energy from the toggle counts of the
netlist mapped to cells.lib, simulated under a self-checking testbench.
``synth.tools`` finds, runs and stops every external tool of the project
(simulators included): one place honours the overrides and the venv.
"""

from . import tools, toggle

from .flows import area_nand2, ecp5, fmax_ecp5, ice40, summarize_area, top_ports
from .wrapper import pin_light_wrapper
from .tools import ToolInterrupted, ToolMissing, ToolTimeout
from .toggle import ToggleError, gate_netlist, liberty_energies, toggle_energy
from .yosys import (TRANSISTORS, SynthError, ToolNotFound, liberty_cells, liberty_path,
                    run_nextpnr_ecp5, run_yosys, tool_command)

__all__ = [
    "area_nand2", "ecp5", "ice40", "fmax_ecp5", "top_ports", "summarize_area",
    "pin_light_wrapper", "SynthError", "ToolNotFound", "TRANSISTORS",
    "liberty_cells", "liberty_path", "run_yosys", "run_nextpnr_ecp5", "tool_command",
    "tools", "ToolMissing", "ToolTimeout", "ToolInterrupted",
    "toggle", "toggle_energy", "gate_netlist", "liberty_energies", "ToggleError",
]
