// log_softmax / softmax (vectors and rows) against mpmath references
// (tests/data/kernels_log_softmax.txt, and x − lse(x) for the long rows of
// tests/data/kernels_log_sum_exp.txt; scripts/gen_reference_kernels.py): float, double, long double;
// the conventions for ±inf and NaN rows; in-place use; storage orders and expressions; 16-bit
// inputs; shape errors; the Jacobian against finite differences in long double.
#include <nll/math/softmax.hpp>

#include <Eigen/Core>
#include <cmath>
#include <iostream>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/gradcheck.hpp"
#include "support/kernel_tables.hpp"
#include "support/reference.hpp"

namespace {

using nll_test::error_in_eps;
using nll_test::SoftmaxRow;
using nll_test::Worst;

template <class T> using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;
template <class T> using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using ColMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;

template <class T> Vec<T> to_vector(const std::vector<double>& x) {
  Vec<T> v(static_cast<Eigen::Index>(x.size()));
  for (std::size_t j = 0; j < x.size(); ++j) v[static_cast<Eigen::Index>(j)] = static_cast<T>(x[j]);
  return v;
}

const char* type_name(float) { return "float"; }
const char* type_name(double) { return "double"; }
const char* type_name(long double) { return "long double"; }

/// The error against a reference; a finite reference beyond the range of T must give the
/// infinity it rounds to (log_softmax([−FLT_MAX, FLT_MAX])[0] = −2·FLT_MAX is −inf in float).
template <class T> long double ref_error(long double got, long double expected) {
  const T rounded = static_cast<T>(expected);
  if (std::isfinite(expected) && std::isinf(rounded))
    return got == static_cast<long double>(rounded) ? 0.0L : std::numeric_limits<long double>::infinity();
  return error_in_eps<T>(got, expected);
}

/// softmax_j = exp(log_softmax_j) inherits the absolute error of log_softmax_j (≈ eps·|log p_j|)
/// as a relative error: its error is measured in units of eps·max(1, |log p_j|).
template <class T> long double softmax_error(long double got, long double expected) {
  const long double e = ref_error<T>(got, expected);
  if (!(expected > 0) || !std::isfinite(e)) return e;
  return e / std::max(1.0L, std::fabs(std::log(expected)));
}

bool same(long double a, long double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

/// A compensated (Neumaier) long double sum: a plain sequential sum of 131072 probabilities would
/// itself be off by hundreds of long double eps.
struct Sum {
  long double sum = 0, compensation = 0;
  void add(long double term) {
    const long double next = sum + term;
    compensation += std::fabs(sum) >= std::fabs(term) ? (sum - next) + term : (term - next) + sum;
    sum = next;
  }
  long double value() const { return sum + compensation; }
};

// Budgets in eps (docs/kernels.md has the measured values). log_softmax of a dominant entry is
// −log1p(Σ of the other exps), so its relative error is that of a 32000-term sum, which depends on
// the packet width: 0.98 eps with AVX-512, 2.58 eps with SSE2 (float and double).
template <class T> long double log_softmax_budget() { return std::is_same_v<T, long double> ? 3.0L : 4.0L; }
template <class T> long double softmax_budget() { return std::is_same_v<T, long double> ? 3.0L : 2.0L; }
template <class T> long double sum_budget() { return 6.0L; }

template <class T> void check_listed_rows() {
  Worst lsm_worst, sm_worst, sum_worst;
  for (const SoftmaxRow& row : nll_test::read_softmax_table()) {
    if (!row.float_ok && std::is_same_v<T, float>) continue;
    INFO(row.name);
    const Vec<T> x = to_vector<T>(row.x);
    const Vec<T> lsm = nll::log_softmax(x), sm = nll::softmax(x);
    RowMajor<T> m(2, x.size());
    m.row(0) = x.transpose();
    m.row(1) = x.transpose();
    const RowMajor<T> lsm_rows = nll::log_softmax_rows(m), sm_rows = nll::softmax_rows(m);
    long double total = 0;
    for (Eigen::Index j = 0; j < x.size(); ++j) {
      const auto k = static_cast<std::size_t>(j);
      const std::string at = row.name + "[" + std::to_string(j) + "]";
      lsm_worst.update(ref_error<T>(lsm[j], row.log_softmax[k]), at);
      sm_worst.update(softmax_error<T>(sm[j], row.softmax[k]), at);
      // The row forms compute the same thing.
      CHECK(same(lsm_rows(1, j), lsm[j]));
      CHECK(same(sm_rows(0, j), sm[j]));
      total += sm[j];
    }
    if (std::isfinite(total)) sum_worst.update(error_in_eps<T>(total, 1.0L), row.name);
  }
  const std::string t = type_name(T{});
  std::cout << lsm_worst.report("log_softmax<" + t + ">") << "\n"
            << sm_worst.report("softmax<" + t + "> (in eps·max(1, |log p|))") << "\n"
            << sum_worst.report("softmax<" + t + "> row sums - 1") << "\n";
  INFO(lsm_worst.report("log_softmax<" + t + ">"));
  INFO(sm_worst.report("softmax<" + t + ">"));
  INFO(sum_worst.report("softmax<" + t + "> row sums - 1"));
  CHECK(lsm_worst.error <= log_softmax_budget<T>());
  CHECK(sm_worst.error <= softmax_budget<T>());
  CHECK(sum_worst.error <= sum_budget<T>());
}

/// The long rows of the log-sum-exp table: log_softmax_j = (x_j − max) − log s with the mpmath
/// log s (x_j − max is exact in long double for these rows, and the subtraction of two
/// non-positive numbers adds at most half an ulp of long double).
template <class T> void check_long_rows() {
  Worst lsm_worst, sm_worst, sum_worst;
  for (const nll_test::LseRow& row : nll_test::read_lse_table()) {
    if (row.x.size() < 1000 || !std::isfinite(row.expected)) continue;
    if (!row.float_ok && std::is_same_v<T, float>) continue;
    const Vec<T> x = to_vector<T>(row.x);
    const Vec<T> lsm = nll::log_softmax(x);
    RowMajor<T> sm = x.transpose();
    nll::softmax_rows(sm, sm); // in place
    long double max = -std::numeric_limits<long double>::infinity();
    Sum total;
    for (double v : row.x) max = std::max(max, static_cast<long double>(v));
    for (Eigen::Index j = 0; j < x.size(); ++j) {
      const long double xj = row.x[static_cast<std::size_t>(j)];
      const long double expected = xj == -std::numeric_limits<long double>::infinity() ? xj : (xj - max) - row.log_s;
      const std::string at = row.name + "[" + std::to_string(j) + "]";
      lsm_worst.update(error_in_eps<T>(lsm[j], expected), at);
      sm_worst.update(softmax_error<T>(sm(0, j), std::exp(expected)), at);
      total.add(sm(0, j));
    }
    sum_worst.update(error_in_eps<T>(total.value(), 1.0L), row.name);
  }
  const std::string t = type_name(T{});
  std::cout << lsm_worst.report("log_softmax<" + t + ">, rows of 1000 to 131077") << "\n"
            << sm_worst.report("softmax_rows<" + t + "> in place, rows of 1000 to 131077 (in eps·max(1, |log p|))")
            << "\n"
            << sum_worst.report("softmax_rows<" + t + "> row sums - 1, rows of 1000 to 131077") << "\n";
  CHECK(lsm_worst.error <= log_softmax_budget<T>());
  CHECK(sm_worst.error <= softmax_budget<T>());
  CHECK(sum_worst.error <= sum_budget<T>());
}

} // namespace

TEST_CASE("log_softmax and softmax agree with mpmath in float, double and long double") {
  check_listed_rows<float>();
  check_listed_rows<double>();
  check_listed_rows<long double>();
  check_long_rows<float>();
  check_long_rows<double>();
  check_long_rows<long double>();
}

TEST_CASE("conventions: +inf entries share the mass, all −inf or NaN gives NaN, −inf entries get 0") {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  Eigen::VectorXd x(5);
  x << 1.0, inf, -inf, inf, 0.0;
  const Eigen::VectorXd lsm = nll::log_softmax(x), sm = nll::softmax(x);
  CHECK(lsm[1] == -std::log(2.0));
  CHECK(lsm[3] == -std::log(2.0));
  CHECK(lsm[0] == -inf);
  CHECK(lsm[2] == -inf);
  CHECK(sm[1] == 0.5);
  CHECK(sm[3] == 0.5);
  CHECK(sm[0] == 0.0);
  CHECK(sm[2] == 0.0);
  x << -inf, -inf, -inf, -inf, -inf;
  CHECK(nll::log_softmax(x).array().isNaN().all());
  CHECK(nll::softmax(x).array().isNaN().all());
  x << 1.0, nan, 2.0, inf, -inf;
  CHECK(nll::log_softmax(x).array().isNaN().all());
  CHECK(nll::softmax(x).array().isNaN().all());
  // −inf entries next to finite ones: log-probability −inf, probability exactly 0 (also in the
  // vectorised float path, whose raw packet exp would give 0 here, and in double, where Eigen's raw
  // packet exp(−inf) is 5.6e−309).
  for (Eigen::Index n : {3, 40, 4099}) {
    Eigen::VectorXd d = Eigen::VectorXd::LinSpaced(n, -3.0, 3.0);
    d[1] = -inf;
    d[n - 1] = -inf;
    const Eigen::VectorXd pd = nll::softmax(d);
    CHECK(pd[1] == 0.0);
    CHECK(pd[n - 1] == 0.0);
    CHECK(nll::log_softmax(d)[1] == -inf);
    const Eigen::VectorXf f = d.cast<float>();
    const Eigen::VectorXf pf = nll::softmax(f);
    CHECK(pf[1] == 0.0f);
    CHECK(pf[n - 1] == 0.0f);
    CHECK(std::isfinite(nll::log_softmax(f)[0]));
  }
  // Probabilities in the subnormal range are kept, not flushed: on the scalar path (2 entries) and
  // on the packet path (67 entries), where Eigen's raw AVX-512 float exp(−100) would give 0.
  for (Eigen::Index n : {2, 67}) {
    Eigen::VectorXf t = Eigen::VectorXf::Constant(n, -100.0f);
    t[0] = 0.0f;
    const Eigen::VectorXf p = nll::softmax(t);
    const long double tail = std::exp(-100.0L) / (1 + static_cast<long double>(n - 1) * std::exp(-100.0L));
    for (Eigen::Index j = 1; j < n; ++j) {
      INFO("n = " << n << ", j = " << j << ": " << p[j]);
      CHECK(p[j] > 0.0f);
      CHECK(error_in_eps<float>(p[j], tail) <= 1);
    }
  }
  // Zero-length rows give an empty result; zero rows too.
  CHECK(nll::log_softmax_rows(RowMajor<float>(3, 0)).size() == 0);
  CHECK(nll::softmax_rows(RowMajor<float>(0, 4)).rows() == 0);
  CHECK(nll::log_softmax(Eigen::VectorXd()).size() == 0);
  // Single element: log-probability 0, probability 1, whatever its value.
  for (double v : {-1e300, -1e4, 0.0, 1e4, 1e300}) {
    CHECK(nll::log_softmax(Eigen::VectorXd::Constant(1, v))[0] == 0.0);
    CHECK(nll::softmax(Eigen::VectorXd::Constant(1, v))[0] == 1.0);
  }
  // Huge magnitudes: no overflow.
  Eigen::VectorXf h(3);
  h << 1e4f, -1e4f, 1e4f;
  const Eigen::VectorXf lh = nll::log_softmax(h);
  CHECK(error_in_eps<float>(lh[0], -std::log(2.0L)) <= 1);
  CHECK(error_in_eps<float>(lh[1], -2e4L - std::log(2.0L)) <= 1);
}

TEST_CASE("in place: log_softmax_rows(x, x) and softmax_rows(x, x) equal the out-of-place results") {
  RowMajor<float> x(4, 300);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>((i * 7919) % 2001 - 1000) / 64.0f;
  x(2, 5) = -std::numeric_limits<float>::infinity();
  const RowMajor<float> lsm = nll::log_softmax_rows(x), sm = nll::softmax_rows(x);
  RowMajor<float> a = x, b = x;
  nll::log_softmax_rows(a, a);
  nll::softmax_rows(b, b);
  CHECK(a == lsm);
  CHECK(b == sm);
  // Into a column-major output and into a block of a bigger matrix.
  ColMajor<float> c(4, 300);
  nll::log_softmax_rows(x, c);
  CHECK(c == lsm);
  // (A strided destination is written with the scalar std::exp, not the packet exp: within 2 eps.)
  ColMajor<float> big = ColMajor<float>::Zero(6, 310);
  nll::softmax_rows(x, big.block(1, 2, 4, 300));
  for (Eigen::Index i = 0; i < 4; ++i)
    for (Eigen::Index j = 0; j < 300; ++j) CHECK(softmax_error<float>(big(1 + i, 2 + j), sm(i, j)) <= 2);
  CHECK(big(0, 0) == 0.0f);
  // In place on a column-major matrix (strided rows).
  ColMajor<double> d = x.cast<double>();
  const RowMajor<double> expected = nll::log_softmax_rows(x.cast<double>().eval());
  nll::log_softmax_rows(d, d);
  for (Eigen::Index i = 0; i < d.rows(); ++i)
    for (Eigen::Index j = 0; j < d.cols(); ++j) CHECK(error_in_eps<double>(d(i, j), expected(i, j)) <= 1);
}

TEST_CASE("storage order and expressions: column-major, transpose, 2*x, blocks give the row-major result") {
  RowMajor<float> x(5, 129);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>((i * 104729) % 40001 - 20000) / 512.0f;
  const RowMajor<float> lsm = nll::log_softmax_rows(x), sm = nll::softmax_rows(x);
  const ColMajor<float> cm = x;
  const ColMajor<float> cm_t = x.transpose();
  const RowMajor<float> halves = x / 2;
  ColMajor<float> big = ColMajor<float>::Constant(9, 140, 77.0f);
  big.block(3, 4, 5, 129) = x;
  // Strided rows are evaluated with the scalar std::exp rather than the packet exp, so softmax
  // values may differ by the exp's error (measured in eps·max(1, |log p|)).
  const auto close = [&](const RowMajor<float>& got, const RowMajor<float>& expected) {
    for (Eigen::Index i = 0; i < got.rows(); ++i)
      for (Eigen::Index j = 0; j < got.cols(); ++j) {
        INFO("(" << i << ", " << j << "): " << got(i, j) << " vs " << expected(i, j));
        CHECK(softmax_error<float>(got(i, j), expected(i, j)) <= 2);
      }
  };
  close(nll::log_softmax_rows(cm), lsm);
  close(nll::log_softmax_rows(cm_t.transpose()), lsm);
  close(nll::log_softmax_rows(2 * halves), lsm);
  close(nll::log_softmax_rows(big.block(3, 4, 5, 129)), lsm);
  close(nll::softmax_rows(cm), sm);
  close(nll::softmax_rows(cm_t.transpose()), sm);
  close(nll::softmax_rows(2 * halves), sm);
  close(nll::softmax_rows(big.block(3, 4, 5, 129)), sm);
  // Vectors: a row of a column-major matrix, a transposed row, an expression.
  close(RowMajor<float>(nll::log_softmax(cm.row(2)).transpose()), lsm.row(2));
  close(RowMajor<float>(nll::softmax(x.row(4).transpose()).transpose()), sm.row(4));
  close(RowMajor<float>(nll::softmax(2 * halves.row(1)).transpose()), sm.row(1));
}

TEST_CASE("16-bit inputs: computed in float from the rounded inputs, rounded once to the input type") {
  RowMajor<float> x(3, 257);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>((i * 7919) % 2001 - 1000) / 32.0f;
  x(1, 0) = -std::numeric_limits<float>::infinity();
  const auto check16 = [&](auto tag) {
    using H = decltype(tag);
    const RowMajor<H> h = x.cast<H>();
    const RowMajor<float> rounded = h.template cast<float>();
    const RowMajor<float> lsm = nll::log_softmax_rows(rounded), sm = nll::softmax_rows(rounded);
    const RowMajor<H> lsm_h = nll::log_softmax_rows(h), sm_h = nll::softmax_rows(h);
    const float eps = static_cast<float>(std::numeric_limits<H>::epsilon());
    for (Eigen::Index i = 0; i < x.rows(); ++i)
      for (Eigen::Index j = 0; j < x.cols(); ++j) {
        // Rounding the float result to H gives the same value, or (if the float results differ in
        // their last bit because of a different summation order) the neighbouring one.
        const float a = static_cast<float>(lsm_h(i, j)), b = static_cast<float>(H(lsm(i, j)));
        const float p = static_cast<float>(sm_h(i, j)), q = static_cast<float>(H(sm(i, j)));
        CHECK((a == b || std::fabs(a - b) <= eps * std::fabs(b)));
        CHECK((p == q || std::fabs(p - q) <= eps * std::fabs(q)));
      }
  };
  check16(Eigen::half());
  check16(Eigen::bfloat16());
}

TEST_CASE("a wrong output shape throws std::invalid_argument naming the dimension, and writes nothing") {
  const RowMajor<float> x = RowMajor<float>::Ones(4, 6);
  RowMajor<float> rows_wrong = RowMajor<float>::Constant(3, 6, 5.0f);
  RowMajor<float> cols_wrong = RowMajor<float>::Constant(4, 5, 5.0f);
  const auto message = [](auto&& call) {
    try {
      call();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  };
  CHECK(message([&] { nll::log_softmax_rows(x, rows_wrong); }) ==
        "nll::log_softmax_rows: out.rows() is 3, but must be 4 (x.rows())");
  CHECK(message([&] { nll::log_softmax_rows(x, cols_wrong); }) ==
        "nll::log_softmax_rows: out.cols() is 5, but must be 6 (x.cols())");
  CHECK(message([&] { nll::softmax_rows(x, rows_wrong); }) ==
        "nll::softmax_rows: out.rows() is 3, but must be 4 (x.rows())");
  CHECK(message([&] { nll::softmax_rows(x, cols_wrong); }) ==
        "nll::softmax_rows: out.cols() is 5, but must be 6 (x.cols())");
  CHECK((rows_wrong.array() == 5.0f).all());
  CHECK((cols_wrong.array() == 5.0f).all());
}

TEST_CASE("Jacobian: d log_softmax_j / dx_k = [j = k] − softmax_k (finite differences in long double)") {
  const std::vector<long double> x0{0.5L, -1.25L, 3.0L, 2.0L, -4.0L};
  const auto n = static_cast<Eigen::Index>(x0.size());
  const Vec<long double> p = nll::softmax(Eigen::Map<const Vec<long double>>(x0.data(), n));
  for (Eigen::Index j = 0; j < n; ++j) {
    const auto f = [j, n](const std::vector<long double>& v) {
      return nll::log_softmax(Eigen::Map<const Vec<long double>>(v.data(), n))[j];
    };
    for (Eigen::Index k = 0; k < n; ++k) {
      INFO("j = " << j << ", k = " << k);
      const long double expected = (j == k ? 1.0L : 0.0L) - p[k];
      const long double step = 1e-3L / std::max(1.0L, std::fabs(x0[static_cast<std::size_t>(k)]));
      CHECK(nll_test::relative_difference(nll_test::central_difference(f, x0, static_cast<std::size_t>(k), step),
                                          expected) < 1e-11L);
    }
  }
  // And softmax: d softmax_j / dx_k = softmax_j ([j = k] − softmax_k).
  for (Eigen::Index j = 0; j < n; ++j) {
    const auto f = [j, n](const std::vector<long double>& v) {
      return nll::softmax(Eigen::Map<const Vec<long double>>(v.data(), n))[j];
    };
    for (Eigen::Index k = 0; k < n; ++k) {
      const long double expected = p[j] * ((j == k ? 1.0L : 0.0L) - p[k]);
      const long double step = 1e-3L / std::max(1.0L, std::fabs(x0[static_cast<std::size_t>(k)]));
      CHECK(nll_test::relative_difference(nll_test::central_difference(f, x0, static_cast<std::size_t>(k), step),
                                          expected) < 1e-10L);
    }
  }
}
