// log_sum_exp (pair, vector, matrix, rows) and LogSumExpState against mpmath references
// (tests/data/kernels_log_sum_exp.txt from scripts/gen_reference_kernels.py): float, double and
// long double; 16-bit inputs; storage orders and expressions; the edge cases of the file comment of
// include/nll/math/log_sum_exp.hpp; streaming/merging in any order; the gradient identity.
#include <nll/math/log_sum_exp.hpp>
#include <nll/math/softmax.hpp>

#include <Eigen/Core>
#include <algorithm>
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
using nll_test::LseRow;
using nll_test::Worst;

template <class T> using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;
template <class T> using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using ColMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;

const std::vector<LseRow>& rows() {
  static const std::vector<LseRow> table = nll_test::read_lse_table();
  return table;
}

template <class T> Vec<T> to_vector(const std::vector<double>& x) {
  Vec<T> v(static_cast<Eigen::Index>(x.size()));
  for (std::size_t j = 0; j < x.size(); ++j) v[static_cast<Eigen::Index>(j)] = static_cast<T>(x[j]);
  return v;
}

template <class T> bool applies(const LseRow& row) { return row.float_ok || !std::is_same_v<T, float>; }

const char* type_name(float) { return "float"; }
const char* type_name(double) { return "double"; }
const char* type_name(long double) { return "long double"; }

// Budgets in eps of the input type, a little above the worst errors measured (docs/kernels.md):
// float 1.51, double 1.09, long double 2.76, all on the row "cancel_to_near_zero" (lse = 0.18 from
// a maximum of −0.75: the error is relative to the small result).
template <class T> long double budget_for() {
  if constexpr (std::is_same_v<T, float>)
    return 2.0L;
  else if constexpr (std::is_same_v<T, double>)
    return 2.0L;
  else
    return 3.0L;
}

bool same_value(long double a, long double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

/// For comparing two computations of the same lse (different summation orders): the error in eps
/// of float relative to max(|lse|, |max x|). When lse cancels against the shift (lse = 0.18 from
/// max = −0.75), a last-bit difference in the sum is several eps of the small result.
long double consistency_error(float a, float b, const Eigen::VectorXf& x) {
  if (!std::isfinite(a) || !std::isfinite(b)) return error_in_eps<float>(a, b);
  const long double scale =
      std::max(std::fabs(static_cast<long double>(b)), static_cast<long double>(x.array().abs().maxCoeff()));
  return std::fabs(static_cast<long double>(a) - b) / (scale * std::numeric_limits<float>::epsilon());
}

template <class T> void check_table() {
  Worst vec_worst, rows_worst, state_worst;
  for (const LseRow& row : rows()) {
    if (!applies<T>(row)) continue;
    const Vec<T> x = to_vector<T>(row.x);
    const long double got = nll::log_sum_exp(x);
    vec_worst.update(error_in_eps<T>(got, row.expected), row.name);
    // Row-wise on a row-major matrix with the row repeated: every row gives the same bits.
    RowMajor<T> m(2, x.size());
    m.row(0) = x.transpose();
    m.row(1) = x.transpose();
    const auto per_row = nll::log_sum_exp_rows(m);
    rows_worst.update(error_in_eps<T>(per_row[1], row.expected), row.name);
    CHECK(same_value(per_row[0], got));
    // One streaming state fed in chunks of 1000 values.
    nll::LogSumExpState<double> state;
    for (Eigen::Index start = 0; start < x.size(); start += 1000)
      state.add(x.segment(start, std::min<Eigen::Index>(1000, x.size() - start)));
    // The state is kept in double: long double inputs are measured in double's eps.
    using StateT = std::conditional_t<std::is_same_v<T, long double>, double, T>;
    state_worst.update(error_in_eps<StateT>(static_cast<StateT>(state.value()), row.expected), row.name);
  }
  const std::string t = type_name(T{});
  std::cout << vec_worst.report("log_sum_exp<" + t + ">") << "\n"
            << rows_worst.report("log_sum_exp_rows<" + t + ">") << "\n"
            << state_worst.report("LogSumExpState<double> fed " + t + " in chunks of 1000") << "\n";
  INFO(vec_worst.report("log_sum_exp<" + t + ">"));
  INFO(rows_worst.report("log_sum_exp_rows<" + t + ">"));
  INFO(state_worst.report("LogSumExpState<double> fed " + t));
  const long double budget = budget_for<T>();
  CHECK(vec_worst.error <= budget);
  CHECK(rows_worst.error <= budget);
  CHECK(state_worst.error <= budget_for<std::conditional_t<std::is_same_v<T, long double>, double, T>>());
}

} // namespace

