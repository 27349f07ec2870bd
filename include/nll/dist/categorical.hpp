// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// The categorical family: softmax cross entropy, NLL on log-probabilities, entropy and KL.
//
// Rows of the parameter matrix are examples, columns are the C classes. From a row of logits x the
// family forms transformed logits
//
//   z_c = t(x_c) = s(x_c) / T,   s(x) = κ·tanh(x/κ) (soft-cap κ > 0, Gemma 2) or x (κ = 0),
//   z_c = −inf for a class removed by the class mask (the set of kept classes is U, |U| = C'),
//
// with temperature T, then lse = log Σ_{c∈U} exp(z_c) (shifted by the row maximum) and
// log p_c = z_c − lse. For one example with class weights w (1 when not given), label smoothing ε
// and z-loss factor λ:
//
//   class index y:       ℓ = (1−ε)·w_y·(lse − z_y) + (ε/C')·Σ_{c∈U} w_c·(lse − z_c) + λ·w_y·lse²
//   probabilities q:     ℓ = Σ_{c∈U} w_c·q'_c·(lse − z_c) + λ·lse²,   q'_c = (1−ε)·q_c + ε/C'
//
// which is ℓ = Σ_c B_c·(lse − z_c) + λ·v·lse² with the target coefficients B_c and the target
// weight v (w_y for an index, 1 for probabilities). The gradient with respect to the logits is
//
//   ∂ℓ/∂x_c = (p_c·A − B_c)·t'(x_c),   A = Σ_c B_c + 2·λ·v·lse,   p_c = exp(z_c − lse),
//   t'(x) = sech²(x/κ)/T (1/T without soft-cap), 0 for masked classes.
//
// The generic driver (core/nll.hpp) applies reductions, per-example weights and masks; the mean's
// denominator is Σ_i w_i·v_i, so class-index targets divide by Σ w[y_i] over examples that count
// and probability targets by their number, as torch.nn.functional.cross_entropy (1.13) does.
//
// Two kernels compute the same thing: the per-example functions (neg_log_prob, neg_log_prob_grad:
// one row, scalar arithmetic in the accumulator type, any Eigen expression), and a fused block
// kernel for contiguous rows of float, double, bfloat16 or half: one pass over memory in L1-sized
// blocks with a running maximum (block max, then exp(z − m) from L1 while the next block is
// prefetched, exponentials stored for the gradient), then one pass from L2 writing the gradient
// e·(scale·A·exp(m_block − m)/s) − scale·B (see fast_row; docs/performance.md). The fused kernel
// covers class-index targets without soft-cap and class mask, and label smoothing only without
// class weights; other rows, and rows with NaN or +inf, take the per-example function. Both agree
// to a few ulp (tests/test_categorical*.cpp). With AVX-512 (unless NLL_NO_AVX512 is defined) the
// fused kernel's float exponential is a 32-entry table method with a degree-2 polynomial (at most
// 1.74 ulp; detail::avx512_categorical::exp32_n), otherwise a Cephes polynomial (about 1.3 ulp);
// bfloat16 rows read directly (AVX-512 BW/VL) use its one-step reduction (at most 5.5 ulp on
// [−104, 0], 2.2 ulp on [−10, 0]; the loss stays within 2e-6 and the gradient within one bfloat16
// rounding of long double, tests/test_categorical_api.cpp).
//
// NaN and inf (data, never errors): a NaN logit of a kept class makes that row's loss and gradient
// NaN. A −inf logit of a non-target class (a masked vocabulary) has p_c = 0: the loss stays finite
// and its gradient is exactly 0 (without label smoothing; with smoothing the loss is +inf, the
// mathematically right value, and the gradient there −scale·ε·w_c/C'). A +inf logit (without
// soft-cap) gives lse = +inf: the loss is +inf, or NaN (inf − inf) for a +inf target, as PyTorch.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <bit>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <limits>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "../core/check.hpp"
#include "../core/distribution.hpp"
#include "../core/nll.hpp"
#include "../core/options.hpp"
#include "../detail/numeric.hpp"
#include "../math/exp.hpp"

// The AVX-512 block kernel of the fused row kernel (detail::avx512_categorical below): compiled when
// the translation unit has AVX-512F (e.g. -march=native on an AVX-512 machine) and Eigen vectorises
// with it, unless NLL_NO_AVX512 is defined (then the Eigen-packet kernel runs, as on other machines).
#if defined(__AVX512F__) && defined(EIGEN_VECTORIZE_AVX512) && !defined(EIGEN_DONT_VECTORIZE) && !defined(NLL_NO_AVX512)
#define NLL_CATEGORICAL_AVX512 1
#include <immintrin.h>
#if defined(__AVX512BW__) && defined(__AVX512VL__)
#define NLL_CATEGORICAL_AVX512_BF16_DIRECT 1 // bfloat16 rows are read directly (16-bit masked loads)
#endif
#endif

