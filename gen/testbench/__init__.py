"""Emit a self-checking Verilog testbench of the accelerator, for Verilator and Icarus.

``write_testbench(tb_dir, vectors)`` writes, into ``tb_dir`` (``vectors``: one GEMM's
``hdl.stimulus.GemmVectors``, or a list of them, the *layers*, run back to back in one
simulation, e.g. one per mode of a flexible build):

- ``weights.hex``, ``acts.hex``: one stream beat per line (the packed ``weights`` and
  ``activations`` payloads of ``hdl.stimulus.gemm_vectors``), fixed-width hexadecimal,
  layer after layer.
- ``layers.hex``: one line per layer, ``LAYER_FIELDS`` as 32-bit fields (first field in
  the lowest bits): where its tiles end, its Z's shape and place in ``z_out.txt``, the
  overflow flag its tiles carry, its steps and steps per beat, where its beats end.
- ``expected.hex``: one golden ``tiles`` beat per line (a tile per line, or ``tile_beats``
  lines per tile where a tile leaves in several beats), the ``z`` field of the payload
  (``tile_rows*cols`` fields of ``acc_width`` bits, element ``(i, j)`` of the beat's rows at
  field ``i*cols + j``, two's complement), without the ``overflow`` and ``last`` bits.
- ``tb.sv``: the testbench. It drives both input streams from the hex files, takes the
  tiles, compares each with ``expected.hex`` and prints (one item per line)::

      STALLS off | STALLS <seed> SEEDS <w> <a> <t>             (back-pressure of this run)
      MISMATCH tile <t> row <r> col <c> got <g> expected <e>   (Z coordinates; first 10)
      OVERFLOW tile <t> got <g> expected <e>                  (the overflow flag differs)
      LAST tile <t> beat <b> got <g> expected <e>    (a tile of several beats: ``last`` differs)
      TIMEOUT after <n> cycles: <t> of <T> tiles, <b> of <B> beats
      LAYER <l> CYCLES <c> STEPS <s>                          (one line per layer)
      ACTIONS <l> WBEATS <w> ABEATS <a> TILES <t> NONZERO <z> STEPS <s>   (one per layer)
      CYCLES <measured> IDEAL <steps> LATENCY <L>
      MISMATCHES <count>
      PASS | FAIL

  ``CYCLES`` runs from the cycle of the first step to the cycle of the last tile
  handshake, both included: ``steps + LATENCY`` when nothing stalls (the first step is the
  first input handshake, or ``steps_per_beat - 1`` cycles before it when a flexible build
  takes a beat in several steps). ``LATENCY`` is ``hdl.top.last_beat_latency``: the tile
  latency plus one cycle per further beat of a tile (tiles of fewer steps than beats also
  stall the engine). A layer's cycles run from the previous layer's last tile
  (the first layer: from the first step, without the latency) to its own, so they add up
  to ``CYCLES - LATENCY`` and equal its steps when nothing stalls. ``ACTIONS`` counts, per
  layer, what the RTL's streams carried: weights and activations beats taken (valid and
  ready), tiles taken, the nonzero weight values of the weights beats taken (every value
  field of the beat, ``width`` bits each, at offsets read from the stream layouts: padding
  rows, groups and unused fields hold zeros; a TASD layer counts every term's beats) and
  the PE steps they took (``steps_per_beat`` of each beat's ``mode`` field; 1 per beat in a
  fixed build). A beat belongs to the layer it was streamed for (by its index, against
  ``BEATS_END``), a tile to the layer whose tiles it completes. Stalls do not change the
  counts; ``expected_actions`` computes them from the vectors. The computed Z goes to
  ``z_out.txt`` (one decimal per line, each layer's ``M x N`` row-major, layer after layer,
  tile overhang cropped). A failing run ends with ``$fatal`` (non-zero exit status).
  Stalls: the input valids and the output ready are dropped at random by three 32-bit
  xorshift generators written in Verilog (not ``$random``), so every simulator sees the
  same stalls. ``stall_seed`` chooses the default; at run time the plusarg
  ``+stalls=<seed>`` (decimal, 0 to 2**32-1) turns them on with that seed and ``+nostalls``
  turns them off. tb.sv derives the generators' seeds (``<w> <a> <t>``, hexadecimal) from
  the seed as ``stall_seeds`` does; seeds are 32-bit, so ``stall_seed`` must be below
  2**32. The cycle limit is chosen at run time too (generous with stalls).
  ``+load_only`` stops right after reading the vectors (prints ``LOADED <beats> beats``).
  ``+trace`` dumps every signal of ``tb`` and the accelerator to ``waves.vcd`` (Verilator:
  only a ``--trace`` build writes it).
- ``Makefile``: ``make sim-verilator`` and ``make sim-icarus`` (no Python needed), also as
  ``build-*`` and ``run-*`` steps; ``STALLS=<seed>|off`` passes the stall plusarg,
  ``JOBS=<n>`` sets Verilator's build jobs (default: ``nproc``), ``PYTHON3`` the Python of
  Verilator's build (default ``python3``), ``TRACE=1`` passes ``+trace`` (VCD from both
  simulators: Verilator's FST would need ``lz4.h``); Verilator then builds with ``--trace``
  into ``obj_dir_trace/`` instead of ``obj_dir/``, so that a traced and an untraced binary
  never stand in for each other. In a folder whose path holds a space or another
  character outside ``A-Za-z0-9_./+@-`` (``synth.tools.PLAIN_RANGES``; Verilator's
  generated makefiles refuse spaces), Verilator builds in a ``mktemp -d`` folder under
  ``$TMPDIR`` (or ``/tmp``) that the recipe removes; only the binary is copied to
  ``obj_dir/Vtb`` (``obj_dir_trace/Vtb``). Its options are ``synth.tools.VERILATOR_FLAGS``.
- ``test_cocotb.py``: the same test for cocotb 2.1 (``python test_cocotb.py icarus``); the
  environment variable ``STALLS`` (``<seed>`` or ``off``) overrides the stall default as
  the plusargs do, with the same CYCLES. With Verilator in an odd path it too builds in a
  scratch folder. The same file for every build (this package's ``test_cocotb.py``): it
  reads the build from ``tb_params.json`` and computes with ``tbkit.py``.
- ``tb_params.json``: what test_cocotb.py needs of the build: ``params`` (tb.sv's
  localparams, by name), ``layers`` (layers.hex's lines as ``LAYER_FIELDS``),
  ``mode_steps`` (PE steps of a weights beat per mode number), ``signed``, ``top``,
  ``rtl``, ``stall_seed_default`` (null: no stalls), ``description``, and the Verilator
  knowledge of ``synth.tools`` (``plain_chars``, ``verilator_build_args``).
- ``tbkit.py``: this package's ``tbkit`` (the stall seeds, the beat counts, the tile
  check), copied so that the folder runs with only cocotb installed; the generator computes
  ``stall_seeds`` and ``expected_actions`` with the same functions.
- ``tools.mk``, only with ``tool_paths``: the tool paths found at generation
  (``VERILATOR ?= ...``), read by the Makefile before its own defaults, so the folder runs
  from a shell without the venv; the command line or the environment overrides them.
  Not in ``TB_FILES``; a call without ``tool_paths`` removes a stale one.

Clocking: the testbench makes its clock with ``always #1``, which Verilator accepts with
``--timing`` (implied by ``--binary``), and Icarus always. Amaranth's Verilog has no
`` `timescale `` and neither has ``tb.sv``; Verilator is given ``--timescale 1ns/1ps``.
Only cycles are measured, so the time unit does not matter.

Output is deterministic: the same vectors and arguments give byte-identical files.

How it is made: ``params`` computes the values (tb.sv's localparams, the layer table, the
data files), ``templates/`` holds tb.sv, the Makefile and tools.mk as Jinja2 templates
(``render``), and ``test_cocotb.py`` and ``tbkit.py`` are copied as they are.
"""
from __future__ import annotations

