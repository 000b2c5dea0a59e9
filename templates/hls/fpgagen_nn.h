// fpgagen_nn.h - the hand-written layer library of fpgagen's HLS C++ backend.
//
// Every generated model is thin glue over these function templates: one config struct per
// layer (sizes, formats as <cstdint> types, shift and clamp bounds, PE/SIMD) and one call.
// The numerics are SPEC.md section 3, bit for bit with fpgagen's NumPy golden model:
//
//   conv / dense : acc = B + sum(w * x) in CFG::acc_t (wide enough that it never overflows),
//                  then requantize(acc)
//   avgpool / gap: acc = (window sum) * reciprocal, then requantize(acc)
//   add          : acc = (a << align0) + (b << align1), then requantize(acc); add_gather reads
//                  b through an index table when it is stored in another order than a
//   maxpool      : exact; padding never wins; then clamp to [LO, HI] (a fused ReLU/Clip)
//   leakyrelu    : acc = x, then requantize(acc) with the LeakyRelu's two paths
//   concat       : each input requantized by its own SHIFT (acc = x), placed at its channels;
//                  concat_input_gather reads a vector input through an index table when it is a
//                  flattened feature map (stored in HWC order)
//   resize_nearest, pad: exact (pixel replication, zeros)
//
// requantize() is the only place rounding is written: round half away from zero by SHIFT bits
// (a left shift when SHIFT <= 0), then saturate() to [LO, HI] (the output format's range,
// narrowed by a fused ReLU/Clip); saturate() is the only place clamping is written.
// A fused LeakyRelu (a CFG with LEAKY = true, ALPHA, ALPHA_FRAC: alpha ~= ALPHA * 2**-ALPHA_FRAC)
// gives every requantizing kernel two paths: acc >= 0 as above, acc < 0 requantizes acc * ALPHA
// by SHIFT + ALPHA_FRAC instead (requantize_leaky). A CFG without LEAKY has no LeakyRelu.
//
// Feature maps are flat arrays in HWC order (channel fastest, then column, then row), the
// order the top function streams them in; vectors are in index order.
//
// Synthesis: no dynamic memory, no recursion, static sizes, C++14 (Vitis HLS's language level;
// the Makefile's g++ C simulation and run_hls.tcl both compile it with -std=c++14). `#pragma HLS` lines are ignored by g++; compile
// with -Wno-unknown-pragmas, as hls4ml does. Signed right shifts are arithmetic (two's
// complement), as in g++, clang and Vitis HLS.
#ifndef FPGAGEN_NN_H
#define FPGAGEN_NN_H

#include <cstdint>
#include <limits>
#include <type_traits>

#ifndef __SYNTHESIS__
#include <cstdio>
#endif

// Loop labels name the loops in HLS reports; g++ -Wall would call them unused.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-label"
#endif

