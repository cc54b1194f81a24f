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
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import hss
from hss.fetch import compress_shared
from hdl.config import build_config, is_flexible
from hdl.stimulus import segment_vectors

from synth.tools import PLAIN_RANGES, cores, is_plain

from .inputs import InputError, file_sha256, load_matrix, prune_for, random_operands
from .options import DEFAULT_MAX_ERROR, Options

__all__ = ["Plan", "Layer", "MAX_NAND2_EQ", "MAX_VECTOR_BYTES"]

#: Builds above this estimate are refused before elaboration: about 1.6x a 64x64 array of
#: 8-multiplier int8 PEs (37 M NAND2-eq), the largest array the project targets. Elaboration
#: and synthesis time grow linearly with it (bench/results/scale.md: 64x64, 36.5 M, 16 min).
MAX_NAND2_EQ = 60_000_000
#: Test vectors above this many bytes (hex text) are refused: they are read into memory by
#: the simulator, and simulation time grows with them.
MAX_VECTOR_BYTES = 1 << 30


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
    #: ``--prune``: the one-term decomposition that projected the user's W onto the mode
    #: (its ``error`` is the relative Frobenius error the pruning introduced, TASD's measure)
    pruned: hss.TASDResult | None = None
    #: ``--tasd auto``: what the choice weighed (``hss.tasd.Choice``)
    choice: hss.tasd.Choice | None = None

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
    what = config.modes
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


def _config(modes: hss.ModeSet, o: Options, max_k=4096, acc_width=None):
    """The build's config (``hdl.config.build_config``), its eager checks reported as bad
    input."""
    try:
        return build_config(modes, o.rows, o.cols, o.width, o.signed, max_k, acc_width, o.macs,
                            o.tile_rows)
    except (TypeError, ValueError) as e:           # hss.lanes.LaneError is a ValueError
        raise InputError(str(e)) from None


def _system_config(engine, o: Options):
    """``(SystemConfig, None)`` for the ``hss_system`` of this build, or ``(None, why)``
    when the system refuses the engine itself (``why``: its one line). Sizes the engine
    could take but these options get wrong are bad input (``InputError``): the refusal is
    told apart by whether the default sizes are refused too."""
    from hdl.sysconfig import KIB, SystemConfig
    try:
        return SystemConfig(engine, dma_bits=o.dma_bits, wbuf_bytes=o.wbuf_kib * KIB,
                            abuf_bytes=o.abuf_kib * KIB, qbuf_rows=o.qbuf_rows,
                            obuf_tiles=o.obuf_tiles, requant=o.requant,
                            fetch=o.fetch), None
    except (ValueError, hss.HSSError) as e:
        try:
            SystemConfig(engine)
        except ValueError as refused:
            if o.fetch != "pe":
                raise InputError(f"--fetch {o.fetch} builds hss_system, which refuses this "
                                 f"engine: {refused}") from None
            return None, str(refused)
        raise InputError(f"hss_system: {e}") from None


def _conforms_or_advise(W, pattern: hss.Pattern, shared_rows: int | None = None) -> None:
    """``hss.check_conforms`` (with ``shared_rows``: also every m-tile's rows sharing their
    rank-1 blocks, ``hss.fetch``), its error saying what to do with weights that break the
    pattern (dense weights, typically)."""
    try:
        hss.check_conforms(W, pattern, "W")
        if shared_rows is not None:
            compress_shared(W, pattern, shared_rows)
    except hss.ConformanceError as e:
        if shared_rows is not None:
            raise InputError(f"{e}: pass --prune to project W onto {pattern} with each "
                             f"m-tile's {shared_rows} rows sharing their rank-1 blocks (the "
                             f"run reports the error it introduces)") from None
        raise InputError(f"{e}: pass --prune to project W onto {pattern} (the run reports the "
                         f"error it introduces), or --tasd auto to decompose W into modes of "
                         f"the build") from None


