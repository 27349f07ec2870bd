// log1p_exp (softplus), log_sigmoid and sigmoid against mpmath references
// (tests/data/kernels_{log1p_exp,log_sigmoid,sigmoid}.txt from scripts/gen_reference_kernels.py),
// in float, double and long double, on the scalar and on the vectorised (Eigen array) paths;
// 16-bit inputs; exact edge cases; gradients against finite differences in long double.
#include <nll/math/softplus.hpp>

#include <Eigen/Core>
#include <cmath>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/gradcheck.hpp"
#include "support/kernel_tables.hpp"
#include "support/reference.hpp"

namespace {

using nll_test::error_in_eps;
using nll_test::ScalarCase;
using nll_test::Worst;

constexpr float kFinf = std::numeric_limits<float>::infinity();
constexpr double kDinf = std::numeric_limits<double>::infinity();

enum class Kernel { log1p_exp, log_sigmoid, sigmoid };

const char* table_of(Kernel k) {
  switch (k) {
  case Kernel::log1p_exp: return "kernels_log1p_exp.txt";
  case Kernel::log_sigmoid: return "kernels_log_sigmoid.txt";
  default: return "kernels_sigmoid.txt";
  }
}
const char* name_of(Kernel k) {
  switch (k) {
  case Kernel::log1p_exp: return "log1p_exp";
  case Kernel::log_sigmoid: return "log_sigmoid";
  default: return "sigmoid";
  }
}

template <class T> T scalar_kernel(Kernel k, T x) {
  switch (k) {
  case Kernel::log1p_exp: return nll::log1p_exp(x);
  case Kernel::log_sigmoid: return nll::log_sigmoid(x);
  default: return nll::sigmoid(x);
  }
}

template <class T>
Eigen::Array<T, Eigen::Dynamic, 1> array_kernel(Kernel k, const Eigen::Array<T, Eigen::Dynamic, 1>& x) {
  switch (k) {
  case Kernel::log1p_exp: return nll::log1p_exp(x);
  case Kernel::log_sigmoid: return nll::log_sigmoid(x);
  default: return nll::sigmoid(x);
  }
}

const char* type_name(float) { return "float"; }
const char* type_name(double) { return "double"; }
const char* type_name(long double) { return "long double"; }

/// Worst error in eps of T over the table, on the scalar path and on the array path.
template <class T> std::pair<Worst, Worst> measure(Kernel k) {
  std::vector<ScalarCase> cases;
  for (const ScalarCase& c : nll_test::read_scalar_table(table_of(k)))
    if (c.float_ok || !std::is_same_v<T, float>) cases.push_back(c);
  Eigen::Array<T, Eigen::Dynamic, 1> xs(static_cast<Eigen::Index>(cases.size()));
  for (std::size_t i = 0; i < cases.size(); ++i) xs[static_cast<Eigen::Index>(i)] = static_cast<T>(cases[i].x);
  const Eigen::Array<T, Eigen::Dynamic, 1> packet = array_kernel<T>(k, xs);
  Worst scalar_worst, packet_worst;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string at = "x = " + nll_test::show(cases[i].x);
    scalar_worst.update(error_in_eps<T>(scalar_kernel<T>(k, static_cast<T>(cases[i].x)), cases[i].expected), at);
    packet_worst.update(error_in_eps<T>(packet[static_cast<Eigen::Index>(i)], cases[i].expected), at);
  }
  return {scalar_worst, packet_worst};
}

// Budgets in eps of the type, a little above the worst errors measured with g++ 12 / clang++ 14 and
// AVX-512 (docs/kernels.md): float 0.85 (scalar) and 2.5 (array), double 1.05 and 1.34, long
// double 1.85. Errors of results below the smallest normal number are measured in units of that
// number's eps (nll_test::error_in_eps), so a flushed subnormal would show up as millions of eps.
template <class T> long double budget_for() {
  if constexpr (std::is_same_v<T, float>)
    return 3.0L;
  else if constexpr (std::is_same_v<T, double>)
    return 2.0L;
  else
    return 2.5L;
}

