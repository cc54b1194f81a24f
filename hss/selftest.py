"""The golden line of the on-board self-test (``hdl.selftest``): what its UART must print.

Pure NumPy, so that the message is predicted without the hardware: the self-test compares
the tiles it computes with the expected tiles in its ROM and reports the first mismatch in
tile order, row-major within a tile, or the cycles of the whole run when all match. A run
that is not over after its cycle limit (a hung accelerator) prints ``timeout_line``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["PASS_LINE", "FAIL_LINE", "TIMEOUT_LINE", "selftest_line", "timeout_line"]

#: The lines, as ``str.format`` templates (``hdl.selftest`` prints the same templates).
PASS_LINE = "PASS cycles={cycles}\r\n"
FAIL_LINE = "FAIL tile={tile} row={row} col={col} exp={exp} got={got}\r\n"
TIMEOUT_LINE = "FAIL timeout cycles={cycles}\r\n"


def selftest_line(expected, computed, cycles: int) -> str:
    """The line for ``expected`` and ``computed`` tiles, each (tiles, rows, cols) integers:
    ``FAIL`` naming the first element that differs, else ``PASS`` with ``cycles``."""
    expected, computed = np.asarray(expected), np.asarray(computed)
    if expected.ndim != 3 or expected.shape != computed.shape:
        raise ValueError(f"expected and computed tiles must have one (tiles, rows, cols) "
                         f"shape, not {expected.shape} and {computed.shape}")
    if not isinstance(cycles, (int, np.integer)) or cycles < 0:
        raise ValueError(f"cycles must be a non-negative integer, not {cycles!r}")
    differ = np.argwhere(expected != computed)      # row-major: tile, row, col
    if len(differ) == 0:
        return PASS_LINE.format(cycles=int(cycles))
    t, r, c = (int(x) for x in differ[0])
    return FAIL_LINE.format(tile=t, row=r, col=c, exp=int(expected[t, r, c]),
                            got=int(computed[t, r, c]))


def timeout_line(cycles: int) -> str:
    """The line of a run still going after its limit of ``cycles``: no tile verdict, as the
    tiles did not all arrive, but the count it gave up at."""
    if not isinstance(cycles, (int, np.integer)) or isinstance(cycles, bool) or cycles < 1:
        raise ValueError(f"cycles must be a positive integer, not {cycles!r}")
    return TIMEOUT_LINE.format(cycles=int(cycles))
