"""synth/objcache.py: Verilator's runtime compiled once, reused by the next build; nothing
else cached; a failing compile or an unwritable cache never gives a wrong object."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from synth import tools

SCRIPT = Path(tools.__file__).resolve().parent / "objcache.py"
CXX = shutil.which("c++") or shutil.which("g++")


def compile_(cwd: Path, source: Path, cache: Path, *extra: str, cxx=CXX):
    env = dict(os.environ, HSS_OBJCACHE_DIR=str(cache))
    return subprocess.run([sys.executable, str(SCRIPT), cxx, "-O0", *extra, "-MMD", "-c",
                           "-o", "runtime.o", str(source)], cwd=cwd, env=env,
                          capture_output=True, text=True)


@pytest.fixture
def runtime(tmp_path):
    """A stand-in for Verilator's include folder (it holds a verilated.mk)."""
    assert CXX, "no C++ compiler on PATH (Verilator needs one too)"
    include = tmp_path / "include"
    include.mkdir()
    (include / "verilated.mk").write_text("# marker\n")
    source = include / "verilated_fake.cpp"
    source.write_text("int verilated_fake() { return 42; }\n")
    return source


def test_runtime_object_is_compiled_once_then_copied(tmp_path, runtime):
    cache = tmp_path / "cache"
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    assert compile_(a, runtime, cache).returncode == 0
    entries = list(cache.iterdir())
    assert len(entries) == 1 and (entries[0] / "object.o").exists()
    # the second build gets the same bytes without running the compiler: prove it by a
    # compiler that would fail
    broken = tmp_path / "cxx"
    broken.write_text(f"#!/bin/sh\n[ \"$1\" = --version ] && exec {CXX} --version\nexit 9\n")
    broken.chmod(0o755)
    # another compiler is another key: a miss, so the failing one runs and nothing is stored
    r = compile_(b, runtime, cache, cxx=str(broken))
    assert r.returncode == 9 and len(list(cache.iterdir())) == 1
    assert compile_(b, runtime, cache).returncode == 0
    assert (b / "runtime.o").read_bytes() == (a / "runtime.o").read_bytes()
    assert (b / "runtime.d").exists()
    # other flags, another entry
    assert compile_(b, runtime, cache, "-DVM_TRACE=1").returncode == 0
    assert len(list(cache.iterdir())) == 2


def test_the_designs_own_code_and_a_changed_source_are_not_taken_from_the_cache(tmp_path,
                                                                                 runtime):
    cache = tmp_path / "cache"
    design = tmp_path / "Vtb__ALL.cpp"          # not in a Verilator include folder
    design.write_text("int design() { return 1; }\n")
    assert compile_(tmp_path, design, cache).returncode == 0
    assert not cache.exists()
    assert compile_(tmp_path, runtime, cache).returncode == 0
    runtime.write_text("int verilated_fake() { return 43; }\n")
    assert compile_(tmp_path, runtime, cache).returncode == 0
    assert len(list(cache.iterdir())) == 2


def test_a_failing_compile_stores_nothing_and_an_unwritable_cache_still_compiles(tmp_path,
                                                                                 runtime):
    cache = tmp_path / "cache"
    runtime.write_text("this is not C++\n")
    r = compile_(tmp_path, runtime, cache)
    assert r.returncode != 0 and not any(cache.rglob("object.o"))
    runtime.write_text("int verilated_fake() { return 42; }\n")
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert compile_(tmp_path, runtime, blocked / "cache").returncode == 0
    assert (tmp_path / "runtime.o").exists()


def test_tools_set_objcache_unless_the_user_did():
    assert tools.objcache_env({})["OBJCACHE"].endswith("objcache.py")
    assert tools.objcache_env({"OBJCACHE": "ccache"}) == {}
    assert tools.objcache_env({"OBJCACHE": ""}) == {}
    assert tools.child_env({"OBJCACHE": "ccache"})["OBJCACHE"] == "ccache"
