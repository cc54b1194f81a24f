"""Everything a ``python -m gen`` run needs, checked before anything is written.

A run builds one accelerator (a fixed pattern, or a flexible build for a mode set) and
verifies it on one or more *layers*: GEMMs, each run in one mode of the build. Random layers
cover every mode of a flexible build; a user's tensors are one layer per
``--weights/--activations`` pair, in the mode given by ``--mode`` (or the fastest mode the
weights conform to). With ``--tasd`` a layer is a TASD decomposition instead: the sum of
structured terms (``hss.tasd``), each a mode of the build, run as segments of every tile.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import hss
from hdl import AcceleratorConfig
from hdl.config import FlexConfig
from hdl.stimulus import flex_gemm_vectors, gemm_vectors, segment_vectors
from synth.tools import cores

from .inputs import InputError, file_sha256, load_matrix, random_operands

__all__ = ["Plan", "Layer", "MAX_NAND2_EQ", "MAX_VECTOR_BYTES"]

TARGETS = ("generic", "ecp5", "ice40")

#: Builds above this estimate are refused before elaboration: about 1.6x a 64x64 array of
#: 8-multiplier int8 PEs (37 M NAND2-eq), the largest array the project targets. Elaboration
#: and synthesis time grow linearly with it (bench/results/scale.md: 64x64, 36.5 M, 16 min).
MAX_NAND2_EQ = 60_000_000
#: Test vectors above this many bytes (hex text) are refused: they are read into memory by
#: the simulator, and simulation time grows with them.
MAX_VECTOR_BYTES = 1 << 30
#: ``--tasd auto``: the relative Frobenius error budget, and the most terms it tries. Four
#: terms of a 12-mode set are 20,736 candidates: more than a run should decompose.
DEFAULT_MAX_ERROR = 0.01
MAX_TASD_TERMS = 3


@dataclass(frozen=True)
class Layer:
    """One GEMM of the run: ``W @ A`` in mode number ``mode`` (0 for a fixed build).

    A TASD layer (``tasd`` set) runs ``sum_t W_t @ A`` instead, term t in mode
    ``term_modes[t]``; ``mode`` and ``pattern`` are then its first term's.
    """
    W: np.ndarray
    A: np.ndarray
    mode: int
    pattern: hss.Pattern
    source: dict            # where it came from, for config.json
    tasd: hss.TASDResult | None = None
    term_modes: tuple[int, ...] = ()

    @property
    def k(self) -> int:
        return int(self.W.shape[1])

    @property
    def padded_k(self) -> int:
        return -(-self.k // self.pattern.group_size) * self.pattern.group_size

    @property
    def segments(self) -> list[tuple[np.ndarray, int]]:
        """[(W_t, mode_t)]: what the hardware streams for each tile, in order."""
        if self.tasd is None:
            return [(self.W, self.mode)]
        return list(zip(self.tasd.terms, self.term_modes))

    @property
    def label(self) -> str:
        """The mode, or the decomposition (``4:4,2:4+4:4,1:4``)."""
        return str(self.tasd.decomposition) if self.tasd is not None else str(self.pattern)


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
                                     args.signed, max_k, acc_width, args.tile_rows)
        return FlexConfig(modes, args.rows, args.cols, args.width, args.signed, max_k,
                          acc_width, args.macs, args.tile_rows)
    except (TypeError, ValueError) as e:           # hss.lanes.LaneError is a ValueError
        raise InputError(str(e)) from None


class Plan:
    """Everything a run needs, checked before anything is written."""

    def __init__(self, args):
        modes = hss.ModeSet.parse(args.ranks)
        for name in ("rows", "cols", "width", "acc_width", "max_k", "macs", "tile_rows"):
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
        if args.synth_cache is not None and not (args.synth or args.fmax):
            raise InputError("--synth-cache applies to synthesis; --no-synth runs none")
        if args.stalls is not None and args.sim == "none":
            raise InputError("--stalls applies to the testbench's simulation; --sim none "
                             "runs none")
        self._check_tasd_args(args, weights)
        try:
            self.energy_table = hss.energy.EnergyTable.load(
                args.energy_table or hss.energy.DEFAULT_TABLE)
        except hss.energy.EnergyError as e:
            raise InputError(str(e)) from None
        self._decomposing = bool(args.tasd)
        self.flexible = not modes.is_single or (args.macs is not None
                                                and args.macs != modes.mode(0).slots)
        self.modes = modes
        self._base = base = _config(modes, self.flexible, args)
        _check_size(base)
        if weights:
            self.layers = [self._user_layer(base, i, w, a, chosen, args.prune)
                           for i, (w, a) in enumerate(zip(weights, acts))]
        elif args.tasd:
            self.layers = self._random_tasd_layers(base, args)
        else:
            self.layers = self._random_layers(base, args)
        if args.tasd:
            self.layers = [self._decomposed(base, i, layer, args)
                           for i, layer in enumerate(self.layers)]
        needed = max(self._accumulated_k(layer) for layer in self.layers)
        max_k = args.max_k if args.max_k is not None else max(4096, needed)
        for i, layer in enumerate(self.layers):
            if self._accumulated_k(layer) <= max_k:
                continue
            if layer.tasd is None:
                raise InputError(f"K={layer.k} (padded to {layer.padded_k}) exceeds --max-k "
                                 f"{max_k}")
            raise InputError(f"layer {i}: --tasd {layer.label} streams K={layer.k} once per "
                             f"term into the same accumulators ({self._accumulated_k(layer)} "
                             f"padded in all), more than --max-k {max_k} sizes them for")
        self.config = _config(modes, self.flexible, args, max_k, args.acc_width)
        _check_size(self.config, [s for layer in self.layers
                                  for s in self._shapes(self.config, layer)])
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

    def _shapes(self, config, layer: Layer) -> list[tuple]:
        """(M, K, N, pattern, groups per beat) of each segment, for ``_check_size``."""
        return [(layer.W.shape[0], layer.k, layer.A.shape[1], self.modes.mode(mode),
                 self._per_beat(config, mode)) for _, mode in layer.segments]

    def _accumulated_k(self, layer: Layer) -> int:
        """The K the accumulators must be sized for: the padded K, or for a TASD layer the
        K of all its segments, each padded to whole beats (one tile sums them all; the
        densest mode at this K sums at least as many products, see README "TASD")."""
        if layer.tasd is None:
            return layer.padded_k
        total = 0
        for _, mode in layer.segments:
            unit = self.modes.mode(mode).group_size * (
                self._per_beat(self._base, mode) if self.flexible else 1)
            total += -(-layer.k // unit) * unit
        return total

    @staticmethod
    def _check_tasd_args(args, weights) -> None:
        if not args.tasd:
            if args.max_error is not None or args.tasd_terms is not None:
                raise InputError("--max-error and --tasd-terms apply to --tasd auto")
            return
        if args.mode:
            raise InputError("--tasd chooses the modes of its terms: drop --mode")
        if args.prune:
            raise InputError("--tasd decomposes the weights; --prune is the one-term "
                             "--tasd MODE")
        if weights and len(args.tasd) not in (1, len(weights)):
            raise InputError(f"--tasd is given {len(args.tasd)} times for {len(weights)} "
                             f"layers: give it once (every layer) or once per layer")
        if "auto" not in args.tasd and (args.max_error is not None
                                        or args.tasd_terms is not None):
            raise InputError("--max-error and --tasd-terms apply to --tasd auto")
        if args.max_error is not None and not args.max_error >= 0:
            raise InputError(f"--max-error must be a relative error >= 0 (0.01 = 1 %), got "
                             f"{args.max_error}")
        if args.tasd_terms is not None and not 1 <= args.tasd_terms <= MAX_TASD_TERMS:
            raise InputError(f"--tasd-terms must be between 1 and {MAX_TASD_TERMS}, got "
                             f"{args.tasd_terms}")

    def _random_tasd_layers(self, base, args) -> list[Layer]:
        """One random GEMM per ``--tasd``, W uniform over the whole value range and not
        projected onto any mode (seeds ``seed + i``): what TASD is for."""
        layers = []
        for i, _ in enumerate(args.tasd):
            m, k, n = (_parse_shape(args.shape) if args.shape else
                       (2 * args.rows, 8 * self.modes.max_group_size, 2 * args.cols))
            lo, hi = hss.value_range(base.width, base.signed)
            rng = np.random.default_rng(args.seed + i)
            W = rng.integers(lo, hi, (m, k), endpoint=True, dtype=np.int64)
            A = rng.integers(lo, hi, (k, n), endpoint=True, dtype=np.int64)
            layers.append(Layer(W, A, 0, self.modes.mode(0),
                                {"random_seed": args.seed + i, "shape": [m, k, n]}))
        return layers

    def _decomposed(self, base, i: int, layer: Layer, args) -> Layer:
        """The layer as the TASD decomposition ``--tasd`` names (or ``auto`` chooses)."""
        spec = args.tasd[i if len(args.tasd) > 1 else 0]
        macs = base.macs if self.flexible else base.pattern.slots
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", hss.PaddingWarning)
                if spec.strip() == "auto":
                    result = hss.tasd.choose(
                        layer.W, hss.tasd.candidates(self.modes, args.tasd_terms or 2),
                        DEFAULT_MAX_ERROR if args.max_error is None else args.max_error, macs)
                else:
                    result = hss.decompose(layer.W, hss.Decomposition.parse(spec))
                term_modes = self._term_modes(result.decomposition)
        except hss.HSSError as e:
            raise InputError(f"layer {i}: --tasd {spec!r}: {e}") from None
        source = dict(layer.source, tasd=spec.strip())
        if spec.strip() == "auto":
            source.update(max_error=DEFAULT_MAX_ERROR if args.max_error is None
                          else args.max_error, tasd_terms=args.tasd_terms or 2)
        return Layer(layer.W, layer.A, term_modes[0], self.modes.mode(term_modes[0]), source,
                     result, term_modes)

    def _term_modes(self, d: hss.Decomposition) -> tuple[int, ...]:
        modes = []
        for t, p in enumerate(d.terms, 1):
            if p not in self.modes:
                raise hss.TASDError(f"term {t} {p} is not a mode of this build "
                                    f"({self.modes})")
            modes.append(self.modes.index(p))
        return tuple(modes)

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
        source = {"weights": w_path, "activations": a_path, "prune": prune,
                  "weights_sha256": file_sha256(w_path),
                  "activations_sha256": file_sha256(a_path)}
        if self._decomposing:                      # decomposed later: any W will do
            return Layer(W, A, 0, self.modes.mode(0), source)
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

    def vectors(self) -> list:
        """Each layer's GEMM as beats for the array (``hdl.stimulus``): a TASD layer's terms
        as segments, a flexible build's layer in its mode; the testbench and the board's
        self-test run these."""
        c = self.config
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", hss.PaddingWarning)
            return [segment_vectors(c, layer.segments, layer.A) if layer.tasd is not None
                    else flex_gemm_vectors(c, layer.W, layer.A, layer.mode) if self.flexible
                    else gemm_vectors(c, layer.W, layer.A) for layer in self.layers]

    def default_name(self) -> str:
        """``build/<config name>`` for a default run; a run whose options change what is
        written gets a suffix hashed from them, so that two such runs never share a folder."""
        a = self.args
        options = {"acc_width": a.acc_width, "max_k": a.max_k, "tile_rows": a.tile_rows,
                   "shape": a.shape,
                   "seed": a.seed or None, "stalls": a.stalls, "mode": a.mode,
                   "weights": a.weights and [file_sha256(w) for w in a.weights],
                   "activations": a.activations and [file_sha256(x) for x in a.activations],
                   "prune": a.prune or None, "tasd": a.tasd, "max_error": a.max_error,
                   "tasd_terms": a.tasd_terms,
                   "energy_table": a.energy_table and file_sha256(a.energy_table),
                   "sim": None if a.sim == "verilator" else a.sim,
                   "synth": None if a.synth else False,
                   "targets": None if self.targets == ["generic", "ecp5"] else self.targets,
                   "fmax": a.fmax or None, "board": a.board, "trace": a.trace or None}
        options = {k: v for k, v in options.items() if v is not None}
        if not options:
            return self.config.name
        digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()
        return f"{self.config.name}-{digest[:8]}"
