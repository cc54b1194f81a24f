"""The output folder of a run, written as a transaction.

A run builds in a hidden work folder next to ``--out`` and only a finished run becomes
``--out``; so an error, a tool failure or an interrupt never leaves a half-written output,
and never touches what the user already had there:

- ``OutputLock``: one run per output folder. A second run into the same ``--out`` is refused
  at once (``flock`` on a lock file beside it, removed by the winner when it ends).
- ``OutputFolder.promote()``: the finished work folder replaces ``--out`` by two renames with
  SIGINT/SIGTERM held back, so an interrupt lands before or after, never in between.
- ``OutputFolder.keep_failed()``: a run whose tool failed keeps its work folder as
  ``<out>.failed`` (the logs are what the user needs), and ``--out`` stays as it was.
- ``OutputFolder.discard()``: everything this run wrote is removed (interrupts, bad input).
"""
from __future__ import annotations

import errno
import fcntl
import os
import shutil
import signal
import tempfile
from pathlib import Path

__all__ = ["OutputBusy", "OutputLock", "OutputFolder"]


class OutputBusy(RuntimeError):
    """Another run is writing the same output folder."""


class OutputLock:
    """An exclusive, non-blocking lock on ``<parent>/.<name>.lock``."""

    def __init__(self, out: Path):
        self.path = out.parent / f".{out.name}.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise OutputBusy(self._holder()) from None
                raise
            # the holder before us may have removed the file between our open and our lock:
            # then we hold a lock nobody else sees, and must take the new file instead
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def _holder(self) -> str:
        out = self.path.parent / self.path.name[1:-len(".lock")]
        try:
            pid = self.path.read_text().strip()
        except OSError:
            pid = ""
        return f"another run{f' (pid {pid})' if pid else ''} is writing {out}; wait for it " \
               f"or choose another --out"

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None


class _SignalsHeld:
    """Hold SIGINT and SIGTERM back (they are delivered when the block ends)."""
    _SIGNALS = {signal.SIGINT, signal.SIGTERM}

    def __enter__(self):
        self._old = signal.pthread_sigmask(signal.SIG_BLOCK, self._SIGNALS)

    def __exit__(self, *exc):
        signal.pthread_sigmask(signal.SIG_SETMASK, self._old)


class OutputFolder:
    """``work`` (hidden, next to ``out``) becomes ``out`` only when the run is done."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.work: Path | None = None

    def create(self) -> Path:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", dir=self.out.parent))
        umask = os.umask(0)
        os.umask(umask)
        self.work.chmod(0o777 & ~umask)     # mkdtemp's 0700 is for secrets, not for results
        return self.work

    @property
    def failed(self) -> Path:
        return self.out.parent / f"{self.out.name}.failed"

    def promote(self) -> None:
        """Replace ``out`` with the work folder; the old ``out`` goes only once the new one
        is in place."""
        old = self.out.parent / f".{self.out.name}.old.{os.getpid()}"
        with _SignalsHeld():
            if self.out.exists():
                self.out.rename(old)
            self.work.rename(self.out)
            self.work = None
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(self.failed, ignore_errors=True)   # an earlier failure is stale now

    def keep_failed(self) -> Path:
        """Keep the work folder as ``<out>.failed`` for its logs; ``out`` is untouched."""
        with _SignalsHeld():
            shutil.rmtree(self.failed, ignore_errors=True)
            self.work.rename(self.failed)
            self.work = None
        return self.failed

    def discard(self) -> None:
        if self.work is not None:
            shutil.rmtree(self.work, ignore_errors=True)
            self.work = None
