// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// The Bernoulli family: yes/no outputs, one example per ELEMENT of a vector or of an N×L
// multi-label matrix (one column per label). Its negative log-likelihood is binary cross entropy.
//
// Element i of an R×C array is (i mod R, i div R): the column-major linear index, whatever the
// storage order. Per-element weights, masks and upstream gradients (options.weight, .mask,
// .upstream) are indexed the same way; pos_weight has one entry per column.
//
// Logits form (family Bernoulli, loss binary_cross_entropy_with_logits), label y ∈ [0, 1] (soft
// labels allowed), positive-class weight p ≥ 0 of the element's column (1 when not given):
//
//   ℓ(x, y) = (1 − y)·x + L·softplus(−x),    L = (1 − y) + p·y  ( = 1 + (p − 1)·y )
//   ∂ℓ/∂x   = L·σ(x) − p·y = (1 − y)·σ(x) − p·y·σ(−x)
//
// evaluated, with e = exp(−|x|), as
//
//   ℓ = a·|x| + (a + b)·log1p(e)   with a = 1 − y, b = p·y, and the first term a·|x| for x ≥ 0,
//                                  b·|x| for x < 0 (and exactly 0 when that coefficient is 0)
//   ∂ℓ/∂x = a·σ(x) − b·σ(−x)       with σ(|x|) = 1/(1 + e), σ(−|x|) = e/(1 + e)
//
// Every term is non-negative, so the loss has no cancellation; exp is only taken of −|x|, so
// nothing overflows; and there is no cut-off: label 1 at a logit of 30 has loss e⁻³⁰ and gradient
// −e⁻³⁰ (Stan Math's ±20 cut-off lost that sign; PyTorch returns 0 for both), a logit of ±1e300
// gives a loss of 1e300·coefficient or exactly 0. ±inf logits give the limits (label 1 at +inf: loss 0,
// gradient 0; PyTorch gives NaN for the loss). A NaN logit gives a NaN loss and gradient.
//
// Probability form (family BernoulliProbs, loss binary_cross_entropy), probability q ∈ [0, 1]
// (torch.nn.functional.binary_cross_entropy semantics, each log clamped at −100):
//
//   ℓ(q, y) = −( y·max(log q, −100) + (1 − y)·max(log1p(−q), −100) )
//   ∂ℓ/∂q   = (q − y) / max((1 − q)·q, 1e-12)        (PyTorch 1.13's backward, eps included)
//
// The gradient is PyTorch's: it equals the derivative of the loss wherever (1 − q)·q > 1e-12 and
// the clamp is inactive, and stays finite at q = 0 and q = 1. We take log1p(−q) where PyTorch
// takes log(1 − q) (more accurate for small q; see docs/bernoulli.md). A NaN probability
// propagates to the loss and gradient.
//
// Labels are checked (each in [0, 1]; NaN is rejected) before anything is evaluated; logits and
// probabilities are data and are not checked, except that a probability outside [0, 1] is rejected.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "../core/check.hpp"
#include "../core/distribution.hpp"
#include "../core/nll.hpp"
#include "../core/options.hpp"
#include "../detail/log_sum_exp_avx512.hpp"
#include "../detail/numeric.hpp"
#include "../math/exp.hpp"

namespace nll {

/// Options of binary_cross_entropy_with_logits and binary_cross_entropy: the driver's seven
/// fields (reduction, weight, mask, normalizer, empty_mean, upstream, weighted_mean; see NLL_DRIVER_OPTION_FIELDS — the
/// per-example fields are per ELEMENT, column-major), then
///
///   pos_weight  one weight p_j ≥ 0 (finite) per column of the logits, multiplying the label-1
///               part of the loss (PyTorch's pos_weight); empty = all 1. Only the logits form
///               uses it; binary_cross_entropy rejects a non-empty pos_weight.
///
/// As in PyTorch, `weight` rescales each element's loss and `reduction = mean` divides by the
/// number of elements that count (all but the masked ones), not by Σ weight: the family's
/// default_weighted_mean is WeightedMean::count. Set `.weighted_mean = WeightedMean::weight_sum`
/// for the weighted average Σ w·ℓ / Σ w instead (docs/bernoulli.md).
struct BinaryCrossEntropyOptions {
  NLL_DRIVER_OPTION_FIELDS
  ::nll::ExampleView pos_weight = {};
};

namespace detail {

/// The linear index → (row, column) map of the Bernoulli family (column-major).
struct ElementIndex {
  Eigen::Index row;
  Eigen::Index col;
};
template <class X> ElementIndex element_index(const X& x, Eigen::Index i) {
  const Eigen::Index rows = x.rows();
  return {i % rows, i / rows};
}

/// Packet log1p(e) for e ∈ [0, 1] (or NaN), the only range the logits kernel needs (e = e^-|x|).
/// float: e·q(e) with q a degree-9 polynomial fit of log1p(e)/e on [0, 1] (scripts/
/// fit_bernoulli_log1p.py: worst relative error 1.2 eps in float), no range reduction, no log —
/// about three times cheaper than Eigen's plog with AVX-512. double: log(u) + (e − (u − 1))/u with
/// u = 1 + e (u − 1 is exact, e − (u − 1) is the rounding error of u), r = 1/u given.
template <class Packet> Packet plog1p_unit(const Packet& e, const Packet& u, const Packet& r) {
  using namespace Eigen::internal;
  using A = typename unpacket_traits<Packet>::type;
  if constexpr (std::is_same_v<A, float>) {
    (void)u;
    (void)r;
    Packet q = pmadd(pset1<Packet>(-3.176057013e-03f), e, pset1<Packet>(1.954252645e-02f));
    q = pmadd(q, e, pset1<Packet>(-5.637361109e-02f));
    q = pmadd(q, e, pset1<Packet>(1.054362357e-01f));
    q = pmadd(q, e, pset1<Packet>(-1.526966691e-01f));
    q = pmadd(q, e, pset1<Packet>(1.966327429e-01f));
    q = pmadd(q, e, pset1<Packet>(-2.495161593e-01f));
    q = pmadd(q, e, pset1<Packet>(3.332971036e-01f));
    q = pmadd(q, e, pset1<Packet>(-4.999989271e-01f));
    q = pmadd(q, e, pset1<Packet>(1.0f));
    return pmul(e, q);
  } else {
    const Packet one = pset1<Packet>(A(1));
    return padd(plog(u), pmul(psub(e, psub(u, one)), r));
  }
}

/// Per-element logits kernel in scalar arithmetic (the reference the packet kernel must agree
/// with). Returns ℓ; with kGrad also writes ∂ℓ/∂x to d. See the file comment for the formula.
struct BceLogitsKernel {
  static constexpr bool kUsesPosWeight = true;
  static constexpr bool kSplitExponential = true; // bce_run computes exp_neg_abs_avx512 in a loop of its own