TEST_CASE("log_sum_exp agrees with mpmath in float, double and long double (rows up to 131077)") {
  check_table<float>();
  check_table<double>();
  check_table<long double>();
}

TEST_CASE("log_sum_exp of two scalars agrees with the vector form and with mpmath") {
  Worst worst_f, worst_d;
  for (const LseRow& row : rows()) {
    if (row.x.size() != 2) continue;
    if (row.float_ok)
      worst_f.update(error_in_eps<float>(nll::log_sum_exp(static_cast<float>(row.x[0]), static_cast<float>(row.x[1])),
                                         row.expected),
                     row.name);
    worst_d.update(error_in_eps<double>(nll::log_sum_exp(row.x[0], row.x[1]), row.expected), row.name);
  }
  std::cout << worst_f.report("log_sum_exp(a, b) float") << "\n" << worst_d.report("log_sum_exp(a, b) double") << "\n";
  CHECK(worst_f.error <= 1.0L);
  CHECK(worst_d.error <= 2.0L);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  CHECK(nll::log_sum_exp(-inf, -inf) == -inf);
  CHECK(nll::log_sum_exp(-inf, 2.5f) == 2.5f);
  CHECK(nll::log_sum_exp(inf, -inf) == inf);
  CHECK(nll::log_sum_exp(inf, inf) == inf);
  CHECK(std::isnan(nll::log_sum_exp(inf, nan)));
  CHECK(std::isnan(nll::log_sum_exp(nan, -inf)));
  CHECK(nll::log_sum_exp(3.0e38f, 3.0e38f) == Approx(3.0e38f));
  CHECK(nll::log_sum_exp(1e300, -1e300) == 1e300);
  // Half and bfloat16 are computed in float.
  CHECK(nll::log_sum_exp(Eigen::half(1.5f), Eigen::half(-2.0f)) == nll::log_sum_exp(1.5f, -2.0f));
  CHECK(nll::log_sum_exp(Eigen::bfloat16(60000.0f), Eigen::bfloat16(1.0f)) ==
        nll::log_sum_exp(static_cast<float>(Eigen::bfloat16(60000.0f)), 1.0f));
}

