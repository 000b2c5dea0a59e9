// fpgagen_concat: channel concat of two streams, y = [requant0(x0), requant1(x1)] per pixel.
//
// SPEC.md section 3: input i is requantized to the output format by its own SHIFTi (round half
// away from zero, a left shift when <= 0; with LEAKYi = 1 a negative element as x * ALPHA by
// SHIFTi + ALPHA_FRAC) and clamped to the shared [LO, HI]; then the channels are placed in input
// order. Both inputs stream HWC maps (or vectors: PIXELS = 1) of the same PIXELS pixels, C0 and
// C1 channels per pixel; the output carries, for every pixel, the C0 elements of input 0, then
// the C1 of input 1. EW elements per beat on both inputs and the output (EW consecutive
// channels of one pixel, element e in bits [e*WIDTH +: WIDTH]; EW divides C0 and C1, so a beat
// comes from one input; one requantizer pair per lane), so a frame takes PIXELS * (C0 + C1) /
// EW cycles. More than
// two inputs are chained: concat(concat(x0, x1), x2), the outer stage passing the inner one's
// output with SHIFT0 = 0 and LEAKY0 = 0 (exact: already in [LO, HI]).
// tlast is generated on the last element of each frame (input tlast is ignored). Each input's
// tready is a register AND whose turn it is, never its own tvalid. With a LeakyRelu the product
// of fpgagen_leaky_pre is registered before the rounding. Output through a 2-deep fpgagen_fifo
// (m_axis_* from registers). Latency: 3 cycles (4 with a LeakyRelu).
`default_nettype none

module fpgagen_concat #(
    parameter integer IN0_WIDTH  = 8,     // bits of input 0 elements
    parameter integer IN0_SIGNED = 1,     // 1: input 0 is two's complement, 0: unsigned
    parameter integer IN1_WIDTH  = 8,     // bits of input 1 elements
    parameter integer IN1_SIGNED = 1,     // 1: input 1 is two's complement, 0: unsigned
    parameter integer OUT_WIDTH  = 8,     // bits of output elements
    parameter integer C0         = 4,     // channels of input 0 per pixel
    parameter integer C1         = 4,     // channels of input 1 per pixel
    parameter integer EW         = 1,     // elements (channels of one pixel) per beat, divides C0 and C1
    parameter integer PIXELS     = 1,     // pixels per frame (tlast on the last element)
    parameter integer SHIFT0     = 0,     // requantization right shift of input 0 (negative: left)
    parameter integer SHIFT1     = 0,     // requantization right shift of input 1 (negative: left)
    parameter integer LO         = -128,  // lowest output value
    parameter integer HI         = 127,   // highest output value
    parameter integer LEAKY0     = 0,     // 1: LeakyRelu on input 0 (a negative x as x * ALPHA)
    parameter integer LEAKY1     = 0,     // 1: LeakyRelu on input 1
    parameter integer ROUND_EVEN = 0,     // 1: round half to even (an imported model's quantizer), 0: half away from zero
    parameter integer ALPHA      = 0,     // the LeakyRelu's integer slope (signed)
    parameter integer ALPHA_FRAC = 0      // its frac: the negative path shifts by SHIFTi + ALPHA_FRAC
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
    localparam integer AW = ((IN0_WIDTH > IN1_WIDTH) ? IN0_WIDTH : IN1_WIDTH) + 1;  // either input as signed
    localparam integer NB0 = C0 / EW;                            // beats of input 0 per pixel
    localparam integer NB1 = C1 / EW;                            // beats of input 1 per pixel
    localparam integer CMAX = (NB0 > NB1) ? NB0 : NB1;
    localparam integer CB = (CMAX > 1) ? $clog2(CMAX) : 1;       // beat within an input's part
    localparam integer PB = (PIXELS > 1) ? $clog2(PIXELS) : 1;   // pixel
    localparam integer C0_LAST_I = NB0 - 1;
    localparam integer C1_LAST_I = NB1 - 1;
    localparam integer P_LAST_I = PIXELS - 1;
    localparam [CB-1:0] C0_LAST = C0_LAST_I[CB-1:0];
    localparam [CB-1:0] C1_LAST = C1_LAST_I[CB-1:0];
    localparam [PB-1:0] P_LAST = P_LAST_I[PB-1:0];
    // with a LeakyRelu: the bits of fpgagen_leaky_pre's p and its extra shift
    localparam integer PIPE = (LEAKY0 != 0 || LEAKY1 != 0) ? 1 : 0;
    localparam integer AABS = (ALPHA < 0) ? -ALPHA : ALPHA;
    localparam integer LN   = (ALPHA_FRAC < 0) ? -ALPHA_FRAC : 0;
    localparam integer LP   = (ALPHA_FRAC > 0) ? ALPHA_FRAC : 0;
    localparam integer PWN  = AW + $clog2(AABS + 1) + 1 + LN;
    localparam integer QW   = (PWN > AW + LP) ? PWN : AW + LP;

    initial begin
        if (IN0_WIDTH < 1 || IN1_WIDTH < 1 || AW > 64 || OUT_WIDTH < 1)
            $error("fpgagen_concat %m: widths must be 1..63 (IN0_WIDTH %0d, IN1_WIDTH %0d, OUT_WIDTH %0d)",
                   IN0_WIDTH, IN1_WIDTH, OUT_WIDTH);
        if (C0 < 1 || C1 < 1 || PIXELS < 1)
            $error("fpgagen_concat %m: C0 %0d, C1 %0d and PIXELS %0d must be >= 1", C0, C1, PIXELS);
        if (EW < 1 || C0 % EW != 0 || C1 % EW != 0)
            $error("fpgagen_concat %m: EW %0d elements per beat must be >= 1 and divide C0 %0d and C1 %0d", EW, C0, C1);
    end

    // ---- stage 1: take the next beat of the input whose turn it is ------------------------
    wire ce;  // the pipeline advances (the output FIFO has room)
    reg  sel;                 // 0: input 0's channels of the pixel, 1: input 1's
    reg  [CB-1:0] ch;         // beat within that part
    reg  [PB-1:0] pix;
    assign s0_axis_tready = ce && !sel;
    assign s1_axis_tready = ce && sel;
    wire take = ce && (sel ? s1_axis_tvalid : s0_axis_tvalid);
    wire part_end = (ch == (sel ? C1_LAST : C0_LAST));

    reg                  r_valid;
    reg                  r_sel;
    reg                  r_last;

    always @(posedge clk) begin
        if (ce) begin
            r_valid <= take;
            if (take) begin
                r_sel <= sel;
                r_last <= sel && part_end && (pix == P_LAST);
                ch    <= part_end ? {CB{1'b0}} : ch + 1'b1;
                if (part_end) sel <= !sel;
                if (part_end && sel) pix <= (pix == P_LAST) ? {PB{1'b0}} : pix + 1'b1;
            end
        end
        if (rst) begin
            r_valid <= 1'b0;
            sel     <= 1'b0;
            ch      <= {CB{1'b0}};
            pix     <= {PB{1'b0}};
        end
    end

    // ---- per lane: the element of the beat registered (stage 1), requantized by its input
    // into the output FIFO (stage 2; with a LeakyRelu: its product registered first, on the
    // same clock enable) ------------------------------------------------------------------
    wire [EW*OUT_WIDTH-1:0] y0, y1;   // lane e at [e*OUT_WIDTH +: OUT_WIDTH]
    wire                    y_valid, y_last, y_sel;
    genvar ge;
    generate
        for (ge = 0; ge < EW; ge = ge + 1) begin : g_lane
            wire [IN0_WIDTH-1:0] d0 = s0_axis_tdata[ge*IN0_WIDTH +: IN0_WIDTH];
            wire [IN1_WIDTH-1:0] d1 = s1_axis_tdata[ge*IN1_WIDTH +: IN1_WIDTH];
            wire sign0 = (IN0_SIGNED != 0) && d0[IN0_WIDTH-1];
            wire sign1 = (IN1_SIGNED != 0) && d1[IN1_WIDTH-1];
            wire signed [AW-1:0] x0 = $signed({{(AW-IN0_WIDTH){sign0}}, d0});
            wire signed [AW-1:0] x1 = $signed({{(AW-IN1_WIDTH){sign1}}, d1});
            reg  signed [AW-1:0] r_x;
            always @(posedge clk) if (take) r_x <= sel ? x1 : x0;

            if (PIPE != 0) begin : g_leaky
                wire [QW-1:0] p;
                reg  [QW-1:0] q_r;       // p, or the element itself for an input without LeakyRelu
                fpgagen_leaky_pre #(
                    .ACC_WIDTH(AW),
                    .ALPHA(ALPHA),
                    .ALPHA_FRAC(ALPHA_FRAC),
                    .P_WIDTH(QW)
                ) u_pre (
                    .acc(r_x),
                    .p(p)
                );
                wire leaky_here = r_sel ? (LEAKY1 != 0) : (LEAKY0 != 0);
                always @(posedge clk) if (ce) q_r <= leaky_here ? p : {{(QW-AW){r_x[AW-1]}}, r_x};
                fpgagen_requant #(
                    .ACC_WIDTH(QW),
                    .SHIFT(SHIFT0 + ((LEAKY0 != 0) ? LP : 0)),
                    .ROUND_EVEN(ROUND_EVEN),
                    .OUT_WIDTH(OUT_WIDTH),
                    .LO(LO),
                    .HI(HI)
                ) u_requant0 (
                    .acc(q_r),
                    .y(y0[ge*OUT_WIDTH +: OUT_WIDTH])
                );
                fpgagen_requant #(
                    .ACC_WIDTH(QW),
                    .SHIFT(SHIFT1 + ((LEAKY1 != 0) ? LP : 0)),
                    .ROUND_EVEN(ROUND_EVEN),
                    .OUT_WIDTH(OUT_WIDTH),
                    .LO(LO),
                    .HI(HI)
                ) u_requant1 (
                    .acc(q_r),
                    .y(y1[ge*OUT_WIDTH +: OUT_WIDTH])
                );
            end else begin : g_plain
                fpgagen_requant #(
                    .ACC_WIDTH(AW),
                    .SHIFT(SHIFT0),
                    .ROUND_EVEN(ROUND_EVEN),
                    .OUT_WIDTH(OUT_WIDTH),
                    .LO(LO),
                    .HI(HI)
                ) u_requant0 (
                    .acc(r_x),
                    .y(y0[ge*OUT_WIDTH +: OUT_WIDTH])
                );
                fpgagen_requant #(
                    .ACC_WIDTH(AW),
                    .SHIFT(SHIFT1),
                    .ROUND_EVEN(ROUND_EVEN),
                    .OUT_WIDTH(OUT_WIDTH),
                    .LO(LO),
                    .HI(HI)
                ) u_requant1 (
                    .acc(r_x),
                    .y(y1[ge*OUT_WIDTH +: OUT_WIDTH])
                );
            end
        end

        if (PIPE != 0) begin : g_pipe
            reg q_valid, q_last, q_sel;   // the product stage's valid, tlast and input
            always @(posedge clk) begin
                if (ce) begin
                    q_valid <= r_valid;
                    q_last  <= r_last;
                    q_sel   <= r_sel;
                end
                if (rst) q_valid <= 1'b0;
            end
            assign y_valid = q_valid;
            assign y_last  = q_last;
            assign y_sel   = q_sel;
        end else begin : g_nopipe
            assign y_valid = r_valid;
            assign y_last  = r_last;
            assign y_sel   = r_sel;
        end
    endgenerate

    fpgagen_fifo #(
        .WIDTH(EW * OUT_WIDTH),
        .DEPTH(2)
    ) u_out (
        .clk(clk),
        .rst(rst),
        .s_axis_tdata(y_sel ? y1 : y0),
        .s_axis_tvalid(y_valid),
        .s_axis_tready(ce),
        .s_axis_tlast(y_last),
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