class Plan:
    """Everything a run needs, checked before anything is written: its ``options``, the
    ``config`` of the build, its ``layers``, the output folder ``out``."""

    def __init__(self, options: Options):
        if not isinstance(options, Options):
            raise TypeError(f"options must be gen.options.Options, not {options!r}")
        self.options = o = options
        modes = hss.ModeSet.parse(o.ranks)
        try:
            self.energy_table = hss.energy.EnergyTable.load(
                o.energy_table or hss.energy.DEFAULT_TABLE)
        except hss.energy.EnergyError as e:
            raise InputError(str(e)) from None
        self._decomposing = bool(o.tasd)
        self.flexible = is_flexible(modes, o.macs)
        self.modes = modes
        self._base = base = _config(modes, o)
        _check_size(base)
        # rank 1 at the fetch: the rows of an m-tile share their rank-1 blocks
        self._shared_rows = None
        if o.fetch != "pe":
            _system_config(base, o)              # what cannot, refused here in one line
            self._shared_rows = o.rows
        if o.weights:
            self.layers = [self._user_layer(base, i, w, a, o.mode, o.prune)
                           for i, (w, a) in enumerate(zip(o.weights, o.activations))]
        elif o.tasd:
            self.layers = self._random_tasd_layers(base, o)
        else:
            self.layers = self._random_layers(base, o)
        if o.tasd:
            self.layers = [self._decomposed(base, i, layer, o)
                           for i, layer in enumerate(self.layers)]
        needed = max(self._accumulated_k(layer) for layer in self.layers)
        max_k = o.max_k if o.max_k is not None else max(4096, needed)
        for i, layer in enumerate(self.layers):
            if self._accumulated_k(layer) <= max_k:
                continue
            if layer.tasd is None:
                raise InputError(f"K={layer.k} (padded to {layer.padded_k}) exceeds --max-k "
                                 f"{max_k}")
            raise InputError(f"layer {i}: --tasd {layer.label} streams K={layer.k} once per "
                             f"term into the same accumulators ({self._accumulated_k(layer)} "
                             f"padded in all), more than --max-k {max_k} sizes them for")
        self.config = _config(modes, o, max_k, o.acc_width)
        _check_size(self.config, [s for layer in self.layers
                                  for s in self._shapes(self.config, layer)])
        # hss_system: its config, or None with why (None when --no-system)
        self.system, self.system_refused = (_system_config(self.config, o) if o.system
                                            else (None, None))
        self.targets = list(o.target)
        self.jobs = o.jobs or cores()
        self.out = Path(o.out) if o.out else Path("build") / self.default_name()
        # which testbench verifies the layers: the system's for a user's layers, by default
        # (its Verilator build needs a folder path make and Verilator take as it is)
        plain = is_plain(os.path.abspath(self.out))
        self.testbench = o.testbench or ("system" if o.weights and self.system is not None
                                         and not o.trace and plain else "engine")
        if self.testbench != "engine" and self.system is None:
            raise InputError(f"--testbench {self.testbench}: this build has no hss_system: "
                             f"{self.system_refused}")
        if self.testbench != "engine" and not plain:
            raise InputError(f"--testbench {self.testbench}: the system testbench builds in "
                             f"its folder, whose path must have only the characters "
                             f"{PLAIN_RANGES}: {os.path.abspath(self.out)}")
        if self.out.exists() and not o.force:
            raise InputError(f"output folder {self.out} exists: pass --force to replace it")
        if self.out.exists() and not self.out.is_dir():
            raise InputError(f"output path {self.out} exists and is not a folder")

    @property
    def resolved(self) -> Options:
        """The options that regenerate this run's files without choosing anything again:
        the accumulator and K it was sized for, each layer's mode or decomposition as
        resolved (what ``--tasd auto`` chose), no ``run`` options (``config.json``)."""
        o, c = self.options.without_run_options(), self.config
        chosen = tuple(layer.label for layer in self.layers)
        changes = dict(acc_width=c.acc_width, max_k=c.max_k)
        if o.tasd:
            changes.update(tasd=chosen, max_error=None, tasd_terms=None)
        elif o.weights:
            changes.update(mode=chosen)
        return o.replace(**changes)

    def _per_beat(self, config, mode: int) -> int:
        return config.groups_per_beat(mode)

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
            unit = self.modes.mode(mode).group_size * self._per_beat(self._base, mode)
            total += -(-layer.k // unit) * unit
        return total

    def _random_tasd_layers(self, base, o) -> list[Layer]:
        """One random GEMM per ``--tasd``, W uniform over the whole value range and not
        projected onto any mode (seeds ``seed + i``): what TASD is for."""
        layers = []
        for i, _ in enumerate(o.tasd):
            m, k, n = o.shape or (2 * o.rows, 8 * self.modes.max_group_size, 2 * o.cols)
            lo, hi = hss.value_range(base.width, base.signed)
            rng = np.random.default_rng(o.seed + i)
            W = rng.integers(lo, hi, (m, k), endpoint=True, dtype=np.int64)
            A = rng.integers(lo, hi, (k, n), endpoint=True, dtype=np.int64)
            layers.append(Layer(W, A, 0, self.modes.mode(0),
                                {"random_seed": o.seed + i, "shape": [m, k, n]}))
        return layers

    def _decomposed(self, base, i: int, layer: Layer, o) -> Layer:
        """The layer as the TASD decomposition ``--tasd`` names (or ``auto`` chooses)."""
        spec = o.tasd[i if len(o.tasd) > 1 else 0]
        macs = base.macs
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", hss.PaddingWarning)
                choice = None
                if spec.strip() == "auto":
                    choice = hss.tasd.explain_choice(
                        layer.W, hss.tasd.candidates(self.modes, o.tasd_terms or 2),
                        DEFAULT_MAX_ERROR if o.max_error is None else o.max_error, macs)
                    result = choice.result
                else:
                    result = hss.decompose(layer.W, hss.Decomposition.parse(spec))
                term_modes = self._term_modes(result.decomposition)
        except hss.HSSError as e:
            raise InputError(f"layer {i}: --tasd {spec!r}: {e}") from None
        source = dict(layer.source, tasd=spec.strip())
        if spec.strip() == "auto":
            source.update(max_error=DEFAULT_MAX_ERROR if o.max_error is None
                          else o.max_error, tasd_terms=o.tasd_terms or 2)
        return Layer(layer.W, layer.A, term_modes[0], self.modes.mode(term_modes[0]), source,
                     result, term_modes, choice=choice)

    def _term_modes(self, d: hss.Decomposition) -> tuple[int, ...]:
        modes = []
        for t, p in enumerate(d.terms, 1):
            if p not in self.modes:
                raise hss.TASDError(f"term {t} {p} is not a mode of this build "
                                    f"({self.modes})")
            modes.append(self.modes.index(p))
        return tuple(modes)

    def _random_layers(self, base, o) -> list[Layer]:
        """One random GEMM per mode (or per ``--mode``), W projected onto the mode (seeds
        ``seed + mode``)."""
        layers = []
        chosen = [self.modes.index(text) for text in o.mode] if o.mode else \
            range(len(self.modes))
        for mode in chosen:
            pattern = self.modes.mode(mode)
            m, k, n = o.shape or (2 * o.rows, 8 * pattern.group_size, 2 * o.cols)
            _check_size(base, [(m, k, n, pattern, self._per_beat(base, mode))])
            W, A = random_operands(base, m, k, n, o.seed + mode, pattern=pattern,
                                   shared_rows=self._shared_rows)
            layers.append(Layer(W, A, mode, pattern, {"random_seed": o.seed + mode,
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
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", hss.PaddingWarning)
                pruned = hss.decompose(W, pattern, pruner=self._pruner)
            return Layer(pruned.terms[0], A, mode, pattern, source, pruned=pruned)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", hss.PaddingWarning)
            _conforms_or_advise(W, pattern, self._shared_rows)
        return Layer(W, A, mode, pattern, source)

    @property
    def _pruner(self):
        """``--prune``'s projection: ``hss.prune``, or rows sharing rank 1 (``--fetch``)."""
        rows = self._shared_rows
        return None if rows is None else (lambda W, p: prune_for(W, p, rows))

    def _fastest_conforming(self, W) -> int:
        """The mode with the fewest steps per group's worth of K among those W conforms
        to; a fixed build's only mode is checked (and named) as before."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", hss.PaddingWarning)
            fits = [m for m, p in enumerate(self.modes.modes) if hss.conforms(W, p)]
            if not fits:
                densest = max(range(len(self.modes)),
                              key=lambda m: self.modes.mode(m).density)
                _conforms_or_advise(W, self.modes.mode(densest))    # names the offender
        return min(fits, key=lambda m: (self.modes.mode(m).density, m))

    def vectors(self) -> list:
        """Each layer's GEMM as beats for the array (``hdl.stimulus.segment_vectors``): a
        layer is one segment in its mode, a TASD layer one segment per term; the testbench
        and the board's self-test run these."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", hss.PaddingWarning)
            return [segment_vectors(self.config, layer.segments, layer.A)
                    for layer in self.layers]

    def default_name(self) -> str:
        """``build/<config name>`` for a default run; a run whose options change what is
        written gets a suffix hashed from them (``Options.name_options``), so that two such
        runs never share a folder."""
        options = self.options.name_options()
        if not options:
            return self.config.name
        digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()
        return f"{self.config.name}-{digest[:8]}"
