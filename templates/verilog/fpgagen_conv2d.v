// fpgagen_conv2d: 2-D convolution over a channel-interleaved pixel stream, also grouped and
// depthwise (GROUPS > 1), y = requant(conv(x, W) + B), PE output channels x SIMD input channels
// x KU kernel taps per cycle.
//
// Streams: the input map (CI, H, W) arrives in HWC order (all CI channels of pixel (0, 0), then
// pixel (0, 1), ... row by row), one element per beat; the output map (CO, OH, OW) leaves in
// HWC order, one element per beat, tlast on the last output of each frame (input tlast is
// ignored: frames are counted). OH = (H + PAD_T + PAD_B - KH) / SH + 1, OW likewise.
//
// Line buffer: a circular RAM of ROWS input rows (words of SIMD channels, HWC order; PG lanes of
// them, see Groups), written
// as the pixels arrive and read by the compute side; zero padding is generated on the read
// side (taps outside the map multiply 0). It is KU banks (KU = 1: one), each a RAM with one
// write and one read port: input column x lives in bank x mod KU, at slot x / KU of its row
// (a bank row is WB = ceil(W/KU) slots of CI/SIMD words, word k of slot j at j*CI/SIMD + k),
// so the KU consecutive columns of KU taps of one kernel row lie in KU different banks and are
// read in one cycle; the words read are rotated by the first tap's column mod KU into tap
// order. A pixel may be overwritten as soon as no remaining
// window of the frame needs it, so the next input rows (and the first rows of the next frame)
// fill while the current windows are computed. ROWS (a localparam) is the fewest rows for which
// the inputs of the next window are already there when the current window ends, also at a row
// and at a frame change: between KH and about 2*KH + SH - 1, at most 2*H (a map barely larger
// than the kernel is double-buffered), so the writer runs up to two frames ahead.
//
// Groups: the CI input and CO output channels form GROUPS groups of CIG = CI/GROUPS and
// COG = CO/GROUPS consecutive channels; output channel co reads only the input channels of its
// group, gi = co / COG (depthwise: GROUPS = CI, CIG = 1). GROUPS = 1 is the plain conv. SIMD
// divides CIG. PE divides COG (the PE channels of one pass lie in one group), or PE is a multiple
// PG*COG of it with PG dividing GROUPS: one pass then computes PG whole groups, each reading its
// own input channels. For that the line buffer has PG lanes (PG = 1: one), each a RAM of SIMD
// channels per word: group gi's words go to lane gi mod PG, at word (gi/PG)*NKG + k of the
// pixel (NKG = CIG/SIMD, NKL = CI/(PG*SIMD) words per pixel in a lane), and all lanes are read at
// one address, so a cycle reads the SIMD channels of PG groups (a depthwise conv: PE channels).
// Wide input: a beat of EW_IN elements fills part of one word (EW_IN divides SIMD) or, with one
// word per group (CIG = SIMD, a depthwise conv), EWL = EW_IN/SIMD whole words of consecutive
// groups (EWL divides PG), written to EWL lanes at one address in one cycle.
//
// Compute: for each output pixel, for each set g of PE output channels, the KH*KW/KU tap groups
// (KU consecutive taps kx = u*KU .. u*KU+KU-1 of one kernel row; KU divides KW) of CIG/SIMD
// words each (the words of the set's group) are walked one per cycle:
// CO/PE * KH*(KW/KU)*CIG/SIMD cycles per output pixel, OH*OW times that per frame
// (= MACs/(PE*SIMD*KU));
// input (H*W*CI beats) and output (OH*OW*CO beats) overlap it, so a frame takes about
// max(compute, input, output) cycles with frames back to back.
// fpgagen_mac_out (shared with fpgagen_dense) accumulates each output channel on top of its bias
// B (already at the accumulator frac), exactly (as SIMD*KU products per output per cycle:
// element j*SIMD + s is channel s of tap j; output g*PE + p reads lane p / COG when PG > 1), requantizes it with fpgagen_requant (round half
// away from zero by SHIFT, clamp to [LO, HI]) and sends the PE results of a channel group one
// per beat through a 2-deep fpgagen_fifo.
//
// ROM layouts ($readmemh, hex, one word per line):
//   WEIGHT_FILE: CO/PE * KH*(KW/KU) * CIG/SIMD words of PE*KU*SIMD*W_WIDTH bits (CIG = CI/GROUPS);
//                line ((g*KH + ky)*(KW/KU) + u)*(CIG/SIMD) + k holds the weights W[co][c][ky][kx]
//                (the IR's [CO, CIG, KH, KW] weights) of output channels co = g*PE + p, taps
//                kx = u*KU + j, for the channels c = k*SIMD + s of their group (input channel
//                gi*CIG + c, gi = co / (CO/GROUPS)), element (p, j, s) in bits
//                [((p*KU + j)*SIMD + s)*W_WIDTH +: W_WIDTH] (two's complement). With GROUPS = 1
//                this is input channel ci = c; with KU = 1, line ((g*KH + ky)*KW + kx)*(CIG/SIMD) + k,
//                element (p, s) in bits [(p*SIMD + s)*W_WIDTH +: W_WIDTH].
//   BIAS_FILE:   CO/PE words of PE*BIAS_WIDTH bits; line g holds the biases of output channels
//                g*PE + p in bits [p*BIAS_WIDTH +: BIAS_WIDTH] (two's complement).
`default_nettype none

module fpgagen_conv2d #(
    parameter integer IN_WIDTH    = 8,     // bits of input elements
    parameter integer IN_SIGNED   = 1,     // 1: inputs are two's complement, 0: unsigned
    parameter integer W_WIDTH     = 8,     // bits of the (signed) weights
    parameter integer BIAS_WIDTH  = 16,    // bits of the (signed) biases in BIAS_FILE
    parameter integer OUT_WIDTH   = 8,     // bits of output elements
    parameter integer CI          = 3,     // input channels
    parameter integer CO          = 4,     // output channels
    parameter integer H           = 8,     // input rows
    parameter integer W           = 8,     // input columns
    parameter integer KH          = 3,     // kernel rows
    parameter integer KW          = 3,     // kernel columns
    parameter integer SH          = 1,     // vertical stride
    parameter integer SW          = 1,     // horizontal stride
    parameter integer PAD_T       = 1,     // zero rows above the map
    parameter integer PAD_L       = 1,     // zero columns left of the map
    parameter integer PAD_B       = 1,     // zero rows below the map
    parameter integer PAD_R       = 1,     // zero columns right of the map
    parameter integer GROUPS      = 1,     // channel groups (divides CI and CO; CI: depthwise)
    parameter integer PE          = 1,     // output channels computed in parallel (divides CO/GROUPS)
    parameter integer SIMD        = 1,     // input channels of one tap in parallel (divides CI/GROUPS)
    parameter integer KU          = 1,     // kernel taps of one row in parallel (divides KW)
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
    parameter [CO*ALIGN_BITS-1:0] ALIGN = {CO*ALIGN_BITS{1'b0}},  // channel c's left shift SHIFT - s_c at [c*ALIGN_BITS +: ALIGN_BITS]
    parameter integer DSP_PAIR    = 0,     // 1: two products per fpgagen_mul8x8x2, 2: two sharing the input (fpgagen_mac_out)
    parameter integer EW_IN       = 1,     // input elements per beat (divides SIMD; or SIMD x a divisor of the lanes, see below)
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
    // ---- sizes -------------------------------------------------------------------------------
    localparam integer CIG  = CI / GROUPS;                       // input channels per group
    localparam integer COG  = CO / GROUPS;                       // output channels per group
    localparam integer NK   = CI / SIMD;                         // words per pixel
    localparam integer NKG  = CIG / SIMD;                        // words per pixel of one group (per tap)
    localparam integer NG   = CO / PE;                           // sets of PE output channels
    // PE lanes spanning groups (PE > COG): the PE/COG whole groups of one pass, each its own input lane
    localparam integer PG   = (PE > COG) ? PE / COG : 1;         // groups of one pass (lanes of the line buffer)
    localparam integer NKL  = NK / PG;                           // words per pixel in one lane
    localparam integer NGG  = (PE > COG) ? 1 : COG / PE;         // sets of PE output channels per group
    localparam integer OH   = (H + PAD_T + PAD_B - KH) / SH + 1; // output rows
    localparam integer OW   = (W + PAD_L + PAD_R - KW) / SW + 1; // output columns
    localparam integer HW   = H * W;                             // pixels per frame
    localparam integer KWU  = KW / KU;                           // tap groups per kernel row
    localparam integer WB   = (W + KU - 1) / KU;                 // slots per bank row

    // The fewest rows for which the next window's inputs can be in the buffer while the
    // current window is computed: within a row, at a row change and at a frame change.
    function integer line_rows(input integer unused);
        integer iy_last, c0_last, fn_last, m0_row, m0_col, m0, need, need_row, need_frame, rows;
        begin
            iy_last = (OH - 1) * SH - PAD_T;                  // first window row of the last output row
            c0_last = (OW - 1) * SW - PAD_L;                  // first window column of the last output column
            if (c0_last < 0) c0_last = 0;
            if (c0_last > W - 1) c0_last = W - 1;
            fn_last = (iy_last < 0) ? 0 : (iy_last >= H) ? HW : iy_last * W + c0_last;
            m0_row = (KH - 1 - PAD_T < H - 1) ? KH - 1 - PAD_T : H - 1;  // last input of the first window
            m0_col = (KW - 1 - PAD_L < W - 1) ? KW - 1 - PAD_L : W - 1;
            m0 = (m0_row < 0 || m0_col < 0) ? 0 : m0_row * W + m0_col;
            need = (KH - 1) * W + SW + KW;                    // next window in the same row
            need_row = (SH + KH - 1) * W + m0_col + 1 - c0_last;  // first window of the next row
            need_frame = HW - fn_last + m0 + 1;              // first window of the next frame
            if (need_row > need) need = need_row;
            if (need_frame > need) need = need_frame;
            rows = (need + W - 1) / W;
            if (rows < KH) rows = KH;
            if (rows > 2 * H) rows = 2 * H;
            line_rows = (rows < 1) ? 1 : rows + 0 * unused;
        end
    endfunction

    localparam integer ROWS = line_rows(0);                      // rows in the line buffer
    localparam integer ROWW = WB * NKL;                          // line buffer words per row (of a bank and lane)
    localparam integer DEPTH = ROWS * ROWW;                      // line buffer words (of a bank and lane)
    localparam integer NW   = NG * KH * KWU * NKG;               // weight ROM words
    localparam integer NOUT = OH * OW * CO;                      // output elements per frame

    // counter widths
    localparam integer KB   = (NK > 1) ? $clog2(NK) : 1;         // word in a pixel
    localparam integer SB   = (SIMD > 1) ? $clog2(SIMD) : 1;     // element in a word
    localparam integer KXB  = (KWU > 1) ? $clog2(KWU) : 1;       // tap group in a kernel row
    localparam integer RB   = (KU > 1) ? $clog2(KU) : 1;         // column mod KU (a bank)
    localparam integer LB   = (PG > 1) ? $clog2(PG) : 1;         // lane of the line buffer
    localparam integer KYB  = (KH > 1) ? $clog2(KH) : 1;         // kernel row
    localparam integer GW   = (NG > 1) ? $clog2(NG) : 1;         // set of PE output channels
    localparam integer GPW  = (NGG > 1) ? $clog2(NGG) : 1;       // set within its group
    localparam integer OXW  = (OW > 1) ? $clog2(OW) : 1;         // output column
    localparam integer OYW  = (OH > 1) ? $clog2(OH) : 1;         // output row
    localparam integer WA   = (NW > 1) ? $clog2(NW) : 1;         // weight ROM address
    localparam integer DA   = (DEPTH > 1) ? $clog2(DEPTH) : 1;   // line buffer address
    // signed positions: pixel indices (up to 2*H*W), rows/columns with padding, word offsets
    localparam integer SPAN = (H + PAD_T + PAD_B + KH + SH + 1) * (W + PAD_L + PAD_R + KW + SW + 1) * (NK + 1);
    localparam integer PS   = $clog2(2 * SPAN + 4 * H * W + 2 * DEPTH + 2) + 2;
    localparam integer XW   = SIMD * IN_WIDTH;                   // line buffer word (of a lane)
    localparam integer XB   = PG * XW;                           // the PG lanes' words of a bank
    localparam integer XU   = KU * XB;                           // the KU taps of a cycle (all lanes)
    localparam integer WWD  = PE * SIMD * KU * W_WIDTH;          // weight ROM word

    // counter limits
    // EW_IN > SIMD (PG lanes of one word per group, CIG = SIMD): a beat is EWL whole words of
    // consecutive groups, written to EWL lanes at once (EWL divides PG)
    localparam integer EWL  = (EW_IN > SIMD) ? EW_IN / SIMD : 1;  // line buffer words per beat
    localparam integer NK_LAST_I = NK / EWL - 1;                 // the writer's last beat of words in a pixel
    localparam integer NKG_LAST_I = NKG - 1;
    localparam integer NGG_LAST_I = NGG - 1;
    localparam integer SIMD_LAST_I = (EW_IN >= SIMD) ? 0 : SIMD / EW_IN - 1;  // the last beat of a word
    localparam integer KW_LAST_I = KWU - 1;
    localparam integer KH_LAST_I = KH - 1;
    localparam integer NG_LAST_I = NG - 1;
    localparam integer OW_LAST_I = OW - 1;
    localparam integer OH_LAST_I = OH - 1;
    localparam integer NW_LAST_I = NW - 1;
    localparam [KB-1:0]  K_LAST  = NK_LAST_I[KB-1:0];     // writer: last word of a pixel
    localparam [KB-1:0]  KG_LAST = NKG_LAST_I[KB-1:0];    // compute: last word of a tap
    localparam [GPW-1:0] GP_LAST = NGG_LAST_I[GPW-1:0];
    localparam [SB-1:0]  S_LAST  = SIMD_LAST_I[SB-1:0];
    localparam [KXB-1:0] KX_LAST = KW_LAST_I[KXB-1:0];
    localparam [KYB-1:0] KY_LAST = KH_LAST_I[KYB-1:0];
    localparam [GW-1:0]  G_LAST  = NG_LAST_I[GW-1:0];
    localparam [OXW-1:0] OX_LAST = OW_LAST_I[OXW-1:0];
    localparam [OYW-1:0] OY_LAST = OH_LAST_I[OYW-1:0];
    localparam [WA-1:0]  W_LAST  = NW_LAST_I[WA-1:0];

    // line buffer address arithmetic (row starts modulo DEPTH)
    localparam integer ROWW_I = ROWW;
    localparam integer DEPTH_I = DEPTH;
    localparam integer PT_OFF_I = ((ROWS - (PAD_T % ROWS)) % ROWS) * ROWW;  // row -PAD_T from row 0
    localparam integer SH_OFF_I = (SH % ROWS) * ROWW;                       // next output row
    localparam integer H_OFF_I  = (H % ROWS) * ROWW;                        // next frame
    localparam [DA:0] DEPTH_C  = DEPTH_I[DA:0];
    localparam [DA:0] ROWW_C   = ROWW_I[DA:0];
    localparam [DA:0] PT_OFF_C = PT_OFF_I[DA:0];
    localparam [DA:0] SH_OFF_C = SH_OFF_I[DA:0];
    localparam integer HPT_OFF_I = (H_OFF_I + PT_OFF_I) % DEPTH;             // next frame's row -PAD_T
    localparam [DA:0] H_OFF_C  = H_OFF_I[DA:0];
    localparam [DA:0] HPT_OFF_C = HPT_OFF_I[DA:0];

    // signed position constants
    localparam integer NP_I = ROWS * W;
    localparam integer M_PAD_L_I = -PAD_L;
    localparam integer M_PAD_T_I = -PAD_T;
    // the first window column -PAD_L = PLQ*KU + PLR (0 <= PLR < KU): its slot and bank
    localparam integer PLQ_I = -((PAD_L + KU - 1) / KU);
    localparam integer PLR_I = -PAD_L - PLQ_I * KU;
    localparam integer SWQ_I = SW / KU;                          // a window step: SWQ slots ...
    localparam integer SWR_I = SW % KU;                          // ... and SWR banks
    localparam integer SWQ1_I = SWQ_I + 1;
    localparam integer M_PAD_LNK_I = PLQ_I * NKL;
    localparam integer M_PAD_TW_I = -PAD_T * W;
    localparam integer SWNK_I = SWQ_I * NKL;
    localparam integer SWNK1_I = SWQ1_I * NKL;
    localparam integer KU1_I = KU - 1;
    localparam integer NKL_I = NKL;
    localparam [RB-1:0] PLR_C = PLR_I[RB-1:0];
    localparam [RB-1:0] R_LAST = KU1_I[RB-1:0];
    localparam integer SHW_I = SH * W;
    localparam integer H1W_I = (H - 1) * W;
    localparam integer KH1W_I = (KH - 1) * W;
    localparam integer W1_I = W - 1;
    localparam integer KW1_I = KW - 1;
    localparam integer NKG_I = NKG;
    localparam integer KSKIP_I = NKL - NKG + 1;
    localparam integer HWNP_I = HW + NP_I;
    localparam integer MHW_I = -HW;
    localparam integer ONEMHW_I = 1 - HW;
    localparam integer MKH1_I = -(KH - 1);
    localparam integer MKW1_I = -(KW - 1);
    localparam integer LRW_I = (H - 1) * W - (KH - 1) * W;
    localparam integer LCOL_I = (W - 1) - (KW - 1);
    localparam signed [PS-1:0] C_ZERO   = 0;
    localparam signed [PS-1:0] C_ONE    = 1;
    localparam signed [PS-1:0] C_H      = H[PS-1:0];
    localparam signed [PS-1:0] C_W      = W[PS-1:0];
    localparam signed [PS-1:0] C_NP     = NP_I[PS-1:0];
    localparam signed [PS-1:0] C_SW     = SW[PS-1:0];
    localparam signed [PS-1:0] C_SH     = SH[PS-1:0];
    localparam signed [PS-1:0] C_SWNK   = SWNK_I[PS-1:0];       // SW/KU slots of words
    localparam signed [PS-1:0] C_SWNK1  = SWNK1_I[PS-1:0];      // SW/KU + 1 slots of words
    localparam signed [PS-1:0] C_SWQ    = SWQ_I[PS-1:0];
    localparam signed [PS-1:0] C_SWQ1   = SWQ1_I[PS-1:0];
    localparam signed [PS-1:0] C_PLQ    = PLQ_I[PS-1:0];        // slot of column -PAD_L
    localparam signed [PS-1:0] C_SHW    = SHW_I[PS-1:0];
    localparam signed [PS-1:0] C_PADL   = M_PAD_L_I[PS-1:0];    // -PAD_L
    localparam signed [PS-1:0] C_PADT   = M_PAD_T_I[PS-1:0];    // -PAD_T
    localparam signed [PS-1:0] C_PADLNK = M_PAD_LNK_I[PS-1:0];  // PLQ*NKL (KU = 1: -PAD_L*NKL)
    localparam signed [PS-1:0] C_PADTW  = M_PAD_TW_I[PS-1:0];   // -PAD_T*W
    localparam signed [PS-1:0] C_H1W    = H1W_I[PS-1:0];        // (H-1)*W
    localparam signed [PS-1:0] C_KH1W   = KH1W_I[PS-1:0];       // (KH-1)*W
    localparam signed [PS-1:0] C_W1     = W1_I[PS-1:0];         // W-1
    localparam signed [PS-1:0] C_KW1    = KW1_I[PS-1:0];        // KW-1
    localparam signed [PS-1:0] C_NKG    = NKG_I[PS-1:0];        // words of a group
    localparam signed [PS-1:0] C_KSKIP  = KSKIP_I[PS-1:0];      // last word of a tap -> first of the next
    localparam signed [PS-1:0] C_HWNP   = HWNP_I[PS-1:0];       // H*W + ROWS*W
    localparam signed [PS-1:0] C_MHW    = MHW_I[PS-1:0];        // -H*W
    localparam signed [PS-1:0] C_1MHW   = ONEMHW_I[PS-1:0];     // 1 - H*W
    localparam signed [PS-1:0] C_MKH1   = MKH1_I[PS-1:0];       // -(KH-1)
    localparam signed [PS-1:0] C_MKW1   = MKW1_I[PS-1:0];       // -(KW-1)
    localparam signed [PS-1:0] C_LRW    = LRW_I[PS-1:0];        // (H-1)*W - (KH-1)*W
    localparam signed [PS-1:0] C_LCOL   = LCOL_I[PS-1:0];       // (W-1) - (KW-1)

    initial begin
        if (EW_IN < 1 || (SIMD % EW_IN != 0 && (EW_IN % SIMD != 0 || NKG != 1 || PG % (EW_IN / SIMD) != 0)))
            $error("fpgagen_conv2d %m: EW_IN %0d must divide SIMD %0d or be SIMD times a divisor of the %0d lanes (with CI/GROUPS = SIMD)",
                   EW_IN, SIMD, PG);
        if (EW_OUT < 1 || PE % EW_OUT != 0) $error("fpgagen_conv2d %m: EW_OUT %0d must divide PE %0d", EW_OUT, PE);
        if (IN_WIDTH < 1 || W_WIDTH < 2 || OUT_WIDTH < 1 || BIAS_WIDTH < 2)
            $error("fpgagen_conv2d %m: IN_WIDTH %0d, W_WIDTH %0d, BIAS_WIDTH %0d, OUT_WIDTH %0d out of range",
                   IN_WIDTH, W_WIDTH, BIAS_WIDTH, OUT_WIDTH);
        if (CI < 1 || CO < 1 || H < 1 || W < 1 || KH < 1 || KW < 1 || SH < 1 || SW < 1)
            $error("fpgagen_conv2d %m: CI %0d, CO %0d, H %0d, W %0d, KH %0d, KW %0d, SH %0d, SW %0d must be >= 1",
                   CI, CO, H, W, KH, KW, SH, SW);
        if (PAD_T < 0 || PAD_L < 0 || PAD_B < 0 || PAD_R < 0)
            $error("fpgagen_conv2d %m: padding %0d %0d %0d %0d must be >= 0", PAD_T, PAD_L, PAD_B, PAD_R);
        if (H + PAD_T + PAD_B < KH || W + PAD_L + PAD_R < KW)
            $error("fpgagen_conv2d %m: the %0dx%0d kernel is larger than the padded %0dx%0d map",
                   KH, KW, H + PAD_T + PAD_B, W + PAD_L + PAD_R);
        if (GROUPS < 1 || CI % GROUPS != 0 || CO % GROUPS != 0)
            $error("fpgagen_conv2d %m: GROUPS %0d must divide CI %0d and CO %0d", GROUPS, CI, CO);
        if (PE < 1 || (COG % PE != 0 && (PE % COG != 0 || GROUPS % (PE / COG) != 0)))
            $error("fpgagen_conv2d %m: PE %0d must divide CO/GROUPS %0d or be a multiple of it by a divisor of GROUPS %0d",
                   PE, COG, GROUPS);
        if (SIMD < 1 || CIG % SIMD != 0)
            $error("fpgagen_conv2d %m: SIMD %0d must divide CI/GROUPS %0d", SIMD, CIG);
        if (KU < 1 || KW % KU != 0)
            $error("fpgagen_conv2d %m: KU %0d must divide KW %0d", KU, KW);
        if (PS > 32) $error("fpgagen_conv2d %m: the %0dx%0dx%0d map is too large for 32-bit positions", CI, H, W);
    end

    // ---- ROMs and the line buffer -------------------------------------------------------------
    // the weights go to block RAM (a synchronous read with enable), never to flip-flops or LUTs
    (* rom_style = "block" *)
    reg [WWD-1:0]           wrom [0:NW-1];
    reg [PE*BIAS_WIDTH-1:0] brom [0:NG-1];
    // the line buffer banks (g_bank[b].lbuf) are declared with their ports below
    initial begin
        $readmemh(WEIGHT_FILE, wrom);
        $readmemh(BIAS_FILE, brom);
    end

    function [DA-1:0] add_mod(input [DA-1:0] a, input [DA:0] c);  // (a + c) mod DEPTH, c < DEPTH
        reg [DA:0] s;
        /* verilator lint_off UNUSEDSIGNAL */  // r < DEPTH: its top bit is 0
        reg [DA:0] r;
        /* verilator lint_on UNUSEDSIGNAL */
        begin
            s = {1'b0, a} + c;
            r = (s >= DEPTH_C) ? s - DEPTH_C : s;
            add_mod = r[DA-1:0];
        end
    endfunction

    // ---- the window sequence (stages W0 -> W1 -> W2 -> W3), a pipeline run ahead of stage A ----
    // W0 steps through the output pixels of the frames in order; W1 holds the window after it
    // with the terms of its pixel bounds, W2 the next window with the bounds themselves, W3 the
    // current one, so stage A and the writer compare registers only. The chain shifts when
    // stage A moves to the next output pixel (and three times after reset to fill it).
    reg        [OXW-1:0] ox;        // W0: output column
    reg        [OYW-1:0] oy;        // W0: output row
    reg signed [PS-1:0]  ix0;       // W0: first input column of the window (ox*SW - PAD_L)
    reg signed [PS-1:0]  iy0;       // W0: first input row of the window (oy*SH - PAD_T)
    reg signed [PS-1:0]  iyw;       // W0: iy0 * W
    reg signed [PS-1:0]  colbase;   // W0: iq0 * NKL (iq0 = floor(ix0 / KU), the slot of column ix0)
    // (KU > 1: g_slots holds iq0 = floor(ix0 / KU) and ir0 = ix0 mod KU beside W0 .. W3)
    reg        [DA-1:0]  cbase;     // W0: line buffer address of row 0 of its frame
    reg        [DA-1:0]  prow;      // W0: address of row iy0 (modulo DEPTH)
    wire                 flast0 = (ox == OX_LAST) && (oy == OY_LAST);  // W0: its frame's last window

    reg                  w1v, w2v, w3v;  // W1, W2, W3 hold a window
    reg signed [PS-1:0]  ix0_1, iy0_1, colbase_1, c0_1, lrw_1, lcol_1, iywnp_1;
    reg        [DA-1:0]  prow_1;
    reg                  flast_1, iyneg_1, iybig_1, none_1;
    reg signed [PS-1:0]  ix0_2, iy0_2, colbase_2, fnp_2, ln_2;
    reg        [DA-1:0]  prow_2;
    reg                  flast_2;
    /* verilator lint_off UNUSEDSIGNAL */  // ix0_3: KU > 1 reads the slot of g_slots instead
    reg signed [PS-1:0]  ix0_3, iy0_3, colbase_3, fnp_3, ln_3;
    /* verilator lint_on UNUSEDSIGNAL */
    reg        [DA-1:0]  prow_3;
    reg                  flast_3;
    // the slot of the first column of W2's and W3's windows, and whether W0's step carries
    // into one more slot (g_slots; KU = 1: the column itself, no carry)
    wire signed [PS-1:0] iq0_2, iq0_3;
    wire                 wcarry;

    // ---- stage A state: the tap walk of the current window (W3) --------------------------------
    reg        [KB-1:0]  k;         // word of the tap in its group
    reg        [KXB-1:0] kx;        // tap group of the kernel row (kernel column kx*KU)
    reg        [KYB-1:0] ky;        // kernel row
    reg        [GW-1:0]  g;         // set of PE output channels
    reg        [GPW-1:0] gp;        // the set within its channel group
    reg signed [PS-1:0]  goff;      // word offset of the group's channels in a pixel (gi*NKG; PG > 1: (gi/PG)*NKG, in a lane)
    reg        [WA-1:0]  wa;        // weight ROM address
    reg signed [PS-1:0]  tcol;      // slot of the group's first tap: floor((ix0 + kx*KU) / KU) (KU = 1: its column)
    /* verilator lint_off UNUSEDSIGNAL */  // KU = 1: bank 0, unused
    wire       [RB-1:0]  tr;        // bank of the group's first tap: ix0 mod KU (g_slots; KU = 1: 0)
    /* verilator lint_on UNUSEDSIGNAL */
    reg signed [PS-1:0]  trow;      // input row of the tap (iy0 + ky)
    reg signed [PS-1:0]  coloff;    // word offset of the tap's slot in its bank row (tcol*NKL + goff + k)
    reg        [DA-1:0]  trowa;     // address of row trow (modulo DEPTH)

    // ---- input side: assemble SIMD elements, write one word per SIMD beats -------------------
    reg        [SB-1:0]  ws;        // element in the word
    reg        [KB-1:0]  wk;        // word in the pixel (EWL > 1: beat of EWL words)
    reg        [DA-1:0]  waddr;     // line buffer write address
    // the writer's next pixel in the numbering of the frame being computed (the writer runs
    // up to two frames ahead, or one behind: -H*W .. 3*H*W)
    reg signed [PS-1:0]  weff;
    reg signed [PS-1:0]  weff1;     // weff + 1
    // pixel weff overwrites pixel weff - ROWS*W, which no window may need any more: weff is
    // below first_needed + ROWS*W (fnp_3) of the current window. tready holds that comparison,
    // made a cycle ahead for the next weff and the next window's bound: every case is compared
    // on registers and the late handshake and window signals only choose among them.
    reg           tready;
    assign s_axis_tready = tready;
    wire          take     = s_axis_tvalid && tready;
    wire          wword_en = take && (ws == S_LAST);        // a line buffer word is complete
    wire          wpix     = wword_en && (wk == K_LAST);    // a pixel is complete
    wire [EWL*XW-1:0] wbeat;        // the EWL line buffer words written now, word i at [i*XW +: XW]
    generate
        if (SIMD > EW_IN) begin : g_simd
            reg [XW-EW_IN*IN_WIDTH-1:0] staging;  // the last SIMD-EW_IN elements, the oldest at the bottom
            assign wbeat = {s_axis_tdata, staging};  // element s at bits [s*IN_WIDTH +: IN_WIDTH]
            always @(posedge clk) if (take) staging <= wbeat[XW-1:EW_IN*IN_WIDTH];
        end else begin : g_scalar
            assign wbeat = s_axis_tdata;
        end
    endgenerate

    // the write address after this word: the next word (KU = 1: of the circular buffer); with
    // KU > 1 a pixel's last word moves to the next column's slot in its bank (the same slot in
    // the next bank, the next slot after bank KU-1, slot 0 of the next row after column W-1)
    wire [DA-1:0] waddr_n;
    wire [RB-1:0] wbank;            // the bank of the word written now
    generate
        if (KU > 1) begin : g_wbank
            localparam integer WXB = (W > 1) ? $clog2(W) : 1;  // (the padding may make W < KW)
            localparam integer W_LAST_COL_I = W - 1;
            localparam [WXB-1:0] WX_LAST = W_LAST_COL_I[WXB-1:0];
            localparam [DA:0] NK_C = NKL_I[DA:0];
            reg [RB-1:0]  wb;       // column mod KU
            reg [WXB-1:0] wx;       // column
            reg [DA-1:0]  wslot;    // address of the column's slot (its word 0)
            reg [DA-1:0]  wrow;     // address of the row's slot 0
            wire          row_end   = (wx == WX_LAST);
            wire          bank_last = (wb == R_LAST);
            wire [DA-1:0] next_row  = add_mod(wrow, ROWW_C);
            wire [DA-1:0] next_slot = add_mod(wslot, NK_C);   // within the row
            assign wbank = wb;
            assign waddr_n = !wpix ? waddr + 1'b1 : row_end ? next_row : bank_last ? next_slot : wslot;
            always @(posedge clk) begin
                if (wpix) begin
                    wx <= row_end ? {WXB{1'b0}} : wx + 1'b1;
                    wb <= (row_end || bank_last) ? {RB{1'b0}} : wb + 1'b1;
                    if (row_end) begin
                        wrow  <= next_row;
                        wslot <= next_row;
                    end else if (bank_last) begin
                        wslot <= next_slot;
                    end
                end
                if (rst) begin
                    wx    <= {WXB{1'b0}};
                    wb    <= {RB{1'b0}};
                    wrow  <= {DA{1'b0}};
                    wslot <= {DA{1'b0}};
                end
            end
        end else begin : g_wone
            assign wbank = 1'b0;
            assign waddr_n = add_mod(waddr, {{DA{1'b0}}, 1'b1});
        end
    endgenerate

    // PG > 1 lanes: the words of group gi go to lane gi mod PG, at word (gi/PG)*NKG + k of the
    // pixel's slot; the PG groups of a pass arrive one after the other, so each lane's words
    // follow the address sequence above, the lanes taking turns: after a group's last word the
    // address goes back to the pass's first word (wbase) for the next lane, after the last lane
    // on to the next pass (PG = 1: one lane, the sequence itself)
    wire [DA-1:0] waddr_w;          // the write address after this word
    wire [LB-1:0] wlane;            // the lane of the word written now
    generate
        if (PG > 1) begin : g_wlanes
            localparam integer PG_LAST_I = PG - EWL;             // the first lane of the pass's last beat
            localparam integer EWL_I = EWL;
            localparam [LB-1:0] EWL_C = EWL_I[LB-1:0];
            localparam [LB-1:0] L_LAST = PG_LAST_I[LB-1:0];
            reg [LB-1:0] wl;        // lane (group mod PG)
            reg [KB-1:0] wkg;       // word in the group
            reg [DA-1:0] wbase;     // the pass's first word (of every lane)
            wire         grp_end = (wkg == KG_LAST);
            wire         pass_end = grp_end && (wl == L_LAST);
            assign wlane = wl;
            assign waddr_w = (grp_end && !pass_end) ? wbase : waddr_n;
            always @(posedge clk) begin
                if (wword_en) begin
                    wkg <= grp_end ? {KB{1'b0}} : wkg + 1'b1;
                    if (grp_end) wl <= pass_end ? {LB{1'b0}} : wl + EWL_C;  // EWL lanes a beat
                    if (pass_end) wbase <= waddr_n;
                end
                if (rst) begin
                    wl    <= {LB{1'b0}};
                    wkg   <= {KB{1'b0}};
                    wbase <= {DA{1'b0}};
                end
            end
        end else begin : g_wlane1
            assign wlane = 1'b0;
            assign waddr_w = waddr_n;
        end
    endgenerate

    // ---- stage A: walk (output pixel, channel group, tap row, tap column, word) --------------
    // The window's inputs are all in the buffer (padding only: its frame has begun): the writer
    // is past the last pixel the window reads (ln_3).
    wire mac_ready;  // fpgagen_mac_out has a place for one more output group
    wire a_fire;     // stage A issues a chunk
    wire avail = w3v && (weff > ln_3);

    wire last_k  = (k == KG_LAST);
    wire last_kx = (kx == KX_LAST);
    wire last_ky = (ky == KY_LAST);
    wire end_row = last_k && last_kx;                // last word of a kernel row
    wire end_win = end_row && last_ky;               // last word of the window
    wire end_pix = end_win && (g == G_LAST);         // last word of the output pixel
    assign a_fire = avail && (mac_ready || !end_win);  // a group's last chunk needs a place
    wire c_wrap = a_fire && end_pix && flast_3;      // the last word of the frame
    wire w_shift = !w3v || (a_fire && end_pix);      // the window chain moves on

    // the window the taps restart at: the next one (W2) after the pixel's last group
    wire signed [PS-1:0] iq0_n = end_pix ? iq0_2 : iq0_3;
    wire signed [PS-1:0] iy0_n = end_pix ? iy0_2 : iy0_3;
    wire signed [PS-1:0] colbase_n = end_pix ? colbase_2 : colbase_3;
    wire        [DA-1:0] prow_n = end_pix ? prow_2 : prow_3;
    // the next window's group offset
    wire signed [PS-1:0] goff_n = !end_win ? goff : (g == G_LAST) ? C_ZERO : (gp == GP_LAST) ? goff + C_NKG : goff;
    // the taps' row lies inside the map (their columns: per bank, g_bank)
    wire row_in = (trow >= C_ZERO) && (trow < C_H);

    // the slot and bank of W0's first column beside the window chain, and the bank of the
    // current tap group (KU = 1: the column itself and bank 0)
    generate
        if (KU > 1) begin : g_slots
            localparam integer SWR_W = SWR_I;
            localparam integer KU_W = KU;
            localparam [RB:0] SWR_C = SWR_W[RB:0];
            localparam [RB:0] KU_C = KU_W[RB:0];
            reg signed [PS-1:0] q0, q1, q2, q3;   // W0 .. W3: floor(ix0 / KU)
            reg        [RB-1:0] r0, r1, r2, r3;   // W0 .. W3: ix0 mod KU
            reg        [RB-1:0] ra;               // stage A: the window's r
            wire       [RB:0]   rs = {1'b0, r0} + SWR_C;
            /* verilator lint_off UNUSEDSIGNAL */  // rs - KU < KU: its top bit is 0
            wire       [RB:0]   rw = rs - KU_C;
            /* verilator lint_on UNUSEDSIGNAL */
            assign wcarry = (rs >= KU_C);
            assign iq0_2 = q2;
            assign iq0_3 = q3;
            assign tr = ra;
            always @(posedge clk) begin
                if (w_shift) begin
                    if (ox == OX_LAST) begin
                        q0 <= C_PLQ;
                        r0 <= PLR_C;
                    end else begin
                        q0 <= q0 + (wcarry ? C_SWQ1 : C_SWQ);
                        r0 <= wcarry ? rw[RB-1:0] : rs[RB-1:0];
                    end
                    q1 <= q0;
                    q2 <= q1;
                    q3 <= q2;
                    r1 <= r0;
                    r2 <= r1;
                    r3 <= r2;
                end
                if (a_fire && end_row) ra <= end_pix ? r2 : r3;  // the bank of the next row's window
                if (rst) begin
                    q0 <= C_PLQ;
                    r0 <= PLR_C;
                    ra <= PLR_C;
                end
            end
        end else begin : g_slots1
            assign wcarry = 1'b0;
            assign iq0_2 = ix0_2;
            assign iq0_3 = ix0_3;
            assign tr = 1'b0;
        end
    endgenerate

    // W0 -> W1 -> W2 -> W3, each stage one adder or comparator deep
    always @(posedge clk) begin
        if (w_shift) begin
            // W0: the window after W1's
            if (ox == OX_LAST) begin
                ox <= {OXW{1'b0}};
                ix0 <= C_PADL;
                colbase <= C_PADLNK;
                if (oy == OY_LAST) begin
                    oy <= {OYW{1'b0}};
                    iy0 <= C_PADT;
                    iyw <= C_PADTW;
                    cbase <= add_mod(cbase, H_OFF_C);
                    prow <= add_mod(cbase, HPT_OFF_C);
                end else begin
                    oy <= oy + 1'b1;
                    iy0 <= iy0 + C_SH;
                    iyw <= iyw + C_SHW;
                    prow <= add_mod(prow, SH_OFF_C);
                end
            end else begin
                ox <= ox + 1'b1;
                ix0 <= ix0 + C_SW;
                colbase <= colbase + (wcarry ? C_SWNK1 : C_SWNK);
            end
            // W1: W0's window and the terms of its pixel bounds
            w1v <= 1'b1;
            ix0_1 <= ix0;
            iy0_1 <= iy0;
            colbase_1 <= colbase;
            prow_1 <= prow;
            flast_1 <= flast0;
            c0_1 <= (ix0 < C_ZERO) ? C_ZERO : (ix0 > C_W1) ? C_W1 : ix0;  // first column read
            iyneg_1 <= (iy0 < C_ZERO);
            iybig_1 <= (iy0 >= C_H);
            none_1 <= (iy0 < C_MKH1) || (iy0 >= C_H) || (ix0 < C_MKW1) || (ix0 >= C_W);  // padding only
            lrw_1 <= (iyw > C_LRW) ? C_H1W : iyw + C_KH1W;      // last row read, times W
            lcol_1 <= (ix0 > C_LCOL) ? C_W1 : ix0 + C_KW1;      // last column read
            iywnp_1 <= iyw + C_NP;
            // W2: W1's window and its bounds: first_needed + ROWS*W (the earliest pixel this or a
            // later window reads, plus the buffer) and the last pixel it reads (a window in the
            // padding only waits for pixel 0, so that no output leaves before its frame begins)
            w2v <= w1v;
            ix0_2 <= ix0_1;
            iy0_2 <= iy0_1;
            colbase_2 <= colbase_1;
            prow_2 <= prow_1;
            flast_2 <= flast_1;
            fnp_2 <= iyneg_1 ? C_NP : iybig_1 ? C_HWNP : iywnp_1 + c0_1;
            ln_2 <= none_1 ? C_ZERO : lrw_1 + lcol_1;
            // W3: the current window
            w3v <= w2v;
            ix0_3 <= ix0_2;
            iy0_3 <= iy0_2;
            colbase_3 <= colbase_2;
            prow_3 <= prow_2;
            flast_3 <= flast_2;
            fnp_3 <= fnp_2;
            ln_3 <= ln_2;
        end
        if (rst) begin
            ox      <= {OXW{1'b0}};
            oy      <= {OYW{1'b0}};
            ix0     <= C_PADL;
            iy0     <= C_PADT;
            iyw     <= C_PADTW;
            colbase <= C_PADLNK;
            cbase   <= {DA{1'b0}};
            prow    <= add_mod({DA{1'b0}}, PT_OFF_C);
            w1v     <= 1'b0;
            w2v     <= 1'b0;
            w3v     <= 1'b0;
            // until the chain is filled: the bounds of window 0, which reads from pixel 0 on
            iyneg_1 <= 1'b1;
            none_1  <= 1'b1;
            fnp_2   <= C_NP;
            fnp_3   <= C_NP;
            ln_2    <= C_ZERO;
            ln_3    <= C_ZERO;
        end
    end

    always @(posedge clk) begin
        if (a_fire) begin
            k <= last_k ? {KB{1'b0}} : k + 1'b1;
            wa <= (wa == W_LAST) ? {WA{1'b0}} : wa + 1'b1;
            if (end_row) begin
                kx <= {KXB{1'b0}};
                tcol <= iq0_n;
                coloff <= colbase_n + goff_n;
                ky <= last_ky ? {KYB{1'b0}} : ky + 1'b1;
                trow <= last_ky ? iy0_n : trow + C_ONE;
                trowa <= last_ky ? prow_n : add_mod(trowa, ROWW_C);
            end else begin
                if (last_k) begin
                    kx <= kx + 1'b1;
                    tcol <= tcol + C_ONE;
                end
                coloff <= coloff + (last_k ? C_KSKIP : C_ONE);  // the group's words of the next column
            end
            if (end_win) begin
                g <= (g == G_LAST) ? {GW{1'b0}} : g + 1'b1;
                gp <= (g == G_LAST || gp == GP_LAST) ? {GPW{1'b0}} : gp + 1'b1;
            end
            goff <= goff_n;
        end
        if (rst) begin
            k       <= {KB{1'b0}};
            kx      <= {KXB{1'b0}};
            ky      <= {KYB{1'b0}};
            g       <= {GW{1'b0}};
            gp      <= {GPW{1'b0}};
            goff    <= C_ZERO;
            wa      <= {WA{1'b0}};
            tcol    <= C_PLQ;
            trow    <= C_PADT;
            coloff  <= C_PADLNK;
            trowa   <= add_mod({DA{1'b0}}, PT_OFF_C);
        end
    end

    // writer position, in the numbering of the frame being computed
    // (a frame wrap moves the numbering back by H*W; the next frame's first window needs pixels
    // from 0 on, so its bound is ROWS*W)
    wire signed [PS-1:0] weff_n  = c_wrap ? (wpix ? weff1 + C_MHW : weff + C_MHW) : (wpix ? weff1 : weff);
    wire signed [PS-1:0] weff1_n = c_wrap ? (wpix ? weff1 + C_1MHW : weff1 + C_MHW) : (wpix ? weff1 + C_ONE : weff1);
    wire tr_stay   = wpix ? (weff1 < fnp_3) : (weff < fnp_3);     // same window
    wire tr_next   = wpix ? (weff1 < fnp_2) : (weff < fnp_2);     // the next window
    wire tr_frame  = wpix ? (weff1 < C_HWNP) : (weff < C_HWNP);   // the next frame's first window
    always @(posedge clk) begin
        if (take) ws <= (ws == S_LAST) ? {SB{1'b0}} : ws + 1'b1;
        if (wword_en) begin
            wk <= (wk == K_LAST) ? {KB{1'b0}} : wk + 1'b1;
            waddr <= waddr_w;
        end
        weff <= weff_n;
        weff1 <= weff1_n;
        tready <= c_wrap ? tr_frame : w_shift ? tr_next : tr_stay;
        if (rst) begin
            ws     <= {SB{1'b0}};
            wk     <= {KB{1'b0}};
            waddr  <= {DA{1'b0}};
            weff   <= C_ZERO;
            weff1  <= C_ONE;
            tready <= 1'b1;
        end
    end

    // ---- stage B: ROM and line buffer outputs -------------------------------------------------
    reg                      b_v, b_first, b_last;
    reg [WWD-1:0]            b_w;
    reg [PE*BIAS_WIDTH-1:0]  b_bias;
    wire [XU-1:0]            b_xm;  // bank b's lane l word at bits [(b*PG + l)*XW +: XW], 0 for a tap outside the map

    always @(posedge clk) begin
        if (a_fire) begin
            b_w    <= wrom[wa];
            b_bias <= brom[g];
        end
    end

    // the KU banks: bank b holds the input columns x = b (mod KU); the group's taps, columns
    // tcol*KU + tr .. + KU-1, read slot tcol of banks tr .. KU-1 and slot tcol+1 of banks 0 .. tr-1
    genvar gb;
    generate
        for (gb = 0; gb < KU; gb = gb + 1) begin : g_bank
            localparam integer SM_I  = (W - 1 - gb >= 0) ? (W - 1 - gb) / KU : -1;  // its last slot in the map
            localparam integer SM1_I = SM_I - 1;
            localparam integer GB_I  = gb;
            localparam integer MONE_I = -1;
            localparam signed [PS-1:0] C_SM   = SM_I[PS-1:0];
            localparam signed [PS-1:0] C_SM1  = SM1_I[PS-1:0];
            localparam signed [PS-1:0] C_MONE = MONE_I[PS-1:0];
            localparam [RB-1:0] GB_C = GB_I[RB-1:0];
            localparam [DA-1:0] NKA_C = NKL_I[DA-1:0];  // (modulo 2**DA: only for in-map addresses)
            wire after;                            // this bank's column is in the next slot (bank < tr)
            if (gb == KU - 1) begin : g_last
                assign after = 1'b0;
            end else begin : g_before
                assign after = (tr > GB_C);
            end
            wire in_map = row_in && (after ? (tcol >= C_MONE) && (tcol <= C_SM1)
                                           : (tcol >= C_ZERO) && (tcol <= C_SM));
            /* verilator lint_off UNUSEDSIGNAL */  // a tap inside the map lies in [0, DEPTH)
            wire signed [PS-1:0] coloff_b = coloff;
            /* verilator lint_on UNUSEDSIGNAL */
            wire [DA-1:0] ra_b = trowa + coloff_b[DA-1:0] + (after ? NKA_C : {DA{1'b0}});
            wire [DA-1:0] raddr = in_map ? ra_b : {DA{1'b0}};
            reg           bin;
            always @(posedge clk) bin <= in_map;
            // PG lanes (PG = 1: one), each a RAM of its groups' words, all read at one address
            genvar gl;
            for (gl = 0; gl < PG; gl = gl + 1) begin : g_lane
                localparam integer GLB_I = gl - gl % EWL;      // the first lane of its beat
                localparam [LB-1:0] GL_C = GLB_I[LB-1:0];
                reg [XW-1:0] lbuf [0:DEPTH-1];
                reg [XW-1:0] bx;
                always @(posedge clk) begin
                    if (wword_en && wbank == GB_C && wlane == GL_C) lbuf[waddr] <= wbeat[(gl % EWL)*XW +: XW];
                end
                // KU = 1 reads on a_fire; KU > 1 reads every cycle (the word counts only with b_v,
                // and the address holds between chunks), which keeps the KU*SIMD*IN_WIDTH
                // flip-flops off a_fire, the late enable of stage A
                always @(posedge clk) begin
                    if (a_fire || KU > 1) bx <= lbuf[raddr];
                end
                assign b_xm[(gb*PG + gl)*XW +: XW] = bin ? bx : {XW{1'b0}};  // padding taps multiply 0
            end
        end
    endgenerate

    always @(posedge clk) begin
        b_v     <= a_fire;
        b_first <= (k == {KB{1'b0}}) && (kx == {KXB{1'b0}}) && (ky == {KYB{1'b0}});
        b_last  <= end_win;
        if (rst) b_v <= 1'b0;
    end

    // the taps in order: tap j is bank (tr + j) mod KU (xt: tap j, lane l at [(j*PG + l)*XW +: XW])
    wire [XU-1:0] xt;
    generate
        if (KU > 1) begin : g_rotate
            reg  [RB-1:0]   b_r;                    // stage B: tr
            /* verilator lint_off UNUSEDSIGNAL */  // its top word is never selected
            wire [2*XU-1:0] xx = {b_xm, b_xm};
            /* verilator lint_on UNUSEDSIGNAL */
            wire [XU-1:0]   rot [0:KU-1];
            genvar gr;
            for (gr = 0; gr < KU; gr = gr + 1) begin : g_r
                assign rot[gr] = xx[gr*XB +: XU];
            end
            always @(posedge clk) b_r <= tr;
            assign xt = rot[b_r];
        end else begin : g_rotate1
            assign xt = b_xm;
        end
    endgenerate

    // fpgagen_mac_out's inputs lane by lane: lane l's KU taps at [(l*KU + j)*XW +: XW] (wiring only)
    wire [XU-1:0] xin;
    genvar gxl, gxj;
    generate
        for (gxl = 0; gxl < PG; gxl = gxl + 1) begin : g_xl
            for (gxj = 0; gxj < KU; gxj = gxj + 1) begin : g_xj
                assign xin[(gxl*KU + gxj)*XW +: XW] = xt[(gxj*PG + gxl)*XW +: XW];
            end
        end
    endgenerate

    // ---- stages C, D and the output: multiply-accumulate, requantize, one result per beat ------
    fpgagen_mac_out #(
        .IN_WIDTH(IN_WIDTH),
        .IN_SIGNED(IN_SIGNED),
        .W_WIDTH(W_WIDTH),
        .BIAS_WIDTH(BIAS_WIDTH),
        .OUT_WIDTH(OUT_WIDTH),
        .PE(PE),
        .SIMD(SIMD * KU),
        .XG(PG),
        .CHUNKS(KH * KWU * NKG),
        .N_OUT(NOUT),
        .ACC_WIDTH(ACC_WIDTH),
        .SHIFT(SHIFT),
        .ROUND_EVEN(ROUND_EVEN),
        .LO(LO),
        .HI(HI),
        .LEAKY(LEAKY),
        .ALPHA(ALPHA),
        .ALPHA_FRAC(ALPHA_FRAC),
        .CHANNELS(CO),
        .ALIGN_MAX(ALIGN_MAX),
        .ALIGN_BITS(ALIGN_BITS),
        .ALIGN(ALIGN),
        .DSP_PAIR(DSP_PAIR),
        .EW_OUT(EW_OUT)
    ) u_mac (
        .clk(clk),
        .rst(rst),
        .ready(mac_ready),
        .issue(a_fire && end_win),
        .valid(b_v),
        .first(b_first),
        .last(b_last),
        .x(xin),
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
