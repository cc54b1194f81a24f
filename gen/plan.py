"""Everything a ``python -m gen`` run needs, checked before anything is written.

A run builds one accelerator (a fixed pattern, or a flexible build for a mode set) and
verifies it on one or more *layers*: GEMMs, each run in one mode of the build. Random layers
cover every mode of a flexible build; a user's tensors are one layer per
``--weights/--activations`` pair, in the mode given by ``--mode`` (or the fastest mode the
weights conform to).
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import hss
from hdl import AcceleratorConfig
from hdl.config import FlexConfig

from .inputs import InputError, file_sha256, load_matrix, random_operands

__all__ = ["Plan", "Layer", "cores", "MAX_NAND2_EQ", "MAX_BEAT_BITS", "MAX_VECTOR_BYTES"]

TARGETS = ("generic", "ecp5", "ice40")

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


def cores() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Layer:
    """One GEMM of the run: ``W @ A`` in mode number ``mode`` (0 for a fixed build)."""
    W: np.ndarray
    A: np.ndarray
    mode: int
    pattern: hss.Pattern
    source: dict            # where it came from, for config.json

    @property
    def k(self) -> int:
        return int(self.W.shape[1])

    @property
    def padded_k(self) -> int:
        return -(-self.k // self.pattern.group_size) * self.pattern.group_size


def _describe(config) -> str:
    what = config.pattern if isinstance(config, AcceleratorConfig) else config.modes
    return f"--ranks {what} on {config.rows}x{config.cols} PEs, int{config.width}"


def _check_size(config, layers=()) -> None:
    """Refuse, from a cheap estimate, what would not finish in reasonable time or memory."""
    what = _describe(config)
    if config.estimated_nand2_eq > MAX_NAND2_EQ:
        raise InputError(f"{what} is too large to build: an estimated "
                         f"{config.estimated_nand2_eq:,} NAND2-eq ({config.multipliers:,} "
                         f"multipliers) exceeds the limit of {MAX_NAND2_EQ:,}")
    if config.beat_bits > MAX_BEAT_BITS:
        raise InputError(f"{what} is too large to build: its stream beats are "
                         f"{config.beat_bits:,} bits wide, the limit is {MAX_BEAT_BITS:,}")
    total = 0
    for m, k, n, pattern, per_beat in layers:
        beats = -(-m // config.rows) * -(-n // config.cols) * -(-k // (pattern.group_size
                                                                      * per_beat))
        total += beats * (config.beat_bits // 4 + 2)
        if total > MAX_VECTOR_BYTES:
            raise InputError(f"GEMM {m}x{k}x{n} on {what} needs {beats:,} beats, about "
                             f"{total / 2**20:,.0f} MiB of test vectors; the limit is "
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


def _config(modes: hss.ModeSet, flexible: bool, args, max_k=4096, acc_width=None):
    """The config's own eager checks, reported as bad input."""
    try:
        if not flexible:
            return AcceleratorConfig(modes.mode(0), args.rows, args.cols, args.width,
                                     args.signed, max_k, acc_width)
        return FlexConfig(modes, args.rows, args.cols, args.width, args.signed, max_k,
                          acc_width, args.macs)
    except (TypeError, ValueError) as e:           # hss.lanes.LaneError is a ValueError
        raise InputError(str(e)) from None


