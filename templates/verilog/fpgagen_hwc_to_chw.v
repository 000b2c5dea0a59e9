// fpgagen_hwc_to_chw: a (C, H, W) map in HWC stream order out in CHW order (a Flatten's order).
//
// Streams: C*H*W elements per frame in, HWC order (all channels of a pixel, pixel by pixel,
// row by row; input tlast is ignored); the same elements out in CHW order (channel by channel,
// each channel's pixels row by row), the order of an ONNX Flatten, one element per beat, tlast
// on the last of each frame; frames back to back.
// Two frame buffers in one inferred simple dual-port RAM of 2*C*H*W words: one is written while
// the other is read, so a frame takes C*H*W cycles and the latency is C*H*W + 2 cycles.
// Element c*H*W + p of the output is word p*C + c of its buffer. s_axis_tready and
// m_axis_tvalid come from registers only (no combinational path from m_axis_tready to
// s_axis_tready).
`default_nettype none

module fpgagen_hwc_to_chw #(
    parameter integer WIDTH = 8,   // bits of tdata
    parameter integer C     = 2,   // channels
    parameter integer H     = 2,   // rows
    parameter integer W     = 2    // columns
) (
    input  wire             clk,
    input  wire             rst,            // synchronous, active high

    input  wire [WIDTH-1:0] s_axis_tdata,
    input  wire             s_axis_tvalid,
    output wire             s_axis_tready,
    input  wire             s_axis_tlast,

    output wire [WIDTH-1:0] m_axis_tdata,
    output wire             m_axis_tvalid,
    input  wire             m_axis_tready,
    output wire             m_axis_tlast
);
    localparam integer P  = H * W;                    // pixels
    localparam integer N  = C * P;                    // elements per frame
    localparam integer AW = $clog2(2 * N);            // RAM address bits (two frames)
    localparam integer PW = $clog2(P > 1 ? P : 2);    // pixel counter bits
    localparam integer N_LAST = N - 1;
    localparam integer C_LAST = C - 1;
    localparam integer P_LAST = P - 1;
    localparam [AW-1:0] WORDS_N = N[AW-1:0];
    localparam [AW-1:0] ADDR_LAST = N_LAST[AW-1:0];
    localparam [AW-1:0] STEP_C = C[AW-1:0];
    localparam [AW-1:0] CH_LAST = C_LAST[AW-1:0];
    localparam [PW-1:0] PIX_LAST = P_LAST[PW-1:0];

    initial begin
        if (WIDTH < 1) $error("fpgagen_hwc_to_chw %m: WIDTH %0d must be >= 1", WIDTH);
        if (C < 1 || H < 1 || W < 1) $error("fpgagen_hwc_to_chw %m: C %0d, H %0d, W %0d must be >= 1", C, H, W);
    end

    reg [WIDTH-1:0] mem [0:2*N-1];
    reg [1:0]       full;       // buffer b holds a whole frame not yet read out
    reg             wr_buf;     // the buffer being written
    reg [AW-1:0]    wr_addr;    // HWC position in it
    reg             rd_buf;     // the buffer being read
    reg [AW-1:0]    rd_addr;    // word p*C + c of the element read next
    reg [AW-1:0]    rd_c;       // channel (AW bits hold C - 1 + 1)
    reg [PW-1:0]    rd_p;
    reg [WIDTH-1:0] out_data;
    reg             out_last;
    reg             out_valid;

    wire push = s_axis_tvalid && s_axis_tready;
    wire pop  = full[rd_buf] && (!out_valid || m_axis_tready);
    wire wr_end = (wr_addr == ADDR_LAST);
    wire rd_end = (rd_c == CH_LAST) && (rd_p == PIX_LAST);
    wire [AW-1:0] wr_word = wr_buf ? wr_addr + WORDS_N : wr_addr;
    wire [AW-1:0] rd_word = rd_buf ? rd_addr + WORDS_N : rd_addr;

    assign s_axis_tready = !full[wr_buf];
    assign m_axis_tdata  = out_data;
    assign m_axis_tlast  = out_last;
    assign m_axis_tvalid = out_valid;

    // RAM: one write port, one registered read port
    always @(posedge clk) begin
        if (push) mem[wr_word] <= s_axis_tdata;
        if (pop) out_data <= mem[rd_word];
    end

    always @(posedge clk) begin
        if (rst) begin
            full      <= 2'b00;
            wr_buf    <= 1'b0;
            wr_addr   <= {AW{1'b0}};
            rd_buf    <= 1'b0;
            rd_addr   <= {AW{1'b0}};
            rd_c      <= {AW{1'b0}};
            rd_p      <= {PW{1'b0}};
            out_last  <= 1'b0;
            out_valid <= 1'b0;
        end else begin
            // a buffer is filled by the write side and emptied by the read side, never both at once
            if (push && wr_end) full[wr_buf] <= 1'b1;
            if (pop && rd_end) full[rd_buf] <= 1'b0;
            if (push) begin
                wr_addr <= wr_end ? {AW{1'b0}} : wr_addr + 1'b1;
                if (wr_end) wr_buf <= !wr_buf;
            end
            if (pop) begin
                out_last <= rd_end;
                if (rd_p == PIX_LAST) begin
                    rd_p <= {PW{1'b0}};
                    if (rd_c == CH_LAST) begin
                        rd_c    <= {AW{1'b0}};
                        rd_addr <= {AW{1'b0}};
                        rd_buf  <= !rd_buf;
                    end else begin
                        rd_c    <= rd_c + 1'b1;
                        rd_addr <= rd_c + 1'b1;
                    end
                end else begin
                    rd_p    <= rd_p + 1'b1;
                    rd_addr <= rd_addr + STEP_C;
                end
            end
            if (pop) out_valid <= 1'b1;
            else if (m_axis_tready) out_valid <= 1'b0;
        end
    end

    /* verilator lint_off UNUSEDSIGNAL */
    wire unused = s_axis_tlast;  // frames are counted, not taken from tlast
    /* verilator lint_on UNUSEDSIGNAL */
endmodule

`default_nettype wire
