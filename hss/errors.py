"""Input errors of the domain model. All are ValueErrors with a one-line message."""

__all__ = ["HSSError", "ConformanceError", "PaddingWarning"]


class HSSError(ValueError):
    """Bad input to the domain model (shape, dtype, range, pattern conformance)."""


class ConformanceError(HSSError):
    """A tensor holds more nonzeros than the pattern allows.

    Carries the first offending place: ``row``, ``group``, ``rank``, ``block`` (rank-r block
    index inside the group), ``count`` and ``allowed``.
    """

    def __init__(self, message, *, row, group, rank, block, count, allowed):
        super().__init__(message)
        self.row, self.group, self.rank, self.block = row, group, rank, block
        self.count, self.allowed = count, allowed


class PaddingWarning(UserWarning):
    """K was zero-padded to a multiple of the group size."""
