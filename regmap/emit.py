"""Everything that follows from the register map, each text written by one writer.

``write_all(folder, model)`` is what ``python -m gen`` calls for a build: the C header
(PeakRDL-cheader), the Markdown and HTML references (PeakRDL-markdown, PeakRDL-html) and the
IP-XACT description (PeakRDL-ipxact). ``render_host_module`` is the driver's
``host/regmap.py``, from the default build's model (``python -m regmap host`` writes it; it is
committed, so the driver needs no RDL tools). Every output is the same bytes on every run:
no time stamps, no source links, no absolute paths.
"""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from .model import (ADDRESS_BITS, DATA_BITS, RDL_PATH, TOP, WINDOW_BYTES, RegisterMap,
                    RegmapError, build_model)

__all__ = ["HOST_MODULE", "C_HEADER", "MARKDOWN", "IPXACT", "HTML_FOLDER", "write_c_header",
           "write_markdown", "write_html", "write_ipxact", "write_all", "render_host_module",
           "write_host_module"]

#: the driver's generated offsets module, in this checkout
HOST_MODULE = Path(__file__).resolve().parent.parent / "host" / "regmap.py"
C_HEADER = f"{TOP}.h"
MARKDOWN = f"{TOP}.md"
IPXACT = f"{TOP}.xml"
HTML_FOLDER = "html"
#: IP-XACT's VLNV: vendor, library, name (the top), version (the register map's)
IPXACT_VENDOR = "hss-gen"
IPXACT_LIBRARY = "hss"
_WRAP = 92


def _check(model) -> None:
    if not isinstance(model, RegisterMap):
        raise TypeError(f"expected a regmap.RegisterMap (regmap.build_model()), not {model!r}")


def _version(model: RegisterMap) -> tuple[int, int]:
    version = model.register("VERSION")
    return version.field("MAJOR").reset, version.field("MINOR").reset


def write_c_header(folder, model: RegisterMap) -> Path:
    """``<folder>/hss_system.h``: field masks/positions/widths/resets as macros, and the
    registers as a packed struct (``offsetof`` gives each offset). Macros are named by the
    register's path (``HSS_SYSTEM__CTRL__START_bm``), not by shared RDL types."""
    from peakrdl_cheader.exporter import CHeaderExporter
    _check(model)
    path = Path(folder) / C_HEADER
    path.parent.mkdir(parents=True, exist_ok=True)
    CHeaderExporter().export(model.root.top, str(path), reuse_typedefs=False)
    return path


def write_markdown(folder, model: RegisterMap) -> Path:
    """``<folder>/hss_system.md``: the register reference as Markdown, and after it a
    table of each enum's values (the error codes), which PeakRDL-markdown 1.0 leaves out."""
    from peakrdl_markdown.exporter import MarkdownExporter
    _check(model)
    path = Path(folder) / MARKDOWN
    MarkdownExporter().export(model.root.top, str(path))
    lines = []
    for enum in model.enums:
        users = ", ".join(f"{f.register}.{f.name}" for f in model.fields if f.encode == enum)
        lines += ["", f"## {enum.name} values", "", f"The values of {users}.", "",
                  "| value | name | meaning |", "|---|---|---|"]
        lines += [f"| {m.value} | {m.name} | {' '.join(m.desc.split())} |"
                  for m in enum.members]
    with path.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + ("\n" if lines else ""))
    return path


def write_html(folder, model: RegisterMap) -> Path:
    """``<folder>/html/``: the browsable reference (``index.html``), written anew. The
    exporter's time stamp (a cache-buster in URLs) is pinned to 0 and its links to the
    RDL's source are off, so two runs write the same bytes."""
    from peakrdl_html.exporter import HTMLExporter
    _check(model)
    out = Path(folder) / HTML_FOLDER
    if out.exists():
        shutil.rmtree(out)
    HTMLExporter(generate_source_links=False, user_context={"build_ts": 0}).export(
        model.root.top, str(out), title=f"{TOP} registers")
    return out


