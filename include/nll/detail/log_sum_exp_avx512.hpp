// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// Internal: the AVX-512 fast path of log_sum_exp for contiguous float data (nll::detail, not public
// API). It computes the same two numbers as the generic path in math/log_sum_exp.hpp, the maximum m
// and the excess s − 1 = (ties at m − 1) + Σ_{x_j < m} exp(x_j − m), so the result m + log1p(s − 1)
// is the same up to rounding, with the same full relative precision for dominated rows.
//
// Why a separate kernel: the generic path streams each row three times (NaN-propagating max, the
// exp sum below the maximum, the tie count) and Eigen's packet exp costs about twice the
// instructions of the one below, so it ran at about 3.5× one read pass of the data. Here:
//   * the row is cut into chunks of kChunk = 2048 floats (8 KB, stays in L1 between passes);
//   * pass A over a chunk: its maximum (four independent vector maxima) and the sum of its values,
//     whose only purpose is to detect a NaN (NaN, or +inf together with −inf, make the sum NaN);
//   * pass B over the same chunk, now in L1: Σ exp(x − m_chunk) over the lanes with x < m_chunk (an
//     AVX-512 mask) and the count of those lanes (popcount), so ties = length − count. While it runs
//     it prefetches the next 8 KB (the next chunk, or the start of the next row of a row-major
//     matrix), so memory keeps streaming while the core computes exponentials;
//   * the chunk results (m_c, e_c) are merged in double exactly as LogSumExpState::merge does:
//     e = e_big + (e_small + 1)·exp(m_small − m_big).
// With this the row-wise log-sum-exp of a 2048 × 32000 float matrix runs at 1.77× one read pass of
// the same bytes on a quiet machine, against 4.3× for the generic path (bench/bench_log_sum_exp.cpp,
// docs/performance.md).
//
// The exponential (exp_nonpositive) is the table method: n = round(16·d/ln 2), d = n·ln2/16 + r with
// |r| ≤ ln2/32 (two-step Cody–Waite, exact for |n| < 2^12), exp(d) = 2^(n div 16) · T[n mod 16] ·
// (1 + r + r²/2 + r³/6) with T[j] = 2^(j/16) from a 16-entry register table (vpermps) and the power
// of two applied by vscalefps, which rounds correctly into the subnormal range and gives 0 below it.
// Measured against long double exp over d ∈ [−110, 0]: at most 0.97 ulp for normal results, at most
// 1.01 subnormal ulp below FLT_MIN; exp(0) = 1 and exp(−inf) = 0 exactly (tests/test_log_sum_exp_avx512.cpp).
//
// Input the kernel does not take (it returns false and the caller runs the generic path, which has
// the NaN/inf semantics): any NaN, any +inf, +inf and −inf together, an empty or all −inf input.
// −inf values next to finite ones are taken (they contribute exp(−inf) = 0).
//
// Every vector computed in float goes through this kernel when it is compiled in: contiguous float
// data directly, anything else (strided rows of a column-major matrix, expressions, half and
// bfloat16) one chunk at a time through an 8 KB float buffer. So all storage orders of the same
// values give the same bits.
//
// Enabled when the translation unit is compiled with AVX-512F (e.g. -march=native on an AVX-512
// machine) and neither EIGEN_DONT_VECTORIZE nor NLL_NO_AVX512 is defined.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "numeric.hpp"

#if defined(__AVX512F__) && !defined(EIGEN_DONT_VECTORIZE) && !defined(NLL_NO_AVX512)
#define NLL_LOG_SUM_EXP_AVX512 1
#include <immintrin.h>
#endif

