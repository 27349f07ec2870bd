// Tests of the generic driver (include/nll/core/nll.hpp) through two families defined here, as a
// user of the library would define them:
//
//   Poisson   log-rate η, count y:  ℓ = e^η − y·η + lgamma(y + 1),  ∂ℓ/∂η = e^η − y.
//             The minimal family: num_examples, neg_log_prob, neg_log_prob_grad, zero_grad.
//   Logistic  logit x, label y ∈ {0, 1} or −100 (ignored), class weights c_y:
//             ℓ = c_y·softplus(s) with s = x for y = 0 and s = −x for y = 1 (softplus(s) = log(1 + e^s)),
//             ∂ℓ/∂x = c_y·σ(x) for y = 0 and −c_y·σ(−x) for y = 1.
//             Uses every optional hook: check, check_gradient, ignored, target_weight, a custom
//             block_size and fused block kernels (Eigen array code: vectorised exp/log1p).
//
// Every expectation is computed here by plain long-double loops over the formulas and the driver's
// documented semantics (reference() below), never by calling the driver. Errors are measured in
// units of double epsilon relative to the magnitude of the terms that make up the expected number
// (Σ|terms|, so that a difference of two large terms is judged by the size of those terms).
#include <nll/core/nll.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "support/catch.hpp"
#include "support/gradcheck.hpp"

namespace {

using Eigen::Index;
using Eigen::VectorXd;
using Eigen::VectorXi;
using LD = long double;
using nll::EmptyMean;
using nll::Reduction;

constexpr double kEps = std::numeric_limits<double>::epsilon();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int kIgnore = -100;

// ---------------------------------------------------------------------------------------------
// The families.

/// Poisson with log-rate parameters: the smallest complete DifferentiableDistribution.
struct Poisson {
  Index num_examples(const VectorXd& eta, const VectorXd& /*counts*/) const { return eta.size(); }
  double neg_log_prob(const VectorXd& eta, const VectorXd& y, Index i) const {
    return std::exp(eta[i]) - y[i] * eta[i] + std::lgamma(y[i] + 1);
  }
  double neg_log_prob_grad(const VectorXd& eta, const VectorXd& y, Index i, double scale, VectorXd& grad) const {
    const double e = std::exp(eta[i]);
    const double loss = e - y[i] * eta[i] + std::lgamma(y[i] + 1);
    grad[i] = scale * (e - y[i]); // written after every read of eta[i]: grad may alias eta
    return loss;
  }
  void zero_grad(VectorXd& grad, Index i) const { grad[i] = 0; }
};

/// A value-only family: a Distribution but not a DifferentiableDistribution.
struct PoissonValueOnly {
  Index num_examples(const VectorXd& eta, const VectorXd&) const { return eta.size(); }
  double neg_log_prob(const VectorXd& eta, const VectorXd& y, Index i) const {
    return std::exp(eta[i]) - y[i] * eta[i] + std::lgamma(y[i] + 1);
  }
};

/// Not a Distribution: no neg_log_prob.
struct NotAFamily {
  Index num_examples(const VectorXd& eta, const VectorXd&) const { return eta.size(); }
};

/// Class-weighted logistic regression with an ignore label and fused block kernels.
template <Index kBlock = 8> struct Logistic {
  static constexpr Index block_size = kBlock;
  std::array<double, 2> class_weight{1.0, 1.0};
  std::atomic<long>* fused_calls = nullptr; // counts fused block calls, to prove they are used

  Index num_examples(const VectorXd& x, const VectorXi& /*y*/) const { return x.size(); }

  void check(const VectorXd& x, const VectorXi& y, std::string_view function) const {
    nll::check_size(function, "targets.size()", y.size(), x.size(), "params.size()");
    for (Index i = 0; i < y.size(); ++i) {
      if (y[i] != 0 && y[i] != 1 && y[i] != kIgnore)
        nll::fail_at(nll::ErrorKind::value, function, "targets", i, y[i], "0, 1 or -100 (ignored)");
    }
  }
  void check_gradient(const VectorXd& x, const VectorXi& /*y*/, const VectorXd& grad, std::string_view function) const {
    nll::check_size(function, "grad.size()", grad.size(), x.size(), "params.size()");
  }
  bool ignored(const VectorXi& y, Index i) const { return y[i] == kIgnore; }
  double target_weight(const VectorXi& y, Index i) const { return class_weight[static_cast<std::size_t>(y[i])]; }

  // Per-example functions: scalar libm code.
  static double softplus(double s) { return s > 0 ? s + std::log1p(std::exp(-s)) : std::log1p(std::exp(s)); }
  static double sigmoid(double s) { return s >= 0 ? 1 / (1 + std::exp(-s)) : std::exp(s) / (1 + std::exp(s)); }
  double neg_log_prob(const VectorXd& x, const VectorXi& y, Index i) const {
    const double s = y[i] == 1 ? -x[i] : x[i];
    return class_weight[static_cast<std::size_t>(y[i])] * softplus(s);
  }
  double neg_log_prob_grad(const VectorXd& x, const VectorXi& y, Index i, double scale, VectorXd& grad) const {
    const double c = class_weight[static_cast<std::size_t>(y[i])];
    const double s = y[i] == 1 ? -x[i] : x[i];
    const double loss = c * softplus(s);
    grad[i] = scale * (y[i] == 1 ? -c * sigmoid(s) : c * sigmoid(s));
    return loss;
  }
  void zero_grad(VectorXd& grad, Index i) const { grad[i] = 0; }

  // Fused block kernels: one exp per example, shared by softplus and sigmoid.
  // At least 16 entries of room: with a maximum of 1, GCC 12 reports Eigen's (dead) packet code.
  using BlockArray = Eigen::Array<double, Eigen::Dynamic, 1, 0, std::max<Index>(kBlock, 16), 1>;
  struct BlockTerms {
    BlockArray s, c, e;
  };
  BlockTerms terms(const VectorXd& x, const VectorXi& y, const nll::Block& b) const {
    BlockTerms t;
    t.s.resize(b.size);
    t.c.resize(b.size);
    for (Index k = 0; k < b.size; ++k) {
      const Index i = b.begin + k;
      // Examples that do not count are never evaluated: their parameters (maybe NaN) and labels
      // (maybe the ignore label) are not read.
      const bool counts = b.weight_at(k) != 0;
      t.s[k] = !counts ? 0.0 : y[i] == 1 ? -x[i] : x[i];
      t.c[k] = !counts ? 0.0 : class_weight[static_cast<std::size_t>(y[i])];
    }
    // std::exp, not Eigen's packet exp: Eigen 3.4's returns 5.6e-309 for exp(−inf) in double on
    // SSE/AVX2 builds (docs/kernels.md), which would make σ(−inf) nonzero here.
    t.e = (-t.s.abs()).unaryExpr([](double v) { return std::exp(v); });
    return t;
  }
  double neg_log_prob_block(const VectorXd& x, const VectorXi& y, const nll::Block& b) const {
    if (fused_calls) ++*fused_calls;
    const BlockTerms t = terms(x, y, b);
    const BlockArray loss = t.c * (t.s.max(0.0) + t.e.log1p());
    double sum = 0;
    for (Index k = 0; k < b.size; ++k) {
      const double w = b.weight_at(k);
      const double contribution = w != 0 ? w * loss[k] : 0.0;
      if (b.loss_out) b.loss_out[k] = contribution;
      sum += contribution;
    }
    return sum;
  }
  double neg_log_prob_grad_block(const VectorXd& x, const VectorXi& y, const nll::Block& b, VectorXd& grad) const {
    if (fused_calls) ++*fused_calls;
    const BlockTerms t = terms(x, y, b); // every read of x happens here, before any write to grad
    const BlockArray loss = t.c * (t.s.max(0.0) + t.e.log1p());
    const BlockArray sig = (t.s >= 0).select(1.0 / (1.0 + t.e), t.e / (1.0 + t.e)); // σ(s)
    double sum = 0;
    for (Index k = 0; k < b.size; ++k) {
      const Index i = b.begin + k;
      const double w = b.weight_at(k);
      if (w == 0) {
        grad[i] = 0;
        if (b.loss_out) b.loss_out[k] = 0;
        continue;
      }
      const double contribution = w * loss[k];
      grad[i] = b.grad_scale_at(k) * (y[i] == 1 ? -t.c[k] * sig[k] : t.c[k] * sig[k]);
      if (b.loss_out) b.loss_out[k] = contribution;
      sum += contribution;
    }
    return sum;
  }
};

static_assert(nll::Distribution<Poisson, VectorXd, VectorXd>);
static_assert(nll::DifferentiableDistribution<Poisson, VectorXd, VectorXd, VectorXd>);
static_assert(nll::Distribution<PoissonValueOnly, VectorXd, VectorXd>);
static_assert(!nll::DifferentiableDistribution<PoissonValueOnly, VectorXd, VectorXd, VectorXd>);
static_assert(!nll::Distribution<NotAFamily, VectorXd, VectorXd>);
static_assert(nll::DifferentiableDistribution<Logistic<>, VectorXd, VectorXi, VectorXd>);
static_assert(!nll::DifferentiableDistribution<Poisson, VectorXd, VectorXd, VectorXi>); // wrong buffer type
static_assert(nll::detail::HasCheck<Logistic<>, VectorXd, VectorXi> &&
              !nll::detail::HasCheck<Poisson, VectorXd, VectorXd>);
static_assert(nll::detail::HasGradBlock<Logistic<>, VectorXd, VectorXi, VectorXd>);
static_assert(nll::detail::block_size_of<Logistic<8>>() == 8 && nll::detail::block_size_of<Poisson>() == 1024);

// ---------------------------------------------------------------------------------------------
// The reference: the driver's documented semantics as plain long-double loops.

/// Per-example terms of a family, in long double, with the magnitudes that bound their rounding.
struct Terms {
  std::vector<LD> loss, loss_mag, grad, grad_mag, target_weight;
  std::vector<bool> ignored;
};

Terms poisson_terms(const VectorXd& eta, const VectorXd& y) {
  Terms t;
  for (Index i = 0; i < eta.size(); ++i) {
    const LD h = eta[i], c = y[i];
    const LD e = std::exp(h), lg = std::lgamma(c + 1);
    t.loss.push_back(e - c * h + lg);
    t.loss_mag.push_back(e + std::fabs(c * h) + std::fabs(lg));
    t.grad.push_back(e - c);
    t.grad_mag.push_back(e + std::fabs(c));
    t.target_weight.push_back(1);
    t.ignored.push_back(false);
  }
  return t;
}

LD softplus_ld(LD s) { return s > 0 ? s + std::log1p(std::exp(-s)) : std::log1p(std::exp(s)); }
LD sigmoid_ld(LD s) { return s >= 0 ? 1 / (1 + std::exp(-s)) : std::exp(s) / (1 + std::exp(s)); }

Terms logistic_terms(const VectorXd& x, const VectorXi& y, std::array<double, 2> class_weight) {
  Terms t;
  for (Index i = 0; i < x.size(); ++i) {
    const bool ignored = y[i] == kIgnore;
    t.ignored.push_back(ignored);
    const LD c = ignored ? 0 : class_weight[static_cast<std::size_t>(y[i])];
    const LD s = y[i] == 1 ? -static_cast<LD>(x[i]) : static_cast<LD>(x[i]);
    t.loss.push_back(ignored ? kNaN : c * softplus_ld(s)); // NaN: must never be used
    t.grad.push_back(ignored ? kNaN : (y[i] == 1 ? -c : c) * sigmoid_ld(s));
    t.loss_mag.push_back(std::fabs(t.loss.back()));
    t.grad_mag.push_back(std::fabs(t.grad.back()));
    t.target_weight.push_back(c);
  }
  return t;
}

struct RefOptions {
  Reduction reduction = Reduction::mean;
  std::vector<LD> weight = {}; // empty: all 1
  std::vector<int> mask = {};  // empty: every example counts
  std::optional<LD> normalizer = {};
  EmptyMean empty_mean = EmptyMean::zero;
  std::vector<LD> upstream = {}; // empty: all 1
  bool mean_over_count = false;  // WeightedMean::count: D = Σ v_i over examples not masked or ignored
};

struct Expected {
  LD value = 0, value_mag = 0, total_weight = 0, denominator = 1;
  std::vector<LD> per_example, per_example_mag, grad, grad_mag;
};

Expected reference(const Terms& t, const RefOptions& o) {
  const std::size_t n = t.loss.size();
  Expected r;
  const auto counts = [&](std::size_t i) {
    const LD w = o.weight.empty() ? 1 : o.weight[i];
    return (o.mask.empty() || o.mask[i] != 0) && !t.ignored[i] && w != 0;
  };
  const auto w = [&](std::size_t i) { return o.weight.empty() ? LD(1) : o.weight[i]; };
  LD sum = 0, mag = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!counts(i)) continue;
    r.total_weight += w(i) * t.target_weight[i];
    sum += w(i) * t.loss[i];
    mag += w(i) * t.loss_mag[i];
  }
  if (o.mean_over_count) {
    r.total_weight = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if ((o.mask.empty() || o.mask[i] != 0) && !t.ignored[i]) r.total_weight += t.target_weight[i];
    }
  }
  const bool mean = o.reduction == Reduction::mean;
  r.denominator = !mean ? 1 : o.normalizer ? *o.normalizer : r.total_weight;
  const bool empty = mean && r.denominator == 0;
  const LD empty_value = o.empty_mean == EmptyMean::zero ? LD(0) : LD(kNaN);
  r.value = empty ? empty_value : sum / r.denominator;
  r.value_mag = empty ? 0 : mag / r.denominator;
  if (o.reduction == Reduction::none) {
    for (std::size_t i = 0; i < n; ++i) {
      r.per_example.push_back(counts(i) ? w(i) * t.loss[i] : 0);
      r.per_example_mag.push_back(counts(i) ? w(i) * t.loss_mag[i] : 0);
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!counts(i)) {
      r.grad.push_back(0);
      r.grad_mag.push_back(0);
    } else if (empty) {
      r.grad.push_back(empty_value);
      r.grad_mag.push_back(0);
    } else if (o.reduction == Reduction::none) {
      const LD g = o.upstream.empty() ? 1 : o.upstream[i];
      r.grad.push_back(g * w(i) * t.grad[i]);
      r.grad_mag.push_back(std::fabs(g * w(i)) * t.grad_mag[i]);
    } else {
      r.grad.push_back(w(i) * t.grad[i] / r.denominator);
      r.grad_mag.push_back(w(i) * t.grad_mag[i] / r.denominator);
    }
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Comparisons.

/// The worst errors seen, in eps, printed at the end of the run.
struct Worst {
  double value = 0, per_example = 0, grad = 0, fused_vs_per_example = 0, gradcheck_relative = 0;
  ~Worst() {
    std::printf("test_nll worst errors vs long-double loops: value %.2f eps, per_example %.2f eps, gradient "
                "%.2f eps; fused vs per-example path %.2f eps; finite differences %.3g relative\n",
                value, per_example, grad, fused_vs_per_example, gradcheck_relative);
  }
};
Worst worst;

/// Error of `got` against `want` in eps, relative to max(|want|, mag); NaN and inf must match exactly.
double error_eps(double got, LD want, LD mag) {
  if (std::isnan(want)) return std::isnan(got) ? 0 : kInf;
  if (std::isinf(want)) return got == want ? 0 : kInf;
  const LD scale = std::max(std::fabs(want), mag);
  if (scale == 0) return got == 0 ? 0 : kInf;
  return static_cast<double>(std::fabs(static_cast<LD>(got) - want) / (scale * kEps));
}

/// Budgets in eps. A reduced value is a double sum of up to a few thousand terms (its rounding grows
/// like √N for random signs, with N eps as the worst case); a per-example value or gradient is a
/// handful of libm calls.
constexpr double kValueBudget = 64;
constexpr double kElementBudget = 8;

void check_loss(const nll::Loss& got, const Expected& want, Index n, Reduction reduction) {
  const double e = error_eps(got.value, want.value, want.value_mag);
  worst.value = std::max(worst.value, e);
  CHECK(e <= kValueBudget);
  CHECK(error_eps(got.total_weight, want.total_weight, want.total_weight) <= kValueBudget);
  CHECK(error_eps(got.denominator, want.denominator, want.denominator) <= kValueBudget);
  if (reduction == Reduction::none) {
    REQUIRE(got.per_example.size() == n);
    for (Index i = 0; i < n; ++i) {
      const auto k = static_cast<std::size_t>(i);
      const double ei = error_eps(got.per_example[i], want.per_example[k], want.per_example_mag[k]);
      worst.per_example = std::max(worst.per_example, ei);
      INFO("per_example[" << i << "] = " << got.per_example[i] << ", expected "
                          << static_cast<double>(want.per_example[k]));
      CHECK(ei <= kElementBudget);
      if (want.per_example[k] == 0) CHECK(got.per_example[i] == 0); // exactly 0 where it does not count
    }
  } else {
    CHECK(got.per_example.size() == 0);
  }
}

void check_grad(const VectorXd& got, const Expected& want) {
  REQUIRE(static_cast<std::size_t>(got.size()) == want.grad.size());
  for (Index i = 0; i < got.size(); ++i) {
    const auto k = static_cast<std::size_t>(i);
    const double e = error_eps(got[i], want.grad[k], want.grad_mag[k]);
    worst.grad = std::max(worst.grad, e);
    INFO("grad[" << i << "] = " << got[i] << ", expected " << static_cast<double>(want.grad[k]));
    CHECK(e <= kElementBudget);
    if (want.grad[k] == 0 && want.grad_mag[k] == 0) CHECK(got[i] == 0);
  }
}

/// |a − b| in eps relative to |b| (0 when both are the same NaN/inf/zero).
double ulp_distance(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b) ? 0 : kInf;
  if (a == b) return 0;
  return std::fabs(a - b) / (std::max(std::fabs(a), std::fabs(b)) * kEps);
}

