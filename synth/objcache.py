"""A compile cache for Verilator's runtime library, the part of every build that never changes.

A Verilator build compiles its own runtime (``verilated.cpp``, ``verilated_threads.cpp``,
``verilated_timing.cpp``...) next to the design: for a small testbench that is 8 of its 12
CPU-seconds, the same objects each time. Verilator's makefile prefixes each compile with
``$(OBJCACHE)`` (meant for ccache, which is not installable from PyPI); ``synth.tools``
sets it to this script. It runs as ``python objcache.py CXX ARGS...``: a compile of a
source under Verilator's ``include`` folder is looked up by the digest of its command
line, the compiler's version and the source's bytes, and copied from the cache when found;
anything else (the design's own C++) is compiled as given. Objects are written to the cache
by atomic rename, so parallel builds may share it; a cache that cannot be written only
means compiling. The cache folder is ``$HSS_OBJCACHE_DIR`` (default
``~/.cache/hss-gen/verilated``).

Standalone on purpose (no import of this project): make runs it from any folder.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: The sources worth caching: Verilator's runtime, compiled the same way by every build.
RUNTIME_MARKER = "verilated.mk"


def cache_dir() -> Path:
    folder = os.environ.get("HSS_OBJCACHE_DIR")
    return Path(folder) if folder else Path.home() / ".cache" / "hss-gen" / "verilated"


def _runtime_source(argv: list[str]) -> Path | None:
    """The one source of a runtime compile (``-c ... -o X.o SRC``), else None."""
    if "-c" not in argv or "-o" not in argv:
        return None
    sources = [Path(a) for a in argv if a.endswith((".cpp", ".cc", ".c"))]
    if len(sources) != 1 or not sources[0].is_absolute():
        return None
    include = sources[0].parent
    # verilated.mk sits in the include folder of every Verilator installation
    return sources[0] if (include / RUNTIME_MARKER).exists() else None


def _key(argv: list[str], source: Path) -> str:
    output = argv.index("-o") + 1
    words = [w for i, w in enumerate(argv) if i != output]
    version = subprocess.run([argv[0], "--version"], capture_output=True, text=True).stdout
    digest = hashlib.sha256()
    for part in ("\0".join(words), version, str(source)):
        digest.update(part.encode() + b"\n")
    digest.update(source.read_bytes())
    return digest.hexdigest()


def _store(path: Path, target: Path) -> None:
    """Copy ``path`` to ``target`` by an atomic rename (a reader never sees half of it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    os.close(fd)
    try:
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: objcache.py CXX ARGS...", file=sys.stderr)
        return 2
    source = _runtime_source(argv)
    if source is None:
        return subprocess.call(argv)
    output = Path(argv[argv.index("-o") + 1])
    depfile = output.with_suffix(".d")
    try:
        entry = cache_dir() / _key(argv, source)
    except OSError:
        return subprocess.call(argv)
    if (entry / "object.o").exists():
        shutil.copyfile(entry / "object.o", output)
        if (entry / "object.d").exists():
            shutil.copyfile(entry / "object.d", depfile)
        return 0
    code = subprocess.call(argv)
    if code == 0:
        try:
            if depfile.exists():
                _store(depfile, entry / "object.d")
            _store(output, entry / "object.o")      # last: its presence means complete
        except OSError:
            pass
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
