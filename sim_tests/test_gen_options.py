"""``gen.options.Options``: one typed object for every option of ``python -m gen``, its
command line, its JSON (what config.json holds), and every place that builds runs from it."""
import dataclasses
import json
import shlex
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

from gen import fusesoc_generator
from gen.inputs import InputError
from gen.options import GROUPS, Options, build_parser
from gen.plan import Plan
from genkit import gen

FIELDS = {f.name: f for f in dataclasses.fields(Options)}


@st.composite
def options(draw):
    """Valid options, every field drawn (run options too)."""
    weights = draw(st.lists(st.sampled_from(["W.npy", "w b.npy", "W2.npy"]), max_size=2))
    tasd = draw(st.lists(st.sampled_from(["auto", "4:6,2:4+2:4", "2:4"]), max_size=1)) \
        if len(weights) < 2 else []
    auto = "auto" in tasd
    sim = draw(st.sampled_from(["verilator", "icarus", "none"]))
    synth = draw(st.booleans())
    return Options(
        ranks=draw(st.sampled_from(["4:6,2:4", "2:4", "4:4|4:6,2:4|1:4"])),
        macs=draw(st.none() | st.integers(1, 64)), rows=draw(st.integers(1, 64)),
        cols=draw(st.integers(1, 64)), width=draw(st.integers(2, 32)),
        tile_rows=draw(st.none() | st.integers(1, 8)), signed=draw(st.booleans()),
        acc_width=draw(st.none() | st.integers(2, 128)),
        max_k=draw(st.none() | st.integers(1, 1 << 20)),
        shape=None if weights else draw(st.none() | st.tuples(*[st.integers(1, 999)] * 3)),
        out=draw(st.none() | st.sampled_from(["o", "build/x y"])),
        seed=draw(st.integers(0, 1 << 40)), weights=tuple(weights),
        activations=tuple("A.npy" for _ in weights),
        mode=() if tasd else tuple(draw(st.lists(st.sampled_from(["4:6,2:4", "2:4"]),
                                                 max_size=1))),
        prune=bool(weights) and not tasd and draw(st.booleans()), tasd=tuple(tasd),
        max_error=draw(st.none() | st.floats(0, 1)) if auto else None,
        tasd_terms=draw(st.none() | st.integers(1, 3)) if auto else None,
        energy_table=draw(st.none() | st.just("t.json")), sim=sim, synth=synth,
        target=draw(st.sampled_from([("generic", "ecp5"), ("ice40",), ("ecp5", "generic")])),
        fmax=draw(st.booleans()), board=draw(st.none() | st.just("ulx3s-85f")),
        force=draw(st.booleans()),
        stalls=None if sim == "none" else draw(st.none() | st.integers(0, 2**32 - 1)),
        trace=sim != "none" and draw(st.booleans()), jobs=draw(st.none() | st.integers(1, 9)),
        synth_timeout=draw(st.sampled_from([3600.0, 0.5, 12.0])), pnr_timeout=1800.0,
        sim_timeout=draw(st.sampled_from([3600.0, 60.0])),
        progress_interval=draw(st.sampled_from([30.0, 0.0, 2.5])),
        synth_cache=draw(st.none() | st.just("cache")) if synth else None)


@given(options())
def test_command_line_round_trip(o):
    """``to_argv`` is an equivalent command: parsing it gives the same options back."""
    assert Options.from_argv(o.to_argv()) == o
    assert Options.from_argv(shlex.split(o.command())[3:]) == o


@given(options())
def test_json_round_trip(o):
    text = json.dumps(o.to_json())
    assert Options.from_json(json.loads(text)) == o


def test_defaults_give_the_shortest_command():
    assert Options(ranks="4:6,2:4").to_argv() == ["--ranks", "4:6,2:4"]
    o = Options.from_argv(["--ranks", "2:4", "--unsigned", "--no-synth", "--target",
                           "generic", "--stalls", "0x10", "--weights", "a", "--activations",
                           "b", "--weights", "c", "--activations", "d", "--shape", "1,2,3"]
                          [:-2])
    assert o.to_argv() == ["--ranks", "2:4", "--unsigned", "--weights", "a", "--weights", "c",
                           "--activations", "b", "--activations", "d", "--no-synth",
                           "--target", "generic", "--stalls", "16"]


def test_every_field_is_an_option_with_its_default_in_the_help():
    """One argument per field, each help text stating the default (a flag that is off by
    default says what it turns on)."""
    parser = build_parser()
    by_dest = {}
    for action in parser._actions:
        if action.dest != "help":
            by_dest.setdefault(action.dest, []).append(action)
    assert set(by_dest) == set(FIELDS)
    for name, f in FIELDS.items():
        assert f.metadata["group"] in GROUPS
        text = " ".join(a.help for a in by_dest[name])
        if name != "ranks" and (f.type != "bool" or f.default is True):    # ranks: required
            assert "default" in text, name