/// The fused path against the per-example path: within a few eps (Eigen's vectorised exp and
/// log1p against libm's), exactly equal where an example does not count.
void check_fused_matches(const nll::Loss& fused, const nll::Loss& ref, const VectorXd* fused_grad,
                         const VectorXd* ref_grad) {
  constexpr double kBudget = 8;
  double e = ulp_distance(fused.value, ref.value);
  CHECK(e <= kBudget);
  CHECK(fused.total_weight == ref.total_weight);
  CHECK(fused.denominator == ref.denominator);
  REQUIRE(fused.per_example.size() == ref.per_example.size());
  for (Index i = 0; i < fused.per_example.size(); ++i) {
    e = std::max(e, ulp_distance(fused.per_example[i], ref.per_example[i]));
    if (ref.per_example[i] == 0) CHECK(fused.per_example[i] == 0);
  }
  if (fused_grad) {
    REQUIRE(fused_grad->size() == ref_grad->size());
    for (Index i = 0; i < fused_grad->size(); ++i) {
      e = std::max(e, ulp_distance((*fused_grad)[i], (*ref_grad)[i]));
      if ((*ref_grad)[i] == 0) CHECK((*fused_grad)[i] == 0);
    }
  }
  worst.fused_vs_per_example = std::max(worst.fused_vs_per_example, e);
  CHECK(e <= kBudget);
}

bool same_bits(const VectorXd& a, const VectorXd& b) {
  if (a.size() != b.size()) return false;
  for (Index i = 0; i < a.size(); ++i) {
    if (!(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])))) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Data. Parameters are multiples of 2^-20, so that finite-difference steps of 2^-8·max(1, |x|)
