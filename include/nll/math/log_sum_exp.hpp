// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// log-sum-exp, the normaliser of every softmax-type distribution:
//
//   lse(x) = log Σ_j exp(x_j) = m + log Σ_j exp(x_j − m),   m = max_j x_j
//
// Shifting by the maximum keeps every exp(x_j − m) in (0, 1], so nothing overflows and the sum is at
// least 1; the log then loses nothing. Gradient: ∂lse/∂x_j = exp(x_j − lse) = softmax(x)_j.
//
// Edge cases (each one tested):
//   empty input            → −inf (the log of an empty sum)
//   every element −inf     → −inf (not NaN: the shift is skipped when the maximum is not finite)
//   any element +inf       → +inf
//   any element NaN        → NaN (NaN wins over ±inf)
//   |x| up to float max    → exact: no exp of a positive number is ever taken
//
// Precision: inputs of type float, Eigen::half and Eigen::bfloat16 are computed in float, and the
// scaled sum is accumulated in double across chunks of kChunk elements (float inside a chunk, where
// Eigen keeps many independent vector accumulators), so rows of 128k+ elements keep a few-ulp
// result. double inputs are computed in double.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "../detail/numeric.hpp"

namespace nll {

namespace detail {

/// Elements per float chunk of a scaled sum before it is added to the double total.
inline constexpr Eigen::Index kLogSumExpChunk = 4096;

/// Max of a vector expression with NaN propagation (Eigen's default maxCoeff is unspecified
/// with NaN), computed in the accumulator type. Empty → −inf.
template <class Derived> accumulator_t<scalar_of_t<Derived>> nan_max(const Eigen::DenseBase<Derived>& x) {
  using Acc = accumulator_t<scalar_of_t<Derived>>;
  if (x.size() == 0) return -infinity<Acc>();
  if constexpr (std::is_same_v<scalar_of_t<Derived>, Acc>) {
    return x.derived().template maxCoeff<Eigen::PropagateNaN>();
  } else {
    return x.derived().template cast<Acc>().template maxCoeff<Eigen::PropagateNaN>();
  }
}

/// Σ_j exp(x_j − shift) for a vector expression with a finite shift, accumulated in double per
/// chunk (or in long double for long double input).
template <class Derived>
auto scaled_exp_sum(const Eigen::DenseBase<Derived>& x, accumulator_t<scalar_of_t<Derived>> shift) {
  using Acc = accumulator_t<scalar_of_t<Derived>>;
  using Total = std::conditional_t<std::is_same_v<Acc, long double>, long double, double>;
  const auto& v = x.derived();
  const Eigen::Index n = v.size();
  Total total = 0;
  for (Eigen::Index start = 0; start < n; start += kLogSumExpChunk) {
    const Eigen::Index len = std::min(kLogSumExpChunk, n - start);
    if constexpr (std::is_same_v<scalar_of_t<Derived>, Acc>) {
      total += static_cast<Total>((v.segment(start, len).array() - shift).exp().sum());
    } else {
      total += static_cast<Total>(
          (v.segment(start, len).template cast<Acc>().array() - shift).exp().sum());
    }
  }
  return total;
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
  return hi + std::log1p(std::exp(lo - hi));
}

/// log Σ_j exp(x_j) over every coefficient of `x` (any Eigen expression). Result type: the
/// accumulator type (float for float/half/bfloat16 input, double for double). See the file comment
/// for the edge cases. Gradient: softmax(x).
template <class Derived>
detail::accumulator_t<detail::scalar_of_t<Derived>> log_sum_exp(const Eigen::DenseBase<Derived>& x) {
  using Acc = detail::accumulator_t<detail::scalar_of_t<Derived>>;
  if constexpr (Derived::IsVectorAtCompileTime) {
    const Acc max = detail::nan_max(x);
    if (!std::isfinite(max)) return max; // empty or all −inf → −inf; +inf → +inf; NaN → NaN
    return static_cast<Acc>(max + std::log(detail::scaled_exp_sum(x, max)));
  } else {
    const Eigen::Matrix<detail::scalar_of_t<Derived>, Eigen::Dynamic, 1> flat =
        x.derived().reshaped();
    return log_sum_exp(flat);
  }
}

/// log-sum-exp of each row of `x` (rows are examples): a column vector with x.rows() entries in the
/// accumulator type. Row-major storage is the fast path (each row contiguous). A matrix with zero
/// columns gives −inf in every row.
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
/// same value() up to rounding: value() = m + log(s).
///
/// The empty state has m = −inf, s = 0 and value −inf. −inf values contribute nothing. Once a +inf
/// is seen the value is +inf, and once a NaN is seen it is NaN (NaN wins). `Real` is the type the
/// state is kept in (double by default, whatever the inputs are).
template <class Real = double> class LogSumExpState {
public:
  LogSumExpState() = default;

  /// Rebuilds a state from its two parts (e.g. received from another machine).
  static LogSumExpState from_parts(Real max, Real scaled_sum) {
    LogSumExpState s;
    s.max_ = max;
    s.scaled_sum_ = scaled_sum;
    return s;
  }

  /// The running maximum m (−inf when empty).
  Real max() const { return max_; }
  /// The scaled sum s = Σ exp(x_j − m) (0 when empty, ≥ 1 otherwise).
  Real scaled_sum() const { return scaled_sum_; }
  /// True while nothing other than −inf has been added.
  bool empty() const { return scaled_sum_ == 0 && !std::isnan(max_); }

  /// log Σ exp(x_j) over everything added so far.
  Real value() const {
    if (std::isnan(max_)) return max_;
    if (max_ == detail::infinity<Real>()) return max_;
    if (scaled_sum_ == 0) return -detail::infinity<Real>();
    return max_ + std::log(scaled_sum_);
  }

  /// Adds one value.
  template <detail::SupportedScalar T> LogSumExpState& add(T value_in) {
    const Real x = static_cast<Real>(value_in);
    if (std::isnan(x)) {
      max_ = x;
      return *this;
    }
    if (x == -detail::infinity<Real>()) return *this;
    merge(from_parts(x, Real(1)));
    return *this;
  }

  /// Adds every coefficient of an Eigen vector expression, vectorised.
  template <class Derived> LogSumExpState& add(const Eigen::DenseBase<Derived>& block) {
    if (block.size() == 0) return *this;
    if constexpr (!Derived::IsVectorAtCompileTime) {
      const Eigen::Matrix<detail::scalar_of_t<Derived>, Eigen::Dynamic, 1> flat =
          block.derived().reshaped();
      return add(flat);
    } else {
      const auto block_max = detail::nan_max(block);
      if (std::isnan(block_max)) {
        max_ = static_cast<Real>(block_max);
        return *this;
      }
      if (block_max == -detail::infinity<decltype(block_max)>()) return *this;
      if (!std::isfinite(block_max)) return merge(from_parts(static_cast<Real>(block_max), Real(1)));
      return merge(from_parts(static_cast<Real>(block_max),
                              static_cast<Real>(detail::scaled_exp_sum(block, block_max))));
    }
  }

  /// Merges another state into this one; the result is the state of both inputs together.
  LogSumExpState& merge(const LogSumExpState& other) {
    if (std::isnan(max_)) return *this;
    if (std::isnan(other.max_)) {
      max_ = other.max_;
      return *this;
    }
    if (other.scaled_sum_ == 0) return *this;
    if (scaled_sum_ == 0) {
      *this = other;
      return *this;
    }
    if (max_ == detail::infinity<Real>() || other.max_ == detail::infinity<Real>()) {
      max_ = detail::infinity<Real>();
      scaled_sum_ = 1;
      return *this;
    }
    if (other.max_ > max_) {
      scaled_sum_ = scaled_sum_ * std::exp(max_ - other.max_) + other.scaled_sum_;
      max_ = other.max_;
    } else {
      scaled_sum_ += other.scaled_sum_ * std::exp(other.max_ - max_);
    }
    return *this;
  }

private:
  Real max_ = -detail::infinity<Real>();
  Real scaled_sum_ = 0;
};

} // namespace nll
