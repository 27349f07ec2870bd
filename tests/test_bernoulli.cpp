// Tests of the Bernoulli family (include/nll/dist/bernoulli.hpp):
//   * mpmath references (scripts/gen_reference_bernoulli.py) for binary_cross_entropy_with_logits and
//     binary_cross_entropy in float and double, every label on both sides of every cut-off, the tails
//     ±1e4 (float) and ±1e300 (double), ±inf, soft labels and pos_weight; errors in units of eps;
//   * PyTorch parity (scripts/gen_torch_reference_bernoulli.py, torch 1.13) for value and gradient
//     with weight, pos_weight and every reduction;
//   * finite-difference gradients (long double through the library);
//   * the fused block kernel against the per-example path (layouts, types, weights, masks, aliasing);
//   * the error messages, and that nothing is written to the gradient when a check fails.
#include <nll/dist/bernoulli.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/gradcheck.hpp"
#include "support/reference.hpp"

namespace {

using Eigen::Index;
using nll::Reduction;

template <class T> using Vec = Eigen::Array<T, Eigen::Dynamic, 1>;
template <class T> using Mat = Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic>;

/// The message of the exception of type E that fn throws, or a marker when it throws nothing (or
/// something else).
template <class E, class Fn> std::string message_of(Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  } catch (...) {
    return "<another exception>";
  }
  return "<no exception>";
}

long double sigmoid_ld(long double x) { return 1.0L / (1.0L + std::exp(-x)); }

/// |actual − expected| in units of eps·max(|scale|, smallest normal) of T; 0 for equal values
/// (infinities, NaN against NaN), inf for a NaN/inf mismatch.
template <class T> long double scaled_error(long double actual, long double expected, long double scale) {
  if (std::isnan(actual) || std::isnan(expected) || std::isinf(actual) || std::isinf(expected))
    return nll_test::error_in_eps<T>(actual, expected);
  const long double floor = std::numeric_limits<T>::min();
  return std::fabs(actual - expected) /
         (std::max({std::fabs(scale), std::fabs(expected), floor}) * std::numeric_limits<T>::epsilon());
}

// ---------------------------------------------------------------------------------------------
// mpmath references
// ---------------------------------------------------------------------------------------------

struct Worst {
  long double loss = 0;
  long double grad = 0;
  std::string loss_at;
  std::string grad_at;
  void loss_error(long double e, const std::string& where) {
    if (e > loss || std::isnan(e)) loss = e, loss_at = where;
  }
  void grad_error(long double e, const std::string& where) {
    if (e > grad || std::isnan(e)) grad = e, grad_at = where;
  }
};

/// Runs the logits table through the fused path (one column vector per pos_weight, so the
/// vectorised kernel sees hundreds of elements) and the per-example path.
template <class T> void check_logits_table(const char* file, long double loss_budget, long double grad_budget) {
  const auto records = nll_test::read_table(file);
  std::map<long double, std::vector<const nll_test::Record*>> by_pos_weight;
  for (const auto& r : records) by_pos_weight[r.number(2)].push_back(&r);
  Worst fused, per_example, generic;
  std::size_t count = 0;
  for (const auto& [p, rows] : by_pos_weight) {
    const Index n = static_cast<Index>(rows.size());
    Vec<T> x(n), y(n), g(n), g_ref(n);
    for (Index i = 0; i < n; ++i) {
      x[i] = static_cast<T>(rows[i]->number(0));
      y[i] = static_cast<T>(rows[i]->number(1));
    }
    const Vec<T> pos_weight = Vec<T>::Constant(1, static_cast<T>(p));
    const nll::BinaryCrossEntropyOptions none{.reduction = Reduction::none, .pos_weight = pos_weight};
    const nll::BinaryCrossEntropyOptions sum{.reduction = Reduction::sum, .pos_weight = pos_weight};
    const nll::Loss value = nll::binary_cross_entropy_with_logits(x, y, none);
    const nll::Loss with_grad = nll::binary_cross_entropy_with_logits(x, y, g, sum);
    const nll::Bernoulli family{{pos_weight}};
    const nll::Loss value_ref = nll::nll_per_example(family, x, y, nll::driver_options(none));
    nll::nll_per_example(family, x, y, g_ref, nll::driver_options(sum));
    (void)with_grad;
    // The portable Eigen-packet kernel too (the fused path above may use an instruction-set
    // specific one, e.g. AVX-512).
    Vec<T> g_generic(n), l_generic(n);
    for (Index o = 0; o < n; o += 256) {
      const Index m = std::min<Index>(256, n - o);
      nll::detail::bce_run<nll::detail::BceLogitsKernel, true, T, true>(
          x.data() + o, y.data() + o, g_generic.data() + o, m, static_cast<T>(p), T(1), nullptr, l_generic.data() + o);
    }
    for (Index i = 0; i < n; ++i) {
      const auto& r = *rows[i];
      const std::string where = "x=" + r.text(0) + " y=" + r.text(1) + " p=" + r.text(2);
      const long double loss = r.number(3), grad = r.number(4), scale = r.number(5);
      // The per-example loss is computed in T and returned as double: compare it as a T.
      fused.loss_error(nll_test::error_in_eps<T>(static_cast<T>(value.per_example[i]), loss), where);
      per_example.loss_error(nll_test::error_in_eps<T>(static_cast<T>(value_ref.per_example[i]), loss), where);
      fused.grad_error(scaled_error<T>(g[i], grad, scale), where);
      per_example.grad_error(scaled_error<T>(g_ref[i], grad, scale), where);
      generic.loss_error(nll_test::error_in_eps<T>(l_generic[i], loss), where);
      generic.grad_error(scaled_error<T>(g_generic[i], grad, scale), where);
      ++count;
    }
  }
  std::printf("%s: %zu records; worst loss error %.2Lf eps (fused, at %s), %.2Lf eps (per-example, at %s); "
              "worst gradient error %.2Lf eps (fused, at %s), %.2Lf eps (per-example, at %s)\n",
              file, count, fused.loss, fused.loss_at.c_str(), per_example.loss, per_example.loss_at.c_str(), fused.grad,
              fused.grad_at.c_str(), per_example.grad, per_example.grad_at.c_str());
  std::printf(
      "%s: portable packet kernel: worst loss error %.2Lf eps (at %s), worst gradient error %.2Lf eps (at %s)\n", file,
      generic.loss, generic.loss_at.c_str(), generic.grad, generic.grad_at.c_str());
  CHECK(count == records.size());
  CHECK(generic.loss <= loss_budget);
  CHECK(generic.grad <= grad_budget);
  INFO(file << " loss: fused worst at " << fused.loss_at << ", per-example worst at " << per_example.loss_at);
  CHECK(fused.loss <= loss_budget);
  CHECK(per_example.loss <= loss_budget);
  INFO(file << " grad: fused worst at " << fused.grad_at << ", per-example worst at " << per_example.grad_at);
  CHECK(fused.grad <= grad_budget);
  CHECK(per_example.grad <= grad_budget);
}

