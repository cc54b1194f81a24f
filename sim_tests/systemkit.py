"""A layer on hss_system in tests: its DRAM image from the engine's own vectors, and
behavioural DMA engines for Amaranth's simulator (the real ones are hdl.dma's)."""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
from amaranth.hdl import Elaboratable, Module, ResetInserter, Value

from hdl import accelerator_for
from hdl.controller import Controller
from hdl.stimulus import segment_vectors

__all__ = ["LayerImage", "layer_image", "words_of", "beat_of", "Bench", "DramModel",
           "read_server", "serve_writes", "wrong_golden"]


def words_of(value: int, bits: int, word_bits: int) -> list[int]:
    """A beat (``bits`` wide) as its DMA words, little-endian."""
    mask = (1 << word_bits) - 1
    return [(value >> (k * word_bits)) & mask for k in range(-(-bits // word_bits))]


def beat_of(words, word_bits: int) -> int:
    return sum(w << (k * word_bits) for k, w in enumerate(words))


@dataclass
class LayerImage:
    """A layer laid out as docs/system.md says: weights per m-tile, activations per n-tile,
    each beat in whole words; ``expected`` the golden tiles in the controller's order."""
    m_tiles: int
    n_tiles: int
    beats_per_tile: int
    weight_words: list[int]
    act_words: list[int]
    expected_tiles: list[np.ndarray]
    vectors: object


def layer_image(config, segments, A) -> LayerImage:
    """The image of ``Z = sum_t W_t @ A`` (``segments`` [(W_t, mode_t)]) for the system
    ``config``, cut from ``hdl.stimulus.segment_vectors`` (tiles row-tile major there)."""
    e = config.engine
    v = segment_vectors(e, segments, A)
    nt_count = -(-v.n // e.cols)
    mt_count = -(-v.m // e.rows)
    bpt = v.beats // v.tiles
    w_words, a_words = [], []
    for mt in range(mt_count):
        t = mt * nt_count
        for beat in v.weight_beats[t * bpt:(t + 1) * bpt]:
            w_words += words_of(beat, config.weight_beat_bits, config.dma_bits)
    for nt in range(nt_count):
        for beat in v.act_beats[nt * bpt:(nt + 1) * bpt]:
            a_words += words_of(beat, config.act_beat_bits, config.dma_bits)
    expected = [v.expected_tiles[mt * nt_count + nt]
                for nt in range(nt_count) for mt in range(mt_count)]
    return LayerImage(mt_count, nt_count, bpt, w_words, a_words, expected, v)


class Bench(Elaboratable):
    """The controller wired to the engine; the tests drive the controller's other ports
    (``bench.ctrl``): registers and DMA."""

    def __init__(self, config):
        self.config = config
        self.ctrl = Controller(config)

    def elaborate(self, platform):
        m = Module()
        m.submodules.controller = ctrl = self.ctrl
        engine = accelerator_for(self.config.core)
        m.submodules.engine = ResetInserter(ctrl.engine_reset)(engine)
        for name in ("weights", "activations"):
            ours, theirs = getattr(ctrl, name), getattr(engine, name)
            m.d.comb += [Value.cast(theirs.payload).eq(ours.payload),
                         theirs.valid.eq(ours.valid), ours.ready.eq(theirs.ready)]
        m.d.comb += [ctrl.tiles.payload.eq(Value.cast(engine.tiles.payload)),
                     ctrl.tiles.valid.eq(engine.tiles.valid),
                     engine.tiles.ready.eq(ctrl.tiles.ready)]
        return m


@dataclass
class DramModel:
    """Words of ``word_bits`` at byte addresses (multiples of the word's bytes)."""
    word_bits: int
    words: dict = field(default_factory=dict)
    error_at: tuple = ()            # (first, last) byte addresses answered with an error
    error_code: int = 2

    @property
    def word_bytes(self) -> int:
        return self.word_bits // 8

    def load(self, addr: int, words) -> None:
        for k, w in enumerate(words):
            self.words[addr + k * self.word_bytes] = w

    def read(self, addr: int, count: int) -> list[int]:
        return [self.words.get(addr + k * self.word_bytes, 0) for k in range(count)]

    def read_bytes(self, addr: int, length: int) -> bytes:
        """Bytes from ``addr`` (a word boundary), little-endian words as AXI's byte lanes."""
        count = -(-length // self.word_bytes)
        raw = b"".join(w.to_bytes(self.word_bytes, "little") for w in self.read(addr, count))
        return raw[:length]

    def load_bytes(self, addr: int, data: bytes) -> None:
        data = bytes(data) + bytes(-len(data) % self.word_bytes)
        self.load(addr, [int.from_bytes(data[i:i + self.word_bytes], "little")
                         for i in range(0, len(data), self.word_bytes)])

    def failing(self, addr: int, count: int) -> bool:
        if not self.error_at:
            return False
        first, last = self.error_at
        return addr <= last and addr + count * self.word_bytes > first


def read_server(dut, dram: DramModel, *, stall=0.3, seed=1):
    """``hdl.dma.DMARead`` in behaviour, as two simulator processes (add both): one takes
    commands, the other returns each command's words in order, ``last`` on the final one,
    with random gaps; an erroring region sets ``rd_error`` and sends nothing more."""
    rng = random.Random(seed)
    queue = []

    async def commands(ctx):
        ctx.set(dut.rd_cmd.ready, 1)
        async for _, _, valid, addr, words in ctx.tick().sample(
                dut.rd_cmd.valid, dut.rd_cmd.payload.addr, dut.rd_cmd.payload.words):
            if valid:
                queue.append((addr, words))

    async def data(ctx):
        ctx.set(dut.rd_idle, 1)
        failed = False
        while True:
            _, _, clear = await ctx.tick().sample(dut.rd_clear)
            if clear:
                ctx.set(dut.rd_error, 0)
                failed = False
            if not queue:
                ctx.set(dut.rd_idle, 1)
                continue
            ctx.set(dut.rd_idle, 0)
            addr, words = queue.pop(0)
            if failed or dram.failing(addr, words):
                ctx.set(dut.rd_error, dram.error_code)
                failed = True
                continue
            for k, w in enumerate(dram.read(addr, words)):
                while rng.random() < stall:
                    ctx.set(dut.rd_data.valid, 0)
                    await ctx.tick()
                ctx.set(dut.rd_data.payload.data, w)
                ctx.set(dut.rd_data.payload.last, k == words - 1)
                ctx.set(dut.rd_data.valid, 1)
                await ctx.tick().until(dut.rd_data.ready)
            ctx.set(dut.rd_data.valid, 0)

    return commands, data


async def serve_writes(ctx, dut, dram: DramModel, *, stall=0.3, seed=2, latency=3):
    """``hdl.dma.DMAWrite`` in behaviour: a command, then its words; ``wr_done`` a few
    cycles after each command's last word; a command into the erroring region sets
    ``wr_error`` (its words are taken and dropped) until ``wr_clear``."""
    rng = random.Random(seed)
    ctx.set(dut.wr_idle, 1)
    pending = []                        # cycles left until each done pulse
    current = None                      # [addr, words left, collected, failing]
    while True:
        ready_cmd = current is None
        ready_data = current is not None and rng.random() >= stall
        ctx.set(dut.wr_cmd.ready, ready_cmd)
        ctx.set(dut.wr_data.ready, ready_data)
        done = bool(pending) and pending[0] == 0
        ctx.set(dut.wr_done, done)
        ctx.set(dut.wr_idle, current is None and not pending)
        _, _, cv, addr, words, dv, word, clear = await ctx.tick().sample(
            dut.wr_cmd.valid, dut.wr_cmd.payload.addr, dut.wr_cmd.payload.words,
            dut.wr_data.valid, dut.wr_data.payload.data, dut.wr_clear)
        if clear:
            ctx.set(dut.wr_error, 0)
        if done:
            pending.pop(0)
        pending = [p - 1 if p > 0 else 0 for p in pending]
        if ready_cmd and cv:
            current = [addr, words, [], dram.failing(addr, words)]
        elif ready_data and dv:
            current[2].append(word)
            current[1] -= 1
            if current[1] == 0:
                if current[3]:
                    ctx.set(dut.wr_error, dram.error_code)
                else:
                    dram.load(current[0], current[2])
                    pending.append(latency)
                current = None


def wrong_golden(monkeypatch) -> None:
    """Make the system testbench's golden Z off by one in one element (its first), so a
    test can see that a wrong answer is a FAIL."""
    from gen.testbench import system as systb
    real = systb._layer_args

    def off_by_one(segments, A, spec):
        golden, kwargs = real(segments, A, spec)
        golden = golden.copy()
        golden[0, 0] += 1
        return golden, kwargs
    monkeypatch.setattr(systb, "_layer_args", off_by_one)