  template <bool kGrad, class A> static A scalar(A x, A y, A pw, A& d) {
    const A ax = std::fabs(x);
    const A e = std::exp(-ax); // NaN for a NaN x; 0 for |x| = inf
    const A a = A(1) - y;
    const A b = pw * y;
    const bool pos = x >= A(0); // false for NaN
    const A coeff = pos ? a : b;
    const A lin = coeff == A(0) ? A(0) : coeff * ax; // 0·inf is 0 here: the limit
    const A weight = pw == A(1) ? A(1) : a + b;      // L = 1 exactly without pos_weight (soft labels too)
    const A loss = lin + weight * std::log1p(e);
    if constexpr (kGrad) {
      const A r = A(1) / (A(1) + e);
      const A er = e * r;
      d = a * (pos ? r : er) - b * (pos ? er : r);
    }
    return loss;
  }

  // Vectorised versions of the same formula, in two parts that bce_run runs as two loops (the
  // exponentials of a run first): one exp, one division (1/u, u = 1 + e, shared by both sigmoids)
  // and log1p(e) from plog1p_unit (a polynomial for float, no log). kUnitPosWeight: every pos_weight
  // lane is 1 (no pos_weight given), so b = y and L = a + b = 1 are not computed.

  /// e = exp(−|x|) with Eigen's packet functions (every SIMD instruction set Eigen supports).
  template <class Packet> static Packet exp_neg_abs_generic(const Packet& x) {
    return pexp_full(Eigen::internal::pnegate(Eigen::internal::pabs(x))); // exact in the subnormal tail (math/exp.hpp)
  }

  /// The rest of the formula with Eigen's packet functions, given e = exp_neg_abs_generic(x).
  template <bool kGrad, bool kUnitPosWeight, class Packet>
  static Packet packet_generic_given_exp(const Packet& x, const Packet& y, const Packet& pw, const Packet& e,
                                         Packet& d) {
    using namespace Eigen::internal;
    using A = typename unpacket_traits<Packet>::type;
    const Packet one = pset1<Packet>(A(1));
    const Packet zero = pzero(x);
    const Packet ax = pabs(x);
    const Packet u = padd(one, e);
    const Packet r = pdiv(one, u);
    const Packet lg = plog1p_unit(e, u, r);
    const Packet a = psub(one, y);
    const Packet b = kUnitPosWeight ? y : pmul(pw, y);
    const Packet pos = pcmp_le(zero, x);
    const Packet coeff = pselect(pos, a, b);
    const Packet lin = pselect(pcmp_eq(coeff, zero), zero, pmul(coeff, ax));
    const Packet loss = kUnitPosWeight ? padd(lin, lg) : padd(lin, pmul(padd(a, b), lg));
    if constexpr (kGrad) {
      const Packet er = pmul(e, r);
      d = psub(pmul(a, pselect(pos, r, er)), pmul(b, pselect(pos, er, r)));
    }
    return loss;
  }

#if defined(EIGEN_VECTORIZE_AVX512) && defined(NLL_LOG_SUM_EXP_AVX512)
  // The same formula for 16 floats with AVX-512 intrinsics: comparisons into mask registers and
  // masked blends (Eigen's pcmp/pselect go through vector masks, two instructions each), and the
  // table exponential of detail/log_sum_exp_avx512.hpp for arguments ≤ 0 (vpermps table, degree-3
  // polynomial, the power of two added to the exponent bits when every lane is ≥ −87, else
  // vscalefps: under 1 ulp, exact rounding into subnormals, exp(−inf) = 0, NaN propagates).
  // kUnitPosWeight drops the pos_weight multiply and L = a + b.

  /// e = exp(−|x|) for 16 floats (NaN for a NaN x, 0 for |x| = inf).
  static __m512 exp_neg_abs_avx512(const __m512& x) {
    const avx512::ExpConstants constants;
    return avx512::exp_nonpositive_mostly_normal(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(x)), constants);
  }

  /// packet_avx512_given_exp for labels of 0 and 1 given as a lane mask (1: label 1) and no
  /// pos_weight: the same bits with a third of the work. With c = (x ≥ 0) XOR label, the loss is
  /// log1p(e) + (c ? |x| : 0) and the gradient ±(c ? σ(|x|) : σ(−|x|)), negative for label 1
  /// (as 0 − σ, so that a zero gradient is +0 like the general kernel's).
  template <bool kGrad>
  static __m512 packet_avx512_hard_unit(const __m512& x, __mmask16 label, const __m512& e, __m512& d) {
    const __m512 zero = _mm512_setzero_ps();
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 u = _mm512_add_ps(one, e);
    const __m512 rcp = _mm512_div_ps(one, u);
    const __m512 lg = plog1p_unit(e, u, rcp);
    const __mmask16 pos = _mm512_cmp_ps_mask(x, zero, _CMP_GE_OQ); // false for NaN
    const __mmask16 linear = static_cast<__mmask16>(pos ^ label);
    const __m512 loss = _mm512_mask_add_ps(lg, linear, lg, _mm512_abs_ps(x));
    if constexpr (kGrad) {
      const __m512 magnitude = _mm512_mask_blend_ps(linear, _mm512_mul_ps(e, rcp), rcp);
      d = _mm512_mask_sub_ps(magnitude, label, zero, magnitude);
    }
    return loss;
  }