import json
import os
import re
from importlib import resources
from pathlib import Path, PurePosixPath

from hdl.stimulus import as_layers
from synth.tools import PLAIN_CHARS, PLAIN_RANGES, is_plain, verilator_flags

from .params import (ACTION_KEYS, LAYER_FIELDS, data_files, describe, expected_actions,
                     layer_table, mode_steps, tb_params)
from . import render
from .tbkit import stall_seeds, xorshift32

__all__ = ["write_testbench", "TB_FILES", "TOOL_KEYS", "LAYER_FIELDS", "ACTION_KEYS",
           "NO_INLINE_ABOVE_PES", "expected_actions", "stall_seeds", "xorshift32"]

#: Files ``write_testbench`` always writes (relative to the testbench folder); ``tools.mk``
#: is written only when ``tool_paths`` is given.
TB_FILES = ("tb.sv", "weights.hex", "acts.hex", "expected.hex", "layers.hex", "Makefile",
            "test_cocotb.py", "tb_params.json", "tbkit.py")

#: Files of this package copied verbatim into every testbench folder.
_STATIC = ("test_cocotb.py", "tbkit.py")

#: Keys of ``tool_paths`` and the Makefile variable each sets in ``tools.mk``.
TOOL_KEYS = {"verilator": "VERILATOR", "iverilog": "IVERILOG", "vvp": "VVP"}

#: Above this many PEs Verilator keeps the modules apart (``-fno-inline``) instead of
#: inlining every PE into one model: the C++ then grows more slowly than the array, and
#: with the shared modules of ``gen.emit`` the build takes 22.6 s instead of 27.4 s at 16x16
#: (5.1 instead of 13.6 MB of C++) and 121 s instead of 214 s at 32x32 (18 instead of
#: 54 MB), simulating as fast. Small builds keep their flags.
NO_INLINE_ABOVE_PES = 16

#: What cocotb's runner sets itself in a Verilator build (it makes its own binary).
_COCOTB_SETS = ("--binary", "--timescale", "--top-module", "-o")

_SEED_MAX = 0xFFFFFFFF      # the stall generators are 32-bit
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")


