// Tests of the message grammar and exception policy (include/nll/core/check.hpp):
//
//   nll::<function>: <argument>[i] is <value>, but must be <requirement>
//
// ErrorKind::shape → std::invalid_argument, ErrorKind::value → std::domain_error. The expected
// renderings of floating-point values are printf's "%.17g" / "%.9g" (max_digits10 significant
// digits), written out by hand from Python's '%.17g' % x; round trips are checked with strtod,
// strtof and strtold.
#include <nll/core/check.hpp>

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>

#include "support/catch.hpp"

namespace {

using nll::detail::format_value;

template <class Exception, class Fn> void require_throws(Fn&& fn, const std::string& message) {
  try {
    fn();
    FAIL("no exception was thrown; expected: " << message);
  } catch (const Exception& e) {
    CHECK(std::string(e.what()) == message);
  }
}

} // namespace

static_assert(NLL_HAS_EXCEPTIONS == 1, "the tests are built with exceptions");

TEST_CASE("format_value writes integers as integers, of every width and signedness") {
  CHECK(format_value(3) == "3");
  CHECK(format_value(-7) == "-7");
  CHECK(format_value(0) == "0");
  CHECK(format_value(std::numeric_limits<long long>::max()) == "9223372036854775807");
  CHECK(format_value(std::numeric_limits<std::int64_t>::min()) == "-9223372036854775808");
  CHECK(format_value(std::size_t{42}) == "42");
  CHECK(format_value(Eigen::Index{-12}) == "-12");
  // One-byte integers are numbers, not characters.
  CHECK(format_value(std::int8_t{-5}) == "-5");
  CHECK(format_value(std::uint8_t{200}) == "200");
  CHECK(format_value(std::uint8_t{0}) == "0");
}

TEST_CASE("format_value writes booleans as true and false") {
  CHECK(format_value(true) == "true");
  CHECK(format_value(false) == "false");
}

TEST_CASE("format_value writes floating point with round-trip digits") {
  // double: 17 significant digits, shortest form for integers.
  CHECK(format_value(0.1) == "0.10000000000000001");
  CHECK(format_value(2.0) == "2");
  CHECK(format_value(-2.0) == "-2");
  CHECK(format_value(-1.5) == "-1.5");
  CHECK(format_value(-0.0) == "-0");
  CHECK(format_value(1.0 / 3) == "0.33333333333333331");
  CHECK(format_value(123456789.0) == "123456789");
  CHECK(format_value(1e300) == "1.0000000000000001e+300");
  CHECK(format_value(std::numeric_limits<double>::denorm_min()) == "4.9406564584124654e-324");
  // float: 9 significant digits.
  CHECK(format_value(0.1f) == "0.100000001");
  CHECK(format_value(1.0f / 3) == "0.333333343");
  CHECK(format_value(-0.5f) == "-0.5");
  CHECK(format_value(std::numeric_limits<float>::denorm_min()) == "1.40129846e-45");
  CHECK(format_value(std::numeric_limits<float>::max()) == "3.40282347e+38");
  // long double (x87 extended on this platform: 21 digits).
  if constexpr (std::numeric_limits<long double>::digits == 64) CHECK(format_value(0.1L) == "0.100000000000000000001");

  // Round trips over random values of every magnitude.
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> mantissa(-1.0, 1.0);
  std::uniform_int_distribution<int> exponent(-300, 300);
  for (int k = 0; k < 2000; ++k) {
    const double d = std::ldexp(mantissa(rng), exponent(rng));
    const std::string s = format_value(d);
    INFO(s);
    CHECK(std::strtod(s.c_str(), nullptr) == d);
    const float f = static_cast<float>(std::ldexp(mantissa(rng), exponent(rng) % 120));
    const std::string sf = format_value(f);
    INFO(sf);
    CHECK(std::strtof(sf.c_str(), nullptr) == f);
    const long double l = static_cast<long double>(d) * (1 + std::ldexp(static_cast<long double>(mantissa(rng)), -60));
    const std::string sl = format_value(l);
    INFO(sl);
    CHECK(std::strtold(sl.c_str(), nullptr) == l);
  }
}

