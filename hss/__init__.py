"""Hierarchical structured sparsity (HSS): the domain model in pure NumPy.

Patterns, the canonical compressed format, pruning, and the golden model of every
computation the hardware performs. See shared/HSS.md for the definitions.
"""
from .errors import ConformanceError, HSSError, PaddingWarning
from .pattern import Pattern, PatternError, Rank
from .modes import ModeSet, ModeSetError
from .tensor import check_range, dtype_for, value_range
from .compressed import (HSSMatrix, canonical_offsets, check_conforms, compress, conforms,
                         decompress, positions)
from .prune import prune
from .golden import (Step, accumulator_bits, decompress_group, matmul, max_products, select,
                     step)
from .packing import pack_fields, unpack_fields
from . import energy  # noqa: F401  (hss.energy without a second import)
from .tasd import Decomposition, TASDError, TASDResult, decompose, matmul_decomposed

__all__ = [
    "Pattern", "Rank", "PatternError", "ModeSet", "ModeSetError", "HSSError",
    "ConformanceError", "PaddingWarning",
    "HSSMatrix", "compress", "decompress", "conforms", "check_conforms", "positions",
    "canonical_offsets", "prune", "select", "Step", "step", "decompress_group", "matmul",
    "accumulator_bits", "max_products", "value_range", "check_range", "dtype_for",
    "pack_fields", "unpack_fields",
    "Decomposition", "TASDError", "TASDResult", "decompose", "matmul_decomposed",
]