namespace fpgagen_nn {

namespace detail {

// Product type of a weight and an activation: int32_t holds every product of two operands
// of up to 8 and 16 bits; two 16-bit operands (or wider) multiply in int64_t.
template <typename W, typename X>
struct product {
    using type = typename std::conditional<(sizeof(W) + sizeof(X) <= 3), int32_t, int64_t>::type;
};

// acc * 2**-S rounded half away from zero, for S >= 1, without a wider type:
// floor(acc / 2**S) plus one when the remainder is above half (or exactly half and acc >= 0).
// This equals SPEC.md's (acc + 2**(S-1) - (acc < 0)) >> S, which could overflow acc's type.
// EVEN: round half to even instead (SPEC.md 3's nearest-even mode): exactly half rounds up
// when floor(acc / 2**S) is odd, i.e. (acc + 2**(S-1) - 1 + ((acc >> S) & 1)) >> S.
template <int S, typename Acc, bool EVEN = false, bool WIDE = (S >= 8 * static_cast<int>(sizeof(Acc)))>
struct round_shift {
    static Acc apply(Acc acc) {
#pragma HLS INLINE
        using U = typename std::make_unsigned<Acc>::type;
        const Acc floor_q = static_cast<Acc>(acc >> S);
        const U rem = static_cast<U>(static_cast<U>(acc) & static_cast<U>((U(1) << S) - 1U));
        const U half = static_cast<U>(U(1) << (S - 1));
        const bool tie_up = EVEN ? ((floor_q & 1) != 0) : (acc >= 0);
        const bool up = (rem > half) || (rem == half && tie_up);
        return static_cast<Acc>(floor_q + (up ? 1 : 0));
    }
};

// S >= the accumulator's width: |acc / 2**S| <= 1/2, which rounds to 0 except exactly -1/2
// (half away from zero: -1; half to even: 0).
template <int S, typename Acc, bool EVEN>
struct round_shift<S, Acc, EVEN, true> {
    static Acc apply(Acc acc) {
#pragma HLS INLINE
        return static_cast<Acc>((!EVEN && S == 8 * static_cast<int>(sizeof(Acc)) &&
                                 acc == std::numeric_limits<Acc>::min()) ? -1 : 0);
    }
};

// v clamped to [LO, HI], as Out (which holds every value of [LO, HI]).
template <int64_t LO, int64_t HI, typename Out, typename T>
inline Out saturate(T v) {
#pragma HLS INLINE
    return (v < LO) ? static_cast<Out>(LO) : (v > HI) ? static_cast<Out>(HI) : static_cast<Out>(v);
}

template <int SHIFT, int64_t LO, int64_t HI, typename Out, typename Acc, bool RIGHT = (SHIFT > 0), bool EVEN = false>
struct requantizer {
    // SHIFT > 0: round, then saturate.
    static Out apply(Acc acc) {
#pragma HLS INLINE
        return saturate<LO, HI, Out>(round_shift<SHIFT, Acc, EVEN>::apply(acc));
    }
};

template <int SHIFT, int64_t LO, int64_t HI, typename Out, typename Acc, bool EVEN>
struct requantizer<SHIFT, LO, HI, Out, Acc, false, EVEN> {
    // SHIFT <= 0: acc * 2**-SHIFT is exact; saturate before shifting so nothing overflows.
    static constexpr int L = -SHIFT < 62 ? -SHIFT : 62;
    static Out apply(Acc acc) {
#pragma HLS INLINE
        const int64_t a = static_cast<int64_t>(acc);
        if (-SHIFT >= 62) {  // only 0 survives such a shift unsaturated
            return (a > 0) ? static_cast<Out>(HI) : (a < 0) ? static_cast<Out>(LO) : static_cast<Out>(0);
        }
        // a * 2**L > HI  <=>  a > floor(HI / 2**L);  a * 2**L < LO  <=>  a < -floor(-LO / 2**L)
        if (a > (HI >> L)) return static_cast<Out>(HI);
        if (a < -((-LO) >> L)) return static_cast<Out>(LO);
        return static_cast<Out>(a * (int64_t(1) << L));
    }
};

}  // namespace detail

// SPEC.md section 3 requantization: round half away from zero (EVEN: half to even) by SHIFT bits
// (SHIFT <= 0: exact left shift), saturate to [LO, HI]. The one place fpgagen's C++ rounds or saturates.
template <int SHIFT, int64_t LO, int64_t HI, typename Out, bool EVEN = false, typename Acc>
inline Out requantize(Acc acc) {
#pragma HLS INLINE
    static_assert(std::is_signed<Acc>::value, "requantize: the accumulator type must be signed");
    static_assert(LO <= 0 && 0 <= HI, "requantize: the clamp range [LO, HI] must contain 0");
    static_assert(LO >= std::numeric_limits<Out>::lowest() && HI <= std::numeric_limits<Out>::max(),
                  "requantize: [LO, HI] must fit the output type");
    return detail::requantizer<SHIFT, LO, HI, Out, Acc, (SHIFT > 0), EVEN>::apply(acc);
}

namespace detail {

// int32_t for a type T of up to 16 bits, else int64_t. It holds every value of T (the
// accumulator of leakyrelu and concat, which requantize their input directly) and the product
// of a T and a LeakyRelu slope ALPHA of up to 9 signed bits (the 64-bit product of a wider
// accumulator is exact because fpgagen's HLS backend refuses a layer whose acc_width plus
// ALPHA's bits exceed 64).
template <typename T>
struct widened {
    using type = typename std::conditional<(sizeof(T) <= 2), int32_t, int64_t>::type;
};

}  // namespace detail

// SPEC.md section 3 requantization with a fused LeakyRelu of slope ALPHA * 2**-ALPHA_FRAC:
// acc >= 0: requantize<SHIFT>(acc); acc < 0: acc * ALPHA rounded half away from zero by
// SHIFT + ALPHA_FRAC bits (an exact left shift when that is <= 0); both saturate to [LO, HI].
template <int SHIFT, int64_t LO, int64_t HI, typename Out, int ALPHA, int ALPHA_FRAC, bool EVEN = false,
          typename Acc>
inline Out requantize_leaky(Acc acc) {
#pragma HLS INLINE
    static_assert(ALPHA >= -256 && ALPHA <= 255, "requantize_leaky: ALPHA must fit 9 signed bits");
    using prod_t = typename detail::widened<Acc>::type;
    const Out positive = requantize<SHIFT, LO, HI, Out, EVEN>(acc);
    // only a negative acc is multiplied (a non-negative one would need no bound on acc * ALPHA)
    const prod_t negative_acc = static_cast<prod_t>(acc < 0 ? acc : Acc(0));
    const prod_t prod = static_cast<prod_t>(negative_acc * static_cast<prod_t>(ALPHA));
    const Out negative = detail::requantizer<SHIFT + ALPHA_FRAC, LO, HI, Out, prod_t, (SHIFT + ALPHA_FRAC > 0),
                                             EVEN>::apply(prod);
    return (acc >= 0) ? positive : negative;
}

namespace detail {

template <typename...>
struct make_void {
    using type = void;
};

// The LeakyRelu of a layer's CFG: none unless the CFG declares LEAKY (then ALPHA, ALPHA_FRAC).
template <class CFG, typename = void>
struct cfg_leaky {
    static constexpr bool on = false;
    static constexpr int alpha = 0, frac = 0;
};

template <class CFG>
struct cfg_leaky<CFG, typename make_void<decltype(CFG::LEAKY)>::type> {
    static constexpr bool on = CFG::LEAKY;
    static constexpr int alpha = CFG::ALPHA, frac = CFG::ALPHA_FRAC;
};

// The rounding of a layer's CFG: half away from zero unless the CFG declares ROUND_EVEN.
template <class CFG, typename = void>
struct cfg_even {
    static constexpr bool on = false;
};

template <class CFG>
struct cfg_even<CFG, typename make_void<decltype(CFG::ROUND_EVEN)>::type> {
    static constexpr bool on = CFG::ROUND_EVEN;
};

template <bool LEAKY>
struct leaky_switch {  // no LeakyRelu: today's requantizer
    template <int SHIFT, int64_t LO, int64_t HI, typename Out, int ALPHA, int ALPHA_FRAC, bool EVEN, typename Acc>
    static Out apply(Acc acc) {
#pragma HLS INLINE
        return requantize<SHIFT, LO, HI, Out, EVEN>(acc);
    }
};

template <>
struct leaky_switch<true> {
    template <int SHIFT, int64_t LO, int64_t HI, typename Out, int ALPHA, int ALPHA_FRAC, bool EVEN, typename Acc>
    static Out apply(Acc acc) {
#pragma HLS INLINE
        return requantize_leaky<SHIFT, LO, HI, Out, ALPHA, ALPHA_FRAC, EVEN>(acc);
    }
};

}  // namespace detail

// The requantizer of a layer: requantize by SHIFT to CFG's [LO, HI] and out_t, with CFG's
// LeakyRelu if it has one and its rounding (ROUND_EVEN). Every requantizing kernel calls this.
template <class CFG, int SHIFT, typename Acc>
inline typename CFG::out_t layer_requantize(Acc acc) {
#pragma HLS INLINE
    using leaky = detail::cfg_leaky<CFG>;
    return detail::leaky_switch<leaky::on>::template apply<SHIFT, CFG::LO, CFG::HI, typename CFG::out_t,
                                                           leaky::alpha, leaky::frac, detail::cfg_even<CFG>::on>(acc);
}

namespace detail {
// Per-channel weight formats (SPEC.md 3): a CFG with ALIGN_MAX and align(c) pre-aligns output
// channel c's accumulator by a left shift of align(c) = SHIFT - s_c bits (exact: acc_t holds the
// pre-aligned accumulator), so requantizing it by the layer's SHIFT rounds it exactly as by its
// own shift s_c. A CFG without them (per-tensor) passes the accumulator through.
template <class CFG, typename = void>
struct cfg_align {
    template <typename Acc>
    static Acc apply(Acc acc, int) {
#pragma HLS INLINE
        return acc;
    }
};

template <class CFG>
struct cfg_align<CFG, typename make_void<decltype(CFG::ALIGN_MAX)>::type> {
    template <typename Acc>
    static Acc apply(Acc acc, int c) {
#pragma HLS INLINE
        static_assert(CFG::ALIGN_MAX >= 0 && CFG::ALIGN_MAX < 8 * static_cast<int>(sizeof(Acc)) - 1,
                      "channel_align: ALIGN_MAX out of range");
        return static_cast<Acc>(acc * static_cast<Acc>(Acc(1) << CFG::align(c)));
    }
};
}  // namespace detail

// Output channel c's accumulator, pre-aligned for the layer's requantizer (see detail::cfg_align).
template <class CFG, typename Acc>
inline Acc channel_align(Acc acc, int c) {
#pragma HLS INLINE
    return detail::cfg_align<CFG>::apply(acc, c);
}

// acc * 2**S for an alignment shift S >= 0 (exact: the accumulator is wide enough).
template <int S, typename Acc, typename T>
inline Acc align(T v) {
#pragma HLS INLINE
    static_assert(S >= 0 && S < 8 * static_cast<int>(sizeof(Acc)) - 1, "align: shift out of range");
    return static_cast<Acc>(static_cast<Acc>(v) * static_cast<Acc>(Acc(1) << S));
}

// ---------------------------------------------------------------------------------------------
// Conv2d, HWC in and out, zero padding, groups (depthwise when GROUPS == IN_C).
// Weights [OUT_C][IN_C/GROUPS][KERNEL_H][KERNEL_W] (ONNX order), biases B at the accumulator frac.
// PE output channels and SIMD input channels of KU kernel taps of one row per cycle (KU divides
// KERNEL_W; a config without KU unrolls one tap).
namespace detail {
template <class CFG, class = void>
struct cfg_taps { static constexpr int value = 1; };
template <class CFG>
struct cfg_taps<CFG, typename make_void<decltype(CFG::KU)>::type> { static constexpr int value = CFG::KU; };
}  // namespace detail

template <class CFG>
void conv2d(const typename CFG::in_t x[CFG::IN_H * CFG::IN_W * CFG::IN_C],
            typename CFG::out_t y[CFG::OUT_H * CFG::OUT_W * CFG::OUT_C],
            const typename CFG::w_t w[CFG::OUT_C][CFG::IN_C / CFG::GROUPS][CFG::KERNEL_H][CFG::KERNEL_W],
            const typename CFG::acc_t b[CFG::OUT_C]) {
    using acc_t = typename CFG::acc_t;
    using prod_t = typename detail::product<typename CFG::w_t, typename CFG::in_t>::type;
    constexpr int CIG = CFG::IN_C / CFG::GROUPS;   // input channels per group
    constexpr int COG = CFG::OUT_C / CFG::GROUPS;  // output channels per group
    static_assert(CFG::IN_C % CFG::GROUPS == 0 && CFG::OUT_C % CFG::GROUPS == 0, "conv2d: GROUPS must divide IN_C and OUT_C");
    static_assert(CFG::OUT_C % CFG::PE == 0, "conv2d: PE must divide OUT_C");
    static_assert(CIG % CFG::SIMD == 0, "conv2d: SIMD must divide IN_C / GROUPS");
    constexpr int KU = detail::cfg_taps<CFG>::value;
    static_assert(KU >= 1 && CFG::KERNEL_W % KU == 0, "conv2d: KU must divide KERNEL_W");
    static_assert(CFG::OUT_H == (CFG::IN_H + CFG::PAD_TOP + CFG::PAD_BOTTOM - CFG::KERNEL_H) / CFG::STRIDE_H + 1, "conv2d: OUT_H");
    static_assert(CFG::OUT_W == (CFG::IN_W + CFG::PAD_LEFT + CFG::PAD_RIGHT - CFG::KERNEL_W) / CFG::STRIDE_W + 1, "conv2d: OUT_W");
conv_rows:
    for (int oh = 0; oh < CFG::OUT_H; ++oh) {
    conv_cols:
        for (int ow = 0; ow < CFG::OUT_W; ++ow) {
        conv_pe_blocks:
            for (int cb = 0; cb < CFG::OUT_C / CFG::PE; ++cb) {
                acc_t acc[CFG::PE];
#pragma HLS ARRAY_PARTITION variable=acc complete
            conv_bias:
                for (int p = 0; p < CFG::PE; ++p) {
#pragma HLS UNROLL
                    acc[p] = b[cb * CFG::PE + p];
                }
            conv_kh:
                for (int kh = 0; kh < CFG::KERNEL_H; ++kh) {
                conv_kw:
                    for (int kwb = 0; kwb < CFG::KERNEL_W / KU; ++kwb) {
                    conv_simd_blocks:
                        for (int sb = 0; sb < CIG / CFG::SIMD; ++sb) {
#pragma HLS PIPELINE II=1
                        conv_taps:
                            for (int u = 0; u < KU; ++u) {
#pragma HLS UNROLL
                                const int kw = kwb * KU + u;
                                const int ih = oh * CFG::STRIDE_H + kh - CFG::PAD_TOP;
                                const int iw = ow * CFG::STRIDE_W + kw - CFG::PAD_LEFT;
                                const bool inside = ih >= 0 && ih < CFG::IN_H && iw >= 0 && iw < CFG::IN_W;
                            conv_pe:
                                for (int p = 0; p < CFG::PE; ++p) {
#pragma HLS UNROLL
                                    const int co = cb * CFG::PE + p;
                                    const int ci0 = (co / COG) * CIG;
                                conv_simd:
                                    for (int s = 0; s < CFG::SIMD; ++s) {
#pragma HLS UNROLL
                                        const int ci = sb * CFG::SIMD + s;
                                        const prod_t xv = inside ? static_cast<prod_t>(x[(ih * CFG::IN_W + iw) * CFG::IN_C + ci0 + ci]) : prod_t(0);
                                        acc[p] = static_cast<acc_t>(acc[p] + static_cast<prod_t>(w[co][ci][kh][kw]) * xv);
                                    }
                                }
                            }
                        }
                    }
                }
            conv_out:
                for (int p = 0; p < CFG::PE; ++p) {
#pragma HLS UNROLL
                    y[(oh * CFG::OUT_W + ow) * CFG::OUT_C + cb * CFG::PE + p] =
                        layer_requantize<CFG, CFG::SHIFT>(channel_align<CFG>(acc[p], cb * CFG::PE + p));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Dense (fully connected): weights [OUT][IN] with the columns in the input buffer's order.
template <class CFG>
void dense(const typename CFG::in_t x[CFG::IN], typename CFG::out_t y[CFG::OUT],
           const typename CFG::w_t w[CFG::OUT][CFG::IN], const typename CFG::acc_t b[CFG::OUT]) {
    using acc_t = typename CFG::acc_t;
    using prod_t = typename detail::product<typename CFG::w_t, typename CFG::in_t>::type;
    static_assert(CFG::OUT % CFG::PE == 0, "dense: PE must divide OUT");
    static_assert(CFG::IN % CFG::SIMD == 0, "dense: SIMD must divide IN");
dense_pe_blocks:
    for (int ob = 0; ob < CFG::OUT / CFG::PE; ++ob) {
        acc_t acc[CFG::PE];
#pragma HLS ARRAY_PARTITION variable=acc complete
    dense_bias:
        for (int p = 0; p < CFG::PE; ++p) {
#pragma HLS UNROLL
            acc[p] = b[ob * CFG::PE + p];
        }
    dense_simd_blocks:
        for (int ib = 0; ib < CFG::IN / CFG::SIMD; ++ib) {
#pragma HLS PIPELINE II=1
        dense_pe:
            for (int p = 0; p < CFG::PE; ++p) {
#pragma HLS UNROLL
            dense_simd:
                for (int s = 0; s < CFG::SIMD; ++s) {
#pragma HLS UNROLL
                    const int i = ib * CFG::SIMD + s;
                    acc[p] = static_cast<acc_t>(acc[p] + static_cast<prod_t>(w[ob * CFG::PE + p][i]) *
                                                             static_cast<prod_t>(x[i]));
                }
            }
        }
    dense_out:
        for (int p = 0; p < CFG::PE; ++p) {
#pragma HLS UNROLL
            y[ob * CFG::PE + p] = layer_requantize<CFG, CFG::SHIFT>(channel_align<CFG>(acc[p], ob * CFG::PE + p));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Max pooling, HWC; padding never wins (the output format is the input format). The maximum is
// clamped to [LO, HI]: the format's range, or narrowed by a fused ReLU/Clip (which commutes
// with the maximum, so fpgagen moves it here when no conv/dense before the pool can take it).
template <class CFG>
void maxpool(const typename CFG::in_t x[CFG::IN_H * CFG::IN_W * CFG::C],
             typename CFG::out_t y[CFG::OUT_H * CFG::OUT_W * CFG::C]) {
    using in_t = typename CFG::in_t;
    static_assert(std::is_same<in_t, typename CFG::out_t>::value, "maxpool: output type must be the input type");
    static_assert(CFG::LO <= CFG::HI && CFG::LO >= std::numeric_limits<in_t>::lowest() &&
                  CFG::HI <= std::numeric_limits<in_t>::max(), "maxpool: [LO, HI] must fit the data type");
maxpool_rows:
    for (int oh = 0; oh < CFG::OUT_H; ++oh) {
    maxpool_cols:
        for (int ow = 0; ow < CFG::OUT_W; ++ow) {
        maxpool_channels:
            for (int c = 0; c < CFG::C; ++c) {
#pragma HLS PIPELINE II=1
                in_t m = std::numeric_limits<in_t>::lowest();
            maxpool_kh:
                for (int kh = 0; kh < CFG::KERNEL_H; ++kh) {
                maxpool_kw:
                    for (int kw = 0; kw < CFG::KERNEL_W; ++kw) {
                        const int ih = oh * CFG::STRIDE_H + kh - CFG::PAD_TOP;
                        const int iw = ow * CFG::STRIDE_W + kw - CFG::PAD_LEFT;
                        if (ih >= 0 && ih < CFG::IN_H && iw >= 0 && iw < CFG::IN_W) {
                            const in_t v = x[(ih * CFG::IN_W + iw) * CFG::C + c];
                            m = (v > m) ? v : m;
                        }
                    }
                }
                y[(oh * CFG::OUT_W + ow) * CFG::C + c] = detail::saturate<CFG::LO, CFG::HI, in_t>(m);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Average pooling, HWC: zero-padded window sum times an integer reciprocal, then requantize.
// recip holds RECIP_SIZE reciprocals: 1 (every window counts the same) or OUT_H * OUT_W (the
// count of real pixels varies at the border: count_include_pad = 0).
template <class CFG>
void avgpool(const typename CFG::in_t x[CFG::IN_H * CFG::IN_W * CFG::C],
             typename CFG::out_t y[CFG::OUT_H * CFG::OUT_W * CFG::C],
             const typename CFG::acc_t recip[CFG::RECIP_SIZE]) {
    using acc_t = typename CFG::acc_t;
    static_assert(CFG::RECIP_SIZE == 1 || CFG::RECIP_SIZE == CFG::OUT_H * CFG::OUT_W, "avgpool: RECIP_SIZE");
avgpool_rows:
    for (int oh = 0; oh < CFG::OUT_H; ++oh) {
    avgpool_cols:
        for (int ow = 0; ow < CFG::OUT_W; ++ow) {
        avgpool_channels:
            for (int c = 0; c < CFG::C; ++c) {
#pragma HLS PIPELINE II=1
                acc_t sum = 0;
            avgpool_kh:
                for (int kh = 0; kh < CFG::KERNEL_H; ++kh) {
                avgpool_kw:
                    for (int kw = 0; kw < CFG::KERNEL_W; ++kw) {
                        const int ih = oh * CFG::STRIDE_H + kh - CFG::PAD_TOP;
                        const int iw = ow * CFG::STRIDE_W + kw - CFG::PAD_LEFT;
                        if (ih >= 0 && ih < CFG::IN_H && iw >= 0 && iw < CFG::IN_W) {
                            sum = static_cast<acc_t>(sum + x[(ih * CFG::IN_W + iw) * CFG::C + c]);
                        }
                    }
                }
                const acc_t r = recip[CFG::RECIP_SIZE == 1 ? 0 : oh * CFG::OUT_W + ow];
                y[(oh * CFG::OUT_W + ow) * CFG::C + c] =
                    layer_requantize<CFG, CFG::SHIFT>(static_cast<acc_t>(sum * r));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Global average pooling, HWC in, C out: sum over H x W times RECIP, then requantize.
template <class CFG>
void gap(const typename CFG::in_t x[CFG::IN_H * CFG::IN_W * CFG::C], typename CFG::out_t y[CFG::C]) {
    using acc_t = typename CFG::acc_t;
    acc_t sum[CFG::C];
gap_clear:
    for (int c = 0; c < CFG::C; ++c) {
        sum[c] = 0;
    }
gap_pixels:
    for (int i = 0; i < CFG::IN_H * CFG::IN_W; ++i) {
    gap_channels:
        for (int c = 0; c < CFG::C; ++c) {
#pragma HLS PIPELINE II=1
            sum[c] = static_cast<acc_t>(sum[c] + x[i * CFG::C + c]);
        }
    }
gap_out:
    for (int c = 0; c < CFG::C; ++c) {
#pragma HLS PIPELINE II=1
        y[c] = layer_requantize<CFG, CFG::SHIFT>(
            static_cast<acc_t>(sum[c] * static_cast<acc_t>(CFG::RECIP)));
    }
}

// ---------------------------------------------------------------------------------------------
// Residual add: both inputs aligned to the larger frac by left shifts, added, requantized.
template <class CFG>
inline typename CFG::out_t add_one(typename CFG::in0_t a, typename CFG::in1_t b) {
#pragma HLS INLINE
    using acc_t = typename CFG::acc_t;
    const acc_t sum = static_cast<acc_t>(align<CFG::ALIGN0, acc_t>(a) + align<CFG::ALIGN1, acc_t>(b));
    return layer_requantize<CFG, CFG::SHIFT>(sum);
}

template <class CFG>
void add(const typename CFG::in0_t a[CFG::SIZE], const typename CFG::in1_t b[CFG::SIZE],
         typename CFG::out_t y[CFG::SIZE]) {
add_elements:
    for (int i = 0; i < CFG::SIZE; ++i) {
#pragma HLS PIPELINE II=1
        y[i] = add_one<CFG>(a[i], b[i]);
    }
}

// The same add when b is stored in another order than a (e.g. a feature map flattened in HWC
// order and a dense layer's vector): element i of a (and of y) meets b[index[i]].
template <class CFG, typename Index>
void add_gather(const typename CFG::in0_t a[CFG::SIZE], const typename CFG::in1_t b[CFG::SIZE],
                typename CFG::out_t y[CFG::SIZE], const Index index[CFG::SIZE]) {
add_gather_elements:
    for (int i = 0; i < CFG::SIZE; ++i) {
#pragma HLS PIPELINE II=1
        y[i] = add_one<CFG>(a[i], b[index[i]]);
    }
}

// ---------------------------------------------------------------------------------------------
// Standalone LeakyRelu (elementwise, any buffer order): the input integers are the accumulator,
// requantized by SHIFT = Fx - Fy with CFG's LeakyRelu (LEAKY, ALPHA, ALPHA_FRAC). A CFG without
// LEAKY is a standalone ReLU/Clip (the requantizer's clamp to [LO, HI] alone).
template <class CFG>
void leakyrelu(const typename CFG::in_t x[CFG::SIZE], typename CFG::out_t y[CFG::SIZE]) {
    using acc_t = typename detail::widened<typename CFG::in_t>::type;
leakyrelu_elements:
    for (int i = 0; i < CFG::SIZE; ++i) {
#pragma HLS PIPELINE II=1
        y[i] = layer_requantize<CFG, CFG::SHIFT>(static_cast<acc_t>(x[i]));
    }
}

// ---------------------------------------------------------------------------------------------
// Channel concat, HWC (a vector is PIXELS = 1): output pixel p holds CFG::C channels, input
// IN's IN::C of them at channels IN::OFFSET.., each requantized by IN::SHIFT = Fx_in - Fy (the
// input integers are the accumulator) with CFG's [LO, HI] and LeakyRelu. One call per input,
// in input order; together they write every element of y once.
// IN: using in_t; static constexpr int C, OFFSET, SHIFT.
template <class CFG, class IN>
void concat_input(const typename IN::in_t x[CFG::PIXELS * IN::C], typename CFG::out_t y[CFG::PIXELS * CFG::C]) {
    using acc_t = typename detail::widened<typename IN::in_t>::type;
    static_assert(IN::C >= 1 && IN::OFFSET >= 0 && IN::OFFSET + IN::C <= CFG::C, "concat_input: channels out of range");
concat_pixels:
    for (int p = 0; p < CFG::PIXELS; ++p) {
    concat_channels:
        for (int c = 0; c < IN::C; ++c) {
#pragma HLS PIPELINE II=1
            y[p * CFG::C + IN::OFFSET + c] = layer_requantize<CFG, IN::SHIFT>(static_cast<acc_t>(x[p * IN::C + c]));
        }
    }
}

// The same for a vector concat (PIXELS = 1) whose input IN is stored in another order than its
// index order (a flattened feature map, in HWC order): its element i is x[index[IN::OFFSET + i]].
// index covers the whole output (the entries of the other inputs are not read here).
template <class CFG, class IN, typename Index>
void concat_input_gather(const typename IN::in_t x[IN::C], typename CFG::out_t y[CFG::C], const Index index[CFG::C]) {
    using acc_t = typename detail::widened<typename IN::in_t>::type;
    static_assert(CFG::PIXELS == 1, "concat_input_gather: only vectors (PIXELS = 1) are gathered");
    static_assert(IN::C >= 1 && IN::OFFSET >= 0 && IN::OFFSET + IN::C <= CFG::C,
                  "concat_input_gather: channels out of range");
concat_gather_elements:
    for (int i = 0; i < IN::C; ++i) {
#pragma HLS PIPELINE II=1
        y[IN::OFFSET + i] = layer_requantize<CFG, IN::SHIFT>(static_cast<acc_t>(x[index[IN::OFFSET + i]]));
    }
}

// ---------------------------------------------------------------------------------------------
// Nearest-neighbour upsampling by integer factors, HWC: y[oh][ow][c] = x[oh / FH][ow / FW][c]
// (exact: the output format is the input format). One output element per iteration.
template <class CFG>
void resize_nearest(const typename CFG::in_t x[CFG::IN_H * CFG::IN_W * CFG::C],
                    typename CFG::out_t y[CFG::OUT_H * CFG::OUT_W * CFG::C]) {
    static_assert(std::is_same<typename CFG::in_t, typename CFG::out_t>::value,
                  "resize_nearest: output type must be the input type");
    static_assert(CFG::FH >= 1 && CFG::FW >= 1, "resize_nearest: factors must be >= 1");
    static_assert(CFG::OUT_H == CFG::IN_H * CFG::FH && CFG::OUT_W == CFG::IN_W * CFG::FW,
                  "resize_nearest: OUT_H, OUT_W");
resize_rows:
    for (int oh = 0; oh < CFG::OUT_H; ++oh) {
    resize_cols:
        for (int ow = 0; ow < CFG::OUT_W; ++ow) {
        resize_channels:
            for (int c = 0; c < CFG::C; ++c) {
#pragma HLS PIPELINE II=1
                y[(oh * CFG::OUT_W + ow) * CFG::C + c] = x[((oh / CFG::FH) * CFG::IN_W + ow / CFG::FW) * CFG::C + c];
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Zero padding, HWC: PAD_TOP rows above, PAD_BOTTOM below, PAD_LEFT / PAD_RIGHT columns at the
// sides, all 0 (exact: 0 is in every format). One output element per iteration.
template <class CFG>
void pad(const typename CFG::in_t x[CFG::IN_H * CFG::IN_W * CFG::C],
         typename CFG::out_t y[CFG::OUT_H * CFG::OUT_W * CFG::C]) {
    static_assert(std::is_same<typename CFG::in_t, typename CFG::out_t>::value,
                  "pad: output type must be the input type");
    static_assert(CFG::PAD_TOP >= 0 && CFG::PAD_LEFT >= 0 && CFG::PAD_BOTTOM >= 0 && CFG::PAD_RIGHT >= 0,
                  "pad: pads must be >= 0");
    static_assert(CFG::OUT_H == CFG::IN_H + CFG::PAD_TOP + CFG::PAD_BOTTOM &&
                  CFG::OUT_W == CFG::IN_W + CFG::PAD_LEFT + CFG::PAD_RIGHT, "pad: OUT_H, OUT_W");
pad_rows:
    for (int oh = 0; oh < CFG::OUT_H; ++oh) {
    pad_cols:
        for (int ow = 0; ow < CFG::OUT_W; ++ow) {
        pad_channels:
            for (int c = 0; c < CFG::C; ++c) {
#pragma HLS PIPELINE II=1
                const int ih = oh - CFG::PAD_TOP;
                const int iw = ow - CFG::PAD_LEFT;
                const bool inside = ih >= 0 && ih < CFG::IN_H && iw >= 0 && iw < CFG::IN_W;
                y[(oh * CFG::OUT_W + ow) * CFG::C + c] =
                    inside ? x[(ih * CFG::IN_W + iw) * CFG::C + c] : typename CFG::out_t(0);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Plumbing of the dataflow region.

// Copy N values in order: the top function reads its input stream exactly once, in order.
template <int N, typename T>
void copy(const T x[N], T y[N]) {
copy_elements:
    for (int i = 0; i < N; ++i) {
#pragma HLS PIPELINE II=1
        y[i] = x[i];
    }
}

// A tensor read by two layers: one producer, two consumers (DATAFLOW needs one reader per buffer).
template <int N, typename T>
void duplicate(const T x[N], T y0[N], T y1[N]) {
duplicate_elements:
    for (int i = 0; i < N; ++i) {
#pragma HLS PIPELINE II=1
        y0[i] = x[i];
        y1[i] = x[i];
    }
}

// The stream top function's ends: N values from a stream into a buffer, and back.
// (Stream is hls::stream<T>, or fpgagen_stream.h's stand-in under plain g++.)
template <int N, typename Stream, typename T>
void read_stream(Stream& s, T y[N]) {
read_stream_elements:
    for (int i = 0; i < N; ++i) {
#pragma HLS PIPELINE II=1
        y[i] = s.read();
    }
}

template <int N, typename Stream, typename T>
void write_stream(const T x[N], Stream& s) {
write_stream_elements:
    for (int i = 0; i < N; ++i) {
#pragma HLS PIPELINE II=1
        s.write(x[i]);
    }
}

#ifndef __SYNTHESIS__
// C simulation only: where FPGAGEN_TRACE writes each layer's output (nullptr: nowhere).
inline std::FILE*& trace_sink() {
    static std::FILE* sink = nullptr;
    return sink;
}

// One line per layer and frame: "<layer> <n> v0 v1 ..." (buffer order).
template <typename T>
void trace(const char* layer, const T* values, int n) {
    std::FILE* f = trace_sink();
    if (f == nullptr) return;
    std::fprintf(f, "%s %d", layer, n);
    for (int i = 0; i < n; ++i) std::fprintf(f, " %lld", static_cast<long long>(values[i]));
    std::fprintf(f, "\n");
}
#define FPGAGEN_TRACE(layer, buffer, n) ::fpgagen_nn::trace(layer, buffer, n)
#else
#define FPGAGEN_TRACE(layer, buffer, n)
#endif

}  // namespace fpgagen_nn

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#endif  // FPGAGEN_NN_H
