// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// log-sum-exp, the normaliser of every softmax-type distribution:
//
//   lse(x) = log Σ_j exp(x_j) = m + log1p(s − 1),   m = max_j x_j,   s = Σ_j exp(x_j − m)
//
// Shifting by the maximum keeps every exp(x_j − m) in (0, 1], so nothing overflows and s ≥ 1.
// s − 1 is computed as (number of ties at the maximum − 1) + Σ_{x_j < m} exp(x_j − m), never as a
// rounded s minus 1, so the result keeps its relative precision when one element dominates
// (lse([0, −30]) = 9.36e−14 to the last bit, where log(s) would give 0 in float).
// Gradient: ∂lse/∂x_j = exp(x_j − lse) = softmax(x)_j.
//
// Edge cases (each one tested):
//   empty input            → −inf (the log of an empty sum)
//   every element −inf     → −inf (not NaN: the shift is skipped when the maximum is not finite)
//   any element +inf       → +inf
//   any element NaN        → NaN (NaN wins over ±inf)
//   |x| up to the type max → no overflow: no exp of a positive number is ever taken
//
// Precision: inputs of type float, Eigen::half and Eigen::bfloat16 are computed in float; the
// exponentials are summed in float inside chunks of kLogSumExpChunk = 4096 elements (Eigen keeps
// several independent vector accumulators there) and the chunk sums in double; m + log1p(s − 1) is
// then evaluated in double and rounded once to float. double inputs are computed in double, long
// double in long double (with a compensated sum: Eigen does not vectorise long double). Measured
// against mpmath on rows of 1 to 131077 elements (docs/kernels.md): within 1.51 eps (float),
// 1.09 eps (double), 2.76 eps (long double), relative. The exponentials use Eigen's packet exp with
// the subnormal tail repaired (detail::pexp_full in exp.hpp). Contiguous float input compiled with
// AVX-512 takes a faster kernel that computes the same m and s − 1 (detail/log_sum_exp_avx512.hpp).
// Nothing here throws.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "../detail/log_sum_exp_avx512.hpp"
#include "../detail/numeric.hpp"
#include "exp.hpp"