namespace nll {

/// Extra per-row results of cross_entropy, computed in the same pass when a span is given (each
/// must then have one entry per example). Rows that do not count (masked, ignored, weight 0, or
/// every row when a mean over nothing returns early) are not evaluated and get log_sum_exp = NaN,
/// argmax = −1, target_is_argmax = 0, loss = 0.
struct CrossEntropyOutputs {
  /// lse_i = log Σ_{c∈U} exp(z_ic) of the transformed logits (after soft-cap, temperature, mask).
  std::span<double> log_sum_exp = {};
  /// The first class of largest transformed logit (the first NaN's class if the row has a NaN).
  std::span<std::int64_t> argmax = {};
  /// 1 when the target class (for probability targets: the first class of largest target
  /// probability) is argmax, else 0: Σ/N is the accuracy.
  std::span<std::uint8_t> target_is_argmax = {};
  /// ℓ_i, the row's loss before the per-example weight (class weight, smoothing, z-loss included).
  std::span<double> loss = {};
};

/// Options of nll::cross_entropy. Starts with the driver's fields (reduction, weight, mask,
/// normalizer, empty_mean, upstream; see NLL_DRIVER_OPTION_FIELDS), then:
struct CrossEntropyOptions {
  NLL_DRIVER_OPTION_FIELDS
  /// Per-class weights w_c >= 0 (finite), one per class; empty = all 1 (torch's `weight`).
  ::nll::ExampleView class_weight = {};
  /// Class-index targets equal to this do not count (torch's default −100). With probability
  /// targets it must be negative (torch rejects ignore_index there too).
  std::int64_t ignore_index = -100;
  /// ε in [0, 1]: mixes the target with the uniform distribution over the kept classes.
  double label_smoothing = 0;
  /// λ >= 0: adds λ·v·lse² to each example's loss (PaLM's z-loss), v = the target weight.
  double z_loss = 0;
  /// κ >= 0: logits become κ·tanh(x/κ) before everything else (Gemma 2); 0 = off.
  double soft_cap = 0;
  /// Per-class 0/1 (or bool) mask, one per class; classes with 0 are removed from the softmax
  /// (as a −inf logit would be) and from label smoothing. Empty = every class is kept. A target
  /// on a removed class is an error.
  ::nll::ExampleView class_mask = {};
  /// T > 0 (finite): logits are divided by T (after the soft-cap).
  double temperature = 1;
  /// Extra per-row outputs (see CrossEntropyOutputs).
  CrossEntropyOutputs outputs = {};
};

/// Options of nll::nll_loss (torch.nn.functional.nll_loss): the driver's fields, class weights and
/// ignore_index, with the same meaning as in CrossEntropyOptions.
struct NllLossOptions {
  NLL_DRIVER_OPTION_FIELDS
  ::nll::ExampleView class_weight = {};
  std::int64_t ignore_index = -100;
};

/// Options of nll::entropy and nll::kl_divergence: the driver's fields only.
struct EntropyOptions {
  NLL_DRIVER_OPTION_FIELDS
};
using KlDivergenceOptions = EntropyOptions;

/// Options of nll::kl_div (torch.nn.functional.kl_div).
struct KlDivOptions {
  NLL_DRIVER_OPTION_FIELDS
  /// The target is log p (torch's log_target=True) instead of p.
  bool log_target = false;
  /// With Reduction::mean, divide by the number of elements N·C (torch's reduction='mean')
  /// instead of the number of rows N (torch's reduction='batchmean', the true KL; our default).
  bool elementwise_mean = false;
};

/// Soft targets given as logits: the target distribution is the softmax of each row (over the
/// kept classes). Made by nll::as_logits; holds a reference to the expression.
template <class Derived> struct LogitTargets { const Derived& logits; };

/// Wraps a matrix of logits so that cross_entropy uses softmax(p_logits) as its probability
/// targets: nll::cross_entropy(q_logits, nll::as_logits(p_logits)) is H(softmax(p), softmax(q)).
template <class Derived> LogitTargets<Derived> as_logits(const Eigen::MatrixBase<Derived>& p_logits) {
  return {p_logits.derived()};
}

namespace detail {

template <class T> struct is_logit_targets : std::false_type {};
template <class D> struct is_logit_targets<LogitTargets<D>> : std::true_type {};

/// An integer vector of class indices: an Eigen vector of an integer type, or a sized random-access
/// range (std::vector<int>, std::vector<std::int64_t>, std::span, …) of integers.
template <class T>
concept ClassIndexTargets = (std::is_base_of_v<Eigen::EigenBase<T>, T> && requires { typename T::Scalar; } &&
                             std::is_integral_v<typename Eigen::internal::traits<T>::Scalar>) ||
                            (!std::is_base_of_v<Eigen::EigenBase<T>, T> && std::ranges::random_access_range<const T> &&
                             std::ranges::sized_range<const T> &&
                             std::is_integral_v<std::ranges::range_value_t<const T>>);

/// A matrix of target probabilities (any Eigen expression of a floating scalar).
template <class T>
concept ProbabilityTargets = std::is_base_of_v<Eigen::EigenBase<T>, T> && requires {
  typename T::Scalar;
} && is_supported_scalar_v<std::remove_cv_t<typename Eigen::internal::traits<T>::Scalar>>;

template <class T> Eigen::Index index_count(const T& t) {
  if constexpr (std::is_base_of_v<Eigen::EigenBase<T>, T>) {
    return t.size();
  } else {
    return static_cast<Eigen::Index>(std::ranges::size(t));
  }
}
template <class T> long long index_at(const T& t, Eigen::Index i) {
  if constexpr (std::is_base_of_v<Eigen::EigenBase<T>, T>) {
    return static_cast<long long>(t.coeff(i));
  } else {
    return static_cast<long long>(std::ranges::begin(t)[i]);
  }
}

/// The type row scalars (lse, the loss) are kept in: double, or long double for long double input.
template <class Acc> using row_real_t = std::conditional_t<std::is_same_v<Acc, long double>, long double, double>;

/// A per-thread scratch buffer of at least n elements (no allocation once it has grown), aligned
/// to EIGEN_MAX_ALIGN_BYTES (64 with AVX-512), so that the kernels' full-packet loads and stores of
/// it never straddle two cache lines. (A std::vector of 32000 floats came from the heap at an
/// offset of 32 bytes in a line: 2048 × 32000 bfloat16 value + gradient took 2–4 % longer than
/// with the aligned buffer, same process.)
template <class T, int kSlot> T* scratch(Eigen::Index n) {
  static thread_local std::vector<T, Eigen::aligned_allocator<T>> buffer;
  if (static_cast<Eigen::Index>(buffer.size()) < n) buffer.resize(static_cast<std::size_t>(n));
  return buffer.data();
}

/// The inner stride of a view (views without inner_stride() mark strided storage by size −1).
template <class View> std::ptrdiff_t view_stride(const View& v) {
  if constexpr (requires { v.inner_stride(); }) {
    return v.size() > 1 ? v.inner_stride() : 1;
  } else {
    return v.size() < 0 ? 0 : 1;
  }
}

inline bool view_is_strided(const ExampleView& v) { return view_stride(v) != 1; }

/// Copies a per-class view into doubles (a view that is not contiguous is not read; the checks
/// reject it).
inline std::vector<double> view_values(const ExampleView& v) {
  std::vector<double> out;
  if (v.empty() || view_is_strided(v)) return out;
  out.resize(static_cast<std::size_t>(v.size()));
  for (std::ptrdiff_t i = 0; i < v.size(); ++i) out[static_cast<std::size_t>(i)] = v[i];
  return out;
}

/// Neumaier's compensated sum: the per-example path adds up to C (128k+) terms per row serially.
template <class Real> class CompensatedSum {
public:
  void add(Real v) {
    const Real t = sum_ + v;
    if (std::isfinite(t)) {
      compensation_ += std::fabs(sum_) >= std::fabs(v) ? (sum_ - t) + v : (v - t) + sum_;
    }
    sum_ = t;
  }
  Real value() const { return std::isfinite(sum_) ? sum_ + compensation_ : sum_; }

private:
  Real sum_ = 0;
  Real compensation_ = 0;
};

// Eigen's packet types carry vector attributes that GCC warns about when they are template
// arguments (-Wignored-attributes); Eigen's own headers do the same inside system headers.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
#endif

/// Whether pexp_nonpositive has its own float implementation (it needs 32-bit integer packet
/// shifts: AVX2 or AVX-512); otherwise it is Eigen's pexp.
#if defined(EIGEN_VECTORIZE_AVX512) || defined(EIGEN_VECTORIZE_AVX2)
inline constexpr bool kFastFloatExp = true;
#else
inline constexpr bool kFastFloatExp = false;
#endif

/// Elements per block of the fused row kernel: 4 KB of floats, well inside L1. (2048 before the
/// fourth session: 1024 made float value + gradient 1.4–7 % and the value alone 2.7–10 % faster,
/// depending on the logits, bfloat16 about the same; 512 and 4096 were slower;
/// docs/performance.md.)
inline constexpr Eigen::Index kFusedBlock = 1024;
/// How far ahead of the block being exponentiated the fused kernel prefetches the logits (bytes):
/// two float blocks. One block ahead left the next block's last lines in flight when it was needed
/// (value only: about 12.5 ms against about 10 ms on 2048 × 32000, docs/performance.md).
inline constexpr std::uintptr_t kPrefetchBytes = 16384;

/// True when Eigen converts packets of S to packets of float of the same width (bfloat16 and half
/// with AVX or AVX-512).
template <class S> constexpr bool packet_widening() {
  using namespace Eigen::internal;
  if constexpr (!packet_traits<S>::Vectorizable || !packet_traits<float>::Vectorizable) {
    return false;
  } else {
    return static_cast<int>(unpacket_traits<typename packet_traits<S>::type>::size) ==
           static_cast<int>(unpacket_traits<typename packet_traits<float>::type>::size);
  }
}

/// bfloat16 / half → float for the fused kernel's blocks: Eigen packet casts where they exist,
/// scalar conversions otherwise (the way back is row_affine_narrow: round to nearest even, NaN kept).
template <class S> inline void widen_row(const S* in, float* out, Eigen::Index n) {
  Eigen::Index j = 0;
  if constexpr (packet_widening<S>()) {
    using namespace Eigen::internal;
    using PS = typename packet_traits<S>::type;
    using PF = typename packet_traits<float>::type;
    constexpr Eigen::Index W = unpacket_traits<PF>::size;
    for (; j + W <= n; j += W) pstoreu(out + j, pcast<PS, PF>(ploadu<PS>(in + j)));
  }
  for (; j < n; ++j) out[j] = static_cast<float>(in[j]);
}

/// exp(r) for the Cody–Waite remainder of x = k·ln2 + r (k = round(x/ln2) given): the Cephes
/// degree-6 polynomial of Eigen's pexp. Shared by both branches of pexp_nonpositive.
template <class Packet> Packet exp_reduced(const Packet& x, const Packet& k) {
  using namespace Eigen::internal;
  Packet r = pmadd(k, pset1<Packet>(-0.693359375f), x);
  r = pmadd(k, pset1<Packet>(2.12194440e-4f), r);
  Packet y = pset1<Packet>(1.9875691500e-4f);
  y = pmadd(y, r, pset1<Packet>(1.3981999507e-3f));
  y = pmadd(y, r, pset1<Packet>(8.3334519073e-3f));
  y = pmadd(y, r, pset1<Packet>(4.1665795894e-2f));
  y = pmadd(y, r, pset1<Packet>(1.6666665459e-1f));
  y = pmadd(y, r, pset1<Packet>(5.0000001201e-1f));
  return pmadd(y, pmul(r, r), padd(r, pset1<Packet>(1.0f)));
}

/// exp(x) for float packets with x <= 0 (the shifted logits z − m of the fused kernel): Cody–Waite
/// range reduction x = k·ln2 + r, |r| <= ln2/2, the Cephes degree-6 polynomial that Eigen's pexp
/// uses (about 1 ulp), and 2^k built directly in the exponent field — valid because k is in
/// [−126, 0] after the clamp at −87, so Eigen's general pldexp (which splits the scale into four
/// factors to handle any k) is not needed. Results below exp(−87) ≈ 1.6e−38 (FLT_MIN) are 0,
/// exp(−inf) is 0. About 17 vector operations instead of about 28 for Eigen 3.4's pexp.
template <class Packet> Packet pexp_nonpositive(const Packet& x_in) {
  using namespace Eigen::internal;
  if constexpr (!(std::is_same_v<typename unpacket_traits<Packet>::type, float> && kFastFloatExp)) {
    // Not Eigen's pexp: in double it clamps at −709.78, so exp(−20000) = 5.6e−309 and a row whose
    // other logits are 1e4 below the maximum got a loss of 1.7e−308 instead of 0 (SSE/AVX2 builds).
    return pexp_full(x_in);
  } else {
#if defined(EIGEN_VECTORIZE_AVX512)
    if constexpr (std::is_same_v<Packet, Packet16f>) {
      // AVX-512: vscalefps multiplies by 2^k and underflows to 0 by itself; the clamp at −110
      // keeps k finite (exp(−110) ≈ 1.7e−48 rounds to 0, as exp(−inf) must).
      const Packet x = pmax(x_in, pset1<Packet>(-110.0f));
      const Packet k = print(pmul(x, pset1<Packet>(1.44269504088896341f)));
      const Packet y = exp_reduced(x, k);
      return _mm512_scalef_ps(y, k);
    }
#endif
    using PacketI = typename unpacket_traits<Packet>::integer_packet;
    const Packet lo = pset1<Packet>(-87.0f);
    const Packet x = pmax(x_in, lo);
    const Packet k = print(pmul(x, pset1<Packet>(1.44269504088896341f)));
    const Packet y = exp_reduced(x, k);
    const PacketI bits = plogical_shift_left<23>(padd(pcast<Packet, PacketI>(k), pset1<PacketI>(127)));
    const Packet result = pmul(y, preinterpret<Packet>(bits));
    return pand(result, pcmp_lt(lo, x_in)); // 0 below the clamp (and for −inf)
  }
}

/// Pass 1: the maximum of a contiguous row, vectorised with Eigen packets. kPropagateNaN: a NaN
/// anywhere gives NaN; otherwise a NaN may or may not be returned (the fused kernel then finds it
/// in its sums, which a NaN always reaches).
template <class Acc, bool kPropagateNaN = true> Acc row_max(const Acc* x, Eigen::Index n) {
  using namespace Eigen::internal;
  using Packet = typename packet_traits<Acc>::type;
  constexpr Eigen::Index W = unpacket_traits<Packet>::size;
  Eigen::Index j = 0;
  Acc m = -std::numeric_limits<Acc>::infinity();
  if constexpr (W > 1) {
    if (n >= 4 * W) {
      Packet m0 = ploadu<Packet>(x), m1 = ploadu<Packet>(x + W), m2 = ploadu<Packet>(x + 2 * W),
             m3 = ploadu<Packet>(x + 3 * W);
      constexpr int kNaN = kPropagateNaN ? Eigen::PropagateNaN : Eigen::PropagateFast;
      for (j = 4 * W; j + 4 * W <= n; j += 4 * W) {
        m0 = pmax<kNaN>(m0, ploadu<Packet>(x + j));
        m1 = pmax<kNaN>(m1, ploadu<Packet>(x + j + W));
        m2 = pmax<kNaN>(m2, ploadu<Packet>(x + j + 2 * W));
        m3 = pmax<kNaN>(m3, ploadu<Packet>(x + j + 3 * W));
      }
      m0 = pmax<kNaN>(pmax<kNaN>(m0, m1), pmax<kNaN>(m2, m3));
      m = predux_max<kNaN>(m0);
    }
  }
  for (; j < n; ++j) {
    const Acc v = x[j];
    if (std::isnan(v)) return v;
    m = v > m ? v : m;
  }
  return m;
}

/// Pass 2 of a row with maximum m of z = x·inv_t: returns s = Σ exp(z_j − m) as (count of j with
/// z_j = m) + (the sum over the others) in `rest`, so log s = log1p(rest + count − 1) keeps the
/// digits of a small loss (a float sum that holds the 1 of the maximum would lose everything below
/// 6e-8 of the rest). If `kDist`, Σ (m − z_j) goes into *dist, else Σ z_j (NaN if any z_j is NaN:
/// the exponentials flush NaN to 0, so this is how the caller learns of one). The exponentials are stored into `e`
/// when kStore (e may equal x). Float sums within chunks of 4096 elements, double across chunks.
/// `prefetch`, when not null, is the start of the data the caller reads next (the next block):
/// one prefetch per packet of this block, so memory streams in while exponentials are computed.
template <bool kStore, bool kDist, class Acc>
double row_exp_sum(const Acc* x, Acc* e, Eigen::Index n, Acc inv_t, Acc m, double* rest_out, double* dist,
                   const char* prefetch = nullptr, std::ptrdiff_t prefetch_bytes_per_element = 0) {
  using namespace Eigen::internal;
  using Packet = typename packet_traits<Acc>::type;
  constexpr Eigen::Index W = unpacket_traits<Packet>::size;
  constexpr Eigen::Index kChunk = 4096;
  const bool scaled = inv_t != Acc(1);
  double total = 0, total_count = 0, total_dist = 0;
  for (Eigen::Index start = 0; start < n; start += kChunk) {
    const Eigen::Index end = std::min(n, start + kChunk);
    Eigen::Index j = start;
    Acc chunk = 0, chunk_count = 0, chunk_dist = 0;
    if constexpr (W > 1) {
      const Packet pm = pset1<Packet>(m), pt = pset1<Packet>(inv_t), one = pset1<Packet>(Acc(1));
      const Packet ninf = pset1<Packet>(-std::numeric_limits<Acc>::infinity());
      Packet s0 = pzero(pm), s1 = pzero(pm), c0 = pzero(pm), c1 = pzero(pm), d0 = pzero(pm), d1 = pzero(pm);
      const auto step = [&](Eigen::Index at, Packet& s, Packet& cnt, Packet& d) {
#if defined(__GNUC__)
        if (prefetch) __builtin_prefetch(prefetch + at * prefetch_bytes_per_element, 0, 3);
#endif
        Packet z = ploadu<Packet>(x + at);
        if (scaled) z = pmul(z, pt);
        Packet ez = pexp_nonpositive(psub(z, pm));
        // exp(−inf) = 0 exactly (pexp_nonpositive's float versions give it; Eigen's pexp clamps its
        // argument, which leaves a subnormal instead)
        if constexpr (std::is_same_v<Acc, double> || !kFastFloatExp) ez = pselect(pcmp_eq(z, ninf), pzero(ez), ez);
        const Packet at_max = pcmp_eq(z, pm);
        s = padd(s, pselect(at_max, pzero(ez), ez));
        cnt = padd(cnt, pand(at_max, one));
        d = kDist ? padd(d, psub(pm, z)) : padd(d, z); // Σ z carries any NaN to the caller
        if constexpr (kStore) pstoreu(e + at, ez);
      };
      for (; j + 2 * W <= end; j += 2 * W) {
        step(j, s0, c0, d0);
        step(j + W, s1, c1, d1);
      }
      chunk = predux(padd(s0, s1));
      chunk_count = predux(padd(c0, c1));
      chunk_dist = predux(padd(d0, d1));
    }
    for (; j < end; ++j) {
      const Acc z = scaled ? x[j] * inv_t : x[j];
      const Acc ez = z == -std::numeric_limits<Acc>::infinity() ? Acc(0) : std::exp(z - m);
      if (z == m) {
        chunk_count += 1;
      } else {
        chunk += ez;
      }
      chunk_dist += kDist ? m - z : z;
      if constexpr (kStore) e[j] = ez;
    }
    total += static_cast<double>(chunk);
    total_count += static_cast<double>(chunk_count);
    total_dist += static_cast<double>(chunk_dist);
  }
  *dist = total_dist; // kDist: Σ (m − z); otherwise Σ z, whose only use is to reveal a NaN
  *rest_out = total;
  return total_count;
}

/// Pass 3: g_j = e_j·alpha − beta over a contiguous row (g may equal e); one fused multiply-add per
/// packet (the scalar tail rounds twice).
template <class Acc> void row_affine(const Acc* e, Acc* g, Eigen::Index n, Acc alpha, Acc beta) {
  using namespace Eigen::internal;
  using Packet = typename packet_traits<Acc>::type;
  constexpr Eigen::Index W = unpacket_traits<Packet>::size;
  Eigen::Index j = 0;
  if constexpr (W > 1) {
    const Packet pa = pset1<Packet>(alpha), minus_b = pset1<Packet>(-beta);
    for (; j + W <= n; j += W) pstoreu(g + j, pmadd(ploadu<Packet>(e + j), pa, minus_b));
  }
  for (; j < n; ++j) g[j] = e[j] * alpha - beta;
}

/// Pass 3 for 16-bit rows: g_j = S(e_j·alpha − beta), converted in registers (no float copy); one
/// fused multiply-add per packet, as row_affine.
template <class S> void row_affine_narrow(const float* e, S* g, Eigen::Index n, float alpha, float beta) {
  Eigen::Index j = 0;
  if constexpr (packet_widening<S>()) {
    using namespace Eigen::internal;
    using PS = typename packet_traits<S>::type;
    using PF = typename packet_traits<float>::type;
    constexpr Eigen::Index W = unpacket_traits<PF>::size;
    const PF pa = pset1<PF>(alpha), minus_b = pset1<PF>(-beta);
    for (; j + W <= n; j += W) pstoreu(g + j, pcast<PF, PS>(pmadd(ploadu<PF>(e + j), pa, minus_b)));
  }
  for (; j < n; ++j) g[j] = static_cast<S>(e[j] * alpha - beta);
}

#if defined(NLL_CATEGORICAL_AVX512)
#if defined(__GNUC__)
#define NLL_CATEGORICAL_NOINLINE __attribute__((noinline))
#else
#define NLL_CATEGORICAL_NOINLINE
#endif
namespace avx512_categorical {

/// The constants of exp32 (kept in registers across a block).
struct ExpConstants {
  __m512 table_lo = _mm512_setr_ps(1.0f, 1.0218972f, 1.04427373f, 1.06714046f, 1.09050775f, 1.1143868f, 1.13878858f,
                                   1.1637249f, 1.18920708f, 1.21524739f, 1.24185777f, 1.26905096f, 1.29683959f,
                                   1.32523668f, 1.35425556f, 1.38390994f); // 2^(j/32), j < 16, rounded to float
  __m512 table_hi = _mm512_setr_ps(1.41421354f, 1.44518077f, 1.47682619f, 1.50916445f, 1.54221082f, 1.5759809f,
                                   1.61049032f, 1.64575553f, 1.68179286f, 1.71861935f, 1.75625217f, 1.79470909f,
                                   1.8340081f, 1.87416768f, 1.91520655f, 1.95714414f); // j >= 16
  __m512 floor_arg = _mm512_set1_ps(-110.0f); // exp(−110) ≈ 1.7e−48 rounds to 0 in float
  __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
  __m512 shifter = _mm512_set1_ps(393216.0f);                // 1.5·2^18: adding it rounds to a multiple of 1/32
  __m512 minus_ln2_hi = _mm512_set1_ps(-0.693145751953125f); // ln 2 = hi + lo
  __m512 minus_ln2_lo = _mm512_set1_ps(-1.428606765330187e-06f);
  __m512 minus_ln2 = _mm512_set1_ps(-0.693147182464599609375f); // ln 2 rounded to float
  __m512 c1 = _mm512_set1_ps(1.00001477185f); // minimax (relative) e^r ≈ 1 + r·(c1 + c2·r), |r| ≤ ln2/64
  __m512 c2 = _mm512_set1_ps(0.500011078332f);
};

/// exp(d) lane-wise for d ≤ 0 (−inf included; a NaN lane gives NaN) of kN packets, in place.
/// Table method with 32 entries: v = round(32·d/ln 2)/32 (the fused multiply-add with the shifter
/// 1.5·2^18 rounds to a multiple of 1/32 and leaves n = 32·v in the low mantissa bits), r = d − v·ln 2
/// in two steps (|r| ≤ ln2/64), exp(d) = 2^floor(v) · T[n mod 32] · (1 + r·(c1 + c2·r)) with
/// T[j] = 2^(j/32) from a two-register table (vpermi2ps), the degree-2 minimax polynomial of e^r on
/// |r| ≤ ln2/64 (relative error 5.4e−8), and the power of two applied by vscalefps (correct
/// rounding into the subnormal range, 0 below it). Against double exp on [−104, 0]: at most 1.74 ulp
/// (tests/test_categorical_api.cpp; pexp_nonpositive's Cephes polynomial of degree 6: 1.26 ulp on
/// [−87, 0]). About 11 vector operations against about 14 for the Cephes version, whose operations,
/// not its accuracy, bounded the fused kernel (docs/performance.md).
///
/// The kN packets are computed stage by stage, so that their independent chains are interleaved in
/// program order. kOneStepReduction: r = d − v·ln2 with ln2 rounded to float, one fused
/// multiply-add instead of two; ln2's rounding error (1.9e−9) then adds up to |v|·1.9e−9 =
/// |d|·2.7e−9 to the relative error (at most 5.5 ulp on [−104, 0], 2.2 ulp on [−10, 0]:
/// tests/test_categorical_api.cpp). The block passes of bfloat16 rows use it: the gradient is
/// rounded to 2^−9 and the sum is dominated by its terms near d = 0, and it removes one of the
/// seven operations per packet that the two FMA pipes execute (docs/performance.md).
template <int kN, bool kOneStepReduction = false> inline void exp32_n(__m512 (&d)[kN], const ExpConstants& c) {
  __m512 u[kN], v[kN], r[kN], t[kN];
  for (int i = 0; i < kN; ++i) d[i] = _mm512_max_ps(c.floor_arg, d[i]); // second operand: NaN stays NaN
  for (int i = 0; i < kN; ++i) u[i] = _mm512_fmadd_ps(d[i], c.log2e, c.shifter);
  for (int i = 0; i < kN; ++i) v[i] = _mm512_sub_ps(u[i], c.shifter);
  if constexpr (kOneStepReduction) {
    for (int i = 0; i < kN; ++i) r[i] = _mm512_fmadd_ps(v[i], c.minus_ln2, d[i]);
  } else {
    for (int i = 0; i < kN; ++i) r[i] = _mm512_fmadd_ps(v[i], c.minus_ln2_hi, d[i]);
  }
  for (int i = 0; i < kN; ++i) t[i] = _mm512_permutex2var_ps(c.table_lo, _mm512_castps_si512(u[i]), c.table_hi);
  if constexpr (!kOneStepReduction) {
    for (int i = 0; i < kN; ++i) r[i] = _mm512_fmadd_ps(v[i], c.minus_ln2_lo, r[i]);
  }
  for (int i = 0; i < kN; ++i) u[i] = _mm512_mul_ps(_mm512_fmadd_ps(c.c2, r[i], c.c1), r[i]);
  for (int i = 0; i < kN; ++i) d[i] = _mm512_scalef_ps(_mm512_fmadd_ps(t[i], u[i], t[i]), v[i]);
}

/// exp32_n of one packet.
template <bool kOneStepReduction = false> inline __m512 exp32(__m512 d, const ExpConstants& c) {
  __m512 packets[1] = {d};
  exp32_n<1, kOneStepReduction>(packets, c);
  return packets[0];
}

/// Lanes [0, count) of a 16-lane mask, count in [0, 16].
inline __mmask16 first_lanes(Eigen::Index count) {
  return count >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << count) - 1u);
}

/// Loads the lanes `lanes` of p as floats (others 0): floats, or bfloat16 widened by a 16-bit shift.
template <class In> inline __m512 load_lanes(const In* p, __mmask16 lanes) {
  if constexpr (std::is_same_v<In, float>) {
    return _mm512_maskz_loadu_ps(lanes, p);
  } else {
#if defined(NLL_CATEGORICAL_AVX512_BF16_DIRECT)
    static_assert(std::is_same_v<In, Eigen::bfloat16>);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(lanes, p)), 16));
