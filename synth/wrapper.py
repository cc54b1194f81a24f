"""A pin-light register wrapper for place and route.

nextpnr cannot place a design with hundreds of pins, and reports no Fmax for
paths that start or end at pins. The wrapper gives the design four pins
(clk, rst, din, dout) while keeping every input and output of the inner
design register-to-register and observable, so nothing is optimized away:

* all inner inputs (except clk/rst) are slices of one long shift register
  loaded serially from ``din``;
* all inner outputs are registered, then folded into a rotating XOR register
  (``fold <= out_q ^ rotate(fold)``) whose top bit is ``dout``. Each bit of
  ``fold`` depends on two flip-flops only, so the wrapper adds one LUT level
  after the output registers and never sets the critical path, unlike an
  XOR tree over thousands of bits; yet every output bit reaches ``dout``.
"""

from __future__ import annotations

import re

__all__ = ["pin_light_wrapper"]

_SIMPLE_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_DIRS = {"input": "input", "in": "input", "i": "input",
         "output": "output", "out": "output", "o": "output"}


def _vid(name: str) -> str:
    """Verilog identifier, escaped when needed (Amaranth names like ``top.sub``)."""
    if name.startswith("\\"):
        name = name[1:]
    return name if _SIMPLE_ID.fullmatch(name) else f"\\{name} "


def pin_light_wrapper(top: str, ports, *, name: str = "pnr_wrap",
                      clock: str = "clk", reset: str = "rst") -> str:
    """Verilog of module ``name(clk, rst, din, dout)`` instantiating ``top``.

    ``ports`` is ``[(name, direction, width)]`` with direction "input" or
    "output" (as returned by ``synth.top_ports``). Ports named ``clock`` and
    ``reset`` are connected straight to the wrapper's clk and rst.
    """
    ins, outs, conns = [], [], []
    for pname, direction, width in ports:
        pname = pname[1:] if pname.startswith("\\") else pname
        d = _DIRS.get(str(direction).lower())
        if d is None:
            raise ValueError(f"port {pname!r}: unsupported direction {direction!r}")
        if int(width) < 1:
            raise ValueError(f"port {pname!r}: width {width!r} < 1")
        if pname == clock and d == "input":
            conns.append((pname, "clk"))
        elif pname == reset and d == "input":
            conns.append((pname, "rst"))
        else:
            (ins if d == "input" else outs).append((pname, int(width)))
    if not outs:
        raise ValueError(f"{top}: no outputs, nothing would survive synthesis")

    n_in = sum(w for _, w in ins)
    n_out = sum(w for _, w in outs)
    lines = [
        f"// Pin-light wrapper around {top}: {n_in} input bits from a shift register,",
        f"// {n_out} output bits registered and XOR-folded into dout.",
        f"module {_vid(name)}(input wire clk, input wire rst, input wire din, output wire dout);",
    ]
    pos = 0
    if n_in:
        lines.append(f"  reg [{n_in - 1}:0] in_sr;")
        shift = "din" if n_in == 1 else f"{{in_sr[{n_in - 2}:0], din}}"
        lines.append(f"  always @(posedge clk) in_sr <= {shift};")
        for pname, w in ins:
            conns.append((pname, f"in_sr[{pos + w - 1}:{pos}]"))
            pos += w
    else:
        lines.append("  wire unused_din = din;")
    rot = "fold" if n_out == 1 else f"{{fold[{n_out - 2}:0], fold[{n_out - 1}]}}"
    lines += [
        f"  wire [{n_out - 1}:0] out_w;",
        f"  reg [{n_out - 1}:0] out_q;",
        f"  reg [{n_out - 1}:0] fold;",
        "  always @(posedge clk) begin",
        "    out_q <= out_w;",
        f"    fold <= out_q ^ {rot};",
        "  end",
        f"  assign dout = fold[{n_out - 1}];",
    ]
    pos = 0
    for pname, w in outs:
        conns.append((pname, f"out_w[{pos + w - 1}:{pos}]"))
        pos += w
    body = ",\n".join(f"    .{_vid(p)}({sig})" for p, sig in conns)
    lines += [f"  {_vid(top)} dut (", body, "  );", "endmodule", ""]
    return "\n".join(lines)
