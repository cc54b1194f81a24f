"""``python -m bench NAME [options]``; ``python -m bench NAME --help`` lists NAME's options.

Each benchmark prints its table and writes CSV, Markdown and (where a picture helps) a PNG
under ``--out`` (default bench/results). Ratios are measured within one run.
``fuzz`` (``--minutes N --seed S``) is a time-bounded correctness campaign, not a
measurement, so ``all`` leaves it out; it exits 1 when any case failed. ``dse``
(``--spec FILE [--scheduler tcp://host:port] [--workers N] [--fast]``) sweeps a design space
on Dask (bench/dse.py); ``all`` leaves it out too, since its cost is whatever the spec says.
``--jobs`` sets how many designs (or cases) run at a time, by default the cores this process
may use.

One subcommand per benchmark, each with only the options it reads, so that ``--help`` of
one shows what it takes and an option of another is refused by argparse itself.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from synth.tools import cores

from .common import RESULTS, machine

BENCHMARKS = ("tax", "cycles", "flex", "scale", "sim", "tasd", "edp", "fetch", "system")

SUMMARY = {
    "tax": "area/Fmax of HSS, 2:4 and naive G:H vs dense (bench/tax.py)",
    "cycles": "GEMM cycles vs the ideal, K from one group to 4096 (bench/cycles.py)",
    "flex": "HighLight's 12 modes in one build: cycles, area, Fmax (bench/flex.py)",
    "scale": "wall time and peak memory of each generator stage vs array size "
             "(bench/scale.py)",
    "sim": "cycles/s in Amaranth's simulator, Verilator, Icarus (bench/sim.py)",
    "tasd": "TASD on a digits MLP (through the RTL) and MiniLM (bench/tasd.py)",
    "edp": "energy and EDP vs dense; gate-level cross-check (bench/edp.py)",
    "fetch": "rank 1 at the fetch vs in the PE: reads, port, accuracy (bench/fetch.py)",
    "system": "hss_system on MiniLM's layers in Verilator: cycles vs roofline, DRAM bytes "
              "vs minimum, memories (bench/system.py)",
    "fuzz": "constrained-random cosimulation campaign (bench/fuzz.py)",
    "fuzz_system": "constrained-random hss_system builds and layers in Verilator "
                   "(bench/fuzz_system.py)",
    "dse": "design-space exploration on Dask from a TOML spec (bench/dse.py)",
    "all": f"every benchmark but fuzz, fuzz_system and dse: {', '.join(BENCHMARKS)}",
}

#: Every option a benchmark module may read, with the value it has where it is not offered.
DEFAULTS = {"quick": False, "jobs": None, "fmax": False, "minutes": None, "seed": None,
            "spec": None, "scheduler": None, "workers": None, "fast": False,
            "retry_failed": False, "max_side": None}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench",
                                description=__doc__.split("\n\n")[1].replace("``", ""),
                                epilog="python -m bench NAME --help: the options of NAME")
    sub = p.add_subparsers(dest="which", required=True, metavar="NAME",
                           title="benchmarks")
    for name in (*BENCHMARKS, "fuzz", "fuzz_system", "dse", "all"):
        s = sub.add_parser(name, help=SUMMARY[name], description=SUMMARY[name])
        s.set_defaults(**DEFAULTS)
        if name != "dse":
            s.add_argument("--quick", action="store_true",
                           help="a small subset (minutes) that CI runs so the benchmarks "
                                "cannot rot (default: off, the full run)")
        s.add_argument("--out", type=Path, default=RESULTS,
                       help="results folder (default: bench/results of this repository)")
        if name not in ("sim", "scale"):
            s.add_argument("--jobs", type=_positive(int), default=None, metavar="N",
                           help="designs or cases at a time (default: the cores this "
                                "process may use)")
        if name in ("tax", "flex", "all"):
            s.add_argument("--fmax", action="store_true",
                           help="also place and route every design with nextpnr-ecp5, slow "
                                "(default: off)")
        if name == "scale":
            s.add_argument("--max-side", type=_positive(int), default=None, metavar="N",
                           help="largest square array, one of 1, 2, 4, ..., 64 (default 64; "
                                "2 with --quick)")
        if name in ("fuzz", "fuzz_system"):
            s.add_argument("--minutes", type=_positive(float), default=None,
                           help="stop starting cases after this long (default 20; 2 with "
                                "--quick)")
            s.add_argument("--seed", type=_positive(int, zero=True), default=None,
                           help="case i depends only on (seed, i) (default 1)")
        if name == "dse":
            s.add_argument("--spec", type=Path, required=True, metavar="FILE",
                           help="TOML sweep spec, required (see bench/dse_example.toml: its "
                                "keys and their defaults)")
            s.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                           help="submit to this running Dask scheduler (default: a local "
                                "cluster)")
            s.add_argument("--workers", type=_positive(int), default=None, metavar="N",
                           help="local cluster workers, one thread each (default: --jobs)")
            s.add_argument("--fast", action="store_true",
                           help="screening: gen without synthesis, generic area with ABC "
                                "skipped (default: off, gen's full flow)")
            s.add_argument("--retry-failed", action="store_true",
                           help="run again the points whose cached row failed (default: "
                                "off, a failed row is kept)")
    return p


def _positive(kind, zero=False):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError(f"must be {'>= 0' if zero else '> 0'}: {text!r}")
        return value
    return parse


def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:               # argparse would show the usage of all benchmarks, not this one's
        (sub,) = [a for a in parser._actions if a.dest == "which"]
        sub.choices[args.which].error(f"unrecognized arguments: {' '.join(extra)}")
    args.jobs = args.jobs or cores()
    args.command = "python -m bench " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    args.machine = machine()
    chosen = BENCHMARKS if args.which == "all" else (args.which,)
    status = 0
    for name in chosen:
        t0 = time.perf_counter()
        print(f"== bench {name}{' (quick)' if args.quick else ''}", flush=True)
        module = __import__(f"bench.{name}", fromlist=["run"])
        status = max(status, module.run(args) or 0)
        print(f"== bench {name} done in {time.perf_counter() - t0:.0f} s", flush=True)
    return status