TEST_CASE("format_value writes nan, inf and -inf") {
  CHECK(format_value(std::numeric_limits<double>::quiet_NaN()) == "nan");
  CHECK(format_value(-std::numeric_limits<double>::quiet_NaN()) == "nan");
  CHECK(format_value(std::numeric_limits<double>::signaling_NaN()) == "nan");
  CHECK(format_value(std::numeric_limits<double>::infinity()) == "inf");
  CHECK(format_value(-std::numeric_limits<double>::infinity()) == "-inf");
  CHECK(format_value(std::numeric_limits<float>::quiet_NaN()) == "nan");
  CHECK(format_value(-std::numeric_limits<float>::infinity()) == "-inf");
  CHECK(format_value(std::numeric_limits<long double>::infinity()) == "inf");
  CHECK(format_value(std::numeric_limits<long double>::quiet_NaN()) == "nan");
}

TEST_CASE("format_value writes Eigen::half and Eigen::bfloat16 through float") {
  CHECK(format_value(Eigen::half(0.5f)) == "0.5");
  CHECK(format_value(Eigen::half(65504.0f)) == "65504");
  CHECK(format_value(Eigen::half(0.1f)) == "0.0999755859"); // the half nearest 0.1 is 0.0999755859375
  CHECK(format_value(Eigen::half(-2.0f)) == "-2");
  CHECK(format_value(Eigen::bfloat16(1.5f)) == "1.5");
  CHECK(format_value(Eigen::bfloat16(-3.0f)) == "-3");
  CHECK(format_value(std::numeric_limits<Eigen::half>::quiet_NaN()) == "nan");
  CHECK(format_value(std::numeric_limits<Eigen::half>::infinity()) == "inf");
  CHECK(format_value(-std::numeric_limits<Eigen::bfloat16>::infinity()) == "-inf");
  CHECK(format_value(std::numeric_limits<Eigen::bfloat16>::quiet_NaN()) == "nan");
  // Every finite half round-trips through its text.
  for (int bits = 0; bits < 0x10000; ++bits) {
    const Eigen::half h = Eigen::numext::bit_cast<Eigen::half>(static_cast<std::uint16_t>(bits));
    if (!Eigen::numext::isfinite(h)) continue;
    const std::string s = format_value(h);
    const Eigen::half back(std::strtof(s.c_str(), nullptr));
    if (Eigen::numext::bit_cast<std::uint16_t>(back) != static_cast<std::uint16_t>(bits)) {
      INFO("half bits " << bits << " written as " << s);
      CHECK(false);
    }
  }
}

TEST_CASE("format_value writes text as it is") {
  CHECK(format_value(std::string("not 1")) == "not 1");
  CHECK(format_value(std::string_view("a view")) == "a view");
  CHECK(format_value("a literal") == "a literal");
}

TEST_CASE("indexed and make_message build the grammar") {
  CHECK(nll::detail::indexed("targets", 3) == "targets[3]");
  CHECK(nll::detail::indexed("options.weight", 1234567890123LL) == "options.weight[1234567890123]");
  CHECK(nll::detail::make_message("cross_entropy", "targets[3]", 7, "in [0, 5) (logits.cols())") ==
        "nll::cross_entropy: targets[3] is 7, but must be in [0, 5) (logits.cols())");
  CHECK(nll::detail::make_message("f", "x", 0.25, "> 1") == "nll::f: x is 0.25, but must be > 1");
}

TEST_CASE("fail throws the exception of its kind with the exact message") {
  require_throws<std::domain_error>(
      [] { nll::fail(nll::ErrorKind::value, "dpo_loss", "options.beta", -1.5, "finite and > 0"); },
      "nll::dpo_loss: options.beta is -1.5, but must be finite and > 0");
  require_throws<std::invalid_argument>(
      [] { nll::fail(nll::ErrorKind::shape, "token_nll", "logits.rows()", 7, "a multiple of 3 (targets.size())"); },
      "nll::token_nll: logits.rows() is 7, but must be a multiple of 3 (targets.size())");
  require_throws<std::domain_error>(
      [] { nll::fail(nll::ErrorKind::value, "f", "options.eps", std::numeric_limits<double>::quiet_NaN(), "> 0"); },
      "nll::f: options.eps is nan, but must be > 0");
  require_throws<std::domain_error>([] { nll::fail(nll::ErrorKind::value, "f", "options.flag", true, "false"); },
                                    "nll::f: options.flag is true, but must be false");
  // Both are std::logic_error: one catch clause can take every nll error.
  CHECK_THROWS_AS(nll::fail(nll::ErrorKind::value, "f", "x", 1, "2"), std::logic_error);
  CHECK_THROWS_AS(nll::fail(nll::ErrorKind::shape, "f", "x", 1, "2"), std::logic_error);
  // The kinds do not overlap.
  CHECK_THROWS_AS(nll::fail(nll::ErrorKind::shape, "f", "x", 1, "2"), std::invalid_argument);
  CHECK_THROWS_AS(nll::fail(nll::ErrorKind::value, "f", "x", 1, "2"), std::domain_error);
  try {
    nll::fail(nll::ErrorKind::shape, "f", "x", 1, "2");
  } catch (const std::domain_error&) {
    FAIL("a shape error is not a domain_error");
  } catch (const std::invalid_argument&) {
    SUCCEED();
  }
}

