// fpgagen_fork: one AXI-Stream to two consumers, every beat delivered to both.
//
// Each output has a two-entry buffer (head register + skid register), so either consumer can
// run one beat ahead of the other and the input is accepted at full rate while both keep up.
// s_axis_tready and m*_axis_tvalid come from registers only. Latency: 1 cycle.
// Used where one tensor is read by two layers (e.g. the input of a residual block).
`default_nettype none

module fpgagen_fork #(
    parameter integer WIDTH = 8   // bits of tdata
) (
    input  wire             clk,
    input  wire             rst,             // synchronous, active high

    input  wire [WIDTH-1:0] s_axis_tdata,
    input  wire             s_axis_tvalid,
    output wire             s_axis_tready,
    input  wire             s_axis_tlast,

    output wire [WIDTH-1:0] m0_axis_tdata,
    output wire             m0_axis_tvalid,
    input  wire             m0_axis_tready,
    output wire             m0_axis_tlast,

    output wire [WIDTH-1:0] m1_axis_tdata,
    output wire             m1_axis_tvalid,
    input  wire             m1_axis_tready,
    output wire             m1_axis_tlast
);
    initial begin
        if (WIDTH < 1) $error("fpgagen_fork %m: WIDTH %0d must be >= 1", WIDTH);
    end

    // per output k: head (what m<k> presents) and skid (the beat after it)
    reg [WIDTH:0] head0, skid0;
    reg [WIDTH:0] head1, skid1;
    reg head0_v, skid0_v, head1_v, skid1_v;

    wire [WIDTH:0] in_word = {s_axis_tlast, s_axis_tdata};
    // accept while neither skid register is taken: each output then has room for the beat
    assign s_axis_tready = !skid0_v && !skid1_v;
    wire push = s_axis_tvalid && s_axis_tready;
    wire pop0 = head0_v && m0_axis_tready;
    wire pop1 = head1_v && m1_axis_tready;

    assign m0_axis_tdata  = head0[WIDTH-1:0];
    assign m0_axis_tlast  = head0[WIDTH];
    assign m0_axis_tvalid = head0_v;
    assign m1_axis_tdata  = head1[WIDTH-1:0];
    assign m1_axis_tlast  = head1[WIDTH];
    assign m1_axis_tvalid = head1_v;

    always @(posedge clk) begin
        // output 0
        if (pop0 || !head0_v) begin
            if (skid0_v) begin  // (no push: the input waits while a skid register is taken)
                head0   <= skid0;
                skid0_v <= 1'b0;
            end else begin
                head0   <= in_word;
                head0_v <= push;
            end
        end else if (push) begin
            skid0   <= in_word;
            skid0_v <= 1'b1;
        end
        // output 1
        if (pop1 || !head1_v) begin
            if (skid1_v) begin  // (no push: the input waits while a skid register is taken)
                head1   <= skid1;
                skid1_v <= 1'b0;
            end else begin
                head1   <= in_word;
                head1_v <= push;
            end
        end else if (push) begin
            skid1   <= in_word;
            skid1_v <= 1'b1;
        end
        if (rst) begin
            head0_v <= 1'b0;
            skid0_v <= 1'b0;
            head1_v <= 1'b0;
            skid1_v <= 1'b0;
        end
    end
endmodule

`default_nettype wire
