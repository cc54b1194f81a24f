"""Hypothesis strategies shared by the tests of the domain model."""
from hypothesis import strategies as st

from hss import Pattern, Rank

__all__ = ["patterns"]


@st.composite
def patterns(draw, max_ranks=3, max_h=8):
    n = draw(st.integers(1, max_ranks))
    ranks = []
    for _ in range(n):
        h = draw(st.integers(1, max_h))
        ranks.append(Rank(draw(st.integers(1, h)), h))
    return Pattern(tuple(ranks))
