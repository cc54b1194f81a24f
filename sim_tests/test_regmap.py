"""The register map (regmap/hss_system.rdl) as compiled into regmap's model, and the golden
register model every read of the hardware is checked against."""
from __future__ import annotations

import dataclasses
import math
import re
from types import MappingProxyType

import pytest

import regmap
from hdl import build_config
from regmap import RegmapError, build_model
from regmap.model import _check_layout
from regmap.reference import ReferenceRegisters, strobe_mask

#: the registers docs/system.md names, and the error codes it lists, in order
DESCRIPTOR = ("W_ADDR", "A_ADDR", "Z_ADDR", "Q_ADDR", "M_TILES", "N_TILES", "BEATS_PER_TILE",
              "W_BASE", "A_BASE", "FLAGS", "MODES")
COUNTERS = ("CYCLES", "STEPS", "STALL_WEIGHTS", "STALL_ACTS", "STALL_OUTPUT",
            "DRAM_READ_BYTES", "DRAM_WRITE_BYTES", "WBUF_READS", "WBUF_WRITES", "ABUF_READS",
            "ABUF_WRITES", "OBUF_READS", "OBUF_WRITES", "QBUF_READS", "QBUF_WRITES")
ERROR_CODES = ("NONE", "WBUF_OVERFLOW", "ABUF_OVERFLOW", "QBUF_OVERFLOW", "MISALIGNED",
               "ADDRESS_RANGE", "EMPTY", "BAD_MODE", "READ_SLVERR", "READ_DECERR",
               "WRITE_SLVERR", "WRITE_DECERR")


@pytest.fixture(scope="module")
def model():
    return build_model()


# ---- the layout ---------------------------------------------------------------------

def test_offsets_unique_aligned_and_in_the_window(model):
    offsets = [r.offset for r in model.registers]
    assert len(set(offsets)) == len(offsets) == len(model.registers)
    assert offsets == sorted(offsets)
    assert all(o % 4 == 0 and 0 <= o < regmap.WINDOW_BYTES for o in offsets)


def test_fields_inside_32_bits_without_overlap(model):
    for reg in model.registers:
        used = 0
        for f in reg.fields:
            assert 0 <= f.lsb <= f.msb < 32, (reg.name, f.name)
            assert f.mask == ((1 << f.width) - 1) << f.lsb
            assert not used & f.mask, (reg.name, f.name)
            used |= f.mask


def test_layout_check_refuses_overlaps_and_shared_offsets(model):
    """The check build_model runs catches what a bad RDL edit would do."""
    ctrl = model.register("CTRL")
    start, clear = ctrl.fields
    overlapping = dataclasses.replace(ctrl, fields=(start, dataclasses.replace(clear, lsb=0)))
    with pytest.raises(RegmapError, match="CTRL.CLEAR .* overlaps"):
        _check_layout(dataclasses.replace(model, registers=(overlapping,)))
    twin = dataclasses.replace(model.register("STATUS"), offset=ctrl.offset)
    with pytest.raises(RegmapError, match="share offset 0x40"):
        _check_layout(dataclasses.replace(model, registers=(ctrl, twin)))
    off_word = dataclasses.replace(ctrl, offset=0x42)
    with pytest.raises(RegmapError, match="not an aligned offset"):
        _check_layout(dataclasses.replace(model, registers=(off_word,)))


def test_every_register_the_contract_names_is_there(model):
    names = {r.name for r in model.registers}
    expected = {"ID", "VERSION", "CONFIG0", "CONFIG1", "WBUF_DEPTH", "ABUF_DEPTH",
                "QBUF_DEPTH", "WBEAT_WORDS", "ABEAT_WORDS", "TILE_WORDS", "CTRL", "STATUS",
                "INT_ENABLE", "INT_STATUS", *DESCRIPTOR, *COUNTERS}
    assert names == expected


