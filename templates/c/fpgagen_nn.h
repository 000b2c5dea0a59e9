/*
 * fpgagen_nn.h - the hand-written runtime of fpgagen's microcontroller C backend (C99).
 *
 * Every generated model.h is thin glue over these kernels: one constant descriptor per layer
 * (sizes, shift, clamp bounds, pointers to the constant weights) and one call per layer.
 * The numerics are SPEC.md section 3, bit for bit with fpgagen's NumPy golden model:
 *
 *   conv / dense : acc = B + sum(w * x), then requantize(acc)
 *   avgpool / gap: acc = (window sum) * reciprocal, then requantize(acc)
 *   add          : acc = (a << align_a) + (b << align_b), then requantize(acc)
 *   maxpool      : exact; padding never wins
 *   leakyrelu    : acc = x, then requantize(acc) on LeakyRelu's two paths
 *   concat       : each input requantized by its own shift into its channels of the output
 *   resize / pad : exact (pixel replication, zeros)
 * A fused LeakyRelu (descriptor fields leaky, alpha, alpha_frac) requantizes a negative acc as
 * acc * alpha by shift + alpha_frac (fpgagen_requantize_leaky); conv/dense layers with one take
 * the wide path.
 *
 * fpgagen_requantize() is the only place rounding and saturation are written: round half
 * away from zero by `shift` bits (a left shift when shift <= 0), then clamp to [lo, hi]
 * (the output format's range, narrowed by a fused ReLU/Clip).
 * Per-channel weight formats (SPEC.md 3: output channel c has its own shift s_c): the descriptor's
 * `shift` is the largest s_c and `align[c] = shift - s_c`; channel c's accumulator is shifted left by
 * align[c] (exact) and then rounded by `shift`, which gives exactly the rounding by s_c.
 *
 * Data layout
 * - A tensor of a format of up to 8 bits holds one byte per element (int8_t for a signed
 *   format, uint8_t for an unsigned one); of 9 to 16 bits, int16_t / uint16_t (at an even
 *   byte offset). Kernels take raw byte pointers and a storage code per tensor (FPGAGEN_S8 ...).
 * - Feature maps are HWC (channel fastest, then column, then row); vectors are in index order
 *   (a Flatten of a feature map keeps HWC order: the generator permutes the next dense layer's
 *   weight columns to match).
 * - Conv weights are packed per group: first the blocks of FPGAGEN_BLOCK output channels, then
 *   the remaining out_c / groups % FPGAGEN_BLOCK channels, each [kernel_h][kernel_w][in_c / groups].
 *   A block holds per kernel row its kernel_w * in_c / groups taps (kernel column, then input
 *   channel), in groups of four taps (the last group padded): 32 bytes per group, per channel
 *   pair (2k, 2k+1) two words: taps (0, 2) and taps (1, 3), each [u(2k), w(2k+1)] per tap,
 *   where w is the int8_t weight and u = w + 128 as a uint8_t: the int16_t halves of such a word
 *   are u + 256 * w, which the DSP kernels multiply directly (see fpgagen_nn.c). Layers whose
 *   in_c / groups is not a multiple of 4 (rows too short or misaligned for groups of four, e.g.
 *   a first conv over 1 or 3 channels) take the interleaved packing instead (`packing` 0):
 *   per kernel row [kernel_w][in_c / groups][FPGAGEN_BLOCK], the block's channels together.
 *   Dense weights likewise: blocks of one row of in_n taps, then the remaining rows [in_n].
 *   A depthwise conv (groups = in_c = out_c) takes the depthwise packing (`packing` 2):
 *   [kernel_h][kernel_w][c], channel fastest like the input's pixels.
 * - Biases are int32_t (bias32) when the layer's accumulator fits 32 bits, else int64_t
 *   (bias64); exactly one of the two pointers is set.
 *
 * Two paths for conv and dense layers; the generator picks one per layer:
 * - fpgagen_conv / fpgagen_dense (the fast path): 8-bit input and output, weights stored as
 *   int8_t, sums of products formed in int32_t; the generator checks that they cannot overflow
 *   it (sum |w| * max |x| < 2**31).
 * - fpgagen_conv_wide (any other layer: 9..16-bit tensors, weights beyond int8_t such as an
 *   unsigned 8-bit weight format, or a fan-in too large for int32_t): weights unpacked
 *   [out_c][kernel_h][kernel_w][in_c / groups] as int8_t, int16_t or int32_t (w_type), one
 *   int64_t accumulator per output; a dense layer on this path is a 1x1 conv over a 1x1 map.
 * Bias addition and requantization are in int64_t; the generator checks
 * |acc| * 2**max(0, -shift) < 2**61. On 64-bit hosts two output pixels
 * with the same window clipping share each 64-bit multiply (see fpgagen_nn.c; define
 * FPGAGEN_PAIRS=0 to turn this off); 32-bit MCUs compute one pixel at a time, except on the
 * Cortex-M DSP path, where two such pixels of a conv with one group, in_c a multiple of 4 and
 * at most 256 taps per window share each weight word (inputs widened once per window into a
 * 1 KB stack buffer of int16_t lanes).
 *
 * The Cortex-M DSP extension (ACLE intrinsics, under __ARM_FEATURE_DSP; define FPGAGEN_NO_DSP
 * for the portable C on such a core) speeds up: convs and dense layers (SMLAD on the packed
 * weight words; two pixels per weight word as above), single output channels and depthwise
 * convs (four taps / four channels per word), 8-bit max pools (__usub8/__ssub8 + __sel, four
 * channels per word) and 8-bit average pools (UXTAB16 window sums, four channels per word).
 * On every target, an add of 8-bit tensors whose sums stay below 2**28 (after the alignment and
 * any left shift) runs in 32-bit arithmetic with the narrow requantization.
 * Both paths give the same integers (tests/test_c_kernels.py on the host, test_c_arm.py under
 * qemu with and without FPGAGEN_NO_DSP).
 *
 * Integer only: no floating point, no dynamic memory, no library calls beyond <stdint.h>.
 * Kernels never write outside their output tensor and read each input element before they
 * overwrite it where the generator lets an output share its input's memory (pools, add).
 */