namespace nll {

namespace detail {

/// Elements per float chunk of a scaled sum before it is added to the double total.
inline constexpr Eigen::Index kLogSumExpChunk = 4096;

/// Max of a vector expression with NaN propagation (Eigen's default maxCoeff is unspecified
/// with NaN), computed in the accumulator type. Empty → −inf.
/// Eigen's maxCoeff<PropagateNaN> puts two compares and two selects per packet on the dependency
/// chain of its accumulator (about 6× the time of the plain maxCoeff); a NaN anywhere makes the
/// vectorised sum NaN, so the plain maximum is used unless the sum is NaN (a NaN, or +inf with −inf).
template <class Derived> accumulator_t<scalar_of_t<Derived>> nan_max(const Eigen::DenseBase<Derived>& x) {
  using Acc = accumulator_t<scalar_of_t<Derived>>;
  if (x.size() == 0) return -infinity<Acc>();
  const auto v = x.derived().template cast<Acc>();
  if (std::isnan(v.sum())) return v.template maxCoeff<Eigen::PropagateNaN>();
  return v.maxCoeff();
}

/// The scalar type a scaled sum is accumulated in across chunks: double, or long double for long
/// double input.
template <class Acc> using total_t = std::conditional_t<std::is_same_v<Acc, long double>, long double, double>;

/// The sum of an array expression: Eigen's (vectorised, several accumulators) for float and double;
/// a compensated (Neumaier) loop for long double, which Eigen sums in one sequential accumulator
/// (a 131072-term softmax row then sums to 1 within 245 eps instead of 1).
template <class Expr> auto chunk_sum(const Expr& terms) {
  using Scalar = typename Expr::Scalar;
  if constexpr (std::is_same_v<Scalar, long double>) {
    long double sum = 0, compensation = 0;
    for (Eigen::Index j = 0; j < terms.size(); ++j) {
      const long double term = terms.coeff(j), next = sum + term;
      compensation += std::fabs(sum) >= std::fabs(term) ? (sum - next) + term : (term - next) + sum;
      sum = next;
    }
    return sum + compensation;
  } else {
    return terms.sum();
  }
}

/// Σ_j exp(x_j − shift) for a vector expression and a finite shift (not necessarily the maximum),
/// accumulated in Acc inside chunks of kLogSumExpChunk elements and in double (long double for
/// long double input) across chunks. Vectorised (detail::exp_op).
template <class Derived>
auto scaled_exp_sum(const Eigen::DenseBase<Derived>& x, accumulator_t<scalar_of_t<Derived>> shift) {
  using Acc = accumulator_t<scalar_of_t<Derived>>;
  using Total = total_t<Acc>;
  const auto& v = x.derived();
  const Eigen::Index n = v.size();
  Total total = 0;
  for (Eigen::Index start = 0; start < n; start += kLogSumExpChunk) {
    const Eigen::Index len = std::min(kLogSumExpChunk, n - start);
    total += static_cast<Total>(
        chunk_sum((v.segment(start, len).template cast<Acc>().array() - shift).unaryExpr(exp_op<Acc>{})));
  }
  return total;
}

/// s − 1 for s = Σ_j exp(x_j − max), where `max` must be the (finite) maximum of x: the ties at the
/// maximum contribute count − 1 exactly and the rest Σ_{x_j < max} exp(x_j − max) is summed on its
/// own, so s − 1 keeps full relative precision when it is tiny (lse([0, −30]) = 9.4e−14, which
/// log(s) with s rounded to 1 + 9.4e−14 would get wrong in the third digit in double and return as
/// 0 in float). Two vectorised passes per chunk (the tie count is cheap); sums as scaled_exp_sum.
template <class Derived>
auto scaled_exp_excess(const Eigen::DenseBase<Derived>& x, accumulator_t<scalar_of_t<Derived>> max) {
  using Acc = accumulator_t<scalar_of_t<Derived>>;
  using Total = total_t<Acc>;
  const auto& v = x.derived();
  const Eigen::Index n = v.size();
  Total rest = 0, ties = 0;
  for (Eigen::Index start = 0; start < n; start += kLogSumExpChunk) {
    const Eigen::Index len = std::min(kLogSumExpChunk, n - start);
    const auto chunk = v.segment(start, len).template cast<Acc>().array().derived(); // a copy of the expression
    rest += static_cast<Total>(chunk_sum(chunk.unaryExpr(exp_below_op<Acc>{max})));
    ties += static_cast<Total>(chunk.unaryExpr(equal_indicator_op<Acc>{max}).sum());
  }
  return (ties - 1) + rest;
}

} // namespace detail

/// log(exp(a) + exp(b)) for two scalars, in the accumulator type of T (float for float, half and
/// bfloat16). Gradient: (σ(a − b), σ(b − a)). NaN if either is NaN; −inf if both are −inf; +inf if
/// either is +inf.
template <detail::SupportedScalar T> detail::accumulator_t<T> log_sum_exp(T a_in, T b_in) {
  using Acc = detail::accumulator_t<T>;
  const Acc a = static_cast<Acc>(a_in), b = static_cast<Acc>(b_in);
  if (std::isnan(a) || std::isnan(b)) return detail::quiet_nan<Acc>();
  const Acc hi = std::max(a, b), lo = std::min(a, b);
  if (!std::isfinite(hi)) return hi; // +inf, or both −inf
  // In double for float (one rounding at the end), in Acc otherwise.
  using Wide = detail::total_t<Acc>;
  return static_cast<Acc>(static_cast<Wide>(hi) + std::log1p(std::exp(static_cast<Wide>(lo) - static_cast<Wide>(hi))));
}

/// log Σ_j exp(x_j) = m + log1p(s − 1) over every coefficient of `x` (any Eigen expression: a
/// vector, a row, a whole matrix in any storage order). Result type: the accumulator type (float
/// for float/half/bfloat16 input, double for double, long double for long double). Gradient:
/// softmax(x). Empty or all −inf → −inf; +inf → +inf; NaN → NaN (also next to +inf).
template <class Derived>
detail::accumulator_t<detail::scalar_of_t<Derived>> log_sum_exp(const Eigen::DenseBase<Derived>& x) {
  using Acc = detail::accumulator_t<detail::scalar_of_t<Derived>>;
  if constexpr (Derived::IsVectorAtCompileTime) {
    if (double m = 0, e = 0; detail::fast_max_excess(x, m, e)) return static_cast<Acc>(m + std::log1p(e));
    const Acc max = detail::nan_max(x);
    if (!std::isfinite(max)) return max; // empty or all −inf → −inf; +inf → +inf; NaN → NaN
    // m + log1p(s − 1): in double for float input (rounded once at the end), in Acc otherwise.
    return static_cast<Acc>(max + std::log1p(detail::scaled_exp_excess(x, max)));
  } else {
    const Eigen::Matrix<detail::scalar_of_t<Derived>, Eigen::Dynamic, 1> flat = x.derived().reshaped();
    return log_sum_exp(flat);
  }
}

/// log-sum-exp of each row of `x` (rows are examples): a column vector with x.rows() entries in the
/// accumulator type; gradient of entry i: softmax of row i. Row-major storage is the fast path (each
/// row contiguous, vectorised); column-major rows are strided and use the scalar exp. A matrix with
/// zero columns gives −inf in every row; edge cases per row as log_sum_exp.
template <class Derived>
Eigen::Matrix<detail::accumulator_t<detail::scalar_of_t<Derived>>, Eigen::Dynamic, 1>
log_sum_exp_rows(const Eigen::DenseBase<Derived>& x) {
  using Acc = detail::accumulator_t<detail::scalar_of_t<Derived>>;
  Eigen::Matrix<Acc, Eigen::Dynamic, 1> out(x.rows());
  for (Eigen::Index i = 0; i < x.rows(); ++i) out[i] = log_sum_exp(x.derived().row(i));
  return out;
}

/// A mergeable streaming log-sum-exp (the "online normaliser" of Milakov & Gimelshein, 2018):
/// the running maximum m and the scaled sum s = Σ exp(x_j − m). Adding a value, adding a block and
/// merging two states are the same operation (rescale the smaller-max side by exp(m_old − m_new)),
/// so one pass, chunks of a row, threads or vocabulary shards on different machines all give the
/// same value() up to rounding: value() = m + log(s). The state keeps s − 1 rather than s (see
/// excess()), so value() keeps full relative precision when one element dominates.
///
/// The empty state has m = −inf, s = 0 and value −inf. −inf values contribute nothing. Once a +inf
/// is seen the value is +inf, and once a NaN is seen it is NaN (NaN wins, also over a later +inf).
/// `Real` is the type the state is kept in (double by default, whatever the inputs are; float and
/// long double also work). Nothing here throws.
template <class Real = double> class LogSumExpState {
public:
  /// The empty state.
  LogSumExpState() = default;

  /// Rebuilds a state from its two parts m and s (e.g. received from another machine).
  /// max = −inf or scaled_sum = 0 gives the empty state; a NaN part gives the NaN state.
  static LogSumExpState from_parts(Real max, Real scaled_sum) {
    if (std::isnan(scaled_sum)) return from_excess(scaled_sum, Real(0));
    return from_excess(max, scaled_sum - Real(1));
  }

  /// Rebuilds a state from m and s − 1 (the exact inverse of max() and excess()).
  static LogSumExpState from_excess(Real max, Real excess) {
    LogSumExpState s;
    if (std::isnan(max) || std::isnan(excess)) {
      s.max_ = detail::quiet_nan<Real>();
      s.excess_ = 0;
    } else if (max == -detail::infinity<Real>() || excess <= Real(-1)) {
      // empty: the default members
    } else if (max == detail::infinity<Real>()) {
      s.max_ = max;
      s.excess_ = 0;
    } else {
      s.max_ = max;
      s.excess_ = excess;
    }
    return s;
  }

  /// The running maximum m (−inf when empty, NaN once a NaN was added).
  Real max() const { return max_; }
  /// The scaled sum s = Σ exp(x_j − m) (0 when empty, ≥ 1 otherwise).
  Real scaled_sum() const { return excess_ + Real(1); }
  /// s − 1, kept separately so that value() = m + log1p(s − 1) is accurate when s is close to 1
  /// (−1 when empty).
  Real excess() const { return excess_; }
  /// True while nothing other than −inf has been added.
  bool empty() const { return max_ == -detail::infinity<Real>(); }

  /// log Σ exp(x_j) over everything added so far: m + log1p(s − 1); −inf when empty, +inf after a
  /// +inf, NaN after a NaN.
  Real value() const {
    if (!std::isfinite(max_)) return max_;
    return max_ + std::log1p(excess_);
  }

  /// Adds one value.
  template <detail::SupportedScalar T> LogSumExpState& add(T value_in) {
    const Real x = static_cast<Real>(static_cast<detail::accumulator_t<T>>(value_in));
    return merge(from_excess(x, Real(0)));
  }

  /// Adds every coefficient of an Eigen expression (vectorised, in the accumulator type of its
  /// scalar, with the sum carried in double as in log_sum_exp).
  template <class Derived> LogSumExpState& add(const Eigen::DenseBase<Derived>& block) {
    if (block.size() == 0) return *this;
    if constexpr (!Derived::IsVectorAtCompileTime) {
      const Eigen::Matrix<detail::scalar_of_t<Derived>, Eigen::Dynamic, 1> flat = block.derived().reshaped();
      return add(flat);
    } else {
      if (double m = 0, e = 0; detail::fast_max_excess(block, m, e))
        return merge(from_excess(static_cast<Real>(m), static_cast<Real>(e)));
      const auto block_max = detail::nan_max(block);
      if (!std::isfinite(block_max)) return merge(from_excess(static_cast<Real>(block_max), Real(0)));
      return merge(
          from_excess(static_cast<Real>(block_max), static_cast<Real>(detail::scaled_exp_excess(block, block_max))));
    }
  }

  /// Merges another state into this one; the result is the state of both inputs together.
  LogSumExpState& merge(const LogSumExpState& other) {
    if (std::isnan(max_)) return *this;
    if (std::isnan(other.max_) || other.empty() || empty()) {
      if (!other.empty()) *this = other;
      return *this;
    }
    if (max_ == detail::infinity<Real>() || other.max_ == detail::infinity<Real>()) {
      max_ = detail::infinity<Real>();
      excess_ = 0;
      return *this;
    }
    // s = s_big + s_small·exp(m_small − m_big), so s − 1 = (s_big − 1) + s_small·exp(m_small − m_big):
    // a sum of non-negative terms, no cancellation.
    if (other.max_ > max_) {
      excess_ = other.excess_ + (excess_ + Real(1)) * std::exp(max_ - other.max_);
      max_ = other.max_;
    } else {
      excess_ += (other.excess_ + Real(1)) * std::exp(other.max_ - max_);
    }
    return *this;
  }

private:
  Real max_ = -detail::infinity<Real>();
  Real excess_ = -1;
};

} // namespace nll