#else
    static_assert(std::is_same_v<In, float>, "16-bit loads need AVX-512 BW and VL");
    return _mm512_setzero_ps();
#endif
  }
}

#if defined(NLL_CATEGORICAL_AVX512_BF16_DIRECT)
/// The 32 bfloat16 values at p as two float vectors without a shuffle: `even` holds p[0], p[2], …,
/// p[30] (the low half of each 32-bit lane, shifted up) and `odd` holds p[1], p[3], …, p[31] (the
/// high half, masked). The block passes read full groups of 32 this way; the exponentials are then
/// stored in "pair order": e[0..15] = the even entries of the group, e[16..31] = the odd ones
/// (detail::exp_position), and affine_bf16_pairs interleaves them back when writing the gradient.
inline void load_bf16_pairs(const Eigen::bfloat16* p, __m512& even, __m512& odd) {
  const __m512i w = _mm512_loadu_si512(p);
  even = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  odd = _mm512_castsi512_ps(_mm512_and_si512(w, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

/// The maximum of bfloat16 values on their raw 16-bit patterns as signed integers: non-negative
/// values (sign bit clear) are ordered as the floats and above every negative one; negative values
/// are ordered in reverse. So the largest float is the largest integer when that is >= 0 (a value
/// >= +0 exists; a positive NaN is above +inf and is returned), and otherwise the smallest integer
/// (-0.0 = 0x8000 is the smallest of all, -inf = 0xff80 is above every finite negative; a negative
/// NaN is never returned: as for row_max<float, false>, NaN reaches the exponential sums). Two
/// integer operations per 32 values and no widening.
struct Bf16Max {
  __m512i largest = _mm512_set1_epi16(std::numeric_limits<std::int16_t>::min());
  __m512i smallest = _mm512_set1_epi16(std::numeric_limits<std::int16_t>::max());
  /// The 32 values at p, or its first `count` (< 32).
  void add(const Eigen::bfloat16* p, Eigen::Index count = 32) {
    if (count >= 32) {
      const __m512i v = _mm512_loadu_si512(p);
      largest = _mm512_max_epi16(largest, v);
      smallest = _mm512_min_epi16(smallest, v);
    } else {
      const __mmask32 k = (__mmask32{1} << count) - 1;
      largest = _mm512_max_epi16(largest, _mm512_mask_loadu_epi16(largest, k, p));
      smallest = _mm512_min_epi16(smallest, _mm512_mask_loadu_epi16(smallest, k, p));
    }
  }
  /// Values [from, n) of p.
  void add_range(const Eigen::bfloat16* p, Eigen::Index from, Eigen::Index n) {
    for (; from < n; from += 32) add(p + from, n - from);
  }
  float value() const {
    const auto widen = [](__m512i v, int half) {
      return _mm512_cvtepi16_epi32(half == 0 ? _mm512_castsi512_si256(v) : _mm512_extracti64x4_epi64(v, 1));
    };
    const int top = _mm512_reduce_max_epi32(_mm512_max_epi32(widen(largest, 0), widen(largest, 1)));
    const int bits = top >= 0 ? top : _mm512_reduce_min_epi32(_mm512_min_epi32(widen(smallest, 0), widen(smallest, 1)));
    return std::bit_cast<float>(static_cast<std::uint32_t>(static_cast<std::uint16_t>(bits)) << 16);
  }
};
#endif

/// row_exp_sum for float (or, read directly, bfloat16) blocks; same contract, with n ≤ kFusedBlock
/// so that one float sum per lane suffices: rest = Σ exp(z_j − m) over the lanes with z_j ≠ m
/// (unordered compare: a NaN lane is included and makes rest NaN, which is how the caller learns of
/// it), the count of z_j = m is returned (n minus the popcount of those masks), kDist: Σ (m − z_j)
/// into *dist (else *dist = 0). The mask-add and popcount replace the select, the count vector and
/// the NaN-revealing Σ z of row_exp_sum (three vector operations fewer). kMayHoldMax false: the
/// caller knows every z_j < m (the block's maximum is below the row's running maximum), so no lane
/// is compared and the count is 0. kPfBytes: bytes per element of the data at `prefetch` (logits
/// further on) and at `prefetch_w` (this block's 16-bit gradient, fetched for writing), one
/// prefetch per cache line. bfloat16 blocks: full groups of 32 are read with load_bf16_pairs and
/// their exponentials stored in pair order; the last n mod 32 in order. `next` (bfloat16 only, or
/// null): the next block, of `next_len` values, whose maximum (as max_bf16) goes to *next_max;
/// taken 64 values per iteration of the exponential loop (its loads and two integer operations
/// fill gaps of the arithmetic, instead of a pass of their own).
/// Never inlined (NLL_CATEGORICAL_NOINLINE): inlined into the row kernel, its register allocation
/// depended on the caller, and the float value pass ran at 10.4 ms in one program and 18 ms in
/// another (2048 × 32000, same header, same data); a call per block of kFusedBlock elements costs
/// nothing measurable.
template <bool kStore, bool kDist, bool kMayHoldMax, int kPfBytes, class In>
NLL_CATEGORICAL_NOINLINE double exp_sum(const In* x, float* e, Eigen::Index n, float inv_t, float m, double* rest_out,
                                        double* dist, const char* prefetch, char* prefetch_w,
                                        [[maybe_unused]] const In* next, [[maybe_unused]] Eigen::Index next_len,
                                        [[maybe_unused]] float* next_max) {
  const ExpConstants c;
  const __m512 pm = _mm512_set1_ps(m), pt = _mm512_set1_ps(inv_t);
  const bool scaled = inv_t != 1.0f;
  constexpr bool kOneStep = !std::is_same_v<In, float>; // bfloat16 rows: see exp32_n
#if defined(NLL_CATEGORICAL_AVX512_BF16_DIRECT)
  Bf16Max next_acc;
#endif
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, d0 = s0, d1 = s0, d2 = s0, d3 = s0;
  Eigen::Index below = 0, j = 0;
  // (Named accumulators passed by reference: in an array captured by a lambda, GCC 12 stored three
  // of them to the stack in every iteration, 5 % of the float value-and-gradient time.)
  // The argument of the exponential for logits z (scaled in place by 1/T).
  const auto argument = [&](__m512& z) {
    if (scaled) z = _mm512_mul_ps(z, pt);
    return _mm512_sub_ps(z, pm);
  };
  // One packet after its exponentials ez: sum, count, distances, store (lanes `lanes` valid).
  const auto finish = [&](const __m512& z, const __m512& ez, Eigen::Index at, __mmask16 lanes, __m512& s, __m512& d) {
    __mmask16 summed = lanes;
    if constexpr (kMayHoldMax) summed = _mm512_mask_cmp_ps_mask(lanes, z, pm, _CMP_NEQ_UQ);
    s = _mm512_mask_add_ps(s, summed, s, ez);
    below += std::popcount(static_cast<unsigned>(summed));
    if constexpr (kDist) d = _mm512_mask_add_ps(d, lanes, d, _mm512_sub_ps(pm, z));
    if constexpr (kStore) _mm512_mask_storeu_ps(e + at, lanes, ez);
  };
  // 32 entries from x + at as two packets (pair order for bfloat16).
  const auto load32 = [&](Eigen::Index at, __m512& a, __m512& b) {
    if constexpr (std::is_same_v<In, float>) {
      a = _mm512_loadu_ps(x + at);
      b = _mm512_loadu_ps(x + at + 16);
    } else {
#if defined(NLL_CATEGORICAL_AVX512_BF16_DIRECT)
      load_bf16_pairs(x + at, a, b);
#endif
    }
  };
  // Four packets per iteration into four accumulators: more independent exponentials in flight
  // (9 % less time per packet on L1-resident data than two, docs/performance.md).
  for (; j + 64 <= n; j += 64) {
    if (prefetch) {
      _mm_prefetch(prefetch + j * kPfBytes, _MM_HINT_T0);
      _mm_prefetch(prefetch + j * kPfBytes + 64, _MM_HINT_T0);
      if constexpr (kPfBytes > 2) {
        _mm_prefetch(prefetch + j * kPfBytes + 128, _MM_HINT_T0);
        _mm_prefetch(prefetch + j * kPfBytes + 192, _MM_HINT_T0);
      }
    }
    if (prefetch_w) {
      _mm_prefetch(prefetch_w + j * kPfBytes, _MM_HINT_ET0);
      _mm_prefetch(prefetch_w + j * kPfBytes + 64, _MM_HINT_ET0);
    }
    __m512 z[4], ez[4];
    load32(j, z[0], z[1]);
    load32(j + 32, z[2], z[3]);
#if defined(NLL_CATEGORICAL_AVX512_BF16_DIRECT)
    if constexpr (std::is_same_v<In, Eigen::bfloat16>) {
      if (next && j + 64 <= next_len) {
        next_acc.add(next + j);
        next_acc.add(next + j + 32);
      }
    }
#endif
    for (int q = 0; q < 4; ++q) ez[q] = argument(z[q]);
    exp32_n<4, kOneStep>(ez, c);
    finish(z[0], ez[0], j, 0xFFFF, s0, d0);
    finish(z[1], ez[1], j + 16, 0xFFFF, s1, d1);
    finish(z[2], ez[2], j + 32, 0xFFFF, s2, d2);
    finish(z[3], ez[3], j + 48, 0xFFFF, s3, d3);
  }
  if (j + 32 <= n) {
    __m512 z[2], ez[2];
    load32(j, z[0], z[1]);
    for (int q = 0; q < 2; ++q) ez[q] = argument(z[q]);
    exp32_n<2, kOneStep>(ez, c);
    finish(z[0], ez[0], j, 0xFFFF, s0, d0);
    finish(z[1], ez[1], j + 16, 0xFFFF, s1, d1);
    j += 32;
  }
  for (; j < n; j += 16) {
    const __mmask16 lanes = first_lanes(n - j);
    __m512 z = load_lanes(x + j, lanes);
    __m512 ez[1] = {argument(z)};
    exp32_n<1, kOneStep>(ez, c);
    finish(z, ez[0], j, lanes, s0, d0);
  }
#if defined(NLL_CATEGORICAL_AVX512_BF16_DIRECT)
  if constexpr (std::is_same_v<In, Eigen::bfloat16>) {
    if (next) { // the values of the next block the loop above did not reach
      next_acc.add_range(next, std::min(n - n % 64, next_len - next_len % 64), next_len);
      *next_max = next_acc.value();
    }
  }
#endif
  const auto total = [](__m512 a, __m512 b, __m512 c2, __m512 d) {
    return static_cast<double>(_mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), _mm512_add_ps(c2, d))));
  };
  *rest_out = total(s0, s1, s2, s3);
  *dist = kDist ? total(d0, d1, d2, d3) : 0.0;
  return static_cast<double>(n - below);
}

