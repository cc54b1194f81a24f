"""hss.fetch: way (i)'s pruning and format, and every way's GEMM bit-exact with cost counts."""
import warnings

import numpy as np
import pytest

import hss
from hss import fetch as F

PATTERNS = ["4:6,2:4", "4:4,2:4", "2:3,1:2", "1:1,2:4"]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        yield


def _w(rng, m, k, pattern, rows, way):
    W = rng.integers(-128, 128, (m, k))
    return F.prune_shared(W, pattern, rows) if way == "shared" else hss.prune(W, pattern)


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("way", F.WAYS)
def test_every_way_is_bit_exact(pattern, way):
    rng = np.random.default_rng(1)
    for m, k, n, rows, cols in [(8, 48, 6, 4, 3), (10, 50, 7, 4, 3), (3, 5, 1, 2, 2)]:
        W = _w(rng, m, k, pattern, rows, way)
        A = rng.integers(-128, 128, (k, n))
        run = F.fetch_matmul(way, W, A, pattern, rows, cols)
        assert (run.Z == W @ A).all()
        assert run.steps == F.steps(m, k, n, pattern, rows, cols)


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("way", F.WAYS)
def test_counted_reads_match_the_analytic_cost(pattern, way):
    rng = np.random.default_rng(2)
    p = hss.Pattern.parse(pattern)
    W = _w(rng, 8, 3 * p.group_size, pattern, 4, way)
    run = F.fetch_matmul(way, W, rng.integers(-9, 9, (W.shape[1], 6)), pattern, 4, 3)
    assert run.reads_per_multiply == F.cost(way, pattern, 4, 3).reads_per_multiply


def test_cost_of_hss_4x4():
    c = {w: F.cost(w, "4:6,2:4", 4, 4) for w in F.WAYS}
    assert c["pe"].act_port == 4 * 24 and c["shared"].act_port == 4 * 16
    assert c["banked"].act_port == 4 * 4 * 16 and c["banked"].ports_per_bank == 4
    assert c["shared"].reads_per_multiply == c["pe"].reads_per_multiply * 4 / 6
    assert c["local"].local_bits == 24 * 8 and c["shared"].rank1_selectors == 1


def test_shared_pruning_conforms_and_rows1_is_per_row_hss():
    rng = np.random.default_rng(3)
    W = rng.standard_normal((12, 96))
    assert (F.prune_shared(W, "4:6,2:4", 1) == hss.prune(W, "4:6,2:4")).all()
    for rows in (2, 4, 5):
        Wp = F.prune_shared(W, "4:6,2:4", rows)
        assert F.conforms_shared(Wp, "4:6,2:4", rows) and hss.conforms(Wp, "4:6,2:4")
        assert (F.prune_shared(Wp, "4:6,2:4", rows) == Wp).all()   # a projection
        assert (F.decompress_shared(F.compress_shared(Wp, "4:6,2:4", rows)) == Wp).all()


def test_shared_costs_accuracy_and_error_is_reported():
    rng = np.random.default_rng(4)
    W, A = rng.standard_normal((16, 96)), rng.standard_normal((96, 5))
    e = F.pruning_error(W, "4:6,2:4", 4, A)
    assert e["shared_w_error"] >= e["per_row_w_error"] > 0
    assert 0 < e["shared_z_error"] < 2


def test_edge_cases():
    z = np.zeros((4, 24), np.int64)
    s = F.compress_shared(z, "4:6,2:4", 4)
    assert (s.tile_offsets == [0, 1, 2, 3]).all() and not s.values.any()
    assert not F.fetch_matmul("shared", z, np.ones((24, 2), np.int64), "4:6,2:4", 4, 2).Z.any()


def test_conformance_errors_name_the_tile():
    W = np.zeros((4, 24), np.int64)
    for row, block in enumerate([0, 1, 2, 3]):
        W[row, block * 4] = 1
    W[0, 20] = 1                                     # a fifth block in the tile
    assert hss.conforms(W, "4:6,2:4") and not F.conforms_shared(W, "4:6,2:4", 4)
    with pytest.raises(hss.ConformanceError, match="rows 0..3, group 0"):
        F.compress_shared(W, "4:6,2:4", 4)
    with pytest.raises(hss.ConformanceError, match="rank 0"):
        F.compress_shared(np.ones((1, 24), np.int64), "4:6,2:4", 1)


def test_bad_inputs():
    with pytest.raises(hss.HSSError, match="two-rank"):
        F.prune_shared(np.ones((2, 8)), "2:4", 2)
    with pytest.raises(hss.HSSError, match="rows"):
        F.prune_shared(np.ones((2, 8)), "2:2,2:4", 0)
    with pytest.raises(hss.HSSError, match="way"):
        F.cost("nope", "4:6,2:4", 4, 4)