TEST_CASE("log_sum_exp edge cases") {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  SECTION("empty → −inf") {
    CHECK(nll::log_sum_exp(Eigen::VectorXf()) == -inf);
    CHECK(nll::log_sum_exp(Eigen::MatrixXd(3, 0)) == -std::numeric_limits<double>::infinity());
    const Eigen::VectorXf per_row = nll::log_sum_exp_rows(RowMajor<float>(4, 0));
    REQUIRE(per_row.size() == 4);
    CHECK((per_row.array() == -inf).all());
    CHECK(nll::log_sum_exp_rows(RowMajor<float>(0, 5)).size() == 0);
  }
  SECTION("all −inf → −inf, not NaN") {
    for (Eigen::Index n : {1, 2, 17, 5000}) {
      CHECK(nll::log_sum_exp(Eigen::VectorXf::Constant(n, -inf)) == -inf);
      CHECK(nll::log_sum_exp(Eigen::VectorXd::Constant(n, -std::numeric_limits<double>::infinity())) ==
            -std::numeric_limits<double>::infinity());
    }
  }
  SECTION("+inf → +inf; NaN propagates, also next to +inf") {
    Eigen::VectorXf x = Eigen::VectorXf::LinSpaced(9000, -50.0f, 50.0f);
    x[8999] = inf;
    CHECK(nll::log_sum_exp(x) == inf);
    x[4] = nan;
    CHECK(std::isnan(nll::log_sum_exp(x)));
    x[8999] = 0;
    CHECK(std::isnan(nll::log_sum_exp(x)));
    Eigen::VectorXf y = Eigen::VectorXf::Constant(33, -inf);
    y[32] = nan;
    CHECK(std::isnan(nll::log_sum_exp(y)));
    y[0] = inf;
    CHECK(std::isnan(nll::log_sum_exp(y)));
  }
  SECTION("single element: the element itself") {
    for (float v : {-1e4f, -1.5f, 0.0f, 3.25f, 1e30f, std::numeric_limits<float>::max()})
      CHECK(nll::log_sum_exp(Eigen::VectorXf::Constant(1, v)) == v);
    CHECK(nll::log_sum_exp(Eigen::VectorXd::Constant(1, -1e300)) == -1e300);
  }
  SECTION("huge magnitudes do not overflow") {
    Eigen::VectorXf f(3);
    f << 1e4f, 1e4f, -1e4f;
    CHECK(error_in_eps<float>(nll::log_sum_exp(f), 1e4L + std::log(2.0L)) <= 1);
    Eigen::VectorXd d(3);
    d << 1e300, 1e300, -1e300;
    CHECK(nll::log_sum_exp(d) == 1e300);
    d << -1e300, -1e300, -1e300;
    CHECK(nll::log_sum_exp(d) == -1e300);
    d << std::numeric_limits<double>::max(), std::numeric_limits<double>::max(), 0.0;
    CHECK(nll::log_sum_exp(d) == std::numeric_limits<double>::max());
  }
  SECTION("a dominated tail keeps its relative precision") {
    Eigen::VectorXd d(2);
    d << 0.0, -700.0;
    CHECK(error_in_eps<double>(nll::log_sum_exp(d), std::exp(-700.0L)) <= 2);
    Eigen::VectorXf f(2);
    f << 0.0f, -100.0f; // the answer, 3.72e-44, is a float subnormal
    CHECK(error_in_eps<float>(nll::log_sum_exp(f), std::exp(-100.0L)) <= 1);
    f << 0.0f, -inf; // exactly 0, not exp(-inf) = 5.6e-309 from Eigen's clamped double exp
    CHECK(nll::log_sum_exp(f) == 0.0f);
    d << 0.0, -std::numeric_limits<double>::infinity();
    CHECK(nll::log_sum_exp(d) == 0.0);
  }
}

TEST_CASE("16-bit inputs are computed in float: the float result of the rounded inputs") {
  for (const LseRow& row : rows()) {
    if (!row.float_ok || row.x.size() > 40000) continue;
    INFO(row.name);
    const Vec<float> x = to_vector<float>(row.x);
    const Vec<Eigen::half> h = x.cast<Eigen::half>();
    const Vec<Eigen::bfloat16> b = x.cast<Eigen::bfloat16>();
    const float from_half = nll::log_sum_exp(h), from_bf16 = nll::log_sum_exp(b);
    // The same float computation; the sums may be grouped differently (the cast expression is
    // traversed in other packet sizes), hence up to 1 eps rather than the same bits.
    CHECK(consistency_error(from_half, nll::log_sum_exp(h.cast<float>().eval()), h.cast<float>()) <= 1);
    CHECK(consistency_error(from_bf16, nll::log_sum_exp(b.cast<float>().eval()), b.cast<float>()) <= 1);
    const Eigen::VectorXf half_rows = nll::log_sum_exp_rows(RowMajor<Eigen::half>(h.transpose()));
    CHECK(same_value(half_rows[0], from_half));
  }
}

