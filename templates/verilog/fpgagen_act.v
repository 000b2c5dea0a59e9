// fpgagen_act: elementwise requantization of a stream, y = requant(x) (a standalone LeakyRelu).
//
// SPEC.md section 3: each input element x (at the input frac) is the accumulator of
// fpgagen_requant: rounded half away from zero by SHIFT = Fx - Fy (a left shift when <= 0),
// with LEAKY = 1 a negative x as x * ALPHA by SHIFT + ALPHA_FRAC, then clamped to [LO, HI].
// EW elements in and EW out per beat (element e in bits [e*IN_WIDTH +: IN_WIDTH] in and
// [e*OUT_WIDTH +: OUT_WIDTH] out, EW divides LENGTH; one fpgagen_requant_lane per lane), so a
// frame takes LENGTH / EW cycles; tlast is generated on the last beat of every LENGTH elements
// (fpgagen_beat_count; input tlast is ignored). With LEAKY the product of fpgagen_leaky_pre is registered before the
// rounding (a pipeline stage on the same clock enable). Output through a 2-deep fpgagen_fifo
// (m_axis_* from registers); s_axis_tready is that FIFO's registered ready. Latency: 3 cycles
// (4 with LEAKY).
`default_nettype none

module fpgagen_act #(
    parameter integer IN_WIDTH   = 8,     // bits of input elements
    parameter integer IN_SIGNED  = 1,     // 1: inputs are two's complement, 0: unsigned
    parameter integer OUT_WIDTH  = 8,     // bits of output elements
    parameter integer LENGTH     = 16,    // elements per frame (tlast on the last one)
    parameter integer EW         = 1,     // elements per beat, divides LENGTH
    parameter integer SHIFT      = 0,     // requantization right shift (negative: left shift)
    parameter integer LO         = -128,  // lowest output value
    parameter integer HI         = 127,   // highest output value
    parameter integer LEAKY      = 0,     // 1: LeakyRelu, a negative input is requantized as x * ALPHA
    parameter integer ROUND_EVEN = 0,     // 1: round half to even (an imported model's quantizer), 0: half away from zero
    parameter integer ALPHA      = 0,     // the LeakyRelu's integer slope (signed)
    parameter integer ALPHA_FRAC = 0      // its frac: the negative path shifts by SHIFT + ALPHA_FRAC
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
    localparam integer AW = IN_WIDTH + ((IN_SIGNED != 0) ? 0 : 1);  // the input as signed

    initial begin
        if (IN_WIDTH < 1 || AW > 64 || OUT_WIDTH < 1)
            $error("fpgagen_act %m: IN_WIDTH %0d must be 1..64 (63 unsigned) and OUT_WIDTH %0d >= 1",
                   IN_WIDTH, OUT_WIDTH);
        if (LENGTH < 1) $error("fpgagen_act %m: LENGTH %0d must be >= 1", LENGTH);
        if (EW < 1 || LENGTH % EW != 0)
            $error("fpgagen_act %m: EW %0d elements per beat must be >= 1 and divide LENGTH %0d", EW, LENGTH);
    end

    // ---- stage 1: take one beat ------------------------------------------------------------
    wire ce;  // the pipeline advances (the output FIFO has room)
    wire take = s_axis_tvalid && ce;
    assign s_axis_tready = ce;

    wire                  r_valid, r_last;   // the registered beat's flags
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

    // ---- per lane: the element registered (stage 1), requantized into the output FIFO
    // (stage 2; LeakyRelu: the product registered first, on the same clock enable) ------------
    wire [EW*OUT_WIDTH-1:0] y;     // lane e at [e*OUT_WIDTH +: OUT_WIDTH]
    wire                    y_valid, y_last;
    genvar ge;
    generate
        for (ge = 0; ge < EW; ge = ge + 1) begin : g_lane
            wire [IN_WIDTH-1:0] xin  = s_axis_tdata[ge*IN_WIDTH +: IN_WIDTH];
            wire                sign = (IN_SIGNED != 0) && xin[IN_WIDTH-1];
            /* verilator lint_off UNUSEDSIGNAL */  // a signed input needs no extra sign bit
            wire [IN_WIDTH:0]   x_ext = {sign, xin};
            /* verilator lint_on UNUSEDSIGNAL */
            reg signed [AW-1:0] r_x;
            always @(posedge clk) if (ce && take) r_x <= x_ext[AW-1:0];

            fpgagen_requant_lane #(
                .ACC_WIDTH(AW),
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
                .ce(ce),
                .acc(r_x),
                .y(y[ge*OUT_WIDTH +: OUT_WIDTH])
            );
        end

        if (LEAKY != 0) begin : g_pipe
            reg p_valid, p_last;   // the product stage's valid and tlast
            always @(posedge clk) begin
                if (ce) begin
                    p_valid <= r_valid;
                    p_last  <= r_last;
                end
                if (rst) p_valid <= 1'b0;
            end
            assign y_valid = p_valid;
            assign y_last  = p_last;
        end else begin : g_nopipe
            assign y_valid = r_valid;
            assign y_last  = r_last;
        end
    endgenerate

    fpgagen_fifo #(
        .WIDTH(EW * OUT_WIDTH),
        .DEPTH(2)
    ) u_out (
        .clk(clk),
        .rst(rst),
        .s_axis_tdata(y),
        .s_axis_tvalid(y_valid),
        .s_axis_tready(ce),
        .s_axis_tlast(y_last),
        .m_axis_tdata(m_axis_tdata),
        .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(m_axis_tready),
        .m_axis_tlast(m_axis_tlast)
    );

    /* verilator lint_off UNUSEDSIGNAL */
    wire unused = s_axis_tlast;  // frames are counted, not taken from tlast
    /* verilator lint_on UNUSEDSIGNAL */
endmodule

`default_nettype wire
