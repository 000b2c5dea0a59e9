// fpgagen_mac_out: the multiply-accumulate, requantize and output tail of fpgagen_dense and
// fpgagen_conv2d, y = requant(B + sum of x * W) for PE outputs at a time.
//
// The instantiating layer walks its (output group, input chunk) schedule and presents one chunk
// per cycle for one cycle (valid high): SIMD input elements x (element s at bits
// [s*IN_WIDTH +: IN_WIDTH]; with XG > 1 input groups XG such words, word q read by outputs
// q*PE/XG .. (q+1)*PE/XG-1: a depthwise conv's lanes of different channels), the PE*SIMD weights w of the group (element (p, s) at bits
// [(p*SIMD + s)*W_WIDTH +: W_WIDTH], two's complement) and the PE biases of the group (bits
// [p*BIAS_WIDTH +: BIAS_WIDTH], two's complement, at the accumulator frac), with first (the
// group's first chunk) and last (its last chunk); CHUNKS chunks make a group. These come from
// registers of the layer (its stage B, the ROM and buffer outputs).
//
// The pipeline never stalls: every stage is a register without a clock enable, so no stall
// signal fans out to the multipliers. Instead the layer issues a group's last chunk only while
// ready is high and says so on issue (in the cycle before that chunk arrives on valid/last):
// ready counts the free places of an NR-group result buffer, less the groups on their way to it,
// so every finished group finds a place. ready and every output come from registers only.
//
// Stages after the input: R registers x, w and the bias (DSP input registers); P registers the
// PE x SIMD products and, per output, one more leaf, the bias on the group's first chunk (else
// 0); LV = clog2(SIMD + 1) registered adder levels sum the leaves of each output; the
// accumulator adds the sum on top of 0 (first chunk) or itself, modulo 2**AW with AW > ACC_WIDTH
// (exact, since the result fits ACC_WIDTH bits). A finished group is requantized with
// fpgagen_requant_lane (round half away from zero by SHIFT, clamp to [LO, HI]) into the result buffer,
// whose groups leave EW_OUT outputs per beat (EW_OUT divides PE; outputs b*EW_OUT .. of a group
// in beat b, element e at [e*OUT_WIDTH +: OUT_WIDTH]; 1: one output per beat), output 0 first,
// through a 2-deep fpgagen_fifo; tlast marks the last beat of every N_OUT outputs. With a fused LeakyRelu (LEAKY = 1) the product
// fpgagen_leaky_pre forms is registered in fpgagen_requant_lane before the rounding (one more cycle). Latency from a
// group's last chunk on valid to its first output on m_axis: LV + 5 cycles (LV + 6 with LEAKY).
//
// DSP_PAIR = 1 (inputs and weights of at most 8 bits): the products k = p*SIMD + s are computed
// in pairs (2j, 2j+1) by fpgagen_mul8x8x2, two per iCE40 SB_MAC16 in its 8x8 mode (the last alone
// when PE*SIMD is odd), whose input and product registers are stages R and P: the same
// timing and results as the products of the `*` branch (DSP_PAIR = 0). DSP_PAIR = 2 (the same
// widths; PE/XG even): products (2q, s) and (2q+1, s), k = p*SIMD + s, which read the same input
// element, share one fpgagen_mul8x8x2 with SHARED = 1, one 25 x 18 multiplication (a 7-series
// DSP48E1) of the input and the two weights packed; same stages, timing and results.
`default_nettype none

module fpgagen_mac_out #(
    parameter integer IN_WIDTH   = 8,     // bits of input elements
    parameter integer IN_SIGNED  = 1,     // 1: inputs are two's complement, 0: unsigned
    parameter integer W_WIDTH    = 8,     // bits of the (signed) weights
    parameter integer BIAS_WIDTH = 16,    // bits of the (signed) biases
    parameter integer OUT_WIDTH  = 8,     // bits of output elements
    parameter integer PE         = 1,     // outputs computed in parallel
    parameter integer SIMD       = 1,     // inputs multiplied in parallel per output
    parameter integer XG         = 1,     // input groups: outputs p*XG/PE .. share x group p / (PE/XG) (divides PE)
    parameter integer CHUNKS     = 1,     // chunks per output group (sizes the result buffer)
    parameter integer N_OUT      = 8,     // output elements per frame (tlast on the last)
    parameter integer ACC_WIDTH  = 24,    // bits that hold every accumulator value exactly
    parameter integer SHIFT      = 8,     // requantization right shift (negative: left shift)
    parameter integer LO         = -128,  // lowest output value
    parameter integer HI         = 127,   // highest output value
    parameter integer LEAKY      = 0,     // 1: LeakyRelu, a negative accumulator is requantized as acc * ALPHA
    parameter integer ROUND_EVEN = 0,     // 1: round half to even (an imported model's quantizer), 0: half away from zero
    parameter integer ALPHA      = 0,     // the LeakyRelu's integer slope (signed)
    parameter integer ALPHA_FRAC = 0,     // its frac: the negative path shifts by SHIFT + ALPHA_FRAC
    parameter integer CHANNELS   = 1,     // output channels of one pixel (PE divides it): the period of the groups
    parameter integer ALIGN_MAX  = 0,     // per-channel weight formats: the largest pre-alignment (0: per-tensor)
    parameter integer ALIGN_BITS = 1,     // bits of one ALIGN entry (>= clog2(ALIGN_MAX + 1))
    parameter [CHANNELS*ALIGN_BITS-1:0] ALIGN = {CHANNELS*ALIGN_BITS{1'b0}},  // channel c's left shift at [c*ALIGN_BITS +: ALIGN_BITS]
    parameter integer DSP_PAIR   = 0,     // 1: two products per fpgagen_mul8x8x2 (IN_WIDTH, W_WIDTH <= 8); 2: two sharing the input
    parameter integer EW_OUT     = 1      // output elements per beat (divides PE): outputs b*EW_OUT + e of a group in beat b
) (
    input  wire                         clk,
    input  wire                         rst,     // synchronous, active high

    output wire                         ready,   // a group's last chunk may be issued now
    input  wire                         issue,   // a group's last chunk is issued now (valid next cycle)
    input  wire                         valid,   // x, w, bias hold a chunk (this cycle only)
    input  wire                         first,   // ... the first of its output group
    input  wire                         last,    // ... the last of its output group
    input  wire [XG*SIMD*IN_WIDTH-1:0]  x,
    input  wire [PE*SIMD*W_WIDTH-1:0]   w,
    input  wire [PE*BIAS_WIDTH-1:0]     bias,

    output wire [EW_OUT*OUT_WIDTH-1:0]  m_axis_tdata,   // element e at [e*OUT_WIDTH +: OUT_WIDTH]
    output wire                         m_axis_tvalid,
    input  wire                         m_axis_tready,
    output wire                         m_axis_tlast
);
    localparam integer PW   = IN_WIDTH + 1 + W_WIDTH;            // one product, exact
    localparam integer LW   = (PW > BIAS_WIDTH) ? PW : BIAS_WIDTH;  // one leaf
    localparam integer NL   = SIMD + 1;                          // leaves per output
    localparam integer LV   = $clog2(NL);                        // adder levels (>= 1)
    localparam integer SUMW = LW + LV + 1;                       // any node, with a spare bit
    localparam integer AW   = (ACC_WIDTH > SUMW ? ACC_WIDTH : SUMW) + 1;  // accumulator (modulo)
    localparam integer NT   = node_base(LV + 1);                 // nodes of one output's tree
    // a fused LeakyRelu: its product is registered before the rounding (fpgagen_requant_lane)
    localparam integer PIPE = (LEAKY != 0) ? 1 : 0;
    localparam integer RW   = ACC_WIDTH + ALIGN_MAX;              // what is requantized (pre-aligned)
    localparam integer NGC  = CHANNELS / PE;                      // groups per pixel
    localparam integer GCB  = (NGC > 1) ? $clog2(NGC) : 1;        // their counter
    localparam integer NGC_LAST_I = NGC - 1;
    localparam [GCB-1:0] G_LAST = NGC_LAST_I[GCB-1:0];
    // a group leaves in NB = PE/EW_OUT beats; its last chunk holds its place from issue until
    // its last beat enters the FIFO: RT cycles; a group is issued at most every max(CHUNKS, NB) cycles
    localparam integer NB   = PE / EW_OUT;                       // beats per group
    localparam integer RT   = LV + NB + 6 + PIPE;
    localparam integer PER  = (CHUNKS > NB) ? CHUNKS : NB;
    localparam integer NR   = (RT + PER - 1) / PER + 1;          // result buffer groups
    localparam integer RB   = $clog2(NR + 1);                    // its counters
    localparam integer RA   = (NR > 1) ? $clog2(NR) : 1;         // its addresses
    localparam integer EB   = (NB > 1) ? $clog2(NB) : 1;         // beat within a group
    localparam integer NOB  = N_OUT / EW_OUT;                    // output beats per frame
    localparam integer OIB  = (NOB > 1) ? $clog2(NOB) : 1;       // output beat index
    localparam integer N_OUT_LAST_I = NOB - 1;
    localparam integer PE_LAST_I = NB - 1;
    localparam integer NR_LAST_I = NR - 1;
    localparam [OIB-1:0] O_LAST = N_OUT_LAST_I[OIB-1:0];
    localparam [EB-1:0]  E_LAST = PE_LAST_I[EB-1:0];
    localparam [RA-1:0]  R_LAST = NR_LAST_I[RA-1:0];
    localparam [RB-1:0]  NR_C   = NR[RB-1:0];
    localparam integer NK   = PE * SIMD;                         // products per cycle
    localparam integer NPR  = (NK + 1) / 2;                      // their pairs (DSP_PAIR; 2: NK/2, PE even)
    localparam integer PPW  = (DSP_PAIR != 0) ? 2 * NPR * 16 : 16;  // the pairs' products

    // nodes of one output's tree: level 0 the NL leaves, level l+1 half of level l (rounded up)
    function integer level_nodes(input integer l);
        integer j, n;
        begin
            n = NL;
            for (j = 0; j < l; j = j + 1) n = (n + 1) / 2;
            level_nodes = n;
        end
    endfunction
    function integer node_base(input integer l);  // index of level l's first node
        integer j, b;
        begin
            b = 0;
            for (j = 0; j < l; j = j + 1) b = b + level_nodes(j);
            node_base = b;
        end
    endfunction

    initial begin
        if (PE < 1 || SIMD < 1 || N_OUT < 1 || CHUNKS < 1)
            $error("fpgagen_mac_out %m: PE %0d, SIMD %0d, CHUNKS %0d and N_OUT %0d must be >= 1",
                   PE, SIMD, CHUNKS, N_OUT);
        if (XG < 1 || PE % XG != 0) $error("fpgagen_mac_out %m: XG %0d must divide PE %0d", XG, PE);
        if (BIAS_WIDTH > AW) $error("fpgagen_mac_out %m: BIAS_WIDTH %0d wider than the accumulator (%0d)", BIAS_WIDTH, AW);
        if (ALIGN_MAX < 0 || (ALIGN_MAX > 0 && (CHANNELS % PE != 0 || ALIGN_BITS < $clog2(ALIGN_MAX + 1))))
            $error("fpgagen_mac_out %m: ALIGN_MAX %0d needs PE %0d dividing CHANNELS %0d and ALIGN_BITS %0d >= %0d",
                   ALIGN_MAX, PE, CHANNELS, ALIGN_BITS, $clog2(ALIGN_MAX + 1));
        if (DSP_PAIR != 0 && (IN_WIDTH > 8 || W_WIDTH > 8))
            $error("fpgagen_mac_out %m: DSP_PAIR needs IN_WIDTH %0d and W_WIDTH %0d <= 8", IN_WIDTH, W_WIDTH);
        if (DSP_PAIR < 0 || DSP_PAIR > 2 || (DSP_PAIR == 2 && (PE / XG) % 2 != 0))
            $error("fpgagen_mac_out %m: DSP_PAIR %0d must be 0, 1 or 2 (2: PE/XG = %0d even)", DSP_PAIR, PE / XG);
        if (EW_OUT < 1 || PE % EW_OUT != 0)
            $error("fpgagen_mac_out %m: EW_OUT %0d (output elements per beat) must divide PE %0d", EW_OUT, PE);
    end

    // ---- stage R: input registers ------------------------------------------------------------
    /* verilator lint_off UNUSEDSIGNAL */  // with DSP_PAIR the pairs register their own x and w
    reg [XG*SIMD*IN_WIDTH-1:0] x_r;
    reg [PE*SIMD*W_WIDTH-1:0] w_r;
    /* verilator lint_on UNUSEDSIGNAL */
    reg [PE*BIAS_WIDTH-1:0]   bias_r;
    reg                       v_r, f_r, l_r;
    // control along the leaves (index 0) and the adder levels (index l): valid, first, last
    reg [LV:0]                vq, fq, lq;
    always @(posedge clk) begin
        x_r    <= x;
        w_r    <= w;
        bias_r <= bias;
        v_r    <= valid;
        f_r    <= first;
        l_r    <= last;
        vq     <= {vq[LV-1:0], v_r};
        fq     <= {fq[LV-1:0], f_r};
        lq     <= {lq[LV-1:0], l_r};
        if (rst) begin
            v_r <= 1'b0;
            vq  <= {(LV + 1){1'b0}};
        end
    end

    // ---- stages P and the adder levels: per output a registered tree of SIMD products + bias --
    // In hardware these registers load every cycle (no enable). The C++ stream harness defines
    // FPGAGEN_SIM_HOLD (simulation only, fpgagen/backends/verilog_harness.py): then a leaf loads
    // only with a valid chunk (v_r) and a level-l node only with valid children (vq[l-1]), so the
    // simulator skips the products and sums of an idle layer. The outputs are the same cycle for
    // cycle: a node's value reaches the accumulator only along a valid chunk (vq[LV]).
    // (FPGAGEN_MAC_HOLD(en) is "if (en)" there and nothing otherwise: the hardware's text is unchanged)
`ifdef FPGAGEN_SIM_HOLD
`define FPGAGEN_MAC_HOLD(en) if (en)
`else
`define FPGAGEN_MAC_HOLD(en)
`endif
    // split_var: Verilator keeps each output's slice apart (no read-modify-write of one wide word)
    reg [PE*AW-1:0]   acc /* verilator split_var */;
    reg               d_final;   // acc holds a finished output group
    /* verilator lint_off UNUSEDSIGNAL */  // read only with per-channel formats (ALIGN_MAX > 0)
    reg [GCB-1:0]     gq;        // per-channel formats: the group of a pixel that acc holds
    /* verilator lint_on UNUSEDSIGNAL */
    always @(posedge clk) begin
        if (d_final) gq <= (gq == G_LAST) ? {GCB{1'b0}} : gq + 1'b1;
        if (rst) gq <= {GCB{1'b0}};
    end
    wire [PE*OUT_WIDTH-1:0] y;

    genvar gp, gs, gl, gi, gk;
    generate
        // DSP_PAIR: product k (= p*SIMD + s, exact in 16 bits) at [k*16 +: 16], two per pair
        /* verilator lint_off UNUSEDSIGNAL */  // an odd pair's top product; all of it without DSP_PAIR
        wire [PPW-1:0] pp;
        /* verilator lint_on UNUSEDSIGNAL */
        if (DSP_PAIR != 0) begin : g_pairs
            wire [2*NPR*8-1:0] xo, wo;  // the 8-bit operands of product k at [k*8 +: 8]
            for (gk = 0; gk < 2 * NPR; gk = gk + 1) begin : g_op
                if (gk < NK) begin : g_used
                    // product gk's input element: lane gk / SIMD reads input group (gk / SIMD) / (PE / XG)
                    wire [IN_WIDTH-1:0] xv = x[(((gk / SIMD) / (PE / XG))*SIMD + gk % SIMD)*IN_WIDTH +: IN_WIDTH];
                    wire [W_WIDTH-1:0]  wv = w[gk*W_WIDTH +: W_WIDTH];
                    if (IN_WIDTH < 8) begin : g_xext
                        assign xo[gk*8 +: 8] = {{(8-IN_WIDTH){(IN_SIGNED != 0) && xv[IN_WIDTH-1]}}, xv};
                    end else begin : g_x8
                        assign xo[gk*8 +: 8] = xv;
                    end
                    if (W_WIDTH < 8) begin : g_wext
                        assign wo[gk*8 +: 8] = {{(8-W_WIDTH){wv[W_WIDTH-1]}}, wv};
                    end else begin : g_w8
                        assign wo[gk*8 +: 8] = wv;
                    end
                end else begin : g_none  // the top half of an odd pair multiplies 0
                    assign xo[gk*8 +: 8] = 8'd0;
                    assign wo[gk*8 +: 8] = 8'd0;
                end
            end
            for (gk = 0; gk < NPR; gk = gk + 1) begin : g_pair
                // its products: (2j, 2j+1), or (DSP_PAIR = 2) lanes 2q and 2q+1 at element s of pair q*SIMD + s
                localparam integer K0 = (DSP_PAIR == 2) ? 2 * (gk / SIMD) * SIMD + gk % SIMD : 2 * gk;
                localparam integer K1 = (DSP_PAIR == 2) ? K0 + SIMD : 2 * gk + 1;
                fpgagen_mul8x8x2 #(
                    .A_SIGNED(IN_SIGNED),
                    .B_SIGNED(1),
                    .SHARED((DSP_PAIR == 2) ? 1 : 0)
                ) u_mul (
                    .clk(clk),
                    .a_hi(xo[K1*8 +: 8]),
                    .b_hi(wo[K1*8 +: 8]),
                    .a_lo(xo[K0*8 +: 8]),
                    .b_lo(wo[K0*8 +: 8]),
                    .p_hi(pp[K1*16 +: 16]),
                    .p_lo(pp[K0*16 +: 16])
                );
            end
        end else begin : g_nopairs
            assign pp = {PPW{1'b0}};
        end
        for (gp = 0; gp < PE; gp = gp + 1) begin : g_pe
            /* verilator lint_off UNUSEDSIGNAL */  // sign bits above a node's exact width
            wire [NT*SUMW-1:0] nd /* verilator split_var */;  // node n at [n*SUMW +: SUMW], sign-extended
            /* verilator lint_on UNUSEDSIGNAL */
            for (gs = 0; gs < NL; gs = gs + 1) begin : g_leaf
                if (gs < SIMD && DSP_PAIR != 0) begin : g_pmul  // registered in its pair
                    localparam integer K = gp*SIMD + gs;
                    if (SUMW > 16) begin : g_sext
                        assign nd[gs*SUMW +: SUMW] = {{(SUMW-16){pp[K*16 + 15]}}, pp[K*16 +: 16]};
                    end else begin : g_trunc  // the product fits PW <= SUMW bits
                        assign nd[gs*SUMW +: SUMW] = pp[K*16 +: SUMW];
                    end
                end else if (gs < SIMD) begin : g_mul
                    reg [LW-1:0] r;
                    wire [IN_WIDTH-1:0] xr = x_r[((gp / (PE / XG))*SIMD + gs)*IN_WIDTH +: IN_WIDTH];
                    wire [W_WIDTH-1:0]  wr = w_r[(gp*SIMD + gs)*W_WIDTH +: W_WIDTH];
                    wire                xsign = (IN_SIGNED != 0) && xr[IN_WIDTH-1];
                    wire signed [PW-1:0] xe = $signed({{(PW-IN_WIDTH){xsign}}, xr});
                    wire signed [PW-1:0] we = $signed({{(PW-W_WIDTH){wr[W_WIDTH-1]}}, wr});
                    wire signed [PW-1:0] prod = xe * we;
                    always @(posedge clk) `FPGAGEN_MAC_HOLD(v_r) r <= {{(LW-PW+1){prod[PW-1]}}, prod[PW-2:0]};
                    assign nd[gs*SUMW +: SUMW] = {{(SUMW-LW+1){r[LW-1]}}, r[LW-2:0]};
                end else begin : g_bias
                    reg [LW-1:0] r;
                    wire [BIAS_WIDTH-1:0] br = bias_r[gp*BIAS_WIDTH +: BIAS_WIDTH];
                    always @(posedge clk)
                        `FPGAGEN_MAC_HOLD(v_r) r <= f_r ? {{(LW-BIAS_WIDTH+1){br[BIAS_WIDTH-1]}}, br[BIAS_WIDTH-2:0]} : {LW{1'b0}};
                    assign nd[gs*SUMW +: SUMW] = {{(SUMW-LW+1){r[LW-1]}}, r[LW-2:0]};
                end
            end
            for (gl = 1; gl <= LV; gl = gl + 1) begin : g_lv
                for (gi = 0; gi < level_nodes(gl); gi = gi + 1) begin : g_n
                    localparam integer NWID = LW + gl;                 // exact width at level gl
                    localparam integer A = node_base(gl - 1) + 2 * gi;  // first operand node
                    localparam integer B = node_base(gl) + gi;          // this node
                    reg [NWID-1:0] r;
                    wire signed [SUMW-1:0] a = nd[A*SUMW +: SUMW];
                    /* verilator lint_off UNUSEDSIGNAL */  // bits above NWID are sign copies
                    wire signed [SUMW-1:0] s;
                    /* verilator lint_on UNUSEDSIGNAL */
                    if (2 * gi + 1 < level_nodes(gl - 1)) begin : g_add
                        assign s = a + $signed(nd[(A+1)*SUMW +: SUMW]);
                    end else begin : g_pass
                        assign s = a;
                    end
                    always @(posedge clk) `FPGAGEN_MAC_HOLD(vq[gl-1]) r <= s[NWID-1:0];
                    assign nd[B*SUMW +: SUMW] = {{(SUMW-NWID+1){r[NWID-1]}}, r[NWID-2:0]};
                end
            end
            wire [SUMW-1:0] sum = nd[(NT-1)*SUMW +: SUMW];
            wire [AW-1:0]   sum_ext = {{(AW-SUMW+1){sum[SUMW-1]}}, sum[SUMW-2:0]};
            always @(posedge clk) begin
                if (vq[LV])
                    acc[gp*AW +: AW] <= (fq[LV] ? {AW{1'b0}} : acc[gp*AW +: AW]) + sum_ext;
            end
            // the finished accumulator as the requantizer takes it: pre-aligned by this lane's d_c
            wire [RW-1:0] racc;
            if (ALIGN_MAX > 0) begin : g_align
                reg  [ALIGN_BITS-1:0] d_r;                 // d_c of the group in acc
                wire [ALIGN_BITS-1:0] tab [0:NGC-1];       // this lane's d_c per group of a pixel
                for (gi = 0; gi < NGC; gi = gi + 1) begin : g_tab
                    assign tab[gi] = ALIGN[(gi*PE + gp)*ALIGN_BITS +: ALIGN_BITS];
                end
                always @(posedge clk) begin
                    if (d_final) d_r <= tab[(gq == G_LAST) ? {GCB{1'b0}} : gq + 1'b1];
                    if (rst) d_r <= tab[0];
                end
                wire signed [RW-1:0] wide = {{(RW-ACC_WIDTH+1){acc[gp*AW + ACC_WIDTH - 1]}},
                                             acc[gp*AW +: ACC_WIDTH - 1]};
                assign racc = wide <<< d_r;
            end else begin : g_noalign
                assign racc = acc[gp*AW +: ACC_WIDTH];
            end
            // requantized (with LeakyRelu: the product registered with d_final, then rounded)
            fpgagen_requant_lane #(
                .ACC_WIDTH(RW),
                .SHIFT(SHIFT),
                .OUT_WIDTH(OUT_WIDTH),
                .LO(LO),
                .HI(HI),
                .LEAKY(LEAKY),
                .ROUND_EVEN(ROUND_EVEN),
                .ALPHA(ALPHA),
                .ALPHA_FRAC(ALPHA_FRAC)
            ) u_requant (
                .clk(clk),
                .ce(d_final),
                .acc(racc),
                .y(y[gp*OUT_WIDTH +: OUT_WIDTH])
            );
        end
    endgenerate

    // ---- result buffer: NR groups of PE outputs; places counted from issue ------------------
    reg [PE*OUT_WIDTH-1:0] rbuf [0:NR-1];
    reg [RA-1:0]           rwp, rrp;     // write / read group
    reg [RB-1:0]           rcount;       // groups in the buffer
    reg [RB-1:0]           credits;      // free places not yet promised to an issued group
    reg [EB-1:0]           e;            // output of the head group
    reg [OIB-1:0]          oidx;
    wire                   fifo_ready;
    wire [PE*OUT_WIDTH-1:0] head = rbuf[rrp];
    wire                   push = (rcount != {RB{1'b0}}) && fifo_ready;  // one output to the FIFO
    wire                   release_g = push && (e == E_LAST);           // ... the head group's last
    assign ready = (credits != {RB{1'b0}});

    reg                    d_final2;  // (LeakyRelu) p_r holds it
    wire                   w_final = (PIPE != 0) ? d_final2 : d_final;  // y holds a finished group
    always @(posedge clk) begin
        if (w_final) rbuf[rwp] <= y;
    end

    always @(posedge clk) begin
        d_final <= vq[LV] && lq[LV];
        d_final2 <= d_final;
        if (w_final) rwp <= (rwp == R_LAST) ? {RA{1'b0}} : rwp + 1'b1;
        if (release_g) rrp <= (rrp == R_LAST) ? {RA{1'b0}} : rrp + 1'b1;
        if (w_final && !release_g) rcount <= rcount + 1'b1;
        else if (release_g && !w_final) rcount <= rcount - 1'b1;
        if (issue && !release_g) credits <= credits - 1'b1;
        else if (release_g && !issue) credits <= credits + 1'b1;
        if (push) begin
            e <= (e == E_LAST) ? {EB{1'b0}} : e + 1'b1;
            oidx <= (oidx == O_LAST) ? {OIB{1'b0}} : oidx + 1'b1;
        end
        if (rst) begin
            d_final <= 1'b0;
            d_final2 <= 1'b0;
            rwp     <= {RA{1'b0}};
            rrp     <= {RA{1'b0}};
            rcount  <= {RB{1'b0}};
            credits <= NR_C;
            e       <= {EB{1'b0}};
            oidx    <= {OIB{1'b0}};
        end
    end

    fpgagen_fifo #(
        .WIDTH(EW_OUT*OUT_WIDTH),
        .DEPTH(2)
    ) u_out (
        .clk(clk),
        .rst(rst),
        .s_axis_tdata(head[e*EW_OUT*OUT_WIDTH +: EW_OUT*OUT_WIDTH]),
        .s_axis_tvalid(rcount != {RB{1'b0}}),
        .s_axis_tready(fifo_ready),
        .s_axis_tlast(oidx == O_LAST),
        .m_axis_tdata(m_axis_tdata),
        .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(m_axis_tready),
        .m_axis_tlast(m_axis_tlast)
    );
endmodule

`undef FPGAGEN_MAC_HOLD
`default_nettype wire