  /// The rest of the formula for 16 floats, given e = exp_neg_abs_avx512(x).
  template <bool kGrad, bool kUnitPosWeight>
  static __m512 packet_avx512_given_exp(const __m512& x, const __m512& y, const __m512& pw, const __m512& e,
                                        __m512& d) {
    const __m512 zero = _mm512_setzero_ps();
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 ax = _mm512_abs_ps(x);
    const __m512 u = _mm512_add_ps(one, e);
    const __m512 rcp = _mm512_div_ps(one, u);
    const __m512 lg = plog1p_unit(e, u, rcp);
    const __m512 a = _mm512_sub_ps(one, y);
    const __m512 b = kUnitPosWeight ? y : _mm512_mul_ps(pw, y);
    const __mmask16 pos = _mm512_cmp_ps_mask(x, zero, _CMP_GE_OQ); // false for NaN
    const __m512 coeff = _mm512_mask_blend_ps(pos, b, a);          // pos ? a : b
    const __mmask16 nonzero = _mm512_cmp_ps_mask(coeff, zero, _CMP_NEQ_UQ);
    // coeff·|x| + L·log1p(e), the first term left out where coeff = 0 (even for |x| = inf).
    const __m512 loss = kUnitPosWeight
                            ? _mm512_mask3_fmadd_ps(coeff, ax, lg, nonzero)
                            : _mm512_fmadd_ps(_mm512_add_ps(a, b), lg, _mm512_maskz_mul_ps(nonzero, coeff, ax));
    if constexpr (kGrad) {
      const __m512 er = _mm512_mul_ps(e, rcp);
      const __m512 sp = _mm512_mask_blend_ps(pos, er, rcp); // σ(x)
      const __m512 sn = _mm512_mask_blend_ps(pos, rcp, er); // σ(−x)
      d = _mm512_fmsub_ps(a, sp, _mm512_mul_ps(b, sn));
    }
    return loss;
  }
#endif
};

/// Packet log, correct for subnormal inputs too: Eigen 3.4's plog returns log of the smallest
/// normal number for them (log(1e-45f) = -87.3 instead of -103.3), which matters between the clamp
/// at -100 and the normal range. Lanes below the smallest normal are scaled by 2^k first. Only
/// packets that have such a lane pay for the second log.
template <class Packet> Packet plog_full(const Packet& q) {
  using namespace Eigen::internal;
  using A = typename unpacket_traits<Packet>::type;
  Packet r = plog(q);
  const Packet tiny = pcmp_lt(q, pset1<Packet>(std::numeric_limits<A>::min())); // false for NaN
  if (predux_any(tiny)) {
    constexpr int k = std::is_same_v<A, float> ? 32 : 64;
    const A up = std::ldexp(A(1), k);
    const A shift = static_cast<A>(k * 0.693147180559945309417232121458176568L);
    r = pselect(tiny, psub(plog(pmul(q, pset1<Packet>(up))), pset1<Packet>(shift)), r); // q = 0: -inf
  }
  return r;
}

/// Per-element probability kernel (PyTorch's binary_cross_entropy, each log clamped at −100).
struct BceProbsKernel {
  static constexpr bool kUsesPosWeight = false;
  static constexpr bool kSplitExponential = false;

  template <bool kGrad, class A> static A scalar(A q, A y, A /*pw*/, A& d) {
    const A floor = A(-100);
    const A lq = std::log(q);
    const A l1q = std::log1p(-q);
    // std::max would drop a NaN in its second position; keep it.
    const A cq = lq < floor ? floor : lq;
    const A c1q = l1q < floor ? floor : l1q;
    const A loss = -(y * cq + (A(1) - y) * c1q);
    if constexpr (kGrad) {
      const A den = (A(1) - q) * q;
      const A eps = A(1e-12);
      d = (q - y) / (den < eps ? eps : den);
    }
    return loss;
  }

  template <bool kGrad, bool kUnitPosWeight = false, class Packet>
  static Packet packet(const Packet& q, const Packet& y, const Packet& /*pw*/, Packet& d) {
    using namespace Eigen::internal;
    using A = typename unpacket_traits<Packet>::type;
    const Packet one = pset1<Packet>(A(1));
    const Packet floor = pset1<Packet>(A(-100));
    const Packet lq = pmax<Eigen::PropagateNaN>(plog_full(q), floor);
    const Packet l1q = pmax<Eigen::PropagateNaN>(plog1p_any(pnegate(q)), floor);
    const Packet loss = pnegate(padd(pmul(y, lq), pmul(psub(one, y), l1q)));
    if constexpr (kGrad) {
      const Packet den = pmax<Eigen::PropagateNaN>(pmul(psub(one, q), q), pset1<Packet>(A(1e-12)));
      d = pdiv(psub(q, y), den);
    }
    return loss;
  }
};

template <class A> inline constexpr bool kVectorisedBce = vectorised_float_math<A, true>();

/// Labels that are all exactly 0 or 1, packed one bit per element by the label check (bit i mod 16
/// of word i div 16 is label i, in the column-major element order). The logits kernel then reads 2
/// bytes per 16 labels instead of 64: the label check already read every label once, and this
/// saves the kernel pass a second read of them (a quarter of the memory traffic of value +
/// gradient). Only made for contiguous float labels and logits where the AVX-512 kernel runs.
struct HardLabels {
  std::unique_ptr<std::uint16_t[]> bits;
  bool usable = false; // every label 0 or 1 and packed

