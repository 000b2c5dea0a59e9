// fpgagen_dense: fully-connected layer, y = requant(W x + B), PE neurons x SIMD inputs per cycle.
//
// Streams: N_IN input elements per frame in, N_OUT output elements per frame out, one element
// per beat, tlast generated on the last output of each frame (input tlast is ignored).
// The input vector is written into one bank of a double buffer while the other bank is being
// computed on, so frames stream back to back. Each cycle multiplies SIMD inputs by the weights
// of PE neurons; one frame takes N_OUT/PE * N_IN/SIMD compute cycles. fpgagen_mac_out (shared
// with fpgagen_conv2d) accumulates each neuron on top of its bias B (already at the accumulator
// frac), exactly, requantizes it with fpgagen_requant (round half away from zero by SHIFT, clamp
// to [LO, HI]) and sends the PE results of a neuron group one per beat through a 2-deep
// fpgagen_fifo.
//
// ROM layouts ($readmemh, hex, one word per line):
//   WEIGHT_FILE: N_OUT/PE * N_IN/SIMD words of PE*SIMD*W_WIDTH bits; line g*(N_IN/SIMD) + k holds
//                the weights of neurons g*PE + p for inputs k*SIMD + s, element (p, s) in bits
//                [(p*SIMD + s)*W_WIDTH +: W_WIDTH] (two's complement). Input index = position
//                in the input stream (the generator permutes a flattened C,H,W map to HWC).
//   BIAS_FILE:   N_OUT/PE words of PE*BIAS_WIDTH bits; line g holds the biases of neurons
//                g*PE + p in bits [p*BIAS_WIDTH +: BIAS_WIDTH] (two's complement).
`default_nettype none

module fpgagen_dense #(
    parameter integer IN_WIDTH    = 8,     // bits of input elements
    parameter integer IN_SIGNED   = 1,     // 1: inputs are two's complement, 0: unsigned
    parameter integer W_WIDTH     = 8,     // bits of the (signed) weights
    parameter integer BIAS_WIDTH  = 16,    // bits of the (signed) biases in BIAS_FILE
    parameter integer OUT_WIDTH   = 8,     // bits of output elements
    parameter integer N_IN        = 16,    // inputs per frame
    parameter integer N_OUT       = 8,     // outputs (neurons) per frame
    parameter integer PE          = 1,     // neurons computed in parallel (divides N_OUT)
    parameter integer SIMD        = 1,     // inputs multiplied in parallel (divides N_IN)
    parameter integer ACC_WIDTH   = 24,    // bits that hold every accumulator value exactly
    parameter integer SHIFT       = 8,     // requantization right shift (negative: left shift)
    parameter integer LO          = -128,  // lowest output value
    parameter integer HI          = 127,   // highest output value
    parameter integer LEAKY       = 0,     // 1: LeakyRelu, a negative accumulator is requantized as acc * ALPHA
    parameter integer ROUND_EVEN  = 0,     // 1: round half to even (an imported model's quantizer), 0: half away from zero
    parameter integer ALPHA       = 0,     // the LeakyRelu's integer slope (signed)
    parameter integer ALPHA_FRAC  = 0,     // its frac: the negative path shifts by SHIFT + ALPHA_FRAC
    parameter integer ALIGN_MAX   = 0,     // per-channel weight formats: the largest pre-alignment (fpgagen_mac_out)
    parameter integer ALIGN_BITS  = 1,     // bits of one ALIGN entry
    parameter [N_OUT*ALIGN_BITS-1:0] ALIGN = {N_OUT*ALIGN_BITS{1'b0}},  // channel c's left shift SHIFT - s_c at [c*ALIGN_BITS +: ALIGN_BITS]
    parameter integer DSP_PAIR    = 0,     // 1: two products per fpgagen_mul8x8x2, 2: two sharing the input (fpgagen_mac_out)
    parameter integer EW_IN       = 1,     // input elements per beat (divides SIMD)
    parameter integer EW_OUT      = 1,     // output elements per beat (divides PE)
    parameter         WEIGHT_FILE = "weights.mem",  // $readmemh file of the weight ROM
    parameter         BIAS_FILE   = "bias.mem"      // $readmemh file of the bias ROM
) (
    input  wire                 clk,
    input  wire                 rst,            // synchronous, active high

    input  wire [EW_IN*IN_WIDTH-1:0]  s_axis_tdata,  // element e at [e*IN_WIDTH +: IN_WIDTH]
    input  wire                 s_axis_tvalid,
    output wire                 s_axis_tready,
    input  wire                 s_axis_tlast,

    output wire [EW_OUT*OUT_WIDTH-1:0] m_axis_tdata,  // element e at [e*OUT_WIDTH +: OUT_WIDTH]
    output wire                 m_axis_tvalid,
    input  wire                 m_axis_tready,
    output wire                 m_axis_tlast
);
    localparam integer NK  = N_IN / SIMD;          // input chunks per neuron group
    localparam integer NG  = N_OUT / PE;           // neuron groups
    localparam integer KW  = (NK > 1) ? $clog2(NK) : 1;
    localparam integer GW  = (NG > 1) ? $clog2(NG) : 1;
    localparam integer NW  = NG * NK;              // weight ROM words
    localparam integer WA  = (NW > 1) ? $clog2(NW) : 1;
    localparam integer SW  = (SIMD > 1) ? $clog2(SIMD) : 1;
    localparam integer XW  = SIMD * IN_WIDTH;      // input buffer word
    localparam integer XD  = 2 * NK;               // input buffer words: two banks of NK chunks
    localparam integer XA  = $clog2(XD);           // their address bits (XD >= 2)
    localparam [XA-1:0] BANK1 = NK[XA-1:0];        // bank 1's first word
    localparam integer WW  = PE * SIMD * W_WIDTH;  // weight ROM word

    localparam integer NK_LAST_I = NK - 1;
    localparam integer NG_LAST_I = NG - 1;
    localparam integer NW_LAST_I = NW - 1;
    localparam integer SIMD_LAST_I = SIMD / EW_IN - 1;            // the last beat of a word
    localparam [KW-1:0]  K_LAST = NK_LAST_I[KW-1:0];
    localparam [GW-1:0]  G_LAST = NG_LAST_I[GW-1:0];
    localparam [WA-1:0]  W_LAST = NW_LAST_I[WA-1:0];
    localparam [SW-1:0]  S_LAST = SIMD_LAST_I[SW-1:0];

    initial begin
        if (EW_IN < 1 || SIMD % EW_IN != 0) $error("fpgagen_dense %m: EW_IN %0d must divide SIMD %0d", EW_IN, SIMD);
        if (EW_OUT < 1 || PE % EW_OUT != 0) $error("fpgagen_dense %m: EW_OUT %0d must divide PE %0d", EW_OUT, PE);
        if (IN_WIDTH < 1 || W_WIDTH < 2 || OUT_WIDTH < 1 || BIAS_WIDTH < 2)
            $error("fpgagen_dense %m: IN_WIDTH %0d, W_WIDTH %0d, BIAS_WIDTH %0d, OUT_WIDTH %0d out of range",
                   IN_WIDTH, W_WIDTH, BIAS_WIDTH, OUT_WIDTH);
        if (N_IN < 1 || N_OUT < 1) $error("fpgagen_dense %m: N_IN %0d and N_OUT %0d must be >= 1", N_IN, N_OUT);
        if (PE < 1 || N_OUT % PE != 0) $error("fpgagen_dense %m: PE %0d must divide N_OUT %0d", PE, N_OUT);
        if (SIMD < 1 || N_IN % SIMD != 0) $error("fpgagen_dense %m: SIMD %0d must divide N_IN %0d", SIMD, N_IN);
    end

    // ---- ROMs and the double-buffered input vector -----------------------------------------
    // the weights go to block RAM (a synchronous read with enable), never to flip-flops or LUTs
    (* rom_style = "block" *)
    reg [WW-1:0]            wrom [0:NW-1];
    reg [PE*BIAS_WIDTH-1:0] brom [0:NG-1];
    reg [XW-1:0]            xbuf [0:XD-1];           // address bank * NK + chunk
    initial begin
        $readmemh(WEIGHT_FILE, wrom);
        $readmemh(BIAS_FILE, brom);
    end

    reg  [1:0] full;   // bank holds a complete input vector
    reg        wbank;  // bank being written
    reg        rbank;  // bank being read
    wire       mac_ready;  // fpgagen_mac_out has a place for one more output group

    // ---- input side: assemble SIMD elements, write one chunk per SIMD beats -------------------
    reg [KW-1:0] wk;
    reg [SW-1:0] ws;
    wire         take = s_axis_tvalid && s_axis_tready;
    wire [XW-1:0] wword;
    assign s_axis_tready = !full[wbank];
    generate
        if (SIMD > EW_IN) begin : g_simd
            reg [XW-EW_IN*IN_WIDTH-1:0] staging;  // the last SIMD-EW_IN elements, the oldest at the bottom
            assign wword = {s_axis_tdata, staging};  // element s at bits [s*IN_WIDTH +: IN_WIDTH]
            always @(posedge clk) if (take) staging <= wword[XW-1:EW_IN*IN_WIDTH];
        end else begin : g_scalar
            assign wword = s_axis_tdata;
        end
    endgenerate

    reg [XA-1:0] wx;  // wbank * NK + wk
    always @(posedge clk) begin
        if (take && ws == S_LAST) xbuf[wx] <= wword;
    end

    // ---- stage A: walk (neuron group, chunk) over the full bank -----------------------------
    reg [GW-1:0] ag;
    reg [KW-1:0] ak;
    reg [WA-1:0] awa;
    reg [XA-1:0] ax;  // rbank * NK + ak
    wire         arun = full[rbank];
    wire         a_lastk = (ak == K_LAST);              // the group's last chunk
    wire         a_fire = arun && (mac_ready || !a_lastk);  // ... needs a place for its results
    wire         a_end = a_lastk && (ag == G_LAST);

    // ---- stage B: ROM and buffer outputs -----------------------------------------------------
    reg                      b_v, b_first, b_last;
    reg [WW-1:0]             b_w;
    reg [XW-1:0]             b_x;
    reg [PE*BIAS_WIDTH-1:0]  b_bias;

    always @(posedge clk) begin
        if (a_fire) begin
            b_w    <= wrom[awa];
            b_x    <= xbuf[ax];
            b_bias <= brom[ag];
        end
    end

    always @(posedge clk) begin
        if (take) begin
            ws <= (ws == S_LAST) ? {SW{1'b0}} : ws + 1'b1;
            if (ws == S_LAST) begin
                wk <= (wk == K_LAST) ? {KW{1'b0}} : wk + 1'b1;
                // a full bank: the next chunk is the other bank's first
                wx <= (wk != K_LAST) ? wx + 1'b1 : (wbank ? {XA{1'b0}} : BANK1);
            end
        end
        b_v     <= a_fire;
        b_first <= (ak == {KW{1'b0}});
        b_last  <= a_lastk;
        if (a_fire) begin
            ak  <= (ak == K_LAST) ? {KW{1'b0}} : ak + 1'b1;
            // a group's last chunk: the bank again for the next group, the other after the last group
            ax  <= !a_lastk ? ax + 1'b1 : ((rbank != a_end) ? BANK1 : {XA{1'b0}});
            awa <= (awa == W_LAST) ? {WA{1'b0}} : awa + 1'b1;
            if (ak == K_LAST) ag <= (ag == G_LAST) ? {GW{1'b0}} : ag + 1'b1;
        end
        // bank hand-over: the writer fills one bank while the reader walks the other
        if (take && ws == S_LAST && wk == K_LAST) begin
            full[wbank] <= 1'b1;
            wbank <= !wbank;
        end
        if (a_fire && a_end) begin
            full[rbank] <= 1'b0;
            rbank <= !rbank;
        end
        if (rst) begin
            full  <= 2'b00;
            wbank <= 1'b0;
            rbank <= 1'b0;
            wk    <= {KW{1'b0}};
            ws    <= {SW{1'b0}};
            ag    <= {GW{1'b0}};
            ak    <= {KW{1'b0}};
            awa   <= {WA{1'b0}};
            wx    <= {XA{1'b0}};
            ax    <= {XA{1'b0}};
            b_v   <= 1'b0;
        end
    end

    // ---- stages C, D and the output: multiply-accumulate, requantize, one result per beat ------
    fpgagen_mac_out #(
        .IN_WIDTH(IN_WIDTH),
        .IN_SIGNED(IN_SIGNED),
        .W_WIDTH(W_WIDTH),
        .BIAS_WIDTH(BIAS_WIDTH),
        .OUT_WIDTH(OUT_WIDTH),
        .PE(PE),
        .SIMD(SIMD),
        .CHUNKS(NK),
        .N_OUT(N_OUT),
        .ACC_WIDTH(ACC_WIDTH),
        .SHIFT(SHIFT),
        .ROUND_EVEN(ROUND_EVEN),
        .LO(LO),
        .HI(HI),
        .LEAKY(LEAKY),
        .ALPHA(ALPHA),
        .ALPHA_FRAC(ALPHA_FRAC),
        .CHANNELS(N_OUT),
        .ALIGN_MAX(ALIGN_MAX),
        .ALIGN_BITS(ALIGN_BITS),
        .ALIGN(ALIGN),
        .DSP_PAIR(DSP_PAIR),
        .EW_OUT(EW_OUT)
    ) u_mac (
        .clk(clk),
        .rst(rst),
        .ready(mac_ready),
        .issue(a_fire && a_lastk),
        .valid(b_v),
        .first(b_first),
        .last(b_last),
        .x(b_x),
        .w(b_w),
        .bias(b_bias),
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