template <class T> void check_kernel(Kernel k) {
  const long double budget = budget_for<T>();
  const auto [scalar, packet] = measure<T>(k);
  const std::string what = std::string(name_of(k)) + "<" + type_name(T{}) + ">";
  std::cout << scalar.report(what + " scalar") << "\n" << packet.report(what + " array") << "\n";
  INFO(scalar.report(what + " scalar"));
  INFO(packet.report(what + " array"));
  CHECK(scalar.error <= budget);
  CHECK(packet.error <= budget);
}

} // namespace

TEST_CASE("log1p_exp, log_sigmoid and sigmoid agree with mpmath in float, double and long double") {
  for (Kernel k : {Kernel::log1p_exp, Kernel::log_sigmoid, Kernel::sigmoid}) {
    check_kernel<float>(k);
    check_kernel<double>(k);
    check_kernel<long double>(k);
  }
}

TEST_CASE("the array forms accept any array expression and agree with the materialised input") {
  Eigen::ArrayXf x(37);
  for (Eigen::Index i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i - 18) * 3.25f;
  const Eigen::ArrayXf twice = 2 * x;
  const Eigen::ArrayXf from_expression = nll::sigmoid(2 * x);
  const Eigen::ArrayXf from_array = nll::sigmoid(twice);
  for (Eigen::Index i = 0; i < x.size(); ++i)
    CHECK(error_in_eps<float>(from_expression[i], static_cast<long double>(from_array[i])) <= 2);
  // A strided view (every other element of a matrix column).
  Eigen::MatrixXd m(8, 3);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<double>(i) - 11.5;
  const Eigen::ArrayXd row = m.row(2).transpose().array();
  const Eigen::ArrayXd strided = nll::log1p_exp(m.row(2).transpose().array());
  for (Eigen::Index i = 0; i < row.size(); ++i) CHECK(strided[i] == nll::log1p_exp(row[i]));
}

TEST_CASE("edge cases are exact") {
  // Infinities.
  CHECK(nll::log1p_exp(kFinf) == kFinf);
  CHECK(nll::log1p_exp(-kFinf) == 0.0f);
  CHECK(nll::log_sigmoid(kFinf) == 0.0f);
  CHECK(nll::log_sigmoid(-kFinf) == -kFinf);
  CHECK(nll::sigmoid(kFinf) == 1.0f);
  CHECK(nll::sigmoid(-kFinf) == 0.0f);
  CHECK(nll::log1p_exp(kDinf) == kDinf);
  CHECK(nll::sigmoid(-kDinf) == 0.0);
  // Huge magnitudes: no overflow, the exact answer.
  const float fmax = std::numeric_limits<float>::max();
  CHECK(nll::log1p_exp(fmax) == fmax);
  CHECK(nll::log1p_exp(-fmax) == 0.0f);
  CHECK(nll::log_sigmoid(-fmax) == -fmax);
  CHECK(nll::log_sigmoid(-1e4f) == -1e4f);
  CHECK(nll::log1p_exp(1e300) == 1e300);
  CHECK(nll::log_sigmoid(-1e300) == -1e300);
  CHECK(nll::sigmoid(-1e300) == 0.0);
  // The subnormal tail: sigmoid(-100) in float is 3.78e-44 (a subnormal), not 0.
  CHECK(nll::sigmoid(-100.0f) > 0.0f);
  CHECK(nll::sigmoid(-100.0f) < std::numeric_limits<float>::min());
  // 0 and -0.
  CHECK(nll::sigmoid(0.0f) == 0.5f);
  CHECK(nll::sigmoid(-0.0f) == 0.5f);
  CHECK(nll::log1p_exp(0.0) == std::log(2.0));
  CHECK(nll::log_sigmoid(0.0) == -std::log(2.0));
  // NaN in, NaN out, on every path.
  const float fnan = std::numeric_limits<float>::quiet_NaN();
  CHECK(std::isnan(nll::log1p_exp(fnan)));
  CHECK(std::isnan(nll::log_sigmoid(fnan)));
  CHECK(std::isnan(nll::sigmoid(fnan)));
  CHECK(std::isnan(nll::softplus(std::numeric_limits<double>::quiet_NaN())));
  Eigen::ArrayXf a = Eigen::ArrayXf::Zero(67);
  a[3] = fnan;
  a[40] = -kFinf;
  a[41] = kFinf;
  a[66] = fnan;
  const Eigen::ArrayXf sp = nll::softplus(a), ls = nll::log_sigmoid(a), sg = nll::sigmoid(a);
  for (Eigen::Index i : {3, 66}) {
    CHECK(std::isnan(sp[i]));
    CHECK(std::isnan(ls[i]));
    CHECK(std::isnan(sg[i]));
  }
  CHECK(sp[40] == 0.0f);
  CHECK(sp[41] == kFinf);
  CHECK(ls[40] == -kFinf);
  CHECK(ls[41] == 0.0f);
  CHECK(sg[40] == 0.0f);
  CHECK(sg[41] == 1.0f);
  CHECK(sg[0] == 0.5f);
  Eigen::ArrayXd ad = a.cast<double>();
  const Eigen::ArrayXd sgd = nll::sigmoid(ad), spd = nll::softplus(ad);
  CHECK(std::isnan(sgd[3]));
  CHECK(std::isnan(spd[66]));
  CHECK(sgd[40] == 0.0);
  CHECK(spd[40] == 0.0);
}

