// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// Scalar-type plumbing shared by the kernels and the families: which type a sum is accumulated in,
// and how 16-bit inputs are widened. Internal: not part of the public API.
#pragma once

#include <Eigen/Core>
#include <type_traits>

namespace nll::detail {

/// The type a kernel computes and accumulates in for inputs of type T: float for float and the
/// 16-bit formats (Eigen::half, Eigen::bfloat16), T itself for double and long double.
template <class T> struct accumulator { using type = T; };
template <> struct accumulator<Eigen::half> { using type = float; };
template <> struct accumulator<Eigen::bfloat16> { using type = float; };
template <class T> using accumulator_t = typename accumulator<std::remove_cv_t<T>>::type;

/// True for the scalar types the library accepts as model outputs.
template <class T>
inline constexpr bool is_supported_scalar_v =
    std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, long double> ||
    std::is_same_v<T, Eigen::half> || std::is_same_v<T, Eigen::bfloat16>;

/// A scalar type the library accepts (used to keep scalar overloads away from Eigen expressions).
template <class T>
concept SupportedScalar = is_supported_scalar_v<std::remove_cv_t<T>>;

/// The scalar type of an Eigen expression.
template <class Derived> using scalar_of_t = typename Eigen::internal::traits<Derived>::Scalar;

/// +inf / -inf / quiet NaN in type T.
template <class T> constexpr T infinity() { return std::numeric_limits<T>::infinity(); }
template <class T> constexpr T quiet_nan() { return std::numeric_limits<T>::quiet_NaN(); }

} // namespace nll::detail