namespace nll::detail {

#if defined(NLL_LOG_SUM_EXP_AVX512)

namespace avx512 {

/// Floats per chunk: 8 KB, so a chunk read by pass A is still in L1 for pass B.
inline constexpr Eigen::Index kChunk = 2048;

/// The constants of exp_nonpositive, loaded once per chunk.
struct ExpConstants {
  __m512 table = _mm512_setr_ps(1.0f, 1.04427378242741384032f, 1.09050773266525765921f, 1.13878863475669165370f,
                                1.18920711500272106672f, 1.24185781207348404859f, 1.29683955465100966593f,
                                1.35425554693689272830f, 1.41421356237309504880f, 1.47682614593949931139f,
                                1.54221082540794082361f, 1.61049033194925430818f, 1.68179283050742908606f,
                                1.75625216037329948311f, 1.83400808640934246349f, 1.91520656139714729387f); // 2^(j/16)
  __m512 sixteen_over_ln2 = _mm512_set1_ps(23.0831206542234145181f);
  __m512 shifter = _mm512_set1_ps(12582912.0f);                    // 1.5·2^23: adding it rounds to an integer
  __m512 minus_ln2_hi = _mm512_set1_ps(-0.0433197021484375f);      // ln2/16 to 12 bits: n·hi is exact for |n| < 2^12
  __m512 minus_ln2_lo = _mm512_set1_ps(-1.99663655908183840e-06f); // ln2/16 − hi
  __m512 c3 = _mm512_set1_ps(1.0f / 6.0f);
  __m512 c2 = _mm512_set1_ps(0.5f);
  __m512 one = _mm512_set1_ps(1.0f);
  __m512 one_sixteenth = _mm512_set1_ps(0.0625f);
  __m512 floor_arg = _mm512_set1_ps(-110.0f); // exp(−110) = 1.7e−48 rounds to 0 in float
};

/// The reduced argument of exp_nonpositive: t holds n = round(16·d/ln2) in its low mantissa bits
/// (t = 1.5·2^23 + n), mantissa = 2^((n mod 16)/16)·e^r ∈ [2^(−1/32), 2^(1+1/32)), so that
/// exp(d) = mantissa·2^floor(n/16). NaN in d gives a NaN mantissa.
struct ExpReduced {
  __m512 t;
  __m512 mantissa;
};
inline ExpReduced exp_reduce(__m512 d, const ExpConstants& c) {
  const __m512 t = _mm512_fmadd_ps(d, c.sixteen_over_ln2, c.shifter); // low bits of t: n = round(16·d/ln2)
  const __m512 n = _mm512_sub_ps(t, c.shifter);
  __m512 r = _mm512_fmadd_ps(n, c.minus_ln2_hi, d);
  r = _mm512_fmadd_ps(n, c.minus_ln2_lo, r);
  __m512 q = _mm512_fmadd_ps(c.c3, r, c.c2);
  q = _mm512_fmadd_ps(q, r, c.one);
  const __m512 expm1_r = _mm512_mul_ps(q, r);                                  // r + r²/2 + r³/6
  const __m512 table = _mm512_permutexvar_ps(_mm512_castps_si512(t), c.table); // T[n mod 16]
  return {t, _mm512_fmadd_ps(table, expm1_r, table)};
}

/// exp(d) lane-wise for d ≤ 0 (any such d, −inf included; the result of a positive d is not used).
/// A NaN lane gives NaN: vmaxps returns its second operand when either is NaN.
inline __m512 exp_nonpositive(__m512 d, const ExpConstants& c) {
  d = _mm512_max_ps(c.floor_arg, d);
  const ExpReduced e = exp_reduce(d, c);
  const __m512 n = _mm512_sub_ps(e.t, c.shifter);
  return _mm512_scalef_ps(e.mantissa, _mm512_mul_ps(n, c.one_sixteenth)); // · 2^floor(n/16)
}

/// The same function, cheaper when every lane has −87 ≤ d ≤ 0 (a normal result: e^−87 = 1.6e−38 >
/// FLT_MIN; the packets of a typical batch of logits): the power 2^floor(n/16) ∈ [2^−126, 1] is
/// added to the exponent bits of the mantissa (an integer shift and add) instead of being applied
/// by vscalefps after a multiplication. Any lane below −87, −inf or NaN sends the whole packet to
/// exp_nonpositive. Same results bit for bit.
inline __m512 exp_nonpositive_mostly_normal(__m512 d, const ExpConstants& c) {
  if (_mm512_cmp_ps_mask(d, _mm512_set1_ps(-87.0f), _CMP_NGE_UQ) != 0) return exp_nonpositive(d, c);
  const ExpReduced e = exp_reduce(d, c);
  const __m512i n = _mm512_sub_epi32(_mm512_castps_si512(e.t), _mm512_castps_si512(c.shifter));
  const __m512i power = _mm512_slli_epi32(_mm512_srai_epi32(n, 4), 23); // floor(n/16) in the exponent field
  return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(e.mantissa), power));
}

