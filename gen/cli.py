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

import argparse
import signal
import sys
import threading
import warnings

import hss
import synth
from synth import tools
from synth.tools import cores

from .board import BOARDS, BoardMisfit, check_board
from .inputs import InputError
from .outdir import OutputBusy, OutputFolder, OutputLock
from .pipeline import ToolMissing, check_tools, run
from .plan import Plan
from .simulate import SimError

__all__ = ["main", "build_parser"]

SIMULATORS = ("verilator", "icarus", "none")


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad input on one line with exit code 2."""

    def error(self, message):
        raise InputError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m gen",
        description="Generate, verify and synthesize an HSS sparse DNN accelerator.",
        epilog="example: python -m gen --ranks 4:6,2:4 --rows 4 --cols 4 --width 8",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ranks", required=True, metavar="G:H,...",
                   help="HSS pattern, outermost rank first, e.g. 4:6,2:4 (rank1 4:6 over "
                        "rank0 2:4); a single rank like 2:4 or 8:8 (dense) works too. A mode "
                        "set lists each rank's alternatives with |, e.g. "
                        "'4:4|4:5|4:6|4:7,4:4|2:4|1:4': one flexible build runs every "
                        "combination (mode), chosen per tile")
    p.add_argument("--macs", type=int, default=None, metavar="N",
                   help="multipliers per PE of a flexible build (default: the smallest that "
                        "keeps every mode's multipliers busy, at or above the geometric middle "
                        "of the modes' values per group: 8 for HighLight's set); a single "
                        "pattern uses prod(G)")
    p.add_argument("--rows", type=int, default=4, help="PE rows (weight rows per tile), e.g. 4")
    p.add_argument("--cols", type=int, default=4,
                   help="PE columns (activation columns per tile), e.g. 4")
    p.add_argument("--width", type=int, default=8, help="value width in bits, e.g. 8")
    p.add_argument("--tile-rows", type=int, default=None, metavar="N",
                   help="rows of Z per tiles beat, dividing --rows (default: the whole tile "
                        "in one beat where it fits Amaranth's 65,536-bit signal limit, else "
                        "the most rows that fit)")
    sign = p.add_mutually_exclusive_group()
    sign.add_argument("--signed", dest="signed", action="store_true", default=True,
                      help="two's complement values (default)")
    sign.add_argument("--unsigned", dest="signed", action="store_false",
                      help="unsigned values")
    p.add_argument("--acc-width", type=int, default=None, metavar="BITS",
                   help="accumulator bits; default: the narrowest that cannot overflow for "
                        "K up to --max-k, e.g. 26 for 4:6,2:4 int8 K=4096")
    p.add_argument("--max-k", type=int, default=None, metavar="K",
                   help="largest K the accumulator is sized for (default: 4096, or K of the "
                        "GEMM if larger), e.g. 4096")
    p.add_argument("--shape", default=None, metavar="M,K,N",
                   help="random GEMM shape when no tensors are given (default: 2*rows, "
                        "8*group size, 2*cols), e.g. 10,100,7")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: build/<name>, e.g. build/hss_4-6_2-4_4x4_s8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random tensors, e.g. 1")
    p.add_argument("--weights", metavar="W.npy", action="append",
                   help="your integer weights, M x K (.npy); needs --activations; repeat the "
                        "pair for several layers, run back to back")
    p.add_argument("--activations", metavar="A.npy", action="append",
                   help="your integer activations, K x N (.npy); needs --weights")
    p.add_argument("--mode", metavar="G:H,...", action="append",
                   help="the mode (a pattern of the set) a layer runs in: once for all "
                        "layers or once per layer (default: the sparsest mode the weights "
                        "conform to); without tensors, the modes of the random layers "
                        "(default: every mode)")
    p.add_argument("--prune", action="store_true",
                   help="project --weights onto the pattern (the --mode of a set) instead of "
                        "refusing weights that break it")
    p.add_argument("--tasd", metavar="P+P...|auto", action="append",
                   help="run each layer as a TASD decomposition: W ~ W_1 + W_2 + ..., term t "
                        "conforming to mode P_t of the build, each term a segment of every "
                        "tile into the same accumulators (the greedy decomposition of "
                        "hss.tasd; one term is plain pruning). Once for all layers or once "
                        "per layer, e.g. '4:4,2:4+4:4,1:4'; 'auto': per layer the decomposition "
                        "with the fewest cycles on this build whose error is within "
                        "--max-error. Without --weights: one random dense layer per --tasd")
    p.add_argument("--max-error", type=float, default=None, metavar="E",
                   help="--tasd auto: largest relative Frobenius error ||W - sum W_t|| / ||W|| "
                        "(default 0.01, i.e. 1 %%)")
    p.add_argument("--tasd-terms", type=int, default=None, metavar="N",
                   help="--tasd auto: most terms tried (default 2, at most 3)")
    p.add_argument("--energy-table", default=None, metavar="FILE.json",
                   help="energy per action for the report's energy and EDP (default: "
                        "hss/energy_45nm.json: Horowitz's 45 nm multiply and add, Aladdin's "
                        "register and mux bits; hss/energy_aladdin_40nm.json takes every "
                        "component from Aladdin)")
    p.add_argument("--sim", choices=SIMULATORS, default="verilator",
                   help="simulator of the testbench (default verilator)")
    p.add_argument("--no-synth", dest="synth", action="store_false",
                   help="skip Yosys synthesis and the area report")
    p.add_argument("--target", default="generic,ecp5", metavar="LIST",
                   help="synthesis targets among generic,ecp5,ice40 (default generic,ecp5)")
    p.add_argument("--fmax", action="store_true",
                   help="place and route with nextpnr-ecp5 for Fmax (slow: minutes for 4x4)")
    p.add_argument("--board", choices=sorted(BOARDS), default=None, metavar="NAME",
                   help=f"also build an on-board self-test bitstream of the run's GEMM into "
                        f"board/ (YoWASP tools; slow: place and route), for one of "
                        f"{', '.join(sorted(BOARDS))}; a design too big for the board is "
                        f"refused")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.add_argument("--stalls", default=None, metavar="SEED", type=_seed,
                   help="random back-pressure on every stream in the testbench, from this "
                        "seed (0 to 2**32-1); `make sim-verilator STALLS=SEED|off` in tb/ "
                        "chooses again without regenerating")
    p.add_argument("--trace", action="store_true",
                   help="dump every signal of the testbench's simulation to tb/waves.vcd "
                        "(slower: for debugging; `make sim-verilator TRACE=1` in tb/ does the "
                        "same without regenerating)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help=f"tools run in parallel (default: the cores this process may use, "
                        f"{cores()} here)")
    p.add_argument("--synth-timeout", type=float, default=3600, metavar="SECONDS",
                   help="time limit of each synthesis run (default 3600); past it the run "
                        "fails with exit 1")
    p.add_argument("--pnr-timeout", type=float, default=1800, metavar="SECONDS",
                   help="time limit of place and route with --fmax (default 1800)")
    p.add_argument("--sim-timeout", type=float, default=3600, metavar="SECONDS",
                   help="time limit of the simulator's build and of its run (default 3600)")
    p.add_argument("--progress-interval", type=float, default=30, metavar="SECONDS",
                   help="seconds between heartbeat lines of a long stage (default 30; 0: none)")
    p.add_argument("--synth-cache", default=None, metavar="DIR",
                   help="reuse synthesis results stored in DIR, keyed by the Verilog, the flow "
                        "and its options, and store new ones there (runs may share DIR: a "
                        "sweep synthesizes a dense twin once for all its designs)")
    return p


def _seed(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not 0 <= value < 1 << 32:
        raise argparse.ArgumentTypeError(f"must be between 0 and 2**32-1, got {value}")
    return value


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
    tools.reset_stop()
    handlers = _SignalHandlers()
    with handlers:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", hss.PaddingWarning)
                args = build_parser().parse_args(argv)
                if args.trace and args.sim == "none":
                    raise InputError("--trace dumps the testbench's simulation; --sim none "
                                     "runs none")
                plan = Plan(args)
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
        except (ToolMissing, BoardMisfit) as e:   # BoardMisfit: found after synthesis
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
    print(f"{'PASS' if status == 0 else 'FAIL'}: results in {plan.out}", flush=True)
    return status
