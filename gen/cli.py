"""``python -m gen``: build the HSS accelerator for a pattern and judge it.

Stages: generate (RTL + manifest), testbench (golden vectors), simulate (Verilator or
Icarus), synthesize (Yosys, the design and its dense twin), report. Everything is built in
a temporary folder next to ``--out`` and moved into place at the end, so bad input never
leaves a half-written folder. Exit codes: 0 testbench passed, 1 testbench or tool failed
(the folder is kept with its logs), 2 bad input.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import hss
from hdl import AcceleratorConfig

from .inputs import InputError, load_matrix, prepare_weights, random_operands
from .pipeline import ToolMissing, check_tools, run

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
    return p


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

        base = _config(pattern, args.rows, args.cols, args.width, args.signed)
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
            W, A = random_operands(base, m, k, n, args.seed)
        k = W.shape[1]
        padded_k = -(-k // pattern.group_size) * pattern.group_size
        max_k = args.max_k if args.max_k is not None else max(4096, padded_k)
        if padded_k > max_k:
            raise InputError(f"K={k} (padded to {padded_k}) exceeds --max-k {max_k}")
        self.config = _config(pattern, args.rows, args.cols, args.width, args.signed, max_k,
                              args.acc_width)
        self.W, self.A, self.k, self.padded_k = W, A, k, padded_k
        self.targets = targets
        self.out = Path(args.out) if args.out else Path("build") / self.config.name
        if self.out.exists() and not args.force:
            raise InputError(f"output folder {self.out} exists: pass --force to replace it")
        if self.out.exists() and not self.out.is_dir():
            raise InputError(f"output path {self.out} exists and is not a folder")
        self.args = args


class Progress:
    """One line per stage with its wall time (stdout), and the totals for the report."""

    def __init__(self, stages):
        self.stages, self.times, self._t = stages, {}, None
        self.index = 0

    def start(self, stage):
        self.index += 1
        self._t = time.perf_counter()
        print(f"[{self.index}/{len(self.stages)}] {stage} ...", flush=True)
        self._stage = stage

    def done(self, detail=""):
        dt = time.perf_counter() - self._t
        self.times[self._stage] = dt
        print(f"      {self._stage} done in {dt:.1f} s{': ' + detail if detail else ''}",
              flush=True)


def main(argv=None) -> int:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", hss.PaddingWarning)
            plan = Plan(build_parser().parse_args(argv))
        check_tools(plan)
    except (InputError, hss.HSSError, ToolMissing) as e:
        print(f"gen: error: {e}", file=sys.stderr)
        return 2
    plan.out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{plan.out.name}.", dir=plan.out.parent))
    try:
        status = run(plan, work)
    except ToolMissing as e:
        shutil.rmtree(work, ignore_errors=True)
        print(f"gen: error: {e}", file=sys.stderr)
        return 2
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if plan.out.exists():
        shutil.rmtree(plan.out)
    work.rename(plan.out)
    print(f"{'PASS' if status == 0 else 'FAIL'}: results in {plan.out}")
    return status
