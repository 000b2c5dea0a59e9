// fpgagen_add: residual add of two streams, y = requant((a << ALIGN0) + (b << ALIGN1)).
//
// SPEC.md section 3: both inputs are aligned to the larger frac by left shifts, added exactly
// (the sum is computed in a width that cannot overflow), then rounded half away from zero by
// SHIFT and clamped to [LO, HI] (fpgagen_requant). One beat of EW elements is taken from each
// input when both are valid (element e in bits [e*INi_WIDTH +: INi_WIDTH], EW divides LENGTH;
// one adder and fpgagen_requant per lane), so a frame takes LENGTH / EW cycles; the inputs must
// carry the same number of elements per frame (LENGTH) in the same order. tlast is generated
// on the last beat of each frame (fpgagen_beat_count; input tlast is ignored).
// Output through a 2-deep fpgagen_fifo (m_axis_* from registers). Each input's tready is the
// other input's tvalid AND a register (the join), never its own tvalid. Latency: 3 cycles.
`default_nettype none

module fpgagen_add #(
    parameter integer IN0_WIDTH  = 8,     // bits of input 0 elements
    parameter integer IN0_SIGNED = 1,     // 1: input 0 is two's complement, 0: unsigned
    parameter integer IN1_WIDTH  = 8,     // bits of input 1 elements
    parameter integer IN1_SIGNED = 1,     // 1: input 1 is two's complement, 0: unsigned
    parameter integer OUT_WIDTH  = 8,     // bits of output elements
    parameter integer LENGTH     = 16,    // elements per frame (tlast on the last one)
    parameter integer EW         = 1,     // elements per beat (in and out), divides LENGTH
    parameter integer ALIGN0     = 0,     // left shift of input 0
    parameter integer ALIGN1     = 0,     // left shift of input 1
    parameter integer SHIFT      = 0,     // requantization right shift (negative: left shift)
    parameter integer LO         = -128,  // lowest output value
    parameter integer HI         = 127,   // highest output value
    parameter integer LEAKY      = 0,     // 1: LeakyRelu, a negative accumulator is requantized as acc * ALPHA
    parameter integer ROUND_EVEN = 0,     // 1: round half to even (an imported model's quantizer), 0: half away from zero
    parameter integer ALPHA      = 0,     // the LeakyRelu's integer slope (signed)
    parameter integer ALPHA_FRAC = 0      // its frac: the negative path shifts by SHIFT + ALPHA_FRAC
) (
    input  wire                 clk,
    input  wire                 rst,             // synchronous, active high

    input  wire [EW*IN0_WIDTH-1:0] s0_axis_tdata,
    input  wire                 s0_axis_tvalid,
    output wire                 s0_axis_tready,
    input  wire                 s0_axis_tlast,

    input  wire [EW*IN1_WIDTH-1:0] s1_axis_tdata,
    input  wire                 s1_axis_tvalid,
    output wire                 s1_axis_tready,
    input  wire                 s1_axis_tlast,

    output wire [EW*OUT_WIDTH-1:0] m_axis_tdata,
    output wire                 m_axis_tvalid,
    input  wire                 m_axis_tready,
    output wire                 m_axis_tlast
);
    localparam integer W0 = IN0_WIDTH + 1 + ALIGN0;     // input 0 aligned, as signed
    localparam integer W1 = IN1_WIDTH + 1 + ALIGN1;     // input 1 aligned, as signed
    localparam integer SUM_WIDTH = ((W0 > W1) ? W0 : W1) + 1;  // exact sum

    initial begin
        if (IN0_WIDTH < 1 || IN1_WIDTH < 1 || OUT_WIDTH < 1)
            $error("fpgagen_add %m: widths must be >= 1 (IN0_WIDTH %0d, IN1_WIDTH %0d, OUT_WIDTH %0d)",
                   IN0_WIDTH, IN1_WIDTH, OUT_WIDTH);
        if (ALIGN0 < 0 || ALIGN1 < 0)
            $error("fpgagen_add %m: ALIGN0 %0d and ALIGN1 %0d must be >= 0", ALIGN0, ALIGN1);
        if (LENGTH < 1) $error("fpgagen_add %m: LENGTH %0d must be >= 1", LENGTH);
        if (EW < 1 || LENGTH % EW != 0)
            $error("fpgagen_add %m: EW %0d elements per beat must be >= 1 and divide LENGTH %0d", EW, LENGTH);
        if (SUM_WIDTH > 64) $error("fpgagen_add %m: the aligned sum needs %0d bits, more than 64", SUM_WIDTH);
    end

    // ---- stage 1: take one beat of each input ----------------------------------------------
    wire ce;  // the pipeline advances (the output FIFO has room)
    wire take = s0_axis_tvalid && s1_axis_tvalid && ce;
    assign s0_axis_tready = s1_axis_tvalid && ce;
    assign s1_axis_tready = s0_axis_tvalid && ce;

    wire                        r_valid, r_last;   // the registered beat's flags
    fpgagen_beat_count #(
        .NB(LENGTH / EW)
    ) u_count (
        .clk(clk),
        .rst(rst),
        .ce(ce),
        .take(take),
        .valid(r_valid),
        .last(r_last)
    );

    // ---- per lane: the aligned sum registered (stage 1), requantized into the output FIFO
    // (stage 2) ----------------------------------------------------------------------------
    wire [EW*OUT_WIDTH-1:0] y;   // lane e at [e*OUT_WIDTH +: OUT_WIDTH]
    genvar ge;
    generate
        for (ge = 0; ge < EW; ge = ge + 1) begin : g_lane
            wire [IN0_WIDTH-1:0] x0 = s0_axis_tdata[ge*IN0_WIDTH +: IN0_WIDTH];
            wire [IN1_WIDTH-1:0] x1 = s1_axis_tdata[ge*IN1_WIDTH +: IN1_WIDTH];
            wire sign0 = (IN0_SIGNED != 0) && x0[IN0_WIDTH-1];
            wire sign1 = (IN1_SIGNED != 0) && x1[IN1_WIDTH-1];
            wire signed [SUM_WIDTH-1:0] a0 = $signed({{(SUM_WIDTH-IN0_WIDTH){sign0}}, x0}) <<< ALIGN0;
            wire signed [SUM_WIDTH-1:0] a1 = $signed({{(SUM_WIDTH-IN1_WIDTH){sign1}}, x1}) <<< ALIGN1;
            reg  signed [SUM_WIDTH-1:0] r_sum;
            always @(posedge clk) if (take) r_sum <= a0 + a1;

            fpgagen_requant #(
                .ACC_WIDTH(SUM_WIDTH),
                .SHIFT(SHIFT),
                .ROUND_EVEN(ROUND_EVEN),
                .OUT_WIDTH(OUT_WIDTH),
                .LO(LO),
                .HI(HI),
                .LEAKY(LEAKY),
                .ALPHA(ALPHA),
                .ALPHA_FRAC(ALPHA_FRAC)
            ) u_requant (
                .acc(r_sum),
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
        .s_axis_tvalid(r_valid),
        .s_axis_tready(ce),
        .s_axis_tlast(r_last),
        .m_axis_tdata(m_axis_tdata),
        .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(m_axis_tready),
        .m_axis_tlast(m_axis_tlast)
    );

    /* verilator lint_off UNUSEDSIGNAL */
    wire unused = s0_axis_tlast ^ s1_axis_tlast;  // frames are counted, not taken from tlast
    /* verilator lint_on UNUSEDSIGNAL */
endmodule

`default_nettype wire
