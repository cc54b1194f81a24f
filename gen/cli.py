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
import hashlib
import json
import os
import signal
import sys
import threading
import warnings
from pathlib import Path

import hss
import synth
from hdl import AcceleratorConfig
from synth import tools

from .inputs import InputError, file_sha256, load_matrix, prepare_weights, random_operands
from .outdir import OutputBusy, OutputFolder, OutputLock
from .pipeline import ToolMissing, check_tools, run
from .simulate import SimError

__all__ = ["main", "build_parser"]

SIMULATORS = ("verilator", "icarus", "none")
TARGETS = ("generic", "ecp5", "ice40")


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
                        "rank0 2:4); a single rank like 2:4 or 8:8 (dense) works too")
    p.add_argument("--rows", type=int, default=4, help="PE rows (weight rows per tile), e.g. 4")
    p.add_argument("--cols", type=int, default=4,
                   help="PE columns (activation columns per tile), e.g. 4")
    p.add_argument("--width", type=int, default=8, help="value width in bits, e.g. 8")
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
    p.add_argument("--weights", metavar="W.npy",
                   help="your integer weights, M x K (.npy); needs --activations")
    p.add_argument("--activations", metavar="A.npy",
                   help="your integer activations, K x N (.npy); needs --weights")
    p.add_argument("--prune", action="store_true",
                   help="project --weights onto the pattern instead of refusing them")
    p.add_argument("--sim", choices=SIMULATORS, default="verilator",
                   help="simulator of the testbench (default verilator)")
    p.add_argument("--no-synth", dest="synth", action="store_false",
                   help="skip Yosys synthesis and the area report")
    p.add_argument("--target", default="generic,ecp5", metavar="LIST",
                   help="synthesis targets among generic,ecp5,ice40 (default generic,ecp5)")
    p.add_argument("--fmax", action="store_true",
                   help="place and route with nextpnr-ecp5 for Fmax (slow: minutes for 4x4)")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.add_argument("--stalls", default=None, metavar="SEED", type=_seed,
                   help="random back-pressure on every stream in the testbench, from this "
                        "seed (0 to 2**32-1); `make sim-verilator STALLS=SEED|off` in tb/ "
                        "chooses again without regenerating")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help=f"tools run in parallel (default: the cores this process may use, "
                        f"{_cores()} here)")
    p.add_argument("--synth-timeout", type=float, default=3600, metavar="SECONDS",
                   help="time limit of each synthesis run (default 3600); past it the run "
                        "fails with exit 1")
    p.add_argument("--pnr-timeout", type=float, default=1800, metavar="SECONDS",
                   help="time limit of place and route with --fmax (default 1800)")
    p.add_argument("--sim-timeout", type=float, default=3600, metavar="SECONDS",
                   help="time limit of the simulator's build and of its run (default 3600)")
    p.add_argument("--progress-interval", type=float, default=30, metavar="SECONDS",
                   help="seconds between heartbeat lines of a long stage (default 30; 0: none)")
    return p


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _seed(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not 0 <= value < 1 << 32:
        raise argparse.ArgumentTypeError(f"must be between 0 and 2**32-1, got {value}")
    return value


#: Builds above this estimate are refused before elaboration: about 1.6x a 64x64 array of
#: 8-multiplier int8 PEs (37 M NAND2-eq), the largest array the project targets. Elaboration
#: and synthesis time grow linearly with it (bench/results/scale.md: ~15 min at 2.3 M).
MAX_NAND2_EQ = 60_000_000
#: One weights plus one activations beat above this many bits is refused: ports this wide
#: make Amaranth, Verilator and the hex vectors crawl (a 64x64 4:6,2:4 int8 array: 30 kbit).
MAX_BEAT_BITS = 1 << 20
#: Test vectors above this many bytes (hex text) are refused: they are read into memory by
#: the simulator, and simulation time grows with them.
MAX_VECTOR_BYTES = 1 << 30


def _check_size(config: AcceleratorConfig, m: int, k: int, n: int) -> None:
    """Refuse, from a cheap estimate, what would not finish in reasonable time or memory."""
    what = f"--ranks {config.pattern} on {config.rows}x{config.cols} PEs, int{config.width}"
    if config.estimated_nand2_eq > MAX_NAND2_EQ:
        raise InputError(f"{what} is too large to build: an estimated "
                         f"{config.estimated_nand2_eq:,} NAND2-eq ({config.multipliers:,} "
                         f"multipliers) exceeds the limit of {MAX_NAND2_EQ:,}")
    if config.beat_bits > MAX_BEAT_BITS:
        raise InputError(f"{what} is too large to build: its stream beats are "
                         f"{config.beat_bits:,} bits wide, the limit is {MAX_BEAT_BITS:,}")
    group = config.pattern.group_size
    steps = -(-m // config.rows) * -(-n // config.cols) * -(-k // group)
    vector_bytes = steps * (config.beat_bits // 4 + 2)
    if vector_bytes > MAX_VECTOR_BYTES:
        raise InputError(f"GEMM {m}x{k}x{n} on {what} needs {steps:,} steps, about "
                         f"{vector_bytes / 2**20:,.0f} MiB of test vectors; the limit is "
                         f"{MAX_VECTOR_BYTES // 2**20:,} MiB")


def _positive(name, value):
    if value is not None and value < 1:
        raise InputError(f"{name} must be a positive integer, got {value}")


def _parse_shape(text: str) -> tuple[int, int, int]:
    try:
        m, k, n = (int(x) for x in text.split(","))
    except ValueError:
        raise InputError(f"--shape must be M,K,N with three integers, got {text!r}") from None
    if min(m, k, n) < 1:
        raise InputError(f"--shape values must be positive, got {text!r}")
    return m, k, n


def _config(*args) -> AcceleratorConfig:
    """The config's own eager checks, reported as bad input."""
    try:
        return AcceleratorConfig(*args)
    except (TypeError, ValueError) as e:
        raise InputError(str(e)) from None


class Plan:
    """Everything a run needs, checked before anything is written."""

    def __init__(self, args):
        pattern = hss.Pattern.parse(args.ranks)
        for name in ("rows", "cols", "width", "acc_width", "max_k"):
            _positive(f"--{name.replace('_', '-')}", getattr(args, name))
        targets = [t.strip() for t in args.target.split(",") if t.strip()]
        unknown = sorted(set(targets) - set(TARGETS))
        if unknown or not targets:
            raise InputError(f"--target {args.target!r}: choose among {', '.join(TARGETS)}")
        if bool(args.weights) != bool(args.activations):
            raise InputError("--weights and --activations go together: give both or neither")
        if args.prune and not args.weights:
            raise InputError("--prune applies to --weights; random weights already conform")
        if args.weights and args.shape:
            raise InputError("--shape is for random tensors; the shape comes from --weights")

        if args.jobs is not None and args.jobs < 1:
            raise InputError(f"--jobs must be a positive integer, got {args.jobs}")
        for name in ("synth_timeout", "pnr_timeout", "sim_timeout"):
            if getattr(args, name) <= 0:
                raise InputError(f"--{name.replace('_', '-')} must be positive seconds, "
                                 f"got {getattr(args, name):g}")
        if args.stalls is not None and args.sim == "none":
            raise InputError("--stalls applies to the testbench's simulation; --sim none "
                             "runs none")
        base = _config(pattern, args.rows, args.cols, args.width, args.signed)
        _check_size(base, 1, 1, 1)
        if args.weights:
            W = load_matrix(args.weights, "W")
            A = load_matrix(args.activations, "A")
            if A.shape[0] != W.shape[1]:
                raise InputError(f"shapes do not chain: W is {W.shape[0]}x{W.shape[1]} but "
                                 f"A is {A.shape[0]}x{A.shape[1]} (A needs {W.shape[1]} rows)")
            hss.check_range(A, base.width, base.signed, "A")
            W = prepare_weights(W, base, args.prune)
        else:
            m, k, n = (_parse_shape(args.shape) if args.shape else
                       (2 * args.rows, 8 * pattern.group_size, 2 * args.cols))
            _check_size(base, m, k, n)
            W, A = random_operands(base, m, k, n, args.seed)
        k = W.shape[1]
        padded_k = -(-k // pattern.group_size) * pattern.group_size
        max_k = args.max_k if args.max_k is not None else max(4096, padded_k)
        if padded_k > max_k:
            raise InputError(f"K={k} (padded to {padded_k}) exceeds --max-k {max_k}")
        self.config = _config(pattern, args.rows, args.cols, args.width, args.signed, max_k,
                              args.acc_width)
        _check_size(self.config, W.shape[0], padded_k, A.shape[1])
        self.W, self.A, self.k, self.padded_k = W, A, k, padded_k
        self.targets = targets
        self.jobs = args.jobs or _cores()
        self.out = Path(args.out) if args.out else Path("build") / self.default_name(args)
        if self.out.exists() and not args.force:
            raise InputError(f"output folder {self.out} exists: pass --force to replace it")
        if self.out.exists() and not self.out.is_dir():
            raise InputError(f"output path {self.out} exists and is not a folder")
        self.args = args

    def default_name(self, args) -> str:
        """``build/<config name>`` for a default run; a run whose options change what is
        written gets a suffix hashed from them, so that two such runs never share a folder."""
        options = {"acc_width": args.acc_width, "max_k": args.max_k, "shape": args.shape,
                   "seed": args.seed or None, "stalls": args.stalls,
                   "weights": args.weights and file_sha256(args.weights),
                   "activations": args.activations and file_sha256(args.activations),
                   "prune": args.prune or None,
                   "sim": None if args.sim == "verilator" else args.sim,
                   "synth": None if args.synth else False,
                   "targets": None if self.targets == ["generic", "ecp5"] else self.targets,
                   "fmax": args.fmax or None}
        options = {k: v for k, v in options.items() if v is not None}
        if not options:
            return self.config.name
        digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()
        return f"{self.config.name}-{digest[:8]}"


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


def main(argv=None) -> int:
    tools.reset_stop()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", hss.PaddingWarning)
            plan = Plan(build_parser().parse_args(argv))
        check_tools(plan)
    except (InputError, hss.HSSError, ToolMissing) as e:
        return _error(str(e), 2)
    lock, folder = OutputLock(plan.out), OutputFolder(plan.out)
    handlers = _SignalHandlers()
    with handlers:
        try:
            lock.acquire()
        except OutputBusy as e:
            return _error(str(e), 2)
        except OSError as e:
            return _error(f"cannot write next to {plan.out}: {e.strerror or e}", 1)
        try:
            status = run(plan, folder.create())
            folder.promote()
        except Interrupted as e:
            handlers.ignore()
            warnings.simplefilter("ignore")     # half-built Amaranth objects warn when freed
            tools.stop_all()
            folder.discard()
            name = signal.Signals(e.signum).name
            print(f"gen: interrupted by {name}: child tools stopped, nothing written to "
                  f"{plan.out}", file=sys.stderr, flush=True)
            return 128 + e.signum
        except ToolMissing as e:
            folder.discard()
            return _error(str(e), 2)
        except (SimError, synth.SynthError, tools.ToolTimeout) as e:
            work = folder.work
            failed = folder.keep_failed()
            return _error(str(e).replace(str(work), str(failed)) + f" ({plan.out} untouched)", 1)
        except OSError as e:
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