#ifndef FPGAGEN_NN_H
#define FPGAGEN_NN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Output channels (dense: outputs) one pass over the input computes together. */
#define FPGAGEN_BLOCK 8

/* Features a model may use. Per-channel weight formats (descriptors with an align table): 1 compiles
 * their pre-alignment in. The generator writes 0 into the copy of this header it emits for a model
 * that does not use a feature (the kernels are then smaller); a model that uses one refuses (in its
 * model.h) a runtime built without it. */
#ifndef FPGAGEN_PER_CHANNEL
#define FPGAGEN_PER_CHANNEL 1
#endif
/* Requantizers that round half to even (descriptors with round_even: imported QDQ/QONNX models):
 * 1 compiles the nearest-even terms in; 0 likewise written by the generator for a model without. */
#ifndef FPGAGEN_ROUND_EVEN
#define FPGAGEN_ROUND_EVEN 1
#endif
/* A layer's align table, where the runtime has per-channel formats: NULL is per-tensor. */
#define FPGAGEN_HAS_ALIGN(table) (FPGAGEN_PER_CHANNEL && (table) != 0)

/* Storage codes: bit 0 set for a signed format, bits 1-2 the element size (1, 2 or 4 bytes). */
#define FPGAGEN_U8 0
#define FPGAGEN_S8 1
#define FPGAGEN_U16 2
#define FPGAGEN_S16 3
#define FPGAGEN_S32 5

