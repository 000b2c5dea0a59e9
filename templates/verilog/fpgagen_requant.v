// fpgagen_requant: accumulator -> round half away from zero by SHIFT -> saturate to [LO, HI].
//
// SPEC.md section 3, written once for every layer: for SHIFT > 0,
//   y = (acc + 2**(SHIFT-1) - (acc < 0)) >>> SHIFT   (one adder and an arithmetic shift),
// for SHIFT <= 0, y = acc <<< -SHIFT; then clamp to [LO, HI] (a fused ReLU sets LO = 0).
// With LEAKY = 1 (a fused or standalone LeakyRelu of integer slope ALPHA * 2**-ALPHA_FRAC) a
// negative acc takes the second path: acc * ALPHA rounded the same way by SHIFT + ALPHA_FRAC
// (a left shift when <= 0), then the same clamp. The product by the constant ALPHA is a sum of
// shifted copies of acc (one adder per set bit of |ALPHA|), never a multiplier block.
// Purely combinational; the instantiating layer registers the result.
`default_nettype none

module fpgagen_requant #(
    parameter integer ACC_WIDTH  = 24,    // bits of the signed accumulator
    parameter integer SHIFT      = 8,     // right shift (negative: left shift)
    parameter integer OUT_WIDTH  = 8,     // bits of the output word
    parameter integer LO         = -128,  // lowest output value (two's complement in OUT_WIDTH)
    parameter integer HI         = 127,   // highest output value
    parameter integer LEAKY      = 0,     // 1: a negative acc is requantized as acc * ALPHA (LeakyRelu)
    parameter integer ALPHA      = 0,     // the LeakyRelu's integer slope A (signed, |A| < 2**16)
    parameter integer ALPHA_FRAC = 0      // its frac: the negative path shifts by SHIFT + ALPHA_FRAC
) (
    input  wire signed [ACC_WIDTH-1:0] acc,
    output wire        [OUT_WIDTH-1:0] y
);
    // bits of a non-negative integer (0 for 0)
    function integer ubits(input integer v);
        integer n;
        begin
            n = 0;
            while (n < 31 && (v >> n) != 0) n = n + 1;
            ubits = n;
        end
    endfunction

    // Wide enough for the rounding add and for a left shift (of either path).
    localparam integer LSH  = (SHIFT < 0) ? -SHIFT : 0;
    localparam integer W0   = (ACC_WIDTH + LSH + 2 > 33) ? ACC_WIDTH + LSH + 2 : 33;
    localparam integer AABS = (ALPHA < 0) ? -ALPHA : ALPHA;
    localparam integer AB   = ubits(AABS);                    // bits of |ALPHA|
    localparam integer NSH  = SHIFT + ALPHA_FRAC;             // shift of the negative path
    localparam integer NLSH = (NSH < 0) ? -NSH : 0;
    localparam integer WP   = ACC_WIDTH + AB + 1 + NLSH + 2;  // acc * ALPHA, shifted, rounded
    localparam integer WN   = (WP > NSH + 2) ? WP : NSH + 2;
    localparam integer W    = (LEAKY != 0 && WN > W0) ? WN : W0;
    localparam signed [31:0] LO32 = LO;
    localparam signed [31:0] HI32 = HI;

    initial begin
        if (ACC_WIDTH < 2 || ACC_WIDTH > 64) $error("fpgagen_requant %m: ACC_WIDTH %0d must be 2..64", ACC_WIDTH);
        if (LO > HI) $error("fpgagen_requant %m: LO %0d > HI %0d", LO, HI);
        if (LEAKY != 0 && (ALPHA <= -65536 || ALPHA >= 65536))
            $error("fpgagen_requant %m: ALPHA %0d must lie in -65535..65535", ALPHA);
    end

    wire signed [W-1:0] wide = {{(W-ACC_WIDTH){acc[ACC_WIDTH-1]}}, acc};
    wire signed [W-1:0] pos;      // the path of acc >= 0 (every acc without LEAKY)
    wire signed [W-1:0] shifted;
    generate
        if (SHIFT > 0) begin : g_round
            wire signed [W-1:0] half = $signed({{(W-1){1'b0}}, 1'b1}) <<< (SHIFT - 1);
            wire signed [W-1:0] neg  = {{(W-1){1'b0}}, acc[ACC_WIDTH-1]};
            assign pos = (wide + half - neg) >>> SHIFT;
        end else begin : g_left
            assign pos = wide <<< LSH;
        end

        if (LEAKY != 0) begin : g_leaky
            // acc * |ALPHA| as a sum of shifted copies: part k holds the terms of bits 0..k-1
            wire [(AB+1)*W-1:0] part;
            genvar gk;
            assign part[0 +: W] = {W{1'b0}};
            for (gk = 0; gk < AB; gk = gk + 1) begin : g_bit
                if (((AABS >> gk) & 1) != 0) begin : g_add
                    assign part[(gk+1)*W +: W] = part[gk*W +: W] + (wide <<< gk);
                end else begin : g_skip
                    assign part[(gk+1)*W +: W] = part[gk*W +: W];
                end
            end
            wire signed [W-1:0] mag  = part[AB*W +: W];
            wire signed [W-1:0] prod = (ALPHA < 0) ? -mag : mag;
            wire signed [W-1:0] negp;
            if (NSH > 0) begin : g_nround
                wire signed [W-1:0] half = $signed({{(W-1){1'b0}}, 1'b1}) <<< (NSH - 1);
                wire signed [W-1:0] neg  = {{(W-1){1'b0}}, prod[W-1]};
                assign negp = (prod + half - neg) >>> NSH;
            end else begin : g_nleft
                assign negp = prod <<< NLSH;
            end
            assign shifted = acc[ACC_WIDTH-1] ? negp : pos;
        end else begin : g_plain
            assign shifted = pos;
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
