"""Progress of a run: a line per stage, and a heartbeat while a stage is long.

Every ``interval`` seconds a heartbeat names the stage and its time so far on one line,
then each tool running now on a line of its own: the build it works for (the folder under
``synth/``: design, dense twin, decompressor), what it is (``tools.run``'s ``what``), its
time, and what it is doing. For Yosys that is the pass it is in, outermost and innermost
(``SYNTH_LATTICE > ABC9``), followed in its log from the start, because the raw last line
of a Yosys log is mostly debris ("Optimizing lut $abc$190970$...") and one line per tool
keeps parallel syntheses apart; for other tools it is the last line of their log,
shortened. Python-side work (elaborating a large design) gets the stage line alone.
"""
from __future__ import annotations

import re
import threading
import time
from pathlib import Path

from synth import tools

__all__ = ["Progress", "log_tail", "build_of", "YosysPasses"]


def log_tail(path: Path | None, width: int = 72) -> str:
    """The last non-empty line of a log, shortened to ``width`` characters."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4096))
            lines = [l.strip() for l in f.read().decode(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [l for l in lines if l]
    if not lines:
        return ""
    last = lines[-1]
    return last if len(last) <= width else last[:width - 3] + "..."


#: The build folders of ``gen.pipeline`` under ``synth/``, as a heartbeat names them.
BUILDS = {"design": "design", "dense_twin": "dense twin", "decompressor": "decompressor"}


def build_of(log: Path | None) -> str:
    """The build a tool's log belongs to: the folder below the last ``synth`` folder on its
    path, if it is one of ``BUILDS``; else "" (a testbench, a board build)."""
    if log is None:
        return ""
    folders = Path(log).parts[:-1]
    for i in range(len(folders) - 2, -1, -1):
        if folders[i] == "synth":
            return BUILDS.get(folders[i + 1], "")
    return ""


# "2.25.3. Executing OPT_MUXTREE pass (...)", "3.3.15.5. Executing ABC9.",
# "1. Executing Verilog-2005 frontend: design.v", "3.8. Printing statistics."
_HEADER = re.compile(r"(\d+(?:\.\d+)*)\. (?:Executing (\S+(?: frontend)?)|(Printing statistics))")


class YosysPasses:
    """The pass a running Yosys is in, read from its log as it grows.

    Yosys numbers every pass it starts by its nesting (``3.3.15.5.`` is inside ``3.3.15.``,
    inside ``3.3.``, inside ``3.``); ``feed`` reads what was appended since the last call and
    keeps the open pass of every level. A log that shrank was started again: read anew."""

    def __init__(self, path: Path):
        self.path, self.offset, self.rest, self.stack = Path(path), 0, b"", []

    def feed(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(0, 2)
                if f.tell() < self.offset:
                    self.offset, self.rest, self.stack = 0, b"", []
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return
        self.offset += len(data)
        *lines, self.rest = (self.rest + data).split(b"\n")
        for raw in lines:
            if not raw[:1].isdigit():
                continue
            m = _HEADER.match(raw.decode(errors="replace"))
            if m:
                name = "STAT" if m.group(3) else m.group(2).rstrip(".")
                del self.stack[m.group(1).count("."):]
                self.stack.append(name)

    def current(self) -> str:
        """``OUTER > INNER`` (one name when they are the same), or "" before the first pass."""
        if not self.stack:
            return ""
        outer, inner = self.stack[0], self.stack[-1]
        return outer if outer == inner else f"{outer} > {inner}"


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


class Progress:
    """``start(stage)`` / ``done(detail)`` print one line each; wall times go to ``times``."""

    def __init__(self, stages, interval: float = 30.0, out=None):
        self.stages, self.times, self.index = stages, {}, 0
        self.interval = interval
        self._print = out or (lambda line: print(line, flush=True))
        self._stage, self._t, self._stop = None, None, None
        self._lock = threading.Lock()       # a heartbeat's lines stay together
        self._passes: dict[Path, YosysPasses] = {}

    def start(self, stage: str) -> None:
        self.index += 1
        self._stage, self._t = stage, time.perf_counter()
        self._print(f"[{self.index}/{len(self.stages)}] {stage} ...")
        if self.interval > 0:
            self._stop = threading.Event()
            threading.Thread(target=self._beat, args=(stage, self._t, self._stop),
                             daemon=True).start()

    def heartbeat(self, stage: str, seconds: float) -> list[str]:
        """The lines of one heartbeat: the stage, then one per running tool (by build)."""
        lines = [f"      ... {stage} {_clock(seconds)}"]
        now = tools.running()
        passes = {log: self._passes.get(log) or YosysPasses(log)
                  for _, _, log in now if log is not None}
        self._passes = passes               # forget the logs of tools that ended
        order = [*BUILDS.values(), ""]
        for what, secs, log in sorted(now, key=lambda r: (order.index(build_of(r[2])),
                                                          r[0], -r[1])):
            build = build_of(log)
            line = f"          {build + ': ' if build else ''}{what} {_clock(secs)}"
            if log is not None:
                passes[log].feed()
                if passes[log].current():
                    line += f", in {passes[log].current()}"
                elif tail := log_tail(log):
                    line += f": {tail}"
            lines.append(line)
        return lines

    def _beat(self, stage: str, t0: float, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            with self._lock:
                if stop.is_set():
                    return
                for line in self.heartbeat(stage, time.perf_counter() - t0):
                    self._print(line)

    def done(self, detail: str = "") -> None:
        self.close()
        dt = time.perf_counter() - self._t
        self.times[self._stage] = dt
        with self._lock:
            self._print(f"      {self._stage} done in {dt:.1f} s"
                        f"{': ' + detail if detail else ''}")

    def close(self) -> None:
        """Stop the heartbeat (also on failure)."""
        if self._stop is not None:
            self._stop.set()
            self._stop = None