// move them exactly.

double on_grid(double u) { return std::round(u * 1048576.0) / 1048576.0; }

struct PoissonData {
  VectorXd eta, y;
};

PoissonData poisson_data(Index n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> eta_dist(-2.0, 2.0);
  std::uniform_int_distribution<int> y_dist(0, 6);
  PoissonData d{VectorXd(n), VectorXd(n)};
  for (Index i = 0; i < n; ++i) {
    d.eta[i] = on_grid(eta_dist(rng));
    do {
      d.y[i] = y_dist(rng);
    } while (std::fabs(std::exp(d.eta[i]) - d.y[i]) < 0.05); // no vanishing gradient entries
  }
  return d;
}

struct LogisticData {
  VectorXd x;
  VectorXi y;
};

LogisticData logistic_data(Index n, std::uint64_t seed, double ignored_fraction = 0.2) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> x_dist(-4.0, 4.0), u(0.0, 1.0);
  LogisticData d{VectorXd(n), VectorXi(n)};
  for (Index i = 0; i < n; ++i) {
    d.x[i] = on_grid(x_dist(rng));
    d.y[i] = u(rng) < ignored_fraction ? kIgnore : (u(rng) < 0.5 ? 0 : 1);
  }
  return d;
}

/// Weights that are multiples of 1/8 in [0.25, 2] (their sums are exact) with some exact zeros.
std::vector<double> weights(Index n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> dist(0, 16);
  std::vector<double> w(static_cast<std::size_t>(n));
  for (auto& v : w) {
    const int k = dist(rng);
    v = k == 0 ? 0.0 : 0.125 * (k + 1);
  }
  return w;
}

std::vector<std::int32_t> mask(Index n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> dist(0, 3);
  std::vector<std::int32_t> m(static_cast<std::size_t>(n));
  for (auto& v : m) v = dist(rng) == 0 ? 0 : 1;
  return m;
}

std::vector<LD> widen(const std::vector<double>& v) { return {v.begin(), v.end()}; }
std::vector<int> widen(const std::vector<std::int32_t>& v) { return {v.begin(), v.end()}; }

template <class Exception, class Fn> void require_throws(Fn&& fn, const std::string& message) {
  try {
    fn();
    FAIL("no exception was thrown; expected: " << message);
  } catch (const Exception& e) {
    CHECK(std::string(e.what()) == message);
  }
}

constexpr std::array<Reduction, 3> kReductions{Reduction::none, Reduction::sum, Reduction::mean};

const char* name(Reduction r) { return r == Reduction::none ? "none" : r == Reduction::sum ? "sum" : "mean"; }

} // namespace

// =============================================================================================

TEST_CASE("reductions none, sum and mean equal long-double loops for every batch size around the block") {
  for (const Index n : {Index(0), Index(1), Index(1023), Index(1024), Index(1025), Index(3 * 1024 + 7)}) {
    const PoissonData d = poisson_data(n, 100 + static_cast<std::uint64_t>(n));
    const std::vector<double> w = weights(n, 7);
    const std::vector<std::int32_t> m = mask(n, 8);
    for (const Reduction reduction : kReductions) {
      for (const bool weighted : {false, true}) {
        INFO("Poisson, n = " << n << ", reduction " << name(reduction) << (weighted ? ", weights and mask" : ""));
        nll::NllOptions options{.reduction = reduction};
        RefOptions ref{.reduction = reduction};
        if (weighted) {
          options.weight = w;
          options.mask = m;
          ref.weight = widen(w);
          ref.mask = widen(m);
        }
        const Expected want = reference(poisson_terms(d.eta, d.y), ref);
        const nll::Loss value_only = nll::nll(Poisson{}, d.eta, d.y, options);
        check_loss(value_only, want, n, reduction);
        VectorXd grad = VectorXd::Constant(n, 1234.5);
        const nll::Loss with_grad = nll::nll(Poisson{}, d.eta, d.y, grad, options);
        check_loss(with_grad, want, n, reduction);
        check_grad(grad, want);
        CHECK(with_grad.value == value_only.value); // same per-example formula, same order
        const nll::Loss per_example = nll::nll_per_example(Poisson{}, d.eta, d.y, options);
        CHECK(per_example.value == value_only.value); // Poisson has no fused kernel: the same path
      }
    }
  }
}

TEST_CASE("a family with every hook: fused kernels agree with the per-example path and with long-double loops") {
  const std::array<double, 2> class_weight{0.75, 2.5};
  for (const Index n : {Index(0), Index(1), Index(7), Index(8), Index(9), Index(3 * 8 + 7)}) {
    const LogisticData d = logistic_data(n, 200 + static_cast<std::uint64_t>(n));
    const std::vector<double> w = weights(n, 9);
    const std::vector<std::int32_t> m = mask(n, 10);
    std::atomic<long> fused_calls{0};
    const Logistic<8> family{.class_weight = class_weight, .fused_calls = &fused_calls};
    for (const Reduction reduction : kReductions) {
      for (const bool weighted : {false, true}) {
        INFO("Logistic<8>, n = " << n << ", reduction " << name(reduction) << (weighted ? ", weights and mask" : ""));
        nll::NllOptions options{.reduction = reduction};
        RefOptions ref{.reduction = reduction};
        if (weighted) {
          options.weight = w;
          options.mask = m;
          ref.weight = widen(w);
          ref.mask = widen(m);
        }
        const Expected want = reference(logistic_terms(d.x, d.y, class_weight), ref);
        fused_calls = 0;
        const nll::Loss fused_value = nll::nll(family, d.x, d.y, options);
        VectorXd fused_grad = VectorXd::Constant(n, 1234.5);
        const nll::Loss fused = nll::nll(family, d.x, d.y, fused_grad, options);
        const bool empty_mean = reduction == Reduction::mean && want.total_weight == 0; // returns early
        CHECK(fused_calls == (empty_mean ? 0 : 2 * ((n + 7) / 8))); // one call per block, value and gradient
        fused_calls = 0;
        const nll::Loss ref_value = nll::nll_per_example(family, d.x, d.y, options);
        VectorXd ref_grad = VectorXd::Constant(n, 1234.5);
        const nll::Loss per_example = nll::nll_per_example(family, d.x, d.y, ref_grad, options);
        CHECK(fused_calls == 0); // the reference path never calls the fused kernels

        check_loss(fused, want, n, reduction);
        check_grad(fused_grad, want);
        check_loss(per_example, want, n, reduction);
        check_grad(ref_grad, want);
        check_fused_matches(fused, per_example, &fused_grad, &ref_grad);
        check_fused_matches(fused_value, ref_value, nullptr, nullptr);
        // The value-only kernel and the gradient kernel compute the loss the same way.
        CHECK(fused_value.value == fused.value);
        CHECK(ref_value.value == per_example.value);
      }
    }
  }
}

TEST_CASE("the block size changes no gradient and no per-example loss of the per-example path") {
  const Index n = 53;
  const LogisticData d = logistic_data(n, 31);
  const std::vector<double> w = weights(n, 32);
  const nll::NllOptions options{.reduction = Reduction::none, .weight = w};
  VectorXd g1(n), g8(n), g4096(n);
  const nll::Loss r1 = nll::nll_per_example(Logistic<1>{}, d.x, d.y, g1, options);
  const nll::Loss r8 = nll::nll_per_example(Logistic<8>{}, d.x, d.y, g8, options);
  const nll::Loss r4096 = nll::nll_per_example(Logistic<4096>{}, d.x, d.y, g4096, options);
  CHECK(same_bits(g1, g8));
  CHECK(same_bits(g1, g4096));
  CHECK(same_bits(r1.per_example, r8.per_example));
  CHECK(same_bits(r1.per_example, r4096.per_example));
  // Only the order of the block sums differs.
  CHECK(ulp_distance(r1.value, r8.value) <= 8);
  CHECK(ulp_distance(r1.value, r4096.value) <= 8);
  // The fused kernels with different blocks agree to a few eps (vectorised and scalar tails differ).
  VectorXd f1(n), f8(n);
  const nll::Loss q1 = nll::nll(Logistic<1>{}, d.x, d.y, f1, options);
  const nll::Loss q8 = nll::nll(Logistic<8>{}, d.x, d.y, f8, options);
  check_fused_matches(q1, r1, &f1, &g1);
  check_fused_matches(q8, r8, &f8, &g8);
}