@pytest.mark.parametrize("data, message", [
    ({"ranks": "2:4", "rowz": 2}, "unknown option 'rowz'"),
    ({"ranks": "2:4", "rows": "4"}, "--rows must be an int"),
    ({"ranks": "2:4", "rows": True}, "--rows must be an int"),
    ({"ranks": "2:4", "signed": 1}, "--signed must be true or false"),
    ({"ranks": "2:4", "mode": "2:4"}, "--mode must be a list"),
    ({"ranks": "2:4", "shape": [1, 2]}, "--shape must be M,K,N"),
    ({"ranks": "2:4", "target": ["xilinx"]}, "--target 'xilinx'"),
    ({"ranks": "2:4", "sim": "modelsim"}, "--sim 'modelsim'"),
    ({"ranks": "2:4", "board": "de10"}, "--board 'de10'"),
    ({"rows": 2}, "the following arguments are required: --ranks"),
    ({"ranks": "2:4", "trace": True, "sim": "none"}, "--trace dumps"),
    ({"ranks": "2:4", "stalls": 1 << 32}, "--stalls must be between 0 and 2**32-1"),
])
def test_bad_json_options_are_one_line(data, message):
    with pytest.raises(InputError, match=None) as e:
        Options.from_json(data)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_options_are_frozen_and_typed():
    o = Options.from_argv(["--ranks", "2:4", "--synth-timeout", "10", "--shape", "1,2,3"])
    assert o.synth_timeout == 10.0 and isinstance(o.synth_timeout, float)
    assert o.shape == (1, 2, 3) and o.target == ("generic", "ecp5")
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.rows = 3


def test_name_hash_covers_every_option_that_changes_the_output(tmp_path):
    """Every field but the config's own name and the run options enters the folder name's
    hash: a new option is covered without a list to update (this test then names it)."""
    np.save(tmp_path / "W.npy", np.zeros((1, 4), np.int8))
    table = tmp_path / "t.json"
    table.write_text("{}")
    w, a = (str(tmp_path / "W.npy"),), (str(tmp_path / "W.npy"),)
    changed = {  # field: (its new value, other options it needs)
        "tile_rows": (1, {}), "acc_width": (30, {}), "max_k": (64, {}), "shape": ((1, 2, 3), {}),
        "seed": (1, {}), "weights": (w, {"activations": a}), "activations": (a, {"weights": w}),
        "mode": (("2:4",), {}), "prune": (True, {"weights": w, "activations": a}),
        "tasd": (("2:4",), {}), "max_error": (0.5, {"tasd": ("auto",)}),
        "tasd_terms": (1, {"tasd": ("auto",)}), "energy_table": (str(table), {}),
        "sim": ("icarus", {}), "synth": (False, {}), "target": (("ice40",), {}),
        "fmax": (True, {}), "board": ("ulx3s-85f", {}), "stalls": (3, {}), "trace": (True, {}),
        "dma_bits": (64, {}), "wbuf_kib": (4, {}), "abuf_kib": (4, {}), "qbuf_rows": (64, {}),
        "obuf_tiles": (3, {}), "requant": (False, {}), "system": (False, {}),
        "testbench": ("engine", {}), "dram_latency": (20, {}), "fetch": ("shared", {})}
    hashed = {name for name, f in FIELDS.items() if f.metadata["group"] != "run"
              and name not in ("ranks", "macs", "rows", "cols", "width", "signed")}
    assert set(changed) == hashed
    for name, (value, needs) in changed.items():
        new = Options(ranks="2:4", **needs, **{name: value})
        assert ("targets" if name == "target" else name) in new.name_options(), name
    o = Options(ranks="2:4")
    assert o.name_options() == {} and o.replace(out="x", jobs=3, rows=2).name_options() == {}


def test_resolved_options_regenerate_the_folder(tmp_path, monkeypatch):
    """config.json holds the resolved options; its command rebuilds the same RTL and
    testbench without choosing again (``--tasd auto`` and the weights' mode resolved)."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(3)
    np.save("W.npy", rng.integers(-8, 8, (2, 48)))
    np.save("A.npy", rng.integers(-8, 8, (48, 2)))
    first = ["--ranks", "4:4|4:6,4:4|2:4", "--rows", "2", "--cols", "2", "--weights", "W.npy",
             "--activations", "A.npy", "--tasd", "auto", "--max-error", "0.4", "--sim", "none",
             "--no-synth", "--out", "a"]
    assert gen(*first).returncode == 0
    config = json.loads(Path("a/config.json").read_text())
    resolved = Options.from_json(config["options"])
    assert "auto" not in resolved.tasd and resolved.max_error is None
    assert resolved.out is None and config["command"] == resolved.command()
    again = shlex.split(config["command"])[3:] + ["--out", "b"]
    assert gen(*again).returncode == 0
    for rel in ("rtl/hss_accelerator.v", "rtl/hss_system.v", "tb/system/sys_tb.sv",
                "tb/system/dram.hex", "tb/system/program.hex", "tb/system/Makefile"):
        assert Path("a", rel).read_bytes() == Path("b", rel).read_bytes(), rel
    assert json.loads(Path("b/config.json").read_text())["options"] == config["options"]
    plan = Plan(Options.from_argv(first[:-2]))
    assert plan.resolved == resolved and plan.options.tasd == ("auto",)


def test_fusesoc_generator_takes_every_design_and_workload_option():
    """An option added to Options is a generator parameter at once, typed as the option."""
    assert set(fusesoc_generator.PARAMETERS) == set(Options.kinds("design", "workload")) | {
        "testbench"}
    o = fusesoc_generator.generator_options({"ranks": "2:4", "tile_rows": 1, "rows": 2,
                                             "mode": ["2:4"], "shape": "4,8,4"})
    assert (o.tile_rows, o.mode, o.shape, o.sim, o.synth, o.out) == (
        1, ("2:4",), (4, 8, 4), "none", False, fusesoc_generator.OUT)
