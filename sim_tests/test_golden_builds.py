"""The guard of every refactoring: a set of ``python -m gen`` builds whose emitted files must
stay byte-identical (``sim_tests/golden/``).

Each build runs from the command line into ``out/`` of a fresh folder. Every file it writes
is compared by its sha256 with ``golden/<build>.json``; the testbench's programs, build
files, configs and reports are kept whole in ``golden/<build>/`` too, so that a change shows as a diff. Two things are normalised, as
they depend on the machine and not on the generator: the venv's path in ``tb/tools.mk``,
and the versions in ``manifest.json``'s ``tool_versions`` (the names are kept). Simulator
logs are left out (they hold the tools' own build lines).

A change that is meant to alter what a build writes updates the golden files in the same
commit, so that the diff shows what changed:
``GOLDEN_UPDATE=1 pytest sim_tests/test_golden_builds.py``.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from genkit import gen

GOLDEN = Path(__file__).resolve().parent / "golden"
#: Files kept whole (and diffed on a mismatch) when they are at most this large.
WHOLE_BELOW = 48 * 1024
UPDATE = os.environ.get("GOLDEN_UPDATE") == "1"
HIGHLIGHT = "4:4|4:5|4:6|4:7,4:4|2:4|1:4"

#: build name -> the options of ``python -m gen`` (every build adds ``--no-synth --out out``)
BUILDS = {
    "fixed_4-6_2-4_4x4": ["--ranks", "4:6,2:4", "--sim", "none"],
    "fixed_2-4_2x2": ["--ranks", "2:4", "--rows", "2", "--cols", "2", "--sim", "none"],
    "three_ranks_2x2": ["--ranks", "2:3,3:4,2:4", "--rows", "2", "--cols", "2", "--sim",
                        "none"],
    "highlight_2x2": ["--ranks", HIGHLIGHT, "--rows", "2", "--cols", "2", "--sim", "none"],
    "tasd_2x2": ["--ranks", "4:4|4:6,4:4|2:4", "--rows", "2", "--cols", "2",
                 "--tasd", "4:6,2:4+4:4,2:4", "--tasd", "auto", "--max-error", "0.3",
                 "--sim", "none"],
    "tile_beats_2x2": ["--ranks", "2:4", "--rows", "2", "--cols", "2", "--tile-rows", "1",
                       "--sim", "none"],
    "user_tensors_prune": ["--ranks", "4:6,2:4", "--rows", "2", "--cols", "2",
                           "--weights", "W.npy", "--activations", "A.npy", "--prune",
                           "--sim", "none"],
    "trace_1x1": ["--ranks", "2:4", "--rows", "1", "--cols", "1", "--trace"],
    "stalls_2x2": ["--ranks", "4:6,2:4", "--rows", "2", "--cols", "2", "--stalls", "7"],
}


def _user_tensors(folder: Path) -> None:
    rng = np.random.default_rng(19)
    np.save(folder / "W.npy", rng.integers(-128, 128, (3, 50), dtype=np.int64))
    np.save(folder / "A.npy", rng.integers(-128, 128, (50, 5), dtype=np.int64))


def _normalised(path: Path, rel: str) -> bytes:
    data = path.read_bytes()
    if rel == "tb/tools.mk":
        data = data.replace(str(Path(sys.executable).parent).encode(), b"<venv>/bin")
    if rel == "rtl/manifest.json":
        manifest = json.loads(data)
        manifest["tool_versions"] = {k: "<version>" for k in manifest["tool_versions"]}
        data = (json.dumps(manifest, indent=2) + "\n").encode()
    return data


def emitted(out: Path) -> dict[str, bytes]:
    """Every file of a build folder, by its path relative to it, normalised."""
    files = {}
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out).as_posix()
        if path.is_file() and not path.name.startswith("sim-"):
            files[rel] = _normalised(path, rel)
    return files


def _whole(data: bytes, rel: str) -> bool:
    """Programs, build files and reports are kept whole; Verilog, vectors and the register
    map's HTML and IP-XACT (PeakRDL's renderings of the C header's facts) by digest."""
    return (len(data) <= WHOLE_BELOW and not rel.endswith((".v", ".hex", ".vcd", ".txt", ".xml"))
            and not rel.startswith("regs/html/"))


def _update(name: str, files: dict[str, bytes]) -> None:
    folder = GOLDEN / name
    for old in sorted(folder.rglob("*"), reverse=True) if folder.exists() else ():
        old.unlink() if old.is_file() else old.rmdir()
    digests = {}
    for rel, data in files.items():
        digests[rel] = hashlib.sha256(data).hexdigest()
        if _whole(data, rel):
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
    (GOLDEN / f"{name}.json").write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")


def _differences(name: str, files: dict[str, bytes]) -> list[str]:
    digests = json.loads((GOLDEN / f"{name}.json").read_text())
    problems = [f"missing: {rel}" for rel in sorted(set(digests) - set(files))]
    problems += [f"new: {rel}" for rel in sorted(set(files) - set(digests))]
    for rel in sorted(set(files) & set(digests)):
        if hashlib.sha256(files[rel]).hexdigest() == digests[rel]:
            continue
        kept = GOLDEN / name / rel
        if kept.exists():
            diff = difflib.unified_diff(kept.read_text().splitlines(),
                                        files[rel].decode().splitlines(), f"golden/{rel}",
                                        rel, lineterm="", n=1)
            problems.append("\n".join(list(diff)[:40]))
        else:
            problems.append(f"differs: {rel} ({len(files[rel]):,} bytes)")
    return problems


@pytest.mark.parametrize("name", BUILDS)
def test_build_writes_the_golden_files(name, tmp_path, monkeypatch):
    """The build's files are byte for byte those of ``golden/<name>``."""
    monkeypatch.chdir(tmp_path)
    _user_tensors(tmp_path)
    r = gen(*BUILDS[name], "--no-synth", "--out", "out")
    assert r.returncode == 0, r.stderr
    files = emitted(tmp_path / "out")
    if UPDATE:
        _update(name, files)
        return
    problems = _differences(name, files)
    assert not problems, f"{name}: the build no longer writes its golden files " \
        f"(GOLDEN_UPDATE=1 to accept a change on purpose):\n" + "\n".join(problems)


def test_every_build_has_golden_files():
    """No golden folder is left over from a build that is no longer in the set."""
    kept = {p.stem for p in GOLDEN.glob("*.json")}
    assert kept == set(BUILDS)


def test_the_guard_sees_a_changed_byte(tmp_path):
    """A one-byte change of a golden file's content is reported, with its diff."""
    name = "fixed_2-4_2x2"
    digests = json.loads((GOLDEN / f"{name}.json").read_text())
    files = {rel: (GOLDEN / name / rel).read_bytes() if (GOLDEN / name / rel).exists()
             else b"" for rel in digests}
    whole = [rel for rel in digests if (GOLDEN / name / rel).exists()]
    assert all(hashlib.sha256(files[rel]).hexdigest() == digests[rel] for rel in whole)
    files = {rel: files[rel] for rel in whole}
    files["tb/tb.sv"] = files["tb/tb.sv"].replace(b"PASS", b"PAS5", 1)
    problems = _differences(name, files)
    assert any("-" in p and "PAS5" in p for p in problems)
    assert sum(p.startswith("missing: ") for p in problems) == len(digests) - len(whole)