TEST_CASE("storage order and expressions: column-major, transpose, 2*x, blocks give the row-major result") {
  for (const LseRow& row : rows()) {
    if (!row.float_ok || row.x.size() > 1000) continue;
    INFO(row.name);
    const Eigen::Index n = static_cast<Eigen::Index>(row.x.size());
    const Vec<float> x = to_vector<float>(row.x);
    RowMajor<float> rm(3, n);
    rm.row(0) = x.transpose();
    rm.row(1) = x.reverse().transpose();
    rm.row(2) = x.transpose();
    const ColMajor<float> cm = rm;
    const ColMajor<float> cm_t = rm.transpose(); // n × 3, its transpose is rm again
    const RowMajor<float> halves = rm / 2;       // exact: no input is subnormal
    ColMajor<float> big = ColMajor<float>::Constant(7, n + 5, 123.0f);
    big.block(2, 3, 3, n) = rm;
    const Eigen::VectorXf reference = nll::log_sum_exp_rows(rm);
    const auto close = [&](const Eigen::VectorXf& other) {
      for (Eigen::Index i = 0; i < 3; ++i) {
        INFO("row " << i << ": " << other[i] << " vs " << reference[i]);
        CHECK(consistency_error(other[i], reference[i], x) <= 1);
      }
    };
    close(nll::log_sum_exp_rows(cm));
    close(nll::log_sum_exp_rows(cm_t.transpose()));
    close(nll::log_sum_exp_rows(2 * halves));
    close(nll::log_sum_exp_rows(big.block(2, 3, 3, n)));
    close(nll::log_sum_exp_rows(rm.array())); // an array expression
    CHECK(consistency_error(nll::log_sum_exp(cm.row(1)), reference[1], x) <= 1);
    CHECK(consistency_error(nll::log_sum_exp(x.transpose()), reference[0], x) <= 1);
  }
  // A whole matrix: the log-sum-exp of every coefficient, in any storage order.
  RowMajor<double> m(3, 4);
  m << 1, 2, 3, 4, -5, -6, -7, 8, 0.5, 0.25, 0.125, -1;
  const ColMajor<double> c = m;
  CHECK(error_in_eps<double>(nll::log_sum_exp(m), nll::log_sum_exp(c)) <= 1);
  CHECK(error_in_eps<double>(nll::log_sum_exp(m), nll::log_sum_exp(m.reshaped<Eigen::RowMajor>().eval())) <= 1);
}

namespace {

/// A state built from x by adding values one at a time.
template <class T> nll::LogSumExpState<double> one_by_one(const Vec<T>& x) {
  nll::LogSumExpState<double> s;
  for (Eigen::Index j = 0; j < x.size(); ++j) s.add(x[j]);
  return s;
}

/// A state built from x in chunks of `chunk` values.
template <class T> nll::LogSumExpState<double> chunked(const Vec<T>& x, Eigen::Index chunk) {
  nll::LogSumExpState<double> s;
  for (Eigen::Index start = 0; start < x.size(); start += chunk)
    s.add(x.segment(start, std::min(chunk, x.size() - start)));
  return s;
}

/// States of `shards` contiguous shards, merged in the given order, or pairwise as a tree.
template <class T> nll::LogSumExpState<double> sharded(const Vec<T>& x, Eigen::Index shards, int order) {
  std::vector<nll::LogSumExpState<double>> parts;
  const Eigen::Index size = (x.size() + shards - 1) / shards;
  for (Eigen::Index start = 0; start < x.size(); start += size) {
    nll::LogSumExpState<double> s;
    s.add(x.segment(start, std::min(size, x.size() - start)));
    parts.push_back(s);
  }
  if (order == 1) std::reverse(parts.begin(), parts.end());
  if (order == 2) {
    while (parts.size() > 1) {
      std::vector<nll::LogSumExpState<double>> next;
      for (std::size_t i = 0; i + 1 < parts.size(); i += 2)
        next.push_back(nll::LogSumExpState<double>(parts[i]).merge(parts[i + 1]));
      if (parts.size() % 2 == 1) next.push_back(parts.back());
      parts = next;
    }
  }
  nll::LogSumExpState<double> total;
  for (const auto& p : parts) total.merge(p);
  return total;
}

} // namespace