def test_every_register_and_field_is_documented(model):
    for reg in model.registers:
        assert reg.title and reg.desc, reg.name
        for f in reg.fields:
            assert f.desc, (reg.name, f.name)


def test_kinds_of_the_fields(model):
    kinds = {(f.register, f.name): f.kind for f in model.fields}
    assert kinds[("ID", "ID")] == "constant"
    assert model.register("ID").reset == 0x48535331 == int.from_bytes(b"HSS1", "big")
    assert model.register("VERSION").reset == 1 << 16 | 1          # 1.1: CONFIG1.FETCH
    assert {kinds[("CTRL", n)] for n in ("START", "CLEAR")} == {"pulse"}
    assert [model.field("CTRL", n).lsb for n in ("START", "CLEAR")] == [0, 1]
    status = model.register("STATUS")
    assert [(f.name, f.lsb, f.width) for f in status.fields] == [
        ("BUSY", 0, 1), ("DONE", 1, 1), ("ERROR", 2, 1), ("ERROR_CODE", 8, 8)]
    assert {f.kind for f in status.fields} == {"status"}
    for name in ("DONE", "ERROR"):
        f = model.field("INT_STATUS", name)
        assert (f.kind, f.woclr, f.hwset, f.intr, f.enable) == (
            "interrupt", True, True, True, ("INT_ENABLE", name))
        assert model.field("INT_ENABLE", name).kind == "control"
    assert model.interrupts == tuple(model.register("INT_STATUS").fields)
    for name in DESCRIPTOR:
        assert {f.kind for f in model.register(name).fields} == {"control"}, name
        assert all(f.reset == 0 for f in model.register(name).fields)
    assert [f.name for f in model.register("FLAGS").fields] == ["LOAD_W", "LOAD_A", "REQUANT",
                                                              "RELU"]
    for name in COUNTERS:
        (f,) = model.register(name).fields
        assert (f.kind, f.width, f.sw, f.hw) == ("status", 32, "r", "w"), name


def test_error_codes_are_the_contracts(model):
    (enum,) = model.enums
    assert model.field("STATUS", "ERROR_CODE").encode == enum
    assert [(m.name, m.value) for m in enum.members] == list(zip(ERROR_CODES, range(12)))
    assert enum.value("BAD_MODE") == 7 and enum.name_of(11) == "WRITE_DECERR"
    assert enum.name_of(12) is None


def test_ports_are_named_register_field(model):
    assert model.field("CTRL", "START").port == "ctrl_start"
    assert model.field("W_ADDR", "ADDR").port == "w_addr_addr"
    assert model.field("ID", "ID").port is None
    ways = {f.port: f.port_direction for f in model.fields if f.port}
    assert ways["status_error_code"] == ways["int_status_done"] == "in"
    assert ways["ctrl_clear"] == ways["flags_relu"] == ways["int_enable_error"] == "out"


def test_the_rdl_compiles_without_warnings():
    from systemrdl import RDLCompiler
    from systemrdl.messages import MessagePrinter

    seen = []

    class Keep(MessagePrinter):
        def print_message(self, severity, text, src_ref):
            seen.append((severity.name, text))

    compiler = RDLCompiler(message_printer=Keep())
    compiler.compile_file(str(regmap.RDL_PATH))
    compiler.elaborate(regmap.TOP)
    assert seen == []


# ---- parameters ---------------------------------------------------------------------

