// fpgagen_fifo: AXI-Stream FIFO of DEPTH elements (tlast carried) in an inferred RAM.
//
// A first-word-fall-through FIFO: a simple dual-port RAM of max(DEPTH, 2) words {tlast, tdata}
// with a registered read, followed by an output register, so it holds max(DEPTH, 2) + 1 elements
// and moves one element per cycle in and out (a 1-word RAM could only alternate, since
// s_axis_tready is registered). s_axis_tready and m_axis_tvalid come from registers only
// (no combinational path from m_axis_tready to s_axis_tready). Latency: 2 cycles.
// Used on the skip path of a residual add (the generator sizes DEPTH so the graph cannot
// deadlock) and as the output buffer of the layer modules.
`default_nettype none

module fpgagen_fifo #(
    parameter integer WIDTH = 8,   // bits of tdata
    parameter integer DEPTH = 16   // elements held in the RAM (at least 2; one more waits in the output register)
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
    localparam integer RD = (DEPTH > 2) ? DEPTH : 2;      // RAM words
    localparam integer AW = $clog2(RD);                     // RAM address bits
    localparam integer CW = $clog2(RD + 1);                 // occupancy counter bits
    localparam integer LAST_I = RD - 1;
    localparam [AW-1:0] ADDR_LAST = LAST_I[AW-1:0];
    localparam [CW-1:0] FULL = RD[CW-1:0];

    initial begin
        if (WIDTH < 1) $error("fpgagen_fifo %m: WIDTH %0d must be >= 1", WIDTH);
        if (DEPTH < 1) $error("fpgagen_fifo %m: DEPTH %0d must be >= 1", DEPTH);
    end

    reg [WIDTH:0]  mem [0:RD-1];     // {tlast, tdata}
    reg [AW-1:0]   wr_ptr;
    reg [AW-1:0]   rd_ptr;
    reg [CW-1:0]   count;  // elements in the RAM
    reg [WIDTH:0]  out_word;
    reg            out_valid;

    wire push = s_axis_tvalid && s_axis_tready;
    wire pop  = (count != {CW{1'b0}}) && (!out_valid || m_axis_tready);

    assign s_axis_tready = (count != FULL);
    assign m_axis_tdata  = out_word[WIDTH-1:0];
    assign m_axis_tlast  = out_word[WIDTH];
    assign m_axis_tvalid = out_valid;

    // RAM: one write port, one registered read port
    always @(posedge clk) begin
        if (push) mem[wr_ptr] <= {s_axis_tlast, s_axis_tdata};
        if (pop) out_word <= mem[rd_ptr];
    end

    always @(posedge clk) begin
        if (rst) begin
            wr_ptr    <= {AW{1'b0}};
            rd_ptr    <= {AW{1'b0}};
            count     <= {CW{1'b0}};
            out_valid <= 1'b0;
        end else begin
            if (push) wr_ptr <= (wr_ptr == ADDR_LAST) ? {AW{1'b0}} : wr_ptr + 1'b1;
            if (pop) rd_ptr <= (rd_ptr == ADDR_LAST) ? {AW{1'b0}} : rd_ptr + 1'b1;
            if (push && !pop) count <= count + 1'b1;
            else if (pop && !push) count <= count - 1'b1;
            if (pop) out_valid <= 1'b1;
            else if (m_axis_tready) out_valid <= 1'b0;
        end
    end
endmodule

`default_nettype wire
