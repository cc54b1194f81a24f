"""``hss.beats`` (the host's packer, from the manifest alone) against ``hdl.stimulus`` (the
packer of the simulations, from the Amaranth layouts): the same integers for every kind of
build, mode, segment list and shape, zipped in hss_system's loop order."""
import gc
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import UnusedElaboratable

import hss
from gen.emit import TOP, manifest, ports
from hdl import accelerator_for
from hdl.config import build_config
from hdl.stimulus import segment_vectors, unpack_tiles
from hss.beats import ManifestError, StreamFormat
from simkit import activations, quiet_padding, weights

GOLDEN = Path(__file__).resolve().parent / "golden"
HIGHLIGHT = "4:4|4:5|4:6|4:7,4:4|2:4|1:4"


def manifest_of(config) -> dict:
    """The manifest the generator writes for ``config``, as JSON reads it back."""
    with warnings.catch_warnings():  # the top is built for its ports, never elaborated
        warnings.simplefilter("ignore", UnusedElaboratable)
        m = manifest(config, {TOP: ports(accelerator_for(config))}, {})
        gc.collect()
    return json.loads(json.dumps(m))


def fmt_and_config(modes, **kw):
    config = build_config(modes, **kw)
    return StreamFormat.from_manifest(manifest_of(config)), config


def check_layer(fmt, config, segments, A):
    """pack_layer's beats, zipped for nt: for mt: for b, are stimulus's per-tile pairs."""
    with quiet_padding():
        want = segment_vectors(config, segments, A)
        got = fmt.pack_layer(segments, A)
    bpt = got.beats_per_tile
    assert want.tiles == got.m_tiles * got.n_tiles and want.beats == want.tiles * bpt
    assert got.steps_per_tile == want.steps_per_tile
    for nt, mt, b, w, a in got.beat_pairs():
        t = mt * got.n_tiles + nt                        # stimulus: row-tile major
        assert (w, a) == (want.weight_beats[t * bpt + b], want.act_beats[t * bpt + b]), \
            (nt, mt, b)
    return got, want


def random_segments(rng, fmt, modes, m, k, width, signed):
    return [(weights(rng, fmt.modes.mode(mode), m, k, width, signed), mode) for mode in modes]


