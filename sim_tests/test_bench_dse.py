"""``python -m bench dse``: a 4-point sweep on a local Dask cluster (1x1 arrays, no synthesis)
with one point gen refuses, the cache that makes a re-run free, and the spec's eager checks."""
from __future__ import annotations

import csv
import json

import pytest

from bench import cli, dse

SPEC = {"ranks": ["2:4", "4:4", "4:4|2:4"], "arrays": ["1x1"], "macs": ["auto", 3]}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """Run the sweep once, then again with the work folder gone: the second run must take
    every row from the cache and start no gen (nor a cluster)."""
    root = tmp_path_factory.mktemp("dse")
    spec = dse.check_spec(dict(SPEC))
    first = dse.sweep(spec, root / "out", workers=2, work=root / "work")
    first_csv = (root / "out" / "dse.csv").read_text()
    for log in (root / "work").rglob("gen.log"):
        log.unlink()
    second = dse.sweep(spec, root / "out", workers=2, work=root / "work")
    return root, first, second, first_csv


def test_rows(swept):
    root, first, _, _ = swept
    assert (first["total"], first["ran"], first["cached"], first["failed"]) == (4, 4, 0, 1)
    ok = {(r["pattern"], r["macs"]): r for r in first["rows"] if r["status"] == "ok"}
    assert set(ok) == {("2:4", 2), ("4:4", 4), ("4:4|2:4", 4)}
    assert (ok[("2:4", 2)]["density_min"], ok[("4:4|2:4", 4)]["modes"]) == ("1/2", 2)
    assert ok[("4:4|2:4", 4)]["density_max"] == "1"
    dense = ok[("4:4", 4)]
    assert dense["energy_ratio"] == pytest.approx(1.0) and dense["edp_ratio"] == pytest.approx(1)
    assert ok[("2:4", 2)]["edp_ratio"] < 1
    for r in ok.values():
        assert r["cycles"] >= r["ideal_steps"] > 0 and r["nand2_eq"] is None
    # sorted by config, not by finish order
    assert [r["point"]["ranks"] for r in first["rows"]] == ["2:4", "4:4", "4:4|2:4", "4:4|2:4"]
    with open(root / "out" / "dse.csv") as f:
        table = list(csv.DictReader(f))
    assert [t["pattern / mode set"] for t in table] == ["2:4", "4:4", "4:4|2:4", "4:4|2:4"]
    for name in ("dse.md", "dse.png"):
        assert (root / "out" / name).stat().st_size > 0
    lines = (root / "out" / "dse.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(x)["hash"] for x in lines)


def test_failed_point_recorded_with_log(swept):
    root, first, _, _ = swept
    (bad,) = [r for r in first["rows"] if r["status"] != "ok"]
    assert bad["point"]["macs"] == 3 and "refused its input" in bad["error"]
    assert "neither divides nor is a multiple of 3" in bad["error"]
    log = root / "out" / "dse-cache" / f"{bad['hash']}.log"
    assert str(log).endswith(bad["log"]) and "gen: error" in log.read_text()


def test_rerun_takes_every_row_from_cache(swept):
    root, first, second, first_csv = swept
    assert (second["ran"], second["cached"], second["failed"]) == (0, 4, 1)
    assert not list((root / "work").rglob("gen.log")), "the re-run must not run gen"
    assert (root / "out" / "dse.csv").read_text() == first_csv
    assert len(list((root / "out" / "dse-cache").glob("*.json"))) == 4


def test_points_and_hash():
    pts = dse.points(dse.check_spec(dict(SPEC)))
    assert len(pts) == 4                       # macs does not multiply single patterns
    assert [p["macs"] for p in pts] == [None, None, None, 3]
    h = dse.point_hash(pts[0], "v")
    assert h == dse.point_hash(dict(reversed(pts[0].items())), "v")
    assert h != dse.point_hash(pts[0], "w") != dse.point_hash(pts[1], "v")
    options = dse.gen_options(pts[3])
    assert (options.macs, options.synth, options.jobs) == (3, False, 1)
    assert type(options).from_argv(options.to_argv()) == options


@pytest.mark.parametrize("spec, message", [
    ({}, "missing key 'ranks'"),
    ({"ranks": ["4:6,2:4"], "array": ["2x2"]}, "unknown key 'array'"),
    ({"ranks": []}, "ranks = []: must be a non-empty"),
    ({"ranks": ["4:6,2:5x"]}, "ranks: '4:6,2:5x'"),
    ({"ranks": ["2:4"], "arrays": ["2y2"]}, "arrays: '2y2' is not RxC"),
    ({"ranks": ["2:4"], "widths": [0]}, "widths: 0 must be 1..32"),
    ({"ranks": ["2:4"], "macs": [-1]}, "macs: -1 is not a positive integer"),
    ({"ranks": ["2:4"], "targets": ["xilinx"]}, "targets: 'xilinx' is not one of"),
    ({"ranks": ["2:4"], "synth": "yes"}, "synth = 'yes': must be true or false"),
    ({"ranks": ["2:4"], "fmax": True}, "fmax = true needs synth = true"),
    ({"ranks": ["2:4"], "shape": "8,96"}, "shape = '8,96'"),
    ({"ranks": ["2:4"], "sim": "vcs"}, "sim = 'vcs'"),
    ({"ranks": ["2:4", "2:4"]}, "lists a value twice"),
])
def test_spec_errors(spec, message):
    with pytest.raises(dse.SpecError) as e:
        dse.check_spec(spec)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_cli_bad_spec_exits_2(tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_text('ranks = ["2:4"]\narrays = ["0x2"]\n')
    assert cli.main(["dse", "--spec", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["bench dse: error: arrays: '0x2' is not RxC with positive integers, "
                   "e.g. '2x2'"]
    spec.write_text("ranks = [\n")
    assert cli.main(["dse", "--spec", str(spec)]) == 2
    assert "is not valid TOML" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:                  # dse options outside dse
        cli.main(["tax", "--spec", str(spec)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m bench tax ") and \
        "bench tax: error: unrecognized arguments: --spec" in err


def test_help_of_dse_lists_its_options_with_defaults(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["dse", "--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--spec FILE", "--scheduler tcp://HOST:PORT", "--workers N", "--fast",
                   "--retry-failed", "--out", "--jobs N"):
        assert option in text, option
    for other in ("--minutes", "--max-side", "--fmax", "--quick"):     # dse reads none
        assert other not in text, other
    # every option of every benchmark states its default (or that it is required)
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "which"]
    for name, command in sub.choices.items():
        for action in command._actions:
            if action.option_strings and action.dest != "help":
                assert "default" in action.help or "required" in action.help, \
                    (name, action.option_strings)


def test_dse_writes_only_under_out(tmp_path, monkeypatch):
    """The work folder, Dask's scratch space and the plot stay under --out: nothing in the
    current folder, the temporary folder or the repository."""
    import tempfile
    import time
    here, tmp, out = tmp_path / "here", tmp_path / "tmp", tmp_path / "out"
    here.mkdir()
    tmp.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    spec = tmp_path / "spec.toml"
    spec.write_text('ranks = ["8:8"]\narrays = ["1x1"]\nsynth = true\nsim = "none"\n')
    skip = {".git", "__pycache__", ".pytest_cache", ".hypothesis"}

    def repo_files_since(t):
        return [p for p in dse.ROOT.rglob("*") if not skip & set(p.parts)
                and p.is_file() and p.stat().st_mtime >= t]
    t0 = time.time() - 1
    assert cli.main(["dse", "--spec", str(spec), "--fast", "--workers", "1",
                     "--out", "../out"]) == 0          # relative to the current folder
    assert list(here.iterdir()) == [] and list(tmp.iterdir()) == []
    assert repo_files_since(t0) == []
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    (row,) = [w for w in written if w.startswith("dse-cache/") and "area-fast" not in w]
    digest = row.split("/")[1].removesuffix(".json")
    assert [w for w in written if not w.startswith("dse-cache/")] == [
        "dse-work/" + digest[:16] + "/gen.log", "dse.csv", "dse.jsonl", "dse.md", "dse.png"]


def test_pareto():
    pts = [(1, 5), (2, 3), (3, 4), (4, 1), (2, 2)]
    assert sorted(dse.pareto(pts)) == [0, 3, 4]
    assert sorted(dse.pareto(pts, (False, False))) == [0, 2, 3]


def test_fast_screening_synthesizes_a_shared_verilog_once(tmp_path):
    """--fast: generic area without ABC, from dse itself; 8:8 is its own dense twin, so its
    Verilog is synthesized once and the area ratio is exactly 1."""
    spec = dse.check_spec({"ranks": ["8:8"], "arrays": ["1x1"], "synth": True, "sim": "none"})
    result = dse.sweep(spec, tmp_path / "out", workers=1, fast=True, work=tmp_path / "work")
    (row,) = result["rows"]
    assert row["status"] == "ok" and row["area_flow"] == "fast"
    assert row["nand2_eq"] > 0 and row["area_ratio"] == 1.0 and row["tpa_vs_dense"] == 1.0
    assert row["lut4"] is None and row["cycles"] is None and row["ideal_steps"] > 0
    assert len(list((tmp_path / "out" / "dse-cache").glob("area-fast-*.json"))) == 1


def test_full_flow_points_share_their_dense_twin(tmp_path):
    """4:8 and 2:4,2:2 have one dense twin (4:4, same accumulator): through gen's
    --synth-cache it is synthesized once; each design and decompressor once more."""
    spec = dse.check_spec({"ranks": ["4:8", "2:4,2:2"], "arrays": ["1x1"], "synth": True,
                           "sim": "none", "targets": ["generic"]})
    result = dse.sweep(spec, tmp_path / "out", workers=1, work=tmp_path / "work")
    rows = result["rows"]
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert rows[0]["nand2_eq"] != rows[1]["nand2_eq"]
    assert rows[0]["nand2_eq"] / rows[0]["area_ratio"] == \
        pytest.approx(rows[1]["nand2_eq"] / rows[1]["area_ratio"], rel=1e-3)   # one twin
    entries = list((tmp_path / "out" / "dse-cache" / "synth").glob("*.json"))
    assert len(entries) == 5            # 2 designs + 2 decompressors + 1 shared twin


def test_sweep_on_a_separate_cluster_over_tcp(tmp_path):
    """--scheduler: the same sweep, unchanged, on a Dask cluster of separate processes (a
    `dask scheduler` and a `dask worker`, as on other machines) reached over TCP."""
    import os
    import socket
    import subprocess
    import sys
    import time
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONPATH=str(dse.ROOT))
    quiet = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler",
                               "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              **quiet)]
    try:
        time.sleep(2)
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker",
                                       address, "--nworkers", "1", "--nthreads", "1",
                                       "--no-dashboard", "--local-directory", str(tmp_path)],
                                      cwd=tmp_path, **quiet))
        spec = dse.check_spec({"ranks": ["2:4", "1:4"], "arrays": ["1x1"]})
        result = dse.sweep(spec, tmp_path / "out", scheduler=address, work=tmp_path / "work")
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(timeout=30)
    assert [r["status"] for r in result["rows"]] == ["ok", "ok"]
    assert sorted(r["point"]["ranks"] for r in result["rows"]) == ["1:4", "2:4"]
