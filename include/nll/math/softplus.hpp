// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// The logistic kernels, each exact in both tails (no cut-offs, no probability formed and then
// logged):
//
//   log1p_exp(x)   = log(1 + eᵡ)        = max(x, 0) + log1p(exp(−|x|))      (softplus)
//                    gradient σ(x)
//   log_sigmoid(x) = log σ(x) = −log1p_exp(−x) = min(x, 0) − log1p(exp(−|x|))
//                    gradient σ(−x) = 1 − σ(x)
//   sigmoid(x)     = σ(x) = 1/(1 + e⁻ˣ);  with e = exp(−|x|): x ≥ 0 → 1/(1 + e),  x < 0 → e/(1 + e)
//                    gradient σ(x)·σ(−x)
//
// The max/min form is the branch form "x > 0 ? x + log1p(exp(−x)) : log1p(exp(x))" written without
// a branch, so the scalar and the vectorised paths compute the same formula. exp is only ever taken
// of a non-positive number, so nothing overflows: log1p_exp(1e300) = 1e300, log1p_exp(−1e300) = 0,
// log_sigmoid(−1e4f) = −1e4f, sigmoid(−100.0f) = 3.78e−44 (a float subnormal, not 0: also on the
// vectorised path, whose exp is repaired below the normal range, see exp.hpp).
//
// Infinities: log1p_exp(+inf) = +inf, log1p_exp(−inf) = 0; log_sigmoid(−inf) = −inf,
// log_sigmoid(+inf) = 0; sigmoid(±inf) = 1 / 0. NaN in gives NaN out. Nothing throws.
//
// Accuracy against mpmath over 750 inputs from −FLT_MAX to FLT_MAX (and ±1e300, ±DBL_MAX in double;
// docs/kernels.md): scalar within 1.05 eps (float, double) and 1.85 eps (long double); vectorised
// float within 2.5 eps, vectorised double within 1.34 eps. Results below the smallest normal number
// are within one subnormal step.
//
// Scalar overloads take float, double, long double, Eigen::half and Eigen::bfloat16 (computed in
// float, returned in the input type). Array overloads take any Eigen array expression and return a
// lazy expression (the same lifetime rules as Eigen's own x.exp()), vectorised for float and double
// (Eigen's packet exp and log1p; for double, whose packet log1p Eigen 3.4 lacks, Eigen's
// generic_plog1p on the packet log), scalar for the other types.
#pragma once

#include <Eigen/Core>
#include <cmath>

#include "../detail/numeric.hpp"
#include "exp.hpp"

namespace nll {

/// softplus: log(1 + exp(x)) for every x without overflow; gradient σ(x). ±inf and NaN as in the
/// file comment.
template <detail::SupportedScalar T> T log1p_exp(T x_in) {
  using Acc = detail::accumulator_t<T>;
  const Acc x = static_cast<Acc>(x_in);
  // x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)), with NaN taking the second branch.
  const Acc result = x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
  return static_cast<T>(result);
}

/// Same as log1p_exp: the name PyTorch users know.
template <detail::SupportedScalar T> T softplus(T x) { return log1p_exp(x); }

/// log σ(x) = −log1p_exp(−x) for every x without overflow; gradient σ(−x). See the file comment.
template <detail::SupportedScalar T> T log_sigmoid(T x_in) {
  using Acc = detail::accumulator_t<T>;
  const Acc x = static_cast<Acc>(x_in);
  const Acc result = x < 0 ? x - std::log1p(std::exp(x)) : -std::log1p(std::exp(-x));
  return static_cast<T>(result);
}

/// σ(x) = 1/(1 + exp(−x)), accurate in both tails (relative error within about 1 eps wherever the
/// result is a normal number, one subnormal step below); gradient σ(x)·σ(−x).
template <detail::SupportedScalar T> T sigmoid(T x_in) {
  using Acc = detail::accumulator_t<T>;
  const Acc x = static_cast<Acc>(x_in);
  if (x >= 0) return static_cast<T>(Acc(1) / (Acc(1) + std::exp(-x)));
  const Acc e = std::exp(x); // NaN also lands here and propagates
  return static_cast<T>(e / (Acc(1) + e));
}

namespace detail {

// Eigen functors: a scalar operator() (the formulas above) and, for float and double, a packet
// version of the same branch-free formula.
template <class T> struct log1p_exp_op {
  T operator()(const T& x) const { return nll::log1p_exp(x); }
  template <class Packet> Packet packetOp(const Packet& x) const {
    using namespace Eigen::internal;
    return padd(pmax(x, pzero(x)), plog1p_any(pexp_full(pnegate(pabs(x)))));
  }
};
template <class T> struct log_sigmoid_op {
  T operator()(const T& x) const { return nll::log_sigmoid(x); }
  template <class Packet> Packet packetOp(const Packet& x) const {
    using namespace Eigen::internal;
    return psub(pmin(x, pzero(x)), plog1p_any(pexp_full(pnegate(pabs(x)))));
  }
};
template <class T> struct sigmoid_op {
  T operator()(const T& x) const { return nll::sigmoid(x); }
  template <class Packet> Packet packetOp(const Packet& x) const {
    using namespace Eigen::internal;
    const Packet e = pexp_full(pnegate(pabs(x)));
    const Packet r = pdiv(pset1<Packet>(T(1)), padd(pset1<Packet>(T(1)), e));
    // x ≥ 0 → r; x < 0 → e·r. NaN: every lane operation above already gives NaN.
    return pselect(pcmp_lt(x, pzero(x)), pmul(e, r), r);
  }
};

template <class T> inline constexpr bool kVectorisedLogistic = kVectorisedExpLog1p<T>;

} // namespace detail

/// Element-wise log1p_exp of an Eigen array expression (vectorised for float and double); a lazy
/// expression of the input's scalar type.
template <class Derived> auto log1p_exp(const Eigen::ArrayBase<Derived>& x) {
  return x.derived().unaryExpr(detail::log1p_exp_op<typename Derived::Scalar>{});
}
/// Element-wise softplus (same as log1p_exp).
template <class Derived> auto softplus(const Eigen::ArrayBase<Derived>& x) { return log1p_exp(x); }
/// Element-wise log σ(x) of an Eigen array expression.
template <class Derived> auto log_sigmoid(const Eigen::ArrayBase<Derived>& x) {
  return x.derived().unaryExpr(detail::log_sigmoid_op<typename Derived::Scalar>{});
}
/// Element-wise σ(x) of an Eigen array expression.
template <class Derived> auto sigmoid(const Eigen::ArrayBase<Derived>& x) {
  return x.derived().unaryExpr(detail::sigmoid_op<typename Derived::Scalar>{});
}

} // namespace nll

namespace Eigen::internal {
template <class T> struct functor_traits<nll::detail::log1p_exp_op<T>> {
  enum { Cost = 6 * NumTraits<T>::MulCost, PacketAccess = nll::detail::kVectorisedLogistic<T> };
};
template <class T> struct functor_traits<nll::detail::log_sigmoid_op<T>> {
  enum { Cost = 6 * NumTraits<T>::MulCost, PacketAccess = nll::detail::kVectorisedLogistic<T> };
};
template <class T> struct functor_traits<nll::detail::sigmoid_op<T>> {
  enum { Cost = 6 * NumTraits<T>::MulCost, PacketAccess = nll::detail::kVectorisedLogistic<T> };
};
} // namespace Eigen::internal
