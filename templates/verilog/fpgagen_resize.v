// fpgagen_resize: nearest-neighbour upsampling of a C x H x W map in HWC order by FH x FW.
//
// SPEC.md section 3 (Resize nearest, integer factors; exact, the output format is the input
// format): y[c, i, j] = x[c, i / FH, j / FW]; the output, C x (H*FH) x (W*FW) in HWC order, is
// every input row emitted FH times (its replays), each pixel of a replay FW times (its copies),
// each copy the pixel's C channels. EW elements per beat in and out (EW consecutive channels of
// one pixel, element e in bits [e*WIDTH +: WIDTH], EW divides C): the module moves words of EW
// elements, CW = C/EW per pixel. One output word per beat: a frame takes
// C * H * FH * W * FW / EW cycles.
//
// One row buffer of D = W*CW words (2 when W*CW = 1) in an inferred RAM, used as a ring: input
// words are written in stream order as long as fewer than D are held; a word is released by
// its last read (the last copy of its pixel in the row's last replay), and reads of a row may
// start as soon as its first words are written, so the next row (and the next frame) fills in
// behind the last replay of the current one and the output never waits for the input once the
// input keeps up. A read never meets the write of the same word in one cycle. tlast is
// generated on the last beat of each frame (input tlast is ignored). s_axis_tready and
// m_axis_* come from registers. Latency from an input beat to its first copy: 3 cycles.
`default_nettype none

module fpgagen_resize #(
    parameter integer WIDTH = 8,   // bits of the elements
    parameter integer C     = 1,   // channels
    parameter integer EW    = 1,   // elements (channels of one pixel) per beat, divides C
    parameter integer H     = 4,   // input rows
    parameter integer W     = 4,   // input columns
    parameter integer FH    = 2,   // row factor (each row emitted FH times)
    parameter integer FW    = 2    // column factor (each pixel emitted FW times)
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
    localparam integer CW = C / EW;                   // words (beats) per pixel
    localparam integer BW = EW * WIDTH;               // bits of a word
    localparam integer N  = W * CW;                   // words of one input row
    localparam integer D  = (N > 1) ? N : 2;          // words of the ring buffer
    localparam integer AB = $clog2(D);                // its addresses (also a word of a row)
    localparam integer OB = $clog2(D + 1);            // words held
    localparam integer WB = $clog2(N + D + 1);        // words written from the read row's start
    localparam integer CB = (CW > 1) ? $clog2(CW) : 1;
    localparam integer FB = (FW > 1) ? $clog2(FW) : 1;
    localparam integer RB = (FH > 1) ? $clog2(FH) : 1;
    localparam integer IB = (H > 1) ? $clog2(H) : 1;
    localparam integer C_LAST_I = CW - 1;
    localparam integer F_LAST_I = FW - 1;
    localparam integer R_LAST_I = FH - 1;
    localparam integer I_LAST_I = H - 1;
    localparam integer N_LAST_I = N - 1;
    localparam integer D_LAST_I = D - 1;
    localparam [CB-1:0] C_LAST = C_LAST_I[CB-1:0];
    localparam [FB-1:0] F_LAST = F_LAST_I[FB-1:0];
    localparam [RB-1:0] R_LAST = R_LAST_I[RB-1:0];
    localparam [IB-1:0] I_LAST = I_LAST_I[IB-1:0];
    localparam [AB-1:0] N_LAST = N_LAST_I[AB-1:0];
    localparam [AB-1:0] D_LAST = D_LAST_I[AB-1:0];
    localparam [AB:0]   N_A    = N[AB:0];
    localparam [AB:0]   D_A    = D[AB:0];
    localparam [OB-1:0] D_O    = D[OB-1:0];
    localparam [WB-1:0] N_W    = N[WB-1:0];

    initial begin
        if (WIDTH < 1) $error("fpgagen_resize %m: WIDTH %0d must be >= 1", WIDTH);
        if (C < 1 || H < 1 || W < 1) $error("fpgagen_resize %m: C %0d, H %0d and W %0d must be >= 1", C, H, W);
        if (EW < 1 || C % EW != 0)
            $error("fpgagen_resize %m: EW %0d elements per beat must be >= 1 and divide C %0d", EW, C);
        if (FH < 1 || FW < 1) $error("fpgagen_resize %m: factors FH %0d and FW %0d must be >= 1", FH, FW);
    end

    reg [BW-1:0] mem [0:D-1];

    // ---- write side: input elements in stream order while fewer than D words are held ------
    reg  [AB-1:0] wp;     // next write address
    reg  [OB-1:0] held;   // words written and not yet released
    reg  [WB-1:0] wrel;   // words written from the start of the row being read
    assign s_axis_tready = (held != D_O);
    wire wr = s_axis_tvalid && s_axis_tready;

    always @(posedge clk) begin
        if (wr) mem[wp] <= s_axis_tdata;
    end

    // ---- read side: replay rep, pixel copy f, channel c; ra the word of the row ------------
    wire ce;  // the output FIFO has room
    reg  [AB-1:0] ra;       // word of the row read now
    reg  [AB-1:0] pstart;   // first word of the current pixel
    reg  [AB-1:0] rbase;    // ring address of the row's first word
    reg  [CB-1:0] c;
    reg  [FB-1:0] f;
    reg  [RB-1:0] rep;
    reg  [IB-1:0] i;        // input row of the frame
    wire rd = ce && ({{(WB-AB){1'b0}}, ra} < wrel);   // the word is written
    wire c_end = (c == C_LAST);
    wire f_end = (f == F_LAST);
    wire row_end = c_end && f_end && (ra == N_LAST);  // the last element of a replay
    wire last_rep = (rep == R_LAST);
    wire release_w = rd && last_rep && f_end;          // the word's last read
    wire row_done = rd && row_end && last_rep;         // the row's last read
    wire [AB:0] rsum = {1'b0, rbase} + {1'b0, ra};
    wire [AB:0] bsum = {1'b0, rbase} + N_A;
    /* verilator lint_off UNUSEDSIGNAL */  // below D after the wrap: the top bit is 0
    wire [AB:0] rwrap = (rsum >= D_A) ? rsum - D_A : rsum;
    wire [AB:0] bwrap = (bsum >= D_A) ? bsum - D_A : bsum;
    /* verilator lint_on UNUSEDSIGNAL */

    reg             r_valid;
    reg             r_last;
    reg [BW-1:0] r_data;

    always @(posedge clk) begin
        if (ce) begin
            r_valid <= rd;
            if (rd) begin
                r_data <= mem[rwrap[AB-1:0]];
                r_last <= row_end && last_rep && (i == I_LAST);
            end
        end
        if (rd) begin
            c <= c_end ? {CB{1'b0}} : c + 1'b1;
            if (!c_end) begin
                ra <= ra + 1'b1;
            end else if (!f_end) begin
                f  <= f + 1'b1;
                ra <= pstart;          // the next copy of the pixel
            end else begin
                f <= {FB{1'b0}};
                if (ra == N_LAST) begin  // the replay's end
                    ra     <= {AB{1'b0}};
                    pstart <= {AB{1'b0}};
                    rep    <= last_rep ? {RB{1'b0}} : rep + 1'b1;
                    if (last_rep) begin
                        rbase <= bwrap[AB-1:0];
                        i     <= (i == I_LAST) ? {IB{1'b0}} : i + 1'b1;
                    end
                end else begin
                    ra     <= ra + 1'b1;
                    pstart <= ra + 1'b1;
                end
            end
        end
        if (wr) wp <= (wp == D_LAST) ? {AB{1'b0}} : wp + 1'b1;
        if (wr && !release_w) held <= held + 1'b1;
        else if (release_w && !wr) held <= held - 1'b1;
        wrel <= wrel + {{(WB-1){1'b0}}, wr} - (row_done ? N_W : {WB{1'b0}});
        if (rst) begin
            r_valid <= 1'b0;
            wp      <= {AB{1'b0}};
            held    <= {OB{1'b0}};
            wrel    <= {WB{1'b0}};
            ra      <= {AB{1'b0}};
            pstart  <= {AB{1'b0}};
            rbase   <= {AB{1'b0}};
            c       <= {CB{1'b0}};
            f       <= {FB{1'b0}};
            rep     <= {RB{1'b0}};
            i       <= {IB{1'b0}};
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