class Plan:
    """Everything a run needs, checked before anything is written."""

    def __init__(self, args):
        modes = hss.ModeSet.parse(args.ranks)
        for name in ("rows", "cols", "width", "acc_width", "max_k", "macs"):
            _positive(f"--{name.replace('_', '-')}", getattr(args, name))
        targets = [t.strip() for t in args.target.split(",") if t.strip()]
        unknown = sorted(set(targets) - set(TARGETS))
        if unknown or not targets:
            raise InputError(f"--target {args.target!r}: choose among {', '.join(TARGETS)}")
        weights, acts, chosen = args.weights or [], args.activations or [], args.mode or []
        if len(weights) != len(acts):
            raise InputError(f"--weights and --activations go together, one pair per layer: "
                             f"got {len(weights)} and {len(acts)}")
        if weights and len(chosen) not in (0, 1, len(weights)):
            raise InputError(f"--mode is given {len(chosen)} times for {len(weights)} layers: "
                             f"give it once (every layer) or once per layer")
        if args.prune and not weights:
            raise InputError("--prune applies to --weights; random weights already conform")
        if weights and args.shape:
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
        self.flexible = not modes.is_single or (args.macs is not None
                                                and args.macs != modes.mode(0).slots)
        self.modes = modes
        base = _config(modes, self.flexible, args)
        _check_size(base)
        if weights:
            self.layers = [self._user_layer(base, i, w, a, chosen, args.prune)
                           for i, (w, a) in enumerate(zip(weights, acts))]
        else:
            self.layers = self._random_layers(base, args)
        padded = max(layer.padded_k for layer in self.layers)
        max_k = args.max_k if args.max_k is not None else max(4096, padded)
        if padded > max_k:
            raise InputError(f"K={max(layer.k for layer in self.layers)} (padded to {padded}) "
                             f"exceeds --max-k {max_k}")
        self.config = _config(modes, self.flexible, args, max_k, args.acc_width)
        _check_size(self.config, [self._shape(layer) for layer in self.layers])
        self.targets = targets
        self.jobs = args.jobs or cores()
        self.args = args
        self.out = Path(args.out) if args.out else Path("build") / self.default_name()
        if self.out.exists() and not args.force:
            raise InputError(f"output folder {self.out} exists: pass --force to replace it")
        if self.out.exists() and not self.out.is_dir():
            raise InputError(f"output path {self.out} exists and is not a folder")

    def _per_beat(self, config, mode: int) -> int:
        return config.schedule.groups_per_beat(mode) if self.flexible else 1

    def _shape(self, layer: Layer):
        return (layer.W.shape[0], layer.k, layer.A.shape[1], layer.pattern,
                self._per_beat(self.config, layer.mode))

    def _random_layers(self, base, args) -> list[Layer]:
        """One random GEMM per mode (or per ``--mode``), W projected onto the mode (seeds
        ``seed + mode``)."""
        layers = []
        chosen = [self.modes.index(text) for text in args.mode] if args.mode else \
            range(len(self.modes))
        for mode in chosen:
            pattern = self.modes.mode(mode)
            m, k, n = (_parse_shape(args.shape) if args.shape else
                       (2 * args.rows, 8 * pattern.group_size, 2 * args.cols))
            _check_size(base, [(m, k, n, pattern, self._per_beat(base, mode))])
            W, A = random_operands(base, m, k, n, args.seed + mode, pattern=pattern)
            layers.append(Layer(W, A, mode, pattern, {"random_seed": args.seed + mode,
                                                      "shape": [m, k, n]}))
        return layers

    def _user_layer(self, base, i, w_path, a_path, chosen, prune) -> Layer:
        W, A = load_matrix(w_path, "W"), load_matrix(a_path, "A")
        if A.shape[0] != W.shape[1]:
            raise InputError(f"shapes do not chain: W is {W.shape[0]}x{W.shape[1]} but "
                             f"A is {A.shape[0]}x{A.shape[1]} (A needs {W.shape[1]} rows)")
        hss.check_range(W, base.width, base.signed, "W")
        hss.check_range(A, base.width, base.signed, "A")
        text = chosen[i if len(chosen) > 1 else 0] if chosen else None
        if text is not None:
            mode = self.modes.index(text)
        elif prune and self.modes.is_single:
            mode = 0
        elif prune:
            raise InputError("--prune on a mode set needs --mode: the mode to project onto")
        else:
            mode = self._fastest_conforming(W)
        pattern = self.modes.mode(mode)
        if prune:
            W = hss.prune(W, pattern)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", hss.PaddingWarning)
                hss.check_conforms(W, pattern, "W")
        source = {"weights": w_path, "activations": a_path, "prune": prune,
                  "weights_sha256": file_sha256(w_path),
                  "activations_sha256": file_sha256(a_path)}
        return Layer(W, A, mode, pattern, source)

    def _fastest_conforming(self, W) -> int:
        """The mode with the fewest steps per group's worth of K among those W conforms
        to; a fixed build's only mode is checked (and named) as before."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", hss.PaddingWarning)
            fits = [m for m, p in enumerate(self.modes.modes) if hss.conforms(W, p)]
            if not fits:
                densest = max(range(len(self.modes)),
                              key=lambda m: self.modes.mode(m).density)
                hss.check_conforms(W, self.modes.mode(densest), "W")   # names the offender
        return min(fits, key=lambda m: (self.modes.mode(m).density, m))

    def default_name(self) -> str:
        """``build/<config name>`` for a default run; a run whose options change what is
        written gets a suffix hashed from them, so that two such runs never share a folder."""
        a = self.args
        options = {"acc_width": a.acc_width, "max_k": a.max_k, "shape": a.shape,
                   "seed": a.seed or None, "stalls": a.stalls, "mode": a.mode,
                   "weights": a.weights and [file_sha256(w) for w in a.weights],
                   "activations": a.activations and [file_sha256(x) for x in a.activations],
                   "prune": a.prune or None,
                   "sim": None if a.sim == "verilator" else a.sim,
                   "synth": None if a.synth else False,
                   "targets": None if self.targets == ["generic", "ecp5"] else self.targets,
                   "fmax": a.fmax or None}
        options = {k: v for k, v in options.items() if v is not None}
        if not options:
            return self.config.name
        digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()
        return f"{self.config.name}-{digest[:8]}"
