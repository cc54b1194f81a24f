"""Running ``python -m gen`` from tests, and reading back what its testbench computed."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def gen(*args, timeout=900):
    """``python -m gen ARGS`` in a child process (exit code, stdout and stderr kept)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "gen", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout)


def read_z(path: Path, shapes) -> list[np.ndarray]:
    """``tb/z_out.txt`` as one Z per layer, given the layers' (M, N)."""
    flat = np.array([int(x) for x in Path(path).read_text().split()], np.int64)
    out, at = [], 0
    for m, n in shapes:
        out.append(flat[at:at + m * n].reshape(m, n))
        at += m * n
    assert at == flat.size
    return out