def test_parameters_reach_the_config_registers():
    params = dict(rows=8, cols=16, value_width=4, acc_width=20, word_bytes=64, num_modes=3,
                  requant=0, tile_beats=2, wbuf_depth=70000, abuf_depth=5, qbuf_depth=1536,
                  wbeat_words=9, abeat_words=10, tile_words=300, tile_words_requant=17,
                  fetch=1)
    m = build_model(**params)
    assert dict(m.parameters) == params
    assert isinstance(m.parameters, MappingProxyType)
    where = {"rows": ("CONFIG0", "ROWS"), "cols": ("CONFIG0", "COLS"),
             "value_width": ("CONFIG0", "VALUE_WIDTH"), "acc_width": ("CONFIG0", "ACC_WIDTH"),
             "word_bytes": ("CONFIG1", "WORD_BYTES"), "num_modes": ("CONFIG1", "NUM_MODES"),
             "requant": ("CONFIG1", "REQUANT"), "tile_beats": ("CONFIG1", "TILE_BEATS"),
             "wbuf_depth": ("WBUF_DEPTH", "DEPTH"), "abuf_depth": ("ABUF_DEPTH", "DEPTH"),
             "qbuf_depth": ("QBUF_DEPTH", "DEPTH"), "wbeat_words": ("WBEAT_WORDS", "WORDS"),
             "abeat_words": ("ABEAT_WORDS", "WORDS"), "tile_words": ("TILE_WORDS", "RAW"),
             "tile_words_requant": ("TILE_WORDS", "REQUANT"), "fetch": ("CONFIG1", "FETCH")}
    assert set(where) == set(regmap.parameter_names())
    for name, (reg, field) in where.items():
        assert m.field(reg, field).reset == params[name], name
    assert m.register("CONFIG0").reset == 8 | 16 << 8 | 4 << 16 | 20 << 24
    assert m.register("TILE_WORDS").reset == 300 | 17 << 16
    assert build_model().field("CONFIG0", "ROWS").reset == 4     # the cache keys on values


def test_defaults_are_the_default_build():
    """The RDL's defaults are the README's default build, 4x4 `4:6,2:4` int8 with the
    contract's 128-bit DMA words and 128 KiB weight and activation buffers (a depth is a
    buffer's bits over its word's bits, rounded down) and 4096 requantization rows."""
    c = build_config("4:6,2:4")
    dma_bits = 128
    tile_bits = c.rows * c.cols * c.acc_width + 1
    expected = dict(rows=c.rows, cols=c.cols, value_width=c.width, acc_width=c.acc_width,
                    word_bytes=dma_bits // 8, num_modes=len(c.modes), requant=1,
                    tile_beats=c.tile_beats,
                    wbuf_depth=128 * 1024 * 8 // c.weight_beat_bits,
                    abuf_depth=128 * 1024 * 8 // c.act_beat_bits, qbuf_depth=4096,
                    wbeat_words=math.ceil(c.weight_beat_bits / dma_bits),
                    abeat_words=math.ceil(c.act_beat_bits / dma_bits),
                    tile_words=math.ceil(tile_bits / dma_bits),
                    tile_words_requant=math.ceil((c.rows * c.cols * 8 + 1) / dma_bits),
                    fetch=0)
    assert regmap.default_parameters() == expected
    assert dict(build_model().parameters) == expected


@pytest.mark.parametrize("params, message", [
    (dict(rowz=4), "hss_system has no parameter 'rowz': choose from rows, cols"),
    (dict(rows=0), "parameter rows (rows of the PE array) must be at least 1, not 0"),
    (dict(rows=-3), "parameter rows (rows of the PE array) must be at least 1, not -3"),
    (dict(cols=2.0), "parameter cols must be an integer, not 2.0"),
    (dict(requant=True), "parameter requant must be an integer, not True"),
    (dict(requant=2), "parameter requant (1 with the requantization stage, else 0) must be "
                      "between 0 and 1, not 2"),
    (dict(num_modes=33), "must be between 1 and 32, not 33"),
    (dict(word_bytes=24), "word_bytes (dma_bits / 8) must be a power of two, not 24"),
    (dict(word_bytes=4), "must be between 8 and 64, not 4"),
    # the RDL itself refuses a value wider than its field, naming the line
    (dict(rows=300), "hss_system.rdl:{line}: The reset value (300) of field 'ROWS' cannot fit "
                     "within its width (8) (with rows=300)"),
    (dict(tile_words=1 << 16), "field 'RAW' cannot fit within its width (16)"),
    (dict(wbuf_depth=1 << 32), "field 'DEPTH' cannot fit within its width (32)"),
])
def test_bad_parameters_give_one_line(params, message):
    rdl = regmap.RDL_PATH.read_text().splitlines()
    line = next(i for i, text in enumerate(rdl, 1) if "ROWS[7:0] = rows" in text)
    with pytest.raises(RegmapError, match=re.escape(message.format(line=line))) as info:
        build_model(**params)
    assert "\n" not in str(info.value)