/* A 2-D convolution, grouped or depthwise, with zero padding. */
typedef struct {
    int32_t in_h, in_w, in_c;       /* input feature map (HWC) */
    int32_t out_h, out_w, out_c;    /* output feature map (HWC) */
    int32_t kernel_h, kernel_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;      /* bottom/right padding follows from the sizes */
    int32_t groups;                 /* in_c and out_c are multiples of it */
    int32_t in_type, out_type;      /* storage codes; the fast path: FPGAGEN_S8 or FPGAGEN_U8 */
    int32_t w_type;                 /* FPGAGEN_S8: weight, S16: weight16, S32: weight32 */
    const int8_t *weight;           /* packed, see the layout above (wide path: unpacked) */
    const int16_t *weight16;        /* wide path only, else NULL */
    const int32_t *weight32;        /* wide path only, else NULL */
    const int32_t *bias32;          /* [out_c], or NULL */
    const int64_t *bias64;          /* [out_c], or NULL */
    int32_t shift, lo, hi;          /* requantization */
    const int8_t *align;            /* [out_c] per-channel weight formats: output channel c's accumulator is
                                     * shifted left by align[c] before the requantization by shift; NULL: none */
    int32_t narrow;                 /* 1: requantize in 32 bits (fast path, |acc| * 2**max(0, -shift) < 2**29) */
    int32_t fold;                   /* fast path: taps (a multiple of 4) over which |sum x * w| < 2**23 */
    int32_t packing;                /* fast path: 1 groups of four taps, 0 interleaved, 2 depthwise (see above) */
    int32_t leaky, alpha, alpha_frac; /* wide path: a fused LeakyRelu (see fpgagen_requantize_leaky); 0: none */
    int32_t round_even;             /* 1: round half to even (an imported model's quantizer), 0: half away from zero */
} fpgagen_conv_t;

/* A fully-connected layer: in_n inputs, out_n outputs. */
typedef struct {
    int32_t in_n, out_n;
    int32_t in_type, out_type;      /* FPGAGEN_S8 or FPGAGEN_U8 */
    const int8_t *weight;           /* packed, see the layout above */
    const int32_t *bias32;
    const int64_t *bias64;
    int32_t shift, lo, hi;
    const int8_t *align;            /* [out_n] as in fpgagen_conv_t, or NULL */
    int32_t narrow, fold, packing;  /* as in fpgagen_conv_t */
    int32_t round_even;             /* 1: round half to even (an imported model's quantizer), 0: half away from zero */
} fpgagen_dense_t;

/* A max or average pool (a global average pool is one window over the whole map). */
typedef struct {
    int32_t in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t kernel_h, kernel_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;
    int32_t in_type, out_type;      /* storage codes (max: equal) */
    const int32_t *recip;           /* average: [1] or [out_h * out_w] reciprocals; max: NULL */
    int32_t recip_count;            /* 1 or out_h * out_w (0 for max) */
    int32_t shift, lo, hi;          /* average: requantization; max: the clamp (shift 0) */
    int32_t leaky, alpha, alpha_frac; /* average: a fused LeakyRelu; 0: none */
    int32_t round_even;             /* 1: round half to even (an imported model's quantizer), 0: half away from zero */
} fpgagen_pool_t;

/* An element-wise (residual) add of two tensors of n elements each. */
typedef struct {
    int32_t n;
    int32_t a_type, b_type, out_type;  /* storage codes */
    int32_t align_a, align_b;       /* left shifts to the common frac */
    int32_t shift, lo, hi;
    int32_t leaky, alpha, alpha_frac; /* a fused LeakyRelu; 0: none */
    int32_t round_even;             /* 1: round half to even (an imported model's quantizer), 0: half away from zero */
} fpgagen_add_t;

/* A standalone LeakyRelu (or a requantizing clamp): y[i] = requantize(x[i]) of n elements. */
typedef struct {
    int32_t n;
    int32_t in_type, out_type;
    int32_t shift, lo, hi;
    int32_t leaky, alpha, alpha_frac; /* leaky 0: a plain requantization and clamp */
    int32_t round_even;             /* 1: round half to even (an imported model's quantizer), 0: half away from zero */
} fpgagen_act_t;

