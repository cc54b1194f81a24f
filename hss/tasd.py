"""TASD: a tensor as a sum of structured terms, ``W ~ W_1 + W_2 + ...`` (shared/HSS.md).

After Jeong et al., "Abstracting Sparse DNN Acceleration via Structured Sparse Tensor
Decomposition" (arXiv 2403.07953). Each term conforms to an HSS pattern, so
``W @ A ~ sum_t W_t @ A`` runs on structured hardware unchanged: one segment per term, into
the same accumulators. A decomposition is written as patterns joined by ``+``
(``"4:6,2:4+2:4"``); terms count from 1, as ``W_1`` in the paper, also in messages.

Decomposition is greedy on the residual: ``W_1 = prune(W, P_1)``, ``W_t`` is ``prune`` of
what the earlier terms left. Since ``prune`` only zeroes entries, it follows (all tested):

- every nonzero of a term or of the residual is an entry of W, unchanged: the terms have
  disjoint supports, stay in W's value range, and ``sum(terms) + residual == W`` exactly;
- a one-term decomposition is plain pruning, and adding a term never increases the error;
- it is exact when W conforms to any one term (the residual reaching that term holds a subset
  of W's nonzeros, so it conforms and is kept whole), e.g. anything under ``2:4+2:4``;
- the order of terms matters, since term 1 takes the largest entries: on a dense block of 4,
  ``1:2+2:4`` is exact and ``2:4+1:2`` is not;
- a density sum reaching 1 does not make it exact: greedy terms need not split W the way a
  cover would (``4:6,2:4`` three times, see the tests).

K padding follows ``prune``: each term zero-pads K to its own group size S_t and cuts the
padding off again, silently (terms are M x K). ``compress``, hence ``TASDResult.compressed``
and ``matmul_decomposed``, warns for each padded term; ``cost`` counts padded groups whole,
as the hardware streams them.
"""
from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .compressed import HSSMatrix, compress
from .errors import HSSError
from .golden import matmul, max_products
from .modes import ModeSet
from .pattern import Pattern, PatternError
from .prune import prune
from .tensor import as_matrix

__all__ = ["TASDError", "Decomposition", "TASDResult", "decompose", "matmul_decomposed",
           "cost", "steps", "Choice", "explain_choice", "choose", "candidates"]

_EXAMPLE = "'4:6,2:4+2:4'"


class TASDError(HSSError):
    """A malformed decomposition, or no candidate meeting an error budget (one line).

    A ValueError, through HSSError.
    """


@dataclass(frozen=True)
class Decomposition:
    """Patterns whose terms sum to an approximation of W, term 1 first.

    Terms may have different patterns (ranks, group sizes). Order is significant: the
    decomposition is greedy, term 1 takes the largest entries. Strings are parsed.
    """
    terms: tuple[Pattern, ...]

    def __post_init__(self):
        terms = self.terms
        if not isinstance(terms, (tuple, list)):
            raise TASDError(f"terms must be a tuple of patterns, got {terms!r}")
        if not terms:
            raise TASDError("a decomposition needs at least one term")
        coerced = []
        for t, term in enumerate(terms, 1):
            if isinstance(term, str):
                term = _parse_term(term, t, term)
            if not isinstance(term, Pattern):
                raise TASDError(f"term {t}: {term!r} is not a Pattern or pattern string")
            coerced.append(term)
        object.__setattr__(self, "terms", tuple(coerced))

    # -- construction ---------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> Decomposition:
        """Parse ``"P_1+P_2+..."``, each an ordinary pattern string (whitespace tolerated)."""
        if not isinstance(text, str):
            raise TASDError(f"decomposition must be a string like {_EXAMPLE}, got {text!r}")
        if not text.strip():
            raise TASDError(f"empty decomposition {text!r}: expected patterns joined by '+' "
                            f"like {_EXAMPLE}")
        parts = text.split("+")
        terms = []
        for t, part in enumerate(parts, 1):
            if not part.strip():
                raise TASDError(f"term {t}: empty term in {text!r} (stray '+'?)")
            terms.append(_parse_term(part, t, text))
        return cls(tuple(terms))

    @classmethod
    def coerce(cls, decomposition: Decomposition | Pattern | str) -> Decomposition:
        """Accept a Decomposition, a Pattern (one term, i.e. pruning) or a string."""
        if isinstance(decomposition, Decomposition):
            return decomposition
        if isinstance(decomposition, Pattern):
            return cls((decomposition,))
        return cls.parse(decomposition)

    def __str__(self) -> str:
        return "+".join(str(p) for p in self.terms)

    def __len__(self) -> int:
        return len(self.terms)

    def __iter__(self):
        return iter(self.terms)

    def __add__(self, other):
        """Append terms: ``d + "1:4"`` decomposes like ``d``, then once more."""
        if not isinstance(other, (Decomposition, Pattern, str)):
            return NotImplemented
        return Decomposition(self.terms + Decomposition.coerce(other).terms)

    @property
    def density_bound(self) -> Fraction:
        """Largest fraction of every whole group the terms can hold: ``min(1, sum d_t)``.

        Each term holds at most ``d_t`` of a group, and their supports are disjoint; the cap
        is because together they cannot hold more than every entry (``2:4+2:4+2:4`` is 1,
        not 3/2). A W denser than this cannot be exact; a sparser one may still leave a
        residual (greedy, see the module docstring). The uncapped sum is ``cost / K`` (K a
        multiple of every group): what the hardware pays, whether or not the terms fill up.
        """
        return min(Fraction(1), sum((p.density for p in self.terms), Fraction(0)))


