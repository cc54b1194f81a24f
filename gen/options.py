"""The options of a ``python -m gen`` run: one typed, frozen object, the only configuration.

``Options`` holds every option of the command line as a typed field; its metadata is the
command line's: the flag, the help text (with its default), the metavar. So an option is
written once, here, and from that one place follow

- the argument parser (``build_parser``), and ``Options.from_argv``;
- ``Options.to_argv()``, the equivalent command (non-default options, in field order);
- the JSON round trip ``to_json`` / ``from_json`` (``config.json`` holds it);
- the output folder's name hash (``name_options``: every option that changes what is
  written, unless it is part of the config's name already);
- the parameters the FuseSoC generator takes (``DESIGN`` and ``WORKLOAD`` fields).

Each field belongs to a *group*: ``design`` (what hardware is built), ``workload`` (the
GEMMs it is verified on), ``flow`` (which stages run and how they report), ``run`` (how this
one run behaves: folder, parallelism, time limits; nothing it writes depends on them).
Checks that need no file are made when the object is made, with the one-line messages of
bad input (``InputError``); the files (tensors, energy tables) are read by ``gen.plan``.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import shlex
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any

from hdl.sysconfig import DMA_WIDTHS, FETCH_WAYS
from synth.tools import cores

from .board import BOARDS
from .inputs import InputError, file_sha256

__all__ = ["Options", "build_parser", "SIMULATORS", "TESTBENCHES", "TARGETS",
           "DEFAULT_TARGETS", "GROUPS", "DEFAULT_MAX_ERROR", "MAX_TASD_TERMS"]

SIMULATORS = ("verilator", "icarus", "none")
#: ``--testbench``: the engine's own (tb/), the whole system's (tb/system/), or both
TESTBENCHES = ("engine", "system", "both")
TARGETS = ("generic", "ecp5", "ice40")
DEFAULT_TARGETS = ("generic", "ecp5")
GROUPS = ("design", "workload", "flow", "run")
#: ``--tasd auto``: the relative Frobenius error budget, and the most terms it tries. Four
#: terms of a 12-mode set are 20,736 candidates: more than a run should decompose.
DEFAULT_MAX_ERROR = 0.01
MAX_TASD_TERMS = 3
#: Options that name the build already (``AcceleratorConfig.name``): not in the name hash.
_IN_CONFIG_NAME = ("ranks", "macs", "rows", "cols", "width", "signed")


def _option(default, help, *, group, metavar=None, flag=None, off_flag=None, off_help=None,
            choices=None):
    """A field of ``Options`` with its command line: ``flag`` (default ``--<name>``; a bool
    that defaults to True has one only when given), ``off_flag`` and ``off_help`` (the flag
    that sets a bool to False), ``help`` (a str, or a function giving it, for defaults known
    only at run time)."""
    meta = dict(help=help, group=group, metavar=metavar, flag=flag, off_flag=off_flag,
                off_help=off_help, choices=choices)
    return field(default=default, metadata=meta)


def _positive(name: str, value) -> None:
    if value is not None and value < 1:
        raise InputError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")


def _parse_shape(text: str) -> tuple[int, int, int]:
    try:
        m, k, n = (int(x) for x in text.split(","))
    except ValueError:
        raise InputError(f"--shape must be M,K,N with three integers, got {text!r}") from None
    if min(m, k, n) < 1:
        raise InputError(f"--shape values must be positive, got {text!r}")
    return m, k, n


def _parse_targets(text: str) -> tuple[str, ...]:
    targets = tuple(t.strip() for t in text.split(",") if t.strip())
    if not targets or set(targets) - set(TARGETS):
        raise InputError(f"--target {text!r}: choose among {', '.join(TARGETS)}")
    return targets


def _seed(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not 0 <= value < 1 << 32:
        raise argparse.ArgumentTypeError(f"must be between 0 and 2**32-1, got {value}")
    return value


@dataclass(frozen=True)
class Options:
    """Every option of ``python -m gen`` (``python -m gen --help`` prints the same texts)."""

    ranks: str = _option(
        None, "HSS pattern, outermost rank first, e.g. 4:6,2:4 (rank1 4:6 over rank0 2:4); a "
        "single rank like 2:4 or 8:8 (dense) works too. A mode set lists each rank's "
        "alternatives with |, e.g. '4:4|4:5|4:6|4:7,4:4|2:4|1:4': one flexible build runs "
        "every combination (mode), chosen per tile", group="design", metavar="G:H,...")
    macs: int | None = _option(
        None, "multipliers per PE of a flexible build (default: the smallest that keeps every "
        "mode's multipliers busy, at or above the geometric middle of the modes' values per "
        "group: 8 for HighLight's set); a single pattern uses prod(G)", group="design",
        metavar="N")
    rows: int = _option(4, "PE rows (weight rows per tile) (default 4)", group="design",
                        metavar="N")
    cols: int = _option(4, "PE columns (activation columns per tile) (default 4)",
                        group="design", metavar="N")
    width: int = _option(8, "value width in bits (default 8)", group="design", metavar="BITS")
    tile_rows: int | None = _option(
        None, "rows of Z per tiles beat, dividing --rows (default: the whole tile in one beat "
        "where it fits Amaranth's 65,536-bit signal limit, else the most rows that fit)",
        group="design", metavar="N")
    signed: bool = _option(True, "two's complement values (default)", group="design",
                           flag="--signed", off_flag="--unsigned", off_help="unsigned values")
    acc_width: int | None = _option(
        None, "accumulator bits (default: the narrowest that cannot overflow for K up to "
        "--max-k, e.g. 26 for 4:6,2:4 int8 K=4096)", group="design", metavar="BITS")
    max_k: int | None = _option(
        None, "largest K the accumulator is sized for (default: 4096, or K of the GEMM if "
        "larger)", group="design", metavar="K")
    dma_bits: int = _option(
        128, "data width of the system's AXI4 master (hss_system's DMA port), one of 64, "
        "128, 256, 512 (default 128)", group="design", metavar="BITS",
        choices=DMA_WIDTHS)
    wbuf_kib: int = _option(
        128, "the system's weights buffer in KiB (default 128: half of Gemmini's 256 KiB "
        "scratchpad)", group="design", metavar="KIB")
    abuf_kib: int = _option(128, "the system's activations buffer in KiB (default 128)",
                            group="design", metavar="KIB")
    qbuf_rows: int = _option(
        4096, "rows of the system's requantization table, at least --rows (default 4096)",
        group="design", metavar="N")
    obuf_tiles: int = _option(2, "tiles the system's output buffer holds, at least 2 "
                              "(default 2)", group="design", metavar="N")
    requant: bool = _option(
        True, "build the system's output requantization (default)", group="design",
        flag="--requant", off_flag="--no-requant",
        off_help="build the system without output requantization (no table, no qbuf)")
    fetch: str = _option(
        "pe", "where hss_system selects rank 1: pe (every PE selects every rank, the engine "
        "as it is: any pattern) or shared (HighLight's split: the weight rows of an m-tile "
        "share their rank-1 blocks, the activation fetch reads only those from abuf's banks, "
        "the PEs keep a rank-0 mux; a fixed two-rank pattern with a sparse rank 1) "
        "(default pe)", group="design", metavar="WAY", choices=FETCH_WAYS)
    shape: tuple[int, int, int] | None = _option(
        None, "random GEMM shape when no tensors are given (default: 2*rows, 8*group size, "
        "2*cols), e.g. 10,100,7", group="workload", metavar="M,K,N")
    out: str | None = _option(
        None, "output folder (default: build/<name>, e.g. build/hss_4-6_2-4_4x4_s8)",
        group="run", metavar="DIR")
    seed: int = _option(0, "seed of the random tensors (default 0)", group="workload",
                        metavar="N")
    weights: tuple[str, ...] = _option(
        (), "your integer weights, M x K (.npy); needs --activations; repeat the pair for "
        "several layers, run back to back (default: random weights)", group="workload",
        metavar="W.npy")
    activations: tuple[str, ...] = _option(
        (), "your integer activations, K x N (.npy); needs --weights (default: random "
        "activations)", group="workload",
        metavar="A.npy")
    mode: tuple[str, ...] = _option(
        (), "the mode (a pattern of the set) a layer runs in: once for all layers or once "
        "per layer (default: the sparsest mode the weights conform to); without tensors, "
        "the modes of the random layers (default: every mode)", group="workload",
        metavar="G:H,...")
    prune: bool = _option(
        False, "project --weights onto the pattern (the --mode of a set) instead of refusing "
        "weights that break it", group="workload")
    tasd: tuple[str, ...] = _option(
        (), "run each layer as a TASD decomposition: W ~ W_1 + W_2 + ..., term t conforming "
        "to mode P_t of the build, each term a segment of every tile into the same "
        "accumulators (the greedy decomposition of hss.tasd; one term is plain pruning). "
        "Once for all layers or once per layer, e.g. '4:4,2:4+4:4,1:4'; 'auto': per layer the "
        "decomposition with the fewest cycles on this build whose error is within "
        "--max-error. Without --weights: one random dense layer per --tasd (default: no "
        "decomposition)",
        group="workload", metavar="P+P...|auto")
    max_error: float | None = _option(
        None, "--tasd auto: largest relative Frobenius error ||W - sum W_t|| / ||W|| "
        "(default 0.01, i.e. 1 %%)", group="workload", metavar="E")
    tasd_terms: int | None = _option(
        None, "--tasd auto: most terms tried (default 2, at most 3)", group="workload",
        metavar="N")
    energy_table: str | None = _option(
        None, "energy per action for the report's energy and EDP (default: "
        "hss/energy_45nm.json: Horowitz's 45 nm multiply and add, Aladdin's register and mux "
        "bits; hss/energy_aladdin_40nm.json takes every component from Aladdin)",
        group="flow", metavar="FILE.json")
    sim: str = _option("verilator", "simulator of the testbench (default verilator; none: "
                       "generate the testbench, do not run it)", group="flow",
                       choices=SIMULATORS)
    system: bool = _option(
        True, "emit hss_system beside the engine: rtl/hss_system.v, rtl/hss_sdp_ram.v, regs/ "
        "(default)", group="flow", flag="--system", off_flag="--no-system",
        off_help="emit the engine only (no hss_system, no regs/)")
    testbench: str | None = _option(
        None, "which testbench verifies the layers: engine (hss_accelerator fed beat by beat "
        "from vector files: tb/), system (hss_system with a DRAM model, run by the host "
        "driver's recorded register program: tb/system/), or both (default: system for "
        "--weights layers when hss_system is built, else engine)", group="flow",
        metavar="WHICH", choices=TESTBENCHES)
    dram_latency: int = _option(
        0, "the system testbench's DRAM model: cycles from a read request to its first beat "
        "(default 0: the bandwidth of the AXI port is the only limit)", group="flow",
        metavar="CYCLES")
    synth: bool = _option(True, "synthesize (default)", group="flow", off_flag="--no-synth",
                          off_help="skip Yosys synthesis and the area report (default: "
                          "synthesize the design and its dense twin)")
    target: tuple[str, ...] = _option(
        DEFAULT_TARGETS, "synthesis targets among generic,ecp5,ice40 (default generic,ecp5)",
        group="flow", metavar="LIST")
    fmax: bool = _option(False, "place and route with nextpnr-ecp5 for Fmax (slow: minutes "
                         "for 4x4)", group="flow")
    board: str | None = _option(
        None, lambda: f"also build an on-board self-test bitstream of the run's GEMM into "
        f"board/ (YoWASP tools; slow: place and route), for one of "
        f"{', '.join(sorted(BOARDS))}; a design too big for the board is refused (default: "
        f"none)", group="flow", metavar="NAME", choices=tuple(sorted(BOARDS)))
    force: bool = _option(False, "replace an existing output folder", group="run")
    stalls: int | None = _option(
        None, "random back-pressure on every stream in the testbench, from this seed (0 to "
        "2**32-1; default: none); `make sim-verilator STALLS=SEED|off` in tb/ chooses again "
        "without regenerating", group="flow", metavar="SEED")
    trace: bool = _option(
        False, "dump every signal of the testbench's simulation to tb/waves.vcd (slower: for "
        "debugging; `make sim-verilator TRACE=1` in tb/ does the same without regenerating)",
        group="flow")
    jobs: int | None = _option(
        None, lambda: f"tools run in parallel (default: the cores this process may use, "
        f"{cores()} here)", group="run", metavar="N")
    synth_timeout: float = _option(
        3600.0, "time limit of each synthesis run (default 3600); past it the run fails with "
        "exit 1", group="run", metavar="SECONDS")
    pnr_timeout: float = _option(1800.0, "time limit of place and route with --fmax "
                                 "(default 1800)", group="run", metavar="SECONDS")
    sim_timeout: float = _option(3600.0, "time limit of the simulator's build and of its run "
                                 "(default 3600)", group="run", metavar="SECONDS")
    progress_interval: float = _option(
        30.0, "seconds between heartbeat lines of a long stage (default 30; 0: none)",
        group="run", metavar="SECONDS")
    synth_cache: str | None = _option(
        None, "reuse synthesis results stored in DIR, keyed by the Verilog, the flow and its "
        "options, and store new ones there (runs may share DIR: a sweep synthesizes a dense "
        "twin once for all its designs; default: none)", group="run", metavar="DIR")

    def __post_init__(self):
        for f in fields(self):
            object.__setattr__(self, f.name, _coerce(f, getattr(self, f.name)))
        self._check()

    def _check(self) -> None:
        """What can be checked without reading a file, as one line each."""
        if self.ranks is None:
            raise InputError("the following arguments are required: --ranks")
        for name in ("rows", "cols", "width", "acc_width", "max_k", "macs", "tile_rows",
                     "wbuf_kib", "abuf_kib", "qbuf_rows", "obuf_tiles"):
            _positive(name, getattr(self, name))
        if self.dma_bits not in DMA_WIDTHS:
            raise InputError(f"--dma-bits {self.dma_bits}: choose among "
                             f"{', '.join(map(str, DMA_WIDTHS))}")
        if self.obuf_tiles < 2:
            raise InputError(f"--obuf-tiles must be at least 2 (a tile leaves while the next "
                             f"is computed), got {self.obuf_tiles}")
        if self.sim not in SIMULATORS:
            raise InputError(f"--sim {self.sim!r}: choose among {', '.join(SIMULATORS)}")
        if self.board is not None and self.board not in BOARDS:
            raise InputError(f"--board {self.board!r}: choose among "
                             f"{', '.join(sorted(BOARDS))}")
        if self.testbench not in (None, *TESTBENCHES):
            raise InputError(f"--testbench {self.testbench!r}: choose among "
                             f"{', '.join(TESTBENCHES)}")
        if self.dram_latency < 0:
            raise InputError(f"--dram-latency must be 0 or more cycles, got "
                             f"{self.dram_latency}")
        if self.fetch not in FETCH_WAYS:
            raise InputError(f"--fetch {self.fetch!r}: choose among {', '.join(FETCH_WAYS)}")
        if self.fetch != "pe" and not self.system:
            raise InputError("--fetch chooses hss_system's datapath; --no-system builds none")
        if self.fetch != "pe" and self.tasd:
            raise InputError("--fetch shared runs one pattern per layer; --tasd needs the "
                             "PEs' modes (--fetch pe)")
        if self.testbench in ("system", "both") and not self.system:
            raise InputError(f"--testbench {self.testbench} runs hss_system; --no-system "
                             f"builds none")
        if self.trace and self.testbench == "system":
            raise InputError("--trace dumps the engine testbench's signals; --testbench "
                             "system runs none (use --testbench both)")
        if self.trace and self.sim == "none":
            raise InputError("--trace dumps the testbench's simulation; --sim none runs none")
        if len(self.weights) != len(self.activations):
            raise InputError(f"--weights and --activations go together, one pair per layer: "
                             f"got {len(self.weights)} and {len(self.activations)}")
        if self.weights and len(self.mode) not in (0, 1, len(self.weights)):
            raise InputError(f"--mode is given {len(self.mode)} times for "
                             f"{len(self.weights)} layers: give it once (every layer) or once "
                             f"per layer")
        if self.prune and not self.weights:
            raise InputError("--prune applies to --weights; random weights already conform")
        if self.weights and self.shape:
            raise InputError("--shape is for random tensors; the shape comes from --weights")
        if self.jobs is not None and self.jobs < 1:
            raise InputError(f"--jobs must be a positive integer, got {self.jobs}")
        for name in ("synth_timeout", "pnr_timeout", "sim_timeout"):
            if not getattr(self, name) > 0:
                raise InputError(f"--{name.replace('_', '-')} must be positive seconds, "
                                 f"got {getattr(self, name):g}")
        if self.synth_cache is not None and not (self.synth or self.fmax):
            raise InputError("--synth-cache applies to synthesis; --no-synth runs none")
        if self.stalls is not None and not 0 <= self.stalls < 1 << 32:
            raise InputError(f"--stalls must be between 0 and 2**32-1, got {self.stalls}")
        if self.stalls is not None and self.sim == "none":
            raise InputError("--stalls applies to the testbench's simulation; --sim none "
                             "runs none")
        self._check_tasd()

    def _check_tasd(self) -> None:
        if not self.tasd:
            if self.max_error is not None or self.tasd_terms is not None:
                raise InputError("--max-error and --tasd-terms apply to --tasd auto")
            return
        if self.mode:
            raise InputError("--tasd chooses the modes of its terms: drop --mode")
        if self.prune:
            raise InputError("--tasd decomposes the weights; --prune is the one-term "
                             "--tasd MODE")
        if self.weights and len(self.tasd) not in (1, len(self.weights)):
            raise InputError(f"--tasd is given {len(self.tasd)} times for "
                             f"{len(self.weights)} layers: give it once (every layer) or once "
                             f"per layer")
        if "auto" not in [t.strip() for t in self.tasd] and (
                self.max_error is not None or self.tasd_terms is not None):
            raise InputError("--max-error and --tasd-terms apply to --tasd auto")
        if self.max_error is not None and not self.max_error >= 0:
            raise InputError(f"--max-error must be a relative error >= 0 (0.01 = 1 %), got "
                             f"{self.max_error}")
        if self.tasd_terms is not None and not 1 <= self.tasd_terms <= MAX_TASD_TERMS:
            raise InputError(f"--tasd-terms must be between 1 and {MAX_TASD_TERMS}, got "
                             f"{self.tasd_terms}")

    # -- the command line ------------------------------------------------------------------
    @classmethod
    def from_argv(cls, argv) -> Options:
        """The options of a ``python -m gen`` command line (without the program name)."""
        namespace = build_parser().parse_args([str(a) for a in argv])
        values = {f.name: getattr(namespace, f.name) for f in fields(cls)}
        for f in fields(cls):
            if values[f.name] is None and f.default is not None:
                values[f.name] = f.default          # an append option not given; --target
        return cls(**values)

    def to_argv(self) -> list[str]:
        """The shortest equivalent command line: every option not at its default."""
        argv = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value == f.default:
                continue
            flag = _flag(f)
            if isinstance(value, bool):
                argv.append(flag if value else f.metadata["off_flag"])
            elif f.name in ("target", "shape"):
                argv += [flag, ",".join(map(str, value))]
            elif isinstance(value, tuple):
                argv += [x for item in value for x in (flag, str(item))]
            else:
                argv += [flag, _text(value)]
        return argv

    def command(self) -> str:
        """``python -m gen ...``: ``to_argv`` quoted for a shell."""
        return "python -m gen " + shlex.join(self.to_argv())

    # -- JSON ------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """Every field, tuples as lists: ``from_json`` gives this object back."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict) -> Options:
        if not isinstance(data, dict):
            raise InputError(f"options must be a JSON object, not {type(data).__name__}")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise InputError(f"unknown option {unknown[0]!r} in the options")
        return cls(**data)

    # -- derived views ---------------------------------------------------------------------
    def replace(self, **changes) -> Options:
        return dataclasses.replace(self, **changes)

    @classmethod
    def kinds(cls, *groups: str) -> dict[str, type]:
        """The fields of these groups, by name, with their type without ``| None``
        (``int``, ``float``, ``str``, ``bool`` or ``tuple[...]``)."""
        return {f.name: _base_type(f) for f in fields(cls) if f.metadata["group"] in groups}

    def without_run_options(self) -> Options:
        """These options with every ``run`` option at its default: what ``config.json``
        keeps (the folder stays relocatable; nothing it holds depends on them)."""
        return self.replace(**{f.name: f.default for f in fields(self)
                               if f.metadata["group"] == "run"})

    def name_options(self) -> dict[str, Any]:
        """The options a folder name is hashed from: every non-default option that changes
        what is written and is not in the config's name; tensors and tables by content."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata["group"] == "run" or f.name in _IN_CONFIG_NAME or value == f.default:
                continue
            if f.name in ("weights", "activations"):
                value = [file_sha256(path) for path in value]
            elif f.name == "energy_table":
                value = file_sha256(value)
            elif f.name == "shape":
                value = ",".join(map(str, value))
            elif isinstance(value, tuple):
                value = list(value)
            out["targets" if f.name == "target" else f.name] = value
        return out


def _flag(f: dataclasses.Field) -> str:
    return f.metadata["flag"] or "--" + f.name.replace("_", "-")


def _text(value) -> str:
    """A value as the command line writes it (floats without a needless ``.0``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _base_type(f: dataclasses.Field):
    """The annotation without ``| None``: int, float, str, bool or a tuple type."""
    return _base_types()[f.name]


@functools.cache
def _base_types() -> dict[str, Any]:
    out = {}
    for name, hint in typing.get_type_hints(Options).items():
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        out[name] = hint
    return out


def _coerce(f: dataclasses.Field, value):
    """A field's value from the command line or JSON, in its type (a one-line error else)."""
    if value is None:
        return None
    hint, name = _base_type(f), f"--{f.name.replace('_', '-')}"
    if f.name == "shape" and isinstance(value, str):
        return _parse_shape(value)
    if f.name == "target" and isinstance(value, str):
        return _parse_targets(value)
    if typing.get_origin(hint) is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise InputError(f"{name} must be a list, not {value!r}")
        item = typing.get_args(hint)[0]
        if not all(isinstance(v, item) and not isinstance(v, bool) for v in value):
            raise InputError(f"{name} must hold {item.__name__} values, not {value!r}")
        if f.name == "shape" and len(value) != 3:
            raise InputError(f"--shape must be M,K,N with three integers, got {value!r}")
        if f.name == "target":
            _parse_targets(",".join(value))
        return tuple(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise InputError(f"{name} must be true or false, not {value!r}")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is str and isinstance(value, os.PathLike):
        return os.fspath(value)     # a path option given as a Path, as Python callers do
    if not isinstance(value, hint) or isinstance(value, bool):
        raise InputError(f"{name} must be {'an' if hint is int else 'a'} "
                         f"{hint.__name__}, not {value!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad input on one line with exit code 2 (``InputError``)."""

    def error(self, message):
        raise InputError(message)


def _is_list(f: dataclasses.Field) -> bool:
    """A repeatable option (``--weights A --weights B``); shape and target are one word."""
    return typing.get_origin(_base_type(f)) is tuple and f.name not in ("shape", "target")


def build_parser() -> argparse.ArgumentParser:
    """``python -m gen``'s parser, one argument per field of ``Options``. It parses into raw
    values (words as typed) that ``Options`` types and checks."""
    p = _Parser(prog="python -m gen",
                description="Generate, verify and synthesize an HSS sparse DNN accelerator.",
                epilog="example: python -m gen --ranks 4:6,2:4 --rows 4 --cols 4 --width 8",
                formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(Options):
        meta, hint = f.metadata, _base_type(f)
        text = meta["help"]() if callable(meta["help"]) else meta["help"]
        if hint is bool:
            on = _flag(f) if f.default is False or meta["flag"] else None
            off = meta["off_flag"]
            group = p.add_mutually_exclusive_group() if on and off else p
            if on:
                group.add_argument(on, dest=f.name, action="store_true", default=f.default,
                                   help=text)
            if off:
                group.add_argument(off, dest=f.name, action="store_false", default=f.default,
                                   help=meta["off_help"])
            continue
        kwargs = dict(dest=f.name, help=text, metavar=meta["metavar"],
                      choices=meta["choices"], required=f.name == "ranks")
        if _is_list(f):
            kwargs.update(action="append", default=None)
        elif f.name == "stalls":
            kwargs.update(type=_seed, default=None)
        elif f.name in ("shape", "target"):
            kwargs.update(default=None)             # Options parses the word
        else:
            kwargs.update(type=hint, default=f.default)
        p.add_argument(_flag(f), **kwargs)
    return p
