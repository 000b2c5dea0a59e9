/*
 * fpgagen_nn.c - the kernels of fpgagen's microcontroller C runtime (C99, integer only).
 * See fpgagen_nn.h for the numerics, the data layout and the weight packing.
 */
#include "fpgagen_nn.h"

#include <string.h>

/* The Cortex-M DSP extension (ACLE intrinsics), unless FPGAGEN_NO_DSP is defined. */
#if defined(__ARM_FEATURE_DSP) && !defined(FPGAGEN_NO_DSP)
#define FPGAGEN_DSP 1
#include <arm_acle.h>
#else
#define FPGAGEN_DSP 0
#endif

/* The dot-product kernels below keep FPGAGEN_BLOCK accumulators in named locals. */
typedef char fpgagen_block_must_be_8[(FPGAGEN_BLOCK == 8) ? 1 : -1];

/* ---------------------------------------------------------------------------------------- */
/* Requantization (SPEC.md 3): the one place rounding and saturation happen.                */
/* ---------------------------------------------------------------------------------------- */

/* A layer's requantization as one branch-free formula, constants computed once per call:
 *   v = ((acc * mul + offset - ((acc < 0) & round)) >> shift) - unbias, then clamp to [lo, hi]
 * - shift in 1..62: mul 1, offset 2**62 + 2**(shift-1), round 1, unbias 2**(62-shift). As
 *   |acc| < 2**61, acc + 2**62 is positive, so the unsigned shift floors exactly:
 *   floor((acc + 2**(shift-1) - (acc < 0)) / 2**shift), SPEC.md's round half away from zero.
 * - shift <= 0: mul 2**-shift, offset = unbias = 2**62, shift 0, round 0: v = acc * 2**-shift.
 * - shift >= 63: mul 0: v = 0 (as the golden model: every accumulator is below 2**62).
 * The generator checks |acc| * 2**max(0, -shift) < 2**61 for every layer.
 *
 * - rounding half to even (a layer whose descriptor says round_even): round 0 and even 1, and the
 *   formula adds ((acc >> shift) & even) - even: floor((acc + 2**(shift-1) - 1 + bit shift of acc) /
 *   2**shift), SPEC.md 3's nearest-even mode (even is 0 where shift <= 0 or >= 63).
 * The narrow form (layers whose descriptor says `narrow`: the generator proved
 * |acc| * 2**max(0, -shift) < 2**29) is the same formula in uint32_t with 2**30 for 2**62
 * (shift >= 31 then gives 0): no 64-bit operation, for 32-bit cores. */
typedef struct {
    uint64_t mul, offset, round, even;
    int32_t shift;
    int64_t unbias;
    int64_t lo, hi;
    int32_t narrow;
    uint32_t mul32, offset32, round32, even32;
    int32_t shift32, unbias32, lo32, hi32;
} requant_t;

static requant_t requant_params(int32_t shift, int32_t lo, int32_t hi, int32_t even)
{
    requant_t r;
    const uint64_t k = (uint64_t)1 << 62;
    const uint32_t k32 = (uint32_t)1 << 30;
    r.lo = r.lo32 = lo;
    r.hi = r.hi32 = hi;
    r.narrow = 0;
    r.round = 0;
    r.round32 = 0;
    r.even = 0;
    r.even32 = 0;
    r.shift = r.shift32 = 0;
    r.offset = k;
    r.unbias = (int64_t)k;
    r.offset32 = k32;
    r.unbias32 = (int32_t)k32;
    if (shift <= 0) {
        r.mul = -shift < 62 ? (uint64_t)1 << -shift : 0;
        r.mul32 = -shift < 30 ? (uint32_t)1 << -shift : 0;
    } else {
        r.mul = shift < 63;
        r.mul32 = shift < 31;
    }
    if (shift > 0 && shift < 63) {
        r.offset = k + ((uint64_t)1 << (shift - 1));
        r.round = !even;
        r.even = even != 0;
        r.shift = shift;
        r.unbias = (int64_t)(k >> shift);
    }
    if (shift > 0 && shift < 31) {
        r.offset32 = k32 + ((uint32_t)1 << (shift - 1));
        r.round32 = !even;
        r.even32 = even != 0;
        r.shift32 = shift;
        r.unbias32 = (int32_t)(k32 >> shift);
    }
    return r;
}

/* The narrow formula before the clamp. */
static inline int32_t narrow_value(int32_t acc, uint32_t mul, uint32_t offset, uint32_t round, uint32_t even,
                                   int32_t shift, int32_t unbias)
{
    even = FPGAGEN_ROUND_EVEN ? even : 0; /* a runtime without nearest-even: the terms compile out */
    return (int32_t)(((uint32_t)acc * mul + offset - ((uint32_t)(acc < 0) & round) - even
                      + (((uint32_t)acc >> shift) & even)) >> shift) - unbias;
}

static inline int32_t requant_narrow(int32_t acc, const requant_t *r)
{
    int32_t v = narrow_value(acc, r->mul32, r->offset32, r->round32, r->even32, r->shift32, r->unbias32);
    v = v < r->lo32 ? r->lo32 : v;
    v = v > r->hi32 ? r->hi32 : v;
    return v;
}

static inline int32_t requant(int64_t acc, const requant_t *r)
{
    const uint64_t even = FPGAGEN_ROUND_EVEN ? r->even : 0;
    const uint64_t u = (uint64_t)acc * r->mul + r->offset - ((uint64_t)(acc < 0) & r->round) - even
                       + (((uint64_t)acc >> r->shift) & even);
    int64_t v = (int64_t)(u >> r->shift) - r->unbias;
    v = v < r->lo ? r->lo : v;
    v = v > r->hi ? r->hi : v;
    return (int32_t)v;
}

int32_t fpgagen_requantize(int64_t acc, int32_t shift, int32_t lo, int32_t hi)
{
    const requant_t r = requant_params(shift, lo, hi, 0);
    return requant(acc, &r);
}

int32_t fpgagen_requantize_narrow(int32_t acc, int32_t shift, int32_t lo, int32_t hi)
{
    const requant_t r = requant_params(shift, lo, hi, 0);
    return requant_narrow(acc, &r);
}

int32_t fpgagen_requantize_rounded(int64_t acc, int32_t shift, int32_t lo, int32_t hi, int32_t even)
{
    const requant_t r = requant_params(shift, lo, hi, even);
    return requant(acc, &r);
}

int32_t fpgagen_requantize_narrow_rounded(int32_t acc, int32_t shift, int32_t lo, int32_t hi, int32_t even)
{
    const requant_t r = requant_params(shift, lo, hi, even);
    return requant_narrow(acc, &r);
}

/* A fused LeakyRelu: the negative side's slope and its own requantization (shift + alpha_frac). */
typedef struct {
    int32_t on;
    int64_t alpha;
    requant_t neg;
} leaky_t;

static leaky_t leaky_params(int32_t on, int32_t alpha, int32_t alpha_frac, int32_t shift, int32_t lo, int32_t hi,
                            int32_t even)
{
    leaky_t k;
    k.on = on;
    k.alpha = alpha;
    k.neg = requant_params(on ? shift + alpha_frac : 0, lo, hi, even);
    return k;
}

/* requant, or LeakyRelu's negative path for acc < 0 when the layer has one. */
static inline int32_t requant_leaky(int64_t acc, const requant_t *r, const leaky_t *k)
{
    return (k->on && acc < 0) ? requant(acc * k->alpha, &k->neg) : requant(acc, r);
}

int32_t fpgagen_requantize_leaky(int64_t acc, int32_t shift, int32_t lo, int32_t hi, int32_t alpha,
                                 int32_t alpha_frac)
{
    const requant_t r = requant_params(shift, lo, hi, 0);
    const leaky_t k = leaky_params(1, alpha, alpha_frac, shift, lo, hi, 0);
    return requant_leaky(acc, &r, &k);
}

/* Bias, requantize and store n outputs of one pixel. With per-channel weight formats (align, the
 * n channels' entries, else NULL) output j's accumulator is first pre-aligned to the layer's
 * common shift by a left shift of align[j] bits (exact: the generator checks the aligned value
 * against the 64-bit requantization's range), which rounds it exactly as its own shift would. */