def _parse_term(part: str, t: int, text: str) -> Pattern:
    try:
        return Pattern.parse(part)
    except PatternError as e:
        raise TASDError(f"term {t} of {text!r}: {e}") from None


@dataclass(frozen=True, eq=False)
class TASDResult:
    """What ``decompose`` found: ``sum(terms) + residual == W`` exactly.

    ``terms[t]`` conforms to ``decomposition.terms[t]``; arrays are int64 for integer W,
    float64 for float W. ``errors[t]`` is the relative Frobenius error
    ``||residual||_F / ||W||_F`` after terms ``0..t`` (0 for W == 0), non-increasing;
    ``max_abs_error`` is the largest ``|residual|``; ``nonzeros[t]`` counts term t's nonzeros.
    """
    decomposition: Decomposition
    terms: tuple[np.ndarray, ...]
    residual: np.ndarray
    errors: tuple[float, ...]
    max_abs_error: int | float
    nonzeros: tuple[int, ...]

    @property
    def error(self) -> float:
        """Relative Frobenius error of the whole decomposition."""
        return self.errors[-1]

    @property
    def exact(self) -> bool:
        return not self.residual.any()

    def approximation(self) -> np.ndarray:
        """``sum(terms)``, i.e. ``W - residual``."""
        return sum(self.terms[1:], self.terms[0].copy())

    def compressed(self) -> tuple[HSSMatrix, ...]:
        """Each term in its pattern's canonical compressed form (warns for padded K)."""
        return tuple(compress(term, p, f"W_{t}") for t, (term, p)
                     in enumerate(zip(self.terms, self.decomposition.terms), 1))


def decompose(W, decomposition: Decomposition | Pattern | str, *, pruner=None) -> TASDResult:
    """Greedy TASD of a 2-D W: term t is ``hss.prune`` of the residual the earlier terms left.

    Integer W gives int64 terms (uint64 beyond int64 is refused), float W float64 terms
    (finite values only). K not a multiple of a term's group is padded as ``prune`` does.
    ``pruner(residual, pattern)``: another projection than ``hss.prune`` (e.g. rows sharing
    rank 1, ``hss.fetch.prune_shared``); it must keep each entry whole or not at all.
    """
    d = Decomposition.coerce(decomposition)
    residual = _wide(as_matrix(W, "W"))
    norm = _frobenius(residual)
    terms, errors, nonzeros = [], [], []
    for p in d.terms:
        term = (pruner or prune)(residual, p)
        residual = residual - term          # exact: each entry is kept whole or not at all
        terms.append(term)
        nonzeros.append(int(np.count_nonzero(term)))
        errors.append(_frobenius(residual) / norm if norm else 0.0)
    return TASDResult(d, tuple(terms), residual, tuple(errors), _max_abs(residual),
                      tuple(nonzeros))


