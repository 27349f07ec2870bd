// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// Argument checks with one message grammar, shared by every public function:
//
//   nll::<function>: <argument>[i] is <value>, but must be <requirement>
//
// Shape misuse (a length or a dimension that does not match) throws std::invalid_argument; a bad
// value (a class index out of range, a negative weight, an option outside its domain) throws
// std::domain_error. When exceptions are disabled (-fno-exceptions), the same message is written
// to stderr and the program aborts. Non-finite *data* (NaN or inf logits, say) is never an error:
// it propagates through the arithmetic. Only structural misuse is reported here.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define NLL_HAS_EXCEPTIONS 1
#else
#define NLL_HAS_EXCEPTIONS 0
#endif

namespace nll {

/// Which standard exception a failed check throws.
enum class ErrorKind {
  shape, ///< std::invalid_argument: sizes or dimensions do not fit together
  value  ///< std::domain_error: a value is outside the set the argument allows
};

namespace detail {

/// Writes a value the way messages show it: integers as integers, floating point with enough
/// digits to round-trip, booleans as true/false, NaN as "nan", infinities as "inf"/"-inf".
template <class V> std::string format_value(const V& value) {
  std::ostringstream out;
  if constexpr (std::is_same_v<V, bool>) {
    out << (value ? "true" : "false");
  } else if constexpr (std::is_floating_point_v<V>) {
    if (std::isnan(value)) {
      out << "nan";
    } else if (std::isinf(value)) {
      out << (value > 0 ? "inf" : "-inf");
    } else {
      out.precision(std::numeric_limits<V>::max_digits10);
      out << value;
    }
  } else if constexpr (std::is_integral_v<V> && sizeof(V) == 1) {
    out << static_cast<int>(value);
  } else if constexpr (std::is_arithmetic_v<V>) {
    out << value;
  } else if constexpr (requires { static_cast<float>(value); }) {
    return format_value(static_cast<float>(value)); // Eigen::half, Eigen::bfloat16
  } else {
    out << value;
  }
  return out.str();
}

/// Reports a failed check: throws the exception of `kind` with `message`, or, in a build without
/// exceptions, prints the message to stderr and aborts.
[[noreturn]] inline void raise(ErrorKind kind, const std::string& message) {
#if NLL_HAS_EXCEPTIONS
  if (kind == ErrorKind::shape) throw std::invalid_argument(message);
  throw std::domain_error(message);
#else
  (void)kind;
  std::fputs(message.c_str(), stderr);
  std::fputc('\n', stderr);
  std::fflush(stderr);
  std::abort();
#endif
}

/// Builds "nll::<function>: <argument> is <value>, but must be <requirement>". `argument` already
/// carries any index or accessor ("targets[3]", "weight.size()").
template <class V>
std::string make_message(std::string_view function, std::string_view argument, const V& value,
                         std::string_view requirement) {
  std::string message = "nll::";
  message += function;
  message += ": ";
  message += argument;
  message += " is ";
  message += format_value(value);
  message += ", but must be ";
  message += requirement;
  return message;
}

/// "name[i]" — the indexed form of an argument name used in messages.
inline std::string indexed(std::string_view argument, long long index) {
  std::string out(argument);
  out += '[';
  out += std::to_string(index);
  out += ']';
  return out;
}

} // namespace detail

/// Fails a check of a whole argument: `nll::f: argument is value, but must be requirement`.
template <class V>
[[noreturn]] void fail(ErrorKind kind, std::string_view function, std::string_view argument, const V& value,
                       std::string_view requirement) {
  detail::raise(kind, detail::make_message(function, argument, value, requirement));
}

/// Fails a check of one element: `nll::f: argument[index] is value, but must be requirement`.
template <class V>
[[noreturn]] void fail_at(ErrorKind kind, std::string_view function, std::string_view argument, long long index,
                          const V& value, std::string_view requirement) {
  detail::raise(kind, detail::make_message(function, detail::indexed(argument, index), value, requirement));
}

/// Checks that a size equals the expected one; `requirement` names where the expectation comes
/// from, e.g. check_size("cross_entropy", "targets.size()", t.size(), n, "logits.rows()") gives
/// "nll::cross_entropy: targets.size() is 3, but must be 4 (logits.rows())".
inline void check_size(std::string_view function, std::string_view argument, long long actual, long long expected,
                       std::string_view expected_from) {
  if (actual == expected) return;
  std::string requirement = std::to_string(expected);
  requirement += " (";
  requirement += expected_from;
  requirement += ')';
  fail(ErrorKind::shape, function, argument, actual, requirement);
}

/// Checks that `out` has the shape of `x` (rows and columns), naming them `out_name` and `x_name`
/// in the message: "nll::softmax_rows: out.rows() is 3, but must be 4 (x.rows())".
template <class X, class Out>
void check_same_shape(std::string_view function, const X& x, const Out& out, std::string_view x_name = "x",
                      std::string_view out_name = "out") {
  const auto name = [](std::string_view base, std::string_view member) {
    std::string s(base);
    s += member;
    return s;
  };
  check_size(function, name(out_name, ".rows()"), static_cast<long long>(out.rows()), static_cast<long long>(x.rows()),
             name(x_name, ".rows()"));
  check_size(function, name(out_name, ".cols()"), static_cast<long long>(out.cols()), static_cast<long long>(x.cols()),
             name(x_name, ".cols()"));
}

} // namespace nll