def _check_args(layers, top, rtl_rel, stall_seed, tool_paths):
    if not isinstance(top, str) or not _IDENT.match(top):
        raise ValueError(f"top must be a Verilog identifier, not {top!r}")
    # rtl_rel is a make prerequisite and a shell word: no quoting makes ' ', '(', ':' or '='
    # safe in a prerequisite, and a leading '-' would be an option
    if not isinstance(rtl_rel, str) or not is_plain(rtl_rel) or rtl_rel.startswith("-") \
            or PurePosixPath(rtl_rel).is_absolute():
        raise ValueError(f"rtl_rel must be a relative path of the characters {PLAIN_RANGES}, "
                         f"not starting with '-' (it goes into a Makefile; relative so the "
                         f"output stays relocatable), not {rtl_rel!r}")
    if stall_seed is not None and (not isinstance(stall_seed, int) or isinstance(stall_seed, bool)
                                   or not 0 <= stall_seed <= _SEED_MAX):
        raise ValueError(f"stall_seed must be None or an integer from 0 to 2**32-1 (the stall "
                         f"generators are 32-bit), not {stall_seed!r}")
    if tool_paths is not None:
        if not isinstance(tool_paths, dict):
            raise TypeError(f"tool_paths must be a dict of tool name to path, "
                            f"not {tool_paths!r}")
        for key, path in tool_paths.items():
            if key not in TOOL_KEYS:
                raise ValueError(f"tool_paths: unknown tool {key!r}, expected some of "
                                 f"{', '.join(TOOL_KEYS)}")
            if not isinstance(path, (str, os.PathLike)) or not isinstance(os.fspath(path), str):
                raise TypeError(f"tool_paths[{key!r}] must be a path (str), not {path!r}")
            path = os.fspath(path)
            if not PurePosixPath(path).is_absolute() or re.search(r"[\n\r\0]", path):
                raise ValueError(f"tool_paths[{key!r}] must be an absolute path on one line, "
                                 f"not {path!r}")
    if any(v.steps == 0 or v.tiles == 0 for v in layers):
        raise ValueError("vectors hold no work (zero steps or tiles)")


def write_testbench(tb_dir: Path, vectors, top: str = "hss_accelerator",
                    rtl_rel: str = "../rtl/hss_accelerator.v",
                    stall_seed: int | None = None,
                    tool_paths: dict[str, str] | None = None) -> None:
    """Write the testbench of ``vectors`` into ``tb_dir`` (created if needed).

    ``vectors``: one ``GemmVectors``, or a list of them (layers, run back to back in one
    simulation; of a flexible build, each in its own mode).

    ``rtl_rel`` is the accelerator's Verilog relative to ``tb_dir``; ``top`` its module
    name. ``stall_seed`` (0 to 2**32-1) turns on deterministic random stalls of the three
    streams by default; ``+stalls=<seed>``/``+nostalls`` (``make STALLS=<seed>|off``)
    override it at run time. ``tool_paths`` (keys ``verilator``, ``iverilog``, ``vvp``:
    absolute paths) writes ``tools.mk`` so that the Makefile finds them without the venv.
    """
    layers = as_layers(vectors)
    _check_args(layers, top, rtl_rel, stall_seed, tool_paths)
    tb_dir = Path(tb_dir)
    tb_dir.mkdir(parents=True, exist_ok=True)
    c = layers[0].config
    p = tb_params(layers)
    table = layer_table(layers)
    description = describe(layers, stall_seed)
    files = data_files(layers, p, table)
    files["tb.sv"] = render.render(
        "tb.sv.j2", top=top, description=description, params=p, layer_fields=LAYER_FIELDS,
        stall_seed=stall_seed, signed=c.signed, mode_steps=mode_steps(c))
    files["Makefile"] = render.render(
        "Makefile.j2", top=top, rtl_rel=rtl_rel, stall_seed=stall_seed,
        verilator_flags=verilator_flags(jobs="$(JOBS)"),
        no_inline=c.rows * c.cols > NO_INLINE_ABOVE_PES,
        plain_chars=PLAIN_CHARS, plain_ranges=PLAIN_RANGES)
    files["tb_params.json"] = json.dumps(dict(
        description=description, top=top, rtl=rtl_rel, signed=c.signed,
        stall_seed_default=stall_seed, params=p, layers=table, mode_steps=mode_steps(c),
        plain_chars=PLAIN_CHARS, verilator_build_args=verilator_flags(without=_COCOTB_SETS),
    ), indent=1) + "\n"
    for name in _STATIC:
        files[name] = resources.files(__name__).joinpath(name).read_text(encoding="ascii")
    for name, text in files.items():
        (tb_dir / name).write_text(text, encoding="ascii", newline="\n")
    if tool_paths is not None:
        found = {var: os.fspath(tool_paths[key]) for key, var in TOOL_KEYS.items()
                 if key in tool_paths}
        text = render.render("tools.mk.j2", tools=found)
        # paths are bytes to the OS: keep any non-ASCII ones exactly as os.fspath gave them
        (tb_dir / "tools.mk").write_bytes(text.encode("utf-8", "surrogateescape"))
    else:
        # the folder reflects this call only: tools of an earlier call would still apply
        (tb_dir / "tools.mk").unlink(missing_ok=True)
