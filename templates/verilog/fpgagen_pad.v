// fpgagen_pad: zero padding of a C x H x W map streamed in HWC order.
//
// SPEC.md section 3 (Pad, constant 0; exact, the output format is the input format): the output
// is the C x (PAD_T + H + PAD_B) x (PAD_L + W + PAD_R) map in HWC order, the input map in its
// interior and 0 elsewhere. EW elements per beat in and out (EW consecutive channels of one
// pixel, element e in bits [e*WIDTH +: WIDTH], EW divides C): the module moves words of EW
// elements, CW = C/EW per pixel. No buffer: it walks the output positions, one word per beat,
// emitting 0 at a padding position and passing the next input word at an interior one, so a
// frame takes C * OH * OW / EW cycles. tlast is generated on the last beat of each frame
// (input tlast is ignored). s_axis_tready is a register AND an interior position, never
// tvalid. Output through a 2-deep fpgagen_fifo (m_axis_* from registers). Latency: 3 cycles.
`default_nettype none

module fpgagen_pad #(
    parameter integer WIDTH = 8,   // bits of the elements
    parameter integer C     = 1,   // channels
    parameter integer EW    = 1,   // elements (channels of one pixel) per beat, divides C
    parameter integer H     = 4,   // input rows
    parameter integer W     = 4,   // input columns
    parameter integer PAD_T = 1,   // zero rows above the map
    parameter integer PAD_L = 1,   // zero columns left of the map
    parameter integer PAD_B = 1,   // zero rows below the map
    parameter integer PAD_R = 1    // zero columns right of the map
) (
    input  wire             clk,
    input  wire             rst,            // synchronous, active high

    input  wire [EW*WIDTH-1:0] s_axis_tdata,
    input  wire             s_axis_tvalid,
    output wire             s_axis_tready,
    input  wire             s_axis_tlast,

    output wire [EW*WIDTH-1:0] m_axis_tdata,
    output wire             m_axis_tvalid,
    input  wire             m_axis_tready,
    output wire             m_axis_tlast
);
    localparam integer OH = PAD_T + H + PAD_B;
    localparam integer OW = PAD_L + W + PAD_R;
    localparam integer CW = C / EW;            // words (beats) per pixel
    localparam integer BW = EW * WIDTH;        // bits of a word
    localparam integer CB = (CW > 1) ? $clog2(CW) : 1;
    localparam integer XB = $clog2(OW + 1);    // also holds PAD_L + W
    localparam integer YB = $clog2(OH + 1);    // also holds PAD_T + H
    localparam integer C_LAST_I = CW - 1;
    localparam integer X_LAST_I = OW - 1;
    localparam integer Y_LAST_I = OH - 1;
    localparam integer X_END_I = PAD_L + W;
    localparam integer Y_END_I = PAD_T + H;
    localparam [CB-1:0] C_LAST = C_LAST_I[CB-1:0];
    localparam [XB-1:0] X_LAST = X_LAST_I[XB-1:0];
    localparam [YB-1:0] Y_LAST = Y_LAST_I[YB-1:0];
    localparam [XB-1:0] X_BEG  = PAD_L[XB-1:0];
    localparam [XB-1:0] X_END  = X_END_I[XB-1:0];
    localparam [YB-1:0] Y_BEG  = PAD_T[YB-1:0];
    localparam [YB-1:0] Y_END  = Y_END_I[YB-1:0];

    initial begin
        if (WIDTH < 1) $error("fpgagen_pad %m: WIDTH %0d must be >= 1", WIDTH);
        if (C < 1 || H < 1 || W < 1) $error("fpgagen_pad %m: C %0d, H %0d and W %0d must be >= 1", C, H, W);
        if (EW < 1 || C % EW != 0)
            $error("fpgagen_pad %m: EW %0d elements per beat must be >= 1 and divide C %0d", EW, C);
        if (PAD_T < 0 || PAD_L < 0 || PAD_B < 0 || PAD_R < 0)
            $error("fpgagen_pad %m: pads %0d/%0d/%0d/%0d (top/left/bottom/right) must be >= 0",
                   PAD_T, PAD_L, PAD_B, PAD_R);
    end

    // ---- stage 1: walk the output positions ----------------------------------------------
    wire ce;  // the pipeline advances (the output FIFO has room)
    reg  [CB-1:0] c;
    reg  [XB-1:0] ox;
    reg  [YB-1:0] oy;
    reg  row_in, col_in;  // oy in [PAD_T, PAD_T + H), ox in [PAD_L, PAD_L + W)
    wire interior = row_in && col_in;
    assign s_axis_tready = ce && interior;
    wire emit = ce && (!interior || s_axis_tvalid);  // one output element this cycle
    wire c_end = (c == C_LAST);
    wire x_end = (ox == X_LAST);
    wire y_end = (oy == Y_LAST);
    wire [XB-1:0] ox_next = x_end ? {XB{1'b0}} : ox + 1'b1;
    wire [YB-1:0] oy_next = y_end ? {YB{1'b0}} : oy + 1'b1;

    reg             r_valid;
    reg             r_last;
    reg [BW-1:0]    r_data;

    always @(posedge clk) begin
        if (ce) begin
            r_valid <= emit;
            if (emit) begin
                r_data <= interior ? s_axis_tdata : {BW{1'b0}};
                r_last <= c_end && x_end && y_end;
                c <= c_end ? {CB{1'b0}} : c + 1'b1;
                if (c_end) begin
                    ox     <= ox_next;
                    col_in <= x_end ? (PAD_L == 0) : (ox_next == X_BEG) ? 1'b1 : (ox_next == X_END) ? 1'b0 : col_in;
                end
                if (c_end && x_end) begin
                    oy     <= oy_next;
                    row_in <= y_end ? (PAD_T == 0) : (oy_next == Y_BEG) ? 1'b1 : (oy_next == Y_END) ? 1'b0 : row_in;
                end
            end
        end
        if (rst) begin
            r_valid <= 1'b0;
            c       <= {CB{1'b0}};
            ox      <= {XB{1'b0}};
            oy      <= {YB{1'b0}};
            row_in  <= (PAD_T == 0);
            col_in  <= (PAD_L == 0);
        end
    end

    fpgagen_fifo #(
        .WIDTH(BW),
        .DEPTH(2)
    ) u_out (
        .clk(clk),
        .rst(rst),
        .s_axis_tdata(r_data),
        .s_axis_tvalid(r_valid),
        .s_axis_tready(ce),
        .s_axis_tlast(r_last),
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