#if defined(NLL_CATEGORICAL_AVX512_BF16_DIRECT)
/// The maximum of the bfloat16 values in[0, n) (Bf16Max; as row_max<float, false>, a NaN may or
/// may not be returned: it reaches the exponential sums).
inline float max_bf16(const Eigen::bfloat16* in, Eigen::Index n) {
  Bf16Max acc;
  acc.add_range(in, 0, n);
  return acc.value();
}

/// Pass 3 for a bfloat16 block whose exponentials exp_sum stored in pair order: g_j =
/// bf16(e_j·alpha − beta) in natural order. Per full group of 32: two fused multiply-adds, the
/// rounding to bfloat16 as Eigen's packet cast does it (so the same bits as row_affine_narrow),
/// and one shuffle that interleaves the even and odd halves; the last n mod 32 as
/// row_affine_narrow. Where Eigen's cast is vcvtneps2bf16 (AVX512-BF16 with GCC), vcvtne2ps2bf16
/// rounds both halves in one instruction (the same rounding; about 1 % of the bfloat16 kernel).
inline void affine_bf16_pairs(const float* e, Eigen::bfloat16* g, Eigen::Index n, float alpha, float beta) {
  using namespace Eigen::internal;
  const __m512 pa = _mm512_set1_ps(alpha), minus_b = _mm512_set1_ps(-beta);
  Eigen::Index j = 0;
#if defined(EIGEN_VECTORIZE_AVX512BF16) && EIGEN_GNUC_AT_LEAST(10, 1)
  // Output entry k of a group takes entry k/2 (even k) or 16 + k/2 (odd k) of [even half | odd half].
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22,
                                              6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  for (; j + 32 <= n; j += 32) {
    const __m512 even = _mm512_fmadd_ps(_mm512_loadu_ps(e + j), pa, minus_b);
    const __m512 odd = _mm512_fmadd_ps(_mm512_loadu_ps(e + j + 16), pa, minus_b);
    const __m512bh both = _mm512_cvtne2ps_pbh(odd, even); // even half in the low 256 bits
    _mm512_storeu_si512(g + j, _mm512_permutexvar_epi16(interleave, reinterpret_cast<const __m512i&>(both)));
  }
#else
  // Output entry k of a group takes the even half's k/2 (index k/2) or the odd half's (32 + k/2).
  const __m512i interleave = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38,
                                              6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
  for (; j + 32 <= n; j += 32) {
    const Packet16bf even = pcast<Packet16f, Packet16bf>(_mm512_fmadd_ps(_mm512_loadu_ps(e + j), pa, minus_b));
    const Packet16bf odd = pcast<Packet16f, Packet16bf>(_mm512_fmadd_ps(_mm512_loadu_ps(e + j + 16), pa, minus_b));
    const __m512i both =
        _mm512_permutex2var_epi16(_mm512_zextsi256_si512(even), interleave, _mm512_zextsi256_si512(odd));
    _mm512_storeu_si512(g + j, both);
  }
#endif
  row_affine_narrow(e + j, g + j, n - j, alpha, beta);
}
#endif

} // namespace avx512_categorical
#endif // NLL_CATEGORICAL_AVX512

/// The fused kernel's per-block exponential sum: the AVX-512 kernel for float blocks when compiled
/// in (kMayHoldMax and the next block's maximum: see there), otherwise row_exp_sum (Eigen packets,
/// which always compares; `next` is then null). Same contract as row_exp_sum (n ≤ kFusedBlock).
template <bool kStore, bool kDist, bool kMayHoldMax, int kPfBytes, class Acc, class In>
double block_exp_sum(const In* x, Acc* e, Eigen::Index n, Acc inv_t, Acc m, double* rest_out, double* dist,
                     const char* prefetch, [[maybe_unused]] char* prefetch_w, [[maybe_unused]] const In* next,
                     [[maybe_unused]] Eigen::Index next_len, [[maybe_unused]] Acc* next_max) {
#if defined(NLL_CATEGORICAL_AVX512)
  if constexpr (std::is_same_v<Acc, float>) {
    return avx512_categorical::exp_sum<kStore, kDist, kMayHoldMax, kPfBytes>(
        x, e, n, inv_t, m, rest_out, dist, prefetch, prefetch_w, next, next_len, next_max);
  } else
#endif
  {
    static_assert(std::is_same_v<In, Acc>);
    return row_exp_sum<kStore, kDist>(x, e, n, inv_t, m, rest_out, dist, prefetch, kPfBytes);
  }
}

/// Whether the fused kernel reads 16-bit rows of S directly, widening in registers (bfloat16 with
/// AVX-512 BW/VL); otherwise each block is widened into a float buffer first.
template <class S> constexpr bool direct_16bit() {
#if defined(NLL_CATEGORICAL_AVX512) && defined(NLL_CATEGORICAL_AVX512_BF16_DIRECT)
  return std::is_same_v<S, Eigen::bfloat16>;
#else
  return false;
#endif
}

/// Where the block passes stored the exponential of entry q of a block of n (in order, or in pair
/// order for bfloat16 read directly: see avx512_categorical::load_bf16_pairs).
template <class S> constexpr Eigen::Index exp_position(Eigen::Index q, Eigen::Index n) {
  if constexpr (direct_16bit<S>()) {
    if (q < n - n % 32) return (q & ~Eigen::Index(31)) + (q & 1) * 16 + ((q & 31) >> 1);
  }
  return q;
}

/// Pass 3 of a 16-bit block: row_affine_narrow, or for bfloat16 read directly affine_bf16_pairs.
template <class S> void block_affine_narrow(const float* e, S* g, Eigen::Index n, float alpha, float beta) {
#if defined(NLL_CATEGORICAL_AVX512) && defined(NLL_CATEGORICAL_AVX512_BF16_DIRECT)
  if constexpr (std::is_same_v<S, Eigen::bfloat16>) {
    avx512_categorical::affine_bf16_pairs(e, g, n, alpha, beta);
    return;
  }
#endif
  row_affine_narrow(e, g, n, alpha, beta);
}

/// The maximum of a 16-bit block read directly (only called when direct_16bit<S>()).
template <class S> float block_max_direct([[maybe_unused]] const S* in, [[maybe_unused]] Eigen::Index n) {
#if defined(NLL_CATEGORICAL_AVX512) && defined(NLL_CATEGORICAL_AVX512_BF16_DIRECT)
  if constexpr (std::is_same_v<S, Eigen::bfloat16>) return avx512_categorical::max_bf16(in, n);
#endif
  return 0;
}

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

} // namespace detail

/// The categorical family (see the file comment for every formula). A Distribution and a
/// DifferentiableDistribution for params = an N×C Eigen matrix expression (logits, or
/// log-probabilities when `input` is log_probs) and targets = class indices (any integer vector of
/// length N), probabilities (an N×C Eigen matrix), or nll::as_logits(p_logits). Gradients go into an
/// N×C Eigen matrix (it may be params itself). Row-major storage takes the fused kernel.
class Categorical {
public:
  /// What the parameter rows are.
  enum class Input { logits, log_probs };

  Categorical() = default;
  /// The family of cross_entropy with these options (their driver fields are not used here).
  explicit Categorical(const CrossEntropyOptions& o)
      : class_weight_view_(o.class_weight), class_mask_view_(o.class_mask), ignore_index_(o.ignore_index),
        label_smoothing_(o.label_smoothing), z_loss_(o.z_loss), soft_cap_(o.soft_cap), temperature_(o.temperature),
        outputs_(o.outputs) {
    load_views();
  }
  /// The family of nll_loss (log-probability input).
  explicit Categorical(const NllLossOptions& o)
      : class_weight_view_(o.class_weight), ignore_index_(o.ignore_index), input_(Input::log_probs) {
    load_views();
  }

  Input input() const { return input_; }

  /// Rows per driver block: a row is a whole vocabulary (up to megabytes), so small blocks give
  /// OpenMP threads enough blocks to share (512 rows = 32 blocks) at no cost per row.
  static constexpr Eigen::Index block_size = 16;