TEST_CASE("per-example weights bind to float and double storage of every kind") {
  const Index n = 10;
  const PoissonData d = poisson_data(n, 41);
  const std::vector<double> wd{0.5, 1.25, 0.0, 2.0, 0.1, 3.0, 0.7, 1.0, 0.3, 1.9};
  std::vector<float> wf(wd.begin(), wd.end());
  std::vector<LD> wf_ld(wf.begin(), wf.end()); // the float values exactly
  std::vector<LD> wd_ld(wd.begin(), wd.end());
  const VectorXd vd = Eigen::Map<const VectorXd>(wd.data(), n);
  const Eigen::VectorXf vf = Eigen::Map<const Eigen::VectorXf>(wf.data(), n);
  std::array<double, 10> ad{};
  std::copy(wd.begin(), wd.end(), ad.begin());
  const Eigen::VectorXi wi = (Eigen::VectorXi(n) << 1, 2, 0, 3, 1, 1, 0, 4, 1, 2).finished();

  for (const Reduction reduction : kReductions) {
    INFO("reduction " << name(reduction));
    const Expected want_d = reference(poisson_terms(d.eta, d.y), {.reduction = reduction, .weight = wd_ld});
    const Expected want_f = reference(poisson_terms(d.eta, d.y), {.reduction = reduction, .weight = wf_ld});
    const auto run = [&](nll::ExampleView weight, const Expected& want) {
      VectorXd grad(n);
      const nll::Loss r = nll::nll(Poisson{}, d.eta, d.y, grad, {.reduction = reduction, .weight = weight});
      check_loss(r, want, n, reduction);
      check_grad(grad, want);
      return std::pair{r, grad};
    };
    const auto from_std_double = run(wd, want_d);
    const auto from_eigen_double = run(vd, want_d);
    const auto from_array = run(ad, want_d);
    const auto from_pointer = run(nll::ExampleView(wd.data(), n), want_d);
    const auto from_map = run(Eigen::Map<const VectorXd>(wd.data(), n), want_d);
    const auto from_std_float = run(wf, want_f);
    const auto from_eigen_float = run(vf, want_f);
    const auto from_span = run(std::span<const float>(wf), want_f);
    // Every storage of the same numbers gives the same bits.
    for (const auto* other : {&from_eigen_double, &from_array, &from_pointer, &from_map}) {
      CHECK(other->first.value == from_std_double.first.value);
      CHECK(same_bits(other->second, from_std_double.second));
    }
    for (const auto* other : {&from_eigen_float, &from_span}) {
      CHECK(other->first.value == from_std_float.first.value);
      CHECK(same_bits(other->second, from_std_float.second));
    }
    // Integer weights count as the integers they are.
    const std::vector<LD> wi_ld(wi.data(), wi.data() + n);
    const Expected want_i = reference(poisson_terms(d.eta, d.y), {.reduction = reduction, .weight = wi_ld});
    run(wi, want_i);
  }
  // bool and uint8 weights are 0/1 and small counts.
  const std::vector<std::uint8_t> wu8{1, 0, 2, 1, 1, 3, 0, 1, 1, 1};
  const std::vector<LD> wu8_ld(wu8.begin(), wu8.end());
  for (const Reduction reduction : kReductions) {
    VectorXd grad(n);
    const nll::Loss r = nll::nll(Poisson{}, d.eta, d.y, grad, {.reduction = reduction, .weight = wu8});
    const Expected want = reference(poisson_terms(d.eta, d.y), {.reduction = reduction, .weight = wu8_ld});
    check_loss(r, want, n, reduction);
    check_grad(grad, want);
  }
  Eigen::Array<bool, Eigen::Dynamic, 1> wb(n);
  wb << true, false, true, true, false, true, true, true, false, true;
  CHECK(nll::nll(Poisson{}, d.eta, d.y, {.reduction = Reduction::sum, .weight = wb}).total_weight == 7);
  CHECK(nll::ExampleView(wf).kind() == nll::ExampleView::Kind::f32);
  CHECK(nll::ExampleView(vd).kind() == nll::ExampleView::Kind::f64);
  CHECK(nll::ExampleView(wi).kind() == nll::ExampleView::Kind::i32);
  CHECK(nll::ExampleView(vd).size() == n);
  CHECK(nll::ExampleView().empty());
  CHECK(nll::ExampleView(wd)[3] == 2.0);
  CHECK(nll::ExampleView(wf)[4] == static_cast<double>(0.1f));
}

TEST_CASE("masks of bool, uint8, int32, int64 and float remove examples") {
  const Index n = 12;
  const PoissonData d = poisson_data(n, 51);
  const std::vector<int> pattern{1, 0, 0, 1, 1, 0, 1, 1, 1, 0, 1, 0};
  Eigen::Array<bool, Eigen::Dynamic, 1> mb(n);
  std::vector<std::uint8_t> mu8(pattern.begin(), pattern.end());
  VectorXi mi32(n);
  std::vector<std::int64_t> mi64(pattern.begin(), pattern.end());
  std::vector<float> mf(pattern.begin(), pattern.end());
  std::vector<double> as_weight(pattern.begin(), pattern.end());
  for (Index i = 0; i < n; ++i) {
    mb[i] = pattern[static_cast<std::size_t>(i)] != 0;
    mi32[i] = pattern[static_cast<std::size_t>(i)];
  }
  const std::vector<double> w = weights(n, 52);
  for (const Reduction reduction : kReductions) {
    for (const bool weighted : {false, true}) {
      INFO("reduction " << name(reduction) << (weighted ? ", with weights" : ""));
      RefOptions ref{.reduction = reduction, .mask = pattern};
      if (weighted) ref.weight = widen(w);
      const Expected want = reference(poisson_terms(d.eta, d.y), ref);
      std::vector<std::pair<nll::Loss, VectorXd>> results;
      for (const nll::ExampleView m : {nll::ExampleView(mb), nll::ExampleView(mu8), nll::ExampleView(mi32),
                                       nll::ExampleView(mi64), nll::ExampleView(mf)}) {
        nll::NllOptions options{.reduction = reduction, .mask = m};
        if (weighted) options.weight = w;
        VectorXd grad = VectorXd::Constant(n, 1234.5);
        const nll::Loss r = nll::nll(Poisson{}, d.eta, d.y, grad, options);
        check_loss(r, want, n, reduction);
        check_grad(grad, want);
        results.emplace_back(r, grad);
      }
      for (const auto& r : results) {
        CHECK(r.first.value == results[0].first.value);
        CHECK(r.first.total_weight == results[0].first.total_weight);
        CHECK(same_bits(r.second, results[0].second));
      }
      if (!weighted) {
        // A 0/1 mask is a 0/1 weight: the same bits.
        VectorXd grad(n);
        const nll::Loss r = nll::nll(Poisson{}, d.eta, d.y, grad, {.reduction = reduction, .weight = as_weight});
        CHECK(r.value == results[0].first.value);
        CHECK(same_bits(grad, results[0].second));
      }
    }
  }
  // total_weight counts what the mask keeps.
  CHECK(nll::nll(Poisson{}, d.eta, d.y, {.mask = mu8}).total_weight == 7);
}

TEST_CASE("an external normaliser makes micro-batch gradients add up to the full-batch mean exactly") {
  // Gradient accumulation (transformers issues 24725, 34191): three micro-batches of different sizes
  // and very different numbers of counted examples.
  const Index n = 40;
  PoissonData d = poisson_data(n, 61);
  const std::vector<double> w = weights(n, 62);
  std::vector<std::int32_t> m = mask(n, 63);
  for (Index i = 0; i < 13; ++i) m[static_cast<std::size_t>(i)] = i % 4 == 0; // micro-batch 1: few count
  for (Index i = 33; i < n; ++i) d.y[i] += 10;                                // micro-batch 3: large losses
  VectorXd full_grad(n);
  const nll::Loss full = nll::nll(Poisson{}, d.eta, d.y, full_grad, {.weight = w, .mask = m});
  const Expected want = reference(poisson_terms(d.eta, d.y), {.weight = widen(w), .mask = widen(m)});
  check_loss(full, want, n, Reduction::mean);
  check_grad(full_grad, want);

  const std::array<std::pair<Index, Index>, 3> slices{{{0, 13}, {13, 20}, {33, 7}}};
  double value_sum = 0, mean_of_means = 0, total_weight = 0, sum_of_sums = 0;
  VectorXd grad(n), grad_of_means(n);
  for (const auto& [begin, size] : slices) {
    const VectorXd eta = d.eta.segment(begin, size), y = d.y.segment(begin, size);
    const std::vector<double> wb(w.begin() + begin, w.begin() + begin + size);
    const std::vector<std::int32_t> mb(m.begin() + begin, m.begin() + begin + size);
    VectorXd g(size), g_mean(size);
    const nll::Loss r = nll::nll(Poisson{}, eta, y, g, {.weight = wb, .mask = mb, .normalizer = full.total_weight});
    CHECK(r.denominator == full.total_weight);
    value_sum += r.value;
    total_weight += r.total_weight;
    grad.segment(begin, size) = g;
    const nll::Loss own_mean = nll::nll(Poisson{}, eta, y, g_mean, {.weight = wb, .mask = mb});
    mean_of_means += own_mean.value / static_cast<double>(slices.size());
    grad_of_means.segment(begin, size) = g_mean / static_cast<double>(slices.size());
    sum_of_sums += nll::nll(Poisson{}, eta, y, {.reduction = Reduction::sum, .weight = wb, .mask = mb}).value;
  }
  CHECK(total_weight == full.total_weight);        // weights are multiples of 1/8: exact
  CHECK(same_bits(grad, full_grad));               // the same operations per example: the same bits
  CHECK(ulp_distance(value_sum, full.value) <= 4); // only the order of the additions differs
  CHECK(ulp_distance(sum_of_sums / total_weight, full.value) <= 4);
  // The mean of the micro-batch means is a different number, and so is its gradient.
  CHECK(std::fabs(mean_of_means - full.value) > 0.05 * full.value);
  CHECK((grad_of_means - full_grad).cwiseAbs().maxCoeff() > 0.05 * full_grad.cwiseAbs().maxCoeff());
}

TEST_CASE("the normaliser replaces the denominator and leaves total_weight alone") {
  const Index n = 9;
  const PoissonData d = poisson_data(n, 71);
  const std::vector<double> w = weights(n, 72);
  for (const double normalizer : {0.5, 3.0, 1e6}) {
    const Expected want = reference(poisson_terms(d.eta, d.y), {.weight = widen(w), .normalizer = normalizer});
    VectorXd grad(n);
    const nll::Loss r = nll::nll(Poisson{}, d.eta, d.y, grad, {.weight = w, .normalizer = normalizer});
    check_loss(r, want, n, Reduction::mean);
    check_grad(grad, want);
    CHECK(r.denominator == normalizer);
  }
  // A normaliser with nothing counted: Σ over nothing / normaliser = 0, whatever empty_mean says.
  const std::vector<std::uint8_t> none_count(n, 0);
  VectorXd grad = VectorXd::Constant(n, 1234.5);
  const nll::Loss r =
      nll::nll(Poisson{}, d.eta, d.y, grad, {.mask = none_count, .normalizer = 4.0, .empty_mean = EmptyMean::nan});
  CHECK(r.value == 0);
  CHECK(r.total_weight == 0);
  CHECK(r.denominator == 4.0);
  CHECK((grad.array() == 0).all());
}

