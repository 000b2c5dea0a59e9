// fpgagen_avgpool: average pool, y = requant(window sum * RECIP) over KH x KW windows.
//
// Streams: a (C, H, W) map in, in HWC order (all channels of a pixel, pixel by pixel, row by
// row), EW elements per beat (input tlast is ignored); the (C, OH, OW) averages out in HWC
// order, EW elements per beat, tlast on the last beat of each frame; frames back to back. A
// beat holds EW consecutive channels of one pixel (EW divides C), element e in bits
// [e*IN_WIDTH +: IN_WIDTH] (in) and [e*OUT_WIDTH +: OUT_WIDTH] (out); EW = 1 is one element.
// SPEC.md section 3 / the integer IR: the exact sum of the window's real pixels (zero padding)
// times the integer reciprocal of its count (2**recip_bits / count, rounded), then rounded half
// away from zero by SHIFT = recip_bits + Fx - Fy and clamped to [LO, HI] by fpgagen_requant.
// The reciprocal is the parameter RECIP (RECIP_ROM = 0: one count for every window, e.g.
// count_include_pad = 1) or, when the count varies at the border, a ROM of OH*OW words
// (RECIP_ROM = 1, RECIP_FILE: $readmemh, one RECIP_WIDTH-bit unsigned hex word per line, line
// oh*OW + ow). ACC_WIDTH holds every sum * reciprocal exactly. OH = (H + PAD_T + PAD_B - KH) /
// SH + 1, OW likewise; each pad must be smaller than the kernel.
// fpgagen_pool_window keeps a line buffer of partial sums, one slot per output row in flight,
// and emits each output row when its last input row has arrived; a register stage (sums and
// reciprocal), the multiply and requantize (one multiplier and fpgagen_requant per lane), then
// a 2-deep fpgagen_fifo. Input and output run concurrently: max(C*H*W, C*OH*OW) / EW cycles
// per frame.
`default_nettype none

module fpgagen_avgpool #(
    parameter integer IN_WIDTH    = 8,     // bits of input elements
    parameter integer IN_SIGNED   = 1,     // 1: inputs are two's complement, 0: unsigned
    parameter integer OUT_WIDTH   = 8,     // bits of output elements
    parameter integer C           = 1,     // channels
    parameter integer EW          = 1,     // elements (channels of one pixel) per beat, divides C
    parameter integer H           = 4,     // input rows
    parameter integer W           = 4,     // input columns
    parameter integer KH          = 2,     // window rows
    parameter integer KW          = 2,     // window columns
    parameter integer SH          = 2,     // row stride
    parameter integer SW          = 2,     // column stride
    parameter integer PAD_T       = 0,     // padding rows above (< KH)
    parameter integer PAD_L       = 0,     // padding columns left (< KW)
    parameter integer PAD_B       = 0,     // padding rows below (< KH)
    parameter integer PAD_R       = 0,     // padding columns right (< KW)
    parameter integer ACC_WIDTH   = 32,    // bits that hold every sum * reciprocal exactly
    parameter integer RECIP_WIDTH = 17,    // bits of the (unsigned) reciprocals
    parameter integer RECIP_ROM   = 0,     // 0: RECIP for every window, 1: per position from RECIP_FILE
    parameter integer RECIP       = 16384, // the reciprocal (RECIP_ROM = 0)
    parameter         RECIP_FILE  = "recip.mem",  // $readmemh file of the reciprocal ROM (RECIP_ROM = 1)
    parameter integer SHIFT       = 16,    // requantization right shift (negative: left shift)
    parameter integer LO          = -128,  // lowest output value
    parameter integer HI          = 127,   // highest output value
    parameter integer LEAKY       = 0,     // 1: LeakyRelu, a negative accumulator is requantized as acc * ALPHA
    parameter integer ROUND_EVEN  = 0,     // 1: round half to even (an imported model's quantizer), 0: half away from zero
    parameter integer ALPHA       = 0,     // the LeakyRelu's integer slope (signed)
    parameter integer ALPHA_FRAC  = 0      // its frac: the negative path shifts by SHIFT + ALPHA_FRAC
) (
    input  wire                 clk,
    input  wire                 rst,            // synchronous, active high

    input  wire [EW*IN_WIDTH-1:0]  s_axis_tdata,
    input  wire                 s_axis_tvalid,
    output wire                 s_axis_tready,
    input  wire                 s_axis_tlast,

    output wire [EW*OUT_WIDTH-1:0] m_axis_tdata,
    output wire                 m_axis_tvalid,
    input  wire                 m_axis_tready,
    output wire                 m_axis_tlast
);
    localparam integer OH   = (H + PAD_T + PAD_B - KH) / SH + 1;
    localparam integer OW   = (W + PAD_L + PAD_R - KW) / SW + 1;
    localparam integer NPOS = OH * OW;
    localparam integer POSW = (NPOS > 1) ? $clog2(NPOS) : 1;
    localparam integer SUMW = IN_WIDTH + 1 + $clog2(KH * KW);   // the exact window sum, signed
    localparam integer PW   = SUMW + RECIP_WIDTH + 1;           // sum * reciprocal, exact
    localparam integer MW   = (PW > ACC_WIDTH) ? PW : ACC_WIDTH;

    initial begin
        if (OUT_WIDTH < 1) $error("fpgagen_avgpool %m: OUT_WIDTH %0d must be >= 1", OUT_WIDTH);
        if (RECIP_WIDTH < 1 || RECIP_WIDTH > 62) $error("fpgagen_avgpool %m: RECIP_WIDTH %0d must be 1..62", RECIP_WIDTH);
        if (RECIP_ROM != 0 && RECIP_ROM != 1) $error("fpgagen_avgpool %m: RECIP_ROM %0d must be 0 or 1", RECIP_ROM);
        if (RECIP_ROM == 0 && (RECIP < 0 || (RECIP_WIDTH < 31 && RECIP >= (1 << RECIP_WIDTH))))
            $error("fpgagen_avgpool %m: RECIP %0d does not fit RECIP_WIDTH %0d unsigned bits", RECIP, RECIP_WIDTH);
    end

    // ---- window sums ----------------------------------------------------------------------
    wire [EW*SUMW-1:0] w_sum;   // lane e at [e*SUMW +: SUMW]
    wire            w_valid, w_ready, w_last;
    wire [POSW-1:0] w_pos;

    fpgagen_pool_window #(
        .IN_WIDTH(IN_WIDTH),
        .IN_SIGNED(IN_SIGNED),
        .OP(1),
        .DW(SUMW),
        .C(C),
        .EW(EW),
        .H(H),
        .W(W),
        .KH(KH),
        .KW(KW),
        .SH(SH),
        .SW(SW),
        .PAD_T(PAD_T),
        .PAD_L(PAD_L),
        .PAD_B(PAD_B),
        .PAD_R(PAD_R),
        .POS_WIDTH(POSW)
    ) u_window (
        .clk(clk),
        .rst(rst),
        .s_axis_tdata(s_axis_tdata),
        .s_axis_tvalid(s_axis_tvalid),
        .s_axis_tready(s_axis_tready),
        .s_axis_tlast(s_axis_tlast),
        .m_axis_tdata(w_sum),
        .m_axis_tvalid(w_valid),
        .m_axis_tready(w_ready),
        .m_axis_tlast(w_last),
        .m_pos(w_pos)
    );

    // ---- register stage: the sum and its reciprocal ------------------------------------------
    reg                    p_valid, p_last;
    reg  [EW*SUMW-1:0]     p_sum;
    wire [RECIP_WIDTH-1:0] p_recip;
    wire                   fifo_ready;
    assign w_ready = !p_valid || fifo_ready;
    wire   p_load = w_valid && w_ready;

    always @(posedge clk) begin
        if (p_load) begin
            p_sum  <= w_sum;
            p_last <= w_last;
        end
        if (w_ready) p_valid <= w_valid;
        if (rst) p_valid <= 1'b0;
    end

    generate
        if (RECIP_ROM != 0) begin : g_rom
            reg [RECIP_WIDTH-1:0] rrom [0:NPOS-1];
            reg [RECIP_WIDTH-1:0] r_q;
            initial $readmemh(RECIP_FILE, rrom);
            always @(posedge clk) if (p_load) r_q <= rrom[w_pos];
            assign p_recip = r_q;
        end else begin : g_const
            localparam [63:0] RECIP64 = {32'd0, RECIP};
            localparam [RECIP_WIDTH-1:0] RECIP_C = RECIP64[RECIP_WIDTH-1:0];
            assign p_recip = RECIP_C;
            /* verilator lint_off UNUSEDSIGNAL */
            wire unused_pos = ^w_pos;  // one reciprocal for every position
            /* verilator lint_on UNUSEDSIGNAL */
        end
    endgenerate

    // ---- multiply by the reciprocal, requantize, lane by lane ----------------------------------
    wire signed [MW-1:0]    recip_ext = {{(MW-RECIP_WIDTH){1'b0}}, p_recip};
    wire [EW*OUT_WIDTH-1:0] y;
    genvar ge;
    generate
        for (ge = 0; ge < EW; ge = ge + 1) begin : g_lane
            wire [SUMW-1:0]      ps = p_sum[ge*SUMW +: SUMW];
            wire signed [MW-1:0] sum_ext = {{(MW-SUMW){ps[SUMW-1]}}, ps};
            /* verilator lint_off UNUSEDSIGNAL */  // the product fits ACC_WIDTH bits
            wire signed [MW-1:0] prod = sum_ext * recip_ext;
            /* verilator lint_on UNUSEDSIGNAL */

            fpgagen_requant #(
                .ACC_WIDTH(ACC_WIDTH),
                .SHIFT(SHIFT),
                .ROUND_EVEN(ROUND_EVEN),
                .OUT_WIDTH(OUT_WIDTH),
                .LO(LO),
                .HI(HI),
                .LEAKY(LEAKY),
                .ALPHA(ALPHA),
                .ALPHA_FRAC(ALPHA_FRAC)
            ) u_requant (
                .acc(prod[ACC_WIDTH-1:0]),
                .y(y[ge*OUT_WIDTH +: OUT_WIDTH])
            );
        end
    endgenerate

    fpgagen_fifo #(
        .WIDTH(EW * OUT_WIDTH),
        .DEPTH(2)
    ) u_out (
        .clk(clk),
        .rst(rst),
        .s_axis_tdata(y),
        .s_axis_tvalid(p_valid),
        .s_axis_tready(fifo_ready),
        .s_axis_tlast(p_last),
        .m_axis_tdata(m_axis_tdata),
        .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(m_axis_tready),
        .m_axis_tlast(m_axis_tlast)
    );
endmodule

`default_nettype wire
