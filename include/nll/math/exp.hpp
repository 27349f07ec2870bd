// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// Internal: the vectorised exp and log1p the kernels are built on (nll::detail, not public API).
//
// Eigen 3.4's packet exp is accurate to a few ulp for normal results but wrong below them:
//   * float with AVX-512 flushes every result below about 1e-38 to 0 (exp(-88) = 0 instead of
//     6.05e-39, exp(-100) = 0 instead of 3.78e-44);
//   * the generic float exp (SSE/AVX) clamps its argument at -88.72, so exp(-100) = 2.9e-39;
//   * double clamps its argument at -709.78, so exp(-800) = exp(-inf) = 5.6e-309 instead of 0.
// pexp_full fixes that tail: for lanes whose argument is below kExpNormalFloor (the result would not
// be a normal number) it returns exp(y/2)², which is exact to within one subnormal ulp there and 0
// where the true value is below half the smallest subnormal (exp(-inf) = 0). The extra exp is only
// evaluated for packets that have such a lane (predux_any), so the common case pays one compare.
//
// plog1p_any: Eigen's plog1p where the packet type has one (float), otherwise Eigen's
// generic_plog1p, log1p(u) = u·log(1 + u)/((1 + u) − 1) (Goldberg), built on plog (double).
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <type_traits>

namespace nll::detail {

/// exp(y) is a normal number for y above this (exp(-87) = 1.6e-38 > FLT_MIN; exp(-708) = 3.3e-308 > DBL_MIN).
template <class T> inline constexpr T kExpNormalFloor = std::is_same_v<T, float> ? T(-87) : T(-708);

/// Packet exp, correct in the subnormal tail (see the file comment). NaN lanes give NaN.
template <class Packet> Packet pexp_full(const Packet& y) {
  using namespace Eigen::internal;
  using Scalar = typename unpacket_traits<Packet>::type;
  Packet r = pexp(y);
  const Packet tail = pcmp_lt(y, pset1<Packet>(kExpNormalFloor<Scalar>));
  if (predux_any(tail)) {
    const Packet half = pexp(pmul(y, pset1<Packet>(Scalar(0.5))));
    r = pselect(tail, pmul(half, half), r);
  }
  return r;
}

/// Packet log1p for float and double packets (see the file comment).
template <class Packet> Packet plog1p_any(const Packet& u) {
  using namespace Eigen::internal;
  using Scalar = typename unpacket_traits<Packet>::type;
  if constexpr (packet_traits<Scalar>::HasLog1p) {
    return plog1p(u);
  } else {
    return generic_plog1p(u);
  }
}

/// Whether T is float or double and Eigen has packet exp for it (and, with kLogAndDiv, packet log
/// and division too).
template <class T, bool kLogAndDiv = false> constexpr bool vectorised_float_math() {
  using Traits = Eigen::internal::packet_traits<T>;
  const bool float_or_double = std::is_same_v<T, float> || std::is_same_v<T, double>;
  const bool exp = float_or_double && Traits::Vectorizable && Traits::HasExp;
  return kLogAndDiv ? exp && Traits::HasLog && Traits::HasDiv : exp;
}

/// True when pexp_full is vectorised for T.
template <class T> inline constexpr bool kVectorisedExp = vectorised_float_math<T>();

/// True when pexp_full and plog1p_any are vectorised for T.
template <class T>
inline constexpr bool kVectorisedExpLog1p = kVectorisedExp<T> && (Eigen::internal::packet_traits<T>::HasLog1p ||
                                                                  Eigen::internal::packet_traits<T>::HasLog);

/// exp(x) element-wise (an Eigen functor).
template <class T> struct exp_op {
  T operator()(const T& x) const { return std::exp(x); }
  template <class Packet> Packet packetOp(const Packet& x) const { return pexp_full(x); }
};

/// x < shift ? exp(x − shift) : 0 element-wise: the terms of a scaled sum that lie strictly below
/// its maximum `shift` (an Eigen functor).
template <class T> struct exp_below_op {
  T shift;
  T operator()(const T& x) const { return x < shift ? std::exp(x - shift) : T(0); }
  template <class Packet> Packet packetOp(const Packet& x) const {
    using namespace Eigen::internal;
    const Packet s = pset1<Packet>(shift);
    return pand(pcmp_lt(x, s), pexp_full(psub(x, s)));
  }
};

/// x == value ? 1 : 0 element-wise (an Eigen functor; summed, it counts the ties at the maximum).
template <class T> struct equal_indicator_op {
  T value;
  T operator()(const T& x) const { return x == value ? T(1) : T(0); }
  template <class Packet> Packet packetOp(const Packet& x) const {
    using namespace Eigen::internal;
    return pand(pcmp_eq(x, pset1<Packet>(value)), pset1<Packet>(T(1)));
  }
};

} // namespace nll::detail

namespace Eigen::internal {
template <class T> struct functor_traits<nll::detail::exp_op<T>> {
  enum { Cost = 20 * NumTraits<T>::MulCost, PacketAccess = nll::detail::kVectorisedExp<T> };
};
template <class T> struct functor_traits<nll::detail::exp_below_op<T>> {
  enum { Cost = 22 * NumTraits<T>::MulCost, PacketAccess = nll::detail::kVectorisedExp<T> };
};
template <class T> struct functor_traits<nll::detail::equal_indicator_op<T>> {
  enum { Cost = 2 * NumTraits<T>::AddCost, PacketAccess = nll::detail::kVectorisedExp<T> };
};
} // namespace Eigen::internal
