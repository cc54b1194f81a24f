"""``python -m gen``: build the HSS accelerator for a pattern and judge it.

Stages: generate (RTL + manifest), testbench (golden vectors), simulate (Verilator or
Icarus), synthesize (Yosys, the design and its dense twin), report. Everything is built in
a hidden folder next to ``--out`` that becomes ``--out`` only when the run is done
(``gen.outdir``), so nothing half-written is ever left there.

Exit codes: 0 the testbench passed; 1 the testbench failed (``--out`` holds the results
and logs), or a tool failed, timed out or could not write (``--out`` untouched; the build
is kept as ``<out>.failed`` for its logs); 2 bad input, a missing tool or a busy ``--out``
(nothing written); 130/143 interrupted by SIGINT/SIGTERM (child tools ended, nothing
written).
"""
from __future__ import annotations

import shlex
import signal
import sys
import threading
import warnings

import hss
import synth
from synth import tools

from .board import BoardMisfit, check_board
from .fusesoc import core_name
from .inputs import InputError
from .options import Options, build_parser
from .outdir import OutputBusy, OutputFolder, OutputLock
from .pipeline import ToolMissing, check_tools, run
from .plan import Plan
from .simulate import SimError

__all__ = ["main", "execute", "build_parser"]

class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived (a BaseException, so no ``except Exception`` eats it)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum, frame):
    tools.stop_all()            # first end the tools, so that worker threads return at once
    raise Interrupted(signum)


class _SignalHandlers:
    """SIGINT/SIGTERM stop the tools and raise ``Interrupted`` (main thread only)."""

    def __enter__(self):
        self._old = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, _on_signal)

    def ignore(self):
        for sig in self._old:
            signal.signal(sig, signal.SIG_IGN)

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _error(message: str, code: int) -> int:
    print(f"gen: error: {message}", file=sys.stderr, flush=True)
    return code


def _interrupted(signum: int, out) -> int:
    print(f"gen: interrupted by {signal.Signals(signum).name}: child tools stopped, nothing "
          f"written to {out}", file=sys.stderr, flush=True)
    return 128 + signum


def main(argv=None) -> int:
    """``python -m gen ARGV``: the exit code."""
    return execute(argv=sys.argv[1:] if argv is None else argv)


def execute(options: Options | None = None, *, argv=None) -> int:
    """Run ``options`` (or the options of the command line ``argv``): the exit code. Bad
    options, like every bad input, are one line on stderr and exit code 2."""
    tools.reset_stop()
    handlers = _SignalHandlers()
    with handlers:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", hss.PaddingWarning)
                if options is None:
                    options = Options.from_argv(argv)
                plan = Plan(options)
            check_tools(plan)
            check_board(plan)
        except (InputError, hss.HSSError, ToolMissing) as e:
            return _error(str(e), 2)
        except Interrupted as e:                # still checking the input: nothing written
            handlers.ignore()
            return _interrupted(e.signum, "the output folder")
        lock, folder = OutputLock(plan.out), OutputFolder(plan.out)
        try:
            lock.acquire()
            status = run(plan, folder.create())
            folder.promote()
        except OutputBusy as e:
            return _error(str(e), 2)
        except Interrupted as e:
            handlers.ignore()
            warnings.simplefilter("ignore")     # half-built Amaranth objects warn when freed
            tools.stop_all()
            folder.discard()
            return _interrupted(e.signum, plan.out)
        except (ToolMissing, BoardMisfit, InputError) as e:
            # BoardMisfit: found after synthesis; InputError: layers the system testbench
            # cannot run, found when it records them
            folder.discard()
            return _error(str(e), 2)
        except (SimError, synth.SynthError, tools.ToolTimeout) as e:
            work = folder.work
            failed = folder.keep_failed()
            return _error(str(e).replace(str(work), str(failed)) + f" ({plan.out} untouched)", 1)
        except OSError as e:                    # no lock, no work folder, or a full disk
            folder.discard()
            where = f" ({e.filename})" if getattr(e, "filename", None) else ""
            return _error(f"cannot write the output{where}: {e.strerror or e}; "
                          f"{plan.out} untouched", 1)
        except BaseException:
            folder.discard()
            raise
        finally:
            lock.release()
    for line in _pointers(plan):
        print(line)
    print(f"{_verdict(plan, status)}: results in {plan.out}", flush=True)
    return status


def _verdict(plan, status: int) -> str:
    """The run's last line: what was done, not a PASS for a testbench that never ran."""
    if plan.options.sim == "none":
        return "generated (not simulated)"
    return "PASS" if status == 0 else "FAIL"


def _pointers(plan) -> list[str]:
    """Where the run's results are: the report, the testbench, the FuseSoC core."""
    name = plan.default_name()
    tb = plan.out / "tb" / ("system" if plan.testbench == "system" else "")
    return [f"  report: {plan.out / 'report.md'} (report.json for machines)",
            f"  testbench: {tb} (make -C {shlex.quote(str(tb))} sim-verilator, or sim-icarus)",
            f"  FuseSoC core: {core_name(name)} ({plan.out / (name + '.core')})"]