namespace {
/// Poisson whose weighted mean divides by the example count by default (as the Bernoulli family).
struct PoissonCountMean : Poisson {
  static constexpr nll::WeightedMean default_weighted_mean = nll::WeightedMean::count;
};
} // namespace

TEST_CASE("WeightedMean: weights rescale each loss and the mean divides by the examples that count, or by the "
          "total weight") {
  using nll::WeightedMean;
  const Index n = 37;
  const PoissonData d = poisson_data(n, 81);
  const std::vector<double> w = weights(n, 82); // with exact zeros: those examples still count in `count`
  const std::vector<std::int32_t> m = mask(n, 83);
  const Terms poisson = poisson_terms(d.eta, d.y);
  for (const bool masked : {false, true}) {
    const std::vector<std::int32_t> no_mask;
    const std::vector<std::int32_t>& mk = masked ? m : no_mask;
    const RefOptions ref_sum{.weight = widen(w), .mask = widen(mk)};
    RefOptions ref_count = ref_sum;
    ref_count.mean_over_count = true;
    const Expected by_weight = reference(poisson, ref_sum), by_count = reference(poisson, ref_count);
    // Without a mask the count is n; with one, the number of unmasked examples (weight 0 included).
    CHECK(by_count.total_weight == (masked ? static_cast<LD>(std::count(m.begin(), m.end(), 1)) : LD(n)));
    CHECK(by_count.total_weight != by_weight.total_weight);
    const nll::NllOptions base{.weight = w, .mask = mk};
    for (const auto& [family_default_is_count, mode, want] :
         {std::tuple{false, WeightedMean::family_default, &by_weight},
          std::tuple{false, WeightedMean::weight_sum, &by_weight}, std::tuple{false, WeightedMean::count, &by_count},
          std::tuple{true, WeightedMean::family_default, &by_count},
          std::tuple{true, WeightedMean::weight_sum, &by_weight}, std::tuple{true, WeightedMean::count, &by_count}}) {
      INFO("masked " << masked << ", family default count " << family_default_is_count << ", mode "
                     << static_cast<int>(mode));
      nll::NllOptions o = base;
      o.weighted_mean = mode;
      VectorXd grad(n);
      const nll::Loss r = family_default_is_count ? nll::nll(PoissonCountMean{}, d.eta, d.y, grad, o)
                                                  : nll::nll(Poisson{}, d.eta, d.y, grad, o);
      check_loss(r, *want, n, Reduction::mean);
      check_grad(grad, *want);
      CHECK(r.denominator == r.total_weight);
      const nll::Loss value_only = family_default_is_count ? nll::nll_per_example(PoissonCountMean{}, d.eta, d.y, o)
                                                           : nll::nll_per_example(Poisson{}, d.eta, d.y, o);
      CHECK(value_only.total_weight == r.total_weight);
      CHECK(ulp_distance(value_only.value, r.value) <= 4);
    }
  }
  // Sum and none do not divide; the count mode changes only total_weight there.
  const Expected sum_want =
      reference(poisson, {.reduction = Reduction::sum, .weight = widen(w), .mean_over_count = true});
  VectorXd grad(n);
  const nll::Loss s = nll::nll(Poisson{}, d.eta, d.y, grad,
                               {.reduction = Reduction::sum, .weight = w, .weighted_mean = WeightedMean::count});
  check_loss(s, sum_want, n, Reduction::sum);
  check_grad(grad, sum_want);
  CHECK(s.total_weight == n);
}

TEST_CASE("WeightedMean::count with target weights and ignored examples divides by Σ v_i over the examples that "
          "count") {
  const Index n = 50;
  const LogisticData d = logistic_data(n, 91);
  const std::vector<double> w = weights(n, 92);
  const std::vector<std::int32_t> m = mask(n, 93);
  const std::array<double, 2> class_weight{0.5, 3.0};
  const Expected want = reference(logistic_terms(d.x, d.y, class_weight),
                                  {.weight = widen(w), .mask = widen(m), .mean_over_count = true});
  for (const nll::KernelPath path : {nll::KernelPath::fused, nll::KernelPath::per_example}) {
    VectorXd grad(n);
    const nll::NllOptions o{.weight = w, .mask = m, .weighted_mean = nll::WeightedMean::count};
    const nll::Loss r =
        path == nll::KernelPath::fused
            ? nll::detail::run_nll<nll::KernelPath::fused>("nll", Logistic<>{class_weight}, d.x, d.y, &grad, o)
            : nll::detail::run_nll<nll::KernelPath::per_example>("nll", Logistic<>{class_weight}, d.x, d.y, &grad, o);
    check_loss(r, want, n, Reduction::mean);
    check_grad(grad, want);
  }
}

TEST_CASE("WeightedMean::count: micro-batches with the summed total_weight as normaliser give the full batch") {
  const Index n = 40;
  const PoissonData d = poisson_data(n, 95);
  const std::vector<double> w = weights(n, 96);
  const std::vector<std::int32_t> m = mask(n, 97);
  const nll::NllOptions full_options{.weight = w, .mask = m, .weighted_mean = nll::WeightedMean::count};
  VectorXd full_grad(n);
  const nll::Loss full = nll::nll(Poisson{}, d.eta, d.y, full_grad, full_options);
  double total_weight = 0;
  for (const auto& [begin, size] : std::array<std::pair<Index, Index>, 2>{{{0, 17}, {17, 23}}}) {
    const std::vector<double> wb(w.begin() + begin, w.begin() + begin + size);
    const std::vector<std::int32_t> mb(m.begin() + begin, m.begin() + begin + size);
    total_weight += nll::nll(Poisson{}, VectorXd(d.eta.segment(begin, size)), VectorXd(d.y.segment(begin, size)),
                             {.weight = wb, .mask = mb, .weighted_mean = nll::WeightedMean::count})
                        .total_weight;
  }
  CHECK(total_weight == full.total_weight);
  double value = 0;
  VectorXd grad(n);
  for (const auto& [begin, size] : std::array<std::pair<Index, Index>, 2>{{{0, 17}, {17, 23}}}) {
    const std::vector<double> wb(w.begin() + begin, w.begin() + begin + size);
    const std::vector<std::int32_t> mb(m.begin() + begin, m.begin() + begin + size);
    VectorXd g(size);
    value += nll::nll(Poisson{}, VectorXd(d.eta.segment(begin, size)), VectorXd(d.y.segment(begin, size)), g,
                      {.weight = wb, .mask = mb, .normalizer = total_weight})
                 .value;
    grad.segment(begin, size) = g;
  }
  CHECK(same_bits(grad, full_grad));
  CHECK(ulp_distance(value, full.value) <= 4);
}

TEST_CASE("the empty-mean policy: value 0 and zero gradient by default, NaN on request") {
  const Index n = 6;
  PoissonData d = poisson_data(n, 81);
  d.eta[2] = kNaN; // never evaluated
  const std::vector<std::uint8_t> all_masked(n, 0);
  const std::vector<double> all_zero_weight(n, 0.0);
  const LogisticData ld = logistic_data(n, 82, 1.0); // every label ignored
  for (const auto y : ld.y) REQUIRE(y == kIgnore);

  const auto check_empty = [&](const nll::Loss& r, const VectorXd& grad, bool nan_policy) {
    CHECK(r.total_weight == 0);
    CHECK(r.denominator == 0);
    if (nan_policy) {
      CHECK(std::isnan(r.value)); // like PyTorch's mean over nothing (0/0)
    } else {
      CHECK(r.value == 0);
    }
    CHECK((grad.array() == 0).all()); // nothing counts, so every gradient entry is 0 either way
  };
  for (const bool nan_policy : {false, true}) {
    INFO((nan_policy ? "EmptyMean::nan" : "EmptyMean::zero (default)"));
    const EmptyMean policy = nan_policy ? EmptyMean::nan : EmptyMean::zero;
    VectorXd grad = VectorXd::Constant(n, 1234.5);
    check_empty(nll::nll(Poisson{}, d.eta, d.y, grad, {.mask = all_masked, .empty_mean = policy}), grad, nan_policy);
    grad.setConstant(1234.5);
    check_empty(nll::nll(Poisson{}, d.eta, d.y, grad, {.weight = all_zero_weight, .empty_mean = policy}), grad,
                nan_policy);
    grad.setConstant(1234.5);
    check_empty(nll::nll(Logistic<4>{}, ld.x, ld.y, grad, {.empty_mean = policy}), grad, nan_policy);
    grad.setConstant(1234.5);
    check_empty(nll::nll_per_example(Logistic<4>{}, ld.x, ld.y, grad, {.empty_mean = policy}), grad, nan_policy);
    const nll::Loss value_only = nll::nll(Poisson{}, d.eta, d.y, {.mask = all_masked, .empty_mean = policy});
    CHECK(std::isnan(value_only.value) == nan_policy);
    // No examples at all.
    VectorXd none(0);
    const nll::Loss empty_batch = nll::nll(Poisson{}, VectorXd(0), VectorXd(0), none, {.empty_mean = policy});
    CHECK(empty_batch.total_weight == 0);
    CHECK(std::isnan(empty_batch.value) == nan_policy);
    // sum and none over nothing are 0 under either policy.
    CHECK(nll::nll(Poisson{}, d.eta, d.y, {.reduction = Reduction::sum, .mask = all_masked, .empty_mean = policy})
              .value == 0);
    CHECK(nll::nll(Poisson{}, d.eta, d.y, {.reduction = Reduction::none, .mask = all_masked, .empty_mean = policy})
              .value == 0);
  }

  // Examples that count but whose target weights are all zero (a class weight of 0): the total
  // weight is 0. Under the default they get a zero gradient; under nan a NaN one, masked ones 0.
  const Logistic<4> zero_class{.class_weight = {0.0, 1.0}};
  const VectorXd x = (VectorXd(4) << 0.5, -1.0, 2.0, 0.25).finished();
  const VectorXi y = VectorXi::Zero(4);
  const std::vector<bool> keep{true, true, false, true};
  const std::array<std::uint8_t, 4> keep8{1, 1, 0, 1};
  VectorXd grad = VectorXd::Constant(4, 1234.5);
  nll::Loss r = nll::nll(zero_class, x, y, grad, {.mask = keep8});
  CHECK(r.value == 0);
  CHECK(r.total_weight == 0);
  CHECK((grad.array() == 0).all());
  for (const bool fused : {true, false}) {
    grad.setConstant(1234.5);
    r = fused ? nll::nll(zero_class, x, y, grad, {.mask = keep8, .empty_mean = EmptyMean::nan})
              : nll::nll_per_example(zero_class, x, y, grad, {.mask = keep8, .empty_mean = EmptyMean::nan});
    CHECK(std::isnan(r.value));
    for (Index i = 0; i < 4; ++i) {
      INFO("i = " << i << ", fused = " << fused);
      CHECK(std::isnan(grad[i]) == keep[static_cast<std::size_t>(i)]);
      if (!keep[static_cast<std::size_t>(i)]) CHECK(grad[i] == 0);
    }
  }
}