template <class T> void check_probs_table(const char* file, long double loss_budget, long double grad_budget) {
  const auto records = nll_test::read_table(file);
  const Index n = static_cast<Index>(records.size());
  Vec<T> q(n), y(n), g(n), g_ref(n);
  for (Index i = 0; i < n; ++i) {
    q[i] = static_cast<T>(records[i].number(0));
    y[i] = static_cast<T>(records[i].number(1));
  }
  const nll::BinaryCrossEntropyOptions none{.reduction = Reduction::none};
  const nll::BinaryCrossEntropyOptions sum{.reduction = Reduction::sum};
  const nll::Loss value = nll::binary_cross_entropy(q, y, none);
  nll::binary_cross_entropy(q, y, g, sum);
  const nll::Loss value_ref = nll::nll_per_example(nll::BernoulliProbs{}, q, y, nll::driver_options(none));
  nll::nll_per_example(nll::BernoulliProbs{}, q, y, g_ref, nll::driver_options(sum));
  Worst fused, per_example;
  for (Index i = 0; i < n; ++i) {
    const auto& r = records[i];
    const std::string where = "q=" + r.text(0) + " y=" + r.text(1);
    fused.loss_error(nll_test::error_in_eps<T>(static_cast<T>(value.per_example[i]), r.number(2)), where);
    per_example.loss_error(nll_test::error_in_eps<T>(static_cast<T>(value_ref.per_example[i]), r.number(2)), where);
    fused.grad_error(nll_test::error_in_eps<T>(g[i], r.number(3)), where);
    per_example.grad_error(nll_test::error_in_eps<T>(g_ref[i], r.number(3)), where);
  }
  std::printf("%s: %td records; worst loss error %.2Lf eps (fused, at %s), %.2Lf eps (per-example, at %s); "
              "worst gradient error %.2Lf eps (fused, at %s), %.2Lf eps (per-example, at %s)\n",
              file, n, fused.loss, fused.loss_at.c_str(), per_example.loss, per_example.loss_at.c_str(), fused.grad,
              fused.grad_at.c_str(), per_example.grad, per_example.grad_at.c_str());
  INFO(file << " loss: fused worst at " << fused.loss_at << ", per-example worst at " << per_example.loss_at);
  CHECK(fused.loss <= loss_budget);
  CHECK(per_example.loss <= loss_budget);
  INFO(file << " grad: fused worst at " << fused.grad_at << ", per-example worst at " << per_example.grad_at);
  CHECK(fused.grad <= grad_budget);
  CHECK(per_example.grad <= grad_budget);
}

} // namespace

TEST_CASE("binary_cross_entropy_with_logits matches mpmath in float, tails and cut-offs included") {
  check_logits_table<float>("bernoulli_logits_float.txt", 4, 4);
}

TEST_CASE("binary_cross_entropy_with_logits matches mpmath in double, tails and cut-offs included") {
  check_logits_table<double>("bernoulli_logits_double.txt", 4, 4);
}

TEST_CASE("binary_cross_entropy matches mpmath (PyTorch's clamp and backward) in float") {
  check_probs_table<float>("bernoulli_probs_float.txt", 4, 4);
}

TEST_CASE("binary_cross_entropy matches mpmath (PyTorch's clamp and backward) in double") {
  check_probs_table<double>("bernoulli_probs_double.txt", 4, 4);
}

TEST_CASE("label 1 beyond the ±20 cut-off keeps the sign of its gradient (Stan Math's bug)") {
  // ℓ(x, 1) = log1p(e^-x), ∂ℓ/∂x = −σ(−x): tiny but negative for every large logit.
  for (const double x : {19.0, 20.0, 20.5, 21.0, 30.0, 40.0, 100.0, 700.0}) {
    Vec<double> logits = Vec<double>::Constant(1, x), labels = Vec<double>::Constant(1, 1.0), g(1);
    const nll::Loss r = nll::binary_cross_entropy_with_logits(logits, labels, g, {.reduction = Reduction::sum});
    const long double expected = std::exp(-static_cast<long double>(x)); // log1p(e^-x) = e^-x to 1e-300 here
    INFO("x = " << x);
    CHECK(g[0] < 0);
    CHECK(nll_test::relative_difference(-g[0], sigmoid_ld(-x)) < 1e-14L);
    CHECK(nll_test::relative_difference(r.value, std::log1p(expected)) < 1e-14L);
  }
}

TEST_CASE("NaN logits give NaN; a weight of 0 removes them exactly; ±inf logits give the limits") {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  Vec<double> x(4), y(4), g(4);
  x << nan, inf, -inf, inf;
  y << 0.5, 1, 0, 0.25;
  const nll::Loss r = nll::binary_cross_entropy_with_logits(x, y, g, {.reduction = Reduction::none});
  CHECK(std::isnan(r.per_example[0]));
  CHECK(std::isnan(g[0]));
  CHECK(r.per_example[1] == 0); // label 1 at +inf: loss 0 (PyTorch: NaN)
  CHECK(g[1] == 0);
  CHECK(r.per_example[2] == 0); // label 0 at −inf
  CHECK(g[2] == 0);
  CHECK(r.per_example[3] == inf);
  CHECK(g[3] == 0.75);
  const std::vector<double> w = {0, 1, 1, 0};
  const nll::Loss rw = nll::binary_cross_entropy_with_logits(x, y, g, {.reduction = Reduction::sum, .weight = w});
  CHECK(rw.value == 0);
  CHECK(g[0] == 0);
  CHECK(g[3] == 0);
  // The same through the vectorised kernels (long arrays), every label, float and double.
  const auto long_arrays = [](auto zero) {
    using T = decltype(zero);
    const Index n = 200;
    Vec<T> xl(n), yl(n), gl(n);
    for (Index i = 0; i < n; ++i) {
      xl[i] = static_cast<T>((i % 7) - 3) * T(7.5);
      yl[i] = i % 3 == 0 ? T(0) : i % 3 == 1 ? T(1) : T(0.25);
    }
    for (const Index i : {0, 17, 18, 19, 100, 131, 199}) xl[i] = std::numeric_limits<T>::quiet_NaN();
    xl[49] = std::numeric_limits<T>::infinity();  // label 1
    xl[50] = -std::numeric_limits<T>::infinity(); // label 0.25
    xl[51] = -std::numeric_limits<T>::infinity(); // label 0
    const nll::Loss rl = nll::binary_cross_entropy_with_logits(xl, yl, gl, {.reduction = Reduction::none});
    for (Index i = 0; i < n; ++i) {
      INFO("element " << i);
      CHECK(std::isnan(rl.per_example[i]) == std::isnan(xl[i]));
      CHECK(std::isnan(gl[i]) == std::isnan(xl[i]));
    }
    CHECK(rl.per_example[49] == 0); // label 1 at +inf: the limit 0 (PyTorch: NaN)
    CHECK(gl[49] == 0);
    CHECK(rl.per_example[50] == std::numeric_limits<double>::infinity()); // soft label at −inf
    CHECK(gl[50] == T(-0.25));
    CHECK(rl.per_example[51] == 0); // label 0 at −inf
    CHECK(gl[51] == 0);
  };
  long_arrays(0.0f);
  long_arrays(0.0);
  // Probability form: NaN propagates, 0 and 1 are finite through the clamp.
  Vec<double> q(3), yq(3), gq(3);
  q << nan, 0, 1;
  yq << 1, 1, 1;
  const nll::Loss rq = nll::binary_cross_entropy(q, yq, gq, {.reduction = Reduction::none});
  CHECK(std::isnan(rq.per_example[0]));
  CHECK(std::isnan(gq[0]));
  CHECK(rq.per_example[1] == 100);
  CHECK(gq[1] == -1e12);
  CHECK(rq.per_example[2] == 0);
  CHECK(gq[2] == 0);
}

