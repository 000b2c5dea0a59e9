// fpgagen_maxpool: max pool over KH x KW windows, strides SH, SW, padding that never wins.
//
// Streams: a (C, H, W) map in, in HWC order (all channels of a pixel, pixel by pixel, row by
// row), EW elements per beat (input tlast is ignored); the (C, OH, OW) maxima out in HWC
// order, EW elements per beat, tlast on the last beat of each frame; frames back to back. A
// beat holds EW consecutive channels of one pixel (EW divides C), element e in bits
// [e*IN_WIDTH +: IN_WIDTH]; EW = 1 is one element per beat.
// Exact on integers: the output format is the input format (IN_SIGNED selects a signed or an
// unsigned comparison). OH = (H + PAD_T + PAD_B - KH) / SH + 1, OW likewise; each pad must be
// smaller than the kernel (every window holds a real pixel).
// fpgagen_pool_window keeps a line buffer of partial maxima, one slot per output row in flight
// (a window's first real pixel is written, later ones compared), and emits each output row when
// its last input row has arrived (EW lanes: a comparator per lane); output through a 2-deep
// fpgagen_fifo. Input and output run concurrently: max(C*H*W, C*OH*OW) / EW cycles per frame.
// A fused ReLU/Clip clamps each maximum to [LO, HI] (the format's range by default: no logic).
`default_nettype none

module fpgagen_maxpool #(
    parameter integer IN_WIDTH  = 8,   // bits of input (and output) elements
    parameter integer IN_SIGNED = 1,   // 1: elements are two's complement, 0: unsigned
    parameter integer C         = 1,   // channels
    parameter integer EW        = 1,   // elements (channels of one pixel) per beat, divides C
    parameter integer H         = 4,   // input rows
    parameter integer W         = 4,   // input columns
    parameter integer KH        = 2,   // window rows
    parameter integer KW        = 2,   // window columns
    parameter integer SH        = 2,   // row stride
    parameter integer SW        = 2,   // column stride
    parameter integer PAD_T     = 0,   // padding rows above (< KH)
    parameter integer PAD_L     = 0,   // padding columns left (< KW)
    parameter integer PAD_B     = 0,   // padding rows below (< KH)
    parameter integer PAD_R     = 0,   // padding columns right (< KW)
    parameter integer LO        = (IN_SIGNED != 0) ? -(1 << (IN_WIDTH - 1)) : 0,  // clamp: lowest output
    parameter integer HI        = (IN_SIGNED != 0) ? (1 << (IN_WIDTH - 1)) - 1 : (1 << IN_WIDTH) - 1  // highest
) (
    input  wire                clk,
    input  wire                rst,            // synchronous, active high

    input  wire [EW*IN_WIDTH-1:0] s_axis_tdata,
    input  wire                s_axis_tvalid,
    output wire                s_axis_tready,
    input  wire                s_axis_tlast,

    output wire [EW*IN_WIDTH-1:0] m_axis_tdata,
    output wire                m_axis_tvalid,
    input  wire                m_axis_tready,
    output wire                m_axis_tlast
);
    localparam integer OH   = (H + PAD_T + PAD_B - KH) / SH + 1;
    localparam integer OW   = (W + PAD_L + PAD_R - KW) / SW + 1;
    localparam integer POSW = (OH * OW > 1) ? $clog2(OH * OW) : 1;

    wire [EW*IN_WIDTH-1:0] w_data;
    wire                w_valid, w_ready, w_last;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [POSW-1:0]     w_pos;   // a max needs no per-position constant
    /* verilator lint_on UNUSEDSIGNAL */

    fpgagen_pool_window #(
        .IN_WIDTH(IN_WIDTH),
        .IN_SIGNED(IN_SIGNED),
        .OP(0),
        .DW(IN_WIDTH),
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
        .m_axis_tdata(w_data),
        .m_axis_tvalid(w_valid),
        .m_axis_tready(w_ready),
        .m_axis_tlast(w_last),
        .m_pos(w_pos)
    );

    // clamp each lane to [LO, HI], compared as 32-bit signed (elements are at most 16 bits,
    // signed or not)
    localparam signed [31:0] LO32 = LO;
    localparam signed [31:0] HI32 = HI;
    wire [EW*IN_WIDTH-1:0]   w_clamped;
    genvar ge;
    generate
        for (ge = 0; ge < EW; ge = ge + 1) begin : g_lane
            wire [IN_WIDTH-1:0] wd = w_data[ge*IN_WIDTH +: IN_WIDTH];
            wire signed [31:0]  w_wide = {{(32 - IN_WIDTH){IN_SIGNED != 0 && wd[IN_WIDTH-1]}}, wd};
            assign w_clamped[ge*IN_WIDTH +: IN_WIDTH] = (w_wide < LO32) ? LO32[IN_WIDTH-1:0]
                                                      : (w_wide > HI32) ? HI32[IN_WIDTH-1:0] : wd;
        end
    endgenerate

    initial begin
        if (LO > HI) $error("fpgagen_maxpool %m: LO %0d > HI %0d", LO, HI);
    end

    fpgagen_fifo #(
        .WIDTH(EW * IN_WIDTH),
        .DEPTH(2)
    ) u_out (
        .clk(clk),
        .rst(rst),
        .s_axis_tdata(w_clamped),
        .s_axis_tvalid(w_valid),
        .s_axis_tready(w_ready),
        .s_axis_tlast(w_last),
        .m_axis_tdata(m_axis_tdata),
        .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(m_axis_tready),
        .m_axis_tlast(m_axis_tlast)
    );
endmodule

`default_nettype wire
