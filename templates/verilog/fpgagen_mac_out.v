// fpgagen_mac_out: the multiply-accumulate, requantize and output tail of fpgagen_dense and
// fpgagen_conv2d, y = requant(B + sum of x * W) for PE outputs at a time.
//
// The instantiating layer walks its (output group, input chunk) schedule and presents, one
// chunk per cycle while ce is high, SIMD input elements x (element s at bits
// [s*IN_WIDTH +: IN_WIDTH]), the PE*SIMD weights w of the group (element (p, s) at bits
// [(p*SIMD + s)*W_WIDTH +: W_WIDTH], two's complement) and the PE biases of the group (bits
// [p*BIAS_WIDTH +: BIAS_WIDTH], two's complement, at the accumulator frac), with valid, first
// (the group's first chunk) and last (its last chunk). These are registered inputs held while
// ce is low: the layer's stage B, which it updates only when ce is high.
// Stage C multiplies the PE x SIMD pairs and adds the SIMD products of each output; stage D
// accumulates them on top of the bias, modulo 2**AW with AW > ACC_WIDTH (exact, since the
// result fits ACC_WIDTH bits), and requantizes the finished group with fpgagen_requant (round
// half away from zero by SHIFT, clamp to [LO, HI]). The PE results of a group leave one per beat,
// output 0 first, through a 2-deep fpgagen_fifo; tlast marks the last of every N_OUT outputs.
// ce (the pipeline advances) is low only while a finished group waits for the output buffer.
`default_nettype none

module fpgagen_mac_out #(
    parameter integer IN_WIDTH   = 8,     // bits of input elements
    parameter integer IN_SIGNED  = 1,     // 1: inputs are two's complement, 0: unsigned
    parameter integer W_WIDTH    = 8,     // bits of the (signed) weights
    parameter integer BIAS_WIDTH = 16,    // bits of the (signed) biases
    parameter integer OUT_WIDTH  = 8,     // bits of output elements
    parameter integer PE         = 1,     // outputs computed in parallel
    parameter integer SIMD       = 1,     // inputs multiplied in parallel per output
    parameter integer N_OUT      = 8,     // output elements per frame (tlast on the last)
    parameter integer ACC_WIDTH  = 24,    // bits that hold every accumulator value exactly
    parameter integer SHIFT      = 8,     // requantization right shift (negative: left shift)
    parameter integer LO         = -128,  // lowest output value
    parameter integer HI         = 127    // highest output value
) (
    input  wire                         clk,
    input  wire                         rst,     // synchronous, active high

    input  wire                         valid,   // x, w, bias hold a chunk
    input  wire                         first,   // ... the first of its output group
    input  wire                         last,    // ... the last of its output group
    input  wire [SIMD*IN_WIDTH-1:0]     x,
    input  wire [PE*SIMD*W_WIDTH-1:0]   w,
    input  wire [PE*BIAS_WIDTH-1:0]     bias,
    output wire                         ce,      // the pipeline advances (take the next chunk)

    output wire [OUT_WIDTH-1:0]         m_axis_tdata,
    output wire                         m_axis_tvalid,
    input  wire                         m_axis_tready,
    output wire                         m_axis_tlast
);
    localparam integer PW   = IN_WIDTH + 1 + W_WIDTH;            // one product, exact
    localparam integer SUMW = PW + $clog2(SIMD) + 1;             // SIMD products, exact
    localparam integer AW   = (ACC_WIDTH > SUMW ? ACC_WIDTH : SUMW) + 1;  // accumulator (modulo)
    localparam integer PCW  = $clog2(PE + 1);                    // output buffer count
    localparam integer OIB  = (N_OUT > 1) ? $clog2(N_OUT) : 1;   // output element index
    localparam integer N_OUT_LAST_I = N_OUT - 1;
    localparam [OIB-1:0] O_LAST = N_OUT_LAST_I[OIB-1:0];
    localparam [PCW-1:0] PE_C   = PE[PCW-1:0];

    initial begin
        if (PE < 1 || SIMD < 1 || N_OUT < 1)
            $error("fpgagen_mac_out %m: PE %0d, SIMD %0d and N_OUT %0d must be >= 1", PE, SIMD, N_OUT);
        if (BIAS_WIDTH > AW) $error("fpgagen_mac_out %m: BIAS_WIDTH %0d wider than the accumulator (%0d)", BIAS_WIDTH, AW);
    end

    // ---- stage C: PE dot products of SIMD elements ------------------------------------------
    reg              c_v, c_first, c_last;
    reg [PE*AW-1:0]  c_part;
    reg [PE*AW-1:0]  c_bias;
    wire [PE*AW-1:0] part;
    wire [PE*AW-1:0] bias_ext;

    genvar gp;
    generate
        for (gp = 0; gp < PE; gp = gp + 1) begin : g_pe
            wire [SIMD*PW-1:0] prods;
            genvar gs;
            for (gs = 0; gs < SIMD; gs = gs + 1) begin : g_mul
                wire [IN_WIDTH-1:0] xr = x[gs*IN_WIDTH +: IN_WIDTH];
                wire [W_WIDTH-1:0]  wr = w[(gp*SIMD + gs)*W_WIDTH +: W_WIDTH];
                wire                xsign = (IN_SIGNED != 0) && xr[IN_WIDTH-1];
                wire signed [PW-1:0] xe = $signed({{(PW-IN_WIDTH){xsign}}, xr});
                wire signed [PW-1:0] we = $signed({{(PW-W_WIDTH){wr[W_WIDTH-1]}}, wr});
                wire signed [PW-1:0] prod = xe * we;
                assign prods[gs*PW +: PW] = prod;
            end
            reg signed [AW-1:0] dot;
            integer s;
            always @* begin
                dot = {AW{1'b0}};
                for (s = 0; s < SIMD; s = s + 1)
                    dot = dot + {{(AW-PW){prods[s*PW+PW-1]}}, prods[s*PW +: PW]};
            end
            assign part[gp*AW +: AW] = dot;
            wire [BIAS_WIDTH-1:0] br = bias[gp*BIAS_WIDTH +: BIAS_WIDTH];
            assign bias_ext[gp*AW +: AW] = {{(AW-BIAS_WIDTH){br[BIAS_WIDTH-1]}}, br};
        end
    endgenerate

    always @(posedge clk) begin
        if (ce) begin
            c_v     <= valid;
            c_first <= first;
            c_last  <= last;
            c_part  <= part;
            c_bias  <= bias_ext;
        end
        if (rst) c_v <= 1'b0;
    end

    // ---- stage D: accumulate; requantize the finished group ----------------------------------
    reg [PE*AW-1:0]   acc;
    reg               d_final;   // acc holds a finished output group
    wire [PE*OUT_WIDTH-1:0] y;

    generate
        for (gp = 0; gp < PE; gp = gp + 1) begin : g_acc
            always @(posedge clk) begin
                if (ce && c_v)
                    acc[gp*AW +: AW] <= (c_first ? c_bias[gp*AW +: AW] : acc[gp*AW +: AW]) + c_part[gp*AW +: AW];
            end
            fpgagen_requant #(
                .ACC_WIDTH(ACC_WIDTH),
                .SHIFT(SHIFT),
                .OUT_WIDTH(OUT_WIDTH),
                .LO(LO),
                .HI(HI)
            ) u_requant (
                .acc(acc[gp*AW +: ACC_WIDTH]),
                .y(y[gp*OUT_WIDTH +: OUT_WIDTH])
            );
        end
    endgenerate

    // ---- output: the PE results of a group leave one per beat ------------------------------
    reg [PE*OUT_WIDTH-1:0] obuf;   // element 0 at the bottom
    reg [PCW-1:0]          ocnt;
    reg [OIB-1:0]          oidx;
    wire                   fifo_ready;
    wire                   pop = (ocnt != {PCW{1'b0}}) && fifo_ready;
    wire                   obuf_free = (ocnt == {PCW{1'b0}}) || (ocnt == {{(PCW-1){1'b0}}, 1'b1} && pop);
    wire                   load = d_final && obuf_free;
    assign ce = !d_final || obuf_free;

    always @(posedge clk) begin
        if (ce) d_final <= c_v && c_last;
        if (load) begin
            obuf <= y;
            ocnt <= PE_C;
        end else if (pop) begin
            obuf <= obuf >> OUT_WIDTH;
            ocnt <= ocnt - 1'b1;
        end
        if (pop) oidx <= (oidx == O_LAST) ? {OIB{1'b0}} : oidx + 1'b1;
        if (rst) begin
            d_final <= 1'b0;
            ocnt    <= {PCW{1'b0}};
            oidx    <= {OIB{1'b0}};
        end
    end

    fpgagen_fifo #(
        .WIDTH(OUT_WIDTH),
        .DEPTH(2)
    ) u_out (
        .clk(clk),
        .rst(rst),
        .s_axis_tdata(obuf[OUT_WIDTH-1:0]),
        .s_axis_tvalid(ocnt != {PCW{1'b0}}),
        .s_axis_tready(fifo_ready),
        .s_axis_tlast(oidx == O_LAST),
        .m_axis_tdata(m_axis_tdata),
        .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(m_axis_tready),
        .m_axis_tlast(m_axis_tlast)
    );
endmodule

`default_nettype wire