def _wide(W: np.ndarray) -> np.ndarray:
    """int64 or float64: sums of terms and products never overflow the storage dtype."""
    if W.dtype.kind == "f":
        bad = np.argwhere(~np.isfinite(W))
        if len(bad):
            where = [int(i) for i in bad[0]]
            raise TASDError(f"W{where} = {W[tuple(where)]} is not finite: errors would be "
                            f"undefined")
        return W.astype(np.float64)
    if W.dtype == np.uint64 and W.size and int(W.max()) > np.iinfo(np.int64).max:
        where = [int(i) for i in np.unravel_index(np.argmax(W), W.shape)]
        raise TASDError(f"W{where} = {int(W.max())} exceeds int64, the dtype of the terms")
    return W.astype(np.int64)


def _frobenius(x: np.ndarray) -> float:
    """In float64: integer squares would overflow int64 past 32-bit values."""
    x = x.astype(np.float64)
    return math.sqrt(float((x * x).sum()))


def _max_abs(x: np.ndarray) -> int | float:
    """Exact for integers (abs of the int64 minimum wraps in NumPy)."""
    if not x.size:
        return 0.0 if x.dtype.kind == "f" else 0
    if x.dtype.kind == "f":
        return float(np.abs(x).max())
    return max(int(x.max()), -int(x.min()))


def matmul_decomposed(terms: TASDResult | list[HSSMatrix] | tuple[HSSMatrix, ...], A) -> np.ndarray:
    """Golden decomposed GEMM: ``sum_t hss.matmul(compress(W_t, P_t), A)``.

    From the compressed terms only (a TASDResult is compressed first, warning for padded K),
    as the hardware accumulates one segment per term. ``A`` is K x N, K unpadded.
    Integers accumulate in int64.
    """
    compressed = terms.compressed() if isinstance(terms, TASDResult) else tuple(terms)
    if not compressed:
        raise TASDError("matmul_decomposed needs at least one term")
    for t, c in enumerate(compressed, 1):
        if not isinstance(c, HSSMatrix):
            raise TASDError(f"term {t} is a {type(c).__name__}, not an HSSMatrix: compress it "
                            f"with its pattern")
        if c.shape != compressed[0].shape:
            raise TASDError(f"term {t} is {c.shape[0]}x{c.shape[1]} but term 1 is "
                            f"{compressed[0].shape[0]}x{compressed[0].shape[1]}")
    out = matmul(compressed[0], A)
    for c in compressed[1:]:
        out = out + matmul(c, A)
    return out


# -- cost and choice -------------------------------------------------------------------------
def cost(decomposition: Decomposition | Pattern | str, k: int) -> int:
    """Values per row of W the hardware processes at ``K = k``: ``sum_t ceil(K/S_t) * prod(G_t)``.

    Every group of every term is streamed in full (padding and empty slots included), so
    this, not W's nonzeros, sets the work: with ``macs`` multipliers per PE all busy, cycles
    ~ ``cost / macs`` (``steps`` counts them exactly). It is also the number of products
    summed into one output: size the accumulator with ``accumulator_bits(b, s, cost(d, max_k))``.
    """
    d = Decomposition.coerce(decomposition)
    _check_positive(k, "k")
    return sum(max_products(p, k) for p in d.terms)