  template <class P, class T> Eigen::Index num_examples(const P& params, const T&) const { return params.rows(); }

  /// Structural checks (see cross_entropy for the list); nothing is evaluated or written.
  template <class P, class T> void check(const P& params, const T& targets, std::string_view fn) const {
    static_assert(is_supported_scalar_v_of<P>(), "nll::Categorical: params must be float, double, long double, "
                                                 "Eigen::half or Eigen::bfloat16");
    const std::string_view pname = input_ == Input::logits ? "logits" : "log_probs";
    const Eigen::Index n = params.rows(), c = params.cols();
    if (c < 1) fail(ErrorKind::shape, fn, std::string(pname) + ".cols()", static_cast<long long>(c), ">= 1 (classes)");
    check_class_view(fn, "options.class_weight", class_weight_view_, c);
    check_class_view(fn, "options.class_mask", class_mask_view_, c);
    for (std::size_t k = 0; k < class_weight_.size(); ++k) {
      const double w = class_weight_[k];
      if (!(w >= 0) || !std::isfinite(w))
        fail_at(ErrorKind::value, fn, "options.class_weight", static_cast<long long>(k), w, "finite and >= 0");
    }
    if (!keep_.empty()) {
      for (std::size_t k = 0; k < keep_.size(); ++k) {
        const double m = class_mask_view_[static_cast<std::ptrdiff_t>(k)];
        if (!(m == 0 || m == 1))
          fail_at(ErrorKind::value, fn, "options.class_mask", static_cast<long long>(k), m, "0 or 1");
      }
      if (kept_ == 0) fail(ErrorKind::value, fn, "the number of classes options.class_mask keeps", 0LL, ">= 1");
    }
    if (!(label_smoothing_ >= 0 && label_smoothing_ <= 1))
      fail(ErrorKind::value, fn, "options.label_smoothing", label_smoothing_, "in [0, 1]");
    if (!(z_loss_ >= 0) || !std::isfinite(z_loss_))
      fail(ErrorKind::value, fn, "options.z_loss", z_loss_, "finite and >= 0");
    if (!(soft_cap_ >= 0) || !std::isfinite(soft_cap_))
      fail(ErrorKind::value, fn, "options.soft_cap", soft_cap_, "finite and >= 0 (0 turns it off)");
    if (!(temperature_ > 0) || !std::isfinite(temperature_))
      fail(ErrorKind::value, fn, "options.temperature", temperature_, "finite and > 0");
    check_output(fn, "options.outputs.log_sum_exp.size()", outputs_.log_sum_exp.size(), n);
    check_output(fn, "options.outputs.argmax.size()", outputs_.argmax.size(), n);
    check_output(fn, "options.outputs.target_is_argmax.size()", outputs_.target_is_argmax.size(), n);
    check_output(fn, "options.outputs.loss.size()", outputs_.loss.size(), n);

    if constexpr (detail::ClassIndexTargets<T>) {
      check_size(fn, "targets.size()", detail::index_count(targets), n, std::string(pname) + ".rows()");
      for (Eigen::Index i = 0; i < n; ++i) {
        const long long y = detail::index_at(targets, i);
        if (y == ignore_index_) continue;
        if (y < 0 || y >= c) {
          const std::string req = "in [0, " + std::to_string(c) + ") or equal to options.ignore_index (" +
                                  std::to_string(ignore_index_) + ")";
          fail_at(ErrorKind::value, fn, "targets", static_cast<long long>(i), y, req);
        }
        if (!keep_.empty() && !keep_[static_cast<std::size_t>(y)])
          fail_at(ErrorKind::value, fn, "targets", static_cast<long long>(i), y, "a class options.class_mask keeps");
      }
    } else if constexpr (detail::is_logit_targets<T>::value) {
      static_assert(detail::ProbabilityTargets<std::remove_cvref_t<decltype(targets.logits)>>,
                    "nll::Categorical: as_logits() needs a floating-point Eigen matrix");
      check_soft_common(fn, params, targets.logits, pname, "targets.logits");
    } else {
      static_assert(detail::ProbabilityTargets<T>,
                    "nll::Categorical: targets must be class indices (an integer vector) or probabilities "
                    "(a floating-point Eigen matrix shaped like the logits)");
      if (input_ == Input::log_probs)
        fail(ErrorKind::shape, fn, "targets.cols()", static_cast<long long>(targets.cols()),
             "a vector of class indices (nll_loss takes class indices)");
      check_soft_common(fn, params, targets, pname, "targets");
      for (Eigen::Index i = 0; i < n; ++i) {
        for (Eigen::Index k = 0; k < c; ++k) {
          const auto q = targets.coeff(i, k); // reported in its own type
          const bool removed = !keep_.empty() && !keep_[static_cast<std::size_t>(k)];
          if (static_cast<double>(q) < 0) fail(ErrorKind::value, fn, element_name(i, k), q, ">= 0 (a probability)");
          if (removed && static_cast<double>(q) != 0)
            fail(ErrorKind::value, fn, element_name(i, k), q, "0 (class " + std::to_string(k) + " is masked)");
        }
      }
    }
  }

  /// The gradient buffer must have the shape of params.
  template <class P, class T, class G>
  void check_gradient(const P& params, const T&, const G& grad, std::string_view fn) const {
    check_same_shape(fn, params, grad, input_ == Input::logits ? "logits" : "log_probs", "grad");
  }

  /// ignore_index, for class-index targets.
  template <class T> bool ignored(const T& targets, Eigen::Index i) const {
    if constexpr (detail::ClassIndexTargets<T>) {
      return detail::index_at(targets, i) == ignore_index_;
    } else {
      return false;
    }
  }

  /// v_i: the class weight of the target (class-index targets), 1 for probability targets.
  template <class T> double target_weight(const T& targets, Eigen::Index i) const {
    if constexpr (detail::ClassIndexTargets<T>) {
      return class_weight_.empty() ? 1.0 : class_weight_[static_cast<std::size_t>(detail::index_at(targets, i))];
    } else {
      return 1.0;
    }
  }

  template <class P, class T> double neg_log_prob(const P& params, const T& targets, Eigen::Index i) const {
    return static_cast<double>(row_loss(params, targets, i, 1.0, static_cast<detail::NoGradient*>(nullptr)));
  }

  template <class P, class T, class G>
  double neg_log_prob_grad(const P& params, const T& targets, Eigen::Index i, double scale, G& grad) const {
    return static_cast<double>(row_loss(params, targets, i, scale, &grad));
  }

  template <class G> void zero_grad(G& grad, Eigen::Index i) const { grad.row(i).setZero(); }

  /// Fused block kernel, value only.
  template <class P, class T> double neg_log_prob_block(const P& params, const T& targets, const Block& b) const {
    return block_kernel(params, targets, b, static_cast<detail::NoGradient*>(nullptr));
  }
  /// Fused block kernel, value and gradient.
  template <class P, class T, class G>
  double neg_log_prob_grad_block(const P& params, const T& targets, const Block& b, G& grad) const {
    return block_kernel(params, targets, b, &grad);
  }

  /// Writes the "not evaluated" values into the per-row outputs of the rows that did not count.
  template <class T> void fill_outputs_of_rows_not_counting(const T& targets, const NllOptions& o, bool all) const {
    const Eigen::Index n = static_cast<Eigen::Index>(std::max(
        {outputs_.log_sum_exp.size(), outputs_.argmax.size(), outputs_.target_is_argmax.size(), outputs_.loss.size()}));
    for (Eigen::Index i = 0; i < n; ++i) {
      bool counts = !all;
      if (counts && !o.mask.empty() && o.mask[i] == 0) counts = false;
      if (counts && !o.weight.empty() && o.weight[i] == 0) counts = false;
      if (counts && ignored(targets, i)) counts = false;
      if (!counts) write_outputs(i, std::numeric_limits<double>::quiet_NaN(), -1, false, 0.0);
    }
  }

private:
  template <class P> static constexpr bool is_supported_scalar_v_of() {
    return detail::is_supported_scalar_v<std::remove_cv_t<detail::scalar_of_t<P>>>;
  }

  void load_views() {
    class_weight_ = detail::view_values(class_weight_view_);
    const std::vector<double> mask = detail::view_values(class_mask_view_);
    keep_.assign(mask.size(), 0);
    kept_ = 0;
    for (std::size_t k = 0; k < mask.size(); ++k) {
      keep_[k] = mask[k] != 0 ? 1 : 0;
      kept_ += keep_[k];
    }
  }

  static void check_class_view(std::string_view fn, const std::string& name, const ExampleView& v, Eigen::Index c) {
    if (v.empty()) return;
    if (detail::view_is_strided(v))
      fail(ErrorKind::shape, fn, name + ".innerStride()", "not 1", "1 (contiguous storage)");
    check_size(fn, name + ".size()", static_cast<long long>(v.size()), static_cast<long long>(c),
               "the number of classes");
  }

  static void check_output(std::string_view fn, std::string_view name, std::size_t size, Eigen::Index n) {
    if (size == 0) return;
    check_size(fn, name, static_cast<long long>(size), static_cast<long long>(n), "the number of examples");
  }

  static std::string element_name(Eigen::Index i, Eigen::Index k) {
    return "targets(" + std::to_string(i) + ", " + std::to_string(k) + ")";
  }

  template <class P, class Q>
  void check_soft_common(std::string_view fn, const P& params, const Q& q, std::string_view pname,
                         std::string_view qname) const {
    check_same_shape(fn, params, q, pname, qname);
    if (ignore_index_ >= 0)
      fail(ErrorKind::value, fn, "options.ignore_index", static_cast<long long>(ignore_index_),
           "negative with probability targets (ignore_index applies to class indices only)");
  }

  bool kept(Eigen::Index c) const { return keep_.empty() || keep_[static_cast<std::size_t>(c)]; }
  double class_w(Eigen::Index c) const {
    return class_weight_.empty() ? 1.0 : class_weight_[static_cast<std::size_t>(c)];
  }
  Eigen::Index kept_count(Eigen::Index c) const { return keep_.empty() ? c : static_cast<Eigen::Index>(kept_); }

  void write_outputs(Eigen::Index i, double lse, Eigen::Index argmax, bool hit, double loss) const {
    const auto k = static_cast<std::size_t>(i);
    if (!outputs_.log_sum_exp.empty()) outputs_.log_sum_exp[k] = lse;
    if (!outputs_.argmax.empty()) outputs_.argmax[k] = static_cast<std::int64_t>(argmax);
    if (!outputs_.target_is_argmax.empty()) outputs_.target_is_argmax[k] = hit ? 1 : 0;
    if (!outputs_.loss.empty()) outputs_.loss[k] = loss;
  }
  bool wants_outputs() const {
    return !outputs_.log_sum_exp.empty() || !outputs_.argmax.empty() || !outputs_.target_is_argmax.empty() ||
           !outputs_.loss.empty();
  }