// ---------------------------------------------------------------------------------------------
// PyTorch parity
// ---------------------------------------------------------------------------------------------

namespace {

struct TorchCase {
  std::string name, form, dtype, reduction;
  Index rows = 0, cols = 0;
  bool has_weight = false, has_pos_weight = false;
  double value = 0;
  Mat<double> x, y, w, up, grad, loss_none;
  Vec<double> pos_weight;
};

std::vector<TorchCase> read_torch_cases() {
  std::vector<TorchCase> cases;
  TorchCase c;
  for (const auto& r : nll_test::read_table("bernoulli_torch.txt")) {
    const std::string& tag = r.text(0);
    if (tag == "case") {
      c = TorchCase{};
      c.name = r.text(1), c.form = r.text(2), c.dtype = r.text(3), c.reduction = r.text(4);
      c.rows = std::stol(r.text(5)), c.cols = std::stol(r.text(6));
      c.has_weight = r.text(7) == "1", c.has_pos_weight = r.text(8) == "1";
      c.value = static_cast<double>(r.number(9));
      for (Mat<double>* m : {&c.x, &c.y, &c.w, &c.up, &c.grad, &c.loss_none}) m->setZero(c.rows, c.cols);
      c.pos_weight.setOnes(c.cols);
    } else if (tag == "elem") {
      const Index i = std::stol(r.text(1)), j = std::stol(r.text(2));
      c.x(i, j) = static_cast<double>(r.number(3));
      c.y(i, j) = static_cast<double>(r.number(4));
      c.w(i, j) = static_cast<double>(r.number(5));
      c.up(i, j) = static_cast<double>(r.number(6));
      c.grad(i, j) = static_cast<double>(r.number(7));
      c.loss_none(i, j) = static_cast<double>(r.number(8));
    } else if (tag == "posw") {
      c.pos_weight[std::stol(r.text(1))] = static_cast<double>(r.number(2));
    } else if (tag == "end") {
      cases.push_back(c);
    }
  }
  return cases;
}

template <class T> void check_torch_case(const TorchCase& c, double rtol) {
  const Mat<T> x = c.x.cast<T>(), y = c.y.cast<T>();
  const Vec<T> w = Eigen::Map<const Vec<double>>(c.w.data(), c.w.size()).cast<T>();
  const Vec<T> up = Eigen::Map<const Vec<double>>(c.up.data(), c.up.size()).cast<T>();
  const Vec<T> pw = c.pos_weight.cast<T>();
  nll::BinaryCrossEntropyOptions o;
  o.reduction = c.reduction == "mean" ? Reduction::mean : c.reduction == "sum" ? Reduction::sum : Reduction::none;
  if (c.has_weight) o.weight = w;
  if (c.has_pos_weight) o.pos_weight = pw;
  if (o.reduction == Reduction::none) o.upstream = up;
  // PyTorch's weighted mean divides by the element count: so does the Bernoulli family's default
  // (WeightedMean::count), with no option beyond PyTorch's own.
  Mat<T> g(c.rows, c.cols);
  const nll::Loss r =
      c.form == "logits" ? nll::binary_cross_entropy_with_logits(x, y, g, o) : nll::binary_cross_entropy(x, y, g, o);
  INFO(c.name << " " << c.dtype << " " << c.reduction);
  CHECK(nll_test::relative_difference(r.value, c.value) <= rtol);
  const double gmax = c.grad.abs().maxCoeff();
  double worst = 0;
  for (Index j = 0; j < c.cols; ++j) {
    for (Index i = 0; i < c.rows; ++i) {
      // PyTorch computes σ(x) − y directly: near σ(x) ≈ y its error is absolute, eps·max|grad|.
      const double err = std::fabs(static_cast<double>(g(i, j)) - c.grad(i, j)) / (std::fabs(c.grad(i, j)) + gmax);
      worst = std::max(worst, err);
    }
  }
  CHECK(worst <= rtol);
  if (o.reduction == Reduction::none) {
    // PyTorch's per-element loss (1 - y)·x + max(-x, 0) + log(...) cancels terms of size |x| when
    // the loss is small: its error is relative to w·(1 + p)·(|x| + 1), not to the loss.
    double worst_loss = 0;
    for (Index j = 0; j < c.cols; ++j) {
      for (Index i = 0; i < c.rows; ++i) {
        const double expected = c.loss_none(i, j);
        const double term = c.form == "logits" ? c.w(i, j) * (1 + c.pos_weight[j]) * (std::fabs(c.x(i, j)) + 1) : 0.0;
        const double err = std::fabs(r.per_example[i + j * c.rows] - expected) / (std::fabs(expected) + term + 1e-300);
        worst_loss = std::max(worst_loss, err);
      }
    }
    CHECK(worst_loss <= rtol);
  }
}

} // namespace

