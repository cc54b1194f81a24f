// cells_sim.v: behavioural simulation models of every cell of synth/cells.lib.
//
// Written for this project. Port names and functions are those of cells.lib; a netlist
// mapped by `dfflibmap`/`abc -liberty cells.lib` and written by `write_verilog -noattr`
// simulates with this file on Icarus Verilog (-g2012) and Verilator. Zero delay: every
// output settles in the time step of its inputs (no glitches, no timing), which is what
// synth/toggle.py counts toggles on.
//
// Flip-flops are positive-edge; DFFR clears and DFFS presets asynchronously (active high).
// They start unknown (x), as silicon does: the design's reset must initialize what matters,
// and the testbench still has to pass.
// sim_tests/test_synth_toggle.py checks that every cell of cells.lib has a model here.

module NOT(A, Y);
  input A;
  output Y;
  assign Y = ~A;
endmodule

module BUF(A, Y);
  input A;
  output Y;
  assign Y = A;
endmodule

module NAND2(A, B, Y);
  input A, B;
  output Y;
  assign Y = ~(A & B);
endmodule

module NOR2(A, B, Y);
  input A, B;
  output Y;
  assign Y = ~(A | B);
endmodule

module AND2(A, B, Y);
  input A, B;
  output Y;
  assign Y = A & B;
endmodule

module OR2(A, B, Y);
  input A, B;
  output Y;
  assign Y = A | B;
endmodule

module AOI21(A, B, C, Y);
  input A, B, C;
  output Y;
  assign Y = ~((A & B) | C);
endmodule

module OAI21(A, B, C, Y);
  input A, B, C;
  output Y;
  assign Y = ~((A | B) & C);
endmodule

module AOI22(A, B, C, D, Y);
  input A, B, C, D;
  output Y;
  assign Y = ~((A & B) | (C & D));
endmodule

module OAI22(A, B, C, D, Y);
  input A, B, C, D;
  output Y;
  assign Y = ~((A | B) & (C | D));
endmodule

module XOR2(A, B, Y);
  input A, B;
  output Y;
  assign Y = A ^ B;
endmodule

module XNOR2(A, B, Y);
  input A, B;
  output Y;
  assign Y = ~(A ^ B);
endmodule

module MUX2(A, B, S, Y);
  input A, B, S;
  output Y;
  assign Y = S ? B : A;
endmodule

module DFF(C, D, Q);
  input C, D;
  output reg Q;
  always @(posedge C)
    Q <= D;
endmodule

module DFFR(C, D, R, Q);
  input C, D, R;
  output reg Q;
  always @(posedge C or posedge R)
    if (R) Q <= 1'b0;
    else Q <= D;
endmodule

module DFFS(C, D, S, Q);
  input C, D, S;
  output reg Q;
  always @(posedge C or posedge S)
    if (S) Q <= 1'b1;
    else Q <= D;
endmodule