  /// The labels of elements [i, i + 16) as a lane mask (reads one word past: bits has padding).
  std::uint16_t lanes(Eigen::Index i) const {
    std::uint32_t word;
    std::memcpy(&word, bits.get() + i / 16, sizeof(word));
    return static_cast<std::uint16_t>(word >> (i % 16));
  }
  /// The label of element i.
  float label(Eigen::Index i) const {
    return ((bits[static_cast<std::size_t>(i / 16)] >> (i % 16)) & 1u) ? 1.0f : 0.0f;
  }
};

/// The elements whose losses bce_run sums in float lanes before adding the lane sums in double.
inline constexpr Eigen::Index kMaxRun = 256;

/// Runs Kernel over n contiguous elements: ℓ_k into loss (when not null), scale_k·∂ℓ_k/∂x_k into g
/// (with kGrad; scale_k = scales[k] when scales is not null, else uniform_scale). Returns Σ ℓ_k:
/// partial sums per lane in A over kMaxRun elements at a time (kMaxRun/width per lane), those
/// added in double.
/// With `hard` (AVX-512 float only), the labels are hard->label(first + k) and y is not read.
template <class Kernel, bool kGrad, bool kUnitPosWeight, class A, bool kGenericPackets>
double bce_run_impl(const A* x, const A* y, A* g, Eigen::Index n, A pw, A uniform_scale, const A* scales, A* loss,
                    const HardLabels* hard, Eigen::Index first) {
  double total = 0;
  Eigen::Index k = 0;
  if constexpr (kVectorisedBce<A>) {
    using namespace Eigen::internal;
    using Packet = typename packet_traits<A>::type;
    constexpr Eigen::Index kWidth = packet_traits<A>::size;
    const Packet pwv = pset1<Packet>(pw);
    const Packet sv = pset1<Packet>(uniform_scale);
    const Eigen::Index packets_end = n / kWidth * kWidth;
    const auto finish = [&](Packet& acc, const Packet& l, const Packet& d) {
      acc = padd(acc, l);
      if (loss) pstoreu(loss + k, l);
      if constexpr (kGrad) pstoreu(g + k, pmul(scales ? ploadu<Packet>(scales + k) : sv, d));
    };
#if defined(EIGEN_VECTORIZE_AVX512) && defined(NLL_LOG_SUM_EXP_AVX512)
    if constexpr (Kernel::kSplitExponential && std::is_same_v<A, float> && kWidth == 16 && !kGenericPackets) {
      // Two loops over each kMaxRun elements instead of one: the exponentials first, into an L1
      // buffer, then the rest. One packet's work is a long dependency chain (exp, then the division
      // and the log1p polynomial) that fills the out-of-order scheduler; in two shorter loops more
      // packets are in flight: 4.7 instead of 6.9 ns per 16 floats on L1-resident data
      // (docs/performance.md). The float lane sums go into double lanes after each run.
      alignas(64) float e_run[kMaxRun];
      __m512d total_lo = _mm512_setzero_pd(), total_hi = _mm512_setzero_pd();
      // kernel(k, e) returns the loss of elements [k, k + 16) and sets d.
      const auto runs = [&](const auto& kernel) {
        for (Eigen::Index start = 0; start < packets_end; start += kMaxRun) {
          const Eigen::Index end = std::min(start + kMaxRun, packets_end);
          for (Eigen::Index j = start; j < end; j += kWidth)
            _mm512_store_ps(e_run + (j - start), Kernel::exp_neg_abs_avx512(_mm512_loadu_ps(x + j)));
          Packet acc = pset1<Packet>(A(0));
          for (k = start; k < end; k += kWidth) {
            Packet d;
            const Packet l = kernel(k, _mm512_load_ps(e_run + (k - start)), d);
            finish(acc, l, d);
          }
          total_lo = _mm512_add_pd(total_lo, _mm512_cvtps_pd(_mm512_castps512_ps256(acc)));
          total_hi = _mm512_add_pd(total_hi,
                                   _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1))));
        }
      };
      if (hard && kUnitPosWeight) {
        runs([&](Eigen::Index j, const __m512& e, __m512& d) {
          return Kernel::template packet_avx512_hard_unit<kGrad>(_mm512_loadu_ps(x + j), hard->lanes(first + j), e, d);
        });
      } else if (hard) {
        const __m512 one = _mm512_set1_ps(1.0f);
        runs([&](Eigen::Index j, const __m512& e, __m512& d) {
          return Kernel::template packet_avx512_given_exp<kGrad, kUnitPosWeight>(
              _mm512_loadu_ps(x + j), _mm512_maskz_mov_ps(hard->lanes(first + j), one), pwv, e, d);
        });
      } else {
        runs([&](Eigen::Index j, const __m512& e, __m512& d) {
          return Kernel::template packet_avx512_given_exp<kGrad, kUnitPosWeight>(_mm512_loadu_ps(x + j),
                                                                                 _mm512_loadu_ps(y + j), pwv, e, d);
        });
      }
      total = _mm512_reduce_add_pd(_mm512_add_pd(total_lo, total_hi));
    } else
#endif
    {
      for (Eigen::Index start = 0; start < packets_end; start += kMaxRun) {
        const Eigen::Index end = std::min(start + kMaxRun, packets_end);
        Packet acc = pset1<Packet>(A(0));
        if constexpr (Kernel::kSplitExponential) {
          // The logits kernel with Eigen packets (the portable path; every ISA without the AVX-512
          // kernel): the exponentials first, as in the AVX-512 branch above (AVX2: ~25 % less time).
          alignas(64) A e_run[kMaxRun];
          for (Eigen::Index j = start; j < end; j += kWidth)
            pstore(e_run + (j - start), Kernel::exp_neg_abs_generic(ploadu<Packet>(x + j)));
          for (k = start; k < end; k += kWidth) {
            Packet d;
            const Packet l = Kernel::template packet_generic_given_exp<kGrad, kUnitPosWeight>(
                ploadu<Packet>(x + k), ploadu<Packet>(y + k), pwv, pload<Packet>(e_run + (k - start)), d);
            finish(acc, l, d);
          }
        } else {
          for (k = start; k < end; k += kWidth) {
            Packet d;
            const Packet l =
                Kernel::template packet<kGrad, kUnitPosWeight>(ploadu<Packet>(x + k), ploadu<Packet>(y + k), pwv, d);
            finish(acc, l, d);
          }
        }
        alignas(64) A lanes[kWidth];
        pstore(lanes, acc);
        for (Eigen::Index j = 0; j < kWidth; ++j) total += static_cast<double>(lanes[j]);
      }
    }
    k = packets_end;
  }
  for (; k < n; ++k) {
    A d = A(0);
    const A label = hard ? static_cast<A>(hard->label(first + k)) : y[k];
    const A l = Kernel::template scalar<kGrad>(x[k], label, pw, d);
    total += static_cast<double>(l);
    if (loss) loss[k] = l;
    if constexpr (kGrad) g[k] = (scales ? scales[k] : uniform_scale) * d;
  }
  return total;
}

/// bce_run_impl, with the cheaper packet kernel (no pos_weight multiply, L = 1) when pw is 1.
template <class Kernel, bool kGrad, class A, bool kGenericPackets = false>
double bce_run(const A* x, const A* y, A* g, Eigen::Index n, A pw, A uniform_scale, const A* scales, A* loss,
               const HardLabels* hard = nullptr, Eigen::Index first = 0) {
  if constexpr (Kernel::kUsesPosWeight) {
    if (pw == A(1))
      return bce_run_impl<Kernel, kGrad, true, A, kGenericPackets>(x, y, g, n, pw, uniform_scale, scales, loss, hard,
                                                                   first);
  }
  return bce_run_impl<Kernel, kGrad, false, A, kGenericPackets>(x, y, g, n, pw, uniform_scale, scales, loss, hard,
                                                                first);
}