# ---- the golden register model ------------------------------------------------------

def test_reference_reads_after_reset(model):
    ref = ReferenceRegisters(model)
    for reg in model.registers:
        assert ref.read(reg.offset) == reg.reset, reg.name
    assert ref.read(0x000) == 0x48535331
    assert ref.read(0x004) == 0x0001_0001
    assert ref.read(0x010) == 0x1A08_0404
    assert ref.irq == 0


def test_reference_strobes_and_unmapped(model):
    ref = ReferenceRegisters(model)
    w_addr = model.register("W_ADDR").offset
    ref.write(w_addr, 0x1122_3344)
    ref.write(w_addr, 0xAABB_CCDD, strobe=0b0101)
    assert ref.read(w_addr) == 0x11BB_33DD
    assert ref.read(w_addr + 3) == 0x11BB_33DD          # the low two address bits ignored
    assert ref.output("w_addr_addr") == 0x11BB_33DD
    ref.write(model.register("M_TILES").offset, 0xFFFF_FFFF)
    assert ref.read(model.register("M_TILES").offset) == 0xFFFF    # a 16-bit field
    ref.write(0x000, 0)                                  # a constant ignores writes
    assert ref.read(0x000) == 0x48535331
    for unmapped in (0x008, 0x03C, 0x0AC, 0x13C, 0xFFC):
        assert model.at(unmapped) is None
        ref.write(unmapped, 0xFFFF_FFFF)
        assert ref.read(unmapped) == 0
    assert strobe_mask(0b1001) == 0xFF00_00FF
    with pytest.raises(RegmapError, match="write strobe 0x10 is not 4 bits"):
        strobe_mask(0x10)


def test_reference_pulses_status_and_interrupts(model):
    ref = ReferenceRegisters(model)
    ctrl = model.register("CTRL").offset
    ref.write(ctrl, 0b11)
    ref.write(ctrl, 0b01)
    ref.write(ctrl, 0b10, strobe=0b0010)                # byte 0 not enabled: no pulse
    assert ref.pulses == {"ctrl_start": 2, "ctrl_clear": 1}
    assert ref.read(ctrl) == 0
    ref.drive("status_error_code", 7)
    ref.drive("status_error", 1)
    assert ref.read(model.register("STATUS").offset) == 0x0704
    with pytest.raises(RegmapError, match="status_error_code is 8 bits"):
        ref.drive("status_error_code", 256)
    with pytest.raises(KeyError, match="'ctrl_start' is not the port of a status field"):
        ref.drive("ctrl_start", 1)
    status, enable = model.register("INT_STATUS").offset, model.register("INT_ENABLE").offset
    ref.hw_set("int_status_error")
    assert ref.read(status) == 0b10 and ref.irq == 0
    ref.write(enable, 0b01)
    assert ref.irq == 0
    ref.write(enable, 0b10)
    assert ref.irq == 1
    ref.write(status, 0b01)                              # clears DONE only: ERROR stays
    assert ref.read(status) == 0b10 and ref.irq == 1
    ref.write(status, 0b10)
    assert ref.read(status) == 0 and ref.irq == 0
    ref.write(status, 0b11)                             # writing 1 never sets
    assert ref.read(status) == 0
    ref.reset()
    assert ref.read(enable) == 0 and ref.pulses["ctrl_start"] == 0


def test_model_type_checks():
    with pytest.raises(TypeError, match="ReferenceRegisters takes a regmap.RegisterMap"):
        ReferenceRegisters({"rows": 4})
