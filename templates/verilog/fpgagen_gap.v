// fpgagen_gap: global average pool, y[c] = requant(sum over H x W of x[c] * RECIP).
//
// Streams: a (C, H, W) map in, in HWC order (all channels of a pixel, pixel by pixel, row by
// row), EW elements per beat (input tlast is ignored); C averages out, EW per beat, tlast on
// the last beat of each frame; frames back to back. A beat holds EW consecutive channels of
// one pixel (EW divides C), element e in bits [e*IN_WIDTH +: IN_WIDTH] (in) and
// [e*OUT_WIDTH +: OUT_WIDTH] (out); EW = 1 is one element per beat.
// SPEC.md section 3 / the integer IR: the exact per-channel sum times the integer reciprocal
// RECIP = round(2**recip_bits / (H*W)), rounded half away from zero by SHIFT = recip_bits +
// Fx - Fy and clamped to [LO, HI] (fpgagen_requant); ACC_WIDTH holds every sum * RECIP exactly.
// An fpgagen_avgpool with one H x W window: C running sums in two slots (one accumulating the
// next frame while the other is emitted), so a frame takes C*H*W / EW cycles.
`default_nettype none

module fpgagen_gap #(
    parameter integer IN_WIDTH    = 8,     // bits of input elements
    parameter integer IN_SIGNED   = 1,     // 1: inputs are two's complement, 0: unsigned
    parameter integer OUT_WIDTH   = 8,     // bits of output elements
    parameter integer C           = 1,     // channels
    parameter integer EW          = 1,     // elements (channels of one pixel) per beat, divides C
    parameter integer H           = 4,     // input rows
    parameter integer W           = 4,     // input columns
    parameter integer ACC_WIDTH   = 32,    // bits that hold every sum * RECIP exactly
    parameter integer RECIP_WIDTH = 17,    // bits of the (unsigned) reciprocal
    parameter integer RECIP       = 16384, // round(2**recip_bits / (H*W))
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
    fpgagen_avgpool #(
        .IN_WIDTH(IN_WIDTH),
        .IN_SIGNED(IN_SIGNED),
        .OUT_WIDTH(OUT_WIDTH),
        .C(C),
        .EW(EW),
        .H(H),
        .W(W),
        .KH(H),
        .KW(W),
        .SH(1),
        .SW(1),
        .PAD_T(0),
        .PAD_L(0),
        .PAD_B(0),
        .PAD_R(0),
        .ACC_WIDTH(ACC_WIDTH),
        .RECIP_WIDTH(RECIP_WIDTH),
        .RECIP_ROM(0),
        .RECIP(RECIP),
        .RECIP_FILE(""),
        .SHIFT(SHIFT),
        .ROUND_EVEN(ROUND_EVEN),
        .LO(LO),
        .HI(HI),
        .LEAKY(LEAKY),
        .ALPHA(ALPHA),
        .ALPHA_FRAC(ALPHA_FRAC)
    ) u_avg (
        .clk(clk),
        .rst(rst),
        .s_axis_tdata(s_axis_tdata),
        .s_axis_tvalid(s_axis_tvalid),
        .s_axis_tready(s_axis_tready),
        .s_axis_tlast(s_axis_tlast),
        .m_axis_tdata(m_axis_tdata),
        .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(m_axis_tready),
        .m_axis_tlast(m_axis_tlast)
    );
endmodule

`default_nettype wire