  /// The per-example path: one row, scalar arithmetic in the accumulator type. Reads the whole row
  /// (into scratch) before writing the gradient, so grad may alias params.
  template <class P, class T, class G>
  auto row_loss(const P& params, const T& targets, Eigen::Index i, double scale_in, G* grad) const {
    using S = std::remove_cv_t<detail::scalar_of_t<P>>;
    using Acc = detail::accumulator_t<S>;
    using Real = detail::row_real_t<Acc>;
    constexpr bool kGrad = !std::is_same_v<G, detail::NoGradient>;
    const Eigen::Index c = params.cols();
    const Real inf = std::numeric_limits<Real>::infinity();
    const bool logits = input_ == Input::logits;
    const bool cap = logits && soft_cap_ > 0;
    const Acc kappa = static_cast<Acc>(soft_cap_);
    const Acc inv_t = logits ? static_cast<Acc>(1.0L / static_cast<long double>(temperature_)) : Acc(1);

    // z (transformed logits) and, for the soft-cap, sech²(x/κ).
    Acc* z = detail::scratch<Acc, 0>(c);
    Acc* dz = cap ? detail::scratch<Acc, 1>(c) : nullptr;
    for (Eigen::Index k = 0; k < c; ++k) {
      Acc x = static_cast<Acc>(params.coeff(i, k));
      if (!kept(k)) {
        z[k] = -std::numeric_limits<Acc>::infinity();
        continue;
      }
      if (cap) {
        const Acc u = x / kappa;
        const Acc ch = std::cosh(u);
        dz[k] = Acc(1) / (ch * ch);
        x = kappa * std::tanh(u);
      }
      z[k] = inv_t == Acc(1) ? x : x * inv_t;
    }
    // Max (NaN wins), argmax, lse.
    Acc m = -std::numeric_limits<Acc>::infinity();
    Eigen::Index argmax = 0;
    bool first = true;
    for (Eigen::Index k = 0; k < c; ++k) {
      if (!kept(k)) continue;
      if (std::isnan(z[k])) {
        m = z[k];
        argmax = k;
        break;
      }
      if (first || z[k] > m) {
        m = z[k];
        argmax = k;
        first = false;
      }
    }
    // lse = m + log s, s = Σ exp(z − m) = (count of z = m) + rest; log s = log1p(count − 1 + rest)
    // keeps the digits of a small loss, and each term is (m − z_k) + log s (never lse − z_k, which
    // cancels when z_k is near the maximum).
    Real lse = 0, log_s = 0;
    const bool finite_max = logits && std::isfinite(m);
    if (logits) {
      if (!finite_max) {
        lse = static_cast<Real>(m);
      } else {
        detail::CompensatedSum<Real> rest;
        Real count = 0;
        for (Eigen::Index k = 0; k < c; ++k) {
          if (z[k] == m) {
            count += 1;
          } else if (z[k] != -std::numeric_limits<Acc>::infinity()) {
            rest.add(static_cast<Real>(std::exp(z[k] - m)));
          }
        }
        log_s = std::log1p((count - 1) + rest.value());
        lse = static_cast<Real>(m) + log_s;
      }
    }
    const auto gap = [&](Eigen::Index k) {
      return finite_max ? (static_cast<Real>(m) - static_cast<Real>(z[k])) + log_s : lse - static_cast<Real>(z[k]);
    };
    // Target coefficients B_k (stored in scratch slot 2), their sum, the target weight v.
    const Real eps = static_cast<Real>(label_smoothing_);
    const Real cp = static_cast<Real>(kept_count(c));
    Real* b = detail::scratch<Real, 2>(c);
    Real v = 1;
    Eigen::Index target_class = -1;
    if constexpr (detail::ClassIndexTargets<T>) {
      const Eigen::Index y = static_cast<Eigen::Index>(detail::index_at(targets, i));
      target_class = y;
      v = static_cast<Real>(class_w(y));
      for (Eigen::Index k = 0; k < c; ++k) b[k] = kept(k) ? eps * static_cast<Real>(class_w(k)) / cp : Real(0);
      b[y] += (1 - eps) * v;
    } else {
      Real* q = b;
      if constexpr (detail::is_logit_targets<T>::value) {
        // softmax of the target logits over the kept classes
        Real qm = -inf;
        bool nan = false;
        for (Eigen::Index k = 0; k < c; ++k) {
          if (!kept(k)) continue;
          const Real t = static_cast<Real>(targets.logits.coeff(i, k));
          if (std::isnan(t)) nan = true;
          qm = std::max(qm, t);
        }
        Real qs = 0;
        for (Eigen::Index k = 0; k < c; ++k) {
          const Real t = static_cast<Real>(targets.logits.coeff(i, k));
          q[k] = (!kept(k) || t == -inf) ? Real(0) : std::exp(t - qm);
          qs += q[k];
        }
        for (Eigen::Index k = 0; k < c; ++k) q[k] = nan ? std::numeric_limits<Real>::quiet_NaN() : q[k] / qs;
      } else {
        for (Eigen::Index k = 0; k < c; ++k) q[k] = static_cast<Real>(targets.coeff(i, k));
      }
      Real qbest = -inf;
      for (Eigen::Index k = 0; k < c; ++k) {
        if (q[k] > qbest) {
          qbest = q[k];
          target_class = k;
        }
        b[k] = kept(k) ? static_cast<Real>(class_w(k)) * ((1 - eps) * q[k] + eps / cp) : Real(0);
      }
    }
    // Value: Σ_k B_k (lse − z_k) over terms with B_k ≠ 0, plus the z-loss.
    detail::CompensatedSum<Real> loss_sum, b_sum;
    for (Eigen::Index k = 0; k < c; ++k) {
      if (b[k] == 0) continue;
      b_sum.add(b[k]);
      loss_sum.add(b[k] * gap(k));
    }
    Real loss = loss_sum.value();
    const Real sum_b = b_sum.value();
    const Real lambda = logits ? static_cast<Real>(z_loss_) : Real(0);
    if (lambda != 0) loss += lambda * v * lse * lse;
    if (wants_outputs())
      write_outputs(i, logits ? static_cast<double>(lse) : std::numeric_limits<double>::quiet_NaN(), argmax,
                    argmax == target_class, static_cast<double>(loss));
    if constexpr (kGrad) {
      using GS = std::remove_cv_t<detail::scalar_of_t<G>>;
      const Real scale = static_cast<Real>(scale_in);
      const Real a = logits ? sum_b + 2 * lambda * v * lse : Real(0);
      const Real t_factor = static_cast<Real>(inv_t);
      auto g = grad->row(i);
      for (Eigen::Index k = 0; k < c; ++k) {
        if (!kept(k)) {
          g.coeffRef(k) = GS(0);
          continue;
        }
        const Real p = (a == 0 || z[k] == -std::numeric_limits<Acc>::infinity()) ? Real(0)
                       : finite_max ? std::exp((static_cast<Real>(z[k]) - static_cast<Real>(m)) - log_s)
                                    : std::exp(static_cast<Real>(z[k]) - lse);
        Real d = scale * (p * a - b[k]);
        if (logits) d *= cap ? static_cast<Real>(dz[k]) * t_factor : t_factor;
        g.coeffRef(k) = static_cast<GS>(d);
      }
    }
    return loss;
  }

  /// Is row-contiguous storage available for this expression type?
  template <class M> static constexpr bool contiguous_rows() {
    return requires(const M& m) {
      m.data();
      m.outerStride();
      m.innerStride();
    }
    &&static_cast<bool>(M::IsRowMajor);
  }

  template <class P, class T, class G> bool fast_eligible(const P& params, const G* grad) const {
    using S = std::remove_cv_t<detail::scalar_of_t<P>>;
    if constexpr (!detail::ClassIndexTargets<T> || !contiguous_rows<P>() ||
                  !(std::is_same_v<S, float> || std::is_same_v<S, double> || std::is_same_v<S, Eigen::bfloat16> ||
                    std::is_same_v<S, Eigen::half>)) {
      return false;
    } else {
      if (input_ != Input::logits || soft_cap_ > 0 || !keep_.empty()) return false;
      if (label_smoothing_ > 0 && !class_weight_.empty()) return false;
      if (params.cols() > 1 && params.innerStride() != 1) return false;
      if constexpr (!std::is_same_v<G, detail::NoGradient>) {
        using GS = std::remove_cv_t<detail::scalar_of_t<G>>;
        if constexpr (!contiguous_rows<G>() || !std::is_same_v<GS, S>) {
          return false;
        } else {
          if (grad->cols() > 1 && grad->innerStride() != 1) return false;
        }
      }
      return true;
    }
  }

  template <class P, class T, class G>
  double block_kernel(const P& params, const T& targets, const Block& block, G* grad) const {
    constexpr bool kGrad = !std::is_same_v<G, detail::NoGradient>;
    if (!fast_eligible<P, T, G>(params, grad)) {
      if constexpr (kGrad) {
        return detail::grad_block_per_example(*this, params, targets, block, *grad);
      } else {
        return detail::value_block_per_example(*this, params, targets, block);
      }
    } else {
      double sum = 0;
      for (Eigen::Index k = 0; k < block.size; ++k) {
        const double w = block.weight_at(k);
        const Eigen::Index i = block.begin + k;
        double contribution = 0;
        if (w != 0) {
          contribution = w * fast_row(params, targets, i, block.grad_scale_at(k), grad);
        } else if constexpr (kGrad) {
          zero_grad(*grad, i);
        }
        if (block.loss_out) block.loss_out[k] = contribution;
        sum += contribution;
      }
      return sum;
    }
  }

