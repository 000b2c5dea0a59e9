// fpgagen_pool_window: the window engine of the pooling layers, max or sum of every window.
//
// Streams: a (C, H, W) map in, in HWC order (all channels of a pixel, pixel by pixel, row by
// row), EW elements per beat (input tlast is ignored); out the (C, OH, OW) window results in
// HWC order, EW per beat, m_axis_tlast on the last beat of each frame, m_pos = oh*OW + ow
// beside each beat (for a per-position reciprocal). Frames stream back to back. A beat holds EW
// consecutive channels c0 .. c0+EW-1 of one pixel (EW divides C), element e in bits
// [e*IN_WIDTH +: IN_WIDTH] (in) and [e*DW +: DW] (out): the engine runs on CB = C/EW words
// per pixel, each word EW lanes wide, and combines lane by lane (EW = 1: one element a word).
//
// Windows of KH x KW with strides SH, SW over the map padded by PAD_T/L/B/R. OP 0 keeps the
// maximum of the real pixels (padding never wins); OP 1 their sum (padding adds 0), in DW bits.
// Each pad must be smaller than the kernel, so every window holds a real pixel.
//
// Partial results live in NS "slots", one per output row in flight, each holding the OW*CB
// partial words of that row in NJ banks (window ow in bank ow % NJ, word (ow / NJ)*CB + cb,
// cb = c / EW), so that an input beat updates every window covering it in the same cycle: up
// to NI rows (slots) x NJ columns (banks), each a read-modify-write of its own memory with a
// 1-cycle read and a forwarding path for back-to-back updates of one word. A window's first
// real pixel writes instead of combining, so no memory is ever cleared. When the last input
// row of an output row has been written, its slot is complete; the emitter reads it out in
// (ow, cb) order, one word per cycle, and frees the slot when its last word has left. An input
// row that opens an output row waits (s_axis_tready low) until a slot is free. Input and output
// run concurrently: cycles per frame = max(C*H*W, C*OH*OW) / EW in steady state. An output row
// starts leaving 2 cycles after the input beat that completes it was taken (if m_axis is free).
`default_nettype none

module fpgagen_pool_window #(
    parameter integer IN_WIDTH  = 8,   // bits of input elements
    parameter integer IN_SIGNED = 1,   // 1: inputs are two's complement, 0: unsigned
    parameter integer OP        = 0,   // 0: window maximum, 1: window sum
    parameter integer DW        = 8,   // bits of a result: IN_WIDTH (max), >= IN_WIDTH + 1 + clog2(KH*KW) (sum)
    parameter integer C         = 1,   // channels
    parameter integer EW        = 1,   // elements (channels of one pixel) per beat, divides C
    parameter integer H         = 4,   // input rows
    parameter integer W         = 4,   // input columns
    parameter integer KH        = 2,   // window rows
    parameter integer KW        = 2,   // window columns
    parameter integer SH        = 2,   // row stride
    parameter integer SW        = 2,   // column stride
    parameter integer PAD_T     = 0,   // padding rows above
    parameter integer PAD_L     = 0,   // padding columns left
    parameter integer PAD_B     = 0,   // padding rows below
    parameter integer PAD_R     = 0,   // padding columns right
    parameter integer POS_WIDTH = 2    // bits of m_pos, >= clog2(OH*OW)
) (
    input  wire                 clk,
    input  wire                 rst,            // synchronous, active high

    input  wire [EW*IN_WIDTH-1:0] s_axis_tdata,
    input  wire                 s_axis_tvalid,
    output wire                 s_axis_tready,
    input  wire                 s_axis_tlast,

    output wire [EW*DW-1:0]     m_axis_tdata,
    output wire                 m_axis_tvalid,
    input  wire                 m_axis_tready,
    output wire                 m_axis_tlast,
    output wire [POS_WIDTH-1:0] m_pos           // output position oh*OW + ow of m_axis_tdata
);
    // ---- geometry ---------------------------------------------------------------------------
    localparam integer CB  = C / EW;                        // words (beats) per pixel
    localparam integer LW  = EW * DW;                       // bits of a word of partial results
    localparam integer OH  = (H + PAD_T + PAD_B - KH) / SH + 1;   // output rows
    localparam integer OW  = (W + PAD_L + PAD_R - KW) / SW + 1;   // output columns
    localparam integer NI0 = (KH + SH - 1) / SH;
    localparam integer NI  = (NI0 < OH) ? NI0 : OH;      // output rows an input row can belong to
    localparam integer NJ0 = (KW + SW - 1) / SW;
    localparam integer NJ  = (NJ0 < OW) ? NJ0 : OW;      // output columns an input column can belong to
    // slots: NI filling plus the ones being emitted, and enough to cover the time a slot is
    // busy (filled over KH rows, then emitted after a few cycles of latency) when rows are short.
    // Output rows open every SH input rows, except across the end of a frame: from the last one
    // (input row RL) to the next frame's first there are WRAP_R = H - RL rows, fewer than SH when
    // the bottom rows are padding; the shorter gap counts.
    localparam integer NS_MIN = NI + ((NI < 2) ? NI : 2);
    localparam integer RL0    = (OH - 1) * SH - PAD_T;
    localparam integer WRAP_R = H - ((RL0 > 0) ? RL0 : 0);
    localparam integer GAP_R  = (WRAP_R < SH) ? WRAP_R : SH;
    localparam integer OPEN_T = (OH > 1) ? GAP_R * W * CB : H * W * CB;  // fewest cycles between opened rows
    localparam integer BUSY_T = ((KH < H) ? KH : H) * W * CB + OW * CB + 6;
    localparam integer NS_LAT = (BUSY_T + OPEN_T - 1) / OPEN_T;
    localparam integer NS  = (NS_LAT > NS_MIN) ? NS_LAT : NS_MIN;
    localparam integer WPB = (OW + NJ - 1) / NJ;          // windows per bank
    localparam integer DEPTH = WPB * CB;                  // words per bank
    localparam integer B0  = (PAD_T / SH < OH - 1) ? PAD_T / SH : OH - 1;  // last output row open at row 0
    localparam integer J0  = (PAD_L / SW < OW - 1) ? PAD_L / SW : OW - 1;  // last output column open at column 0

    // ---- widths -----------------------------------------------------------------------------
    localparam integer MA  = (DEPTH > 1) ? $clog2(DEPTH) : 1;       // bank address
    localparam integer CHW = (CB > 1) ? $clog2(CB) : 1;             // word-of-the-pixel counter
    localparam integer RW  = $clog2(NS + 1) + 1;                     // slot ring quantities
    localparam integer BW  = $clog2(NJ + 1) + 1;                     // bank quantities
    localparam integer PRW = $clog2(H + PAD_T + PAD_B + KH + 2 * SH + 2) + 1;  // padded row coordinates
    localparam integer PCW = $clog2(W + PAD_L + PAD_R + KW + 2 * SW + 2) + 1;  // padded column coordinates
    localparam integer OJW = (OW > 1) ? $clog2(OW) : 1;
    localparam integer OIW = (OH > 1) ? $clog2(OH) : 1;
    localparam integer NM  = NS * NJ;                                // memories
    localparam integer SELW = (NM > 1) ? $clog2(NM) : 1;

    // sized constants (lint-clean comparisons)
    localparam integer C_LAST_I = CB - 1;
    localparam integer OW_LAST_I = OW - 1;
    localparam integer OH_LAST_I = OH - 1;
    localparam integer POS_LAST_I = OH * OW - 1;
    localparam integer ROW_FIRST_I = PAD_T;
    localparam integer ROW_LAST_I = PAD_T + H - 1;
    localparam integer COL_FIRST_I = PAD_L;
    localparam integer COL_LAST_I = PAD_L + W - 1;
    localparam integer KH_END_I = KH - 1;
    localparam integer KW_END_I = KW - 1;
    localparam integer SB0_I = (B0 + 1) * SH;
    localparam integer SJB0_I = (J0 + 1) * SW;
    localparam integer SB_END_I = OH * SH;
    localparam integer SJB_END_I = OW * SW;
    localparam integer NR0_I = B0 + 1;
    localparam integer NC0_I = J0 + 1;
    localparam integer JM0_I = J0 % NJ;
    localparam integer JBASE0_I = (J0 / NJ) * CB;
    localparam [CHW-1:0] CH_LAST   = C_LAST_I[CHW-1:0];
    localparam [OJW-1:0] OJ_LAST   = OW_LAST_I[OJW-1:0];
    localparam [OIW-1:0] OI_LAST   = OH_LAST_I[OIW-1:0];
    localparam [POS_WIDTH-1:0] POS_LAST = POS_LAST_I[POS_WIDTH-1:0];
    localparam [PRW-1:0] ROW_FIRST = ROW_FIRST_I[PRW-1:0];
    localparam [PRW-1:0] ROW_LAST  = ROW_LAST_I[PRW-1:0];
    localparam [PCW-1:0] COL_FIRST = COL_FIRST_I[PCW-1:0];
    localparam [PCW-1:0] COL_LAST  = COL_LAST_I[PCW-1:0];
    localparam [PRW-1:0] KH_END    = KH_END_I[PRW-1:0];
    localparam [PCW-1:0] KW_END    = KW_END_I[PCW-1:0];
    localparam [PRW-1:0] SH_C      = SH[PRW-1:0];
    localparam [PCW-1:0] SW_C      = SW[PCW-1:0];
    localparam [PRW-1:0] SB0       = SB0_I[PRW-1:0];
    localparam [PCW-1:0] SJB0      = SJB0_I[PCW-1:0];
    localparam [PRW-1:0] SB_END    = SB_END_I[PRW-1:0];
    localparam [PCW-1:0] SJB_END   = SJB_END_I[PCW-1:0];
    localparam [RW-1:0]  NS_C      = NS[RW-1:0];
    localparam [RW-1:0]  NR0       = NR0_I[RW-1:0];
    localparam integer   NS_LESS_NR0_I = (NS >= NR0_I) ? NS - NR0_I : 0;
    localparam [RW-1:0]  NS_LESS_NR0 = NS_LESS_NR0_I[RW-1:0];
    localparam [BW-1:0]  NJ_C      = NJ[BW-1:0];
    localparam [BW-1:0]  NC0       = NC0_I[BW-1:0];
    localparam [BW-1:0]  JM0       = JM0_I[BW-1:0];
    localparam [MA-1:0]  JBASE0    = JBASE0_I[MA-1:0];
    localparam [MA-1:0]  C_MA      = CB[MA-1:0];
    localparam [RW-1:0]  ONE_R     = {{(RW-1){1'b0}}, 1'b1};
    localparam [BW-1:0]  ONE_B     = {{(BW-1){1'b0}}, 1'b1};

    initial begin
        if (IN_WIDTH < 1) $error("fpgagen_pool_window %m: IN_WIDTH %0d must be >= 1", IN_WIDTH);
        if (OP != 0 && OP != 1) $error("fpgagen_pool_window %m: OP %0d must be 0 (max) or 1 (sum)", OP);
        if (OP == 0 && DW != IN_WIDTH)
            $error("fpgagen_pool_window %m: DW %0d must equal IN_WIDTH %0d for a max", DW, IN_WIDTH);
        if (OP == 1 && DW < IN_WIDTH + 1 + $clog2(KH * KW))
            $error("fpgagen_pool_window %m: DW %0d cannot hold the sum of %0d inputs of %0d bits", DW, KH * KW, IN_WIDTH);
        if (C < 1 || H < 1 || W < 1) $error("fpgagen_pool_window %m: C %0d, H %0d, W %0d must be >= 1", C, H, W);
        if (EW < 1 || C % EW != 0)
            $error("fpgagen_pool_window %m: EW %0d elements per beat must be >= 1 and divide C %0d", EW, C);
        if (KH < 1 || KW < 1 || SH < 1 || SW < 1)
            $error("fpgagen_pool_window %m: kernel %0dx%0d and stride %0dx%0d must be >= 1", KH, KW, SH, SW);
        if (PAD_T < 0 || PAD_B < 0 || PAD_T >= KH || PAD_B >= KH || PAD_L < 0 || PAD_R < 0 || PAD_L >= KW || PAD_R >= KW)
            $error("fpgagen_pool_window %m: pads (%0d, %0d, %0d, %0d) must be >= 0 and smaller than the %0dx%0d kernel",
                   PAD_T, PAD_L, PAD_B, PAD_R, KH, KW);
        if (H + PAD_T + PAD_B < KH || W + PAD_L + PAD_R < KW)
            $error("fpgagen_pool_window %m: the %0dx%0d kernel is larger than the padded %0dx%0d map", KH, KW,
                   H + PAD_T + PAD_B, W + PAD_L + PAD_R);
        if (POS_WIDTH < 1 || (OH * OW - 1) >= (1 << POS_WIDTH))
            $error("fpgagen_pool_window %m: POS_WIDTH %0d cannot count %0d positions", POS_WIDTH, OH * OW);
    end

    // ---- input side: position and the windows open at it -----------------------------------
    reg  [CHW-1:0] ch;       // word of the pixel of the next beat (its channels / EW)
    reg  [PCW-1:0] cp;       // its column + PAD_L
    reg  [PRW-1:0] rp;       // its row + PAD_T
    // rows: output rows a .. b cover row rp; a's last padded row, b+1's first, their count
    reg  [PRW-1:0] ea;       // last padded row of output row a
    reg  [PRW-1:0] sb;       // first padded row of output row b + 1
    reg  [RW-1:0]  nrows;    // b - a + 1 (0 .. NI)
    reg  [RW-1:0]  slot_a;   // slot of output row a
    reg            b_new;    // output row b starts at this row (rp > ROW_FIRST)
    // columns: output columns ja .. jb cover column cp
    reg  [PCW-1:0] eja;      // last padded column of output column ja
    reg  [PCW-1:0] sjb;      // first padded column of output column jb + 1
    reg  [BW-1:0]  ncols;    // jb - ja + 1 (0 .. NJ)
    reg  [BW-1:0]  jb_mod;   // jb % NJ: the bank of jb
    reg  [MA-1:0]  jb_base;  // (jb / NJ) * CB: its word base
    reg            jb_new;   // output column jb starts at this column (cp > COL_FIRST)
    reg  [RW-1:0]  inflight; // output rows opened and not yet emitted

    wire last_ch  = (ch == CH_LAST);
    wire last_col = (cp == COL_LAST);
    wire first_row = (rp == ROW_FIRST);
    wire last_row  = (rp == ROW_LAST);
    wire first_col = (cp == COL_FIRST);
    wire row_start = first_col && (ch == {CHW{1'b0}});
    wire row_end   = last_col && last_ch;
    wire a_ends    = (ea == rp);                             // output row a ends at this row
    wire b_starts  = (sb == rp + 1'b1) && (sb < SB_END);     // output row b + 1 starts at the next
    wire ja_ends   = (eja == cp);
    wire jb_starts = (sjb == cp + 1'b1) && (sjb < SJB_END);
    wire [RW-1:0] nopen = first_row ? NR0 : (b_new ? ONE_R : {RW{1'b0}});  // rows this row opens
    wire          take  = s_axis_tvalid && s_axis_tready;
    wire          free;      // the emitter released a slot
    // ready while the rows in flight plus those this input row opens fit the NS slots
    // (inflight + nopen <= NS), compared with constants only (inflight <= NS always holds): no
    // adder on the path to the producer's handshake
    assign s_axis_tready = !row_start || (first_row ? (NS >= NR0_I && inflight <= NS_LESS_NR0)
                                                    : (!b_new || inflight != NS_C));

    always @(posedge clk) begin
        if (take) begin
            ch <= last_ch ? {CHW{1'b0}} : ch + 1'b1;
            if (last_ch) begin
                if (last_col) begin
                    cp      <= COL_FIRST;
                    eja     <= KW_END;
                    sjb     <= SJB0;
                    ncols   <= NC0;
                    jb_mod  <= JM0;
                    jb_base <= JBASE0;
                    jb_new  <= 1'b0;
                    if (last_row) begin
                        rp     <= ROW_FIRST;
                        ea     <= KH_END;
                        sb     <= SB0;
                        nrows  <= NR0;
                        b_new  <= 1'b0;
                        slot_a <= (slot_a + nrows >= NS_C) ? slot_a + nrows - NS_C : slot_a + nrows;
                    end else begin
                        rp    <= rp + 1'b1;
                        if (a_ends) ea <= ea + SH_C;
                        if (b_starts) sb <= sb + SH_C;
                        b_new <= b_starts;
                        nrows <= nrows + (b_starts ? ONE_R : {RW{1'b0}}) - (a_ends ? ONE_R : {RW{1'b0}});
                        if (a_ends) slot_a <= (slot_a + ONE_R == NS_C) ? {RW{1'b0}} : slot_a + ONE_R;
                    end
                end else begin
                    cp <= cp + 1'b1;
                    if (ja_ends) eja <= eja + SW_C;
                    if (jb_starts) begin
                        sjb <= sjb + SW_C;
                        if (jb_mod + ONE_B == NJ_C) begin
                            jb_mod  <= {BW{1'b0}};
                            jb_base <= jb_base + C_MA;
                        end else begin
                            jb_mod <= jb_mod + ONE_B;
                        end
                    end
                    jb_new <= jb_starts;
                    ncols  <= ncols + (jb_starts ? ONE_B : {BW{1'b0}}) - (ja_ends ? ONE_B : {BW{1'b0}});
                end
            end
        end
        inflight <= inflight + ((take && row_start) ? nopen : {RW{1'b0}}) - (free ? ONE_R : {RW{1'b0}});
        if (rst) begin
            ch       <= {CHW{1'b0}};
            cp       <= COL_FIRST;
            rp       <= ROW_FIRST;
            ea       <= KH_END;
            sb       <= SB0;
            nrows    <= NR0;
            slot_a   <= {RW{1'b0}};
            b_new    <= 1'b0;
            eja      <= KW_END;
            sjb      <= SJB0;
            ncols    <= NC0;
            jb_mod   <= JM0;
            jb_base  <= JBASE0;
            jb_new   <= 1'b0;
            inflight <= {RW{1'b0}};
        end
    end

    // ---- stage 1: the beat, each lane extended to DW bits -------------------------------------
    reg  [EW*IN_WIDTH-1:0] x1;
    always @(posedge clk) if (take) x1 <= s_axis_tdata;
    wire [EW-1:0]          x1_sign;   // per lane
    wire [LW-1:0]          x1e;       // lane e at [e*DW +: DW]
    genvar ge;
    generate
        for (ge = 0; ge < EW; ge = ge + 1) begin : g_lane_in
            wire [IN_WIDTH-1:0] xl = x1[ge*IN_WIDTH +: IN_WIDTH];
            assign x1_sign[ge] = (IN_SIGNED != 0) && xl[IN_WIDTH-1];
            if (DW > IN_WIDTH) begin : g_ext
                assign x1e[ge*DW +: DW] = {{(DW-IN_WIDTH){x1_sign[ge]}}, xl};
            end else begin : g_noext
                assign x1e[ge*DW +: DW] = xl;
            end
        end
    endgenerate

    // ---- the emitter's state (read side of the slots) ---------------------------------------
    reg  [NS-1:0]  e_onehot; // slot being emitted (one-hot)
    reg  [SELW-1:0] e_mbase; // its first memory, slot * NJ
    reg  [SELW-1:0] e_msel;  // the memory of output column e_j, slot * NJ + e_jm
    reg  [BW-1:0]  e_jm;     // bank of output column e_j
    reg  [MA-1:0]  e_base;   // word base of output column e_j
    reg  [CHW-1:0] e_ch;
    reg  [OJW-1:0] e_j;
    reg  [OIW-1:0] e_row;
    reg  [POS_WIDTH-1:0] e_pos;
    reg  [NS-1:0]  done;     // slot holds a complete output row
    reg            r_valid;  // a read result waits in the memories' output registers
    wire           e_issue;
    wire [MA-1:0]  e_addr = e_base + {{(MA-CHW){1'b0}}, e_ch};

    // ---- the slots: NS x NJ memories, read-modify-write from the input side ------------------
    wire [NM*LW-1:0] qall;   // output registers of every memory, memory s*NJ + b at (s*NJ + b)*LW
    reg  [NS-1:0]    fin1;   // stage 1: this write completes the slot's output row

    // per slot: its place k = (s - slot_a) mod NS among the open rows
    wire [NS-1:0] row_act;    // the slot's output row covers this input row
    wire [NS-1:0] row_init;   // ... and starts at it
    wire [NS-1:0] row_fin;    // ... and ends at it
    genvar gs, gb;
    generate
        for (gs = 0; gs < NS; gs = gs + 1) begin : g_row
            localparam integer  S_I = gs;
            localparam [RW-1:0] S_C = S_I[RW-1:0];
            wire [RW-1:0] kd = S_C + NS_C - slot_a;
            wire [RW-1:0] k  = (kd >= NS_C) ? kd - NS_C : kd;
            assign row_act[gs]  = (k < nrows);
            assign row_init[gs] = first_row || (b_new && (k + ONE_R == nrows));
            assign row_fin[gs]  = last_row || ((k == {RW{1'b0}}) && a_ends);
        end
    endgenerate

    // per bank: the column jb - l it holds, l = (jb_mod - b) mod NJ, and the word written
    wire [NJ-1:0]    col_act;   // an open output column lives in this bank
    wire [NJ-1:0]    col_init;  // ... and starts at this column
    wire [NJ*MA-1:0] waddr;     // its word for this beat's channels
    wire [NJ-1:0]    e_bank;    // the emitter reads this bank
    generate
        for (gb = 0; gb < NJ; gb = gb + 1) begin : g_col
            localparam integer  B_I = gb;
            localparam [BW-1:0] B_C = B_I[BW-1:0];
            wire [BW-1:0] ld = jb_mod + NJ_C - B_C;
            wire [BW-1:0] l  = (ld >= NJ_C) ? ld - NJ_C : ld;
            wire [MA-1:0] wbase;   // word base of column jb - l: jb's, or the one before in this bank
            if (gb == 0) begin : g_b0
                assign wbase = jb_base;
            end else begin : g_bn
                assign wbase = (jb_mod < B_C) ? jb_base - C_MA : jb_base;
            end
            assign col_act[gb]  = (l < ncols);
            assign col_init[gb] = first_col || (jb_new && (l == {BW{1'b0}}));
            assign waddr[gb*MA +: MA] = wbase + {{(MA-CHW){1'b0}}, ch};
            assign e_bank[gb] = (e_jm == B_C);
        end
    endgenerate

    // stage 1 of the read-modify-write: what was read where, and whether it starts a window
    reg [NS-1:0]    row_init1;
    reg [NJ-1:0]    col_init1;
    reg [NJ*MA-1:0] addr1;
    always @(posedge clk) begin
        if (take) begin
            row_init1 <= row_init;
            col_init1 <= col_init;
            addr1     <= waddr;
        end
        fin1 <= (take && row_end) ? (row_act & row_fin) : {NS{1'b0}};
        if (rst) fin1 <= {NS{1'b0}};
    end

    // the NS x NJ memories
    generate
        for (gs = 0; gs < NS; gs = gs + 1) begin : g_slot
            for (gb = 0; gb < NJ; gb = gb + 1) begin : g_bank
                localparam integer M = gs * NJ + gb;
                wire fill = take && row_act[gs] && col_act[gb];
                wire emit = e_issue && e_onehot[gs] && e_bank[gb];
                reg  [LW-1:0] mem [0:DEPTH-1];
                reg  [LW-1:0] q;
                reg           we1, hit1;
                reg  [LW-1:0] fwd1;
                wire [LW-1:0] old = hit1 ? fwd1 : q;   // the word as of the previous beat's write
                wire [LW-1:0] wdata;
                wire          init = row_init1[gs] && col_init1[gb];
                for (ge = 0; ge < EW; ge = ge + 1) begin : g_lane
                    wire [DW-1:0] xe = x1e[ge*DW +: DW];
                    wire [DW-1:0] oe = old[ge*DW +: DW];
                    reg  [DW-1:0] wl;   // the lane's new partial result
                    always @* begin
                        if (init) begin
                            wl = xe;
                        end else if (OP == 0) begin
                            // maximum: compare as signed (IN_SIGNED) or unsigned values
                            if ($signed({x1_sign[ge], xe}) > $signed({(IN_SIGNED != 0) && oe[DW-1], oe})) wl = xe;
                            else wl = oe;
                        end else begin
                            wl = oe + xe;
                        end
                    end
                    assign wdata[ge*DW +: DW] = wl;
                end
                always @(posedge clk) begin
                    if (we1) mem[addr1[gb*MA +: MA]] <= wdata;
                    if (fill || emit) q <= mem[fill ? waddr[gb*MA +: MA] : e_addr];
                end
                always @(posedge clk) begin
                    hit1 <= fill && we1 && (addr1[gb*MA +: MA] == waddr[gb*MA +: MA]);
                    fwd1 <= wdata;
                    we1  <= fill;
                    if (rst) we1 <= 1'b0;
                end
                assign qall[M*LW +: LW] = q;
            end
        end
    endgenerate

    // ---- the emitter: complete slots out in (ow, cb) order -----------------------------------
    localparam integer NJ_I = NJ;
    localparam integer NM_I = NM;
    localparam [SELW:0] NJ_S = NJ_I[SELW:0];
    localparam [SELW:0] NM_S = NM_I[SELW:0];
    reg [SELW-1:0] r_sel;    // memory holding the result
    reg [NS-1:0]   r_onehot; // its slot
    reg            r_free;   // the result is the last of its slot
    reg            r_last;
    reg [POS_WIDTH-1:0] r_pos;
    wire           e_end = (e_j == OJ_LAST) && (e_ch == CH_LAST);
    wire [SELW:0]  e_next = {1'b0, e_mbase} + NJ_S;   // first memory of the next slot
    wire [NS-1:0]  e_rot;                              // the next slot, one-hot
    generate
        if (NS > 1) begin : g_rot
            assign e_rot = {e_onehot[NS-2:0], e_onehot[NS-1]};
        end else begin : g_rot1
            assign e_rot = e_onehot;
        end
    endgenerate
    assign e_issue = |(done & e_onehot) && (!r_valid || m_axis_tready);
    assign free = r_valid && m_axis_tready && r_free;

    always @(posedge clk) begin
        if (e_issue) begin
            r_sel    <= e_msel;
            r_onehot <= e_onehot;
            r_free   <= e_end;
            r_last   <= e_end && (e_row == OI_LAST);
            r_pos    <= e_pos;
            if (e_ch == CH_LAST) begin
                e_ch <= {CHW{1'b0}};
                if (e_j == OJ_LAST) begin
                    e_j      <= {OJW{1'b0}};
                    e_jm     <= {BW{1'b0}};
                    e_base   <= {MA{1'b0}};
                    e_onehot <= e_rot;
                    e_mbase  <= (e_next == NM_S) ? {SELW{1'b0}} : e_next[SELW-1:0];
                    e_msel   <= (e_next == NM_S) ? {SELW{1'b0}} : e_next[SELW-1:0];
                    e_row    <= (e_row == OI_LAST) ? {OIW{1'b0}} : e_row + 1'b1;
                end else begin
                    e_j <= e_j + 1'b1;
                    if (e_jm + ONE_B == NJ_C) begin
                        e_jm   <= {BW{1'b0}};
                        e_base <= e_base + C_MA;
                        e_msel <= e_mbase;
                    end else begin
                        e_jm   <= e_jm + ONE_B;
                        e_msel <= e_msel + 1'b1;
                    end
                end
                e_pos <= (e_pos == POS_LAST) ? {POS_WIDTH{1'b0}} : e_pos + 1'b1;
            end else begin
                e_ch <= e_ch + 1'b1;
            end
        end
        if (e_issue) r_valid <= 1'b1;
        else if (m_axis_tready) r_valid <= 1'b0;
        if (rst) begin
            e_onehot <= {{(NS-1){1'b0}}, 1'b1};
            e_mbase  <= {SELW{1'b0}};
            e_msel   <= {SELW{1'b0}};
            e_jm     <= {BW{1'b0}};
            e_base   <= {MA{1'b0}};
            e_ch     <= {CHW{1'b0}};
            e_j      <= {OJW{1'b0}};
            e_row    <= {OIW{1'b0}};
            e_pos    <= {POS_WIDTH{1'b0}};
            r_valid  <= 1'b0;
        end
    end

    always @(posedge clk) begin
        if (rst) done <= {NS{1'b0}};
        else done <= (done | fin1) & ~(free ? r_onehot : {NS{1'b0}});
    end

    assign m_axis_tdata  = qall[r_sel * LW +: LW];
    assign m_axis_tvalid = r_valid;
    assign m_axis_tlast  = r_last;
    assign m_pos         = r_pos;

    /* verilator lint_off UNUSEDSIGNAL */
    wire unused = s_axis_tlast;  // frames are counted, not taken from tlast
    /* verilator lint_on UNUSEDSIGNAL */
endmodule

`default_nettype wire
