// fpgagen_dwc: AXI-Stream data-width converter, EW_A elements per input beat -> EW_B per output beat.
//
// Element e of a beat sits at tdata[e*WIDTH +: WIDTH] (element 0 first in stream order) on both
// sides. A gearbox buffer of CAP = 2*EW_A + EW_B elements, oldest first: it accepts a beat while
// it holds <= CAP - EW_A elements and emits a beat while it holds >= EW_B, so s_axis_tready and
// m_axis_tvalid come from the occupancy register only (no combinational path from m_axis_tready
// to s_axis_tready). With this capacity it moves min(EW_A, EW_B) elements per cycle in steady
// state for any pair, dividing or not (3 -> 2, 4 -> 6, 1 -> 8, 8 -> 1; hdl_tests/test_dwc.py
// measures it). tlast is carried per element: an output beat's tlast is that of its last element,
// so a frame whose element count both EW_A and EW_B divide keeps its tlast on its last beat.
// Latency: 1 cycle from an accepted beat to the first beat it completes.
`default_nettype none

module fpgagen_dwc #(
    parameter integer WIDTH = 8,  // bits of one element
    parameter integer EW_A  = 1,  // elements per input beat
    parameter integer EW_B  = 1   // elements per output beat
) (
    input  wire                  clk,
    input  wire                  rst,            // synchronous, active high

    input  wire [EW_A*WIDTH-1:0] s_axis_tdata,
    input  wire                  s_axis_tvalid,
    output wire                  s_axis_tready,
    input  wire                  s_axis_tlast,

    output wire [EW_B*WIDTH-1:0] m_axis_tdata,
    output wire                  m_axis_tvalid,
    input  wire                  m_axis_tready,
    output wire                  m_axis_tlast
);
    localparam integer CAP = 2 * EW_A + EW_B;   // elements held
    localparam integer CW = $clog2(CAP + 1);    // occupancy counter bits
    localparam integer ROOM_I = CAP - EW_A;
    localparam [CW-1:0] ROOM = ROOM_I[CW-1:0];  // accept while count <= ROOM
    localparam [CW-1:0] NB = EW_B[CW-1:0];
    localparam [CW-1:0] NA = EW_A[CW-1:0];

    initial begin
        if (WIDTH < 1) $error("fpgagen_dwc %m: WIDTH %0d must be >= 1", WIDTH);
        if (EW_A < 1) $error("fpgagen_dwc %m: EW_A %0d must be >= 1", EW_A);
        if (EW_B < 1) $error("fpgagen_dwc %m: EW_B %0d must be >= 1", EW_B);
    end

    reg [CAP*WIDTH-1:0] buf_d;     // elements, oldest at element 0
    reg [CAP-1:0]       buf_l;     // tlast of each element
    reg [CAP*WIDTH-1:0] buf_d_n;
    reg [CAP-1:0]       buf_l_n;
    reg [CW-1:0]        count;

    assign s_axis_tready = (count <= ROOM);
    assign m_axis_tvalid = (count >= NB);

    wire push = s_axis_tvalid && s_axis_tready;
    wire pop  = m_axis_tvalid && m_axis_tready;
    wire [CW-1:0] kept = pop ? count - NB : count;   // elements staying after this cycle's pop

    assign m_axis_tdata = buf_d[EW_B*WIDTH-1:0];
    assign m_axis_tlast = buf_l[EW_B-1];

    // the buffer after this cycle: shift out EW_B on a pop, append EW_A behind the rest on a push
    integer i;
    integer src;
    integer k;
    integer j;
    always @(*) begin
        buf_d_n = buf_d;
        buf_l_n = buf_l;
        k = {{(32-CW){1'b0}}, kept};
        for (i = 0; i < CAP; i = i + 1) begin
            src = pop ? i + EW_B : i;
            j = i - k;
            if (i < k) begin
                if (src < CAP) begin
                    buf_d_n[i*WIDTH +: WIDTH] = buf_d[src*WIDTH +: WIDTH];
                    buf_l_n[i] = buf_l[src];
                end
            end else if (push && j < EW_A) begin
                buf_d_n[i*WIDTH +: WIDTH] = s_axis_tdata[j*WIDTH +: WIDTH];
                buf_l_n[i] = s_axis_tlast && (j == EW_A - 1);
            end
        end
    end

    always @(posedge clk) begin
        buf_d <= buf_d_n;
        buf_l <= buf_l_n;
        if (rst) count <= {CW{1'b0}};
        else count <= kept + (push ? NA : {CW{1'b0}});
    end
endmodule

`default_nettype wire
