"""``--synth-cache DIR``: synthesis results keyed by what they depend on, shared by runs."""
import json

import pytest

from gen.synth_cache import cache_key, cached
from genkit import gen


def test_key_depends_on_the_verilog_flow_and_options_only():
    k = cache_key("synthesize_design", "module a; endmodule", {"targets": ["generic"]})
    assert k == cache_key("synthesize_design", "module a; endmodule", {"targets": ["generic"]})
    assert len({k, cache_key("synthesize_design", "module b; endmodule", {"targets": ["generic"]}),
                cache_key("synthesize_design", "module a; endmodule", {"targets": ["ecp5"]}),
                cache_key("synthesize_decompressor", "module a; endmodule",
                          {"targets": ["generic"]})}) == 4
    with pytest.raises(ValueError, match="flow"):
        cache_key("", "x", {})
    with pytest.raises(TypeError, match="Verilog text"):
        cache_key("f", b"x", {})


def test_cached_computes_once_and_returns_what_a_hit_returns(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"path": ("a", 1)}
    first, hit = cached(tmp_path, "k" * 64, compute)
    again, hit2 = cached(tmp_path, "k" * 64, compute)
    assert (hit, hit2, len(calls)) == (False, True, 1)
    assert first == again == {"path": ["a", 1]}
    assert [p.name for p in tmp_path.iterdir()] == ["k" * 64 + ".json"]   # no temporary left
    (tmp_path / ("k" * 64 + ".json")).write_text("{broken")
    with pytest.raises(OSError, match="unreadable"):
        cached(tmp_path, "k" * 64, compute)


def _run(tmp_path, name, ranks, cache, *extra):
    out = tmp_path / name
    r = gen("--ranks", ranks, "--rows", 1, "--cols", 1, "--sim", "none", "--target", "generic",
            "--synth-cache", cache, "--out", out, *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout, json.loads((out / "report.json").read_text())


def test_runs_share_synthesis_through_the_cache(tmp_path):
    """A re-run takes every result from the cache and reports the same; a 2:2 design with
    2:4's accumulator is 2:4's dense twin (same array and multipliers), so after 2:4 it is
    not synthesized again."""
    cache = tmp_path / "cache"
    out1, rep1 = _run(tmp_path, "a", "2:4", cache)
    assert "from the synthesis cache" not in out1
    out2, rep2 = _run(tmp_path, "b", "2:4", cache)
    assert "from the synthesis cache: decompressor, dense_twin, design" in out2
    assert rep2["area"] == rep1["area"]
    out3, rep3 = _run(tmp_path, "c", "2:2", cache, "--acc-width", 27)
    assert "from the synthesis cache: dense_twin, design" in out3
    assert rep3["area"]["design"] == rep1["area"]["dense_twin"]


def test_synth_cache_without_synthesis_is_refused(tmp_path):
    r = gen("--ranks", "2:4", "--no-synth", "--synth-cache", tmp_path, "--out", tmp_path / "o")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "--synth-cache" in r.stderr
