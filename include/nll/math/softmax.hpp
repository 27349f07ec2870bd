// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// softmax and log-softmax of vectors and of each row of a matrix (rows are examples):
//
//   log_softmax(x)_j = (x_j − m) − log s,   m = max x,  s = Σ_k exp(x_k − m)
//   softmax(x)_j     = exp(log_softmax(x)_j)
//
// The subtraction order matters: x_j − m first, then − log s (adding m and log s first loses digits
// when they cancel; PyTorch issue 11752). log s is computed as log1p(s − 1) with s − 1 summed
// without forming s (log_sum_exp.hpp), so the log-probability of a dominant entry keeps its
// relative precision (log_softmax([0, −30])[0] = −9.36e−14, where PyTorch's float gives 0).
// Jacobian: ∂ log_softmax_j / ∂x_k = [j = k] − softmax_k; ∂ softmax_j / ∂x_k = softmax_j ([j = k] − softmax_k).
//
// Edge cases: a −inf entry gets log-probability −inf and probability exactly 0. A row whose maximum
// is +inf puts all the mass on its +inf entries, shared equally (log-probability −log(count) there,
// −inf elsewhere): the limit of the finite case; PyTorch returns NaN for such rows. A row of all
// −inf has no distribution: NaN everywhere (as PyTorch). NaN anywhere in a row makes the whole row
// NaN. Rows of zero length give an empty result. Probabilities below the smallest normal number
// are kept (within one subnormal step), not flushed to 0.
//
// Accuracy (docs/kernels.md): log_softmax within 1 eps (float, double; 2.6 eps with SSE2, where the
// tail sum behind a dominant entry is grouped in narrower packets) and 1.9 eps (long double) of
// mpmath, relative; softmax within 1.1 eps·max(1, |log p|) (the exp turns the absolute error of the
// log-probability into a relative one); rows sum to 1 within 5 eps, up to 131077 entries.
//
// Outputs have the input's scalar type (float, double, long double, Eigen::half, Eigen::bfloat16);
// the work is done in the accumulator type (float for the 16-bit formats), vectorised for float and
// double when the row is contiguous (a row-major matrix, or a vector); strided rows (a column-major
// matrix) use the scalar exp. The `out` overloads throw std::invalid_argument
// ("nll::softmax_rows: out.rows() is 3, but must be 4 (x.rows())") before writing anything when the
// shapes differ; `out` may be `x` itself.
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
    out =
        ((x.template cast<Acc>().array() - max) - log_sum).unaryExpr(exp_op<Acc>{}).template cast<OutScalar>().matrix();
  }
}

template <bool kLog, class In, class Out> void softmax_rows_into(const In& x, Out&& out) {
  for (Eigen::Index i = 0; i < x.rows(); ++i) softmax_vector_into<kLog>(x.row(i), out.row(i));
}

template <class Derived>
using rows_result_t = Eigen::Matrix<scalar_of_t<Derived>, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class Derived> using vector_result_t = Eigen::Matrix<scalar_of_t<Derived>, Eigen::Dynamic, 1>;

} // namespace detail

/// log-softmax of each row of `x` (value (x_j − m) − log s, Jacobian [j = k] − softmax_k); returns a
/// row-major matrix of x's scalar type. NaN/inf rows as in the file comment; never throws.
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

/// softmax of each row of `x` (value exp(log_softmax), Jacobian softmax_j ([j = k] − softmax_k));
/// returns a row-major matrix of x's scalar type. NaN/inf rows as in the file comment; never throws.
template <class Derived> detail::rows_result_t<Derived> softmax_rows(const Eigen::MatrixBase<Derived>& x) {
  detail::rows_result_t<Derived> out(x.rows(), x.cols());
  detail::softmax_rows_into<false>(x.derived(), out);
  return out;
}

/// softmax of each row of `x` written into `out` (same shape; may be x itself, for in-place use).
/// Throws std::invalid_argument when the shapes differ, before writing anything.
template <class Derived, class OutDerived> void softmax_rows(const Eigen::MatrixBase<Derived>& x, OutDerived&& out) {
  check_same_shape("softmax_rows", x, out);
  detail::softmax_rows_into<false>(x.derived(), out);
}

/// log-softmax of a vector expression (row or column); returns a column vector of x's scalar type.
/// See log_softmax_rows for the formula and the edge cases.
template <class Derived> detail::vector_result_t<Derived> log_softmax(const Eigen::MatrixBase<Derived>& x) {
  static_assert(Derived::IsVectorAtCompileTime, "nll::log_softmax takes a vector; use log_softmax_rows for a matrix");
  detail::vector_result_t<Derived> out(x.size());
  detail::softmax_vector_into<true>(x.derived(), out);
  return out;
}

/// softmax of a vector expression (row or column); returns a column vector of x's scalar type.
/// See softmax_rows for the formula and the edge cases.
template <class Derived> detail::vector_result_t<Derived> softmax(const Eigen::MatrixBase<Derived>& x) {
  static_assert(Derived::IsVectorAtCompileTime, "nll::softmax takes a vector; use softmax_rows for a matrix");
  detail::vector_result_t<Derived> out(x.size());
  detail::softmax_vector_into<false>(x.derived(), out);
  return out;
}

} // namespace nll
