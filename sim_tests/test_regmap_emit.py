"""What follows from the register map: the C header, the Markdown/HTML/IP-XACT references
and the driver's generated host/regmap.py, each checked against the model and for the same
bytes on every run."""
from __future__ import annotations

import ast
import importlib
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from regmap import build_model, emit
from regmap.__main__ import main as regmap_main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model():
    return build_model()


@pytest.fixture(scope="module")
def written(tmp_path_factory, model):
    folder = tmp_path_factory.mktemp("regmap")
    paths = emit.write_all(folder, model)
    return folder, paths


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_write_all_writes_each_output_once(written):
    folder, paths = written
    assert [p.name for p in paths] == ["hss_system.h", "hss_system.md", "hss_system.xml",
                                       "html"]
    assert all(p.parent == folder for p in paths)
    assert (folder / "html" / "index.html").is_file()


def test_outputs_are_the_same_bytes_on_every_run(written, model, tmp_path):
    folder, _ = written
    emit.write_all(tmp_path / "again", model)
    assert _tree(tmp_path / "again") == _tree(folder)
    emit.write_all(tmp_path / "again", model)         # over itself: nothing stale, same bytes
    assert _tree(tmp_path / "again") == _tree(folder)


def test_c_header_compiles_and_has_every_offset_and_field(written, model, tmp_path):
    folder, _ = written
    if shutil.which("gcc") is None:
        pytest.fail("gcc not found: apt-get install gcc")
    checks = ["#include <stddef.h>", '#include "hss_system.h"']
    for reg in model.registers:
        checks.append(f"_Static_assert(offsetof(hss_system_t, {reg.name}) == {reg.offset:#x}, "
                      f'"{reg.name}");')
        for f in reg.fields:
            macro = f"HSS_SYSTEM__{reg.name}__{f.name}"
            checks.append(f"_Static_assert({macro}_bm == {f.mask:#x}u && {macro}_bp == {f.lsb} "
                          f'&& {macro}_bw == {f.width}, "{reg.name}.{f.name}");')
    checks.append("_Static_assert(HSS_SYSTEM__CONFIG0__ROWS_reset == 0x4, \"rows\");")
    source = tmp_path / "check.c"
    source.write_text("\n".join(checks) + "\n")
    r = subprocess.run(["gcc", "-std=c11", "-Wall", "-Werror", "-fsyntax-only",
                        f"-I{folder}", str(source)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # and the checks can fail: a wrong offset is refused
    source.write_text(checks[0] + "\n" + checks[1] + "\n"
                      "_Static_assert(offsetof(hss_system_t, CTRL) == 0x44, \"CTRL\");\n")
    r = subprocess.run(["gcc", "-fsyntax-only", f"-I{folder}", str(source)],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "CTRL" in r.stderr


def test_markdown_lists_every_register(written, model):
    text = (written[0] / "hss_system.md").read_text()
    for reg in model.registers:
        assert re.search(rf"\|\s*0x{reg.offset:03X}\|\s*{reg.name}\s*\|", text), reg.name
        assert f"### {reg.name} register" in text
    assert "| 7 | BAD_MODE | A mode outside the build's set" in text


def test_ipxact_describes_every_register_and_field(written, model):
    ns = {"ipxact": "http://www.accellera.org/XMLSchema/IPXACT/1685-2014"}
    tree = ET.parse(written[0] / "hss_system.xml")
    vlnv = [tree.getroot().find(f"ipxact:{k}", ns).text
            for k in ("vendor", "library", "name", "version")]
    assert vlnv == ["hss-gen", "hss", "hss_system", "1.1"]
    regs = {r.find("ipxact:name", ns).text: r for r in tree.getroot().iter(
        f"{{{ns['ipxact']}}}register")}
    assert list(regs) == [r.name for r in model.registers]
    for reg in model.registers:
        node = regs[reg.name]
        assert int(node.find("ipxact:addressOffset", ns).text.lstrip("'h"), 16) == reg.offset
        fields = [(f.find("ipxact:name", ns).text, int(f.find("ipxact:bitOffset", ns).text),
                   int(f.find("ipxact:bitWidth", ns).text))
                  for f in node.findall("ipxact:field", ns)]
        assert fields == [(f.name, f.lsb, f.width) for f in reg.fields]
    codes = [v.find("ipxact:name", ns).text for v in tree.getroot().iter(
        f"{{{ns['ipxact']}}}enumeratedValue")]
    assert codes[:2] == ["NONE", "WBUF_OVERFLOW"] and len(codes) == 12


def test_outputs_follow_the_build(tmp_path):
    emit.write_all(tmp_path, build_model(rows=8, qbuf_depth=1536))
    header = (tmp_path / "hss_system.h").read_text()
    assert "#define HSS_SYSTEM__CONFIG0__ROWS_reset 0x8\n" in header
    assert "#define HSS_SYSTEM__QBUF_DEPTH__DEPTH_reset 0x600\n" in header


def test_rdl_and_templates_are_package_data():
    text = (ROOT / "pyproject.toml").read_text()
    assert '"regmap", "regmap.templates"' in text and '"host"' in text
    assert 'regmap = ["*.rdl", "templates/*.j2"]' in text
    assert (ROOT / "regmap" / "hss_system.rdl").is_file()
    assert (ROOT / "regmap" / "templates" / "host_regmap.py.j2").is_file()


def test_emitters_refuse_what_is_not_a_model(tmp_path):
    with pytest.raises(TypeError, match="expected a regmap.RegisterMap"):
        emit.write_all(tmp_path, {"rows": 4})


# ---- host/regmap.py -----------------------------------------------------------------

def test_host_regmap_is_what_the_rdl_gives():
    """host/regmap.py is generated and committed: regenerate it with `python -m regmap
    host` in the commit that changes the RDL."""
    assert emit.HOST_MODULE == ROOT / "host" / "regmap.py"
    assert emit.HOST_MODULE.read_text(encoding="utf-8") == emit.render_host_module(), \
        "host/regmap.py is out of date: run python -m regmap host"
    assert regmap_main(["host", "--check"]) == 0


def test_host_check_sees_a_stale_file(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "regmap.py"
    stale.write_text(emit.render_host_module().replace("OFFSET = 0x040", "OFFSET = 0x044"))
    monkeypatch.setattr(emit, "HOST_MODULE", stale)
    assert regmap_main(["host", "--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert regmap_main(["host"]) == 0
    assert stale.read_text() == emit.render_host_module()


def test_host_regmap_matches_the_model(model):
    host = importlib.import_module("host.regmap")
    assert [r.__name__ for r in host.REGISTERS] == [r.name for r in model.registers]
    for cls, reg in zip(host.REGISTERS, model.registers):
        assert cls.OFFSET == reg.offset
        assert [(f.name, f.lsb, f.width, f.sw, f.mask) for f in cls.FIELDS] == [
            (f.name, f.lsb, f.width, f.sw, f.mask) for f in reg.fields]
        assert all(getattr(cls, f.name) is f for f in cls.FIELDS)
    assert {c.name: c.value for c in host.ErrorCode} == {
        m.name: m.value for m in model.field("STATUS", "ERROR_CODE").encode.members}
    assert dict(host.DEFAULT_PARAMETERS) == dict(model.parameters)
    assert host.ID_VALUE == 0x48535331 and (host.VERSION_MAJOR, host.VERSION_MINOR) == (1, 1)
    word = host.STATUS.ERROR_CODE.put(host.ErrorCode.BAD_MODE) | host.STATUS.ERROR.put(1)
    assert word == 0x0704 and host.STATUS.ERROR_CODE.get(word) == 7
    with pytest.raises(ValueError, match="ERROR_CODE is 8 bits: 256 does not fit"):
        host.STATUS.ERROR_CODE.put(256)


def test_host_package_imports_neither_hdl_nor_regmap():
    """The driver runs where only Python (and hss) are installed."""
    for path in sorted((ROOT / "host").glob("*.py")):
        tree = ast.parse(path.read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
        assert not imported & {"hdl", "regmap", "gen", "synth", "systemrdl", "amaranth",
                               "jinja2"}, (path.name, imported)