  /// The fused kernel for one contiguous row (class-index target; see fast_eligible).
  ///
  /// One pass over memory: the row is processed in blocks of kFusedBlock elements that stay in L1;
  /// per block the maximum (the running maximum m is raised if needed, rescaling the running sum
  /// by exp(m_old − m_new)), then exp(z − m) from L1, summed and, for the gradient, stored (into
  /// the gradient row, or a float copy for 16-bit rows) with the block's m. While a block's
  /// exponentials are computed, software prefetches fetch the logits kPrefetchBytes further on
  /// (and, for 16-bit rows, the block's gradient lines for writing), so the exp work overlaps the
  /// memory traffic. Then one pass from L2 writes g = e·(scale·A·exp(m_b − m)/s) − scale·ε/C (and
  /// −scale·(1−ε)·w_y at the target). With AVX-512 the block pass is avx512_categorical::exp_sum
  /// (table exponential exp32_n; blocks whose maximum is below the running one skip the count of
  /// maxima), and bfloat16 rows are read directly in pairs (their block maximum, Bf16Max, taken
  /// during the previous block's exponentials; exponentials in pair order, affine_bf16_pairs).
  template <class P, class T, class G>
  double fast_row(const P& params, const T& targets, Eigen::Index i, double scale, G* grad) const {
    if constexpr (!detail::ClassIndexTargets<T> || !contiguous_rows<P>()) {
      return 0;
    } else {
      using S = std::remove_cv_t<detail::scalar_of_t<P>>;
      using Acc = detail::accumulator_t<S>;
      constexpr bool kGrad = !std::is_same_v<G, detail::NoGradient>;
      constexpr bool kWide = std::is_same_v<S, Acc>;
      using In = std::conditional_t<detail::direct_16bit<S>(), S, Acc>; // what the block passes read
      constexpr Eigen::Index kBlock = detail::kFusedBlock;
      const Eigen::Index c = params.cols();
      const S* row = params.data() + i * params.outerStride();
      const Eigen::Index y = static_cast<Eigen::Index>(detail::index_at(targets, i));
      const Acc inv_t = static_cast<Acc>(1.0L / static_cast<long double>(temperature_));
      const Acc zy = inv_t == Acc(1) ? static_cast<Acc>(row[y]) : static_cast<Acc>(row[y]) * inv_t; // before writes
      const double eps = label_smoothing_;
      const Eigen::Index num_blocks = (c + kBlock - 1) / kBlock;
      Acc* block_m = detail::scratch<Acc, 6>(num_blocks);
      // Where the exponentials go: the gradient row (float/double rows), a float row copy (16-bit
      // rows), or nowhere (value only). 16-bit blocks are widened into an L1 buffer first.
      Acc* e = nullptr;
      Acc* wide_block = kWide || detail::direct_16bit<S>() ? nullptr : detail::scratch<Acc, 3>(kBlock);
      if constexpr (kGrad) {
        if constexpr (kWide) {
          e = grad->data() + i * grad->outerStride();
        } else {
          e = detail::scratch<Acc, 7>(c);
        }
      }
      const Acc ninf = -std::numeric_limits<Acc>::infinity(), pinf = std::numeric_limits<Acc>::infinity();
      // In place, the exponentials overwrite the logits: a NaN or +inf found half-way could no
      // longer be handed to the per-example function. So the maximum of the whole row is taken
      // first (the row then sits in L2 for the blocked pass, which needs no rescaling).
      const bool in_place = kGrad && kWide && static_cast<const void*>(e) == static_cast<const void*>(row);
      Acc m = ninf;
      Eigen::Index argmax = -1;
      if (in_place) {
        const Acc* xr = reinterpret_cast<const Acc*>(row);
        const Acc xmax = detail::row_max(xr, c);
        if (!(xmax < pinf) || xmax == ninf) return static_cast<double>(row_loss(params, targets, i, scale, grad));
        m = inv_t == Acc(1) ? xmax : xmax * inv_t;
        if (wants_outputs()) argmax = std::find(xr, xr + c, xmax) - xr;
      }
      double count = 0, rest = 0, dist = 0;
      Eigen::Index seen = 0;
      bool may_hold_max = true; // whether a logit of the block may equal the running maximum
      // bfloat16 read directly: the maximum of block b + 1 is taken during block b's exponentials.
      Acc next_block_max = ninf;
      bool have_next_max = false;
      for (Eigen::Index b = 0; b < num_blocks; ++b) {
        const Eigen::Index start = b * kBlock, len = std::min(kBlock, c - start);
        const In* xb;
        Acc bmax_x = ninf;
        if constexpr (kWide) {
          xb = reinterpret_cast<const Acc*>(row) + start;
          if (!in_place) bmax_x = detail::row_max<Acc, false>(xb, len);
        } else if constexpr (detail::direct_16bit<S>()) {
          xb = row + start;
          bmax_x = have_next_max ? next_block_max : detail::block_max_direct(xb, len);
          have_next_max = false;
        } else {
          detail::widen_row(row + start, wide_block, len);
          bmax_x = detail::row_max<Acc, false>(wide_block, len);
          xb = wide_block;
        }
        if (!in_place) {
          // NaN or +inf: the per-example function has the edge-case handling (the row is intact).
          if (!(bmax_x < pinf)) return static_cast<double>(row_loss(params, targets, i, scale, grad));
          const Acc bmax = inv_t == Acc(1) ? bmax_x : bmax_x * inv_t;
          if (bmax > m) {
            if (m != ninf) {
              const double shrink = std::exp(static_cast<double>(m) - static_cast<double>(bmax));
              rest = (rest + count) * shrink;
              if (eps > 0) dist += static_cast<double>(seen) * (static_cast<double>(bmax) - static_cast<double>(m));
            }
            count = 0;
            m = bmax;
          }
          may_hold_max = !(bmax < m); // below it: the block pass compares no lane with m
        }
        block_m[b] = m;
        seen += len;
        if (m == ninf) { // every logit so far is −inf: exponentials 0, (m − z) terms +inf
          if constexpr (kGrad) std::fill_n(e + start, len, Acc(0));
          if (eps > 0) dist = std::numeric_limits<double>::infinity();
          continue;
        }
        double block_rest = 0, block_dist = 0, block_count;
        Acc* eb = kGrad ? e + start : nullptr;
        // Prefetch kPrefetchBytes ahead (or the next row's first block) while this block is
        // exponentiated: one block ahead was too late for the memory stream (docs/performance.md).
        const char* next =
            params.outerStride() == c // a contiguous matrix: straight on across rows (a prefetch never faults)
                ? reinterpret_cast<const char*>(reinterpret_cast<std::uintptr_t>(row + start) + detail::kPrefetchBytes)
                : b + 1 < num_blocks      ? reinterpret_cast<const char*>(row + start + kBlock)
                  : i + 1 < params.rows() ? reinterpret_cast<const char*>(row + params.outerStride())
                                          : nullptr;
        const char* pf = in_place ? nullptr : next;
        constexpr int kPf = static_cast<int>(sizeof(S));
        // 16-bit gradients: fetch this block's gradient lines for writing while the exponentials
        // are computed, so that the gradient pass finds them in cache.
        char* pw = nullptr;
        if constexpr (kGrad && !kWide) pw = reinterpret_cast<char*>(grad->data() + i * grad->outerStride() + start);
        const In* next_block = nullptr;
        Eigen::Index next_len = 0;
        if constexpr (detail::direct_16bit<S>()) {
          if (b + 1 < num_blocks) {
            next_block = row + start + kBlock;
            next_len = std::min(kBlock, c - start - kBlock);
            have_next_max = true;
          }
        }
        const auto block_pass = [&]<bool kDist, bool kMayHoldMax>() {
          return detail::block_exp_sum<kGrad, kDist, kMayHoldMax, kPf>(xb, eb, len, inv_t, m, &block_rest, &block_dist,
                                                                       pf, pw, next_block, next_len, &next_block_max);
        };
        if (eps > 0) {
          block_count = may_hold_max ? block_pass.template operator()<true, true>()
                                     : block_pass.template operator()<true, false>();
        } else {
          block_count = may_hold_max ? block_pass.template operator()<false, true>()
                                     : block_pass.template operator()<false, false>();
        }
        count += block_count;
        rest += block_rest;
        if (eps > 0) {
          dist += block_dist;
        } else if (std::isnan(block_dist)) {
          dist = block_dist; // a NaN logit: hand the row to the per-example function below
        }
      }
      // All −inf, or a NaN the fast maximum let through (it reaches the sums): the per-example
      // function (the row is intact: not in place, or in place the pre-scan propagated NaN).
      if (m == ninf || std::isnan(rest) || std::isnan(dist))
        return static_cast<double>(row_loss(params, targets, i, scale, grad));
      const double s = count + rest;
      const double log_s = std::log1p((count - 1) + rest);
      const double lse = static_cast<double>(m) + log_s;
      const double wy = class_weight_.empty() ? 1.0 : class_weight_[static_cast<std::size_t>(y)];
      // ℓ = (1−ε)·w_y·(lse − z_y) + ε·(lse − m) + (ε/C)·Σ(m − z) + λ·w_y·lse²
      const double target_coef = (1 - eps) * wy;
      double loss = 0;
      if (target_coef != 0) loss += target_coef * ((static_cast<double>(m) - static_cast<double>(zy)) + log_s);
      if (eps > 0) loss += eps * log_s + eps / static_cast<double>(c) * dist;
      if (z_loss_ != 0) loss += z_loss_ * wy * lse * lse;
      if (wants_outputs()) {
        // The first class whose transformed logit is m (a scan of the row; only when asked for).
        if (argmax < 0) {
          for (Eigen::Index k = 0; k < c; ++k) {
            const Acc zk = inv_t == Acc(1) ? static_cast<Acc>(row[k]) : static_cast<Acc>(row[k]) * inv_t;
            if (zk == m) {
              argmax = k;
              break;
            }
          }
        }
        write_outputs(i, lse, argmax, argmax == y, loss);
      }
      if constexpr (kGrad) {
        const double a = target_coef + eps + 2 * z_loss_ * wy * lse;
        const double alpha = scale * a * static_cast<double>(inv_t) / s;
        const Acc beta = static_cast<Acc>(scale * eps / static_cast<double>(c) * static_cast<double>(inv_t));
        const Acc at_target = static_cast<Acc>(scale * target_coef * static_cast<double>(inv_t));
        S* g = grad->data() + i * grad->outerStride();
        for (Eigen::Index b = 0; b < num_blocks; ++b) {
          const Eigen::Index start = b * kBlock, len = std::min(kBlock, c - start);
          const Acc factor =
              static_cast<Acc>(alpha * std::exp(static_cast<double>(block_m[b]) - static_cast<double>(m)));
          if constexpr (kWide) {
            detail::row_affine(e + start, g + start, len, factor, beta);
            if (y >= start && y < start + len) g[y] -= at_target;
          } else {
            detail::block_affine_narrow(e + start, g + start, len, factor, beta);
            if (y >= start && y < start + len) {
              const Acc ey = e[start + detail::exp_position<S>(y - start, len)];
              g[y] = static_cast<S>((ey * factor - beta) - at_target);
            }
          }
        }
      }
      return loss;
    }
  }

  ExampleView class_weight_view_{};
  ExampleView class_mask_view_{};
  std::vector<double> class_weight_;
  std::vector<unsigned char> keep_;
  std::size_t kept_ = 0;
  std::int64_t ignore_index_ = -100;
  double label_smoothing_ = 0;
  double z_loss_ = 0;
  double soft_cap_ = 0;
  double temperature_ = 1;
  CrossEntropyOutputs outputs_{};
  Input input_ = Input::logits;
};

namespace detail {

template <class G>
concept EigenGradient = std::is_base_of_v<Eigen::EigenBase<std::remove_cvref_t<G>>, std::remove_cvref_t<G>>;

template <class Family, class P, class T, class G, class Options>
Loss run_categorical(std::string_view fn, const Family& family, const P& params, const T& targets, G* grad,
                     const Options& options) {
  const NllOptions driver = driver_options(options);
  Loss r = run_nll<KernelPath::fused>(fn, family, params, targets, grad, driver);
  if constexpr (std::is_same_v<Family, Categorical>) {
    const bool returned_early =
        driver.reduction == Reduction::mean && r.denominator == 0 && driver.empty_mean == EmptyMean::zero;
    family.fill_outputs_of_rows_not_counting(targets, driver, returned_early);
  }
  return r;
}

} // namespace detail

/// Softmax cross entropy of `targets` under `logits` (N×C, rows are examples; row-major is fast).
///
/// targets: class indices (any integer vector of length N: Eigen::VectorXi, VectorX<int64_t>,
/// std::vector<int>, …), probabilities (an N×C matrix; rows need not sum to 1), or
/// nll::as_logits(p_logits). Per example (see the file comment; z = soft-capped, tempered, masked
/// logits, lse = log Σ exp z, U the kept classes, C' = |U|):
///   index y:   ℓ = (1−ε)·w_y·(lse − z_y) + (ε/C')·Σ_{c∈U} w_c·(lse − z_c) + λ·w_y·lse²
///   probs q:   ℓ = Σ_{c∈U} w_c·((1−ε)·q_c + ε/C')·(lse − z_c) + λ·lse²
/// reduced by the driver: mean divides by Σ w_i·w_{y_i} (indices) or Σ w_i (probabilities).
/// Gradient (the other overload): ∂ℓ/∂x_c = (p_c·A − B_c)·t'(x_c), see the file comment.
/// matches torch.nn.functional.cross_entropy(logits, targets, weight, ignore_index, reduction,
/// label_smoothing) where the options overlap (docs/categorical.md lists the differences).
///
/// NaN logits give NaN for their row; −inf non-target logits give a finite loss and zero gradient.
/// Throws (nothing evaluated or written): std::invalid_argument for zero classes, a targets length
/// or shape that does not match, options.class_weight / class_mask / outputs of the wrong length;
/// std::domain_error for a class index outside [0, C) that is not ignore_index, a target on a
/// masked class, a negative soft target, a negative or non-finite class weight, a class mask entry
/// other than 0/1 or keeping no class, label_smoothing outside [0, 1], z_loss < 0, soft_cap < 0,
/// temperature <= 0, ignore_index >= 0 with probability targets; and the driver's option errors.
template <class L, class T>
Loss cross_entropy(const Eigen::MatrixBase<L>& logits, const T& targets, const CrossEntropyOptions& options = {}) {
  const Categorical family(options);
  return detail::run_categorical("cross_entropy", family, logits.derived(), targets,
                                 static_cast<detail::NoGradient*>(nullptr), options);
}

/// cross_entropy and its gradient with respect to the logits, written into `grad` (N×C, any Eigen
/// matrix or view; it may be the logits themselves). The gradient is of the reduced value:
/// (w_i/D)·∂ℓ_i/∂x_i for sum/mean, g_i·w_i·∂ℓ_i/∂x_i for none with upstream g, and 0 for rows that
/// do not count. Written in grad's scalar type (computed in float for 16-bit types).
template <class L, class T, detail::EigenGradient G>
Loss cross_entropy(const Eigen::MatrixBase<L>& logits, const T& targets, G&& grad,
                   const CrossEntropyOptions& options = {}) {
  const Categorical family(options);
  auto& g = grad;
  return detail::run_categorical("cross_entropy", family, logits.derived(), targets, &g, options);
}

/// Negative log-likelihood of class-index `targets` under log-probabilities `log_probs` (N×C),
/// torch.nn.functional.nll_loss: ℓ_i = −w_{y_i}·log_probs(i, y_i); mean divides by Σ w_i·w_{y_i}
/// over examples that count. Gradient: ∂ℓ_i/∂log_probs(i, c) = −w_{y_i}·[c = y_i]. The input is
/// not normalised (any real numbers). Throws as cross_entropy for the options it has.
template <class L, class T>
Loss nll_loss(const Eigen::MatrixBase<L>& log_probs, const T& targets, const NllLossOptions& options = {}) {
  const Categorical family(options);
  return detail::run_nll<KernelPath::fused>("nll_loss", family, log_probs.derived(), targets,
                                            static_cast<detail::NoGradient*>(nullptr), driver_options(options));
}

/// nll_loss and its gradient written into `grad` (shape of log_probs; may alias it).
template <class L, class T, detail::EigenGradient G>
Loss nll_loss(const Eigen::MatrixBase<L>& log_probs, const T& targets, G&& grad, const NllLossOptions& options = {}) {
  const Categorical family(options);
  auto& g = grad;
  return detail::run_nll<KernelPath::fused>("nll_loss", family, log_probs.derived(), targets, &g,
                                            driver_options(options));
}

namespace detail {
/// Placeholder targets for families without targets (entropy).
struct NoTargets {};

/// Softmax of row i of x in Real (scratch slot kSlot) with the row's max m and log s,
/// s = Σ exp(x − m), so that log p_c = (x_c − m) − log s without cancellation; −inf entries get
/// p = 0 exactly; a NaN or a non-finite maximum gives NaN probabilities.
template <class Real> struct SoftmaxRow {
  const Real* p;
  Real max;
  Real log_s;
  /// log p_c for the entry x_c.
  Real log_p(Real x) const { return (x - max) - log_s; }
};

template <int kSlot, class Real, class X> SoftmaxRow<Real> softmax_row_real(const X& x, Eigen::Index i) {
  const Eigen::Index c = x.cols();
  Real* p = scratch<Real, kSlot>(c);
  Real m = -std::numeric_limits<Real>::infinity();
  bool nan = false;
  for (Eigen::Index k = 0; k < c; ++k) {
    const Real v = static_cast<Real>(x.coeff(i, k));
    if (std::isnan(v)) nan = true;
    m = std::max(m, v);
  }
  if (nan || !std::isfinite(m)) {
    for (Eigen::Index k = 0; k < c; ++k) p[k] = std::numeric_limits<Real>::quiet_NaN();
    return {p, nan ? std::numeric_limits<Real>::quiet_NaN() : m, std::numeric_limits<Real>::quiet_NaN()};
  }
  CompensatedSum<Real> rest;
  Real count = 0;
  for (Eigen::Index k = 0; k < c; ++k) {
    const Real v = static_cast<Real>(x.coeff(i, k));
    p[k] = v == -std::numeric_limits<Real>::infinity() ? Real(0) : std::exp(v - m);
    if (v == m) {
      count += 1;
    } else {
      rest.add(p[k]);
    }
  }
  const Real log_s = std::log1p((count - 1) + rest.value());
  for (Eigen::Index k = 0; k < c; ++k) {
    const Real v = static_cast<Real>(x.coeff(i, k));
    p[k] = p[k] == 0 ? Real(0) : std::exp((v - m) - log_s);
  }
  return {p, m, log_s};
}

template <class P> using softmax_real_t = row_real_t<accumulator_t<std::remove_cv_t<scalar_of_t<P>>>>;

inline void check_classes(std::string_view fn, std::string_view name, Eigen::Index c) {
  if (c < 1) fail(ErrorKind::shape, fn, std::string(name) + ".cols()", static_cast<long long>(c), ">= 1 (classes)");
}
} // namespace detail

