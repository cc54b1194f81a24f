"""The DRAM that hss_system's DMA reads and writes, as the golden model sees it.

Two things the hardware (``hdl/dma.py``), its tests and the host driver must agree on:

- ``DRAM``: byte-addressed memory holding words of ``bits`` bits little-endian, byte ``k``
  of a word at ``addr + k``, as AXI byte lanes carry them (lane ``k`` = ``data[8k+7:8k]``).
- ``bursts``: how a transfer of ``words`` words splits into AXI4 INCR bursts, the rule both
  DMA engines follow, so a test can predict every AR/AW exactly.

See docs/system.md ("Ports", "The DRAM image").
"""
from __future__ import annotations

from collections.abc import Iterable

__all__ = ["PAGE_BYTES", "MAX_BURST_BEATS", "bursts", "words_to_bytes", "bytes_to_words",
           "DRAM"]

#: AXI4: no burst may cross a 4 KiB boundary (a slave's address decoding granule).
PAGE_BYTES = 4096
#: AXI4: an INCR burst has at most 256 beats (``axlen`` is 8 bits).
MAX_BURST_BEATS = 256


def _check_word_bytes(word_bytes: int) -> None:
    if (not isinstance(word_bytes, int) or word_bytes < 1 or word_bytes & (word_bytes - 1)
            or word_bytes > PAGE_BYTES):
        raise ValueError(f"word_bytes must be a power of two from 1 to {PAGE_BYTES}, "
                         f"not {word_bytes!r}")


def bursts(addr: int, words: int, word_bytes: int, max_burst: int, *,
           addr_bits: int = 32) -> list[tuple[int, int]]:
    """The INCR bursts ``(address, beats)`` of a transfer of ``words`` full-width words from
    byte address ``addr``: each as long as it can be, at most ``max_burst`` beats, ending at
    the transfer's end or at the next 4 KiB boundary, whichever comes first.

    ``addr`` must be a multiple of ``word_bytes`` (the DMA issues only aligned bursts) and
    the transfer must end within ``2**addr_bits`` bytes. No words, no bursts.
    """
    _check_word_bytes(word_bytes)
    if not isinstance(max_burst, int) or not 1 <= max_burst <= MAX_BURST_BEATS:
        raise ValueError(f"max_burst must be from 1 to {MAX_BURST_BEATS}, not {max_burst!r}")
    if not isinstance(addr, int) or addr < 0 or addr % word_bytes:
        raise ValueError(f"addr {addr!r} is not a non-negative multiple of {word_bytes} "
                         f"(word_bytes)")
    if not isinstance(words, int) or words < 0:
        raise ValueError(f"words must be a non-negative integer, not {words!r}")
    if addr + words * word_bytes > 1 << addr_bits:
        raise ValueError(f"{words} words from {addr:#x} end past the {addr_bits}-bit "
                         f"address space")
    out = []
    while words:
        to_boundary = (PAGE_BYTES - addr % PAGE_BYTES) // word_bytes
        beats = min(words, max_burst, to_boundary)
        out.append((addr, beats))
        addr += beats * word_bytes
        words -= beats
    return out


def _check_bits(bits: int) -> int:
    if not isinstance(bits, int) or bits < 8 or bits % 8:
        raise ValueError(f"word bits must be a positive multiple of 8, not {bits!r}")
    return bits // 8


def words_to_bytes(words: Iterable[int], bits: int) -> bytes:
    """``words`` (non-negative ints below ``2**bits``) as bytes, each little-endian."""
    nbytes = _check_bits(bits)
    out = bytearray()
    for word in words:
        word = int(word)
        if not 0 <= word < 1 << bits:
            raise ValueError(f"word {word:#x} does not fit {bits} bits")
        out += word.to_bytes(nbytes, "little")
    return bytes(out)


def bytes_to_words(data: bytes, bits: int) -> list[int]:
    """``data`` as little-endian words of ``bits`` bits; its length a multiple of theirs."""
    nbytes = _check_bits(bits)
    if len(data) % nbytes:
        raise ValueError(f"{len(data)} bytes are not whole {bits}-bit words")
    return [int.from_bytes(data[i:i + nbytes], "little") for i in range(0, len(data), nbytes)]


class DRAM:
    """A byte-addressed memory of ``2**addr_bits`` bytes, zero where never written.

    Sparse (4 KiB pages made on first write), so a test may use addresses anywhere in a
    32-bit space and a layer's regions may lie far apart.
    """

    def __init__(self, addr_bits: int = 32):
        if not isinstance(addr_bits, int) or not 12 <= addr_bits <= 64:
            raise ValueError(f"addr_bits must be from 12 to 64, not {addr_bits!r}")
        self.addr_bits = addr_bits
        self.size = 1 << addr_bits
        self._pages: dict[int, bytearray] = {}

    def _check(self, addr: int, length: int) -> None:
        if not isinstance(addr, int) or addr < 0 or length < 0 or addr + length > self.size:
            raise ValueError(f"{length} bytes at {addr!r} are outside the "
                             f"{self.addr_bits}-bit address space")

    def write(self, addr: int, data: bytes) -> None:
        """Store ``data`` from byte address ``addr`` on."""
        data = bytes(data)
        self._check(addr, len(data))
        done = 0
        while done < len(data):
            page, offset = divmod(addr + done, PAGE_BYTES)
            chunk = min(len(data) - done, PAGE_BYTES - offset)
            buf = self._pages.setdefault(page, bytearray(PAGE_BYTES))
            buf[offset:offset + chunk] = data[done:done + chunk]
            done += chunk

    def read(self, addr: int, length: int) -> bytes:
        """``length`` bytes from byte address ``addr`` on."""
        self._check(addr, length)
        out = bytearray()
        while len(out) < length:
            page, offset = divmod(addr + len(out), PAGE_BYTES)
            chunk = min(length - len(out), PAGE_BYTES - offset)
            buf = self._pages.get(page)
            out += buf[offset:offset + chunk] if buf is not None else bytes(chunk)
        return bytes(out)

    def write_words(self, addr: int, words: Iterable[int], bits: int) -> None:
        """Store ``bits``-bit words from ``addr`` on, each little-endian."""
        self.write(addr, words_to_bytes(words, bits))

    def read_words(self, addr: int, count: int, bits: int) -> list[int]:
        """``count`` ``bits``-bit words from ``addr`` on."""
        return bytes_to_words(self.read(addr, count * _check_bits(bits)), bits)