/// The address of element (r, c) of a direct-access Eigen object, or null for an expression.
template <class X> auto element_pointer(X& x, Eigen::Index r, Eigen::Index c) {
  using Plain = std::remove_cv_t<X>;
  using Scalar = typename Plain::Scalar;
  using Pointer = std::conditional_t<std::is_const_v<X>, const Scalar*, Scalar*>;
  if constexpr ((Eigen::internal::traits<Plain>::Flags & Eigen::DirectAccessBit) != 0) {
    const Eigen::Index inner = x.innerStride();
    const Eigen::Index outer = x.outerStride();
    const Eigen::Index rs = Plain::IsRowMajor ? outer : inner;
    const Eigen::Index cs = Plain::IsRowMajor ? inner : outer;
    return static_cast<Pointer>(x.data() + r * rs + c * cs);
  } else {
    (void)x;
    (void)r;
    (void)c;
    return static_cast<Pointer>(nullptr);
  }
}

/// Whether elements [i, i + len) (column-major linear index) of x lie contiguously in memory.
template <class X> bool contiguous_run(const X& x, Eigen::Index i, Eigen::Index len) {
  using Plain = std::remove_cv_t<X>;
  if constexpr ((Eigen::internal::traits<Plain>::Flags & Eigen::DirectAccessBit) != 0) {
    if (len <= 1) return true;
    const Eigen::Index rows = x.rows();
    const Eigen::Index inner = x.innerStride();
    const Eigen::Index outer = x.outerStride();
    const Eigen::Index rs = Plain::IsRowMajor ? outer : inner;
    const Eigen::Index cs = Plain::IsRowMajor ? inner : outer;
    if (rows == 1) return cs == 1;                   // a row: consecutive columns
    if (i % rows + len <= rows) return rs == 1;      // within one column
    return rs == 1 && (cs == rows || x.cols() == 1); // across columns: no gap between them
  } else {
    (void)x;
    (void)i;
    (void)len;
    return false;
  }
}

/// The block kernel shared by both forms: splits the block into runs of contiguous memory (one
/// column at a time when pos_weight is given), stages any type conversion through small buffers
/// in the accumulator type, and runs the vectorised kernel; runs that are not contiguous take the
/// scalar kernel element by element.
template <class Kernel, bool kGrad, class P, class T, class G>
double bce_block(const P& params, const T& targets, const Block& block, G* grad, const ExampleView& pos_weight,
                 const HardLabels* hard) {
  using S = typename P::Scalar;
  using A = accumulator_t<S>;
  using Y = typename T::Scalar;
  constexpr Eigen::Index kChunk = kMaxRun;
  const Eigen::Index rows = params.rows();
  const Eigen::Index end = block.begin + block.size;
  const bool by_column = Kernel::kUsesPosWeight && !pos_weight.empty();
  const bool need_loss = block.weight != nullptr || block.loss_out != nullptr;
  alignas(64) std::array<A, kChunk> xbuf;
  alignas(64) std::array<A, kChunk> ybuf;
  alignas(64) std::array<A, kChunk> gbuf;
  alignas(64) std::array<A, kChunk> sbuf;
  alignas(64) std::array<A, kChunk> lbuf;
  double sum = 0;
  Eigen::Index i = block.begin;
  while (i < end) {
    const ElementIndex at = element_index(params, i);
    Eigen::Index len = end - i;
    if (by_column || !(contiguous_run(params, i, len) && contiguous_run(targets, i, len) &&
                       (!kGrad || contiguous_run(*grad, i, len))))
      len = std::min(len, rows - at.row);
    const A pw = by_column ? static_cast<A>(pos_weight[at.col]) : A(1);
    const bool direct =
        contiguous_run(params, i, len) && contiguous_run(targets, i, len) && (!kGrad || contiguous_run(*grad, i, len));
    if (!direct) {
      // Expressions and strided storage: the scalar kernel, element by element.
      for (Eigen::Index k = 0; k < len; ++k) {
        const Eigen::Index j = i + k;
        const Eigen::Index b = j - block.begin;
        const double w = block.weight_at(b);
        const ElementIndex e = element_index(params, j);
        double contribution = 0;
        if (w != 0) {
          A d = A(0);
          const A l = Kernel::template scalar<kGrad>(static_cast<A>(params.coeff(e.row, e.col)),
                                                     static_cast<A>(targets.coeff(e.row, e.col)), pw, d);
          contribution = w * static_cast<double>(l);
          if constexpr (kGrad) {
            using GS = typename G::Scalar;
            grad->coeffRef(e.row, e.col) = static_cast<GS>(static_cast<A>(block.grad_scale_at(b)) * d);
          }
        } else if constexpr (kGrad) {
          grad->coeffRef(e.row, e.col) = typename G::Scalar(0);
        }
        if (block.loss_out) block.loss_out[b] = contribution;
        sum += contribution;
      }
      i += len;
      continue;
    }
    const S* xp = element_pointer(params, at.row, at.col);
    const Y* yp = element_pointer(targets, at.row, at.col);
    auto* gp = [&] {
      if constexpr (kGrad) {
        return element_pointer(*grad, at.row, at.col);
      } else {
        return static_cast<A*>(nullptr);
      }
    }();
    // Staging buffers hold kChunk elements; without conversions, per-element scales or per-element
    // losses none is used and the whole run goes to bce_run at once.
    constexpr bool kNoStaging = std::is_same_v<S, A> && std::is_same_v<Y, A> &&
                                (!kGrad || std::is_same_v<std::remove_cv_t<std::remove_pointer_t<decltype(gp)>>, A>);
    const Eigen::Index step = kNoStaging && !block.grad_scale && !need_loss ? len : kChunk;
    for (Eigen::Index o = 0; o < len; o += step) {
      const Eigen::Index n = std::min(step, len - o);
      const Eigen::Index b0 = i + o - block.begin; // offset in the block
      const A* xa;
      if constexpr (std::is_same_v<S, A>) {
        xa = xp + o;
      } else {
        for (Eigen::Index k = 0; k < n; ++k) xbuf[k] = static_cast<A>(xp[o + k]);
        xa = xbuf.data();
      }
      const A* ya;
      if constexpr (std::is_same_v<Y, A>) {
        ya = yp + o;
      } else {
        for (Eigen::Index k = 0; k < n; ++k) ybuf[k] = static_cast<A>(yp[o + k]);
        ya = ybuf.data();
      }
      A* ga = nullptr;
      if constexpr (kGrad) {
        if constexpr (std::is_same_v<std::remove_cv_t<std::remove_pointer_t<decltype(gp)>>, A>) {
          ga = gp + o;
        } else {
          ga = gbuf.data();
        }
      }
      const A* scales = nullptr;
      if (kGrad && block.grad_scale) {
        for (Eigen::Index k = 0; k < n; ++k) sbuf[k] = static_cast<A>(block.grad_scale[b0 + k]);
        scales = sbuf.data();
      }
      const double chunk_sum = bce_run<Kernel, kGrad>(xa, ya, ga, n, pw, static_cast<A>(block.uniform_grad_scale),
                                                      scales, need_loss ? lbuf.data() : nullptr, hard, i + o);
      if constexpr (kGrad) {
        if (ga == gbuf.data()) {
          using GS = std::remove_pointer_t<decltype(gp)>;
          for (Eigen::Index k = 0; k < n; ++k) gp[o + k] = static_cast<GS>(gbuf[k]);
        }
      }
      if (!block.weight) {
        sum += chunk_sum;
        if (block.loss_out)
          for (Eigen::Index k = 0; k < n; ++k) block.loss_out[b0 + k] = static_cast<double>(lbuf[k]);
        continue;
      }
      for (Eigen::Index k = 0; k < n; ++k) {
        const double w = block.weight[b0 + k];
        double contribution = 0;
        if (w != 0) {
          contribution = w * static_cast<double>(lbuf[k]);
        } else if constexpr (kGrad) {
          using GS = std::remove_pointer_t<decltype(gp)>;
          gp[o + k] = GS(0); // a weight of 0: exactly 0, even for a NaN logit
        }
        if (block.loss_out) block.loss_out[b0 + k] = contribution;
        sum += contribution;
      }
    }
    i += len;
  }
  return sum;
}