// Adding values one at a time is a sequential sum: its rounding error grows with the length (18.4 eps
// measured on the 131072-element rows in double); blocks are summed with Eigen's vector
// accumulators and chunk sums in double, within 1.1 eps of mpmath.
TEST_CASE("LogSumExpState: one pass == chunks == merged shards in any order == log_sum_exp") {
  Worst worst_d, worst_d_single, worst_f;
  for (const LseRow& row : rows()) {
    INFO(row.name);
    const Vec<double> x = to_vector<double>(row.x);
    const double whole = nll::log_sum_exp(x);
    std::vector<std::pair<std::string, nll::LogSumExpState<double>>> states;
    states.emplace_back("one by one", one_by_one(x));
    for (Eigen::Index chunk : {1, 3, 64, 1000, 4096, 5000})
      states.emplace_back("chunks of " + std::to_string(chunk), chunked(x, chunk));
    for (int order : {0, 1, 2})
      for (Eigen::Index shards : {2, 7, 64})
        states.emplace_back("shards " + std::to_string(shards) + " order " + std::to_string(order),
                            sharded(x, shards, order));
    for (const auto& [how, s] : states) {
      INFO(how);
      const bool single = how == "one by one" || how == "chunks of 1" || how == "chunks of 3";
      CHECK(error_in_eps<double>(s.value(), whole) <= (single ? 32 : 3));
      (single ? worst_d_single : worst_d).update(error_in_eps<double>(s.value(), row.expected), row.name + ", " + how);
    }
    if (row.float_ok) {
      const Vec<float> xf = to_vector<float>(row.x);
      for (const auto& s : {one_by_one(xf), chunked(xf, 777), sharded(xf, 7, 2)})
        worst_f.update(error_in_eps<float>(static_cast<float>(s.value()), row.expected), row.name);
    }
  }
  std::cout << worst_d.report("LogSumExpState<double>, double inputs, blocks of >= 64 and shards in any order") << "\n"
            << worst_d_single.report("LogSumExpState<double>, double inputs, values added one by one or in 3s") << "\n"
            << worst_f.report("LogSumExpState<double>, float inputs, rounded to float") << "\n";
  CHECK(worst_d.error <= 2.0L);
  CHECK(worst_d_single.error <= 32.0L);
  CHECK(worst_f.error <= 2.0L);
}