/// Lanes [0, count) of a 16-lane mask, count in [0, 16].
inline __mmask16 first_lanes(Eigen::Index count) {
  return count >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << count) - 1u);
}

/// Pass A: the maximum of p[0, n) (n ≥ 1), and whether the sum of the values is NaN (a NaN value,
/// or +inf with −inf; a sum that overflows to one infinity is not NaN).
inline float chunk_max(const float* p, Eigen::Index n, bool& sum_is_nan) {
  const __m512 minus_inf = _mm512_set1_ps(-infinity<float>());
  __m512 m0 = minus_inf, m1 = minus_inf, m2 = minus_inf, m3 = minus_inf;
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  Eigen::Index j = 0;
  for (; j + 64 <= n; j += 64) {
    const __m512 a = _mm512_loadu_ps(p + j), b = _mm512_loadu_ps(p + j + 16);
    const __m512 c = _mm512_loadu_ps(p + j + 32), d = _mm512_loadu_ps(p + j + 48);
    m0 = _mm512_max_ps(m0, a);
    m1 = _mm512_max_ps(m1, b);
    m2 = _mm512_max_ps(m2, c);
    m3 = _mm512_max_ps(m3, d);
    s0 = _mm512_add_ps(s0, _mm512_add_ps(a, b));
    s1 = _mm512_add_ps(s1, _mm512_add_ps(c, d));
  }
  for (; j < n; j += 16) {
    const __mmask16 k = first_lanes(n - j);
    m0 = _mm512_max_ps(m0, _mm512_mask_loadu_ps(minus_inf, k, p + j));
    s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(k, p + j));
  }
  sum_is_nan = std::isnan(_mm512_reduce_add_ps(_mm512_add_ps(s0, s1)));
  return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
}

/// Pass B: Σ_{p_j < m} exp(p_j − m) over p[0, n) for a finite m ≥ every p_j (none NaN), summed in
/// float; `below` receives the number of those p_j. Prefetches the n·4 bytes from `prefetch` on.
inline float chunk_sum_below(const float* p, Eigen::Index n, float m, Eigen::Index& below, std::uintptr_t prefetch) {
  const ExpConstants c;
  const __m512 vm = _mm512_set1_ps(m);
  __m512 r0 = _mm512_setzero_ps(), r1 = _mm512_setzero_ps();
  Eigen::Index count = 0, j = 0;
  for (; j + 32 <= n; j += 32) {
    _mm_prefetch(reinterpret_cast<const char*>(prefetch + 4 * static_cast<std::uintptr_t>(j)), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(prefetch + 4 * static_cast<std::uintptr_t>(j) + 64), _MM_HINT_T0);
    const __m512 a = _mm512_loadu_ps(p + j), b = _mm512_loadu_ps(p + j + 16);
    const __mmask16 la = _mm512_cmp_ps_mask(a, vm, _CMP_LT_OQ), lb = _mm512_cmp_ps_mask(b, vm, _CMP_LT_OQ);
    r0 = _mm512_mask_add_ps(r0, la, r0, exp_nonpositive(_mm512_sub_ps(a, vm), c));
    r1 = _mm512_mask_add_ps(r1, lb, r1, exp_nonpositive(_mm512_sub_ps(b, vm), c));
    count += std::popcount(static_cast<unsigned>(la) | (static_cast<unsigned>(lb) << 16));
  }
  for (; j < n; j += 16) {
    const __mmask16 k = first_lanes(n - j);
    const __m512 a = _mm512_maskz_loadu_ps(k, p + j);
    const __mmask16 la = _mm512_mask_cmp_ps_mask(k, a, vm, _CMP_LT_OQ);
    r0 = _mm512_mask_add_ps(r0, la, r0, exp_nonpositive(_mm512_sub_ps(a, vm), c));
    count += std::popcount(static_cast<unsigned>(la));
  }
  below = count;
  return _mm512_reduce_add_ps(_mm512_add_ps(r0, r1));
}