TEST_CASE("upstream per-example gradients with Reduction::none are folded in before anything else") {
  // Liger-Kernel issues 678 and 968: with reduction='none' the gradient must be Σ_i g_i·w_i·∂ℓ_i,
  // not the gradient of the sum scaled by one number.
  const Index n = 11;
  const PoissonData d = poisson_data(n, 91);
  const std::vector<double> w = weights(n, 92);
  const std::vector<std::int32_t> m = mask(n, 93);
  const std::vector<double> g{0.5, -2.0, 0.0, 3.25, 1.0, -0.125, 7.0, 0.75, 0x1p-10, -1.5, 2.0};
  const std::vector<float> gf(g.begin(), g.end());
  const Expected want =
      reference(poisson_terms(d.eta, d.y),
                {.reduction = Reduction::none, .weight = widen(w), .mask = widen(m), .upstream = widen(g)});
  VectorXd grad(n), grad_f(n), plain(n);
  const nll::Loss r =
      nll::nll(Poisson{}, d.eta, d.y, grad, {.reduction = Reduction::none, .weight = w, .mask = m, .upstream = g});
  const nll::Loss rf =
      nll::nll(Poisson{}, d.eta, d.y, grad_f, {.reduction = Reduction::none, .weight = w, .mask = m, .upstream = gf});
  const nll::Loss r_plain =
      nll::nll(Poisson{}, d.eta, d.y, plain, {.reduction = Reduction::none, .weight = w, .mask = m});
  check_loss(r, want, n, Reduction::none);
  check_grad(grad, want);
  CHECK(same_bits(grad, grad_f)); // the upstream values are exactly representable in float
  // The upstream gradient changes the gradient only, never the values.
  CHECK(same_bits(r.per_example, r_plain.per_example));
  CHECK(r.value == r_plain.value);
  for (Index i = 0; i < n; ++i) {
    INFO("i = " << i);
    CHECK(ulp_distance(grad[i], g[static_cast<std::size_t>(i)] * plain[i]) <= 2);
  }

  // Upstream alone (no weight, no mask, a family without an ignore label).
  const Expected want_alone =
      reference(poisson_terms(d.eta, d.y), {.reduction = Reduction::none, .upstream = widen(g)});
  VectorXd grad_alone(n);
  const nll::Loss r_alone = nll::nll(Poisson{}, d.eta, d.y, grad_alone, {.reduction = Reduction::none, .upstream = g});
  check_loss(r_alone, want_alone, n, Reduction::none);
  check_grad(grad_alone, want_alone);

  // The fused path honours it too.
  const LogisticData ld = logistic_data(n, 94);
  const std::array<double, 2> cw{1.5, 0.5};
  const Expected want_l =
      reference(logistic_terms(ld.x, ld.y, cw),
                {.reduction = Reduction::none, .weight = widen(w), .mask = widen(m), .upstream = widen(g)});
  VectorXd fused(n), ref(n);
  const nll::NllOptions options{.reduction = Reduction::none, .weight = w, .mask = m, .upstream = g};
  const nll::Loss rl = nll::nll(Logistic<4>{.class_weight = cw}, ld.x, ld.y, fused, options);
  const nll::Loss rl_ref = nll::nll_per_example(Logistic<4>{.class_weight = cw}, ld.x, ld.y, ref, options);
  check_loss(rl, want_l, n, Reduction::none);
  check_grad(fused, want_l);
  check_fused_matches(rl, rl_ref, &fused, &ref);

  // A NaN upstream entry makes the gradient of a counted example NaN and leaves the others alone;
  // on an example that does not count it changes nothing.
  std::vector<double> g_nan = g;
  std::size_t counted = 0, masked = 0;
  while (!(m[counted] != 0 && w[counted] != 0)) ++counted;
  while (m[masked] != 0) ++masked;
  REQUIRE(counted < g.size());
  REQUIRE(masked < g.size());
  g_nan[counted] = kNaN;
  g_nan[masked] = kNaN;
  VectorXd grad_nan(n);
  nll::nll(Poisson{}, d.eta, d.y, grad_nan, {.reduction = Reduction::none, .weight = w, .mask = m, .upstream = g_nan});
  for (Index i = 0; i < n; ++i) {
    INFO("i = " << i);
    if (static_cast<std::size_t>(i) == counted) {
      CHECK(std::isnan(grad_nan[i]));
    } else {
      CHECK(grad_nan[i] == grad[i]);
    }
  }
}

TEST_CASE("per_example holds w_i·l_i for Reduction::none, 0 where an example does not count, nothing otherwise") {
  const Index n = 10;
  const LogisticData d = logistic_data(n, 101, 0.3);
  const std::vector<double> w = weights(n, 102);
  const std::vector<std::int32_t> m = mask(n, 103);
  const Logistic<4> family{.class_weight = {2.0, 0.5}};
  const Terms t = logistic_terms(d.x, d.y, family.class_weight);
  const nll::Loss r = nll::nll(family, d.x, d.y, {.reduction = Reduction::none, .weight = w, .mask = m});
  REQUIRE(r.per_example.size() == n);
  LD sum = 0;
  for (Index i = 0; i < n; ++i) {
    const auto k = static_cast<std::size_t>(i);
    const bool counts = m[k] != 0 && w[k] != 0 && d.y[i] != kIgnore;
    INFO("i = " << i << ", counts = " << counts);
    if (counts) {
      CHECK(error_eps(r.per_example[i], w[k] * t.loss[k], w[k] * t.loss[k]) <= kElementBudget);
      sum += r.per_example[i];
    } else {
      CHECK(r.per_example[i] == 0);
    }
  }
  CHECK(ulp_distance(r.value, static_cast<double>(sum)) <= 4); // value is the sum of per_example
  CHECK(r.denominator == 1);
  CHECK(nll::nll(family, d.x, d.y, {.reduction = Reduction::sum}).per_example.size() == 0);
  CHECK(nll::nll(family, d.x, d.y, {.reduction = Reduction::mean}).per_example.size() == 0);
}

TEST_CASE("the gradient may be written over the parameters in place") {
  const Index n = 19;
  const std::vector<double> w = weights(n, 111);
  const std::vector<std::int32_t> m = mask(n, 112);
  for (const Reduction reduction : kReductions) {
    INFO("reduction " << name(reduction));
    const nll::NllOptions options{.reduction = reduction, .weight = w, .mask = m};
    const PoissonData d = poisson_data(n, 113);
    VectorXd separate(n);
    const nll::Loss r = nll::nll(Poisson{}, d.eta, d.y, separate, options);
    VectorXd eta = d.eta;
    const nll::Loss in_place = nll::nll(Poisson{}, eta, d.y, eta, options);
    CHECK(in_place.value == r.value);
    CHECK(same_bits(eta, separate));

    const LogisticData ld = logistic_data(n, 114);
    for (const bool fused : {true, false}) {
      INFO((fused ? "fused" : "per-example"));
      VectorXd sep(n);
      VectorXd x = ld.x;
      const nll::Loss a = fused ? nll::nll(Logistic<4>{}, ld.x, ld.y, sep, options)
                                : nll::nll_per_example(Logistic<4>{}, ld.x, ld.y, sep, options);
      const nll::Loss b = fused ? nll::nll(Logistic<4>{}, x, ld.y, x, options)
                                : nll::nll_per_example(Logistic<4>{}, x, ld.y, x, options);
      CHECK(a.value == b.value);
      CHECK(same_bits(x, sep));
    }
  }
}

