// fpgagen_leaky_pre: the LeakyRelu's two paths as one accumulator, p = acc * 2**max(0, F) for
// acc >= 0 and acc * ALPHA * 2**max(0, -F) for acc < 0 (F = ALPHA_FRAC).
//
// SPEC.md section 3: a fused LeakyRelu requantizes acc >= 0 by SHIFT and acc * ALPHA by
// SHIFT + F. Both equal p requantized by SHIFT + max(0, F) (a left shift before a rounding right
// shift is exact), so fpgagen_requant rounds and clamps p once. The product by the constant
// ALPHA is a balanced tree of shifted copies of acc (one adder per set bit of |ALPHA| less one),
// never a multiplier block. Purely combinational; fpgagen_requant_lane (the lanes of
// fpgagen_mac_out and fpgagen_act) and fpgagen_concat register p (a pipeline stage between the
// product and the rounding: on the ECP5-25F it lifts the digits_ops model from 62.5 to 104 MHz),
// fpgagen_requant's own LEAKY mode (used by fpgagen_add and fpgagen_avgpool) rounds it directly.
`default_nettype none

module fpgagen_leaky_pre #(
    parameter integer ACC_WIDTH  = 24,   // bits of the signed accumulator
    parameter integer ALPHA      = 205,  // the LeakyRelu's integer slope (signed, |ALPHA| < 2**16)
    parameter integer ALPHA_FRAC = 11,   // its frac F
    parameter integer P_WIDTH    = 44    // bits of p: at least P_MIN (below)
) (
    input  wire signed [ACC_WIDTH-1:0] acc,
    output wire signed [P_WIDTH-1:0]   p
);
    localparam integer AABS = (ALPHA < 0) ? -ALPHA : ALPHA;
    localparam integer AB   = $clog2(AABS + 1);                    // bits of |ALPHA|
    localparam integer LN   = (ALPHA_FRAC < 0) ? -ALPHA_FRAC : 0;  // left shift of the negative path
    localparam integer LP   = (ALPHA_FRAC > 0) ? ALPHA_FRAC : 0;   // left shift of the positive path
    localparam integer WN   = ACC_WIDTH + AB + 1 + LN;             // acc * ALPHA << LN, with its sign
    localparam integer WPOS = ACC_WIDTH + LP;
    localparam integer P_MIN = (WN > WPOS) ? WN : WPOS;
    localparam integer NT   = (AB > 0) ? AB : 1;                   // leaves of the product tree

    initial begin
        if (ACC_WIDTH < 2 || ACC_WIDTH > 64) $error("fpgagen_leaky_pre %m: ACC_WIDTH %0d must be 2..64", ACC_WIDTH);
        if (ALPHA <= -65536 || ALPHA >= 65536) $error("fpgagen_leaky_pre %m: ALPHA %0d must lie in -65535..65535", ALPHA);
        if (P_WIDTH < P_MIN) $error("fpgagen_leaky_pre %m: P_WIDTH %0d must be at least %0d", P_WIDTH, P_MIN);
    end

    // nodes of the product tree: level 0 the NT leaves (acc << k where bit k of |ALPHA| is set,
    // else 0), each level the pairwise sums of the one below (rounded up)
    function integer level_nodes(input integer l);
        integer j, n;
        begin
            n = NT;
            for (j = 0; j < l; j = j + 1) n = (n + 1) / 2;
            level_nodes = n;
        end
    endfunction
    localparam integer LV = $clog2(NT);          // tree levels above the leaves

    wire signed [P_WIDTH-1:0] wide = {{(P_WIDTH-ACC_WIDTH){acc[ACC_WIDTH-1]}}, acc};
    genvar gl, gi;
    generate
        for (gl = 0; gl <= LV; gl = gl + 1) begin : g_lv
            wire [level_nodes(gl)*P_WIDTH-1:0] v;  // the nodes of level gl, node i at [i*P_WIDTH +: P_WIDTH]
            for (gi = 0; gi < level_nodes(gl); gi = gi + 1) begin : g_n
                if (gl == 0) begin : g_leaf
                    if (((AABS >> gi) & 1) != 0) begin : g_bit
                        assign v[gi*P_WIDTH +: P_WIDTH] = wide <<< gi;
                    end else begin : g_zero
                        assign v[gi*P_WIDTH +: P_WIDTH] = {P_WIDTH{1'b0}};
                    end
                end else if (2 * gi + 1 < level_nodes(gl - 1)) begin : g_add
                    assign v[gi*P_WIDTH +: P_WIDTH] = g_lv[gl-1].v[2*gi*P_WIDTH +: P_WIDTH]
                                                    + g_lv[gl-1].v[(2*gi+1)*P_WIDTH +: P_WIDTH];
                end else begin : g_pass
                    assign v[gi*P_WIDTH +: P_WIDTH] = g_lv[gl-1].v[2*gi*P_WIDTH +: P_WIDTH];
                end
            end
        end
    endgenerate
    wire signed [P_WIDTH-1:0] mag  = g_lv[LV].v[P_WIDTH-1:0];   // acc * |ALPHA|
    wire signed [P_WIDTH-1:0] prod = (ALPHA < 0) ? -mag : mag;
    assign p = acc[ACC_WIDTH-1] ? (prod <<< LN) : (wide <<< LP);
endmodule

`default_nettype wire