TEST_CASE("value and gradient equal PyTorch's (weight, pos_weight, every reduction, float and double)") {
  const auto cases = read_torch_cases();
  CHECK(cases.size() == 48);
  for (const auto& c : cases) {
    if (c.dtype == "f32") {
      check_torch_case<float>(c, 2e-6);
    } else {
      check_torch_case<double>(c, 1e-13);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Finite differences (long double through the library)
// ---------------------------------------------------------------------------------------------

namespace {

using LVec = Vec<long double>;
using LMat = Mat<long double>;

/// Compares the library's gradient of the reduced loss with an 8th-order central difference of the
/// library's value, for every element; returns the worst relative difference.
template <class Loss> long double worst_gradcheck(Loss&& loss_fn, const LMat& x0, const LMat& grad) {
  long double worst = 0;
  for (Index j = 0; j < x0.size(); ++j) {
    std::vector<long double> v(x0.data(), x0.data() + x0.size());
    const auto f = [&](const std::vector<long double>& p) {
      LMat x = Eigen::Map<const LMat>(p.data(), x0.rows(), x0.cols());
      return static_cast<long double>(loss_fn(x));
    };
    const long double fd = nll_test::central_difference(f, v, static_cast<std::size_t>(j), 1e-4L);
    worst = std::max(worst, nll_test::relative_difference(grad(j), fd, 1e-30L));
  }
  return worst;
}

} // namespace

TEST_CASE("gradients equal finite differences: logits form, every option, tails one element at a time") {
  std::mt19937 rng(7);
  std::normal_distribution<double> normal(0, 3);
  std::uniform_real_distribution<double> unit(0, 1);
  const Index rows = 7, cols = 3;
  LMat x(rows, cols), y(rows, cols);
  for (Index i = 0; i < x.size(); ++i) {
    x(i) = normal(rng);
    y(i) = i % 3 == 0 ? 1.0L : i % 3 == 1 ? 0.0L : unit(rng);
  }
  const Vec<double> pos_weight = (Vec<double>(cols) << 0.5, 2.0, 0.0).finished();
  const std::vector<double> weight = [&] {
    std::vector<double> w(static_cast<std::size_t>(x.size()));
    for (auto& v : w) v = 2 * unit(rng);
    w[4] = 0;
    return w;
  }();
  const std::vector<std::uint8_t> mask = [&] {
    std::vector<std::uint8_t> m(static_cast<std::size_t>(x.size()), 1);
    m[2] = m[11] = 0;
    return m;
  }();
  std::vector<double> upstream(static_cast<std::size_t>(x.size()));
  for (auto& v : upstream) v = normal(rng);

  std::vector<nll::BinaryCrossEntropyOptions> all = {
      {.reduction = Reduction::mean},
      {.reduction = Reduction::sum, .pos_weight = pos_weight},
      {.reduction = Reduction::mean, .weight = weight, .mask = mask, .pos_weight = pos_weight},
      {.reduction = Reduction::mean, .weight = weight, .normalizer = 5.0},
      {.reduction = Reduction::mean, .weight = weight, .mask = mask, .weighted_mean = nll::WeightedMean::weight_sum},
      {.reduction = Reduction::none, .weight = weight, .upstream = upstream, .pos_weight = pos_weight},
  };
  for (std::size_t k = 0; k < all.size(); ++k) {
    const auto& o = all[k];
    LMat g(rows, cols);
    nll::binary_cross_entropy_with_logits(x, y, g, o);
    const auto loss = [&](const LMat& p) {
      const nll::Loss r = nll::binary_cross_entropy_with_logits(p, y, o);
      if (o.reduction != Reduction::none) return static_cast<long double>(r.value);
      long double s = 0;
      for (Index i = 0; i < r.per_example.size(); ++i) s += upstream[static_cast<std::size_t>(i)] * r.per_example[i];
      return s;
    };
    const long double worst = worst_gradcheck(loss, x, g);
    INFO("options set " << k);
    CHECK(worst < 1e-9L);
  }

  // The tails, one element at a time, so a gradient of 1e-40 is not lost in a sum of others.
  long double worst_tail = 0;
  for (const long double xv :
       {-700.0L, -100.0L, -40.0L, -30.0L, -20.5L, -19.5L, -1e-3L, 1e-3L, 19.5L, 20.5L, 30.0L, 40.0L, 100.0L, 700.0L}) {
    for (const long double yv : {0.0L, 1.0L, 0.25L, 0.999L}) {
      for (const long double pv : {1.0L, 3.0L}) {
        const LMat x1 = LMat::Constant(1, 1, xv), y1 = LMat::Constant(1, 1, yv);
        const Vec<double> p1 = Vec<double>::Constant(1, static_cast<double>(pv));
        const nll::BinaryCrossEntropyOptions o{.reduction = Reduction::sum, .pos_weight = p1};
        LMat g(1, 1);
        nll::binary_cross_entropy_with_logits(x1, y1, g, o);
        const auto loss = [&](const LMat& p) {
          // Per-example loss in long double (the driver's value is a double: fine for the sums
          // above, not for a loss of e^-700).
          long double d = 0;
          return nll::detail::BceLogitsKernel::scalar<false>(p(0), yv, pv, d);
        };
        const long double e = worst_gradcheck(loss, x1, g);
        INFO("x = " << static_cast<double>(xv) << " y = " << static_cast<double>(yv)
                    << " p = " << static_cast<double>(pv));
        CHECK(e < 1e-9L);
        worst_tail = std::max(worst_tail, e);
      }
    }
  }
  std::printf("finite differences, logits tails: worst relative difference %.3Le\n", worst_tail);
}

TEST_CASE("gradients equal finite differences: probability form inside the clamp") {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> unit(0.01, 0.99);
  const Index n = 12;
  LVec q(n), y(n);
  for (Index i = 0; i < n; ++i) {
    q[i] = unit(rng);
    y[i] = i % 3 == 0 ? 1.0L : i % 3 == 1 ? 0.0L : unit(rng);
  }
  std::vector<double> weight(static_cast<std::size_t>(n));
  for (auto& v : weight) v = unit(rng);
  for (const auto& o : {nll::BinaryCrossEntropyOptions{.reduction = Reduction::mean},
                        nll::BinaryCrossEntropyOptions{.reduction = Reduction::sum, .weight = weight}}) {
    LMat g(n, 1);
    const LMat qm = q;
    const LMat ym = y;
    nll::binary_cross_entropy(qm, ym, g, o);
    const auto loss = [&](const LMat& p) {
      return static_cast<long double>(nll::binary_cross_entropy(p, ym, o).value);
    };
    CHECK(worst_gradcheck(loss, qm, g) < 1e-9L);
  }
}

// ---------------------------------------------------------------------------------------------
// Fused block kernel against the per-example path
// ---------------------------------------------------------------------------------------------

namespace {

template <class T> Vec<T> random_logits(Index n, std::mt19937& rng) {
  std::normal_distribution<double> normal(0, 6);
  Vec<T> x(n);
  const T big = std::is_same_v<T, float> ? T(1e4) : T(1e300);
  for (Index i = 0; i < n; ++i) {
    const Index k = i % 37;
    x[i] = k == 5 ? big : k == 6 ? -big : k == 7 ? T(25) : k == 8 ? T(-25) : static_cast<T>(normal(rng));
  }
  return x;
}

template <class T> Vec<T> random_labels(Index n, std::mt19937& rng) {
  std::uniform_real_distribution<double> unit(0, 1);
  Vec<T> y(n);
  for (Index i = 0; i < n; ++i) y[i] = i % 3 == 0 ? T(1) : i % 3 == 1 ? T(0) : static_cast<T>(unit(rng));
  return y;
}

/// Fused against per-example for one configuration: values to a relative 1e-6 (float; the fused
/// path keeps lane partial sums in float over at most 16 elements) or 1e-14 (double), gradients and
/// per-example losses element by element within `ulps` (relative to the size of the gradient's terms).
template <class T, class F, class X, class Y, class G>
void check_fused(const F& family, const X& x, const Y& y, G& g, G& g_ref, const nll::NllOptions& o, double ulps) {
  const nll::Loss fused = nll::nll(family, x, y, g, o);
  const nll::Loss ref = nll::nll_per_example(family, x, y, g_ref, o);
  const double value_tol = std::is_same_v<T, float> ? 1e-6 : 1e-14;
  if (std::isnan(ref.value)) {
    CHECK(std::isnan(fused.value));
  } else {
    CHECK(nll_test::relative_difference(fused.value, ref.value, 1e-300L) <= value_tol);
  }
  CHECK(fused.total_weight == ref.total_weight);
  const double eps = std::numeric_limits<T>::epsilon();
  double worst_g = 0, worst_l = 0;
  for (Index i = 0; i < g.size(); ++i) {
    const nll::detail::ElementIndex e = nll::detail::element_index(g, i);
    const double a = static_cast<double>(g.coeff(e.row, e.col)), b = static_cast<double>(g_ref.coeff(e.row, e.col));
    if (std::isnan(b)) {
      CHECK(std::isnan(a));
      continue;
    }
    // Soft labels: the logits gradient (1 − y)·σ(x) − p·y·σ(−x) is a difference of two terms; its
    // rounding error is relative to their sum t, not to the difference d: allow |b|·t/|d|.
    long double amplification = 1;
    if constexpr (std::is_same_v<F, nll::Bernoulli>) {
      const long double xv = static_cast<long double>(static_cast<double>(x.coeff(e.row, e.col)));
      const long double yv = static_cast<long double>(static_cast<double>(y.coeff(e.row, e.col)));
      const long double pv = family.pos_weight.empty() ? 1.0L : family.pos_weight[e.col];
      const long double sp = sigmoid_ld(xv), sn = sigmoid_ld(-xv);
      const long double t = (1 - yv) * sp + pv * yv * sn, d = std::fabs((1 - yv) * sp - pv * yv * sn);
      if (d > 0) amplification = std::max(1.0L, t / d);
    }
    const double scale = static_cast<double>(std::fabs(b) * amplification);
    worst_g = std::max(worst_g,
                       std::fabs(a - b) / (std::max(scale, static_cast<double>(std::numeric_limits<T>::min())) * eps));
  }
  if (o.reduction == Reduction::none) {
    for (Index i = 0; i < fused.per_example.size(); ++i) {
      const double a = fused.per_example[i], b = ref.per_example[i];
      if (std::isnan(b)) continue;
      worst_l = std::max(worst_l, static_cast<double>(nll_test::error_in_eps<T>(a, b)));
    }
  }
  CHECK(worst_g <= ulps);
  CHECK(worst_l <= ulps);
}

} // namespace

TEST_CASE("fused block kernel equals the per-example path: vectors, matrices, options, types, layouts") {
  std::mt19937 rng(3);
  const Index n = 5000 + 13; // several driver blocks, a ragged tail
  const std::vector<double> weight = [&] {
    std::uniform_real_distribution<double> unit(0, 2);
    std::vector<double> w(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = i % 11 == 0 ? 0.0 : unit(rng);
    return w;
  }();
  const std::vector<std::uint8_t> mask = [&] {
    std::vector<std::uint8_t> m(static_cast<std::size_t>(n), 1);
    for (std::size_t i = 0; i < m.size(); i += 13) m[i] = 0;
    return m;
  }();
  std::vector<double> upstream(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < upstream.size(); ++i) upstream[i] = std::sin(static_cast<double>(i));
  const std::vector<nll::NllOptions> options = {
      {.reduction = Reduction::mean},
      {.reduction = Reduction::sum, .weight = weight},
      {.reduction = Reduction::mean, .weight = weight, .mask = mask},
      {.reduction = Reduction::none},
      {.reduction = Reduction::none, .weight = weight, .upstream = upstream},
      {.reduction = Reduction::mean, .mask = mask, .normalizer = 100.0},
  };

  SECTION("float and double vectors, logits and probabilities") {
    const Vec<float> xf = random_logits<float>(n, rng), yf = random_labels<float>(n, rng);
    const Vec<double> xd = random_logits<double>(n, rng), yd = random_labels<double>(n, rng);
    const Vec<float> qf = (1 / (1 + (-xf / 8).exp())).eval();
    const Vec<double> qd = (1 / (1 + (-xd / 8).exp())).eval();
    Vec<float> gf(n), gf_ref(n);
    Vec<double> gd(n), gd_ref(n);
    for (const auto& o : options) {
      check_fused<float>(nll::Bernoulli{}, xf, yf, gf, gf_ref, o, 8);
      check_fused<double>(nll::Bernoulli{}, xd, yd, gd, gd_ref, o, 8);
      check_fused<float>(nll::BernoulliProbs{}, qf, yf, gf, gf_ref, o, 8);
      check_fused<double>(nll::BernoulliProbs{}, qd, yd, gd, gd_ref, o, 8);
    }
  }
  SECTION("multi-label matrices with pos_weight: column-major, row-major, strided, expressions") {
    const Index rows = 641, cols = 7; // n = 4487: columns straddle the driver's blocks
    const Vec<float> flat_x = random_logits<float>(rows * cols, rng), flat_y = random_labels<float>(rows * cols, rng);
    const Mat<float> x = Eigen::Map<const Mat<float>>(flat_x.data(), rows, cols);
    const Mat<float> y = Eigen::Map<const Mat<float>>(flat_y.data(), rows, cols);
    const Vec<double> pw = (Vec<double>(cols) << 1, 0, 0.5, 3, 7, 1, 0.25).finished();
    const nll::Bernoulli family{{pw}};
    const nll::Bernoulli plain{};
    Mat<float> g(rows, cols), g_ref(rows, cols);
    const std::vector<double> w(weight.begin(), weight.begin() + rows * cols);
    const std::vector<double> up(upstream.begin(), upstream.begin() + rows * cols);
    for (const nll::NllOptions& o :
         {nll::NllOptions{.reduction = Reduction::mean}, nll::NllOptions{.reduction = Reduction::sum, .weight = w},
          nll::NllOptions{.reduction = Reduction::none, .upstream = up}}) {
      check_fused<float>(family, x, y, g, g_ref, o, 8);
      check_fused<float>(plain, x, y, g, g_ref, o, 8);
      // Row-major storage: the fused kernel walks it element by element; same results.
      const Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> xr = x, yr = y;
      Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> gr(rows, cols), gr_ref(rows, cols);
      check_fused<float>(family, xr, yr, gr, gr_ref, o, 8);
      // A block of a larger matrix (outer stride ≠ rows) and an expression.
      const Mat<float> big_x = Mat<float>::Zero(rows + 5, cols + 1);
      Mat<float> big = big_x;
      big.block(2, 1, rows, cols) = x;
      check_fused<float>(family, big.block(2, 1, rows, cols), y, g, g_ref, o, 8);
      check_fused<float>(family, x * 1.0f, y, g, g_ref, o, 8);
      // And the results agree across layouts.
      Mat<float> g_col(rows, cols);
      const nll::Loss a = nll::nll(family, x, y, g_col, o);
      const nll::Loss b = nll::nll(family, xr, yr, gr, o);
      CHECK(nll_test::relative_difference(a.value, b.value, 1e-300L) <= 1e-6L);
      CHECK((g_col - Mat<float>(gr)).abs().maxCoeff() <= 1e-6f * (g_col.abs().maxCoeff() + 1e-30f));
    }
  }
  SECTION("half, bfloat16, integer and bool labels; the gradient may overwrite the logits") {
    const Vec<float> x = random_logits<float>(n, rng).cwiseMax(-60.0f).cwiseMin(60.0f);
    Vec<float> yb(n);
    Eigen::Array<bool, Eigen::Dynamic, 1> yl(n);
    Eigen::Array<int, Eigen::Dynamic, 1> yi(n);
    for (Index i = 0; i < n; ++i) {
      yl[i] = i % 2 == 0;
      yi[i] = yl[i] ? 1 : 0;
      yb[i] = yl[i] ? 1.0f : 0.0f;
    }
    Vec<float> g(n), g_ref(n), g_bool(n), g_int(n);
    for (const auto& o : options) {
      check_fused<float>(nll::Bernoulli{}, x, yl, g, g_ref, o, 8);
      check_fused<float>(nll::Bernoulli{}, x, yi, g, g_ref, o, 8);
      const nll::Loss rf = nll::nll(nll::Bernoulli{}, x, yb, g, o);
      const nll::Loss rb = nll::nll(nll::Bernoulli{}, x, yl, g_bool, o);
      const nll::Loss ri = nll::nll(nll::Bernoulli{}, x, yi, g_int, o);
      CHECK(rf.value == rb.value);
      CHECK(rf.value == ri.value);
      CHECK((g == g_bool).all());
      CHECK((g == g_int).all());
      // In place: the gradient overwrites the logits.
      Vec<float> inplace = x;
      const nll::Loss rp = nll::nll(nll::Bernoulli{}, inplace, yb, inplace, o);
      CHECK(rp.value == rf.value);
      CHECK((inplace == g).all());
    }
    // 16-bit logits are computed in float: the same as float logits holding the same values.
    const Vec<Eigen::half> xh = x.cast<Eigen::half>();
    const Vec<Eigen::bfloat16> xbf = x.cast<Eigen::bfloat16>();
    Vec<Eigen::half> gh(n), gh_ref(n);
    Vec<Eigen::bfloat16> gbf(n), gbf_ref(n);
    for (const auto& o : options) {
      check_fused<float>(nll::Bernoulli{}, xh, yb, gh, gh_ref, o, 8);
      check_fused<float>(nll::Bernoulli{}, xbf, yb, gbf, gbf_ref, o, 8);
      Vec<float> gw(n);
      const nll::Loss rh = nll::nll(nll::Bernoulli{}, xh, yb, gh, o);
      const nll::Loss rw = nll::nll(nll::Bernoulli{}, xh.cast<float>().eval(), yb, gw, o);
      CHECK(rh.value == rw.value);
      CHECK((gh == gw.cast<Eigen::half>()).all());
    }
  }
}

TEST_CASE("hard labels packed by the label check give the same bits as the labels themselves") {
  // binary_cross_entropy_with_logits packs labels that are all 0 or 1 into bits (float labels and
  // logits, AVX-512 kernel); nll::nll(Bernoulli{}, …) has nowhere to pack them and reads the floats.
  std::mt19937 rng(7);
  const auto same = [](const auto& a, const auto& b) {
    // (memcmp must not see the null data of an empty vector, even for 0 bytes)
    return a.size() == b.size() &&
           (a.size() == 0 || std::memcmp(a.data(), b.data(), sizeof(*a.data()) * a.size()) == 0);
  };
  for (const Index n : {Index(1), Index(15), Index(16), Index(17), Index(4096 + 5), Index(3 * 4096 + 100)}) {
    Vec<float> x = random_logits<float>(n, rng);
    Vec<float> y(n);
    std::bernoulli_distribution coin(0.4);
    for (Index i = 0; i < n; ++i) y[i] = coin(rng) ? 1.0f : 0.0f;
    // Every case of the packed kernel's sign logic, the tails and the limits, both labels.
    const float inf = std::numeric_limits<float>::infinity();
    const std::array<float, 12> extremes{std::numeric_limits<float>::quiet_NaN(),
                                         inf,
                                         -inf,
                                         0.0f,
                                         -0.0f,
                                         200.0f,
                                         -200.0f,
                                         104.0f,
                                         -104.0f,
                                         87.5f,
                                         -30.0f,
                                         1e-30f};
    for (Index i = 0; i + 2 < n && i < 24; ++i) {
      x[i + 2] = extremes[static_cast<std::size_t>(i % 12)];
      y[i + 2] = static_cast<float>(i / 12); // each extreme with label 0, then with label 1
    }
    std::vector<double> w(static_cast<std::size_t>(n));
    std::vector<std::uint8_t> mask(static_cast<std::size_t>(n), 1);
    for (std::size_t i = 0; i < w.size(); ++i) {
      w[i] = 0.5 + static_cast<double>(i % 5);
      if (i % 9 == 4) mask[i] = 0;
    }
    INFO("n = " << n);
    for (const nll::BinaryCrossEntropyOptions& o :
         {nll::BinaryCrossEntropyOptions{}, nll::BinaryCrossEntropyOptions{.reduction = Reduction::sum, .weight = w},
          nll::BinaryCrossEntropyOptions{.reduction = Reduction::none, .mask = mask}}) {
      Vec<float> g_packed(n), g_plain(n);
      const nll::Loss packed = nll::binary_cross_entropy_with_logits(x, y, g_packed, o);
      const nll::Loss plain = nll::nll(nll::Bernoulli{}, x, y, g_plain, nll::driver_options(o));
      CHECK(std::memcmp(&packed.value, &plain.value, sizeof(double)) == 0);
      CHECK(same(g_packed, g_plain));
      CHECK(same(packed.per_example, plain.per_example));
      const nll::Loss value_only = nll::binary_cross_entropy_with_logits(x, y, o);
      CHECK(std::memcmp(&value_only.value, &plain.value, sizeof(double)) == 0);
    }
  }
  // A multi-label matrix with pos_weight: runs start at every column, at any bit offset.
  const Index rows = 37, cols = 5;
  const Mat<float> x = Eigen::Map<const Mat<float>>(random_logits<float>(rows * cols, rng).data(), rows, cols);
  Mat<float> y(rows, cols);
  for (Index i = 0; i < y.size(); ++i) y.data()[i] = static_cast<float>(i % 3 == 0);
  const Vec<float> pw = (Vec<float>(cols) << 2, 0.5f, 1, 0, 3).finished();
  Mat<float> g_packed(rows, cols), g_plain(rows, cols);
  const nll::Loss packed = nll::binary_cross_entropy_with_logits(x, y, g_packed, {.pos_weight = pw});
  const nll::Loss plain = nll::nll(nll::Bernoulli{{pw}}, x, y, g_plain);
  CHECK(packed.value == plain.value);
  CHECK(same(g_packed, g_plain));
  // The check packs them where the AVX-512 kernel reads packed labels (so the comparisons above
  // compared two paths); soft labels are not packed, and one bad label still names itself (and
  // nothing is written).
  nll::detail::HardLabels hard;
  const nll::Bernoulli family{{pw, &hard}};
  family.check(x, y, "test");
#if defined(NLL_LOG_SUM_EXP_AVX512)
  CHECK(hard.usable);
#else
  CHECK(!hard.usable);
#endif
  y(3, 2) = 0.25f;
  family.check(x, y, "test");
  CHECK(!hard.usable);
  CHECK(nll::binary_cross_entropy_with_logits(x, y, g_packed).value == nll::nll(nll::Bernoulli{}, x, y, g_plain).value);
  CHECK(same(g_packed, g_plain));
  y(4, 2) = 1.5f;
  const Mat<float> before = g_packed;
  CHECK_THROWS_WITH(nll::binary_cross_entropy_with_logits(x, y, g_packed),
                    "nll::binary_cross_entropy_with_logits: labels[78] is 1.5, but must be in [0, 1]");
  CHECK(same(g_packed, before));
}

TEST_CASE("the named losses are the driver applied to the family") {
  std::mt19937 rng(5);
  const Index rows = 50, cols = 3;
  const Vec<double> fx = random_logits<double>(rows * cols, rng), fy = random_labels<double>(rows * cols, rng);
  const Mat<double> x = Eigen::Map<const Mat<double>>(fx.data(), rows, cols);
  const Mat<double> y = Eigen::Map<const Mat<double>>(fy.data(), rows, cols);
  const Vec<double> pw = (Vec<double>(cols) << 2, 0.5, 1).finished();
  Mat<double> g1(rows, cols), g2(rows, cols);
  const nll::Loss a = nll::binary_cross_entropy_with_logits(x, y, g1, {.reduction = Reduction::sum, .pos_weight = pw});
  const nll::Loss b = nll::nll(nll::Bernoulli{{pw}}, x, y, g2, {.reduction = Reduction::sum});
  CHECK(a.value == b.value);
  CHECK((g1 == g2).all());
  // pos_weight = 1 everywhere is the same as no pos_weight; the mean divides by the element count.
  const Vec<double> ones = Vec<double>::Ones(cols);
  const nll::Loss c = nll::binary_cross_entropy_with_logits(x, y, {.pos_weight = ones});
  const nll::Loss d = nll::binary_cross_entropy_with_logits(x, y);
  CHECK(c.value == d.value);
  CHECK(d.total_weight == static_cast<double>(rows * cols));
  CHECK(nll_test::relative_difference(
            d.value * rows * cols, nll::binary_cross_entropy_with_logits(x, y, {.reduction = Reduction::sum}).value) <
        1e-15L);
  // An empty batch: the mean over nothing is 0 by default.
  const Vec<float> empty(0);
  CHECK(nll::binary_cross_entropy_with_logits(empty, empty).value == 0);
}

TEST_CASE("a weighted mean divides by the element count, as PyTorch; weight_sum gives the weighted average") {
  std::mt19937 rng(6);
  const Index rows = 40, cols = 3, n = rows * cols;
  const Vec<double> fx = random_logits<double>(n, rng), fy = random_labels<double>(n, rng);
  const Mat<double> x = Eigen::Map<const Mat<double>>(fx.data(), rows, cols);
  const Mat<double> y = Eigen::Map<const Mat<double>>(fy.data(), rows, cols);
  std::vector<double> w(static_cast<std::size_t>(n));
  std::vector<std::uint8_t> mask(static_cast<std::size_t>(n), 1);
  for (std::size_t i = 0; i < w.size(); ++i) {
    w[i] = 0.25 * static_cast<double>(i % 9); // multiples of 1/4, zeros included: exact sums
    if (i % 7 == 3) mask[i] = 0;
  }
  const double unmasked = static_cast<double>(std::count(mask.begin(), mask.end(), 1));
  double weight_sum = 0;
  for (std::size_t i = 0; i < w.size(); ++i) weight_sum += mask[i] ? w[i] : 0;
  // The weighted sum and its gradient, from which both means follow by one division.
  Mat<double> g_sum(rows, cols);
  const nll::Loss sum =
      nll::binary_cross_entropy_with_logits(x, y, g_sum, {.reduction = Reduction::sum, .weight = w, .mask = mask});
  struct Case {
    nll::WeightedMean mode;
    double denominator;
  };
  for (const Case c : {Case{nll::WeightedMean::family_default, unmasked}, Case{nll::WeightedMean::count, unmasked},
                       Case{nll::WeightedMean::weight_sum, weight_sum}}) {
    INFO("mode " << static_cast<int>(c.mode));
    Mat<double> g(rows, cols), gp(rows, cols);
    const nll::Loss r =
        nll::binary_cross_entropy_with_logits(x, y, g, {.weight = w, .mask = mask, .weighted_mean = c.mode});
    CHECK(r.denominator == c.denominator);
    CHECK(r.total_weight == c.denominator);
    CHECK(nll_test::relative_difference(r.value, sum.value / c.denominator) < 1e-15L);
    CHECK(((g - g_sum / c.denominator).array().abs() <= 1e-16 * g_sum.array().abs().maxCoeff()).all());
    // The probability form has the same convention.
    const Mat<double> q = x.unaryExpr([](double v) { return 1 / (1 + std::exp(-v)); });
    Mat<double> gq_sum(rows, cols);
    const nll::Loss psum =
        nll::binary_cross_entropy(q, y, gq_sum, {.reduction = Reduction::sum, .weight = w, .mask = mask});
    const nll::Loss p = nll::binary_cross_entropy(q, y, gp, {.weight = w, .mask = mask, .weighted_mean = c.mode});
    CHECK(nll_test::relative_difference(p.value, psum.value / c.denominator) < 1e-15L);
    CHECK(((gp - gq_sum / c.denominator).array().abs() <= 1e-16 * gq_sum.array().abs().maxCoeff()).all());
  }
  // Without weights both conventions are the mean over the unmasked elements.
  CHECK(nll::binary_cross_entropy_with_logits(x, y, {.mask = mask}).denominator == unmasked);
  CHECK(nll::binary_cross_entropy_with_logits(x, y, {.mask = mask, .weighted_mean = nll::WeightedMean::weight_sum})
            .denominator == unmasked);
}

// ---------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------

TEST_CASE("bad input throws with the message grammar and writes nothing to the gradient") {
  Mat<float> x = Mat<float>::Zero(4, 3), y = Mat<float>::Constant(4, 3, 0.5f);
  Mat<float> g = Mat<float>::Constant(4, 3, 42.0f);
  const auto untouched = [&] { return (g == 42.0f).all(); };
  using Opt = nll::BinaryCrossEntropyOptions;
  const std::string f = "nll::binary_cross_entropy_with_logits: ";

  SECTION("shapes") {
    const Mat<float> y_rows = Mat<float>::Zero(3, 3), y_cols = Mat<float>::Zero(4, 2);
    Mat<float> g_small(4, 2);
    CHECK(message_of<std::invalid_argument>([&] { nll::binary_cross_entropy_with_logits(x, y_rows, g, Opt{}); }) ==
          f + "labels.rows() is 3, but must be 4 (logits.rows())");
    CHECK(message_of<std::invalid_argument>([&] { nll::binary_cross_entropy_with_logits(x, y_cols); }) ==
          f + "labels.cols() is 2, but must be 3 (logits.cols())");
    CHECK(message_of<std::invalid_argument>([&] { nll::binary_cross_entropy_with_logits(x, y, g_small, Opt{}); }) ==
          f + "grad.cols() is 2, but must be 3 (logits.cols())");
    const std::vector<float> pw2 = {1, 2};
    CHECK(message_of<std::invalid_argument>([&] {
            nll::binary_cross_entropy_with_logits(x, y, g, {.pos_weight = pw2});
          }) == f + "options.pos_weight.size() is 2, but must be 3 (logits.cols())");
    const std::vector<double> w11(11, 1.0);
    CHECK(message_of<std::invalid_argument>([&] { nll::binary_cross_entropy_with_logits(x, y, g, {.weight = w11}); }) ==
          f + "options.weight.size() is 11, but must be 12 (the number of examples)");
    const Mat<double> pm = Mat<double>::Ones(3, 2);
    CHECK(message_of<std::invalid_argument>([&] {
            nll::binary_cross_entropy_with_logits(x, y, g, {.pos_weight = pm.row(0)});
          }) == f + "options.pos_weight.innerStride() is 3, but must be 1 (contiguous storage)");
    CHECK(untouched());
  }
  SECTION("labels outside [0, 1]") {
    y(2, 1) = 1.5f;
    CHECK(message_of<std::domain_error>([&] { nll::binary_cross_entropy_with_logits(x, y, g, Opt{}); }) ==
          f + "labels[6] is 1.5, but must be in [0, 1]");
    y(2, 1) = -0.25f;
    CHECK(message_of<std::domain_error>([&] { nll::binary_cross_entropy_with_logits(x, y, g, Opt{}); }) ==
          f + "labels[6] is -0.25, but must be in [0, 1]");
    y(2, 1) = std::numeric_limits<float>::quiet_NaN();
    CHECK(message_of<std::domain_error>([&] { nll::binary_cross_entropy_with_logits(x, y, g, Opt{}); }) ==
          f + "labels[6] is nan, but must be in [0, 1]");
    y(2, 1) = -1e-45f; // the smallest negative subnormal
    CHECK(message_of<std::domain_error>([&] { nll::binary_cross_entropy_with_logits(x, y, g, Opt{}); }) ==
          f + "labels[6] is -1.40129846e-45, but must be in [0, 1]");
    const Eigen::Array<int, Eigen::Dynamic, 1> yi = (Eigen::Array<int, Eigen::Dynamic, 1>(3) << 0, 2, 1).finished();
    const Vec<float> x3 = Vec<float>::Zero(3);
    CHECK(message_of<std::domain_error>([&] { nll::binary_cross_entropy_with_logits(x3, yi); }) ==
          f + "labels[1] is 2, but must be in [0, 1]");
    // Long contiguous labels take the vectorised check (then a scalar pass for the message).
    Vec<float> xl = Vec<float>::Zero(1000), yl = Vec<float>::Constant(1000, 0.5f);
    yl[0] = 0.0f;
    yl[999] = 1.0f;
    yl[500] = -0.0f; // −0 is in [0, 1]
    CHECK(message_of<std::domain_error>([&] { nll::binary_cross_entropy_with_logits(xl, yl); }) == "<no exception>");
    for (const float bad :
         {std::numeric_limits<float>::quiet_NaN(), -1e-45f, 1.0000001f, std::numeric_limits<float>::infinity()}) {
      yl[777] = bad;
      CHECK(message_of<std::domain_error>([&] { nll::binary_cross_entropy_with_logits(xl, yl); }) ==
            f + "labels[777] is " + nll::detail::format_value(bad) + ", but must be in [0, 1]");
    }
    yl[777] = 0.5f;
    Vec<double> ql = Vec<double>::Constant(1000, 0.25);
    ql[300] = std::numeric_limits<double>::quiet_NaN(); // a NaN probability is data
    CHECK(message_of<std::domain_error>([&] { nll::binary_cross_entropy(ql, yl.cast<double>().eval()); }) ==
          "<no exception>");
    ql[301] = -0.5;
    CHECK(message_of<std::domain_error>([&] { nll::binary_cross_entropy(ql, yl.cast<double>().eval()); }) ==
          "nll::binary_cross_entropy: probs[301] is -0.5, but must be in [0, 1]");
    // Labels in a block with an outer stride take the scalar check: same message.
    Mat<float> tall = Mat<float>::Constant(6, 3, 0.5f);
    tall(3, 1) = 3.0f; // element (2, 1) of the block starting at row 1: index 2 + 1*4 = 6
    CHECK(message_of<std::domain_error>([&] {
            nll::binary_cross_entropy_with_logits(x, tall.block(1, 0, 4, 3), g, Opt{});
          }) == f + "labels[6] is 3, but must be in [0, 1]");
    // Soft labels at the ends are fine; a NaN logit is data, not an error.
    y.setConstant(0.5f);
    y(0, 0) = 0.0f;
    y(1, 0) = 1.0f;
    x(3, 2) = std::numeric_limits<float>::quiet_NaN();
    Mat<float> g2(4, 3);
    CHECK(message_of<std::domain_error>([&] { nll::binary_cross_entropy_with_logits(x, y, g2, Opt{}); }) ==
          "<no exception>");
    CHECK(std::isnan(g2(3, 2)));
  }
  SECTION("pos_weight values") {
    const std::vector<double> negative = {1, -1, 2}, infinite = {1, 2, std::numeric_limits<double>::infinity()};
    const std::vector<double> nan = {std::numeric_limits<double>::quiet_NaN(), 1, 1};
    CHECK(message_of<std::domain_error>([&] {
            nll::binary_cross_entropy_with_logits(x, y, g, {.pos_weight = negative});
          }) == f + "options.pos_weight[1] is -1, but must be finite and >= 0");
    CHECK(message_of<std::domain_error>([&] {
            nll::binary_cross_entropy_with_logits(x, y, g, {.pos_weight = infinite});
          }) == f + "options.pos_weight[2] is inf, but must be finite and >= 0");
    CHECK(message_of<std::domain_error>([&] { nll::binary_cross_entropy_with_logits(x, y, g, {.pos_weight = nan}); }) ==
          f + "options.pos_weight[0] is nan, but must be finite and >= 0");
    std::vector<double> w(12, 1.0);
    w[7] = -2;
    CHECK(message_of<std::domain_error>([&] { nll::binary_cross_entropy_with_logits(x, y, g, {.weight = w}); }) ==
          f + "options.weight[7] is -2, but must be finite and >= 0");
    CHECK(untouched());
  }
  SECTION("the probability form") {
    const std::string fp = "nll::binary_cross_entropy: ";
    Mat<float> q = Mat<float>::Constant(4, 3, 0.25f);
    q(1, 2) = 1.25f;
    CHECK(message_of<std::domain_error>([&] { nll::binary_cross_entropy(q, y, g, Opt{}); }) ==
          fp + "probs[9] is 1.25, but must be in [0, 1]");
    q(1, 2) = -std::numeric_limits<float>::infinity();
    CHECK(message_of<std::domain_error>([&] { nll::binary_cross_entropy(q, y, g, Opt{}); }) ==
          fp + "probs[9] is -inf, but must be in [0, 1]");
    q(1, 2) = 0.5f;
    y(0, 0) = 2.0f;
    CHECK(message_of<std::domain_error>([&] { nll::binary_cross_entropy(q, y, g, Opt{}); }) ==
          fp + "labels[0] is 2, but must be in [0, 1]");
    y(0, 0) = 1.0f;
    const std::vector<float> pw = {1, 1, 1};
    CHECK(message_of<std::domain_error>([&] { nll::binary_cross_entropy(q, y, g, {.pos_weight = pw}); }) ==
          fp + "options.pos_weight.size() is 3, but must be 0 (pos_weight applies to "
               "binary_cross_entropy_with_logits only)");
    const Mat<float> q_rows = Mat<float>::Constant(5, 3, 0.5f);
    CHECK(message_of<std::invalid_argument>([&] { nll::binary_cross_entropy(q_rows, y, g, Opt{}); }) ==
          fp + "labels.rows() is 4, but must be 5 (probs.rows())");
    Mat<float> g_rows(5, 3);
    CHECK(message_of<std::invalid_argument>([&] { nll::binary_cross_entropy(q, y, g_rows, Opt{}); }) ==
          fp + "grad.rows() is 5, but must be 4 (probs.rows())");
    CHECK(untouched());
    // A NaN probability is data: it propagates.
    q(2, 2) = std::numeric_limits<float>::quiet_NaN();
    Mat<float> g2(4, 3);
    CHECK(message_of<std::domain_error>([&] { nll::binary_cross_entropy(q, y, g2, Opt{}); }) == "<no exception>");
    CHECK(std::isnan(g2(2, 2)));
  }
}
