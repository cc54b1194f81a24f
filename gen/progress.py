"""Progress of a run: a line per stage, and a heartbeat while a stage is long.

A heartbeat line every ``interval`` seconds names the stage, its time so far and each tool
running now with the last line of its log (Yosys logs every pass it starts, so the user
sees "Executing ABC pass" rather than silence); Python-side work (elaborating a large
design) gets the time alone.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

from synth import tools

__all__ = ["Progress", "log_tail"]


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

    def start(self, stage: str) -> None:
        self.index += 1
        self._stage, self._t = stage, time.perf_counter()
        self._print(f"[{self.index}/{len(self.stages)}] {stage} ...")
        if self.interval > 0:
            self._stop = threading.Event()
            threading.Thread(target=self._beat, args=(stage, self._t, self._stop),
                             daemon=True).start()

    def _beat(self, stage: str, t0: float, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            parts = [f"{what} {_clock(secs)}" + (f": {tail}" if (tail := log_tail(log)) else "")
                     for what, secs, log in tools.running()]
            self._print(f"      ... {stage} {_clock(time.perf_counter() - t0)}"
                        + ("; " + "; ".join(parts) if parts else ""))

    def done(self, detail: str = "") -> None:
        self.close()
        dt = time.perf_counter() - self._t
        self.times[self._stage] = dt
        self._print(f"      {self._stage} done in {dt:.1f} s{': ' + detail if detail else ''}")

    def close(self) -> None:
        """Stop the heartbeat (also on failure)."""
        if self._stop is not None:
            self._stop.set()
            self._stop = None
