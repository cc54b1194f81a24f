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

Parameters: ``ranks`` (required) and every other option of ``python -m gen`` that says what
is built or what it is verified on (the ``design`` and ``workload`` fields of
``gen.options.Options``: ``macs``, ``rows``, ``cols``, ``width``, ``tile_rows``,
``signed``, ``acc_width``, ``max_k``, ``shape``, ``seed``, ``weights``, ``activations``,
``mode``, ``prune``, ``tasd``, ...; lists for the repeatable ones), named as the option
with ``_`` for ``-``; ``testbench`` (bool, default false). A bad parameter prints one line and exits 2. Random
stalls are tb.sv's run-time plusarg ``+stalls=<seed>`` (``python -m gen`` refuses
``--stalls`` without a simulation).
"""
from __future__ import annotations

import json
import sys
import typing
from pathlib import Path

import yaml     # PyYAML, FuseSoC's own dependency

if not __package__:     # run as a file by FuseSoC: import the project, not gen/'s modules
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from gen import cli  # noqa: E402
from gen.fusesoc import check_vlnv, core_text  # noqa: E402
from gen.options import Options  # noqa: E402

__all__ = ["main", "generator_options", "PARAMETERS"]

#: The build's folder, below the generated core (FuseSoC's generator folder).
OUT = "build"

#: The parameters a generator call may give, with their types: the options of what is
#: built and verified, and the generator's own ``testbench``.
PARAMETERS = {**Options.kinds("design", "workload"), "testbench": bool}
_TEXT_TYPES = {"ranks": "a string, e.g. \"4:6,2:4\"", "shape": "a string, e.g. \"8,96,8\""}


class _Bad(ValueError):
    """A bad input file or parameter (one line, exit 2)."""


def _check_type(key: str, value, kind) -> None:
    if kind is bool and not isinstance(value, bool):
        raise _Bad(f"parameter {key!r} must be true or false, not {value!r}")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise _Bad(f"parameter {key!r} must be an integer, not {value!r}")
    if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise _Bad(f"parameter {key!r} must be a number, not {value!r}")
    if kind is str and not isinstance(value, str):
        raise _Bad(f"parameter {key!r} must be a string, not {value!r}")
    if key in _TEXT_TYPES and not isinstance(value, str):
        raise _Bad(f"parameter {key!r} must be {_TEXT_TYPES[key]}, not {value!r}")
    if key not in _TEXT_TYPES and typing.get_origin(kind) is tuple and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise _Bad(f"parameter {key!r} must be a list of strings, not {value!r}")


def generator_options(parameters: dict) -> Options:
    """The options of ``python -m gen`` for the generator's parameters: what they say, into
    ``OUT``, without simulating or synthesizing (FuseSoC's flows do that)."""
    if not isinstance(parameters, dict):
        raise _Bad(f"parameters must be a mapping, not {parameters!r}")
    unknown = sorted(set(parameters) - set(PARAMETERS))
    if unknown:
        raise _Bad(f"unknown parameter {unknown[0]!r}; known: {', '.join(PARAMETERS)}")
    if "ranks" not in parameters:
        raise _Bad("parameter 'ranks' is required, e.g. ranks: \"4:6,2:4\"")
    for key, value in parameters.items():
        _check_type(key, value, PARAMETERS[key])
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in parameters.items()
             if k != "testbench"}
    return Options(**given, out=OUT, force=True, synth=False, sim="none")


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
        options = generator_options(parameters)
    except _Bad as e:
        print(f"hss_gen: error: {e}", file=sys.stderr, flush=True)
        return 2
    except cli.InputError as e:           # an option's own check: as python -m gen says it
        print(f"gen: error: {e}", file=sys.stderr, flush=True)
        return 2
    status = cli.execute(options)
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