/// Whether any of v[0, n) is outside [0, 1] (below 0, above 1, or, unless allow_nan, NaN): one
/// vectorised pass OR-ing lane masks (a NaN-propagating min/max reduction would put compares and
/// selects on the accumulator's dependency chain, several times slower).
template <class Y> bool any_outside_unit_interval(const Y* v, Eigen::Index n, bool allow_nan) {
  Eigen::Index i = 0;
  bool bad = false;
  if constexpr (kVectorisedBce<Y>) {
    using namespace Eigen::internal;
    using Packet = typename packet_traits<Y>::type;
    constexpr Eigen::Index kWidth = packet_traits<Y>::size;
    const Packet zero = pset1<Packet>(Y(0)), one = pset1<Packet>(Y(1));
    Packet acc = zero;
    for (; i + kWidth <= n; i += kWidth) {
      const Packet y = ploadu<Packet>(v + i);
      acc = por(acc, por(allow_nan ? pcmp_lt(y, zero) : pcmp_lt_or_nan(y, zero), pcmp_lt(one, y)));
    }
    bad = predux_any(acc);
  }
  for (; i < n && !bad; ++i) bad = v[i] < Y(0) || v[i] > Y(1) || (!allow_nan && v[i] != v[i]);
  return bad;
}

/// Checks labels (or, with allow_nan, probabilities): each in [0, 1]. Contiguous float and double
/// data take one vectorised pass; when it finds something (and for every other layout or type) a
/// scalar pass finds the first offending element for the message.
template <class X>
void check_unit_interval(std::string_view function, std::string_view name, const X& x, bool allow_nan) {
  using Y = typename X::Scalar;
  if constexpr (std::is_same_v<Y, bool>) {
    return;
  } else {
    const Eigen::Index n = x.size();
    if (n == 0) return;
    if constexpr (std::is_same_v<Y, float> || std::is_same_v<Y, double>) {
      if (contiguous_run(x, 0, n) && !any_outside_unit_interval(element_pointer(x, 0, 0), n, allow_nan)) return;
    }
    for (Eigen::Index i = 0; i < n; ++i) {
      const ElementIndex e = element_index(x, i);
      const Y value = x.coeff(e.row, e.col);
      const auto v = static_cast<accumulator_t<std::conditional_t<std::is_integral_v<Y>, double, Y>>>(value);
      const bool nan = v != v;
      if ((nan && !allow_nan) || v < 0 || v > 1) fail_at(ErrorKind::value, function, name, i, value, "in [0, 1]");
    }
  }
}

/// Whether hard labels can be packed for logits of scalar S and labels of scalar Y: contiguous float
/// both, and the AVX-512 logits kernel compiled in (the only one that reads packed labels).
template <class S, class Y>
inline constexpr bool kPackableLabels =
#if defined(EIGEN_VECTORIZE_AVX512) && defined(NLL_LOG_SUM_EXP_AVX512)
    std::is_same_v<S, float>&& std::is_same_v<Y, float>;
#else
    false;
#endif

#if defined(EIGEN_VECTORIZE_AVX512) && defined(NLL_LOG_SUM_EXP_AVX512)
/// The label check of contiguous float labels y[0, n) that also packs them: returns whether any
/// is outside [0, 1] or NaN; out.usable tells whether every label is exactly 0 or 1 (then out.bits
/// holds them). One pass over the labels, as check_unit_interval.
inline bool pack_hard_labels(const float* y, Eigen::Index n, HardLabels& out) {
  const std::size_t words = static_cast<std::size_t>(n / 16) + 2; // + padding for HardLabels::lanes
  out.bits.reset(new std::uint16_t[words]);
  const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
  __mmask16 bad = 0, soft = 0;
  Eigen::Index i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(y + i);
    const __mmask16 ones = _mm512_cmp_ps_mask(v, one, _CMP_EQ_OQ);
    const __mmask16 zeros = _mm512_cmp_ps_mask(v, zero, _CMP_EQ_OQ);
    bad |= _mm512_cmp_ps_mask(v, zero, _CMP_NGE_UQ) | _mm512_cmp_ps_mask(v, one, _CMP_GT_OQ); // < 0, > 1, NaN
    soft |= static_cast<__mmask16>(~(ones | zeros));
    out.bits[static_cast<std::size_t>(i / 16)] = static_cast<std::uint16_t>(ones);
  }
  std::uint16_t last = 0;
  for (; i < n; ++i) {
    const float v = y[i];
    bad |= static_cast<__mmask16>(!(v >= 0.0f && v <= 1.0f));
    soft |= static_cast<__mmask16>(!(v == 0.0f || v == 1.0f));
    last = static_cast<std::uint16_t>(last | (v == 1.0f ? 1u << (i % 16) : 0u));
  }
  out.bits[static_cast<std::size_t>(n / 16)] = last;
  out.bits[static_cast<std::size_t>(n / 16) + 1] = 0;
  out.usable = bad == 0 && soft == 0;
  return bad != 0;
}
#endif