def write_ipxact(folder, model: RegisterMap) -> Path:
    """``<folder>/hss_system.xml``: an IEEE 1685-2014 component with the memory map."""
    from peakrdl_ipxact.exporter import IPXACTExporter
    _check(model)
    path = Path(folder) / IPXACT
    path.parent.mkdir(parents=True, exist_ok=True)
    major, minor = _version(model)
    IPXACTExporter(vendor=IPXACT_VENDOR, library=IPXACT_LIBRARY,
                   version=f"{major}.{minor}").export(model.root.top, str(path))
    return path


def write_all(folder, model: RegisterMap) -> list[Path]:
    """Every emitted file of ``model`` into ``folder`` (created): the C header, the
    Markdown reference, the IP-XACT description and the HTML folder, in that order."""
    _check(model)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [write_c_header(folder, model), write_markdown(folder, model),
            write_ipxact(folder, model), write_html(folder, model)]


# ---- host/regmap.py ------------------------------------------------------------------

def _doc(title: str, desc: str, indent: int) -> str:
    """A docstring body: ``title: desc``, wrapped, safe inside triple quotes."""
    text = " ".join(f"{title}: {desc}".split()) if desc else title
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if text.endswith('"'):
        text += " "
    lines = textwrap.wrap(text, _WRAP - indent - 3)
    return ("\n" + " " * indent).join(lines)


def _class_name(enum_name: str) -> str:
    return "".join(part.capitalize() for part in enum_name.split("_"))


def render_host_module(model: RegisterMap | None = None) -> str:
    """The text of ``host/regmap.py`` for ``model`` (default: the default build)."""
    from gen.render import environment
    model = build_model() if model is None else model
    _check(model)
    reserved = {"OFFSET", "FIELDS"}
    registers = []
    for reg in model.registers:
        clash = reserved & {f.name for f in reg.fields}
        if clash:
            raise RegmapError(f"register {reg.name}: a field may not be named "
                              f"{', '.join(sorted(clash))} (host/regmap.py uses the name)")
        registers.append({"name": reg.name, "offset": reg.offset, "fields": reg.fields,
                          "doc": _doc(reg.title or reg.name, reg.desc, 4)})
    enums = [{"class_name": _class_name(e.name),
              "doc": f"The values of the RDL enum {e.name}.",
              "members": [{"name": m.name, "value": m.value,
                           "comment": textwrap.wrap(" ".join(m.desc.split()), _WRAP - 8)}
                          for m in e.members]}
             for e in model.enums]
    names = ["DATA_BITS", "ADDRESS_BITS", "WINDOW_BYTES", "ID_VALUE", "VERSION_MAJOR",
             "VERSION_MINOR", "DEFAULT_PARAMETERS", "Field", "REGISTERS",
             *(e["class_name"] for e in enums), *(r.name for r in model.registers)]
    major, minor = _version(model)
    return environment("regmap").get_template("host_regmap.py.j2").render(
        rdl_name=RDL_PATH.name, data_bits=DATA_BITS, address_bits=ADDRESS_BITS,
        window_bytes=WINDOW_BYTES, id_value=model.field("ID", "ID").reset,
        version_major=major, version_minor=minor,
        parameters=list(model.parameters.items()), enums=enums, registers=registers,
        all_lines=_fill([f'"{n}",' for n in names], _WRAP - 4), register_lines=_fill(
            [f"{r.name}," for r in model.registers], _WRAP - 4))


def _fill(words: list[str], width: int) -> list[str]:
    """``words`` joined by spaces into lines of at most ``width`` characters."""
    return textwrap.wrap(" ".join(words), width, break_long_words=False,
                         break_on_hyphens=False)


def write_host_module(path=HOST_MODULE, model: RegisterMap | None = None) -> Path:
    """Write ``render_host_module(model)`` to ``path`` (default: this checkout's
    ``host/regmap.py``)."""
    path = Path(path)
    path.write_text(render_host_module(model), encoding="utf-8")
    return path