TEST_CASE("LogSumExpState: empty state, from_parts / from_excess round trips, −inf / +inf / NaN") {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  nll::LogSumExpState<double> empty;
  CHECK(empty.empty());
  CHECK(empty.value() == -inf);
  CHECK(empty.max() == -inf);
  CHECK(empty.scaled_sum() == 0);
  CHECK(nll::LogSumExpState<double>(empty).merge(empty).empty());
  CHECK(nll::LogSumExpState<double>().add(-inf).empty());
  CHECK(
      nll::LogSumExpState<double>().add(Eigen::VectorXf::Constant(5, -std::numeric_limits<float>::infinity())).empty());
  CHECK(nll::LogSumExpState<double>().add(Eigen::VectorXd()).empty());
  CHECK(nll::LogSumExpState<double>::from_parts(-inf, 0).empty());
  CHECK(nll::LogSumExpState<double>::from_parts(3.0, 0).empty());

  nll::LogSumExpState<double> s;
  s.add(Eigen::VectorXd::LinSpaced(100, -3.0, 5.0));
  s.add(2.5f);
  const auto copy = nll::LogSumExpState<double>::from_parts(s.max(), s.scaled_sum());
  CHECK(error_in_eps<double>(copy.value(), s.value()) <= 1);
  const auto exact = nll::LogSumExpState<double>::from_excess(s.max(), s.excess());
  CHECK(exact.value() == s.value());
  CHECK(exact.max() == s.max());
  CHECK(exact.scaled_sum() == s.scaled_sum());
  // Merging an empty state either way changes nothing.
  CHECK(nll::LogSumExpState<double>(s).merge(empty).value() == s.value());
  CHECK(nll::LogSumExpState<double>(empty).merge(s).value() == s.value());
  // A dominated tail: from_excess keeps it, value() keeps it.
  nll::LogSumExpState<double> tail;
  tail.add(0.0).add(-40.0);
  CHECK(error_in_eps<double>(tail.value(), std::log1p(std::exp(-40.0L))) <= 2);
  CHECK(error_in_eps<double>(nll::LogSumExpState<double>::from_excess(tail.max(), tail.excess()).value(),
                             std::log1p(std::exp(-40.0L))) <= 2);

  // +inf wins over finite values, NaN wins over everything, in add and in merge, in any order.
  nll::LogSumExpState<double> pos;
  pos.add(1.0).add(inf).add(2.0);
  CHECK(pos.value() == inf);
  CHECK(nll::LogSumExpState<double>(s).merge(pos).value() == inf);
  CHECK(nll::LogSumExpState<double>(pos).merge(s).value() == inf);
  nll::LogSumExpState<double> bad;
  bad.add(1.0).add(nan);
  CHECK(std::isnan(bad.value()));
  CHECK(std::isnan(nll::LogSumExpState<double>(bad).add(inf).value()));
  CHECK(std::isnan(nll::LogSumExpState<double>(pos).add(nan).value()));
  CHECK(std::isnan(nll::LogSumExpState<double>(pos).merge(bad).value()));
  CHECK(std::isnan(nll::LogSumExpState<double>(bad).merge(pos).value()));
  CHECK(std::isnan(nll::LogSumExpState<double>(empty).merge(bad).value()));
  CHECK(std::isnan(nll::LogSumExpState<double>(bad).merge(empty).value()));
  Eigen::VectorXf block = Eigen::VectorXf::Zero(10);
  block[7] = std::numeric_limits<float>::quiet_NaN();
  CHECK(std::isnan(nll::LogSumExpState<double>().add(block).value()));
  block[7] = std::numeric_limits<float>::infinity();
  CHECK(nll::LogSumExpState<double>().add(block).value() == inf);
  CHECK(std::isnan(nll::LogSumExpState<double>::from_parts(nan, 1).value()));
  CHECK(std::isnan(nll::LogSumExpState<double>::from_parts(0, nan).value()));
  CHECK(nll::LogSumExpState<double>::from_parts(inf, 1).value() == inf);
  // Other state types.
  nll::LogSumExpState<float> sf;
  sf.add(Eigen::VectorXf::Constant(4, 1.0f));
  CHECK(error_in_eps<float>(sf.value(), 1.0L + std::log(4.0L)) <= 1);
  nll::LogSumExpState<long double> sl;
  sl.add(Eigen::Matrix<long double, Eigen::Dynamic, 1>::Constant(4, 1.0L));
  CHECK(error_in_eps<long double>(sl.value(), 1.0L + std::log(4.0L)) <= 2);
}

TEST_CASE("gradient: d log_sum_exp / dx = softmax(x) (finite differences in long double)") {
  for (const std::vector<long double>& x0 : {std::vector<long double>{0.5L, -1.25L, 3.0L, 2.0L},
                                             std::vector<long double>{-4.0L, 4.0L, 0.0L, 1.0L, -2.5L, 3.75L, 0.125L},
                                             std::vector<long double>{100.0L, 101.0L, 99.5L}}) {
    const auto f = [](const std::vector<long double>& v) {
      return nll::log_sum_exp(Eigen::Map<const Vec<long double>>(v.data(), static_cast<Eigen::Index>(v.size())));
    };
    const Vec<long double> p =
        nll::softmax(Eigen::Map<const Vec<long double>>(x0.data(), static_cast<Eigen::Index>(x0.size())));
    for (std::size_t j = 0; j < x0.size(); ++j) {
      INFO("j = " << j);
      // h = 1e-3 absolute (the default step is relative to |x_j|, too coarse at x = 100).
      const long double step = 1e-3L / std::max(1.0L, std::fabs(x0[j]));
      CHECK(nll_test::relative_difference(nll_test::central_difference(f, x0, j, step),
                                          p[static_cast<Eigen::Index>(j)]) < 1e-11L);
    }
  }
}
