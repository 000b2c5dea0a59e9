// fpgagen_beat_count: the stage-1 beat counter of a lane module, frames of NB beats.
//
// fpgagen_act and fpgagen_add take a beat (take, high only with ce) and register its elements
// lane by lane on the same edge; this module registers that beat's flags beside them: valid
// (a beat was taken) and last (it was beat NB - 1 of its frame, tlast). idx counts the taken
// beats 0 .. NB - 1 and wraps to 0 after the last, so the frames are counted, never taken from
// an input's tlast. The pipeline holds while ce is low: valid loads only with ce, idx and last
// only with take. rst (synchronous) clears valid and idx; last needs no reset (read only with
// valid). Latency: valid and last one cycle after take.
`default_nettype none

module fpgagen_beat_count #(
    parameter integer NB = 16   // beats per frame (>= 1)
) (
    input  wire clk,
    input  wire rst,            // synchronous, active high
    input  wire ce,             // the pipeline advances
    input  wire take,           // a beat is taken now (implies ce)
    output wire valid,          // a beat was taken (registered)
    output wire last            // ... and it was the last of its frame (registered)
);
    localparam integer LW = (NB > 1) ? $clog2(NB) : 1;
    localparam integer LAST_I = NB - 1;
    localparam [LW-1:0] IDX_LAST = LAST_I[LW-1:0];

    initial begin
        if (NB < 1) $error("fpgagen_beat_count %m: NB %0d beats per frame must be >= 1", NB);
    end

    reg [LW-1:0] idx;
    reg          r_valid;
    reg          r_last;

    always @(posedge clk) begin
        if (ce) begin
            r_valid <= take;
            if (take) begin
                r_last <= (idx == IDX_LAST);
                idx    <= (idx == IDX_LAST) ? {LW{1'b0}} : idx + 1'b1;
            end
        end
        if (rst) begin
            r_valid <= 1'b0;
            idx     <= {LW{1'b0}};
        end
    end

    assign valid = r_valid;
    assign last  = r_last;
endmodule

`default_nettype wire
