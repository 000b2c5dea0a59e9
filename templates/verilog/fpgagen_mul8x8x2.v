// fpgagen_mul8x8x2: two independent 8 x 8 products per cycle, p_hi = a_hi * b_hi and
// p_lo = a_lo * b_lo, for fpgagen_mac_out's DSP_PAIR = 1 (two int8 products per iCE40 SB_MAC16).
//
// Operands are two's complement when A_SIGNED / B_SIGNED is 1, else unsigned; each product is
// the 16 low bits of the 16 x 16 product of the extended operands, as the SB_MAC16 computes it:
// exact as a two's complement 16-bit value whenever one operand is signed (u8 x s8 lies in
// [-32640, 32385], s8 x s8 in [-16256, 16384]), as an unsigned one when neither is. Latency 2:
// the operands are registered, then the products (no clock enable, no reset).
//
// With `FPGAGEN_SB_MAC16 defined (fpgagen synth for an iCE40 part and the verilog-netlist target
// of an iCE40 design define it for Yosys) this is one SB_MAC16 in its 8x8 mode: A = {a_hi, a_lo},
// B = {b_hi, b_lo}, the A and B input registers and the two 8x8 product registers on, the outputs
// selecting the registered 8x8 products (O[31:16] = top, O[15:0] = bottom). Otherwise it is a
// behavioural model of exactly that function (RTL simulation, lint, other tools); the
// verilog-netlist target simulates the SB_MAC16 with Yosys' own model (share/ice40/cells_sim.v).
//
// SHARED = 1 (fpgagen_mac_out's DSP_PAIR = 2, for the 7-series DSP48E1): the two products share
// their A operand, p_hi = a_lo * b_hi and p_lo = a_lo * b_lo (a_hi is not read), computed by one
// 25 x 18 multiplication P = A * Bp of A = a_lo extended to 18 bits and the packed
// Bp = b_hi * 2**16 + b_lo (25 bits, two's complement; the packing adder sits before the
// operand register). Then p_lo = P[15:0], and p_hi = P[31:16] + P[15] where a product can be
// negative (A_SIGNED or B_SIGNED: P[15] is the borrow of a negative low product; unsigned
// products, in [0, 65025], borrow nothing): the same 16-bit words as above. Yosys' synth_xilinx
// maps the registered 25 x 18 product to one DSP48E1 (AREG/BREG and MREG/PREG inside); the
// correction is a 16-bit adder in the fabric. Latency 2 as above.
`default_nettype none

module fpgagen_mul8x8x2 #(
    parameter integer A_SIGNED = 1,  // 1: a_hi and a_lo are two's complement, 0: unsigned
    parameter integer B_SIGNED = 1,  // 1: b_hi and b_lo are two's complement, 0: unsigned
    parameter integer SHARED   = 0   // 1: both products take a_lo (one 25 x 18 multiplier, see above)
) (
    input  wire        clk,
    /* verilator lint_off UNUSEDSIGNAL */  // SHARED = 1 does not read a_hi
    input  wire [7:0]  a_hi,
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire [7:0]  b_hi,
    input  wire [7:0]  a_lo,
    input  wire [7:0]  b_lo,
    output wire [15:0] p_hi,  // a_hi * b_hi of two cycles ago
    output wire [15:0] p_lo   // a_lo * b_lo of two cycles ago
);
    localparam [0:0] AS = (A_SIGNED != 0) ? 1'b1 : 1'b0;
    localparam [0:0] BS = (B_SIGNED != 0) ? 1'b1 : 1'b0;
generate if (SHARED != 0) begin : g_shared
    wire signed [17:0] ae = $signed({{10{AS & a_lo[7]}}, a_lo});
    wire signed [24:0] bp = $signed({{1{BS & b_hi[7]}}, b_hi, 16'd0}) + $signed({{17{BS & b_lo[7]}}, b_lo});
    reg  signed [17:0] ar;        // the A input register (the DSP48E1's BREG: its 18-bit port)
    reg  signed [24:0] br;        // the packed B input register (AREG: the 25-bit port)
    reg  signed [42:0] pr;        // the product register (MREG)
    always @(posedge clk) begin
        ar <= ae;
        br <= bp;
        pr <= ar * br;
    end
    /* verilator lint_off UNUSEDSIGNAL */  // the bits above the high product
    wire [42:0] pw = pr;
    /* verilator lint_on UNUSEDSIGNAL */
    assign p_lo = pw[15:0];
    assign p_hi = pw[31:16] + {15'd0, (AS | BS) & pw[15]};
end else begin : g_two
`ifdef FPGAGEN_SB_MAC16
    /* verilator lint_off PINCONNECTEMPTY */
    SB_MAC16 #(
        .NEG_TRIGGER(1'b0),
        .C_REG(1'b0), .A_REG(1'b1), .B_REG(1'b1), .D_REG(1'b0),
        .TOP_8x8_MULT_REG(1'b1), .BOT_8x8_MULT_REG(1'b1),
        .PIPELINE_16x16_MULT_REG1(1'b0), .PIPELINE_16x16_MULT_REG2(1'b0),
        .TOPOUTPUT_SELECT(2'b10),        // the registered top 8x8 product
        .TOPADDSUB_LOWERINPUT(2'b00), .TOPADDSUB_UPPERINPUT(1'b0), .TOPADDSUB_CARRYSELECT(2'b00),
        .BOTOUTPUT_SELECT(2'b10),        // the registered bottom 8x8 product
        .BOTADDSUB_LOWERINPUT(2'b00), .BOTADDSUB_UPPERINPUT(1'b0), .BOTADDSUB_CARRYSELECT(2'b00),
        .MODE_8x8(1'b1),
        .A_SIGNED(AS), .B_SIGNED(BS)
    ) u_mac16 (
        .CLK(clk), .CE(1'b1),
        .C(16'd0), .A({a_hi, a_lo}), .B({b_hi, b_lo}), .D(16'd0),
        .AHOLD(1'b0), .BHOLD(1'b0), .CHOLD(1'b0), .DHOLD(1'b0),
        .IRSTTOP(1'b0), .IRSTBOT(1'b0), .ORSTTOP(1'b0), .ORSTBOT(1'b0),
        .OLOADTOP(1'b0), .OLOADBOT(1'b0), .ADDSUBTOP(1'b0), .ADDSUBBOT(1'b0),
        .OHOLDTOP(1'b0), .OHOLDBOT(1'b0), .CI(1'b0), .ACCUMCI(1'b0), .SIGNEXTIN(1'b0),
        .O({p_hi, p_lo}), .CO(), .ACCUMCO(), .SIGNEXTOUT()
    );
    /* verilator lint_on PINCONNECTEMPTY */
`else
    reg [7:0]  ah, bh, al, bl;  // the A and B input registers
    reg [15:0] ph, pl;          // the 8x8 product registers
    wire [15:0] ahe = {{8{AS & ah[7]}}, ah};
    wire [15:0] bhe = {{8{BS & bh[7]}}, bh};
    wire [15:0] ale = {{8{AS & al[7]}}, al};
    wire [15:0] ble = {{8{BS & bl[7]}}, bl};
    always @(posedge clk) begin
        ah <= a_hi;
        bh <= b_hi;
        al <= a_lo;
        bl <= b_lo;
        ph <= ahe * bhe;  // 16 x 16, the low 16 bits: the SB_MAC16's 8x8 product
        pl <= ale * ble;
    end
    assign p_hi = ph;
    assign p_lo = pl;
`endif
end endgenerate
endmodule

`default_nettype wire
