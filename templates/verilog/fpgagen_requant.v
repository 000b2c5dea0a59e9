// fpgagen_requant: accumulator -> round half away from zero (or half to even) by SHIFT -> saturate to [LO, HI].
//
// SPEC.md section 3, written once for every layer: for SHIFT > 0,
//   y = (acc + 2**(SHIFT-1) - (acc < 0)) >>> SHIFT   (one adder and an arithmetic shift),
// or with ROUND_EVEN = 1 (an imported model whose quantizer rounds half to even)
//   y = (acc + 2**(SHIFT-1) - 1 + acc[SHIFT]) >>> SHIFT   (acc[SHIFT]: bit SHIFT of acc, i.e. (acc >>> SHIFT) & 1),
// for SHIFT <= 0, y = acc <<< -SHIFT; then clamp to [LO, HI] (a fused ReLU sets LO = 0).
// With LEAKY = 1 (a fused or standalone LeakyRelu of integer slope ALPHA * 2**-ALPHA_FRAC) a
// negative acc takes the second path: acc * ALPHA rounded the same way by SHIFT + ALPHA_FRAC
// (a left shift when <= 0), then the same clamp: fpgagen_leaky_pre joins both paths into one
// accumulator p (the product by the constant ALPHA as adders, never a multiplier block), rounded
// by SHIFT + max(0, ALPHA_FRAC) with the one adder.
// Purely combinational; the instantiating layer registers the result.
`default_nettype none

module fpgagen_requant #(
    parameter integer ACC_WIDTH  = 24,    // bits of the signed accumulator
    parameter integer SHIFT      = 8,     // right shift (negative: left shift)
    parameter integer OUT_WIDTH  = 8,     // bits of the output word
    parameter integer LO         = -128,  // lowest output value (two's complement in OUT_WIDTH)
    parameter integer HI         = 127,   // highest output value
    parameter integer LEAKY      = 0,     // 1: a negative acc is requantized as acc * ALPHA (LeakyRelu)
    parameter integer ROUND_EVEN = 0,     // 1: round half to even, 0: half away from zero
    parameter integer ALPHA      = 0,     // the LeakyRelu's integer slope A (signed, |A| < 2**16)
    parameter integer ALPHA_FRAC = 0      // its frac: the negative path shifts by SHIFT + ALPHA_FRAC
) (
    input  wire signed [ACC_WIDTH-1:0] acc,
    output wire        [OUT_WIDTH-1:0] y
);
    // With LEAKY the rounding takes p of fpgagen_leaky_pre (both paths in one accumulator) by
    // SHIFT + max(0, ALPHA_FRAC); without, acc by SHIFT.
    localparam integer AABS = (ALPHA < 0) ? -ALPHA : ALPHA;
    localparam integer AB   = $clog2(AABS + 1);                     // bits of |ALPHA|
    localparam integer LN   = (ALPHA_FRAC < 0) ? -ALPHA_FRAC : 0;
    localparam integer LP   = (ALPHA_FRAC > 0) ? ALPHA_FRAC : 0;
    localparam integer PWN  = (ACC_WIDTH + AB + 1 + LN > ACC_WIDTH + LP) ? ACC_WIDTH + AB + 1 + LN : ACC_WIDTH + LP;
    localparam integer SW   = (LEAKY != 0) ? PWN : ACC_WIDTH;       // bits of what is rounded
    localparam integer S    = (LEAKY != 0) ? SHIFT + LP : SHIFT;     // its shift
    // Wide enough for the rounding add and for a left shift.
    localparam integer LSH = (S < 0) ? -S : 0;
    localparam integer W1  = (SW + LSH + 2 > 33) ? SW + LSH + 2 : 33;
    localparam integer W   = (W1 > S + 2) ? W1 : S + 2;
    localparam signed [31:0] LO32 = LO;
    localparam signed [31:0] HI32 = HI;

    initial begin
        if (ACC_WIDTH < 2 || ACC_WIDTH > 96) $error("fpgagen_requant %m: ACC_WIDTH %0d must be 2..96", ACC_WIDTH);
        if (LO > HI) $error("fpgagen_requant %m: LO %0d > HI %0d", LO, HI);
        if (ROUND_EVEN != 0 && ROUND_EVEN != 1) $error("fpgagen_requant %m: ROUND_EVEN %0d must be 0 or 1", ROUND_EVEN);
    end

    wire signed [SW-1:0] src;
    generate
        if (LEAKY != 0) begin : g_leaky
            fpgagen_leaky_pre #(
                .ACC_WIDTH(ACC_WIDTH),
                .ALPHA(ALPHA),
                .ALPHA_FRAC(ALPHA_FRAC),
                .P_WIDTH(SW)
            ) u_pre (
                .acc(acc),
                .p(src)
            );
        end else begin : g_plain
            assign src = acc;
        end
    endgenerate

    wire signed [W-1:0] wide = {{(W-SW){src[SW-1]}}, src};
    wire signed [W-1:0] shifted;
    generate
        if (S > 0) begin : g_round
            wire signed [W-1:0] half = $signed({{(W-1){1'b0}}, 1'b1}) <<< (S - 1);
            if (ROUND_EVEN != 0) begin : g_even
                // half - 1 + bit S (W >= S + 2: wide[S] is the sign bit when S >= SW)
                wire signed [W-1:0] odd = {{(W-1){1'b0}}, wide[S]};
                assign shifted = (wide + half - $signed({{(W-1){1'b0}}, 1'b1}) + odd) >>> S;
            end else begin : g_away
                wire signed [W-1:0] neg = {{(W-1){1'b0}}, src[SW-1]};
                assign shifted = (wide + half - neg) >>> S;
            end
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