TEST_CASE("examples that do not count add exactly 0 and get a zero gradient, even with NaN parameters") {
  const Index n = 10;
  PoissonData d = poisson_data(n, 121);
  std::vector<double> w(n, 1.0);
  std::vector<std::uint8_t> m(n, 1);
  w[1] = 0;
  d.eta[1] = kNaN; // weight 0
  m[3] = 0;
  d.eta[3] = kNaN; // masked
  m[5] = 0;
  d.eta[5] = kInf; // masked
  m[6] = 0;
  d.y[6] = kNaN; // masked, NaN target
  for (const Reduction reduction : kReductions) {
    INFO("reduction " << name(reduction));
    const Expected want = reference(poisson_terms(d.eta, d.y),
                                    {.reduction = reduction, .weight = widen(w), .mask = {m.begin(), m.end()}});
    VectorXd grad = VectorXd::Constant(n, 1234.5);
    const nll::Loss r = nll::nll(Poisson{}, d.eta, d.y, grad, {.reduction = reduction, .weight = w, .mask = m});
    CHECK(std::isfinite(r.value));
    check_loss(r, want, n, reduction);
    check_grad(grad, want);
    for (const Index i : {1, 3, 5, 6}) CHECK(grad[i] == 0);
  }
  // The same through a family's ignore label, on the fused path and the per-example path.
  LogisticData ld = logistic_data(n, 122, 0.0);
  ld.y[2] = kIgnore;
  ld.x[2] = kNaN;
  ld.y[7] = kIgnore;
  ld.x[7] = -kInf;
  for (const bool fused : {true, false}) {
    VectorXd grad = VectorXd::Constant(n, 1234.5);
    const nll::NllOptions options{.reduction = Reduction::none, .weight = w, .mask = m};
    const nll::Loss r = fused ? nll::nll(Logistic<4>{}, ld.x, ld.y, grad, options)
                              : nll::nll_per_example(Logistic<4>{}, ld.x, ld.y, grad, options);
    CHECK(std::isfinite(r.value));
    for (const Index i : {1, 2, 3, 5, 6, 7}) {
      INFO("i = " << i << ", fused = " << fused);
      CHECK(grad[i] == 0);
      CHECK(r.per_example[i] == 0);
    }
  }
}

TEST_CASE("NaN and inf in an example that counts propagate") {
  const Index n = 10;
  PoissonData d = poisson_data(n, 131);
  d.eta[4] = kNaN;
  const std::vector<double> w = weights(n, 132);
  std::vector<double> w1 = w;
  w1[4] = 1.0;
  for (const Reduction reduction : kReductions) {
    INFO("reduction " << name(reduction));
    VectorXd grad(n);
    const nll::Loss r = nll::nll(Poisson{}, d.eta, d.y, grad, {.reduction = reduction, .weight = w1});
    CHECK(std::isnan(r.value));
    CHECK(std::isnan(grad[4]));
    CHECK(std::isfinite(r.total_weight));
    // The other examples' gradients do not depend on example 4 (the denominator is Σ w_i).
    const Expected want = reference(poisson_terms(d.eta, d.y), {.reduction = reduction, .weight = widen(w1)});
    check_grad(grad, want);
    if (reduction == Reduction::none) {
      CHECK(std::isnan(r.per_example[4]));
      CHECK(std::isfinite(r.per_example[3]));
    }
    CHECK(std::isnan(nll::nll(Poisson{}, d.eta, d.y, {.reduction = reduction, .weight = w1}).value));
  }
  // A NaN target propagates the same way.
  PoissonData e = poisson_data(n, 133);
  e.y[0] = kNaN;
  CHECK(std::isnan(nll::nll(Poisson{}, e.eta, e.y).value));

  // ±inf logits: the family's mathematically right answers pass through the driver untouched.
  const Logistic<4> family;
  const VectorXd x = (VectorXd(4) << kInf, -kInf, kInf, 0.0).finished();
  for (const bool fused : {true, false}) {
    INFO((fused ? "fused" : "per-example"));
    VectorXi y = (VectorXi(4) << 0, 0, 1, 1).finished();
    VectorXd grad(4);
    nll::Loss r = fused ? nll::nll(family, x, y, grad, {.reduction = Reduction::none})
                        : nll::nll_per_example(family, x, y, grad, {.reduction = Reduction::none});
    CHECK(r.per_example[0] == kInf); // label 0, logit +inf: −log(1 − σ(∞)) = ∞
    CHECK(r.per_example[1] == 0);    // label 0, logit −inf: −log(1) = 0
    CHECK(r.per_example[2] == 0);    // label 1, logit +inf: 0
    CHECK(error_eps(r.per_example[3], std::log(2.0L), std::log(2.0L)) <= 1);
    CHECK(r.value == kInf);
    CHECK(grad[0] == 1);
    CHECK(grad[1] == 0);
    CHECK(grad[2] == 0);
    CHECK(grad[3] == -0.5);
    // mean: inf / 4, gradient finite.
    y[0] = 1; // label 1, logit +inf: loss 0; now everything is finite
    r = fused ? nll::nll(family, x, y, grad) : nll::nll_per_example(family, x, y, grad);
    CHECK(std::isfinite(r.value));
    CHECK(grad.allFinite());
  }
}

TEST_CASE("finite differences confirm the gradient of every reduction with weights, mask and normaliser") {
  const Index n = 12;
  const std::vector<double> w = weights(n, 141);
  std::vector<std::int32_t> m = mask(n, 142);
  const std::vector<double> g{0.5, -2.0, 1.0, 3.25, 1.0, -0.125, 7.0, 0.75, 1.0, -1.5, 2.0, 0.25};
  const PoissonData pd = poisson_data(n, 143);
  const LogisticData ld = logistic_data(n, 144);
  const std::array<double, 2> cw{0.8, 1.7};
  struct Case {
    const char* name;
    nll::NllOptions options;
  };
  const std::vector<Case> cases{
      {"none with upstream", {.reduction = Reduction::none, .weight = w, .mask = m, .upstream = g}},
      {"sum", {.reduction = Reduction::sum, .weight = w, .mask = m}},
      {"mean", {.reduction = Reduction::mean, .weight = w, .mask = m}},
      {"mean with normaliser", {.reduction = Reduction::mean, .weight = w, .mask = m, .normalizer = 37.5}},
  };
  constexpr LD kStep = 1.0L / 256; // 2^-8·max(1, |x|): moves a multiple of 2^-20 exactly
  constexpr double kTolerance = 1e-10;
  for (const Case& c : cases) {
    INFO(c.name);
    // The differentiated function: the reduced value, or Σ g_i·per_example_i for none.
    const auto objective = [&](const nll::Loss& r) -> LD {
      if (c.options.reduction != Reduction::none) return r.value;
      LD s = 0;
      for (Index i = 0; i < n; ++i) s += static_cast<LD>(g[static_cast<std::size_t>(i)]) * r.per_example[i];
      return s;
    };
    const auto check_family = [&](const auto& family, const VectorXd& params, const auto& targets) {
      VectorXd grad(n);
      nll::nll(family, params, targets, grad, c.options);
      std::vector<LD> x(params.data(), params.data() + n);
      const auto f = [&](const std::vector<LD>& xs) {
        VectorXd p(n);
        for (Index i = 0; i < n; ++i) {
          p[i] = static_cast<double>(xs[static_cast<std::size_t>(i)]);
          REQUIRE(static_cast<LD>(p[i]) == xs[static_cast<std::size_t>(i)]); // the step is exact
        }
        nll::NllOptions value_options = c.options;
        value_options.upstream = {};
        return objective(nll::nll(family, p, targets, value_options));
      };
      for (Index j = 0; j < n; ++j) {
        const LD fd = nll_test::central_difference(f, x, static_cast<std::size_t>(j), kStep);
        INFO("j = " << j << ": analytic " << grad[j] << ", finite difference " << static_cast<double>(fd));
        if (fd == 0) {
          CHECK(grad[j] == 0); // an example that does not count: f does not depend on it at all
        } else {
          const double rel = static_cast<double>(nll_test::relative_difference(grad[j], fd));
          worst.gradcheck_relative = std::max(worst.gradcheck_relative, rel);
          CHECK(rel <= kTolerance);
        }
      }
    };
    check_family(Poisson{}, pd.eta, pd.y);
    check_family(Logistic<4>{.class_weight = cw}, ld.x, ld.y);
  }
}

TEST_CASE("value-only and gradient calls agree, through nll, nll_per_example and run_nll") {
  const Index n = 37;
  const LogisticData d = logistic_data(n, 151);
  const std::vector<double> w = weights(n, 152);
  const nll::NllOptions options{.weight = w};
  const Logistic<8> family;
  VectorXd grad(n), grad_run(n);
  const nll::Loss a = nll::nll(family, d.x, d.y, grad, options);
  const nll::Loss b = nll::detail::run_nll<nll::KernelPath::fused>("nll", family, d.x, d.y, &grad_run, options);
  const nll::Loss c = nll::detail::run_nll<nll::KernelPath::fused>(
      "nll", family, d.x, d.y, static_cast<nll::detail::NoGradient*>(nullptr), options);
  CHECK(a.value == b.value);
  CHECK(a.value == c.value);
  CHECK(same_bits(grad, grad_run));
  VectorXd grad_pe(n);
  const nll::Loss e = nll::detail::run_nll<nll::KernelPath::per_example>("nll", family, d.x, d.y, &grad_pe, options);
  const nll::Loss f = nll::nll_per_example(family, d.x, d.y, options);
  CHECK(e.value == f.value);
}

namespace {
/// A named loss's options: the driver's six fields, then the loss's own.
struct PoissonLossOptions {
  NLL_DRIVER_OPTION_FIELDS
  bool full = false;
};
} // namespace

TEST_CASE("a named loss's options struct starts with the driver fields and driver_options extracts them") {
  const std::vector<double> w{1.0, 2.0, 0.5};
  const std::vector<std::uint8_t> m{1, 0, 1};
  const std::vector<double> g{2.0, 3.0, 4.0};
  const PoissonLossOptions o{.reduction = Reduction::none, .weight = w, .mask = m, .upstream = g, .full = true};
  const nll::NllOptions d = nll::driver_options(o);
  CHECK(d.reduction == Reduction::none);
  CHECK(d.weight.data() == w.data());
  CHECK(d.mask.data() == m.data());
  CHECK(d.upstream.data() == g.data());
  CHECK(!d.normalizer);
  CHECK(d.empty_mean == EmptyMean::zero);
  CHECK(d.weighted_mean == nll::WeightedMean::family_default);
  CHECK(nll::driver_options(PoissonLossOptions{.weighted_mean = nll::WeightedMean::count}).weighted_mean ==
        nll::WeightedMean::count);
  const PoissonLossOptions defaults{};
  CHECK(defaults.reduction == Reduction::mean); // PyTorch's default
  CHECK(defaults.weight.empty());
  CHECK(nll::driver_options(PoissonLossOptions{.normalizer = 2.0, .empty_mean = EmptyMean::nan}).normalizer == 2.0);
}