TEST_CASE("Eigen::half and Eigen::bfloat16 inputs are computed in float and rounded once") {
  const auto same = [](float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; };
  for (const ScalarCase& c : nll_test::read_scalar_table("kernels_sigmoid.txt")) {
    if (!c.float_ok) continue;
    const auto check16 = [&](auto h) {
      using H = decltype(h);
      const float xf = static_cast<float>(h);
      INFO("x = " << c.x << " rounded to " << xf);
      CHECK(same(static_cast<float>(nll::log1p_exp(h)), static_cast<float>(H(nll::log1p_exp(xf)))));
      CHECK(same(static_cast<float>(nll::log_sigmoid(h)), static_cast<float>(H(nll::log_sigmoid(xf)))));
      CHECK(same(static_cast<float>(nll::sigmoid(h)), static_cast<float>(H(nll::sigmoid(xf)))));
    };
    check16(Eigen::half(static_cast<float>(c.x)));
    check16(Eigen::bfloat16(static_cast<float>(c.x)));
  }
  Eigen::Array<Eigen::half, Eigen::Dynamic, 1> h(5);
  h << Eigen::half(-100.0f), Eigen::half(-3.0f), Eigen::half(0.0f), Eigen::half(2.5f), Eigen::half(60000.0f);
  const Eigen::Array<Eigen::half, Eigen::Dynamic, 1> sp = nll::softplus(h);
  for (Eigen::Index i = 0; i < h.size(); ++i)
    CHECK(static_cast<float>(sp[i]) == static_cast<float>(Eigen::half(nll::log1p_exp(static_cast<float>(h[i])))));
}

TEST_CASE("gradients: d log1p_exp = sigmoid, d log_sigmoid = sigmoid(-x), d sigmoid = sigmoid(x) sigmoid(-x)") {
  for (long double x0 : {-60.0L, -30.0L, -20.0L, -5.0L, -1.0L, -0.1L, 0.0L, 0.1L, 1.0L, 5.0L, 20.0L, 30.0L, 60.0L}) {
    INFO("x = " << static_cast<double>(x0));
    const std::vector<long double> x{x0};
    const auto d_softplus =
        nll_test::central_difference([](const std::vector<long double>& v) { return nll::log1p_exp(v[0]); }, x, 0);
    const auto d_log_sigmoid =
        nll_test::central_difference([](const std::vector<long double>& v) { return nll::log_sigmoid(v[0]); }, x, 0);
    const auto d_sigmoid =
        nll_test::central_difference([](const std::vector<long double>& v) { return nll::sigmoid(v[0]); }, x, 0);
    CHECK(nll_test::relative_difference(d_softplus, nll::sigmoid(x0)) < 1e-12L);
    CHECK(nll_test::relative_difference(d_log_sigmoid, nll::sigmoid(-x0)) < 1e-12L);
    // σ(x) is within 2e-9 of 1 for x ≥ 20, where a difference quotient of it cancels in long double.
    if (x0 <= 5) CHECK(nll_test::relative_difference(d_sigmoid, nll::sigmoid(x0) * nll::sigmoid(-x0)) < 1e-12L);
  }
}