/// The running maximum and excess s − 1 over the chunks added so far (the same merge as
/// LogSumExpState::merge, in double).
struct MaxExcess {
  double max = -infinity<double>();
  double excess = -1;

  /// Adds the chunk p[0, n), 1 ≤ n ≤ kChunk, prefetching n·4 bytes from `prefetch` meanwhile.
  /// Returns false for a chunk the kernel does not take (a NaN or +inf in it).
  bool add_chunk(const float* p, Eigen::Index n, std::uintptr_t prefetch) {
    bool sum_is_nan = false;
    const float m = chunk_max(p, n, sum_is_nan);
    if (sum_is_nan || m == infinity<float>()) return false;
    if (m == -infinity<float>()) return true; // every value −inf: contributes nothing
    Eigen::Index below = 0;
    const float rest = chunk_sum_below(p, n, m, below, prefetch);
    const double e = static_cast<double>(n - below - 1) + static_cast<double>(rest); // ties − 1 + rest
    const double md = m;
    if (md > max) {
      excess = e + (excess + 1) * std::exp(max - md);
      max = md;
    } else {
      excess += (e + 1) * std::exp(md - max);
    }
    return true;
  }
};

/// The maximum and excess of the contiguous floats p[0, n), or false for input the kernel does not
/// take (all −inf, any NaN or +inf). Chunk k prefetches chunk k + 1 (for the last chunk of a row of
/// a row-major matrix, the start of the next row).
inline bool max_excess(const float* p, Eigen::Index n, double& max_out, double& excess_out) {
  MaxExcess acc;
  for (Eigen::Index start = 0; start < n; start += kChunk) {
    const Eigen::Index len = std::min(kChunk, n - start);
    if (!acc.add_chunk(p + start, len, reinterpret_cast<std::uintptr_t>(p + start + len))) return false;
  }
  if (acc.max == -infinity<double>()) return false;
  max_out = acc.max;
  excess_out = acc.excess;
  return true;
}

/// The same for any vector expression whose scalar is computed in float (float, half, bfloat16;
/// strided rows, expressions): each chunk is first evaluated into an 8 KB float buffer, so every
/// storage order gives the same bits as contiguous float data.
template <class Derived>
bool max_excess_expression(const Eigen::DenseBase<Derived>& x, double& max_out, double& excess_out) {
  alignas(64) float buffer[kChunk];
  const Eigen::Index n = x.size();
  MaxExcess acc;
  for (Eigen::Index start = 0; start < n; start += kChunk) {
    const Eigen::Index len = std::min(kChunk, n - start);
    Eigen::Map<Eigen::VectorXf>(buffer, len) = x.derived().segment(start, len).template cast<float>().reshaped();
    if (!acc.add_chunk(buffer, len, reinterpret_cast<std::uintptr_t>(buffer))) return false;
  }
  if (acc.max == -infinity<double>()) return false;
  max_out = acc.max;
  excess_out = acc.excess;
  return true;
}

} // namespace avx512

#endif // NLL_LOG_SUM_EXP_AVX512

/// The fast path for log_sum_exp and LogSumExpState::add: when the AVX-512 kernel is compiled in and
/// `x` is a vector expression computed in float (float, half or bfloat16 scalars, any storage),
/// sets m and s − 1 and returns true; otherwise (or for input the kernel does not take) returns
/// false and the caller runs the generic path.
template <class Derived>
bool fast_max_excess([[maybe_unused]] const Eigen::DenseBase<Derived>& x, [[maybe_unused]] double& max,
                     [[maybe_unused]] double& excess) {
#if defined(NLL_LOG_SUM_EXP_AVX512)
  if constexpr (std::is_same_v<accumulator_t<scalar_of_t<Derived>>, float> && Derived::IsVectorAtCompileTime) {
    if (x.size() == 0) return false;
    if constexpr (std::is_same_v<scalar_of_t<Derived>, float> &&
                  (static_cast<unsigned>(Derived::Flags) & Eigen::DirectAccessBit) != 0) {
      if (x.derived().innerStride() == 1) return avx512::max_excess(x.derived().data(), x.size(), max, excess);
    }
    return avx512::max_excess_expression(x, max, excess);
  }
#endif
  return false;
}

} // namespace nll::detail