/// A gradient argument: an Eigen dense object (so an options struct is never taken for one).
template <class G>
concept DenseGradient = std::is_base_of_v<Eigen::DenseBase<std::remove_cvref_t<G>>, std::remove_cvref_t<G>>;

template <class X> constexpr void require_dense() {
  static_assert(std::is_base_of_v<Eigen::DenseBase<X>, X>,
                "nll: the Bernoulli family takes Eigen dense arrays or matrices (vectors or N×L)");
}

/// What the two forms share: shapes, checks, per-element evaluation, the fused block kernel.
template <class Kernel> struct BernoulliBase {
  /// Per-column positive weights (logits form only); empty = 1.
  ExampleView pos_weight = {};
  /// Where the label check may pack hard labels for the block kernel (the named losses give one
  /// per call; null: the kernel reads the labels themselves). Results are the same bits either way.
  HardLabels* hard_labels = nullptr;

  /// Elements per driver block: large blocks keep the per-block bookkeeping negligible.
  static constexpr Eigen::Index block_size = 4096;

  /// A weighted mean divides by the element count, as torch.nn.functional.binary_cross_entropy*
  /// does with `weight` (each weight rescales one element's loss).
  static constexpr WeightedMean default_weighted_mean = WeightedMean::count;

  /// Every element is an example.
  template <class P, class T> Eigen::Index num_examples(const P& params, const T&) const { return params.size(); }

  /// ℓ_i of element i (column-major index), by the scalar formula (the per-example reference path).
  template <class P, class T> double neg_log_prob(const P& params, const T& targets, Eigen::Index i) const {
    using A = accumulator_t<typename P::Scalar>;
    const ElementIndex e = element_index(params, i);
    A d = A(0);
    return static_cast<double>(Kernel::template scalar<false>(static_cast<A>(params.coeff(e.row, e.col)),
                                                              static_cast<A>(targets.coeff(e.row, e.col)),
                                                              column_pos_weight<A>(e.col), d));
  }

  /// ℓ_i, and scale·∂ℓ_i/∂θ_i written into grad at element i (read before written: grad may alias params).
  template <class P, class T, class G>
  double neg_log_prob_grad(const P& params, const T& targets, Eigen::Index i, double scale, G& grad) const {
    using A = accumulator_t<typename P::Scalar>;
    const ElementIndex e = element_index(params, i);
    A d = A(0);
    const A l =
        Kernel::template scalar<true>(static_cast<A>(params.coeff(e.row, e.col)),
                                      static_cast<A>(targets.coeff(e.row, e.col)), column_pos_weight<A>(e.col), d);
    grad.coeffRef(e.row, e.col) = static_cast<typename G::Scalar>(static_cast<A>(scale) * d);
    return static_cast<double>(l);
  }

  /// Writes 0 into grad at element i.
  template <class G> void zero_grad(G& grad, Eigen::Index i) const {
    const ElementIndex e = element_index(grad, i);
    grad.coeffRef(e.row, e.col) = typename G::Scalar(0);
  }

  /// The fused, vectorised kernel over a block of elements (value only); agrees with neg_log_prob
  /// to a few ulp (tests/test_bernoulli.cpp).
  template <class P, class T> double neg_log_prob_block(const P& params, const T& targets, const Block& block) const {
    return bce_block<Kernel, false>(params, targets, block, static_cast<P*>(nullptr), pos_weight, packed_labels());
  }
  /// The fused, vectorised kernel over a block of elements (value and gradient).
  template <class P, class T, class G>
  double neg_log_prob_grad_block(const P& params, const T& targets, const Block& block, G& grad) const {
    return bce_block<Kernel, true>(params, targets, block, &grad, pos_weight, packed_labels());
  }

protected:
  const HardLabels* packed_labels() const { return hard_labels && hard_labels->usable ? hard_labels : nullptr; }

  template <class A> A column_pos_weight(Eigen::Index col) const {
    return pos_weight.empty() ? A(1) : static_cast<A>(pos_weight[col]);
  }

  template <class P, class T>
  void check_shapes_and_labels(const P& params, const T& targets, std::string_view function,
                               std::string_view params_name) const {
    require_dense<P>();
    require_dense<T>();
    static_assert(SupportedScalar<typename P::Scalar>,
                  "nll: the Bernoulli family's parameters must be float, double, long double, Eigen::half or "
                  "Eigen::bfloat16");
    static_assert(std::is_arithmetic_v<typename T::Scalar> || SupportedScalar<typename T::Scalar>,
                  "nll: labels must be a floating-point, integer or bool array");
    check_same_shape(function, params, targets, params_name, "labels");
    if (!pos_weight.empty()) {
      if constexpr (!Kernel::kUsesPosWeight) {
        fail(ErrorKind::value, function, "options.pos_weight.size()", pos_weight.size(),
             "0 (pos_weight applies to binary_cross_entropy_with_logits only)");
      }
      if (pos_weight.inner_stride() != 1)
        fail(ErrorKind::shape, function, "options.pos_weight.innerStride()", pos_weight.inner_stride(),
             "1 (contiguous storage)");
      check_size(function, "options.pos_weight.size()", pos_weight.size(), params.cols(),
                 std::string(params_name) + ".cols()");
      for (Eigen::Index j = 0; j < static_cast<Eigen::Index>(pos_weight.size()); ++j) {
        const double p = pos_weight[j];
        if (!(p >= 0) || !std::isfinite(p))
          fail_at(ErrorKind::value, function, "options.pos_weight", j, p, "finite and >= 0");
      }
    }
#if defined(EIGEN_VECTORIZE_AVX512) && defined(NLL_LOG_SUM_EXP_AVX512)
    if constexpr (kPackableLabels<typename P::Scalar, typename T::Scalar>) {
      if (hard_labels) {
        hard_labels->usable = false;
        const Eigen::Index n = targets.size();
        if (n > 0 && contiguous_run(targets, 0, n) && contiguous_run(params, 0, n) &&
            !pack_hard_labels(element_pointer(targets, 0, 0), n, *hard_labels))
          return;
        hard_labels->usable = false; // a bad label (the pass below names it) or layouts that do not fit
      }
    }
#endif
    check_unit_interval(function, "labels", targets, false);
  }
};

} // namespace detail