TEST_CASE("fail_at names the element") {
  require_throws<std::domain_error>(
      [] { nll::fail_at(nll::ErrorKind::value, "cross_entropy", "targets", 3, 7, "in [0, 5) (logits.cols())"); },
      "nll::cross_entropy: targets[3] is 7, but must be in [0, 5) (logits.cols())");
  require_throws<std::domain_error>(
      [] { nll::fail_at(nll::ErrorKind::value, "f", "options.weight", 0, -0.5f, "finite and >= 0"); },
      "nll::f: options.weight[0] is -0.5, but must be finite and >= 0");
  require_throws<std::invalid_argument>(
      [] { nll::fail_at(nll::ErrorKind::shape, "f", "rows", 2, std::size_t{5}, "4"); },
      "nll::f: rows[2] is 5, but must be 4");
  require_throws<std::domain_error>(
      [] { nll::fail_at(nll::ErrorKind::value, "f", "x", 1, -std::numeric_limits<double>::infinity(), "finite"); },
      "nll::f: x[1] is -inf, but must be finite");
}

TEST_CASE("check_size passes equal sizes and names where the expectation comes from") {
  CHECK_NOTHROW(nll::check_size("cross_entropy", "targets.size()", 4, 4, "logits.rows()"));
  CHECK_NOTHROW(nll::check_size("f", "x.size()", 0, 0, "y.size()"));
  require_throws<std::invalid_argument>(
      [] { nll::check_size("cross_entropy", "targets.size()", 3, 4, "logits.rows()"); },
      "nll::cross_entropy: targets.size() is 3, but must be 4 (logits.rows())");
  require_throws<std::invalid_argument>([] { nll::check_size("f", "x.size()", 0, 12, "the number of examples"); },
                                        "nll::f: x.size() is 0, but must be 12 (the number of examples)");
}

TEST_CASE("check_same_shape compares rows, then columns") {
  const Eigen::MatrixXd x(4, 5);
  CHECK_NOTHROW(nll::check_same_shape("softmax_rows", x, Eigen::MatrixXd(4, 5)));
  CHECK_NOTHROW(nll::check_same_shape("softmax_rows", x, Eigen::MatrixXf(4, 5))); // the scalar type is not a shape
  require_throws<std::invalid_argument>([&] { nll::check_same_shape("softmax_rows", x, Eigen::MatrixXd(3, 5)); },
                                        "nll::softmax_rows: out.rows() is 3, but must be 4 (x.rows())");
  require_throws<std::invalid_argument>(
      [&] { nll::check_same_shape("cross_entropy", x, Eigen::MatrixXd(4, 2), "logits", "grad"); },
      "nll::cross_entropy: grad.cols() is 2, but must be 5 (logits.cols())");
  // Both wrong: the rows are reported.
  require_throws<std::invalid_argument>([&] { nll::check_same_shape("f", x, Eigen::MatrixXd(2, 2), "a", "b"); },
                                        "nll::f: b.rows() is 2, but must be 4 (a.rows())");
  // Blocks and vectors have shapes too.
  Eigen::MatrixXd big(10, 10);
  CHECK_NOTHROW(nll::check_same_shape("f", x, big.topLeftCorner(4, 5)));
  require_throws<std::invalid_argument>(
      [&] { nll::check_same_shape("f", Eigen::VectorXd(3), Eigen::RowVectorXd(3), "v", "w"); },
      "nll::f: w.rows() is 1, but must be 3 (v.rows())");
}