@pytest.mark.parametrize("pattern, rows, cols, width, signed", [
    ("2:4", 2, 2, 8, True),
    ("4:6,2:4", 4, 4, 8, True),
    ("2:3,3:4,2:4", 2, 3, 5, False),          # three ranks
    ("8:8", 1, 2, 16, True),                  # dense: no offsets at all
    ("1:2", 3, 1, 2, True),                   # the narrowest values
    ("4:4,1:3", 2, 2, 16, False),             # a dense outer rank
])
def test_fixed_builds(pattern, rows, cols, width, signed):
    fmt, config = fmt_and_config(pattern, rows=rows, cols=cols, width=width, signed=signed)
    assert not fmt.flexible
    rng = np.random.default_rng(len(pattern) + width)
    s = fmt.modes.mode(0).group_size
    for m, k, n, terms in [(rows, s, cols, 1), (2 * rows + 1, 3 * s + 1, 2 * cols + 1, 1),
                           (rows + 1, 2 * s - 1, cols + 2, 3), (1, 1, 1, 2)]:
        segments = random_segments(rng, fmt, [0] * terms, m, k, width, signed)
        got, want = check_layer(fmt, config, segments,
                                activations(rng, k, n, width, signed))
        assert got.beats_per_tile == terms * -(-k // s) == fmt.beats_per_tile([0] * terms, k)
        assert got.mode_mask == 1


@pytest.mark.parametrize("rows, cols, width, signed, macs", [
    (2, 2, 8, True, None), (1, 3, 4, False, 16), (2, 1, 12, True, 4)])
def test_highlight_every_mode(rows, cols, width, signed, macs):
    fmt, config = fmt_and_config(HIGHLIGHT, rows=rows, cols=cols, width=width, signed=signed,
                                 macs=macs)
    assert fmt.flexible and len(fmt.modes) == 12
    rng = np.random.default_rng(rows * 10 + cols)
    for mode in range(12):
        s = fmt.modes.mode(mode).group_size
        m, k, n = 2 * rows + 1, 2 * s + 3, cols + 1
        got, _ = check_layer(fmt, config, random_segments(rng, fmt, [mode], m, k, width, signed),
                             activations(rng, k, n, width, signed))
        assert got.modes == (mode,) * fmt.segment_beats(mode, k) and got.mode_mask == 1 << mode


@pytest.mark.parametrize("modes, macs", [
    ("2:2|2:3,2:4|4:4,1:2|2:2", None),     # three ranks
    ("2:4|4:4", None),                      # outermost G differs: T = 1
    ("8:8|8:12|8:16|8:24", None),           # one rank, H varies
    ("4:6,2:4", 4),                         # one mode on other multipliers: flexible RTL
])
def test_other_flexible_builds(modes, macs):
    fmt, config = fmt_and_config(modes, rows=2, cols=2, width=6, signed=False, macs=macs)
    assert fmt.flexible
    rng = np.random.default_rng(3)
    for mode in range(len(fmt.modes)):
        k = fmt.modes.mode(mode).group_size * 2 + 1
        check_layer(fmt, config, random_segments(rng, fmt, [mode], 3, k, 6, False),
                    activations(rng, k, 3, 6, False))


def test_tasd_segments_of_different_modes():
    """``hss.tasd.decompose`` terms, each its own mode, summed in one tile."""
    fmt, config = fmt_and_config(HIGHLIGHT, rows=2, cols=2)
    rng = np.random.default_rng(5)
    for text, (m, k, n) in [("4:6,2:4+4:7,1:4", (3, 50, 5)), ("4:4,2:4+4:5,1:4+4:7,4:4",
                                                              (4, 33, 2))]:
        W = rng.integers(-128, 128, (m, k))
        result = hss.decompose(W, text)
        segments = [(term, fmt.modes.index(p)) for term, p
                    in zip(result.terms, result.decomposition.terms)]
        A = rng.integers(-128, 128, (k, n))
        got, want = check_layer(fmt, config, segments, A)
        assert got.beats_per_tile == fmt.beats_per_tile([mode for _, mode in segments], k)
        assert len(set(got.modes)) == len(segments)


@pytest.mark.parametrize("width", [2, 3, 7, 9, 16])
@pytest.mark.parametrize("signed", [True, False])
def test_widths_and_signedness(width, signed):
    fmt, config = fmt_and_config("4:4|4:6,2:4|1:4", rows=2, cols=2, width=width,
                                 signed=signed)
    rng = np.random.default_rng(width)
    segments = random_segments(rng, fmt, [1, 3, 0], 3, 29, width, signed)
    check_layer(fmt, config, segments, activations(rng, 29, 3, width, signed))


def test_golden_manifests_read():
    """The manifests the generator writes today, as files: every build of sim_tests/golden."""
    for path in sorted(GOLDEN.glob("*/rtl/manifest.json")):
        fmt = StreamFormat.from_manifest(path)
        assert fmt.weight_beat_bits > 0 and fmt.tile_beats >= 1, path


def test_highlight_golden_manifest_packs_like_its_config():
    fmt = StreamFormat.from_manifest(GOLDEN / "highlight_2x2" / "rtl" / "manifest.json")
    config = build_config(HIGHLIGHT, rows=2, cols=2)
    rng = np.random.default_rng(2)
    check_layer(fmt, config, random_segments(rng, fmt, [7, 11], 3, 40, 8, True),
                activations(rng, 40, 3, 8, True))


# ---- tiles ---------------------------------------------------------------------------------

@pytest.mark.parametrize("modes, kw", [
    ("2:4", dict(rows=2, cols=2)),
    ("2:4", dict(rows=4, cols=3, tile_rows=1)),
    (HIGHLIGHT, dict(rows=3, cols=2, signed=False, tile_rows=1)),
    ("4:6,2:4", dict(rows=2, cols=2, acc_width=70)),       # accumulators past int64
])
def test_unpack_tile_as_stimulus(modes, kw):
    fmt, config = fmt_and_config(modes, **kw)
    rng = np.random.default_rng(1)
    for _ in range(20):
        words = [int.from_bytes(rng.bytes(fmt.tile_beat_bits // 8 + 1), "little")
                 % (1 << fmt.tile_beat_bits) for _ in range(fmt.tile_beats)]
        over = words[0] >> (fmt.tile_beat_bits - 1 - (fmt.tile_beats > 1)) & 1
        if fmt.tile_beats > 1:      # a well-formed tile: one overflow, last on the end
            at = fmt.tile_beat_bits - 2
            words = [(w & ~(3 << at)) | (over << at) | (int(b == len(words) - 1) << (at + 1))
                     for b, w in enumerate(words)]
        if fmt.acc_width <= 63:
            (want_z, want_over), = unpack_tiles(config, words)
        else:           # past what hdl.stimulus holds (int64): the layout by hand
            want_z = np.array(hss.unpack_fields(words[0], fmt.acc_width, fmt.rows * fmt.cols,
                                                fmt.signed), object).reshape(fmt.rows, -1)
            want_over = bool(words[0] >> (fmt.rows * fmt.cols * fmt.acc_width) & 1)
        z, over_flag = fmt.unpack_tile(words if fmt.tile_beats > 1 else words[0])
        assert (np.asarray(z, object) == np.asarray(want_z, object)).all() and \
            over_flag == want_over
        assert fmt.pack_tile(z, over_flag) == words


def test_unpack_tile_refuses_what_is_not_a_tile():
    fmt, _ = fmt_and_config("2:4", rows=2, cols=1, tile_rows=1)
    at = fmt.tile_beat_bits - 2                           # overflow, then last
    with pytest.raises(hss.HSSError, match="a tile is 2 tiles beats, not 1"):
        fmt.unpack_tile([1 << (at + 1)])
    with pytest.raises(hss.HSSError, match="last flags"):
        fmt.unpack_tile([1 << (at + 1), 0])
    with pytest.raises(hss.HSSError, match="disagree on overflow"):
        fmt.unpack_tile([1 << at, 1 << (at + 1)])
    with pytest.raises(hss.HSSError, match=f"not a {fmt.tile_beat_bits}-bit"):
        fmt.unpack_tile([0, 1 << fmt.tile_beat_bits])


# ---- decoding and the engine's arithmetic ---------------------------------------------------

@pytest.mark.parametrize("modes", ["4:6,2:4", HIGHLIGHT, "2:2|2:3,2:4|4:4,1:2|2:2"])
def test_decoded_beats_compute_the_golden_z(modes):
    """Summing ``beat_product`` over a tile's beat pairs gives ``hss.matmul``'s Z."""
    fmt, config = fmt_and_config(modes, rows=2, cols=3)
    rng = np.random.default_rng(4)
    chosen = [0, len(fmt.modes) - 1, len(fmt.modes) // 2]
    segments = random_segments(rng, fmt, chosen, 3, 37, 8, True)
    A = activations(rng, 37, 4, 8, True)
    layer = fmt.pack_layer(segments, A)
    with quiet_padding():
        want = sum(hss.matmul(hss.compress(W, fmt.modes.mode(mode)), A) for W, mode in segments)
    z = np.zeros((layer.m_tiles * 2, layer.n_tiles * 3), np.int64)
    for nt, acts in enumerate(layer.act_tiles):
        for mt, beats in enumerate(layer.weight_tiles):
            ws, xs = fmt.decode_weights(beats), fmt.decode_activations(acts)
            assert [w.last for w in ws] == [False] * (len(ws) - 1) + [True]
            assert [w.mode for w in ws] == list(layer.modes)
            z[mt * 2:mt * 2 + 2, nt * 3:nt * 3 + 3] = sum(fmt.beat_product(w, x)
                                                          for w, x in zip(ws, xs))
    assert (z[:3, :4] == want).all() and not z[3:].any() and not z[:, 4:].any()


def test_wrap_is_the_accumulator():
    fmt, _ = fmt_and_config("2:4", rows=1, cols=1, acc_width=5)
    assert fmt.wrap([15, 16, -17, 31, 32]).tolist() == [15, -16, 15, -1, 0]
    ufmt, _ = fmt_and_config("2:4", rows=1, cols=1, acc_width=5, signed=False)
    assert ufmt.wrap([31, 32, 33]).tolist() == [31, 0, 1]


# ---- refusals ------------------------------------------------------------------------------

def test_bad_inputs_name_the_problem():
    fmt, _ = fmt_and_config(HIGHLIGHT, rows=2, cols=2)
    W, A = np.zeros((2, 16), np.int64), np.zeros((16, 2), np.int64)
    with pytest.raises(hss.HSSError, match="at least one segment"):
        fmt.pack_layer([], A)
    with pytest.raises(hss.HSSError, match="mode 12 is not a mode"):
        fmt.pack_layer([(W, 12)], A)
    with pytest.raises(hss.ModeSetError, match="not a mode"):
        fmt.pack_layer([(W, "2:4")], A)
    with pytest.raises(hss.HSSError, match="shapes do not chain"):
        fmt.pack_layer([(W, 0)], A[:15])
    with pytest.raises(hss.HSSError, match=r"A\[0, 0\] = 128 is outside"):
        fmt.pack_layer([(W, 0)], A + 128)
    with pytest.raises(hss.ConformanceError):
        fmt.pack_layer([(np.ones((2, 16), np.int64), 1)], A)
    with pytest.raises(hss.HSSError, match="W_2 is 3x16 but W_1 is 2x16"):
        fmt.pack_layer([(W, 0), (np.zeros((3, 16), np.int64), 0)], A)
    fixed, _ = fmt_and_config("2:4", rows=1, cols=1)
    with pytest.raises(hss.HSSError, match="mode 1 is not a mode of 2:4"):
        fixed.pack_layer([(W[:1, :4], 1)], A[:4])


def test_manifest_that_disagrees_is_refused():
    m = manifest_of(build_config("2:4", rows=2, cols=2))
    m["parameters"]["rows"] = 3
    with pytest.raises(ManifestError, match="weights payload.groups count is 2, the build's "
                                            "parameters say 3"):
        StreamFormat.from_manifest(m)
    del m["parameters"]
    with pytest.raises(ManifestError, match="no 'parameters'"):
        StreamFormat.from_manifest(m)