static void requant_store(const int32_t *acc, int32_t n, const int32_t *bias32, const int64_t *bias64,
                          const int8_t *align, const requant_t *rq, uint8_t *y)
{
    int32_t j;

    if (FPGAGEN_HAS_ALIGN(align)) {
        if (rq->narrow) { /* the pre-aligned accumulators fit 30 bits: 32-bit arithmetic only */
            for (j = 0; j < n; ++j) {
                y[j] = (uint8_t)requant_narrow((acc[j] + bias32[j]) * ((int32_t)1 << align[j]), rq);
            }
            return;
        }
        for (j = 0; j < n; ++j) {
            const int64_t a = bias32 != 0 ? (int64_t)acc[j] + bias32[j] : acc[j] + bias64[j];
            y[j] = (uint8_t)requant(a * ((int64_t)1 << align[j]), rq);
        }
        return;
    }
    if (rq->narrow) { /* bias32 set: the accumulator fits 30 bits */
        const uint32_t mul = rq->mul32, offset = rq->offset32, round = rq->round32;
        const uint32_t even = FPGAGEN_ROUND_EVEN ? rq->even32 : 0;
        const int32_t shift = rq->shift32, unbias = rq->unbias32, lo = rq->lo32, hi = rq->hi32;
#define FPGAGEN_NARROW(a) narrow_value(a, mul, offset, round, even, shift, unbias)
#if FPGAGEN_DSP && defined(__ARM_FEATURE_SAT)
        /* A right shift (shift in 1..30, the usual case) to the format's whole range (or [0, 127]):
         * floor((a + 2**(shift-1) - (a < 0)) / 2**shift) as an arithmetic shift (GCC and the ARM
         * compilers shift a negative int32_t so; |a| < 2**29), then one saturating instruction. */
        if (shift > 0 && mul == 1 && !even) {
            const int32_t half = (int32_t)1 << (shift - 1);
#define FPGAGEN_RIGHT(a) (((a) + half - (int32_t)((uint32_t)(a) >> 31)) >> shift)
            if (lo == -128 && hi == 127) {
                for (j = 0; j < n; ++j) {
                    const int32_t a = acc[j] + bias32[j];
                    y[j] = (uint8_t)__ssat(FPGAGEN_RIGHT(a), 8);
                }
                return;
            }
            if (lo == 0 && hi == 255) {
                for (j = 0; j < n; ++j) {
                    const int32_t a = acc[j] + bias32[j];
                    y[j] = (uint8_t)__usat(FPGAGEN_RIGHT(a), 8);
                }
                return;
            }
            if (lo == 0 && hi == 127) {
                for (j = 0; j < n; ++j) {
                    const int32_t a = acc[j] + bias32[j];
                    y[j] = (uint8_t)__usat(FPGAGEN_RIGHT(a), 7);
                }
                return;
            }
#undef FPGAGEN_RIGHT
        }
        /* the format's whole range (or [0, 127]): one saturating instruction */
        if (lo == -128 && hi == 127) {
            for (j = 0; j < n; ++j) {
                const int32_t a = acc[j] + bias32[j];
                y[j] = (uint8_t)__ssat(FPGAGEN_NARROW(a), 8);
            }
            return;
        }
        if (lo == 0 && (hi == 255 || hi == 127)) {
            for (j = 0; hi == 255 && j < n; ++j) {
                const int32_t a = acc[j] + bias32[j];
                y[j] = (uint8_t)__usat(FPGAGEN_NARROW(a), 8);
            }
            for (j = 0; hi == 127 && j < n; ++j) {
                const int32_t a = acc[j] + bias32[j];
                y[j] = (uint8_t)__usat(FPGAGEN_NARROW(a), 7);
            }
            return;
        }
#endif
        for (j = 0; j < n; ++j) {
            const int32_t a = acc[j] + bias32[j];
            const int32_t v = FPGAGEN_NARROW(a);
            y[j] = (uint8_t)(v < lo ? lo : v > hi ? hi : v);
        }
#undef FPGAGEN_NARROW
    } else if (bias32 != 0) {
        for (j = 0; j < n; ++j) {
            y[j] = (uint8_t)requant((int64_t)acc[j] + bias32[j], rq);
        }
    } else {
        for (j = 0; j < n; ++j) {
            y[j] = (uint8_t)requant(acc[j] + bias64[j], rq);
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Dot products over one (clipped) window.                                                  */
/* ---------------------------------------------------------------------------------------- */

/* Two output pixels at once (64-bit targets): the two pixels' input elements x_a, x_b share
 * one 64-bit word X = x_a + 2**32 * x_b, so one multiply by a weight adds both products:
 * sum(X * w) = A + 2**32 * B (mod 2**64, unsigned: no overflow rules), and A, B come back
 * exactly because each lies in int32_t (checked by the generator). On 32-bit MCUs a 64-bit
 * multiply costs more than two 32-bit ones: they compute one pixel at a time. */
#ifndef FPGAGEN_PAIRS
#if UINTPTR_MAX > 0xFFFFFFFFu
#define FPGAGEN_PAIRS 1
#else
#define FPGAGEN_PAIRS 0
#endif
#endif

/* GCC's basic-block vectorizer turns the eight scalar MACs below into SSE code that executes
 * more instructions than the scalar loop; keep them scalar there. */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__OPTIMIZE_SIZE__)
#define FPGAGEN_SCALAR __attribute__((optimize("no-tree-slp-vectorize")))
#else
#define FPGAGEN_SCALAR
#endif

static inline int32_t min32(int32_t a, int32_t b)
{
    return a < b ? a : b;
}

static inline int32_t max32(int32_t a, int32_t b)
{
    return a > b ? a : b;
}

/* The range of a storage code's element type. */
static int32_t type_min(int32_t code)
{
    return code == FPGAGEN_S8 ? -128 : code == FPGAGEN_S16 ? -32768 : code == FPGAGEN_S32 ? INT32_MIN : 0;
}

static int32_t type_max(int32_t code)
{
    return code == FPGAGEN_U8 ? 255 : code == FPGAGEN_S8 ? 127 : code == FPGAGEN_U16 ? 65535
         : code == FPGAGEN_S16 ? 32767 : INT32_MAX;
}

/* The two's complement int32_t in the low 32 bits of u. */
static inline int32_t low32(uint64_t u)
{
    const uint32_t l = (uint32_t)(u & 0xFFFFFFFFu);
    return l < 0x80000000u ? (int32_t)l : -(int32_t)(~l) - 1;
}

/* Lane sums A (low) and B of U = A + 2**32 * B (mod 2**64). */
static inline void split_lanes(uint64_t u, int32_t *a, int32_t *b)
{
    const int32_t lo = low32(u);
    *a = lo;
    *b = low32((u - (uint64_t)(int64_t)lo) >> 32);
}

/* *a += A, *b += B for the lane sums of U. */
static inline void add_lanes(uint64_t u, int32_t *a, int32_t *b)
{
    int32_t la, lb;
    split_lanes(u, &la, &lb);
    *a += la;
    *b += lb;
}


/* Four input bytes as one little-endian word (an unaligned load where the core has one). */
static inline uint32_t load4(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* dot_block_*: the FPGAGEN_BLOCK sums of products of one block of output channels over `rows`
 * kernel rows; in each row the taps [s, s + run) of the row (input elements x + r * x_row on;
 * the block's weights of row r at w + r * w_row, packed in groups of four taps, see
 * fpgagen_nn.h). Per tap t and channel pair (2k, 2k+1) the weights are the bytes
 *     even channel: u = w + 128 (uint8_t), odd channel: w (int8_t)
 * at byte 32 * (t / 4) + 8 * k + 4 * (t % 2) + 2 * ((t / 2) % 2) (+1 for the odd channel). The
 * portable code sums x * u and x * w and the input sum X, then takes x * u - 128 * X; the DSP
 * code sums, per pair and four taps, SMLAD(x, u-lanes) = E and SMLAD(x, (u + 256 * w)-lanes) = D
 * (the int16_t halves of one weight word, no unpacking), so the odd channel's sum is
 * (D - E) / 256. Both wrap modulo 2**32 and are exact because the generator bounds every
 * stretch of `fold` taps: |sum x * w| < 2**23 there; a window of more taps is summed in
 * stretches of at most `fold` taps, unpacked after each.
 * dot_pair_*: dot_block for two pixels whose inputs lie `d` elements apart (64-bit lanes).
 * dot_one_*: one output channel, weights contiguous per row.
 * Defined once per input element type (int8_t / uint8_t; X16: its 16-bit lane unpacking). */
#define FPGAGEN_TAP(T, v, u, sg)                                                                \
    do {                                                                                        \
        xs += (v);                                                                              \
        e0 += (v) * (u)[0];                                                                     \
        o0 += (v) * (T)(int32_t)(sg)[1];                                                        \
        e1 += (v) * (u)[8];                                                                     \
        o1 += (v) * (T)(int32_t)(sg)[9];                                                        \
        e2 += (v) * (u)[16];                                                                    \
        o2 += (v) * (T)(int32_t)(sg)[17];                                                       \
        e3 += (v) * (u)[24];                                                                    \
        o3 += (v) * (T)(int32_t)(sg)[25];                                                       \
    } while (0)

/* the four taps of a group (at xp, weights at g / gs) into the portable sums; V: an input
 * element as a lane value */
#define FPGAGEN_GROUP(T, V)                                                                     \
    do {                                                                                        \
        const T v0 = V(xp, 0), v1 = V(xp, 1), v2 = V(xp, 2), v3 = V(xp, 3);                     \
        FPGAGEN_TAP(T, v0, g, gs);                                                              \
        FPGAGEN_TAP(T, v1, g + 4, gs + 4);                                                      \
        FPGAGEN_TAP(T, v2, g + 2, gs + 2);                                                      \
        FPGAGEN_TAP(T, v3, g + 6, gs + 6);                                                      \
    } while (0)
/* element i of the pixel at p (as uint32_t) / of the two pixels at p and p + d (64-bit lanes) */
#define FPGAGEN_ONE(p, i) ((uint32_t)(int32_t)(p)[i])
#define FPGAGEN_LANES(p, i) ((uint64_t)(int64_t)(p)[i] + ((uint64_t)(int64_t)(p)[(i) + d] << 32))

/* the portable kernels over whole groups: every row's run of taps from s (a multiple of 4) */
#define FPGAGEN_GROUPS(T, V, XT)                                                                \
    do {                                                                                        \
        for (r = 0; r < rows; ++r) {                                                            \
            const XT *xp = x + r * x_row;                                                       \
            const XT *const xend = xp + run;                                                    \
            const uint8_t *g = (const uint8_t *)(w + r * w_row) + 8 * s;                        \
            const int8_t *gs = w + r * w_row + 8 * s;                                           \
            for (; xp < xend; xp += 4, g += 32, gs += 32) {                                     \
                FPGAGEN_GROUP(T, V);                                                            \
            }                                                                                   \
        }                                                                                       \
    } while (0)

/* the offset of tap t's weights in a packed row: even channels' bytes at +0, 8, 16, 24, odd at +1, 9, 17, 25 */
#define FPGAGEN_TAP_AT(t) (((t) >> 2) * 32 + 4 * ((t) & 1) + 2 * (((t) >> 1) & 1))

#if FPGAGEN_DSP
/* Half a block (channel pairs 0 and 1 of the weights at w: four channels) over the taps of
 * dot_block; acc[0..3] +=. Per pair, E sums x * u over SMLAD's 16-bit lanes and D sums x times
 * the int16_t halves u + 256 * w; D - E is 256 times the odd channel's sum (unpacked every
 * `fold` taps, then D restarts at E), E - 128 * X the even channel's. Four channels keep every
 * sum in a register. */
#define FPGAGEN_DEFINE_HALF(NAME, XT, X16, SUMX, SUMX1)                                         \
    static uint32_t NAME(const XT *x, int32_t x_row, const uint8_t *w, int32_t w_row, int32_t rows, \
                         int32_t s, int32_t run, int32_t fold, uint32_t xs, int32_t *acc)       \
    {                                                                                           \
        uint32_t ea = 0, eb = 0, da = 0, db = 0;                                                \
        int32_t pa = 0, pb = 0; /* the odd channels' unpacked stretches */                      \
        const int32_t chunked = rows * run > fold; /* else one stretch: no unpacking on the way */ \
        int32_t r;                                                                              \
        if (!chunked && ((s | run) & 3) == 0) { /* whole groups only (every conv run) */        \
            for (r = 0; r < rows; ++r, x += x_row, w += w_row) {                                \
                const XT *xp = x;                                                               \
                const XT *const xend = x + run;                                                 \
                const uint8_t *g = w + 8 * s;                                                   \
                if (run & 4) { /* an odd number of groups: one, then pairs of groups */         \
                    FPGAGEN_HALF_QUAD(X16, SUMX);                                               \
                    xp += 4;                                                                    \
                    g += 32;                                                                    \
                }                                                                               \
                for (; xp < xend; xp += 8, g += 64) {                                           \
                    FPGAGEN_HALF_QUAD(X16, SUMX);                                               \
                    xp += 4;                                                                    \
                    g += 32;                                                                    \
                    FPGAGEN_HALF_QUAD(X16, SUMX);                                               \
                    xp -= 4;                                                                    \
                    g -= 32;                                                                    \
                }                                                                               \
            }                                                                                   \
            rows = 0;                                                                           \
        }                                                                                       \
        for (r = 0; r < rows; ++r) {                                                            \
            const XT *xp = x + r * x_row;                                                       \
            const uint8_t *const wr = w + r * w_row;                                            \
            int32_t t = s;                                                                      \
            const int32_t e = s + run;                                                          \
            while (t < e) {                                                                     \
                const int32_t stop = chunked ? min32(e, t + fold) : e;                          \
                const uint8_t *g;                                                               \
                int32_t n;                                                                      \
                for (; t < stop && (t & 3); ++t, ++xp) {                                        \
                    FPGAGEN_HALF_TAP(t, SUMX1);                                                 \
                }                                                                               \
                g = wr + (t >> 2) * 32;                                                         \
                for (n = (stop - t) >> 2, t += n * 4; n > 0; --n, xp += 4, g += 32) {           \
                    FPGAGEN_HALF_QUAD(X16, SUMX);                                               \
                }                                                                               \
                for (; t < stop; ++t, ++xp) {                                                   \
                    FPGAGEN_HALF_TAP(t, SUMX1);                                                 \
                }                                                                               \
                if (chunked) { /* at most `fold` taps since the last unpacking */               \
                    pa += low32(da - ea) / 256;                                                 \
                    pb += low32(db - eb) / 256;                                                 \
                    da = ea;                                                                    \
                    db = eb;                                                                    \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
        acc[0] = low32(ea - 128u * xs);                                                         \
        acc[1] = pa + low32(da - ea) / 256;                                                     \
        acc[2] = low32(eb - 128u * xs);                                                         \
        acc[3] = pb + low32(db - eb) / 256;                                                     \
        return xs;                                                                              \
    }

/* dot_block over the packed groups: half 0 sums the inputs on the way, half 1 reuses the sum */
#define FPGAGEN_DEFINE_BLOCK(SUFFIX, XT, X16, XSUM)                                             \
    FPGAGEN_DEFINE_HALF(dot_half0_##SUFFIX, XT, X16, XSUM, xs += v)                             \
    FPGAGEN_DEFINE_HALF(dot_half1_##SUFFIX, XT, X16, (void)0, (void)0)                          \
    static void dot_block_##SUFFIX(const XT *x, int32_t x_row, const int8_t *w, int32_t w_row,  \
                                   int32_t rows, int32_t s, int32_t run, int32_t fold,          \
                                   int32_t *acc)                                                \
    {                                                                                           \
        const uint32_t xs = dot_half0_##SUFFIX(x, x_row, (const uint8_t *)w, w_row, rows, s, run, fold, 0, acc); \
        (void)dot_half1_##SUFFIX(x, x_row, (const uint8_t *)w + 16, w_row, rows, s, run, fold, xs, acc + 4); \
    }

/* four taps (at xp, weights at g) into a half block's sums */
#define FPGAGEN_HALF_QUAD(X16, SUMX)                                                            \
    do {                                                                                        \
        const uint32_t xv = load4(xp);                                                          \
        const uint32_t x02 = X16(xv), x13 = X16((xv >> 8) | (xv << 24));                        \
        const uint32_t a0 = load4(g), b0 = load4(g + 4);                                        \
        const uint32_t a1 = load4(g + 8), b1 = load4(g + 12);                                   \
        SUMX;                                                                                   \
        ea = (uint32_t)__smlad(x13, __uxtb16(b0), __smlad(x02, __uxtb16(a0), ea));              \
        da = (uint32_t)__smlad(x13, b0, __smlad(x02, a0, da));                                  \
        eb = (uint32_t)__smlad(x13, __uxtb16(b1), __smlad(x02, __uxtb16(a1), eb));              \
        db = (uint32_t)__smlad(x13, b1, __smlad(x02, a1, db));                                  \
    } while (0)

/* one tap t (at *xp) into a half block's sums */
#define FPGAGEN_HALF_TAP(t, SUMX1)                                                              \
    do {                                                                                        \
        const uint32_t v = (uint32_t)(int32_t)*xp;                                              \
        const uint8_t *const u = wr + FPGAGEN_TAP_AT(t);                                        \
        const int8_t *const sg = (const int8_t *)u;                                             \
        SUMX1;                                                                                  \
        ea += v * u[0];                                                                         \
        da += v * (uint32_t)((int32_t)u[0] + 256 * sg[1]);                                      \
        eb += v * u[8];                                                                         \
        db += v * (uint32_t)((int32_t)u[8] + 256 * sg[9]);                                      \
    } while (0)
/* Two output pixels whose windows clip alike (inputs d elements apart), on a layer whose windows
 * are one run of whole groups per row within `fold` taps and at most FPGAGEN_LANE_TAPS taps:
 * dual_lanes widens both windows' inputs once into int16_t lanes, per group of four taps the
 * words (x0, x2), (x1, x3) of the first pixel, then of the second; dot_dual then takes each
 * weight word, and its E lanes, for both pixels (CMSIS-NN's 2 channels x 2 pixels blocking). */
#define FPGAGEN_LANE_TAPS 256

/* the lanes of the `rows` runs of `run` taps (x_row apart) of both pixels; returns the first
 * pixel's input sum X, *xs2 the second's */
#define FPGAGEN_WIDEN(X16, FLIP)                                                                \
    do {                                                                                        \
        for (r = 0; r < rows; ++r, x += x_row) {                                                \
            const uint8_t *p = x;                                                               \
            const uint8_t *const end = x + run;                                                 \
            for (; p < end; p += 4, lanes += 4) {                                               \
                const uint32_t va = load4(p), vb = load4(p + d);                                \
                sa = (uint32_t)__usada8(va FLIP, 0, sa);                                        \
                sb = (uint32_t)__usada8(vb FLIP, 0, sb);                                        \
                lanes[0] = (uint32_t)X16(va);                                                   \
                lanes[1] = (uint32_t)X16(va >> 8);                                              \
                lanes[2] = (uint32_t)X16(vb);                                                   \
                lanes[3] = (uint32_t)X16(vb >> 8);                                              \
            }                                                                                   \
        }                                                                                       \
    } while (0)

static uint32_t dual_lanes(const uint8_t *x, int32_t d, int32_t x_signed, int32_t x_row, int32_t rows, int32_t run,
                           uint32_t *lanes, uint32_t *xs2)
{
    uint32_t sa = 0, sb = 0;
    int32_t r;
    if (x_signed) { /* x + 128 = x ^ 0x80 as a byte */
        FPGAGEN_WIDEN(__sxtb16, ^0x80808080u);
        sa -= 128u * (uint32_t)(rows * run);
        sb -= 128u * (uint32_t)(rows * run);
    } else {
        FPGAGEN_WIDEN(__uxtb16, );
    }
    *xs2 = sb;
    return sa;
}

#undef FPGAGEN_WIDEN

#define FPGAGEN_DUAL_QUAD(L, g)                                                                 \
    do {                                                                                        \
        uint32_t a = load4(g), u = __uxtb16(a);                                                 \
        ea = (uint32_t)__smlad((L)[0], u, ea);                                                  \
        da = (uint32_t)__smlad((L)[0], a, da);                                                  \
        eb = (uint32_t)__smlad((L)[2], u, eb);                                                  \
        db = (uint32_t)__smlad((L)[2], a, db);                                                  \
        a = load4((g) + 4);                                                                     \
        u = __uxtb16(a);                                                                        \
        ea = (uint32_t)__smlad((L)[1], u, ea);                                                  \
        da = (uint32_t)__smlad((L)[1], a, da);                                                  \
        eb = (uint32_t)__smlad((L)[3], u, eb);                                                  \
        db = (uint32_t)__smlad((L)[3], a, db);                                                  \
    } while (0)

/* every channel pair of a block at both pixels: per pair the sums of dot_dual, unpacked
 * with the pixels' 128 * X (xa, xb) into acc (first pixel) and acc2 */
static void dot_dual(const uint32_t *lanes, int32_t quads, int32_t rows, const uint8_t *w, int32_t w_row,
                     uint32_t xa, uint32_t xb, int32_t *acc, int32_t *acc2)
{
    int32_t k, r;
    for (k = 0; k < FPGAGEN_BLOCK; k += 2, w += 8) {
        uint32_t ea = 0, da = 0, eb = 0, db = 0;
        const uint32_t *l = lanes;
        const uint8_t *wr = w;
        for (r = 0; r < rows; ++r, wr += w_row) {
            const uint32_t *const end = l + 4 * quads;
            const uint8_t *g = wr;
            if (quads & 1) { /* an odd number of groups: one, then pairs of groups */
                FPGAGEN_DUAL_QUAD(l, g);
                l += 4;
                g += 32;
            }
            for (; l < end; l += 8, g += 64) {
                FPGAGEN_DUAL_QUAD(l, g);
                FPGAGEN_DUAL_QUAD(l + 4, g + 32);
            }
        }
        acc[k] = low32(ea - xa);
        acc[k + 1] = low32(da - ea) / 256;
        acc2[k] = low32(eb - xb);
        acc2[k + 1] = low32(db - eb) / 256;
    }
}

#undef FPGAGEN_DUAL_QUAD

/* xs += the four input bytes of xv (x02, x13: its lanes) */
#define FPGAGEN_XSUM_U8 xs = (uint32_t)__usada8(xv, 0, xs)
#define FPGAGEN_XSUM_S8 xs = (uint32_t)__smlad(x13, 0x00010001, __smlad(x02, 0x00010001, xs))
#else
/* Portable: the eight channels' sums x * u (even) and x * w (odd) and X in one pass. */
#define FPGAGEN_DEFINE_BLOCK(SUFFIX, XT, X16, XSUM)                                             \
    FPGAGEN_SCALAR static void dot_block_##SUFFIX(const XT *x, int32_t x_row, const int8_t *w,  \
                                                  int32_t w_row, int32_t rows, int32_t s,       \
                                                  int32_t run, int32_t fold, int32_t *acc)      \
    {                                                                                           \
        uint32_t e0 = 0, e1 = 0, e2 = 0, e3 = 0, o0 = 0, o1 = 0, o2 = 0, o3 = 0, xs = 0;        \
        int32_t r, t;                                                                           \
        (void)fold; /* the portable sums are exact modulo 2**32 without unpacking */            \
        if (((s | run) & 3) == 0) { /* whole groups only (every conv run) */                    \
            FPGAGEN_GROUPS(uint32_t, FPGAGEN_ONE, XT);                                          \
            rows = 0;                                                                           \
        }                                                                                       \
        for (r = 0; r < rows; ++r) {                                                            \
            const XT *xp = x + r * x_row;                                                       \
            const uint8_t *const wu = (const uint8_t *)(w + r * w_row);                         \
            const int8_t *const ws = w + r * w_row;                                             \
            for (t = s; t < s + run; ++t, ++xp) {                                               \
                const uint32_t v = (uint32_t)(int32_t)*xp;                                      \
                const int32_t at = FPGAGEN_TAP_AT(t);                                           \
                FPGAGEN_TAP(uint32_t, v, wu + at, ws + at);                                     \
            }                                                                                   \
        }                                                                                       \
        acc[0] = low32((uint64_t)(e0 - 128u * xs));                                             \
        acc[1] = low32(o0);                                                                     \
        acc[2] = low32((uint64_t)(e1 - 128u * xs));                                             \
        acc[3] = low32(o1);                                                                     \
        acc[4] = low32((uint64_t)(e2 - 128u * xs));                                             \
        acc[5] = low32(o2);                                                                     \
        acc[6] = low32((uint64_t)(e3 - 128u * xs));                                             \
        acc[7] = low32(o3);                                                                     \
    }
#define FPGAGEN_XSUM_U8 0
#define FPGAGEN_XSUM_S8 0
#endif

/* dot_block_il_* / dot_pair_il_*: the same over the interleaved packing (per tap the block's
 * FPGAGEN_BLOCK weights together, [kernel_h][kernel_w][in_c / groups][FPGAGEN_BLOCK]) of layers
 * whose kernel rows are too short for groups of four taps: each input element is loaded once
 * and multiplied by the FPGAGEN_BLOCK weights that follow. */
#define FPGAGEN_DEFINE_INTERLEAVED(SUFFIX, XT)                                                  \
    FPGAGEN_SCALAR static void dot_block_il_##SUFFIX(const XT *x, int32_t x_row, const int8_t *w, \
                                                  int32_t w_row, int32_t rows, int32_t run,     \
                                                  int32_t *acc)                                 \
    {                                                                                           \
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;                 \
        int32_t r;                                                                              \
        for (r = 0; r < rows; ++r) {                                                            \
            const XT *xp = x + r * x_row;                                                       \
            const XT *const end = xp + run;                                                     \
            const int8_t *wp = w + r * w_row;                                                   \
            for (; xp < end; ++xp, wp += FPGAGEN_BLOCK) {                                       \
                const int32_t v = *xp;                                                          \
                a0 += v * wp[0];                                                                \
                a1 += v * wp[1];                                                                \
                a2 += v * wp[2];                                                                \
                a3 += v * wp[3];                                                                \
                a4 += v * wp[4];                                                                \
                a5 += v * wp[5];                                                                \
                a6 += v * wp[6];                                                                \
                a7 += v * wp[7];                                                                \
            }                                                                                   \
        }                                                                                       \
        acc[0] = a0;                                                                            \
        acc[1] = a1;                                                                            \
        acc[2] = a2;                                                                            \
        acc[3] = a3;                                                                            \
        acc[4] = a4;                                                                            \
        acc[5] = a5;                                                                            \
        acc[6] = a6;                                                                            \
        acc[7] = a7;                                                                            \
    }                                                                                           \
                                                                                                \
    FPGAGEN_SCALAR static void dot_pair_il_##SUFFIX(const XT *x, int32_t d, int32_t x_row,      \
                                                 const int8_t *w, int32_t w_row, int32_t rows,  \
                                                 int32_t run, int32_t *acc_a, int32_t *acc_b)   \
    {                                                                                           \
        uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;                \
        int32_t r;                                                                              \
        for (r = 0; r < rows; ++r) {                                                            \
            const XT *xp = x + r * x_row;                                                       \
            const XT *const end = xp + run;                                                     \
            const int8_t *wp = w + r * w_row;                                                   \
            for (; xp < end; ++xp, wp += FPGAGEN_BLOCK) {                                       \
                const uint64_t v = (uint64_t)(int64_t)xp[0] + ((uint64_t)(int64_t)xp[d] << 32);  \
                a0 += v * (uint64_t)(int64_t)wp[0];                                             \
                a1 += v * (uint64_t)(int64_t)wp[1];                                             \
                a2 += v * (uint64_t)(int64_t)wp[2];                                             \
                a3 += v * (uint64_t)(int64_t)wp[3];                                             \
                a4 += v * (uint64_t)(int64_t)wp[4];                                             \
                a5 += v * (uint64_t)(int64_t)wp[5];                                             \
                a6 += v * (uint64_t)(int64_t)wp[6];                                             \
                a7 += v * (uint64_t)(int64_t)wp[7];                                             \
            }                                                                                   \
        }                                                                                       \
        split_lanes(a0, &acc_a[0], &acc_b[0]);                                                  \
        split_lanes(a1, &acc_a[1], &acc_b[1]);                                                  \
        split_lanes(a2, &acc_a[2], &acc_b[2]);                                                  \
        split_lanes(a3, &acc_a[3], &acc_b[3]);                                                  \
        split_lanes(a4, &acc_a[4], &acc_b[4]);                                                  \
        split_lanes(a5, &acc_a[5], &acc_b[5]);                                                  \
        split_lanes(a6, &acc_a[6], &acc_b[6]);                                                  \
        split_lanes(a7, &acc_a[7], &acc_b[7]);                                                  \
    }                                                                                           \

/* the pair kernel's lane sums into acc_a / acc_b, then restart */
#define FPGAGEN_PAIR_UNPACK()                                                                   \
    do {                                                                                        \
        add_lanes(e0 - 128u * xs, acc_a + 0, acc_b + 0);                                        \
        add_lanes(o0, acc_a + 1, acc_b + 1);                                                    \
        add_lanes(e1 - 128u * xs, acc_a + 2, acc_b + 2);                                        \
        add_lanes(o1, acc_a + 3, acc_b + 3);                                                    \
        add_lanes(e2 - 128u * xs, acc_a + 4, acc_b + 4);                                        \
        add_lanes(o2, acc_a + 5, acc_b + 5);                                                    \
        add_lanes(e3 - 128u * xs, acc_a + 6, acc_b + 6);                                        \
        add_lanes(o3, acc_a + 7, acc_b + 7);                                                    \
        e0 = e1 = e2 = e3 = o0 = o1 = o2 = o3 = xs = 0;                                         \
    } while (0)

/* dot_one's taps four at a time on the DSP path: SMLAD of the lanes (0, 2) and (1, 3) of four
 * inputs and four weights (wrapping modulo 2**32, exact as the sum fits int32_t) */
#if FPGAGEN_DSP
#define FPGAGEN_ONE_QUADS(X16)                                                                  \
    for (; i + 4 <= run; i += 4) {                                                              \
        const uint32_t xv = load4(xp + i), wv = load4(wp + i);                                  \
        a = __smlad(X16(xv), __sxtb16(wv), a);                                                  \
        a = __smlad(X16(xv >> 8), __sxtb16(wv >> 8), a);                                        \
    }
#else
#define FPGAGEN_ONE_QUADS(X16) (void)0
#endif

#define FPGAGEN_DEFINE_DOT(SUFFIX, XT, X16, XSUM)                                               \
    FPGAGEN_DEFINE_INTERLEAVED(SUFFIX, XT)                                                      \
    FPGAGEN_DEFINE_BLOCK(SUFFIX, XT, X16, XSUM)                                                 \
                                                                                                \
    FPGAGEN_SCALAR static void dot_pair_##SUFFIX(const XT *x, int32_t d, int32_t x_row,         \
                                                 const int8_t *w, int32_t w_row, int32_t rows,  \
                                                 int32_t s, int32_t run, int32_t fold,          \
                                                 int32_t *acc_a, int32_t *acc_b)                \
    {                                                                                           \
        uint64_t e0 = 0, e1 = 0, e2 = 0, e3 = 0, o0 = 0, o1 = 0, o2 = 0, o3 = 0, xs = 0;        \
        int32_t r, since = 0, j;                                                        \
        for (j = 0; j < FPGAGEN_BLOCK; ++j) {                                                   \
            acc_a[j] = acc_b[j] = 0;                                                            \
        }                                                                                       \
        if (((s | run) & 3) == 0) { /* whole groups only: no unpacking needed (64-bit lanes) */  \
            FPGAGEN_GROUPS(uint64_t, FPGAGEN_LANES, XT);                                        \
            FPGAGEN_PAIR_UNPACK();                                                              \
            rows = 0;                                                                           \
        }                                                                                       \
        for (r = 0; r < rows; ++r) {                                                            \
            const XT *xp = x + r * x_row;                                                       \
            const uint8_t *const wu = (const uint8_t *)(w + r * w_row);                         \
            const int8_t *const ws = w + r * w_row;                                             \
            int32_t t = s;                                                                      \
            const int32_t e = s + run;                                                          \
            while (t < e) {                                                                     \
                const int32_t stop = min32(e, t + fold - since);                                \
                since += stop - t;                                                              \
                for (; t < stop; ++t, ++xp) {                                                   \
                    const uint64_t v = (uint64_t)(int64_t)xp[0] + ((uint64_t)(int64_t)xp[d] << 32); \
                    const int32_t at = FPGAGEN_TAP_AT(t);                                       \
                    FPGAGEN_TAP(uint64_t, v, wu + at, ws + at);                                 \
                }                                                                               \
                if (since == fold || (r == rows - 1 && t == e)) { /* unpack the lane sums */    \
                    FPGAGEN_PAIR_UNPACK();                                                      \
                    since = 0;                                                                  \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
                                                                                                \
    static int32_t dot_one_##SUFFIX(const XT *x, int32_t x_row, const int8_t *w, int32_t w_row, \
                                    int32_t rows, int32_t run)                                  \
    {                                                                                           \
        int32_t a = 0, r, i;                                                                    \
        for (r = 0; r < rows; ++r) {                                                            \
            const XT *const xp = x + r * x_row;                                                 \
            const int8_t *const wp = w + r * w_row;                                             \
            i = 0;                                                                              \
            FPGAGEN_ONE_QUADS(X16);                                                             \
            for (; i < run; ++i) {                                                              \
                a += (int32_t)xp[i] * wp[i];                                                    \
            }                                                                                   \
        }                                                                                       \
        return a;                                                                               \
    }

FPGAGEN_DEFINE_DOT(s8, int8_t, __sxtb16, FPGAGEN_XSUM_S8)
FPGAGEN_DEFINE_DOT(u8, uint8_t, __uxtb16, FPGAGEN_XSUM_U8)

#undef FPGAGEN_DEFINE_DOT
#undef FPGAGEN_ONE_QUADS
#undef FPGAGEN_DEFINE_INTERLEAVED
#undef FPGAGEN_DEFINE_BLOCK

/* The output channels of a conv/dense layer: per group, `blocks` blocks of FPGAGEN_BLOCK channels,
 * then `rest` single channels; weights per block/channel (block_w/one_w) and per kernel row
 * (block_row/one_row). */
typedef struct {
    int32_t x_signed;
    int32_t blocks, rest;
    int32_t block_w, one_w;
    int32_t block_row, one_row;
    int32_t quads, fold;
    const int32_t *bias32;
    const int64_t *bias64;
    const int8_t *align;            /* per-channel weight formats: the pre-alignment, else NULL */
    requant_t rq;
} channels_t;

/* The part of a window inside the input: `rows` kernel rows (from row0) of `cols` runs of `run`
 * contiguous input elements; x_row/x_col: input steps between rows/runs; tap0: the first tap of
 * the first run within a kernel row (run c starts at tap0 + c * run). A conv with one group has
 * one run per row (a window row is contiguous in HWC); a dense layer is one run. */
typedef struct {
    int32_t rows, x_row;
    int32_t cols, x_col;
    int32_t run;
    int32_t row0, tap0;
} window_t;

#if FPGAGEN_DSP
/* window_channels for two pixels (inputs d elements, outputs dy bytes apart) of a layer whose
 * windows are one run of whole groups per row within `fold` taps (fpgagen_conv pairs pixels on
 * the DSP path only then): dot_dual over each half block, the inputs' sums X once per pixel. */
static void window_dual(const channels_t *ch, const window_t *win, const uint8_t *x, const int8_t *w,
                        int32_t first, int32_t d, int32_t dy, uint8_t *y)
{
    const int32_t *const bias32 = ch->bias32 != 0 ? ch->bias32 + first : 0;
    const int64_t *const bias64 = ch->bias64 != 0 ? ch->bias64 + first : 0;
    const int8_t *const align = FPGAGEN_HAS_ALIGN(ch->align) ? ch->align + first : 0;
    const int32_t rows = win->cols > 0 ? win->rows : 0, run = win->run, s = win->tap0;
    /* whole kernel rows follow each other in the weights: one run */
    const int32_t whole = run * FPGAGEN_BLOCK == ch->block_row;
    uint32_t lanes[FPGAGEN_LANE_TAPS];
    uint32_t xa, xb;
    int32_t acc[FPGAGEN_BLOCK], acc2[FPGAGEN_BLOCK];
    int32_t b, j, o = 0;

    xa = 128u * dual_lanes(x, d, ch->x_signed, win->x_row, rows, run, lanes, &xb);
    xb *= 128u;
    for (b = 0; b < ch->blocks; ++b, w += ch->block_w, o += FPGAGEN_BLOCK) {
        const uint8_t *const wc = (const uint8_t *)(w + win->row0 * ch->block_row) + 8 * s;
        if (whole) {
            dot_dual(lanes, rows * run / 4, 1, wc, 0, xa, xb, acc, acc2);
        } else {
            dot_dual(lanes, run / 4, rows, wc, ch->block_row, xa, xb, acc, acc2);
        }
        requant_store(acc, FPGAGEN_BLOCK, bias32 != 0 ? bias32 + o : 0, bias64 != 0 ? bias64 + o : 0,
                      FPGAGEN_HAS_ALIGN(align) ? align + o : 0, &ch->rq, y + o);
        requant_store(acc2, FPGAGEN_BLOCK, bias32 != 0 ? bias32 + o : 0, bias64 != 0 ? bias64 + o : 0,
                      FPGAGEN_HAS_ALIGN(align) ? align + o : 0, &ch->rq, y + dy + o);
    }
    for (b = 0; b < ch->rest; ++b, w += ch->one_w, ++o) {
        for (j = 0; j < 2; ++j) {
            const uint8_t *const xc = x + j * d;
            const int8_t *const wc = w + win->row0 * ch->one_row + s;
            int32_t sum = ch->x_signed ? dot_one_s8((const int8_t *)xc, win->x_row, wc, ch->one_row, rows, run)
                                       : dot_one_u8(xc, win->x_row, wc, ch->one_row, rows, run);
            requant_store(&sum, 1, bias32 != 0 ? bias32 + o : 0, bias64 != 0 ? bias64 + o : 0,
                          FPGAGEN_HAS_ALIGN(align) ? align + o : 0, &ch->rq, y + j * dy + o);
        }
    }
}
#endif

/* Every output channel of one group at one output pixel (y: the group's first output channel
 * `first` of the pixel), or at two pixels with the same window whose inputs lie d elements and
 * outputs dy bytes apart (pair). */
static void window_channels(const channels_t *ch, const window_t *win, const uint8_t *x, const int8_t *w,
                            int32_t first, int32_t pair, int32_t d, int32_t dy, uint8_t *y)
{
    const int32_t *const bias32 = ch->bias32 != 0 ? ch->bias32 + first : 0;
    const int64_t *const bias64 = ch->bias64 != 0 ? ch->bias64 + first : 0;
    const int8_t *const align = FPGAGEN_HAS_ALIGN(ch->align) ? ch->align + first : 0;
    int32_t acc[FPGAGEN_BLOCK], acc2[FPGAGEN_BLOCK], part[FPGAGEN_BLOCK], part2[FPGAGEN_BLOCK];
    int32_t b, c, j, o = 0;

#if FPGAGEN_DSP
    if (pair) { /* fpgagen_conv pairs pixels on the DSP path only for window_dual */
        window_dual(ch, win, x, w, first, d, dy, y);
        return;
    }
#endif
    for (b = 0; b < ch->blocks; ++b, w += ch->block_w, o += FPGAGEN_BLOCK) {
        for (c = 0; c < win->cols; ++c) { /* one run per row when groups == 1 */
            const uint8_t *const xc = x + c * win->x_col;
            const int8_t *const wc = w + win->row0 * ch->block_row;
            const int32_t s = win->tap0 + c * win->run;
            int32_t *const sums = c == 0 ? acc : part;
            int32_t *const sums2 = c == 0 ? acc2 : part2;
            if (!ch->quads) { /* interleaved: the run's first tap directly */
                const int8_t *const wi = wc + s * FPGAGEN_BLOCK;
                if (pair && ch->x_signed) {
                    dot_pair_il_s8((const int8_t *)xc, d, win->x_row, wi, ch->block_row, win->rows, win->run, sums,
                                   sums2);
                } else if (pair) {
                    dot_pair_il_u8(xc, d, win->x_row, wi, ch->block_row, win->rows, win->run, sums, sums2);
                } else if (ch->x_signed) {
                    dot_block_il_s8((const int8_t *)xc, win->x_row, wi, ch->block_row, win->rows, win->run, sums);
                } else {
                    dot_block_il_u8(xc, win->x_row, wi, ch->block_row, win->rows, win->run, sums);
                }
            } else if (pair) {
                if (ch->x_signed) {
                    dot_pair_s8((const int8_t *)xc, d, win->x_row, wc, ch->block_row, win->rows, s, win->run,
                                ch->fold, sums, sums2);
                } else {
                    dot_pair_u8(xc, d, win->x_row, wc, ch->block_row, win->rows, s, win->run, ch->fold, sums,
                                sums2);
                }
            } else if (ch->x_signed) {
                dot_block_s8((const int8_t *)xc, win->x_row, wc, ch->block_row, win->rows, s, win->run, ch->fold,
                             sums);
            } else {
                dot_block_u8(xc, win->x_row, wc, ch->block_row, win->rows, s, win->run, ch->fold, sums);
            }
            for (j = 0; c > 0 && j < FPGAGEN_BLOCK; ++j) {
                acc[j] += part[j];
            }
            for (j = 0; c > 0 && pair && j < FPGAGEN_BLOCK; ++j) {
                acc2[j] += part2[j];
            }
        }
        for (j = 0; win->cols <= 0 && j < FPGAGEN_BLOCK; ++j) {
            acc[j] = acc2[j] = 0;
        }
        requant_store(acc, FPGAGEN_BLOCK, bias32 != 0 ? bias32 + o : 0, bias64 != 0 ? bias64 + o : 0,
                      FPGAGEN_HAS_ALIGN(align) ? align + o : 0, &ch->rq, y + o);
        if (pair) {
            requant_store(acc2, FPGAGEN_BLOCK, bias32 != 0 ? bias32 + o : 0, bias64 != 0 ? bias64 + o : 0,
                          FPGAGEN_HAS_ALIGN(align) ? align + o : 0, &ch->rq, y + dy + o);
        }
    }
    for (b = 0; b < ch->rest; ++b, w += ch->one_w, ++o) {
        for (j = 0; j <= pair; ++j) { /* the other pixel of a pair: inputs d further */
            int32_t sum = 0;
            for (c = 0; c < win->cols; ++c) {
                const uint8_t *const xc = x + c * win->x_col + j * d;
                const int8_t *const wc = w + win->row0 * ch->one_row + win->tap0 + c * win->run;
                sum += ch->x_signed
                    ? dot_one_s8((const int8_t *)xc, win->x_row, wc, ch->one_row, win->rows, win->run)
                    : dot_one_u8(xc, win->x_row, wc, ch->one_row, win->rows, win->run);
            }
            requant_store(&sum, 1, bias32 != 0 ? bias32 + o : 0, bias64 != 0 ? bias64 + o : 0,
                          FPGAGEN_HAS_ALIGN(align) ? align + o : 0, &ch->rq, y + j * dy + o);
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Layers.                                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* The window rows [k0, k0 + n) of the kernel that fall inside the input, for an output
 * position whose window starts at input row (or column) i. */
static inline void clip(int32_t i, int32_t kernel, int32_t size, int32_t *k0, int32_t *n)
{
    *k0 = max32(0, -i);
    *n = min32(kernel, size - i) - *k0;
}

/* A conv with one group in the interleaved packing (in_c not a multiple of 4, e.g. a first
 * layer over 1 or 3 channels) on a 32-bit target: per output pixel, the blocks straight to
 * dot_block_il and the single channels to dot_one, without window_channels' generality. */
static void conv_interleaved(const fpgagen_conv_t *l, const channels_t *ch, const uint8_t *x, uint8_t *y)
{
    const int32_t c_n = l->in_c, kernel_w = l->kernel_w, x_row = l->in_w * l->in_c;
    int32_t oy, ox, b;

    for (oy = 0; oy < l->out_h; ++oy) {
        int32_t ky0, rows;
        const int32_t iy = oy * l->stride_h - l->pad_top;
        clip(iy, l->kernel_h, l->in_h, &ky0, &rows);
        for (ox = 0; ox < l->out_w; ++ox) {
            int32_t kx0, cols, o = 0, r0 = ky0, n_rows = rows;
            const int32_t ix = ox * l->stride_w - l->pad_left;
            const int8_t *w = l->weight;
            const uint8_t *xw = x;
            uint8_t *const yp = y + (oy * l->out_w + ox) * l->out_c;
            clip(ix, kernel_w, l->in_w, &kx0, &cols);
            if (rows > 0 && cols > 0) {
                xw = x + ((iy + ky0) * l->in_w + ix + kx0) * c_n;
            } else { /* the window lies in the padding: no taps */
                r0 = kx0 = n_rows = cols = 0;
            }
            for (b = 0; b < ch->blocks; ++b, w += ch->block_w, o += FPGAGEN_BLOCK) {
                int32_t acc[FPGAGEN_BLOCK];
                const int8_t *const wb = w + r0 * ch->block_row + kx0 * c_n * FPGAGEN_BLOCK;
                if (ch->x_signed) {
                    dot_block_il_s8((const int8_t *)xw, x_row, wb, ch->block_row, n_rows, cols * c_n, acc);
                } else {
                    dot_block_il_u8(xw, x_row, wb, ch->block_row, n_rows, cols * c_n, acc);
                }
                requant_store(acc, FPGAGEN_BLOCK, ch->bias32 != 0 ? ch->bias32 + o : 0,
                              ch->bias64 != 0 ? ch->bias64 + o : 0, FPGAGEN_HAS_ALIGN(ch->align) ? ch->align + o : 0,
                              &ch->rq, yp + o);
            }
            for (b = 0; b < ch->rest; ++b, w += ch->one_w, ++o) {
                const int8_t *const wb = w + r0 * ch->one_row + kx0 * c_n;
                int32_t sum = ch->x_signed
                    ? dot_one_s8((const int8_t *)xw, x_row, wb, ch->one_row, n_rows, cols * c_n)
                    : dot_one_u8(xw, x_row, wb, ch->one_row, n_rows, cols * c_n);
                requant_store(&sum, 1, ch->bias32 != 0 ? ch->bias32 + o : 0, ch->bias64 != 0 ? ch->bias64 + o : 0,
                              FPGAGEN_HAS_ALIGN(ch->align) ? ch->align + o : 0, &ch->rq, yp + o);
            }
        }
    }
}

/* A depthwise conv (groups = in_c = out_c, weights [kh][kw][c], `packing` 2): per output pixel,
 * channels in steps of FPGAGEN_BLOCK, each channel's sum over the clipped window. On the DSP
 * path four channels at a time: per tap one word of four inputs and one of four weights, their
 * lanes (0, 2) and (1, 3) multiplied half by half (SMLABB / SMLATT). */
#define FPGAGEN_DW_SUMS(XT, X16)                                                                \
    do {                                                                                        \
        const XT *const xs = (const XT *)(const void *)xw;                                      \
        int32_t k = 0, r, t;                                                                    \
        FPGAGEN_DW_QUADS(XT, X16);                                                              \
        for (; k < n; ++k) {                                                                    \
            int32_t a = 0;                                                                      \
            for (r = 0; r < rows; ++r) {                                                        \
                const XT *xp = xs + r * x_row + k;                                              \
                const int8_t *wp = ww + r * w_row + k;                                          \
                for (t = 0; t < cols; ++t, xp += c_n, wp += c_n) {                              \
                    a += (int32_t)*xp * *wp;                                                    \
                }                                                                               \
            }                                                                                   \
            acc[k] = a;                                                                         \
        }                                                                                       \
    } while (0)

#if FPGAGEN_DSP
#define FPGAGEN_DW_QUADS(XT, X16)                                                               \
    for (; k + 4 <= n; k += 4) {                                                                \
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;                                                 \
        for (r = 0; r < rows; ++r) {                                                            \
            const XT *xp = xs + r * x_row + k;                                                  \
            const int8_t *wp = ww + r * w_row + k;                                              \
            for (t = 0; t < cols; ++t, xp += c_n, wp += c_n) {                                  \
                const uint32_t xv = load4(xp), wv = load4(wp);                                  \
                const uint32_t x02 = X16(xv), x13 = X16(xv >> 8);                               \
                const uint32_t w02 = __sxtb16(wv), w13 = __sxtb16(wv >> 8);                     \
                a0 = __smlabb(x02, w02, a0);                                                    \
                a2 = __smlatt(x02, w02, a2);                                                    \
                a1 = __smlabb(x13, w13, a1);                                                    \
                a3 = __smlatt(x13, w13, a3);                                                    \
            }                                                                                   \
        }                                                                                       \
        acc[k] = a0;                                                                            \
        acc[k + 1] = a1;                                                                        \
        acc[k + 2] = a2;                                                                        \
        acc[k + 3] = a3;                                                                        \
    }
#else
#define FPGAGEN_DW_QUADS(XT, X16) (void)0
#endif

static void conv_depthwise(const fpgagen_conv_t *l, const uint8_t *x, uint8_t *y)
{
    const int32_t c_n = l->in_c, kernel_w = l->kernel_w;
    const int32_t x_row = l->in_w * c_n, w_row = kernel_w * c_n;
    requant_t rq = requant_params(l->shift, l->lo, l->hi, l->round_even);
    int32_t oy, ox, c0;

    rq.narrow = l->narrow;
    for (oy = 0; oy < l->out_h; ++oy) {
        int32_t ky0, rows;
        const int32_t iy = oy * l->stride_h - l->pad_top;
        clip(iy, l->kernel_h, l->in_h, &ky0, &rows);
        for (ox = 0; ox < l->out_w; ++ox) {
            int32_t kx0, cols;
            const int32_t ix = ox * l->stride_w - l->pad_left;
            uint8_t *const yp = y + (oy * l->out_w + ox) * c_n;
            clip(ix, kernel_w, l->in_w, &kx0, &cols);
            rows = max32(rows, 0);
            cols = rows > 0 ? max32(cols, 0) : 0;
            for (c0 = 0; c0 < c_n; c0 += FPGAGEN_BLOCK) {
                const int32_t n = min32(FPGAGEN_BLOCK, c_n - c0);
                /* the window's first pixel inside the input (not read when the window lies in the padding) */
                const uint8_t *const xw = x + (cols > 0 ? ((iy + ky0) * l->in_w + ix + kx0) * c_n : 0) + c0;
                const int8_t *const ww = l->weight + (cols > 0 ? (ky0 * kernel_w + kx0) * c_n : 0) + c0;
                int32_t acc[FPGAGEN_BLOCK];
                if (l->in_type & 1) {
                    FPGAGEN_DW_SUMS(int8_t, __sxtb16);
                } else {
                    FPGAGEN_DW_SUMS(uint8_t, __uxtb16);
                }
                requant_store(acc, n, l->bias32 != 0 ? l->bias32 + c0 : 0, l->bias64 != 0 ? l->bias64 + c0 : 0,
                              FPGAGEN_HAS_ALIGN(l->align) ? l->align + c0 : 0, &rq,
                              yp + c0);
            }
        }
    }
}

#undef FPGAGEN_DW_SUMS
#undef FPGAGEN_DW_QUADS

void fpgagen_conv(const fpgagen_conv_t *l, const uint8_t *x, uint8_t *y)
{
    /* copies of the descriptor: stores through y may alias it as far as the compiler knows */
    const int32_t in_h = l->in_h, in_w = l->in_w, in_c = l->in_c;
    const int32_t out_h = l->out_h, out_w = l->out_w, out_c = l->out_c;
    const int32_t kernel_h = l->kernel_h, kernel_w = l->kernel_w;
    const int32_t stride_h = l->stride_h, stride_w = l->stride_w;
    const int32_t groups = l->groups;
    const int32_t cg = in_c / groups;                /* input channels per group */
    const int32_t og = out_c / groups;               /* output channels per group */
    const int32_t taps = kernel_h * kernel_w * cg;   /* weights per output channel */
    channels_t ch;
    window_t win;
    int32_t oy, ox, g, group_w, pairs;

    if (l->packing == 2) {
        conv_depthwise(l, x, y);
        return;
    }
    ch.x_signed = l->in_type & 1;
    ch.blocks = og / FPGAGEN_BLOCK;
    ch.rest = og % FPGAGEN_BLOCK;
    ch.quads = l->packing;
    ch.block_row = (ch.quads ? (kernel_w * cg + 3) & ~3 : kernel_w * cg) * FPGAGEN_BLOCK;
    ch.block_w = kernel_h * ch.block_row;
    ch.one_w = taps;
    ch.one_row = kernel_w * cg;
    ch.fold = l->fold;
    ch.bias32 = l->bias32;
    ch.bias64 = l->bias64;
    ch.align = l->align;
    ch.rq = requant_params(l->shift, l->lo, l->hi, l->round_even);
    ch.rq.narrow = l->narrow;
    group_w = ch.blocks * ch.block_w + ch.rest * ch.one_w;
    /* pair pixels with the same window: 64-bit lanes on 64-bit hosts; on the DSP path for
     * window_dual (one run of whole groups per row, never more than `fold` taps) */
#if FPGAGEN_DSP
    pairs = FPGAGEN_PAIRS || (ch.quads && groups == 1 && taps <= ch.fold && taps <= FPGAGEN_LANE_TAPS);
#else
    pairs = FPGAGEN_PAIRS;
#endif
    if (!FPGAGEN_PAIRS && !ch.quads && groups == 1) {
        conv_interleaved(l, &ch, x, y);
        return;
    }
    win.x_row = in_w * in_c;
    win.x_col = in_c;
    for (oy = 0; oy < out_h; ++oy) {
        const int32_t iy = oy * stride_h - l->pad_top;
        int32_t ky0, rows, ky0_next, rows_next;
        int32_t twin = 0; /* the next row has the same window rows: do both rows at once */
        clip(iy, kernel_h, in_h, &ky0, &rows);
        if (pairs && oy + 1 < out_h) {
            clip(iy + stride_h, kernel_h, in_h, &ky0_next, &rows_next);
            twin = ky0_next == ky0 && rows_next == rows && rows > 0;
        }
        win.rows = max32(rows, 0);
        for (ox = 0; ox < out_w; ++ox) {
            const int32_t ix = ox * stride_w - l->pad_left;
            int32_t kx0, cols, kx0_next, cols_next, pair = twin, d = stride_h * in_w * in_c;
            int32_t dy = out_w * out_c;
            const uint8_t *xw = x;
            uint8_t *const yp = y + (oy * out_w + ox) * out_c;

            clip(ix, kernel_w, in_w, &kx0, &cols);
            if (!twin && pairs && ox + 1 < out_w) { /* else pair with the next pixel in the row */
                clip(ix + stride_w, kernel_w, in_w, &kx0_next, &cols_next);
                pair = kx0_next == kx0 && cols_next == cols && cols > 0 && rows > 0;
                d = stride_w * in_c;
                dy = out_c;
            }
            if (rows > 0 && cols > 0) {
                xw = x + ((iy + ky0) * in_w + ix + kx0) * in_c;
            }
            cols = max32(cols, 0);
            win.row0 = ky0;
            win.tap0 = kx0 * cg;
            win.cols = groups == 1 ? (cols > 0) : cols;
            win.run = groups == 1 ? cols * cg : cg;
            for (g = 0; g < groups; ++g) {
                window_channels(&ch, &win, xw + g * cg, l->weight + g * group_w, g * og, pair, d, dy, yp + g * og);
            }
            ox += pair && !twin; /* the row neighbour is done */
        }
        oy += twin; /* the next row is done */
    }
}

void fpgagen_dense(const fpgagen_dense_t *l, const uint8_t *x, uint8_t *y)
{
    channels_t ch;
    window_t win;

    ch.x_signed = l->in_type & 1;
    ch.blocks = l->out_n / FPGAGEN_BLOCK;
    ch.rest = l->out_n % FPGAGEN_BLOCK;
    ch.quads = l->packing;
    ch.block_w = (ch.quads ? (l->in_n + 3) & ~3 : l->in_n) * FPGAGEN_BLOCK;
    ch.one_w = l->in_n;
    ch.block_row = 0;
    ch.one_row = 0;
    ch.fold = l->fold;
    ch.bias32 = l->bias32;
    ch.bias64 = l->bias64;
    ch.align = l->align;
    ch.rq = requant_params(l->shift, l->lo, l->hi, l->round_even);
    ch.rq.narrow = l->narrow;
    win.rows = 1;
    win.x_row = 0;
    win.cols = 1;
    win.x_col = 0;
    win.run = l->in_n;
    win.row0 = 0;
    win.tap0 = 0;
    window_channels(&ch, &win, x, l->weight, 0, 0, 0, 0, y);
}

/* ---------------------------------------------------------------------------------------- */
/* Elements of any storage code (the wide path, pools, add).                                */
/* ---------------------------------------------------------------------------------------- */

static inline int32_t load(const uint8_t *p, int32_t i, int32_t type)
{
    switch (type) {
    case FPGAGEN_U8:
        return p[i];
    case FPGAGEN_S8:
        return ((const int8_t *)p)[i];
    case FPGAGEN_U16:
        return ((const uint16_t *)(const void *)p)[i];
    case FPGAGEN_S16:
        return ((const int16_t *)(const void *)p)[i];
    default:
        return ((const int32_t *)(const void *)p)[i];
    }
}

/* v lies in the range of the storage (the clamp bounds of the requantization). */
static inline void store(uint8_t *p, int32_t i, int32_t type, int32_t v)
{
    switch (type) {
    case FPGAGEN_U8:
        p[i] = (uint8_t)v;
        break;
    case FPGAGEN_S8:
        ((int8_t *)p)[i] = (int8_t)v;
        break;
    case FPGAGEN_U16:
        ((uint16_t *)(void *)p)[i] = (uint16_t)v;
        break;
    default:
        ((int16_t *)(void *)p)[i] = (int16_t)v;
        break;
    }
}

/* Any layer the fast path cannot take: one int64_t accumulator per output, unpacked weights
 * [out_c][kernel_h][kernel_w][in_c / groups] (see fpgagen_nn.h). */
void fpgagen_conv_wide(const fpgagen_conv_t *l, const uint8_t *x, uint8_t *y)
{
    const int32_t in_h = l->in_h, in_w = l->in_w, in_c = l->in_c;
    const int32_t out_h = l->out_h, out_w = l->out_w, out_c = l->out_c;
    const int32_t kernel_h = l->kernel_h, kernel_w = l->kernel_w;
    const int32_t cg = in_c / l->groups, og = out_c / l->groups;
    const int32_t in_type = l->in_type, out_type = l->out_type, w_type = l->w_type;
    const uint8_t *const w = w_type == FPGAGEN_S8 ? (const uint8_t *)l->weight
                           : w_type == FPGAGEN_S16 ? (const uint8_t *)(const void *)l->weight16
                                                   : (const uint8_t *)(const void *)l->weight32;
    const requant_t rq = requant_params(l->shift, l->lo, l->hi, l->round_even);
    const leaky_t lk = leaky_params(l->leaky, l->alpha, l->alpha_frac, l->shift, l->lo, l->hi, l->round_even);
    int32_t oy, ox, o, ky, kx, ci;

    for (oy = 0; oy < out_h; ++oy) {
        int32_t ky0, rows;
        const int32_t iy = oy * l->stride_h - l->pad_top;
        clip(iy, kernel_h, in_h, &ky0, &rows);
        for (ox = 0; ox < out_w; ++ox) {
            int32_t kx0, cols;
            const int32_t ix = ox * l->stride_w - l->pad_left;
            clip(ix, kernel_w, in_w, &kx0, &cols);
            for (o = 0; o < out_c; ++o) {
                const int32_t first = (o / og) * cg; /* the group's first input channel */
                int64_t acc = l->bias32 != 0 ? (int64_t)l->bias32[o] : l->bias64[o];
                for (ky = ky0; ky < ky0 + rows; ++ky) {
                    for (kx = kx0; kx < kx0 + cols; ++kx) {
                        const int32_t xi = ((iy + ky) * in_w + ix + kx) * in_c + first;
                        const int32_t wi = ((o * kernel_h + ky) * kernel_w + kx) * cg;
                        for (ci = 0; ci < cg; ++ci) {
                            acc += (int64_t)load(x, xi + ci, in_type) * load(w, wi + ci, w_type);
                        }
                    }
                }
                if (FPGAGEN_HAS_ALIGN(l->align)) { /* per-channel weight formats: pre-align (see requant_store) */
                    acc *= (int64_t)1 << l->align[o];
                }
                store(y, (oy * out_w + ox) * out_c + o, out_type, requant_leaky(acc, &rq, &lk));
            }
        }
    }
}

/* Pools visit output pixels in order; output pixel q is written where input pixel q was (same
 * channels, elements no wider than the input's), so the generator lets the output overwrite the
 * input when every window reads only pixels at or after its own position (the max pool reads
 * pixel q, if at all, as the window's first pixel before it writes; the average pool reads a
 * channel's window before writing it). */
#define FPGAGEN_MAXPOOL(T)                                                                      \
    do {                                                                                        \
        const T *const xs = (const T *)(const void *)x;                                         \
        T *const ys = (T *)(void *)y;                                                           \
        for (oy = 0; oy < out_h; ++oy) {                                                        \
            const int32_t iy = oy * stride_h - pad_top;                                         \
            const int32_t ky0 = max32(0, -iy);                                                  \
            const int32_t rows = min32(kernel_h, in_h - iy) - ky0;                              \
            for (ox = 0; ox < out_w; ++ox) {                                                    \
                const int32_t ix = ox * stride_w - pad_left;                                    \
                const int32_t kx0 = max32(0, -ix);                                              \
                const int32_t cols = min32(kernel_w, in_w - ix) - kx0;                          \
                /* the window's first pixel (every window holds one: padding never wins) */     \
                const T *const xw = xs + ((iy + ky0) * in_w + ix + kx0) * c_n;                  \
                T *const yp = ys + (oy * out_w + ox) * c_n;                                     \
                for (c = 0; c < c_n; ++c) { /* forward copy: yp is xw or lies before it */      \
                    yp[c] = xw[c];                                                              \
                }                                                                               \
                for (ky = 0; ky < rows; ++ky) {                                                 \
                    for (kx = ky == 0 ? 1 : 0; kx < cols; ++kx) {                               \
                        const T *const xp = xw + (ky * in_w + kx) * c_n;                        \
                        for (c = 0; c < c_n; ++c) {                                             \
                            yp[c] = xp[c] > yp[c] ? xp[c] : yp[c];                              \
                        }                                                                       \
                    }                                                                           \
                }                                                                               \
                if (clamp) { /* a fused ReLU/Clip */                                            \
                    for (c = 0; c < c_n; ++c) {                                                 \
                        yp[c] = (T)(yp[c] < lo ? lo : (yp[c] > hi ? hi : yp[c]));               \
                    }                                                                           \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    } while (0)

#if FPGAGEN_DSP
/* The max pool of 8-bit elements four channels at a time: per window pixel one word, a SIMD
 * subtraction (__usub8 / __ssub8) sets the GE flag of each byte where the new element is at
 * least the maximum so far, __sel keeps the larger byte; the fused clamp likewise. The maxima
 * are stored after the window is read (in place: see FPGAGEN_MAXPOOL). */
/* the fused clamp of four maxima m to [lo, hi] */
#define FPGAGEN_CLAMP4(SUB)                                                                     \
    do {                                                                                        \
        if (clamp) {                                                                            \
            (void)SUB(m, lo4);                                                                  \
            m = __sel(m, lo4);                                                                  \
            (void)SUB(hi4, m);                                                                  \
            m = __sel(m, hi4);                                                                  \
        }                                                                                       \
    } while (0)
#define FPGAGEN_MAX4(SUB, T)                                                                    \
    do {                                                                                        \
        for (oy = 0; oy < l->out_h; ++oy) {                                                     \
            const int32_t iy = oy * l->stride_h - l->pad_top;                                   \
            const int32_t ky0 = max32(0, -iy);                                                  \
            const int32_t rows = min32(l->kernel_h, l->in_h - iy) - ky0;                        \
            for (ox = 0; ox < l->out_w; ++ox) {                                                 \
                const int32_t ix = ox * l->stride_w - l->pad_left;                              \
                const int32_t kx0 = max32(0, -ix);                                              \
                const int32_t cols = min32(l->kernel_w, l->in_w - ix) - kx0;                    \
                const uint8_t *const xw = x + ((iy + ky0) * l->in_w + ix + kx0) * c_n;          \
                uint8_t *const yp = y + (oy * l->out_w + ox) * c_n;                             \
                for (c = 0; rows == 2 && cols == 2 && c + 4 <= c_n; c += 4) { /* 2 x 2 windows */ \
                    uint32_t m = load4(xw + c), v = load4(xw + c_n + c);                        \
                    (void)SUB(v, m);                                                            \
                    m = __sel(v, m);                                                            \
                    v = load4(xw + x_row + c);                                                  \
                    (void)SUB(v, m);                                                            \
                    m = __sel(v, m);                                                            \
                    v = load4(xw + x_row + c_n + c);                                            \
                    (void)SUB(v, m);                                                            \
                    m = __sel(v, m);                                                            \
                    FPGAGEN_CLAMP4(SUB);                                                        \
                    memcpy(yp + c, &m, 4);                                                      \
                }                                                                               \
                for (; c + 4 <= c_n; c += 4) {                                                  \
                    uint32_t m = load4(xw + c);                                                 \
                    for (ky = 0; ky < rows; ++ky) {                                             \
                        const uint8_t *xp = xw + ky * x_row + c;                                \
                        for (kx = 0; kx < cols; ++kx, xp += c_n) {                              \
                            const uint32_t v = load4(xp);                                       \
                            (void)SUB(v, m);                                                    \
                            m = __sel(v, m);                                                    \
                        }                                                                       \
                    }                                                                           \
                    FPGAGEN_CLAMP4(SUB);                                                        \
                    memcpy(yp + c, &m, 4);                                                      \
                }                                                                               \
                for (; c < c_n; ++c) { /* the channels beyond the last four */                  \
                    int32_t v = (T)xw[c];                                                       \
                    for (ky = 0; ky < rows; ++ky) {                                             \
                        for (kx = 0; kx < cols; ++kx) {                                         \
                            v = max32(v, (T)xw[ky * x_row + kx * c_n + c]);                     \
                        }                                                                       \
                    }                                                                           \
                    yp[c] = (uint8_t)(clamp ? min32(max32(v, lo), hi) : v);                     \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    } while (0)

static void maxpool_bytes(const fpgagen_pool_t *l, const uint8_t *x, uint8_t *y, int32_t clamp)
{
    const int32_t c_n = l->channels, x_row = l->in_w * l->channels;
    const int32_t lo = l->lo, hi = l->hi;
    const uint32_t lo4 = 0x01010101u * (uint8_t)lo, hi4 = 0x01010101u * (uint8_t)hi;
    int32_t oy, ox, c, ky, kx;
    if (l->in_type == FPGAGEN_S8) {
        FPGAGEN_MAX4(__ssub8, int8_t);
    } else {
        FPGAGEN_MAX4(__usub8, uint8_t);
    }
}

#undef FPGAGEN_MAX4
#undef FPGAGEN_CLAMP4
#endif

void fpgagen_maxpool(const fpgagen_pool_t *l, const uint8_t *x, uint8_t *y)
{
    const int32_t in_h = l->in_h, in_w = l->in_w, c_n = l->channels;
    const int32_t out_h = l->out_h, out_w = l->out_w;
    const int32_t kernel_h = l->kernel_h, kernel_w = l->kernel_w;
    const int32_t stride_h = l->stride_h, stride_w = l->stride_w;
    const int32_t pad_top = l->pad_top, pad_left = l->pad_left;
    const int32_t lo = l->lo, hi = l->hi;
    /* [lo, hi] is the format's range unless a ReLU/Clip is fused: clamp only then */
    const int32_t clamp = lo > type_min(l->out_type) || hi < type_max(l->out_type);
    int32_t oy, ox, c, ky, kx;

#if FPGAGEN_DSP
    if (l->in_type == FPGAGEN_U8 || l->in_type == FPGAGEN_S8) {
        maxpool_bytes(l, x, y, clamp);
        return;
    }
#endif
    switch (l->in_type) {
    case FPGAGEN_U8:
        FPGAGEN_MAXPOOL(uint8_t);
        break;
    case FPGAGEN_S8:
        FPGAGEN_MAXPOOL(int8_t);
        break;
    case FPGAGEN_U16:
        FPGAGEN_MAXPOOL(uint16_t);
        break;
    default:
        FPGAGEN_MAXPOOL(int16_t);
        break;
    }
}

#undef FPGAGEN_MAXPOOL

/* The sum of one channel's window (rows x cols pixels from xw, channel stride c_n). */
#define FPGAGEN_WINDOW_SUM(T)                                                                   \
    do {                                                                                        \
        const T *const xs = (const T *)(const void *)xw;                                        \
        for (ky = 0; ky < rows; ++ky) {                                                         \
            for (kx = 0; kx < cols; ++kx) {                                                     \
                sum += xs[(ky * in_w + kx) * c_n];                                              \
            }                                                                                   \
        }                                                                                       \
    } while (0)

static int32_t window_sum(const uint8_t *xw, int32_t type, int32_t rows, int32_t cols, int32_t in_w, int32_t c_n)
{
    int32_t sum = 0, ky, kx;
    switch (type) {
    case FPGAGEN_U8:
        FPGAGEN_WINDOW_SUM(uint8_t);
        break;
    case FPGAGEN_S8:
        FPGAGEN_WINDOW_SUM(int8_t);
        break;
    case FPGAGEN_U16:
        FPGAGEN_WINDOW_SUM(uint16_t);
        break;
    default:
        FPGAGEN_WINDOW_SUM(int16_t);
        break;
    }
    return sum;
}

#undef FPGAGEN_WINDOW_SUM

#if FPGAGEN_DSP
/* The window sums of four channels of 8-bit elements (rows x cols pixels from xw, x_row bytes
 * between rows, c_n between pixels): per pixel one word, its bytes (0, 2) and (1, 3) added into
 * 16-bit lanes (UXTAB16; int8_t elements as x + 128 = x ^ 0x80, less 128 per pixel at the
 * end), the lanes moved to 32-bit sums every 256 pixels, before they could overflow. */
static void window_sum4(const uint8_t *xw, int32_t x_signed, int32_t rows, int32_t cols, int32_t x_row, int32_t c_n,
                        int32_t *sums)
{
    const uint32_t flip = x_signed ? 0x80808080u : 0;
    uint32_t h02 = 0, h13 = 0, s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int32_t ky, kx, since = 0;
    for (ky = 0; ky < rows; ++ky) {
        const uint8_t *xp = xw + ky * x_row;
        for (kx = 0; kx < cols; ++kx, xp += c_n) {
            const uint32_t v = load4(xp) ^ flip;
            h02 = __uxtab16(h02, v);
            h13 = __uxtab16(h13, v >> 8);
            if (++since == 256) {
                s0 += h02 & 0xFFFFu;
                s2 += h02 >> 16;
                s1 += h13 & 0xFFFFu;
                s3 += h13 >> 16;
                h02 = h13 = 0;
                since = 0;
            }
        }
    }
    s0 += h02 & 0xFFFFu;
    s2 += h02 >> 16;
    s1 += h13 & 0xFFFFu;
    s3 += h13 >> 16;
    if (x_signed) {
        const uint32_t bias = 128u * (uint32_t)(max32(rows, 0) * max32(cols, 0));
        s0 -= bias;
        s1 -= bias;
        s2 -= bias;
        s3 -= bias;
    }
    sums[0] = low32(s0);
    sums[1] = low32(s1);
    sums[2] = low32(s2);
    sums[3] = low32(s3);
}
#endif

void fpgagen_avgpool(const fpgagen_pool_t *l, const uint8_t *x, uint8_t *y)
{
    const int32_t in_h = l->in_h, in_w = l->in_w, c_n = l->channels;
    const int32_t out_h = l->out_h, out_w = l->out_w;
    const int32_t kernel_h = l->kernel_h, kernel_w = l->kernel_w;
    const int32_t stride_h = l->stride_h, stride_w = l->stride_w;
    const int32_t pad_top = l->pad_top, pad_left = l->pad_left;
    const int32_t in_type = l->in_type, out_type = l->out_type;
    const int32_t size = 1 + (in_type >> 1); /* bytes per input element */
    const int32_t *const recip = l->recip;
    const int32_t per_position = l->recip_count != 1;
    const requant_t rq = requant_params(l->shift, l->lo, l->hi, l->round_even);
    const leaky_t lk = leaky_params(l->leaky, l->alpha, l->alpha_frac, l->shift, l->lo, l->hi, l->round_even);
    int32_t oy, ox, c;

    for (oy = 0; oy < out_h; ++oy) {
        const int32_t iy = oy * stride_h - pad_top;
        const int32_t ky0 = max32(0, -iy);
        const int32_t rows = min32(kernel_h, in_h - iy) - ky0;
        for (ox = 0; ox < out_w; ++ox) {
            const int32_t ix = ox * stride_w - pad_left;
            const int32_t kx0 = max32(0, -ix);
            const int32_t cols = min32(kernel_w, in_w - ix) - kx0;
            const int64_t r = recip[per_position ? oy * out_w + ox : 0];
            const uint8_t *const xw = x + ((iy + ky0) * in_w + ix + kx0) * c_n * size;
            c = 0;
#if FPGAGEN_DSP
            for (; size == 1 && c + 4 <= c_n; c += 4) { /* four 8-bit channels at a time */
                int32_t sums[4], k;
                window_sum4(xw + c, in_type & 1, rows, cols, in_w * c_n, c_n, sums);
                for (k = 0; k < 4; ++k) {
                    store(y, (oy * out_w + ox) * c_n + c + k, out_type, requant_leaky(sums[k] * r, &rq, &lk));
                }
            }
#endif
            for (; c < c_n; ++c) { /* padding adds 0 */
                const int32_t sum = window_sum(xw + c * size, in_type, rows, cols, in_w, c_n);
                store(y, (oy * out_w + ox) * c_n + c, out_type, requant_leaky(sum * r, &rq, &lk));
            }
        }
    }
}

void fpgagen_add(const fpgagen_add_t *l, const uint8_t *a, const uint8_t *b, uint8_t *y)
{
    const int32_t n = l->n;
    const int32_t a_type = l->a_type, b_type = l->b_type, out_type = l->out_type;
    const int64_t scale_a = (int64_t)1 << l->align_a; /* a left shift, without shifting negatives */
    const int64_t scale_b = (int64_t)1 << l->align_b;
    const requant_t rq = requant_params(l->shift, l->lo, l->hi, l->round_even);
    const leaky_t lk = leaky_params(l->leaky, l->alpha, l->alpha_frac, l->shift, l->lo, l->hi, l->round_even);
    /* 8-bit tensors whose sums stay below 2**29 after any left shift: 32-bit arithmetic only
     * (the narrow requantization), the element types resolved once (FPGAGEN_ADD8) */
    const int32_t align_max = max32(l->align_a, l->align_b), up = max32(0, -l->shift);
    const int32_t narrow = a_type <= FPGAGEN_S8 && b_type <= FPGAGEN_S8 && out_type <= FPGAGEN_S8
                           && align_max + up <= 19 /* |a| + |b| <= 2 * 255 * 2**align_max < 2**28 */
                           && !l->leaky;
    int32_t i;

#define FPGAGEN_ADD8(TA, TB)                                                                    \
    do {                                                                                        \
        const TA *const as = (const TA *)(const void *)a;                                       \
        const TB *const bs = (const TB *)(const void *)b;                                       \
        const int32_t sa = (int32_t)scale_a, sb = (int32_t)scale_b;                             \
        for (i = 0; i < n; ++i) { /* element i of a and b is read before y[i] is written */    \
            y[i] = (uint8_t)requant_narrow((int32_t)as[i] * sa + (int32_t)bs[i] * sb, &rq);      \
        }                                                                                       \
    } while (0)
    if (narrow) {
        if (a_type == FPGAGEN_S8 && b_type == FPGAGEN_S8) {
            FPGAGEN_ADD8(int8_t, int8_t);
        } else if (a_type == FPGAGEN_S8) {
            FPGAGEN_ADD8(int8_t, uint8_t);
        } else if (b_type == FPGAGEN_S8) {
            FPGAGEN_ADD8(uint8_t, int8_t);
        } else {
            FPGAGEN_ADD8(uint8_t, uint8_t);
        }
        return;
    }
#undef FPGAGEN_ADD8
    for (i = 0; i < n; ++i) { /* element i of a and b is read before y[i] is written */
        const int64_t va = load(a, i, a_type), vb = load(b, i, b_type);
        store(y, i, out_type, requant_leaky(va * scale_a + vb * scale_b, &rq, &lk));
    }
}

void fpgagen_act(const fpgagen_act_t *l, const uint8_t *x, uint8_t *y)
{
    const requant_t rq = requant_params(l->shift, l->lo, l->hi, l->round_even);
    const leaky_t lk = leaky_params(l->leaky, l->alpha, l->alpha_frac, l->shift, l->lo, l->hi, l->round_even);
    int32_t i;

    for (i = 0; i < l->n; ++i) {
        store(y, i, l->out_type, requant_leaky(load(x, i, l->in_type), &rq, &lk));
    }
}

void fpgagen_concat(const fpgagen_concat_t *l, const uint8_t *x, uint8_t *y)
{
    const requant_t rq = requant_params(l->shift, l->lo, l->hi, l->round_even);
    const leaky_t lk = leaky_params(l->leaky, l->alpha, l->alpha_frac, l->shift, l->lo, l->hi, l->round_even);
    const int32_t in_c = l->in_c, out_c = l->out_c, offset = l->offset;
    int32_t p, k;

    for (p = 0; p < l->pixels; ++p) {
        for (k = 0; k < in_c; ++k) {
            const int32_t src = l->index != 0 ? l->index[k] : p * in_c + k;
            store(y, p * out_c + offset + k, l->out_type, requant_leaky(load(x, src, l->in_type), &rq, &lk));
        }
    }
}

void fpgagen_resize(const fpgagen_resize_t *l, const uint8_t *x, uint8_t *y)
{
    const int32_t size = 1 + (l->type >> 1); /* bytes per element */
    const int32_t pixel = l->channels * size, out_w = l->in_w * l->fw;
    int32_t iy, ix, r, k;

    for (iy = 0; iy < l->in_h; ++iy) {
        uint8_t *const row = y + (int64_t)iy * l->fh * out_w * pixel;
        for (ix = 0; ix < l->in_w; ++ix) { /* the first output row of this input row */
            for (k = 0; k < l->fw; ++k) {
                memcpy(row + (ix * l->fw + k) * pixel, x + (iy * l->in_w + ix) * pixel, (size_t)pixel);
            }
        }
        for (r = 1; r < l->fh; ++r) { /* then that row again */
            memcpy(row + r * out_w * pixel, row, (size_t)(out_w * pixel));
        }
    }
}

void fpgagen_pad(const fpgagen_pad_t *l, const uint8_t *x, uint8_t *y)
{
    const int32_t size = 1 + (l->type >> 1);
    const int32_t pixel = l->channels * size;
    const int32_t out_w = l->left + l->in_w + l->right, out_h = l->top + l->in_h + l->bottom;
    int32_t iy;

    memset(y, 0, (size_t)(out_h * out_w * pixel)); /* 0 is the integer 0 in every format */
    for (iy = 0; iy < l->in_h; ++iy) {
        memcpy(y + ((iy + l->top) * out_w + l->left) * pixel, x + iy * l->in_w * pixel, (size_t)(l->in_w * pixel));
    }
}