/* One input of a channel concat: its in_c channels of each of the pixels go to channels
 * [offset, offset + in_c) of the out_c-channel output, requantized by its own shift. A vector
 * input held in another element order (a flattened map) is read through index (else NULL). */
typedef struct {
    int32_t pixels, in_c, out_c, offset;
    int32_t in_type, out_type;
    int32_t shift, lo, hi;
    int32_t leaky, alpha, alpha_frac;
    const int32_t *index;           /* [in_c] element of the input for output channel offset + k, or NULL */
    int32_t round_even;             /* 1: round half to even (an imported model's quantizer), 0: half away from zero */
} fpgagen_concat_t;

/* Nearest upsampling of an HWC map by integer factors: every pixel repeated fh x fw times. */
typedef struct {
    int32_t in_h, in_w, channels;
    int32_t fh, fw;
    int32_t type;                   /* storage code of input and output */
} fpgagen_resize_t;

/* Zero padding of an HWC map. */
typedef struct {
    int32_t in_h, in_w, channels;
    int32_t top, left, bottom, right;
    int32_t type;
} fpgagen_pad_t;

/* SPEC.md 3: acc * 2**-shift rounded half away from zero (shift > 0) or acc << -shift,
 * then clamped to [lo, hi]; for |acc| * 2**max(0, -shift) < 2**61. */
int32_t fpgagen_requantize(int64_t acc, int32_t shift, int32_t lo, int32_t hi);
/* The same in 32-bit arithmetic only, for |acc| * 2**max(0, -shift) < 2**29. */
int32_t fpgagen_requantize_narrow(int32_t acc, int32_t shift, int32_t lo, int32_t hi);
/* SPEC.md 3, LeakyRelu: acc >= 0 as fpgagen_requantize; acc < 0: acc * alpha requantized by
 * shift + alpha_frac; for |acc * alpha| * 2**max(0, -(shift + alpha_frac)) < 2**61. */
int32_t fpgagen_requantize_leaky(int64_t acc, int32_t shift, int32_t lo, int32_t hi, int32_t alpha,
                                 int32_t alpha_frac);
/* fpgagen_requantize and fpgagen_requantize_narrow rounding half to even when even is 1 (SPEC.md 3:
 * floor((acc + 2**(shift-1) - 1 + ((acc >> shift) & 1)) / 2**shift)), half away from zero when 0. */
int32_t fpgagen_requantize_rounded(int64_t acc, int32_t shift, int32_t lo, int32_t hi, int32_t even);
int32_t fpgagen_requantize_narrow_rounded(int32_t acc, int32_t shift, int32_t lo, int32_t hi, int32_t even);

void fpgagen_conv(const fpgagen_conv_t *layer, const uint8_t *x, uint8_t *y);
void fpgagen_conv_wide(const fpgagen_conv_t *layer, const uint8_t *x, uint8_t *y);
void fpgagen_dense(const fpgagen_dense_t *layer, const uint8_t *x, uint8_t *y);
void fpgagen_maxpool(const fpgagen_pool_t *layer, const uint8_t *x, uint8_t *y);
void fpgagen_avgpool(const fpgagen_pool_t *layer, const uint8_t *x, uint8_t *y);
void fpgagen_add(const fpgagen_add_t *layer, const uint8_t *a, const uint8_t *b, uint8_t *y);
void fpgagen_act(const fpgagen_act_t *layer, const uint8_t *x, uint8_t *y);
void fpgagen_concat(const fpgagen_concat_t *layer, const uint8_t *x, uint8_t *y);
void fpgagen_resize(const fpgagen_resize_t *layer, const uint8_t *x, uint8_t *y);
void fpgagen_pad(const fpgagen_pad_t *layer, const uint8_t *x, uint8_t *y);

#ifdef __cplusplus
}
#endif

#endif /* FPGAGEN_NN_H */