def steps(decomposition: Decomposition | Pattern | str, k: int, macs: int) -> int:
    """PE steps per row at ``K = k`` on ``macs`` multipliers: ``sum_t ceil(cost_t / macs)``.

    One segment per term, so each term rounds up on its own; this is
    ``LaneSchedule.ideal_steps`` summed over the terms when the modes fit the lanes, and at
    least ``ceil(cost / macs)``.
    """
    d = Decomposition.coerce(decomposition)
    _check_positive(k, "k")
    _check_positive(macs, "macs")
    return sum(-(-max_products(p, k) // macs) for p in d.terms)


@dataclass(frozen=True, eq=False)
class Choice:
    """What ``explain_choice`` chose and what it weighed it against.

    ``result`` is the choice and ``steps`` its PE steps per row; ``dense_steps`` is
    ``ceil(K / macs)``, the steps of the dense computation on the same multipliers.
    ``best_saving`` is the candidate with the lowest error among those that take fewer steps
    than dense (None when no candidate does), ``best_saving_steps`` its steps: what a larger
    error budget would buy when the choice saves nothing.
    """
    result: TASDResult
    steps: int
    dense_steps: int
    best_saving: TASDResult | None
    best_saving_steps: int | None

    @property
    def saves(self) -> bool:
        """The choice takes fewer steps than dense: it saves time."""
        return self.steps < self.dense_steps


def explain_choice(W, candidates: list, max_error: float, macs: int) -> Choice:
    """TASDER-style choice for one layer: the candidate with the fewest ``steps`` whose
    relative Frobenius error is at most ``max_error``; ties go to the lower error, then to
    the earlier candidate. Candidates are Decompositions (or their strings).

    Candidates are decomposed cheapest first, and none past the steps of the first fit, so
    every candidate cheaper than the choice is weighed (``Choice.best_saving``); when none
    fits, the TASDError names the best error reached and its candidate.
    """
    W = as_matrix(W, "W")
    if isinstance(candidates, (Decomposition, Pattern, str)):
        candidates = [candidates]                       # not its characters
    ds = [Decomposition.coerce(c) for c in candidates]
    if not ds:
        raise TASDError("choose needs at least one candidate decomposition")
    if (not isinstance(max_error, numbers.Real) or isinstance(max_error, bool)
            or not max_error >= 0):
        raise TASDError(f"max_error must be a number >= 0, got {max_error!r}")
    k = W.shape[1]
    _check_positive(macs, "macs")
    dense = -(-k // macs)
    cycles = [steps(d, k, macs) for d in ds]
    best = fit = saving = None                          # (error, index, result)
    for i in sorted(range(len(ds)), key=lambda i: (cycles[i], i)):
        if fit is not None and cycles[i] > cycles[fit[1]]:
            break
        result = decompose(W, ds[i])
        if best is None or result.error < best[0]:
            best = (result.error, i)
        if cycles[i] < dense and (saving is None or result.error < saving[0]):
            saving = (result.error, i, result)
        if result.error <= max_error and (fit is None or result.error < fit[0]):
            fit = (result.error, i, result)
    if fit is None:
        raise TASDError(f"no candidate reaches relative error <= {max_error:g} on the "
                        f"{W.shape[0]}x{k} W: the best of {len(ds)} is {best[0]:.4g} "
                        f"with {str(ds[best[1]])!r}")
    return Choice(fit[2], cycles[fit[1]], dense, saving and saving[2],
                  saving and cycles[saving[1]])


def choose(W, candidates: list, max_error: float, macs: int) -> TASDResult:
    """``explain_choice``'s choice: ``decompose``'s result for it (``result.decomposition``)."""
    return explain_choice(W, candidates, max_error, macs).result


def candidates(mode_patterns, max_terms: int = 2) -> tuple[Decomposition, ...]:
    """Every decomposition of 1 to ``max_terms`` terms drawn from a build's modes.

    ``mode_patterns`` is a ModeSet (or its string, or one Pattern) or an iterable of patterns;
    repeats are dropped. Order: fewer terms first, then ``itertools.product`` order over the
    patterns as given. Ordered sequences on purpose: greedy decomposition depends on the order
    of terms (``1:2+2:4`` differs from ``2:4+1:2``); a pattern may repeat (``2:4+2:4``).
    """
    _check_positive(max_terms, "max_terms")
    if isinstance(mode_patterns, (ModeSet, Pattern, str)):
        patterns = list(ModeSet.coerce(mode_patterns).modes)
    else:
        patterns = []
        for p in mode_patterns:
            p = Pattern.coerce(p)
            if p not in patterns:
                patterns.append(p)
    if not patterns:
        raise TASDError("candidates needs at least one pattern")
    return tuple(Decomposition(combo) for n in range(1, max_terms + 1)
                 for combo in itertools.product(patterns, repeat=n))


def _check_positive(value, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TASDError(f"{name} must be a positive integer, got {value!r}")