#if defined(_OPENMP)
TEST_CASE("with OpenMP the result does not depend on the number of threads") {
  const Index n = 5 * 1024 + 3;
  const PoissonData d = poisson_data(n, 161);
  const std::vector<double> w = weights(n, 162);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  VectorXd g1(n);
  const nll::Loss r1 = nll::nll(Poisson{}, d.eta, d.y, g1, {.weight = w});
  omp_set_num_threads(std::max(2, threads));
  VectorXd g2(n);
  const nll::Loss r2 = nll::nll(Poisson{}, d.eta, d.y, g2, {.weight = w});
  omp_set_num_threads(threads);
  CHECK(r1.value == r2.value);
  CHECK(same_bits(g1, g2));
}
#endif

// ---------------------------------------------------------------------------------------------
// Errors: exact messages, exception types, and an untouched gradient buffer.

TEST_CASE("every driver check throws with its exact message and writes nothing") {
  const Index n = 4;
  const PoissonData d = poisson_data(n, 171);
  const std::vector<double> w3{1, 1, 1};
  const std::vector<double> w_negative{1, -2, 1, 1};
  const std::vector<float> w_nan{1, 1, std::numeric_limits<float>::quiet_NaN(), 1};
  const std::vector<double> w_inf{kInf, 1, 1, 1};
  const std::vector<float> w_float{1, 1, 1, -0.5f};
  const std::vector<float> w_float_inf{1, 1, std::numeric_limits<float>::infinity(), 1};
  const std::vector<std::int32_t> w_int{1, 1, -3, 1};
  const std::vector<double> w_two_bad{1, -1, kNaN, 1}; // the first bad entry is reported
  const std::vector<std::uint8_t> m5{1, 1, 1, 1, 1};
  const std::vector<std::uint8_t> m2{1, 1, 1, 2};
  const std::vector<float> m_half{1, 0.5f, 1, 1};
  const std::vector<std::int64_t> m_negative{1, 1, -1, 1};
  const std::vector<double> g2{1, 1};
  const std::vector<double> g4{1, 1, 1, 1};
  const Eigen::MatrixXd matrix = Eigen::MatrixXd::Ones(3, n); // a row of it has inner stride 3
  const VectorXd sentinel = VectorXd::Constant(n, 1234.5);

  using IA = std::invalid_argument;
  using DE = std::domain_error;
  const auto expect = [&]<class Exception>(const nll::NllOptions& options, const std::string& message) {
    INFO(message);
    VectorXd grad = sentinel;
    require_throws<Exception>([&] { nll::nll(Poisson{}, d.eta, d.y, grad, options); }, message);
    CHECK(same_bits(grad, sentinel));
    require_throws<Exception>([&] { nll::nll(Poisson{}, d.eta, d.y, options); }, message);
    VectorXd in_place = d.eta;
    require_throws<Exception>([&] { nll::nll(Poisson{}, in_place, d.y, in_place, options); }, message);
    CHECK(same_bits(in_place, d.eta));
    // nll_per_example and a named loss report their own names.
    const std::string tail = message.substr(std::string("nll::nll").size());
    require_throws<Exception>([&] { nll::nll_per_example(Poisson{}, d.eta, d.y, grad, options); },
                              "nll::nll_per_example" + tail);
    require_throws<Exception>(
        [&] { nll::detail::run_nll<nll::KernelPath::fused>("poisson_loss", Poisson{}, d.eta, d.y, &grad, options); },
        "nll::poisson_loss" + tail);
    CHECK(same_bits(grad, sentinel));
  };

  expect.operator()<IA>({.weight = w3}, "nll::nll: options.weight.size() is 3, but must be 4 (the number of examples)");
  expect.operator()<IA>({.mask = m5}, "nll::nll: options.mask.size() is 5, but must be 4 (the number of examples)");
  expect.operator()<IA>({.reduction = Reduction::none, .upstream = g2},
                        "nll::nll: options.upstream.size() is 2, but must be 4 (the number of examples)");
  expect.operator()<IA>({.weight = matrix.row(0)},
                        "nll::nll: options.weight.innerStride() is 3, but must be 1 (contiguous storage)");
  expect.operator()<IA>({.mask = nll::ExampleView(matrix.row(1))},
                        "nll::nll: options.mask.innerStride() is 3, but must be 1 (contiguous storage)");
  expect.operator()<DE>({.weight = w_negative}, "nll::nll: options.weight[1] is -2, but must be finite and >= 0");
  expect.operator()<DE>({.weight = w_nan}, "nll::nll: options.weight[2] is nan, but must be finite and >= 0");
  expect.operator()<DE>({.weight = w_inf}, "nll::nll: options.weight[0] is inf, but must be finite and >= 0");
  expect.operator()<DE>({.weight = w_float}, "nll::nll: options.weight[3] is -0.5, but must be finite and >= 0");
  expect.operator()<DE>({.weight = w_float_inf}, "nll::nll: options.weight[2] is inf, but must be finite and >= 0");
  expect.operator()<DE>({.weight = w_int}, "nll::nll: options.weight[2] is -3, but must be finite and >= 0");
  expect.operator()<DE>({.weight = w_two_bad}, "nll::nll: options.weight[1] is -1, but must be finite and >= 0");
  expect.operator()<DE>({.mask = m2}, "nll::nll: options.mask[3] is 2, but must be 0 or 1");
  expect.operator()<DE>({.mask = m_half}, "nll::nll: options.mask[1] is 0.5, but must be 0 or 1");
  expect.operator()<DE>({.mask = m_negative}, "nll::nll: options.mask[2] is -1, but must be 0 or 1");
  expect.operator()<DE>({.reduction = Reduction::mean, .upstream = g4},
                        "nll::nll: options.upstream.size() is 4, but must be 0 unless options.reduction is none");
  expect.operator()<DE>({.reduction = Reduction::sum, .upstream = g4},
                        "nll::nll: options.upstream.size() is 4, but must be 0 unless options.reduction is none");
  expect.operator()<DE>(
      {.weighted_mean = static_cast<nll::WeightedMean>(7)},
      "nll::nll: options.weighted_mean is 7, but must be family_default (0), weight_sum (1) or count (2)");
  expect.operator()<DE>({.normalizer = 0.0}, "nll::nll: options.normalizer is 0, but must be finite and > 0");
  expect.operator()<DE>({.normalizer = -3.0}, "nll::nll: options.normalizer is -3, but must be finite and > 0");
  expect.operator()<DE>({.normalizer = kNaN}, "nll::nll: options.normalizer is nan, but must be finite and > 0");
  expect.operator()<DE>({.normalizer = kInf}, "nll::nll: options.normalizer is inf, but must be finite and > 0");
  expect.operator()<DE>({.reduction = Reduction::sum, .normalizer = 5.0},
                        "nll::nll: options.normalizer is 5, but must be unset unless options.reduction is mean");
  expect.operator()<DE>({.reduction = Reduction::none, .normalizer = 0.25},
                        "nll::nll: options.normalizer is 0.25, but must be unset unless options.reduction is mean");
}

TEST_CASE("the family's check and check_gradient run first, with the caller's function name") {
  const Index n = 4;
  const VectorXd x = VectorXd::Constant(n, 0.5);
  const VectorXi bad_label = (VectorXi(n) << 0, 1, 3, kIgnore).finished();
  const VectorXi short_targets = VectorXi::Zero(3);
  const VectorXi y = VectorXi::Zero(n);
  const std::vector<double> w_negative{1, -2, 1, 1};
  const VectorXd sentinel = VectorXd::Constant(n, 1234.5);
  const Logistic<4> family;
  VectorXd grad = sentinel;
  VectorXd small_grad = VectorXd::Constant(3, 1234.5);

  require_throws<std::domain_error>([&] { nll::nll(family, x, bad_label, grad); },
                                    "nll::nll: targets[2] is 3, but must be 0, 1 or -100 (ignored)");
  require_throws<std::domain_error>([&] { nll::nll(family, x, bad_label); },
                                    "nll::nll: targets[2] is 3, but must be 0, 1 or -100 (ignored)");
  require_throws<std::domain_error>([&] { nll::nll_per_example(family, x, bad_label, grad); },
                                    "nll::nll_per_example: targets[2] is 3, but must be 0, 1 or -100 (ignored)");
  require_throws<std::invalid_argument>([&] { nll::nll(family, x, short_targets, grad); },
                                        "nll::nll: targets.size() is 3, but must be 4 (params.size())");
  require_throws<std::invalid_argument>([&] { nll::nll(family, x, y, small_grad); },
                                        "nll::nll: grad.size() is 3, but must be 4 (params.size())");
  // The family's checks come before the driver's: a bad label and a bad weight report the label.
  require_throws<std::domain_error>([&] { nll::nll(family, x, bad_label, grad, {.weight = w_negative}); },
                                    "nll::nll: targets[2] is 3, but must be 0, 1 or -100 (ignored)");
  // check_gradient comes before the driver's option checks.
  require_throws<std::invalid_argument>([&] { nll::nll(family, x, y, small_grad, {.weight = w_negative}); },
                                        "nll::nll: grad.size() is 3, but must be 4 (params.size())");
  require_throws<std::domain_error>(
      [&] { nll::detail::run_nll<nll::KernelPath::fused>("logistic_loss", family, x, bad_label, &grad, {}); },
      "nll::logistic_loss: targets[2] is 3, but must be 0, 1 or -100 (ignored)");
  CHECK(same_bits(grad, sentinel));
  CHECK((small_grad.array() == 1234.5).all());
}
