// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// softmax and log-softmax of vectors and of each row of a matrix (rows are examples):
//
//   log_softmax(x)_j = (x_j − m) − log s,   m = max x,  s = Σ_k exp(x_k − m)
//   softmax(x)_j     = exp(x_j − m) / s
//
// The subtraction order matters: x_j − m first, then − log s (adding m and log s first loses digits
// when they cancel; PyTorch issue 11752). Jacobian: ∂ log_softmax_j / ∂x_k = [j = k] − softmax_k.
//
// Edge cases: a −inf entry gets log-probability −inf and probability 0. A row whose maximum is +inf
// puts all the mass on its +inf entries, shared equally (log-probability −log(count) there, −inf
// elsewhere). A row of all −inf has no distribution: NaN everywhere (as PyTorch). NaN anywhere in
// a row makes the whole row NaN. Rows of zero length give an empty result.
//
// Outputs have the input's scalar type (float, double, Eigen::half, Eigen::bfloat16); the work is
// done in the accumulator type (float for the 16-bit formats).
#pragma once

#include <Eigen/Core>
#include <cmath>

#include "../core/check.hpp"
#include "../detail/numeric.hpp"
#include "log_sum_exp.hpp"

namespace nll {

namespace detail {

/// Writes log_softmax (kLog = true) or softmax of the vector `x` into the vector `out`, which may
/// be the same storage as `x`.
template <bool kLog, class In, class Out> void softmax_vector_into(const In& x, Out&& out) {
  using Acc = accumulator_t<scalar_of_t<In>>;
  using OutScalar = scalar_of_t<std::remove_reference_t<Out>>;
  const Eigen::Index n = x.size();
  if (n == 0) return;
  const Acc max = nan_max(x);
  if (std::isnan(max) || max == -infinity<Acc>()) {
    out.setConstant(static_cast<OutScalar>(quiet_nan<Acc>()));
    return;
  }
  if (max == infinity<Acc>()) {
    // All mass on the +inf entries, shared equally.
    Eigen::Index count = 0;
    for (Eigen::Index j = 0; j < n; ++j) count += static_cast<Acc>(x.coeff(j)) == max ? 1 : 0;
    const Acc on = kLog ? -std::log(static_cast<Acc>(count)) : Acc(1) / static_cast<Acc>(count);
    const Acc off = kLog ? -infinity<Acc>() : Acc(0);
    for (Eigen::Index j = 0; j < n; ++j)
      out.coeffRef(j) = static_cast<OutScalar>(static_cast<Acc>(x.coeff(j)) == max ? on : off);
    return;
  }
  // log s = log1p(s − 1), accurate also when the maximum dominates (log_softmax of it is −(s − 1)).
  const Acc log_sum = static_cast<Acc>(std::log1p(scaled_exp_excess(x, max)));
  if constexpr (kLog) {
    out = ((x.template cast<Acc>().array() - max) - log_sum).template cast<OutScalar>().matrix();
  } else {
    // exp(x − m − log s) keeps the division out of the inner loop; exp_op gives exactly 0 for −inf
    // entries and correct subnormals (Eigen's packet exp alone does neither; see exp.hpp).
    out = ((x.template cast<Acc>().array() - max) - log_sum).unaryExpr(exp_op<Acc>{}).template cast<OutScalar>().matrix();
  }
}

template <bool kLog, class In, class Out> void softmax_rows_into(const In& x, Out&& out) {
  for (Eigen::Index i = 0; i < x.rows(); ++i) softmax_vector_into<kLog>(x.row(i), out.row(i));
}

template <class Derived>
using rows_result_t = Eigen::Matrix<scalar_of_t<Derived>, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class Derived>
using vector_result_t = Eigen::Matrix<scalar_of_t<Derived>, Eigen::Dynamic, 1>;

} // namespace detail

/// log-softmax of each row of `x`; returns a row-major matrix of x's scalar type.
template <class Derived> detail::rows_result_t<Derived> log_softmax_rows(const Eigen::MatrixBase<Derived>& x) {
  detail::rows_result_t<Derived> out(x.rows(), x.cols());
  detail::softmax_rows_into<true>(x.derived(), out);
  return out;
}

/// log-softmax of each row of `x` written into `out` (same shape; may be x itself, for in-place
/// use). Throws std::invalid_argument when the shapes differ.
template <class Derived, class OutDerived>
void log_softmax_rows(const Eigen::MatrixBase<Derived>& x, OutDerived&& out) {
  check_same_shape("log_softmax_rows", x, out);
  detail::softmax_rows_into<true>(x.derived(), out);
}

/// softmax of each row of `x`; returns a row-major matrix of x's scalar type.
template <class Derived> detail::rows_result_t<Derived> softmax_rows(const Eigen::MatrixBase<Derived>& x) {
  detail::rows_result_t<Derived> out(x.rows(), x.cols());
  detail::softmax_rows_into<false>(x.derived(), out);
  return out;
}

/// softmax of each row of `x` written into `out` (same shape; may alias x).
template <class Derived, class OutDerived>
void softmax_rows(const Eigen::MatrixBase<Derived>& x, OutDerived&& out) {
  check_same_shape("softmax_rows", x, out);
  detail::softmax_rows_into<false>(x.derived(), out);
}

/// log-softmax of a vector expression; returns a column vector of x's scalar type.
template <class Derived> detail::vector_result_t<Derived> log_softmax(const Eigen::MatrixBase<Derived>& x) {
  static_assert(Derived::IsVectorAtCompileTime, "nll::log_softmax takes a vector; use log_softmax_rows for a matrix");
  detail::vector_result_t<Derived> out(x.size());
  detail::softmax_vector_into<true>(x.derived(), out);
  return out;
}

/// softmax of a vector expression; returns a column vector of x's scalar type.
template <class Derived> detail::vector_result_t<Derived> softmax(const Eigen::MatrixBase<Derived>& x) {
  static_assert(Derived::IsVectorAtCompileTime, "nll::softmax takes a vector; use softmax_rows for a matrix");
  detail::vector_result_t<Derived> out(x.size());
  detail::softmax_vector_into<false>(x.derived(), out);
  return out;
}

} // namespace nll