/// The entropy family: ℓ_i = H(softmax(x_i)) = Σ_c p_c·(lse − x_c) (terms with p_c = 0 are 0).
/// Gradient: ∂H/∂x_c = −p_c·(log p_c + H) (0 where p_c = 0).
struct SoftmaxEntropy {
  template <class P, class T> Eigen::Index num_examples(const P& p, const T&) const { return p.rows(); }
  template <class P, class T> void check(const P& p, const T&, std::string_view fn) const {
    detail::check_classes(fn, "logits", p.cols());
  }
  template <class P, class T, class G>
  void check_gradient(const P& p, const T&, const G& g, std::string_view fn) const {
    check_same_shape(fn, p, g, "logits", "grad");
  }
  template <class P, class T> double neg_log_prob(const P& x, const T&, Eigen::Index i) const {
    return static_cast<double>(value(x, i));
  }
  template <class P, class T, class G>
  double neg_log_prob_grad(const P& x, const T&, Eigen::Index i, double scale, G& grad) const {
    using Real = detail::softmax_real_t<P>;
    using GS = std::remove_cv_t<detail::scalar_of_t<G>>;
    const auto row = detail::softmax_row_real<4, Real>(x, i);
    const Real h = entropy_of(x, i, row);
    for (Eigen::Index k = 0; k < x.cols(); ++k) {
      const Real p = row.p[k];
      const Real d = p == 0 ? Real(0) : -p * (row.log_p(static_cast<Real>(x.coeff(i, k))) + h);
      grad.coeffRef(i, k) = static_cast<GS>(static_cast<Real>(scale) * d);
    }
    return static_cast<double>(h);
  }
  template <class G> void zero_grad(G& grad, Eigen::Index i) const { grad.row(i).setZero(); }

private:
  template <class P> auto value(const P& x, Eigen::Index i) const {
    using Real = detail::softmax_real_t<P>;
    return entropy_of(x, i, detail::softmax_row_real<4, Real>(x, i));
  }
  template <class P, class Real>
  static Real entropy_of(const P& x, Eigen::Index i, const detail::SoftmaxRow<Real>& row) {
    Real h = 0;
    for (Eigen::Index k = 0; k < x.cols(); ++k) {
      const Real p = row.p[k];
      if (p != 0 || std::isnan(p)) h -= p * row.log_p(static_cast<Real>(x.coeff(i, k)));
    }
    return h;
  }
};

/// The KL family between two rows of logits: ℓ_i = KL(p_i ‖ q_i) = Σ_c p_c·((xp_c − lse_p) −
/// (xq_c − lse_q)), p = softmax(target logits), q = softmax(params); terms with p_c = 0 are 0.
/// Gradient with respect to the q logits: q_c − p_c.
struct SoftmaxKl {
  template <class P, class T> Eigen::Index num_examples(const P& q, const T&) const { return q.rows(); }
  template <class P, class T> void check(const P& q, const T& p, std::string_view fn) const {
    detail::check_classes(fn, "q_logits", q.cols());
    check_same_shape(fn, q, p.logits, "q_logits", "p_logits");
  }
  template <class P, class T, class G>
  void check_gradient(const P& q, const T&, const G& g, std::string_view fn) const {
    check_same_shape(fn, q, g, "q_logits", "grad");
  }
  template <class P, class T> double neg_log_prob(const P& q, const T& p, Eigen::Index i) const {
    using Real = detail::softmax_real_t<P>;
    const auto rq = detail::softmax_row_real<4, Real>(q, i);
    const auto rp = detail::softmax_row_real<5, Real>(p.logits, i);
    return static_cast<double>(kl(q, p.logits, i, rp, rq));
  }
  template <class P, class T, class G>
  double neg_log_prob_grad(const P& q, const T& p, Eigen::Index i, double scale, G& grad) const {
    using Real = detail::softmax_real_t<P>;
    using GS = std::remove_cv_t<detail::scalar_of_t<G>>;
    const auto rq = detail::softmax_row_real<4, Real>(q, i);
    const auto rp = detail::softmax_row_real<5, Real>(p.logits, i);
    const Real value = kl(q, p.logits, i, rp, rq);
    for (Eigen::Index k = 0; k < q.cols(); ++k)
      grad.coeffRef(i, k) = static_cast<GS>(static_cast<Real>(scale) * (rq.p[k] - rp.p[k]));
    return static_cast<double>(value);
  }
  template <class G> void zero_grad(G& grad, Eigen::Index i) const { grad.row(i).setZero(); }

private:
  template <class Q, class PL, class Real>
  static Real kl(const Q& q, const PL& pl, Eigen::Index i, const detail::SoftmaxRow<Real>& rp,
                 const detail::SoftmaxRow<Real>& rq) {
    Real sum = 0;
    for (Eigen::Index k = 0; k < q.cols(); ++k) {
      if (rp.p[k] == 0) continue;
      sum += rp.p[k] * (rp.log_p(static_cast<Real>(pl.coeff(i, k))) - rq.log_p(static_cast<Real>(q.coeff(i, k))));
    }
    return sum;
  }
};

/// torch.nn.functional.kl_div's family: ℓ_i = Σ_c p_c·(log p_c − input_c) (0 where p_c = 0), or
/// with log_target Σ_c exp(t_c)·(t_c − input_c). Gradient with respect to input: −p_c (−exp(t_c)).
struct PointwiseKl {
  bool log_target = false;
  bool elementwise_mean = false;
  template <class P, class T> Eigen::Index num_examples(const P& x, const T&) const { return x.rows(); }
  template <class P, class T> void check(const P& x, const T& t, std::string_view fn) const {
    check_same_shape(fn, x, t, "input", "target");
    if (log_target) return;
    for (Eigen::Index i = 0; i < t.rows(); ++i) {
      for (Eigen::Index k = 0; k < t.cols(); ++k) {
        const double v = static_cast<double>(t.coeff(i, k));
        if (v < 0)
          fail(ErrorKind::value, fn, "target(" + std::to_string(i) + ", " + std::to_string(k) + ")", v,
               ">= 0 (a probability; use log_target for log-probabilities)");
      }
    }
  }
  template <class P, class T, class G>
  void check_gradient(const P& x, const T&, const G& g, std::string_view fn) const {
    check_same_shape(fn, x, g, "input", "grad");
  }
  /// elementwise_mean: each row stands for C elements in the mean's denominator.
  template <class T> double target_weight(const T& t, Eigen::Index) const {
    return elementwise_mean ? static_cast<double>(t.cols()) : 1.0;
  }
  template <class P, class T> double neg_log_prob(const P& x, const T& t, Eigen::Index i) const {
    using Real = detail::softmax_real_t<P>;
    Real sum = 0;
    for (Eigen::Index k = 0; k < x.cols(); ++k) sum += term<Real>(x, t, i, k);
    return static_cast<double>(sum);
  }
  template <class P, class T, class G>
  double neg_log_prob_grad(const P& x, const T& t, Eigen::Index i, double scale, G& grad) const {
    using Real = detail::softmax_real_t<P>;
    using GS = std::remove_cv_t<detail::scalar_of_t<G>>;
    Real sum = 0;
    for (Eigen::Index k = 0; k < x.cols(); ++k) {
      sum += term<Real>(x, t, i, k);
      const Real tv = static_cast<Real>(t.coeff(i, k));
      const Real p = log_target ? std::exp(tv) : tv;
      grad.coeffRef(i, k) = static_cast<GS>(-static_cast<Real>(scale) * p);
    }
    return static_cast<double>(sum);
  }
  template <class G> void zero_grad(G& grad, Eigen::Index i) const { grad.row(i).setZero(); }

private:
  template <class Real, class P, class T> Real term(const P& x, const T& t, Eigen::Index i, Eigen::Index k) const {
    const Real tv = static_cast<Real>(t.coeff(i, k));
    const Real in = static_cast<Real>(x.coeff(i, k));
    if (log_target) {
      const Real p = std::exp(tv);
      return p == 0 ? Real(0) : p * (tv - in);
    }
    return tv == 0 ? Real(0) : tv * (std::log(tv) - in);
  }
};

/// The entropy of softmax(logits) per row, H = −Σ_c p_c·log p_c, reduced as options say.
/// Gradient (other overload): ∂H/∂x_c = −p_c·(log p_c + H). A −inf logit contributes 0 and gets a
/// zero gradient; NaN gives NaN for its row. Throws std::invalid_argument for zero classes or a
/// gradient of another shape, and the driver's option errors.
template <class L> Loss entropy(const Eigen::MatrixBase<L>& logits, const EntropyOptions& options = {}) {
  return detail::run_nll<KernelPath::fused>("entropy", SoftmaxEntropy{}, logits.derived(), detail::NoTargets{},
                                            static_cast<detail::NoGradient*>(nullptr), driver_options(options));
}
/// entropy and its gradient with respect to the logits (written into grad; may alias logits).
template <class L, detail::EigenGradient G>
Loss entropy(const Eigen::MatrixBase<L>& logits, G&& grad, const EntropyOptions& options = {}) {
  auto& g = grad;
  return detail::run_nll<KernelPath::fused>("entropy", SoftmaxEntropy{}, logits.derived(), detail::NoTargets{}, &g,
                                            driver_options(options));
}

/// KL(p ‖ q) per row, p = softmax(p_logits), q = softmax(q_logits): Σ_c p_c·(log p_c − log q_c),
/// computed from log-softmax differences (never log of a probability); ≥ 0. Gradient (other
/// overload) with respect to q_logits: q_c − p_c. Rows with p_c = 0 where q_c = 0 are fine; p_c > 0
/// with a −inf q logit gives +inf. Throws std::invalid_argument for shapes that differ or zero
/// classes, and the driver's option errors.
template <class P, class Q>
Loss kl_divergence(const Eigen::MatrixBase<P>& p_logits, const Eigen::MatrixBase<Q>& q_logits,
                   const KlDivergenceOptions& options = {}) {
  return detail::run_nll<KernelPath::fused>("kl_divergence", SoftmaxKl{}, q_logits.derived(), as_logits(p_logits),
                                            static_cast<detail::NoGradient*>(nullptr), driver_options(options));
}
/// kl_divergence and its gradient with respect to q_logits (written into grad).
template <class P, class Q, detail::EigenGradient G>
Loss kl_divergence(const Eigen::MatrixBase<P>& p_logits, const Eigen::MatrixBase<Q>& q_logits, G&& grad,
                   const KlDivergenceOptions& options = {}) {
  auto& g = grad;
  return detail::run_nll<KernelPath::fused>("kl_divergence", SoftmaxKl{}, q_logits.derived(), as_logits(p_logits), &g,
                                            driver_options(options));
}

/// torch.nn.functional.kl_div(input, target, reduction, log_target): input = log q (any reals),
/// target = p (or log p with log_target). Per row ℓ_i = Σ_c p_c·(log p_c − input_c) (0 where
/// p_c = 0, unlike torch's NaN for p_c = 0 next to input_c = −inf). Reduction::mean divides by the
/// number of rows (torch's 'batchmean', the true KL); with elementwise_mean by N·C (torch's 'mean').
/// Reduction::none returns per-row sums (torch returns the N×C elements). Gradient with respect to
/// input: −p_c·(scale). Throws std::invalid_argument for shapes that differ, std::domain_error for a
/// negative target without log_target, and the driver's option errors.
template <class I, class T>
Loss kl_div(const Eigen::MatrixBase<I>& input, const Eigen::MatrixBase<T>& target, const KlDivOptions& options = {}) {
  const PointwiseKl family{options.log_target, options.elementwise_mean};
  return detail::run_nll<KernelPath::fused>("kl_div", family, input.derived(), target.derived(),
                                            static_cast<detail::NoGradient*>(nullptr), driver_options(options));
}
/// kl_div and its gradient with respect to input (written into grad; may alias input).
template <class I, class T, detail::EigenGradient G>
Loss kl_div(const Eigen::MatrixBase<I>& input, const Eigen::MatrixBase<T>& target, G&& grad,
            const KlDivOptions& options = {}) {
  const PointwiseKl family{options.log_target, options.elementwise_mean};
  auto& g = grad;
  return detail::run_nll<KernelPath::fused>("kl_div", family, input.derived(), target.derived(), &g,
                                            driver_options(options));
}

} // namespace nll
