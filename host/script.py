"""The host driver's work on hss_system as a register program that a testbench replays.

A simulator is fastest when nothing outside it waits on Python: ``Recorder`` is a
``host.driver.Bus`` that runs the driver *ahead of time*. Memory writes build the DRAM
image (``image_hex``: ``$readmemh`` text, one byte a line, ``@address`` before each run of
bytes); register writes and reads become program lines; the driver's wait for DONE or
ERROR becomes one "poll until (read(addr) & mask) != 0, within so many cycles" line (the
driver's ``poll`` hook); reading memory back becomes a "dump these bytes" line. Reads at
record time are answered by ``host.model.SystemModel``'s registers (the build's CONFIG*,
so ``Driver.probe`` passes); the testbench performs them again and writes what the RTL
answered, so the probe is checked there too.

``Replay`` then runs the same driver a second time on what the testbench wrote (the
answer of every read, every poll, every dump, in program order): the driver decodes Z,
sums counters and raises ``DriverError`` exactly as it would have on the device.

A program line is five 32-bit hex fields, ``op a b c d`` as one 40-digit word (``OPS``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hss.dram import DRAM

from . import regmap as rm

__all__ = ["OPS", "Recorder", "Replay", "ReplayMismatch", "parse_reads", "parse_dumps"]

#: program line opcodes (the testbench's ``OP_*``)
OPS = {"end": 0, "write": 1, "read": 2, "poll_eq": 3, "poll_ne": 4, "write_if": 5,
       "dump": 6}
_MASK32 = 0xFFFF_FFFF


@dataclass
class Recorder:
    """A Bus that records: ``answers`` (a Bus that answers at once, e.g. a
    ``SystemModel``) gives the values of reads at record time; ``poll_cycles`` bounds each
    poll in the testbench (cycles; it then writes the last value read and goes on)."""
    answers: object
    poll_cycles: int = 10_000_000
    lines: list = field(default_factory=list)
    dram: DRAM = field(default_factory=DRAM)
    extents: list = field(default_factory=list)
    #: per ``mark()``: (reads so far, dumps so far), where a replay of that part starts
    marks: list = field(default_factory=list)
    _reads: int = 0
    _dumps: int = 0

    def _line(self, op: str, a=0, b=0, c=0, d=0) -> None:
        for v in (a, b, c, d):
            if not 0 <= v <= _MASK32:
                raise ValueError(f"program field {v:#x} does not fit 32 bits")
        self.lines.append((OPS[op], a, b, c, d))

    def mark(self) -> int:
        """Start a new section (a layer): its replay begins here. Returns its index."""
        self.marks.append((self._reads, self._dumps))
        return len(self.marks) - 1

    # -- the Bus ---------------------------------------------------------------------------
    async def read32(self, offset: int) -> int:
        self._line("read", offset)
        self._reads += 1
        return await self.answers.read32(offset)

    async def write32(self, offset: int, value: int) -> None:
        self._line("write", offset, value & _MASK32)

    async def poll(self, offset: int, mask: int, limit: int) -> int:
        """Wait until ``(STATUS & mask) != 0``; on ERROR CLEAR it as the driver would, so a
        program goes on after a failed layer. At record time the layer is taken as DONE."""
        self._line("poll_ne", offset, mask, self.poll_cycles, 0)
        self._reads += 1
        error = rm.STATUS.ERROR.put(1)
        self._line("write_if", rm.CTRL.OFFSET, error, rm.CTRL.CLEAR.put(1))
        return rm.STATUS.DONE.put(1)

    async def write_memory(self, address: int, data: bytes) -> None:
        self.dram.write(address, data)
        self.extents.append((address, len(data)))

    async def read_memory(self, address: int, length: int) -> bytes:
        self._line("dump", address, length)
        self._dumps += 1
        return bytes(length)

    # -- what the testbench reads -----------------------------------------------------------
    def program_hex(self) -> str:
        """The program, one 40-digit hex word a line, ending with ``end``."""
        rows = [*self.lines, (OPS["end"], 0, 0, 0, 0)]
        return "".join("".join(f"{v:08x}" for v in row) + "\n" for row in rows)

    def image_hex(self) -> str:
        """The DRAM image for ``$readmemh`` into a byte memory: written extents, merged."""
        out = []
        end = None
        for address, length in sorted(self.extents):
            start = address if end is None or address > end else end
            stop = address + length
            if stop <= start:
                continue
            if start != end:
                out.append(f"@{start:08x}\n")
            out.extend(f"{b:02x}\n" for b in self.dram.read(start, stop - start))
            end = stop
        return "".join(out)

    def image_end(self) -> int:
        """One past the last byte of the image."""
        return max((a + n for a, n in self.extents), default=0)


class ReplayMismatch(RuntimeError):
    """The replayed driver asked for something other than what was recorded."""


def parse_reads(text: str) -> list:
    """The testbench's reads file: ``R|P <offset> <value>`` lines, as (kind, offset, value)."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if len(words) != 3 or words[0] not in ("R", "P"):
            raise ValueError(f"reads line {n}: {line!r} is not 'R|P offset value'")
        out.append((words[0], int(words[1], 16), int(words[2], 16)))
    return out


def parse_dumps(text: str) -> list:
    """The testbench's dump file: ``D <address> <length>`` then one hex byte a line."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        words = lines[i].split()
        if len(words) != 3 or words[0] != "D":
            raise ValueError(f"dump line {i + 1}: {lines[i]!r} is not 'D address length'")
        address, length = int(words[1], 16), int(words[2], 16)
        data = bytes(int(b, 16) for b in lines[i + 1:i + 1 + length])
        if len(data) != length:
            raise ValueError(f"dump at {address:#x}: {len(data)} of {length} bytes")
        out.append((address, data))
        i += 1 + length
    return out


class Replay:
    """A Bus that answers the driver with what the testbench read, from ``start`` (a
    ``Recorder.marks`` entry) on; writes are ignored (they happened in the testbench)."""

    def __init__(self, reads: list, dumps: list, start=(0, 0)):
        self.reads, self.dumps = reads, dumps
        self._r, self._d = start

    def _next(self, kind: str, offset: int) -> int:
        if self._r >= len(self.reads):
            raise ReplayMismatch(f"the testbench answered {len(self.reads)} reads; the "
                                 f"driver asks for more ({kind} {offset:#x}): did it stop?")
        got = self.reads[self._r]
        self._r += 1
        if got[:2] != (kind, offset):
            raise ReplayMismatch(f"read {self._r}: recorded {got[0]} {got[1]:#x}, the driver "
                                 f"asks {kind} {offset:#x}")
        return got[2]

    async def read32(self, offset: int) -> int:
        return self._next("R", offset)

    async def poll(self, offset: int, mask: int, limit: int) -> int:
        return self._next("P", offset)

    async def write32(self, offset: int, value: int) -> None:
        pass

    async def write_memory(self, address: int, data: bytes) -> None:
        pass

    async def read_memory(self, address: int, length: int) -> bytes:
        if self._d >= len(self.dumps):
            raise ReplayMismatch(f"no dump of {length} bytes at {address:#x} from the "
                                 f"testbench")
        got_address, data = self.dumps[self._d]
        self._d += 1
        if (got_address, len(data)) != (address, length):
            raise ReplayMismatch(f"dump {self._d}: recorded {len(data)} bytes at "
                                 f"{got_address:#x}, the driver asks {length} at {address:#x}")
        return data
