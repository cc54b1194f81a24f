"""FuseSoC generator ``hss_gen`` (``fusesoc/hss_gen.core``): an hss-gen build as a core.

A core that depends on ``hss:generators:hss_gen`` asks for a build with::

    generate:
      acc:
        generator: hss_gen
        parameters: {ranks: "4:6,2:4", rows: 4, cols: 4}

FuseSoC runs ``python3 gen/fusesoc_generator.py <input.yml>`` (also ``python -m
gen.fusesoc_generator <input.yml>``) in the folder the generated core lives in. This script
runs ``python -m gen`` there (``--out build --no-synth --sim none``: the same code path,
the same one-line errors) and writes ``<name>.core`` for the VLNV FuseSoC passed
(``gen.fusesoc.core_text``), whose ``default`` target is the RTL (and ``tb/`` with
``testbench: true``, for a core that simulates tb.sv as toplevel ``tb``).

Parameters: ``ranks`` (required) and ``macs``, ``rows``, ``cols``, ``width``, ``signed``,
``acc_width``, ``max_k``, ``shape``, ``seed`` as the options of ``python -m gen``;
``testbench`` (bool, default false). A bad parameter prints one line and exits 2. Random
stalls are tb.sv's run-time plusarg ``+stalls=<seed>`` (``python -m gen`` refuses
``--stalls`` without a simulation).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml     # PyYAML, FuseSoC's own dependency

if not __package__:     # run as a file by FuseSoC: import the project, not gen/'s modules
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from gen import cli  # noqa: E402
from gen.fusesoc import check_vlnv, core_text  # noqa: E402

__all__ = ["main", "gen_argv"]

#: The build's folder, below the generated core (FuseSoC's generator folder).
OUT = "build"

_STR = ("ranks", "shape")
_INT = ("macs", "rows", "cols", "width", "acc_width", "max_k", "seed")
_BOOL = ("signed", "testbench")


class _Bad(ValueError):
    """A bad input file or parameter (one line, exit 2)."""


def gen_argv(parameters: dict) -> list[str]:
    """The ``python -m gen`` options of the generator's parameters."""
    if not isinstance(parameters, dict):
        raise _Bad(f"parameters must be a mapping, not {parameters!r}")
    unknown = sorted(set(parameters) - set(_STR + _INT + _BOOL))
    if unknown:
        raise _Bad(f"unknown parameter {unknown[0]!r}; known: "
                   f"{', '.join(_STR + _INT + _BOOL)}")
    if "ranks" not in parameters:
        raise _Bad("parameter 'ranks' is required, e.g. ranks: \"4:6,2:4\"")
    argv = []
    for key, value in parameters.items():
        option = "--" + key.replace("_", "-")
        if key in _STR and not isinstance(value, str):
            raise _Bad(f"parameter {key!r} must be a string, e.g. \"4:6,2:4\", not {value!r}")
        if key in _INT and (isinstance(value, bool) or not isinstance(value, int)):
            raise _Bad(f"parameter {key!r} must be an integer, not {value!r}")
        if key in _BOOL and not isinstance(value, bool):
            raise _Bad(f"parameter {key!r} must be true or false, not {value!r}")
        if key == "signed":
            argv.append("--signed" if value else "--unsigned")
        elif key != "testbench":
            argv += [option, str(value)]
    return argv


def _read_input(path: str) -> tuple[dict, str]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise _Bad(f"cannot read the generator input {path}: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("vlnv"), str):
        raise _Bad(f"{path} is not a FuseSoC generator input (no 'vlnv')")
    try:
        check_vlnv(data["vlnv"])
    except ValueError as e:
        raise _Bad(f"{path}: {e}") from None
    return data.get("parameters") or {}, data["vlnv"]


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        if len(args) != 1:
            raise _Bad("usage: python -m gen.fusesoc_generator <generator input .yml>")
        parameters, vlnv = _read_input(args[0])
        options = gen_argv(parameters)
    except _Bad as e:
        print(f"hss_gen: error: {e}", file=sys.stderr, flush=True)
        return 2
    status = cli.main(options + ["--out", OUT, "--force", "--no-synth", "--sim", "none"])
    if status != 0:
        return status
    # FuseSoC takes every .core below its generator folder: the build's own core gives way
    # to the one with the VLNV FuseSoC asked for
    for own in Path(OUT).glob("*.core"):
        own.unlink()
    manifest = json.loads((Path(OUT) / "rtl" / "manifest.json").read_text())
    text = core_text(manifest, vlnv, root=OUT,
                     testbench_by_default=parameters.get("testbench", False))
    Path(f"{vlnv.split(':')[2]}.core").write_text(text, encoding="utf-8", newline="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
