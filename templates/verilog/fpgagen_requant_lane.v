// fpgagen_requant_lane: one lane's requantization, y = requant(acc), with a LeakyRelu's product
// registered before the rounding.
//
// SPEC.md section 3: acc is rounded half away from zero (ROUND_EVEN = 1: half to even) by SHIFT
// (a left shift when <= 0) and clamped to [LO, HI] by fpgagen_requant. With LEAKY = 1 a
// negative acc is requantized as acc * ALPHA by SHIFT + ALPHA_FRAC: fpgagen_leaky_pre joins both
// paths into one accumulator p (the product by the constant ALPHA as adders), p is registered
// when ce is high (a pipeline stage between the product and the rounding), and fpgagen_requant
// rounds p by SHIFT + max(0, ALPHA_FRAC). Used per lane by fpgagen_act (acc: the registered input
// element) and fpgagen_mac_out (acc: a finished accumulator, ce: a group is finished).
// Timing: LEAKY = 0 purely combinational (clk and ce unused; the instantiating module registers
// y); LEAKY = 1 one register (p on ce), y combinational from it: y follows acc one ce later.
`default_nettype none

module fpgagen_requant_lane #(
    parameter integer ACC_WIDTH  = 24,    // bits of the signed accumulator (2..64 with LEAKY)
    parameter integer SHIFT      = 8,     // right shift (negative: left shift)
    parameter integer OUT_WIDTH  = 8,     // bits of the output word
    parameter integer LO         = -128,  // lowest output value (two's complement in OUT_WIDTH)
    parameter integer HI         = 127,   // highest output value
    parameter integer LEAKY      = 0,     // 1: LeakyRelu, a negative acc is requantized as acc * ALPHA
    parameter integer ROUND_EVEN = 0,     // 1: round half to even, 0: half away from zero
    parameter integer ALPHA      = 0,     // the LeakyRelu's integer slope (signed, |ALPHA| < 2**16)
    parameter integer ALPHA_FRAC = 0      // its frac: the negative path shifts by SHIFT + ALPHA_FRAC
) (
    input  wire                        clk,
    input  wire                        ce,    // LEAKY = 1: p of this acc is registered
    input  wire signed [ACC_WIDTH-1:0] acc,
    output wire        [OUT_WIDTH-1:0] y
);
    // with LEAKY: the bits of fpgagen_leaky_pre's p and the shift that rounds it
    localparam integer AABS = (ALPHA < 0) ? -ALPHA : ALPHA;
    localparam integer LN   = (ALPHA_FRAC < 0) ? -ALPHA_FRAC : 0;
    localparam integer LP   = (ALPHA_FRAC > 0) ? ALPHA_FRAC : 0;
    localparam integer PWN  = ACC_WIDTH + $clog2(AABS + 1) + 1 + LN;
    localparam integer QW   = (PWN > ACC_WIDTH + LP) ? PWN : ACC_WIDTH + LP;

    generate
        if (LEAKY != 0) begin : g_leaky  // product, register, then round and clamp
            wire [QW-1:0] p;
            reg  [QW-1:0] p_r;
            fpgagen_leaky_pre #(
                .ACC_WIDTH(ACC_WIDTH),
                .ALPHA(ALPHA),
                .ALPHA_FRAC(ALPHA_FRAC),
                .P_WIDTH(QW)
            ) u_pre (
                .acc(acc),
                .p(p)
            );
            always @(posedge clk) if (ce) p_r <= p;
            fpgagen_requant #(
                .ACC_WIDTH(QW),
                .SHIFT(SHIFT + LP),
                .ROUND_EVEN(ROUND_EVEN),
                .OUT_WIDTH(OUT_WIDTH),
                .LO(LO),
                .HI(HI)
            ) u_requant (
                .acc(p_r),
                .y(y)
            );
        end else begin : g_plain
            fpgagen_requant #(
                .ACC_WIDTH(ACC_WIDTH),
                .SHIFT(SHIFT),
                .ROUND_EVEN(ROUND_EVEN),
                .OUT_WIDTH(OUT_WIDTH),
                .LO(LO),
                .HI(HI)
            ) u_requant (
                .acc(acc),
                .y(y)
            );
            /* verilator lint_off UNUSEDSIGNAL */
            wire unused = clk ^ ce;  // no register without LEAKY
            /* verilator lint_on UNUSEDSIGNAL */
        end
    endgenerate
endmodule

`default_nettype wire
