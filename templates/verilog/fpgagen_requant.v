// fpgagen_requant: accumulator -> round half away from zero by SHIFT -> saturate to [LO, HI].
//
// SPEC.md section 3, written once for every layer: for SHIFT > 0,
//   y = (acc + 2**(SHIFT-1) - (acc < 0)) >>> SHIFT   (one adder and an arithmetic shift),
// for SHIFT <= 0, y = acc <<< -SHIFT; then clamp to [LO, HI] (a fused ReLU sets LO = 0).
// Purely combinational; the instantiating layer registers the result.
`default_nettype none

module fpgagen_requant #(
    parameter integer ACC_WIDTH = 24,  // bits of the signed accumulator
    parameter integer SHIFT     = 8,   // right shift (negative: left shift)
    parameter integer OUT_WIDTH = 8,   // bits of the output word
    parameter integer LO        = -128,  // lowest output value (two's complement in OUT_WIDTH)
    parameter integer HI        = 127    // highest output value
) (
    input  wire signed [ACC_WIDTH-1:0] acc,
    output wire        [OUT_WIDTH-1:0] y
);
    // Wide enough for the rounding add and for a left shift.
    localparam integer LSH = (SHIFT < 0) ? -SHIFT : 0;
    localparam integer W   = (ACC_WIDTH + LSH + 2 > 33) ? ACC_WIDTH + LSH + 2 : 33;
    localparam signed [31:0] LO32 = LO;
    localparam signed [31:0] HI32 = HI;

    initial begin
        if (ACC_WIDTH < 2 || ACC_WIDTH > 64) $error("fpgagen_requant %m: ACC_WIDTH %0d must be 2..64", ACC_WIDTH);
        if (LO > HI) $error("fpgagen_requant %m: LO %0d > HI %0d", LO, HI);
    end

    wire signed [W-1:0] wide = {{(W-ACC_WIDTH){acc[ACC_WIDTH-1]}}, acc};
    wire signed [W-1:0] shifted;
    generate
        if (SHIFT > 0) begin : g_round
            wire signed [W-1:0] half = $signed({{(W-1){1'b0}}, 1'b1}) <<< (SHIFT - 1);
            wire signed [W-1:0] neg  = {{(W-1){1'b0}}, acc[ACC_WIDTH-1]};
            assign shifted = (wide + half - neg) >>> SHIFT;
        end else begin : g_left
            assign shifted = wide <<< LSH;
        end
    endgenerate

    wire signed [W-1:0] lo_w = {{(W-32){LO32[31]}}, LO32};
    wire signed [W-1:0] hi_w = {{(W-32){HI32[31]}}, HI32};
    /* verilator lint_off UNUSEDSIGNAL */  // only the low OUT_WIDTH bits leave the module
    wire signed [W-1:0] clamped = (shifted < lo_w) ? lo_w : (shifted > hi_w) ? hi_w : shifted;
    /* verilator lint_on UNUSEDSIGNAL */
    assign y = clamped[OUT_WIDTH-1:0];
endmodule

`default_nettype wire