/// The Bernoulli family on logits: p(y = 1 | x) = σ(x), ℓ = (1 − y)·x + L·softplus(−x) with
/// L = 1 + (p − 1)·y for the column's pos_weight p. Params: an Eigen vector or N×L matrix of
/// logits (float, double, long double, half, bfloat16 — 16-bit types computed in float); targets:
/// labels of the same shape in [0, 1] (float, double, integer or bool); gradient: a writable Eigen
/// object of the same shape (may be the logits). See the file comment for formulas and edge cases.
struct Bernoulli : detail::BernoulliBase<detail::BceLogitsKernel> {
  /// Shapes (labels like logits, pos_weight one per column), pos_weight values, labels in [0, 1].
  template <class P, class T> void check(const P& logits, const T& labels, std::string_view function) const {
    check_shapes_and_labels(logits, labels, function, "logits");
  }
  template <class P, class T, class G>
  void check_gradient(const P& logits, const T&, const G& grad, std::string_view function) const {
    detail::require_dense<G>();
    check_same_shape(function, logits, grad, "logits", "grad");
  }
};

/// The Bernoulli family on probabilities, with PyTorch's clamp of each log at −100 and PyTorch's
/// backward (q − y)/max((1 − q)·q, 1e-12). Params: probabilities in [0, 1] (NaN propagates);
/// otherwise as Bernoulli.
struct BernoulliProbs : detail::BernoulliBase<detail::BceProbsKernel> {
  /// Shapes, labels in [0, 1], probabilities in [0, 1] (NaN allowed: it propagates).
  template <class P, class T> void check(const P& probs, const T& labels, std::string_view function) const {
    check_shapes_and_labels(probs, labels, function, "probs");
    detail::check_unit_interval(function, "probs", probs, true);
  }
  template <class P, class T, class G>
  void check_gradient(const P& probs, const T&, const G& grad, std::string_view function) const {
    detail::require_dense<G>();
    check_same_shape(function, probs, grad, "probs", "grad");
  }
};

/// Binary cross entropy on logits, matching torch.nn.functional.binary_cross_entropy_with_logits
/// (weight, pos_weight, reduction; see BinaryCrossEntropyOptions for the weighted mean):
///   value: Σ_i w_i·ℓ_i / D with ℓ_i = (1 − y_i)·x_i + (1 + (p_c − 1)·y_i)·softplus(−x_i), c the
///          column of element i, D as the driver's reduction says (mean: the number of unmasked
///          elements — Σ w_i with WeightedMean::weight_sum — or the normaliser).
/// Exact for every logit (no cut-off; ±1e300 and ±inf give the limits); NaN logits give NaN.
/// Throws std::invalid_argument when labels, weight, mask or upstream do not match the logits'
/// shape or pos_weight's size is not logits.cols(); std::domain_error for a label outside [0, 1]
/// (or NaN), a negative or non-finite weight or pos_weight, and the driver's option errors.
template <class DX, class DY>
Loss binary_cross_entropy_with_logits(const Eigen::DenseBase<DX>& logits, const Eigen::DenseBase<DY>& labels,
                                      const BinaryCrossEntropyOptions& options = {}) {
  detail::HardLabels packed;
  return detail::run_nll<KernelPath::fused>(
      "binary_cross_entropy_with_logits", Bernoulli{{options.pos_weight, &packed}}, logits.derived(), labels.derived(),
      static_cast<detail::NoGradient*>(nullptr), driver_options(options));
}

/// The same, and the gradient of the value with respect to the logits written into `grad` (same
/// shape as the logits; may be the logits themselves):
///   ∂value/∂x_i = s_i·((1 − y_i)·σ(x_i) − p_c·y_i·σ(−x_i)) = s_i·(L_i·σ(x_i) − p_c·y_i),
/// s_i = w_i/D (sum, mean) or g_i·w_i (none, upstream g). Same throws; nothing is written to grad
/// when a check fails.
template <class DX, class DY, detail::DenseGradient G>
Loss binary_cross_entropy_with_logits(const Eigen::DenseBase<DX>& logits, const Eigen::DenseBase<DY>& labels, G&& grad,
                                      const BinaryCrossEntropyOptions& options = {}) {
  detail::HardLabels packed;
  return detail::run_nll<KernelPath::fused>("binary_cross_entropy_with_logits",
                                            Bernoulli{{options.pos_weight, &packed}}, logits.derived(),
                                            labels.derived(), &grad, driver_options(options));
}

/// Binary cross entropy on probabilities q ∈ [0, 1], matching torch.nn.functional.binary_cross_entropy:
///   value: Σ_i w_i·ℓ_i / D with ℓ_i = −(y_i·max(log q_i, −100) + (1 − y_i)·max(log1p(−q_i), −100)).
/// NaN probabilities propagate. Throws std::invalid_argument for shape mismatches (as the logits
/// form); std::domain_error for a probability outside [0, 1], a label outside [0, 1] (or NaN), a
/// non-empty pos_weight, and the driver's option errors.
template <class DX, class DY>
Loss binary_cross_entropy(const Eigen::DenseBase<DX>& probs, const Eigen::DenseBase<DY>& labels,
                          const BinaryCrossEntropyOptions& options = {}) {
  return detail::run_nll<KernelPath::fused>("binary_cross_entropy", BernoulliProbs{{options.pos_weight}},
                                            probs.derived(), labels.derived(),
                                            static_cast<detail::NoGradient*>(nullptr), driver_options(options));
}

/// The same, and the gradient written into `grad` (same shape as probs; may alias it), with
/// PyTorch 1.13's backward: ∂value/∂q_i = s_i·(q_i − y_i)/max((1 − q_i)·q_i, 1e-12) (the eps in
/// the computing type). Same throws; nothing is written to grad when a check fails.
template <class DX, class DY, detail::DenseGradient G>
Loss binary_cross_entropy(const Eigen::DenseBase<DX>& probs, const Eigen::DenseBase<DY>& labels, G&& grad,
                          const BinaryCrossEntropyOptions& options = {}) {
  return detail::run_nll<KernelPath::fused>("binary_cross_entropy", BernoulliProbs{{options.pos_weight}},
                                            probs.derived(), labels.derived(), &grad, driver_options(options));
}

} // namespace nll
