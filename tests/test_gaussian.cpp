// Tests of include/nll/dist/gaussian.hpp: mse_loss, gaussian_nll_loss_fixed, gaussian_nll_loss and
// gaussian_nll_loss_logvar.
//
//  - mpmath references (scripts/gen_reference_gaussian.py -> tests/data/gaussian_{var,logvar,fixed}.txt)
//    for the value and both gradients, float and double, through the fused kernels (vectors long
//    enough for SIMD packets and scalar tails) and through the per-example path; errors in units of
//    epsilon of the scalar type, relative to max(|exact|, the magnitude of the terms) (see the script).
//  - PyTorch parity (scripts/gen_torch_reference_gaussian.py -> tests/data/gaussian_torch.txt):
//    F.mse_loss and F.gaussian_nll_loss values and autograd gradients (mean and var) for every
//    reduction, full, an active eps clamp and each var shape torch accepts.
//  - finite differences (tests/support/gradcheck.hpp) of every gradient, evaluated in long double
//    through the library, for every var layout, reduction, weights, mask and upstream gradients.
//  - fused == per-example, the MSE / fixed-σ / learned-variance / log-variance relations, NaN and
//    inf, aliasing, and every error message exactly (with the gradient buffers left untouched).
#include <nll/dist/gaussian.hpp>

#include <Eigen/Core>
#include <cmath>
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

template <class T> using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
template <class T> using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;
using nll::Reduction;
using nll_test::Record;

/// The exact value as T would hold it: ±inf where it overflows T, else the exact long double.
template <class T> long double representable(long double exact) {
  if (std::isfinite(exact) && std::fabs(exact) > static_cast<long double>(std::numeric_limits<T>::max()))
    return exact > 0 ? std::numeric_limits<long double>::infinity() : -std::numeric_limits<long double>::infinity();
  return exact;
}

/// Error of `actual` in units of eps of T, relative to max(|exact|, scale) (scale: the magnitude of
/// the terms that were added; see scripts/gen_reference_gaussian.py).
template <class T> long double scaled_error(long double actual, long double exact, long double scale) {
  exact = representable<T>(exact);
  if (!std::isfinite(exact) || std::isnan(actual) || !std::isfinite(actual))
    return nll_test::error_in_eps<T>(actual, exact);
  const long double denominator =
      std::max({std::fabs(exact), std::fabs(scale), static_cast<long double>(std::numeric_limits<T>::min())});
  return std::fabs(actual - exact) / (denominator * std::numeric_limits<T>::epsilon());
}

template <class T> T input(const Record& r, std::size_t k) { return static_cast<T>(r.number(k)); }

/// Tiles `n` records into a vector of length 3n + 5 (so every record lands in SIMD lanes and in the
/// scalar tail): element j is record j % n.
Eigen::Index tiled_length(std::size_t n) { return static_cast<Eigen::Index>(3 * n + 5); }

struct Worst {
  long double value = 0, grad_mean = 0, grad_var = 0;
  void add(long double v, long double gm, long double gv) {
    value = std::max(value, v);
    grad_mean = std::max(grad_mean, gm);
    grad_var = std::max(grad_var, gv);
  }
};

// ------------------------------------------------------------------------------------------------
// mpmath references: the variance form.

template <class T> Worst check_var_table(bool per_example) {
  const auto table = nll_test::read_table("gaussian_var.txt");
  std::map<std::pair<long double, int>, std::vector<Record>> groups;
  for (const Record& r : table) groups[{r.number(0), static_cast<int>(r.number(1))}].push_back(r);
  Worst worst;
  for (const auto& [key, records] : groups) {
    const Eigen::Index n = tiled_length(records.size());
    Vec<T> mean(n), var(n), y(n), gm(n), gv(n);
    for (Eigen::Index j = 0; j < n; ++j) {
      const Record& r = records[static_cast<std::size_t>(j) % records.size()];
      mean[j] = input<T>(r, 2);
      var[j] = input<T>(r, 3);
      y[j] = input<T>(r, 4);
    }
    const nll::GaussianNllOptions options{
        .reduction = Reduction::none, .full = key.second != 0, .eps = static_cast<double>(key.first)};
    nll::Loss loss;
    if (per_example) {
      nll::GaussianFamily<T> family;
      family.eps = static_cast<T>(key.first);
      family.full = key.second != 0;
      nll::GaussianGrad<T> grad{gm, gv};
      loss = nll::nll_per_example(family, nll::GaussianParams<T>{mean, var}, nll::ConstMatrixRef<T>(y), grad,
                                  nll::driver_options(options));
    } else {
      loss = nll::gaussian_nll_loss(mean, var, y, gm, gv, options);
    }
    for (Eigen::Index j = 0; j < n; ++j) {
      const Record& r = records[static_cast<std::size_t>(j) % records.size()];
      const long double e_value = scaled_error<T>(loss.per_example[j], r.number(5), r.number(6));
      const long double e_mean = scaled_error<T>(gm[j], r.number(7), 0);
      const long double e_var = scaled_error<T>(gv[j], r.number(8), r.number(9));
      worst.add(e_value, e_mean, e_var);
      if (e_value > 64 || e_mean > 64 || e_var > 64) {
        INFO("eps " << static_cast<double>(key.first) << " full " << key.second << " mu "
                    << static_cast<double>(mean[j]) << " var " << static_cast<double>(var[j]) << " y "
                    << static_cast<double>(y[j]) << " loss " << loss.per_example[j] << " gm "
                    << static_cast<double>(gm[j]) << " gv " << static_cast<double>(gv[j]) << " errors "
                    << static_cast<double>(e_value) << " " << static_cast<double>(e_mean) << " "
                    << static_cast<double>(e_var));
        CHECK(false);
      }
    }
  }
  return worst;
}

// The log-variance form.
template <class T> Worst check_logvar_table(bool per_example) {
  const auto table = nll_test::read_table("gaussian_logvar.txt");
  std::map<int, std::vector<Record>> groups;
  for (const Record& r : table) groups[static_cast<int>(r.number(0))].push_back(r);
  Worst worst;
  for (const auto& [full, records] : groups) {
    const Eigen::Index n = tiled_length(records.size());
    Vec<T> mean(n), s(n), y(n), gm(n), gs(n);
    for (Eigen::Index j = 0; j < n; ++j) {
      const Record& r = records[static_cast<std::size_t>(j) % records.size()];
      mean[j] = input<T>(r, 1);
      s[j] = input<T>(r, 2);
      y[j] = input<T>(r, 3);
    }
    const nll::GaussianNllLogVarOptions options{.reduction = Reduction::none, .full = full != 0};
    nll::Loss loss;
    if (per_example) {
      nll::GaussianLogVarFamily<T> family;
      family.full = full != 0;
      nll::GaussianGrad<T> grad{gm, gs};
      loss = nll::nll_per_example(family, nll::GaussianParams<T>{mean, s}, nll::ConstMatrixRef<T>(y), grad,
                                  nll::driver_options(options));
    } else {
      loss = nll::gaussian_nll_loss_logvar(mean, s, y, gm, gs, options);
    }
    for (Eigen::Index j = 0; j < n; ++j) {
      const Record& r = records[static_cast<std::size_t>(j) % records.size()];
      const long double e_value = scaled_error<T>(loss.per_example[j], r.number(4), r.number(5));
      const long double e_mean = scaled_error<T>(gm[j], r.number(6), 0);
      const long double e_var = scaled_error<T>(gs[j], r.number(7), r.number(8));
      worst.add(e_value, e_mean, e_var);
      if (e_value > 64 || e_mean > 64 || e_var > 64) {
        INFO("full " << full << " mu " << static_cast<double>(mean[j]) << " s " << static_cast<double>(s[j]) << " y "
                     << static_cast<double>(y[j]) << " loss " << loss.per_example[j] << " gm "
                     << static_cast<double>(gm[j]) << " gs " << static_cast<double>(gs[j]) << " errors "
                     << static_cast<double>(e_value) << " " << static_cast<double>(e_mean) << " "
                     << static_cast<double>(e_var));
        CHECK(false);
      }
    }
  }
  return worst;
}

// mse_loss and the fixed-σ Gaussian.
template <class T> Worst check_fixed_table(bool per_example) {
  const auto table = nll_test::read_table("gaussian_fixed.txt");
  std::map<std::tuple<std::string, long double, int>, std::vector<Record>> groups;
  for (const Record& r : table) groups[{r.text(0), r.number(1), static_cast<int>(r.number(2))}].push_back(r);
  Worst worst;
  for (const auto& [key, records] : groups) {
    const auto& [kind, sigma, constants] = key;
    const Eigen::Index n = tiled_length(records.size());
    Vec<T> mean(n), y(n), g(n);
    for (Eigen::Index j = 0; j < n; ++j) {
      const Record& r = records[static_cast<std::size_t>(j) % records.size()];
      mean[j] = input<T>(r, 3);
      y[j] = input<T>(r, 4);
    }
    nll::Loss loss;
    const nll::NllOptions none{.reduction = Reduction::none};
    const auto family = kind == "mse"
                            ? nll::GaussianFixedFamily<T>::squared_error()
                            : nll::GaussianFixedFamily<T>::with_sigma(static_cast<double>(sigma), constants != 0);
    if (per_example) {
      nll::MatrixRef<T> grad(g);
      loss = nll::nll_per_example(family, nll::ConstMatrixRef<T>(mean), nll::ConstMatrixRef<T>(y), grad, none);
    } else if (kind == "mse") {
      loss = nll::mse_loss(mean, y, g, {.reduction = Reduction::none});
    } else {
      loss = nll::gaussian_nll_loss_fixed(mean, y, static_cast<double>(sigma), g,
                                          {.reduction = Reduction::none, .include_constants = constants != 0});
    }
    for (Eigen::Index j = 0; j < n; ++j) {
      const Record& r = records[static_cast<std::size_t>(j) % records.size()];
      const long double e_value = scaled_error<T>(loss.per_example[j], r.number(5), r.number(6));
      const long double e_mean = scaled_error<T>(g[j], r.number(7), 0);
      worst.add(e_value, e_mean, 0);
      if (e_value > 64 || e_mean > 64) {
        INFO(kind << " sigma " << static_cast<double>(sigma) << " mu " << static_cast<double>(mean[j]) << " y "
                  << static_cast<double>(y[j]) << " loss " << loss.per_example[j] << " g " << static_cast<double>(g[j])
                  << " errors " << static_cast<double>(e_value) << " " << static_cast<double>(e_mean));
        CHECK(false);
      }
    }
  }
  return worst;
}

template <class T> void report(const char* what, const Worst& w) {
  std::printf("worst error in eps (%s, %s): value %.2f, d/dmean %.2f, d/dvar %.2f\n", what,
              std::is_same_v<T, float> ? "float" : "double", static_cast<double>(w.value),
              static_cast<double>(w.grad_mean), static_cast<double>(w.grad_var));
}

} // namespace

// Budgets (in eps of the type, relative to the magnitude of the terms): the fused float path uses
// Eigen's SIMD log/exp (a few ulp), the per-example path std::log/std::exp.
TEST_CASE("gaussian_nll_loss matches the mpmath references", "[gaussian][reference]") {
  for (const bool per_example : {false, true}) {
    const Worst wf = check_var_table<float>(per_example);
    const Worst wd = check_var_table<double>(per_example);
    report<float>(per_example ? "gaussian_nll_loss, per-example" : "gaussian_nll_loss, fused", wf);
    report<double>(per_example ? "gaussian_nll_loss, per-example" : "gaussian_nll_loss, fused", wd);
    CHECK(wf.value <= 2);
    CHECK(wf.grad_mean <= 1);
    CHECK(wf.grad_var <= 2);
    CHECK(wd.value <= 2);
    CHECK(wd.grad_mean <= 1);
    CHECK(wd.grad_var <= 2);
  }
}

TEST_CASE("gaussian_nll_loss_logvar matches the mpmath references from log-variance -80 to 80",
          "[gaussian][reference]") {
  for (const bool per_example : {false, true}) {
    const Worst wf = check_logvar_table<float>(per_example);
    const Worst wd = check_logvar_table<double>(per_example);
    report<float>(per_example ? "logvar, per-example" : "logvar, fused", wf);
    report<double>(per_example ? "logvar, per-example" : "logvar, fused", wd);
    // The residual is amplified by e^{-s/2}: an ulp of error in exp(-s/2) for |s| = 80 is an ulp
    // of the result, so the budget is the same across the range.
    CHECK(wf.value <= 4);
    CHECK(wf.grad_mean <= 4);
    CHECK(wf.grad_var <= 4);
    CHECK(wd.value <= 4);
    CHECK(wd.grad_mean <= 4);
    CHECK(wd.grad_var <= 4);
  }
}

TEST_CASE("mse_loss and gaussian_nll_loss_fixed match the mpmath references", "[gaussian][reference]") {
  for (const bool per_example : {false, true}) {
    const Worst wf = check_fixed_table<float>(per_example);
    const Worst wd = check_fixed_table<double>(per_example);
    report<float>(per_example ? "mse/fixed, per-example" : "mse/fixed, fused", wf);
    report<double>(per_example ? "mse/fixed, per-example" : "mse/fixed, fused", wd);
    CHECK(wf.value <= 2);
    CHECK(wf.grad_mean <= 2);
    CHECK(wd.value <= 2);
    CHECK(wd.grad_mean <= 2);
  }
}

// ------------------------------------------------------------------------------------------------
// PyTorch parity.

namespace {

struct TorchCase {
  std::string name, loss, dtype, reduction;
  bool full = false;
  double eps = 0;
  Eigen::Index rows = 0, cols = 0, var_rows = 0, var_cols = 0;
  std::map<std::string, std::vector<long double>> fields;
};

std::vector<TorchCase> read_torch_cases() {
  std::vector<TorchCase> cases;
  for (const Record& r : nll_test::read_table("gaussian_torch.txt")) {
    if (r.text(0) == "case") {
      TorchCase c;
      c.name = r.text(1);
      c.loss = r.text(2);
      c.dtype = r.text(3);
      c.reduction = r.text(4);
      c.full = r.number(5) != 0;
      c.eps = static_cast<double>(r.number(6));
      c.rows = static_cast<Eigen::Index>(r.number(7));
      c.cols = static_cast<Eigen::Index>(r.number(8));
      c.var_rows = static_cast<Eigen::Index>(r.number(9));
      c.var_cols = static_cast<Eigen::Index>(r.number(10));
      cases.push_back(std::move(c));
      continue;
    }
    REQUIRE(!cases.empty());
    REQUIRE(r.text(0) == cases.back().name);
    std::vector<long double> values;
    const auto count = static_cast<std::size_t>(r.number(2));
    REQUIRE(r.size() == count + 3);
    for (std::size_t k = 0; k < count; ++k) values.push_back(r.number(3 + k));
    cases.back().fields[r.text(1)] = std::move(values);
  }
  return cases;
}

template <class T> Mat<T> matrix_of(const std::vector<long double>& v, Eigen::Index rows, Eigen::Index cols) {
  REQUIRE(static_cast<Eigen::Index>(v.size()) == rows * cols);
  Mat<T> m(rows, cols);
  for (Eigen::Index k = 0; k < rows * cols; ++k) m.data()[k] = static_cast<T>(v[static_cast<std::size_t>(k)]);
  return m;
}

Reduction reduction_of(const std::string& s) {
  return s == "none" ? Reduction::none : s == "sum" ? Reduction::sum : Reduction::mean;
}

/// max over k of |ours_k − torch_k| / max(|torch_k|, magnitude_k), where magnitude_k is the sum of
/// the magnitudes of the terms that make up entry k (computed from the inputs below): a relative
/// error, measured against the size of what was added where terms cancel (1 − d²/v near d² = v).
template <class V>
double parity_error(const V& ours, const std::vector<long double>& torch, const std::vector<long double>& magnitude) {
  REQUIRE(static_cast<std::size_t>(ours.size()) == torch.size());
  REQUIRE(magnitude.size() == torch.size());
  double worst = 0;
  for (std::size_t k = 0; k < torch.size(); ++k) {
    const long double a = static_cast<long double>(ours.data()[k]), b = torch[k];
    const long double e =
        std::fabs(a - b) / std::max({std::fabs(b), magnitude[k], std::numeric_limits<long double>::min()});
    worst = std::max(worst, static_cast<double>(e));
  }
  return worst;
}

/// Term magnitudes of every output of a torch case (see parity_error), in long double.
struct Magnitudes {
  std::vector<long double> value, loss, grad_mean, grad_var;
};

Magnitudes magnitudes_of(const TorchCase& c) {
  const auto& mean = c.fields.at("mean");
  const auto& target = c.fields.at("target");
  const Eigen::Index n = c.rows * c.cols;
  const Reduction reduction = reduction_of(c.reduction);
  const bool gaussian = c.loss != "mse";
  const long double eps = c.dtype == "float" ? static_cast<long double>(static_cast<float>(c.eps)) : c.eps;
  Magnitudes m;
  m.loss.assign(static_cast<std::size_t>(n), 0);
  m.grad_mean.assign(static_cast<std::size_t>(n), 0);
  if (gaussian) m.grad_var.assign(static_cast<std::size_t>(c.var_rows * c.var_cols), 0);
  long double total = 0;
  for (Eigen::Index k = 0; k < n; ++k) {
    const auto ks = static_cast<std::size_t>(k);
    const long double factor = reduction == Reduction::none   ? std::fabs(c.fields.at("upstream")[ks])
                               : reduction == Reduction::mean ? 1.0L / static_cast<long double>(n)
                                                              : 1.0L;
    const long double d = mean[ks] - target[ks];
    long double loss_mag = d * d, gm_mag = 2 * std::fabs(d);
    if (gaussian) {
      const Eigen::Index r = k % c.rows, col = k / c.rows;
      const nll::VarShape shape = nll::var_shape(c.rows, c.cols, c.var_rows, c.var_cols);
      const Eigen::Index vk = shape == nll::VarShape::element  ? k
                              : shape == nll::VarShape::row    ? r
                              : shape == nll::VarShape::column ? col
                                                               : 0;
      const long double v = std::max(c.fields.at("var")[static_cast<std::size_t>(vk)], eps);
      const long double q = d * d / v;
      loss_mag = 0.5L * (std::fabs(std::log(v)) + q) + (c.full ? 0.92L : 0.0L);
      gm_mag = std::fabs(d / v);
      m.grad_var[static_cast<std::size_t>(vk)] += factor * 0.5L * (1 + q) / v;
    }
    m.loss[ks] = loss_mag; // per_example holds the losses themselves; upstream only scales gradients
    m.grad_mean[ks] = factor * gm_mag;
    total += factor * loss_mag;
  }
  m.value = {total};
  return m;
}

template <class T> double run_torch_case(const TorchCase& c) {
  const Mat<T> mean = matrix_of<T>(c.fields.at("mean"), c.rows, c.cols);
  const Mat<T> target = matrix_of<T>(c.fields.at("target"), c.rows, c.cols);
  const Reduction reduction = reduction_of(c.reduction);
  Vec<T> upstream;
  if (reduction == Reduction::none) {
    const auto& u = c.fields.at("upstream");
    upstream.resize(static_cast<Eigen::Index>(u.size()));
    for (std::size_t k = 0; k < u.size(); ++k) upstream[static_cast<Eigen::Index>(k)] = static_cast<T>(u[k]);
  }
  const nll::ExampleView up = reduction == Reduction::none ? nll::ExampleView(upstream) : nll::ExampleView();
  Mat<T> gm(c.rows, c.cols);
  nll::Loss loss;
  Mat<T> var, gv;
  if (c.loss == "mse") {
    loss = nll::mse_loss(mean, target, gm, {.reduction = reduction, .upstream = up});
  } else {
    var = matrix_of<T>(c.fields.at("var"), c.var_rows, c.var_cols);
    gv.resize(c.var_rows, c.var_cols);
    loss = nll::gaussian_nll_loss(mean, var, target, gm, gv,
                                  {.reduction = reduction, .upstream = up, .full = c.full, .eps = c.eps});
  }
  const Magnitudes mag = magnitudes_of(c);
  double worst = 0;
  if (reduction == Reduction::none) {
    worst = std::max(worst, parity_error(loss.per_example, c.fields.at("loss"), mag.loss));
  } else {
    const Eigen::VectorXd value = Eigen::VectorXd::Constant(1, loss.value);
    worst = std::max(worst, parity_error(value, c.fields.at("value"), mag.value));
  }
  worst = std::max(worst, parity_error(gm, c.fields.at("grad_mean"), mag.grad_mean));
  if (c.loss != "mse") worst = std::max(worst, parity_error(gv, c.fields.at("grad_var"), mag.grad_var));
  if (const auto it = c.fields.find("row_log_prob"); it != c.fields.end()) {
    // The diagonal multivariate Normal: log p(row) = −(the sum of the row's element losses), full.
    const Eigen::VectorXd row_log_prob = -loss.per_example.reshaped(c.rows, c.cols).rowwise().sum();
    std::vector<long double> row_mag(static_cast<std::size_t>(c.rows), 0);
    for (Eigen::Index k = 0; k < c.rows * c.cols; ++k)
      row_mag[static_cast<std::size_t>(k % c.rows)] += mag.loss[static_cast<std::size_t>(k)];
    worst = std::max(worst, parity_error(row_log_prob, it->second, row_mag));
  }
  return worst;
}

} // namespace

TEST_CASE("mse_loss and gaussian_nll_loss agree with PyTorch 1.13", "[gaussian][torch]") {
  const auto cases = read_torch_cases();
  REQUIRE(cases.size() >= 100);
  double worst_float = 0, worst_double = 0;
  for (const TorchCase& c : cases) {
    INFO(c.name);
    if (c.dtype == "float") {
      const double e = run_torch_case<float>(c);
      worst_float = std::max(worst_float, e);
      CHECK(e <= 6e-7); // 5 float eps
    } else {
      const double e = run_torch_case<double>(c);
      worst_double = std::max(worst_double, e);
      CHECK(e <= 2e-15); // 9 double eps
    }
  }
  std::printf("PyTorch parity over %zu cases: worst relative difference %.3g (float), %.3g (double)\n", cases.size(),
              worst_float, worst_double);
}

// ------------------------------------------------------------------------------------------------
// Finite differences, fused == per-example.

namespace {

enum class Kind { mse, fixed, var, logvar };

const char* kind_name(Kind k) {
  switch (k) {
  case Kind::mse: return "mse_loss";
  case Kind::fixed: return "gaussian_nll_loss_fixed";
  case Kind::var: return "gaussian_nll_loss";
  case Kind::logvar: return "gaussian_nll_loss_logvar";
  }
  return "";
}

/// One configuration: a loss, the mean's shape, var's shape, a reduction and the driver's options.
struct Setup {
  Kind kind;
  Eigen::Index rows, cols, var_rows, var_cols;
  Reduction reduction;
  bool weighted; // weights (one 0) and a mask (one 0)
  bool full;
};

template <class T> struct Problem {
  Mat<T> mean, target, var;
  std::vector<double> weight, upstream;
  std::vector<std::uint8_t> mask;
};

template <class T> Problem<T> make_problem(const Setup& s, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  Problem<T> p;
  p.mean.resize(s.rows, s.cols);
  p.target.resize(s.rows, s.cols);
  for (Eigen::Index k = 0; k < p.mean.size(); ++k) {
    p.mean.data()[k] = static_cast<T>(normal(rng));
    p.target.data()[k] = static_cast<T>(0.3 + 1.5 * normal(rng));
  }
  p.var.resize(s.var_rows, s.var_cols);
  for (Eigen::Index k = 0; k < p.var.size(); ++k)
    p.var.data()[k] = static_cast<T>(s.kind == Kind::logvar ? -2 + 4 * uniform(rng) : 0.2 + 1.8 * uniform(rng));
  const auto n = static_cast<std::size_t>(p.mean.size());
  if (s.weighted) {
    p.weight.resize(n);
    p.mask.assign(n, 1);
    for (auto& w : p.weight) w = 2 * uniform(rng);
    p.weight[n / 3] = 0;
    p.mask[n / 2] = 0;
  }
  if (s.reduction == Reduction::none) {
    p.upstream.resize(n);
    for (auto& u : p.upstream) u = normal(rng);
  }
  return p;
}

/// Runs the named loss of `s` on `p` (with gradients when gm is not null), fused or per-example.
template <class T>
nll::Loss run(const Setup& s, const Problem<T>& p, Mat<T>* gm, Mat<T>* gv, bool per_example = false) {
  nll::NllOptions o{.reduction = s.reduction};
  if (!p.weight.empty()) o.weight = p.weight;
  if (!p.mask.empty()) o.mask = p.mask;
  if (!p.upstream.empty() && gm) o.upstream = p.upstream;
  const double sigma = 0.75;
  if (per_example) {
    const nll::ConstMatrixRef<T> y(p.target);
    switch (s.kind) {
    case Kind::mse:
    case Kind::fixed: {
      const auto family = s.kind == Kind::mse ? nll::GaussianFixedFamily<T>::squared_error()
                                              : nll::GaussianFixedFamily<T>::with_sigma(sigma, s.full);
      const nll::ConstMatrixRef<T> m(p.mean);
      if (!gm) return nll::nll_per_example(family, m, y, o);
      nll::MatrixRef<T> g(*gm);
      return nll::nll_per_example(family, m, y, g, o);
    }
    case Kind::var:
    case Kind::logvar: {
      // The families take a per-element variance gradient; reduce it as the named losses do.
      const nll::GaussianParams<T> params{p.mean, p.var};
      Mat<T> per_element(s.rows, s.cols);
      nll::Loss r;
      const auto go = [&](const auto& family) {
        if (!gm) {
          r = nll::nll_per_example(family, params, y, o);
        } else {
          nll::GaussianGrad<T> g{*gm, per_element};
          r = nll::nll_per_example(family, params, y, g, o);
        }
      };
      if (s.kind == Kind::var) {
        nll::GaussianFamily<T> family;
        family.full = s.full;
        go(family);
      } else {
        nll::GaussianLogVarFamily<T> family;
        family.full = s.full;
        go(family);
      }
      if (gm) {
        gv->setZero(s.var_rows, s.var_cols);
        for (Eigen::Index c = 0; c < s.cols; ++c)
          for (Eigen::Index r0 = 0; r0 < s.rows; ++r0)
            (*gv)(s.var_rows == 1 ? 0 : r0, s.var_cols == 1 ? 0 : c) += per_element(r0, c);
      }
      return r;
    }
    }
  }
  switch (s.kind) {
  case Kind::mse: {
    nll::MseLossOptions opt{o.reduction, o.weight, o.mask, o.normalizer, o.empty_mean, o.upstream};
    return gm ? nll::mse_loss(p.mean, p.target, *gm, opt) : nll::mse_loss(p.mean, p.target, opt);
  }
  case Kind::fixed: {
    nll::GaussianFixedOptions opt{o.reduction,  o.weight,   o.mask,          o.normalizer,
                                  o.empty_mean, o.upstream, o.weighted_mean, s.full};
    return gm ? nll::gaussian_nll_loss_fixed(p.mean, p.target, sigma, *gm, opt)
              : nll::gaussian_nll_loss_fixed(p.mean, p.target, sigma, opt);
  }
  case Kind::var: {
    nll::GaussianNllOptions opt{o.reduction, o.weight,        o.mask, o.normalizer, o.empty_mean,
                                o.upstream,  o.weighted_mean, s.full, 1e-6};
    return gm ? nll::gaussian_nll_loss(p.mean, p.var, p.target, *gm, *gv, opt)
              : nll::gaussian_nll_loss(p.mean, p.var, p.target, opt);
  }
  case Kind::logvar: {
    nll::GaussianNllLogVarOptions opt{o.reduction,  o.weight,   o.mask,          o.normalizer,
                                      o.empty_mean, o.upstream, o.weighted_mean, s.full};
    return gm ? nll::gaussian_nll_loss_logvar(p.mean, p.var, p.target, *gm, *gv, opt)
              : nll::gaussian_nll_loss_logvar(p.mean, p.var, p.target, opt);
  }
  }
  return {};
}

std::vector<Setup> setups(Eigen::Index rows, Eigen::Index cols) {
  std::vector<Setup> out;
  const std::vector<std::pair<Eigen::Index, Eigen::Index>> layouts = {{rows, cols}, {rows, 1}, {1, cols}, {1, 1}};
  for (const Kind kind : {Kind::mse, Kind::fixed, Kind::var, Kind::logvar}) {
    for (const auto& [vr, vc] : layouts) {
      if ((kind == Kind::mse || kind == Kind::fixed) && vr != rows) continue; // no var
      out.push_back({kind, rows, cols, vr, vc, Reduction::mean, false, false});
      out.push_back({kind, rows, cols, vr, vc, Reduction::sum, true, true});
      out.push_back({kind, rows, cols, vr, vc, Reduction::none, true, kind != Kind::fixed});
    }
  }
  return out;
}

} // namespace

TEST_CASE("every gradient matches finite differences (long double through the library)", "[gaussian][gradcheck]") {
  using LD = long double;
  long double worst = 0;
  std::uint64_t seed = 1;
  for (const Setup& s : setups(5, 3)) {
    INFO(kind_name(s.kind) << " var " << s.var_rows << "x" << s.var_cols << " reduction "
                           << static_cast<int>(s.reduction));
    Problem<LD> p = make_problem<LD>(s, ++seed);
    Mat<LD> gm(s.rows, s.cols), gv(s.var_rows, s.var_cols);
    run(s, p, &gm, &gv);
    const bool has_var = s.kind == Kind::var || s.kind == Kind::logvar;
    // The loss as a function of every parameter (means, then variances): the reduced value, or
    // for reduction none Σ_i upstream_i·(w_i·ℓ_i), whose gradient is what the library writes.
    const auto f = [&](const std::vector<LD>& x) -> LD {
      Problem<LD> q = p;
      for (Eigen::Index k = 0; k < q.mean.size(); ++k) q.mean.data()[k] = x[static_cast<std::size_t>(k)];
      if (has_var)
        for (Eigen::Index k = 0; k < q.var.size(); ++k)
          q.var.data()[k] = x[static_cast<std::size_t>(q.mean.size() + k)];
      const nll::Loss r = run<LD>(s, q, nullptr, nullptr);
      if (s.reduction != Reduction::none) return r.value;
      LD total = 0;
      for (Eigen::Index i = 0; i < r.per_example.size(); ++i)
        total += p.upstream[static_cast<std::size_t>(i)] * r.per_example[i];
      return total;
    };
    std::vector<LD> x(p.mean.data(), p.mean.data() + p.mean.size());
    if (has_var) x.insert(x.end(), p.var.data(), p.var.data() + p.var.size());
    for (std::size_t j = 0; j < x.size(); ++j) {
      const LD fd = nll_test::central_difference(f, x, j);
      const auto mean_size = static_cast<std::size_t>(p.mean.size());
      const LD analytic = j < mean_size ? gm.data()[j] : gv.data()[j - mean_size];
      const LD e = nll_test::relative_difference(analytic, fd, 1e-9L); // f is a double: ~1e-16|f|/h
      worst = std::max(worst, e);
      INFO("parameter " << j << " analytic " << static_cast<double>(analytic) << " fd " << static_cast<double>(fd));
      CHECK(e <= 5e-9L);
    }
  }
  std::printf("finite differences: worst relative difference %.3g\n", static_cast<double>(worst));
}

TEST_CASE("the fused kernels agree with the per-example path", "[gaussian][fused]") {
  const auto check_type = [](auto tag) {
    using T = decltype(tag);
    double worst = 0;
    // 37×29 = 1073 elements: two driver blocks, runs that cross columns, SIMD packets and tails.
    for (const Setup& s : setups(37, 29)) {
      INFO(kind_name(s.kind) << " var " << s.var_rows << "x" << s.var_cols << " reduction "
                             << static_cast<int>(s.reduction));
      const Problem<T> p = make_problem<T>(s, 77);
      Mat<T> gm1(s.rows, s.cols), gv1(s.var_rows, s.var_cols), gm2(s.rows, s.cols), gv2(s.var_rows, s.var_cols);
      const nll::Loss fused = run(s, p, &gm1, &gv1);
      const nll::Loss reference = run(s, p, &gm2, &gv2, true);
      const nll::Loss fused_value = run<T>(s, p, nullptr, nullptr);
      const nll::Loss reference_value = run<T>(s, p, nullptr, nullptr, true);
      const double tol = 16 * std::numeric_limits<T>::epsilon();
      const auto rel = [](double a, double b, double scale) {
        return std::fabs(a - b) / std::max(std::fabs(b), scale);
      };
      worst = std::max(worst, rel(fused.value, reference.value, 1e-30) / std::numeric_limits<T>::epsilon());
      CHECK(rel(fused.value, reference.value, 1e-30) <= tol);
      CHECK(rel(fused_value.value, reference_value.value, 1e-30) <= tol);
      CHECK(fused.value == fused_value.value);
      CHECK(fused.total_weight == reference.total_weight);
      for (Eigen::Index k = 0; k < fused.per_example.size(); ++k)
        CHECK(rel(fused.per_example[k], reference.per_example[k], 1e-30) <= tol);
      const double gm_scale = 1e-3 * static_cast<double>(gm2.cwiseAbs().maxCoeff());
      for (Eigen::Index k = 0; k < gm1.size(); ++k) {
        const double e = rel(gm1.data()[k], gm2.data()[k], gm_scale);
        worst = std::max(worst, e / std::numeric_limits<T>::epsilon());
        CHECK(e <= tol);
      }
      if (s.kind == Kind::var || s.kind == Kind::logvar) {
        // ∂ℓ/∂var and ∂ℓ/∂s are differences (½ − ½·d²/v) that cancel where d² ≈ v, and a broadcast
        // var sums many of them in a different order (double here, T in the test's reduction), so
        // compare relative to a fraction of the field's size (the mpmath tables check the cancelling
        // points one by one against the magnitude of their terms).
        const double gv_scale = (s.var_rows == s.rows && s.var_cols == s.cols ? 0.05 : 1.0) *
                                static_cast<double>(gv2.cwiseAbs().maxCoeff());
        for (Eigen::Index k = 0; k < gv1.size(); ++k) {
          const double e = rel(gv1.data()[k], gv2.data()[k], gv_scale);
          worst = std::max(worst, e / std::numeric_limits<T>::epsilon());
          CHECK(e <= (s.var_rows == s.rows && s.var_cols == s.cols ? tol : 64 * tol));
        }
      }
    }
    std::printf("fused vs per-example (%s): worst difference %.2f eps\n", std::is_same_v<T, float> ? "float" : "double",
                worst);
  };
  check_type(float{});
  check_type(double{});
}

// ------------------------------------------------------------------------------------------------
// Relations between the losses.

TEMPLATE_TEST_CASE("mse_loss and the fixed-sigma NLL differ by a constant and have proportional gradients",
                   "[gaussian][relations]", float, double) {
  using T = TestType;
  const Setup s{Kind::mse, 23, 3, 23, 3, Reduction::mean, false, false};
  const Problem<T> p = make_problem<T>(s, 5);
  const double eps = std::numeric_limits<T>::epsilon();
  Mat<T> g_mse(23, 3), g_fixed(23, 3), g_plain(23, 3), g_var(23, 3), g_v(1, 1);
  for (const double sigma : {0.5, 1.0, 3.0}) {
    INFO("sigma " << sigma);
    const nll::Loss mse = nll::mse_loss(p.mean, p.target, g_mse);
    const nll::Loss fixed = nll::gaussian_nll_loss_fixed(p.mean, p.target, sigma, g_fixed);
    const nll::Loss plain =
        nll::gaussian_nll_loss_fixed(p.mean, p.target, sigma, g_plain, {.include_constants = false});
    const double constant = std::log(sigma) + 0.5 * std::log(2 * 3.14159265358979323846);
    // value: fixed = mse/(2σ²) + log σ + ½·log 2π (the mean of a constant is that constant)
    CHECK(std::fabs(fixed.value - (mse.value / (2 * sigma * sigma) + constant)) <=
          8 * eps * (fixed.value + 2 * std::fabs(constant)));
    CHECK(std::fabs(plain.value - mse.value / (2 * sigma * sigma)) <= 8 * eps * plain.value);
    // gradient: fixed = mse_grad/(2σ²), with or without the constants
    for (Eigen::Index k = 0; k < g_mse.size(); ++k) {
      const double expected = static_cast<double>(g_mse.data()[k]) / (2 * sigma * sigma);
      CHECK(std::fabs(static_cast<double>(g_fixed.data()[k]) - expected) <= 4 * eps * std::fabs(expected));
      CHECK(g_plain.data()[k] == g_fixed.data()[k]);
    }
    // fixed σ with the constants = gaussian_nll_loss with var = σ² (a single value) and full
    const Mat<T> var = Mat<T>::Constant(1, 1, static_cast<T>(sigma * sigma));
    const nll::Loss learned = nll::gaussian_nll_loss(p.mean, var, p.target, g_var, g_v, {.full = true});
    CHECK(std::fabs(learned.value - fixed.value) <= 8 * eps * (std::fabs(fixed.value) + 2 * std::fabs(constant)));
    for (Eigen::Index k = 0; k < g_var.size(); ++k)
      CHECK(std::fabs(static_cast<double>(g_var.data()[k] - g_fixed.data()[k])) <=
            4 * eps * std::fabs(static_cast<double>(g_fixed.data()[k])));
  }
}

TEMPLATE_TEST_CASE("the log-variance form equals the variance form at var = exp(s)", "[gaussian][relations]", float,
                   double) {
  using T = TestType;
  const Setup s{Kind::logvar, 19, 4, 19, 4, Reduction::sum, false, true};
  const Problem<T> p = make_problem<T>(s, 9);
  const Mat<T> var = p.var.array().exp().matrix();
  Mat<T> gm1(19, 4), gs(19, 4), gm2(19, 4), gv(19, 4);
  const nll::Loss a =
      nll::gaussian_nll_loss_logvar(p.mean, p.var, p.target, gm1, gs, {.reduction = Reduction::sum, .full = true});
  const nll::Loss b =
      nll::gaussian_nll_loss(p.mean, var, p.target, gm2, gv, {.reduction = Reduction::sum, .full = true});
  const double tol = 64 * std::numeric_limits<T>::epsilon();
  CHECK(std::fabs(a.value - b.value) <= tol * std::fabs(b.value));
  for (Eigen::Index k = 0; k < gm1.size(); ++k) {
    CHECK(std::fabs(static_cast<double>(gm1.data()[k] - gm2.data()[k])) <=
          tol * std::fabs(static_cast<double>(gm2.data()[k])));
    // ∂/∂s = ∂/∂var · var; both are ½(1 − q) up to the cancellation near q = 1
    const double expected = static_cast<double>(gv.data()[k]) * static_cast<double>(var.data()[k]);
    CHECK(std::fabs(static_cast<double>(gs.data()[k]) - expected) <= tol * 0.5 * (1 + 2 * std::fabs(expected)));
  }
}

// ------------------------------------------------------------------------------------------------
// NaN, infinities, zero weights, aliasing, empty input.

TEMPLATE_TEST_CASE("NaN in gives NaN out, infinities give the limits, weight 0 silences an element", "[gaussian][nan]",
                   float, double) {
  using T = TestType;
  const T nan = std::numeric_limits<T>::quiet_NaN(), inf = std::numeric_limits<T>::infinity();
  // 20 elements: SIMD packets and a scalar tail; element 3 (packet) and 18 (tail) are special.
  const Eigen::Index n = 20;
  for (const Eigen::Index at : {Eigen::Index(3), Eigen::Index(18)}) {
    Vec<T> mean = Vec<T>::Constant(n, T(0.5)), y = Vec<T>::Constant(n, T(-0.25)), var = Vec<T>::Constant(n, T(2));
    Vec<T> gm(n), gv(n);
    const nll::GaussianNllOptions none{.reduction = Reduction::none};

    mean[at] = nan; // NaN mean: that element's loss and gradients are NaN, the others are not
    nll::Loss r = nll::gaussian_nll_loss(mean, var, y, gm, gv, none);
    CHECK(std::isnan(r.per_example[at]));
    CHECK(std::isnan(gm[at]));
    CHECK(std::isnan(gv[at]));
    CHECK(std::isfinite(r.per_example[at == 3 ? 4 : 17]));
    CHECK(std::isnan(nll::gaussian_nll_loss(mean, var, y).value));
    CHECK(std::isnan(
        nll::gaussian_nll_loss_logvar(mean, var, y, gm, gv, {.reduction = Reduction::none}).per_example[at]));
    CHECK((std::isnan(gm[at]) && std::isnan(gv[at])));
    CHECK(std::isnan(nll::mse_loss(mean, y, gm, {.reduction = Reduction::none}).per_example[at]));
    CHECK(std::isnan(gm[at]));
    // ... unless its weight is 0: then it adds exactly 0 and gets a zero gradient
    std::vector<double> w(static_cast<std::size_t>(n), 1.0);
    w[static_cast<std::size_t>(at)] = 0;
    r = nll::gaussian_nll_loss(mean, var, y, gm, gv, {.weight = w});
    CHECK(std::isfinite(r.value));
    CHECK(gm[at] == T(0));
    CHECK(gv[at] == T(0));
    mean[at] = T(0.5);

    var[at] = nan; // NaN variance: not clamped away
    r = nll::gaussian_nll_loss(mean, var, y, gm, gv, none);
    CHECK(std::isnan(r.per_example[at]));
    CHECK(std::isnan(gm[at]));
    CHECK(std::isnan(gv[at]));

    var[at] = inf; // infinite variance: ℓ = +inf, both gradients 0
    r = nll::gaussian_nll_loss(mean, var, y, gm, gv, none);
    CHECK(r.per_example[at] == std::numeric_limits<double>::infinity());
    CHECK(gm[at] == T(0));
    CHECK(gv[at] == T(0));

    // log-variance +inf: ℓ = +inf, ∂/∂μ = 0, ∂/∂s = ½
    r = nll::gaussian_nll_loss_logvar(mean, var, y, gm, gv, {.reduction = Reduction::none});
    CHECK(r.per_example[at] == std::numeric_limits<double>::infinity());
    CHECK(gm[at] == T(0));
    CHECK(gv[at] == T(0.5));
    var[at] = T(2);

    y[at] = inf; // an infinite residual: ℓ = +inf, ∂/∂μ = −inf, ∂/∂var = −inf
    r = nll::gaussian_nll_loss(mean, var, y, gm, gv, none);
    CHECK(r.per_example[at] == std::numeric_limits<double>::infinity());
    CHECK(gm[at] == -inf);
    CHECK(gv[at] == -inf);
    r = nll::mse_loss(mean, y, gm, {.reduction = Reduction::none});
    CHECK(r.per_example[at] == std::numeric_limits<double>::infinity());
    CHECK(gm[at] == -inf);
  }
}

TEMPLATE_TEST_CASE("the clamp: straight-through variance gradient, as PyTorch", "[gaussian][clamp]", float, double) {
  using T = TestType;
  // var = 0, eps/2 and eps give the loss at v = eps and the gradient ½(1 − d²/eps)/eps (PyTorch's
  // autograd through clamp_ under no_grad), not 0.
  const double eps = 0.125;
  Vec<T> mean(3), y(3), var(3), gm(3), gv(3);
  mean << T(0.5), T(0.5), T(0.5);
  y << T(0.25), T(0.25), T(0.25);
  var << T(0), T(eps / 2), T(eps);
  const nll::Loss r = nll::gaussian_nll_loss(mean, var, y, gm, gv, {.reduction = Reduction::none, .eps = eps});
  const double d = 0.25, loss = 0.5 * (std::log(eps) + d * d / eps), g_var = 0.5 * (1 - d * d / eps) / eps;
  for (Eigen::Index k = 0; k < 3; ++k) {
    CHECK(r.per_example[k] == Approx(loss).epsilon(1e-6));
    CHECK(static_cast<double>(gm[k]) == Approx(d / eps).epsilon(1e-6));
    CHECK(static_cast<double>(gv[k]) == Approx(g_var).epsilon(1e-6));
  }
}

TEMPLATE_TEST_CASE("gradient buffers may alias their inputs", "[gaussian][alias]", float, double) {
  using T = TestType;
  for (const Setup& s : setups(21, 3)) {
    if (s.var_rows != s.rows || s.var_cols != s.cols) continue;
    INFO(kind_name(s.kind) << " reduction " << static_cast<int>(s.reduction));
    const Problem<T> p = make_problem<T>(s, 13);
    Mat<T> gm(s.rows, s.cols), gv(s.var_rows, s.var_cols);
    const nll::Loss separate = run(s, p, &gm, &gv);
    Problem<T> q = p;
    nll::Loss in_place;
    nll::NllOptions o{.reduction = s.reduction};
    if (!p.weight.empty()) o.weight = p.weight;
    if (!p.mask.empty()) o.mask = p.mask;
    if (!p.upstream.empty()) o.upstream = p.upstream;
    switch (s.kind) {
    case Kind::mse:
      in_place = nll::mse_loss(q.mean, q.target, q.mean,
                               {o.reduction, o.weight, o.mask, o.normalizer, o.empty_mean, o.upstream});
      break;
    case Kind::fixed:
      in_place = nll::gaussian_nll_loss_fixed(
          q.mean, q.target, 0.75, q.mean,
          {o.reduction, o.weight, o.mask, o.normalizer, o.empty_mean, o.upstream, o.weighted_mean, s.full});
      break;
    case Kind::var:
      in_place = nll::gaussian_nll_loss(
          q.mean, q.var, q.target, q.mean, q.var,
          {o.reduction, o.weight, o.mask, o.normalizer, o.empty_mean, o.upstream, o.weighted_mean, s.full, 1e-6});
      break;
    case Kind::logvar:
      in_place = nll::gaussian_nll_loss_logvar(
          q.mean, q.var, q.target, q.mean, q.var,
          {o.reduction, o.weight, o.mask, o.normalizer, o.empty_mean, o.upstream, o.weighted_mean, s.full});
      break;
    }
    CHECK(in_place.value == separate.value);
    CHECK(q.mean == gm);
    if (s.kind == Kind::var || s.kind == Kind::logvar) CHECK(q.var == gv);
  }
}

TEST_CASE("inputs as arrays, blocks with an outer stride and row-major expressions", "[gaussian][layout]") {
  Eigen::MatrixXd big = Eigen::MatrixXd::Random(40, 9), target_big = Eigen::MatrixXd::Random(40, 9);
  const Eigen::MatrixXd mean = big.block(2, 1, 33, 7), target = target_big.block(2, 1, 33, 7);
  const Eigen::VectorXd var = (Eigen::VectorXd::Random(33).array().abs() + 0.1).matrix();
  Eigen::MatrixXd gm(33, 7), gv(33, 1);
  const nll::Loss contiguous = nll::gaussian_nll_loss(mean, var, target, gm, gv);
  Eigen::MatrixXd gm_big = Eigen::MatrixXd::Zero(40, 9);
  Eigen::ArrayXd gv_array(33);
  const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> mean_row_major = mean;
  const nll::Loss strided = nll::gaussian_nll_loss(big.block(2, 1, 33, 7), var.array(), mean_row_major - mean + target,
                                                   gm_big.block(2, 1, 33, 7), gv_array);
  CHECK(strided.value == contiguous.value);
  CHECK(gm_big.block(2, 1, 33, 7) == gm);
  CHECK(gv_array.matrix() == gv);
  CHECK(gm_big.col(0).isZero());
  CHECK(gm_big.row(0).isZero());
  // empty input: a mean over nothing is 0 (EmptyMean::zero), a sum is 0
  const Eigen::MatrixXd empty(0, 3);
  Eigen::MatrixXd g_empty(0, 3);
  CHECK(nll::gaussian_nll_loss(empty, empty, empty).value == 0);
  CHECK(nll::mse_loss(empty, empty, g_empty).value == 0);
  CHECK(std::isnan(nll::mse_loss(empty, empty, {.empty_mean = nll::EmptyMean::nan}).value));
}

// ------------------------------------------------------------------------------------------------
// Errors: exact messages, and nothing written to the gradient buffers.

namespace {

template <class Exception, class Fn> void check_throws(Fn&& fn, const std::string& message) {
  try {
    fn();
    FAIL("no exception; expected: " << message);
  } catch (const Exception& e) {
    CHECK(std::string(e.what()) == message);
  }
}

} // namespace

TEST_CASE("bad input throws with the message grammar and leaves the gradients alone", "[gaussian][errors]") {
  const Eigen::MatrixXd mean = Eigen::MatrixXd::Random(4, 3), target = Eigen::MatrixXd::Random(4, 3);
  const Eigen::MatrixXd var = Eigen::MatrixXd::Constant(4, 3, 0.5);
  Eigen::MatrixXd gm = Eigen::MatrixXd::Constant(4, 3, 7.0), gv = Eigen::MatrixXd::Constant(4, 3, 7.0);
  Eigen::MatrixXd gv_row = Eigen::MatrixXd::Constant(4, 1, 7.0);
  using shape = std::invalid_argument;
  using value = std::domain_error;

  // mse_loss
  check_throws<shape>([&] { nll::mse_loss(mean, target.topRows(3), gm); },
                      "nll::mse_loss: target.rows() is 3, but must be 4 (pred.rows())");
  check_throws<shape>([&] { nll::mse_loss(mean, target, gm.leftCols(2)); },
                      "nll::mse_loss: grad.cols() is 2, but must be 3 (pred.cols())");
  const std::vector<double> short_weight(3, 1.0);
  check_throws<shape>([&] { nll::mse_loss(mean, target, gm, {.weight = short_weight}); },
                      "nll::mse_loss: options.weight.size() is 3, but must be 12 (the number of examples)");
  // gaussian_nll_loss_fixed
  check_throws<value>([&] { nll::gaussian_nll_loss_fixed(mean, target, 0.0, gm); },
                      "nll::gaussian_nll_loss_fixed: sigma is 0, but must be finite and > 0");
  check_throws<value>([&] { nll::gaussian_nll_loss_fixed(mean, target, -2.0); },
                      "nll::gaussian_nll_loss_fixed: sigma is -2, but must be finite and > 0");
  check_throws<value>([&] { nll::gaussian_nll_loss_fixed(mean, target, std::numeric_limits<double>::infinity(), gm); },
                      "nll::gaussian_nll_loss_fixed: sigma is inf, but must be finite and > 0");
  check_throws<shape>([&] { nll::gaussian_nll_loss_fixed(mean, target.leftCols(1), 1.0, gm); },
                      "nll::gaussian_nll_loss_fixed: target.cols() is 1, but must be 3 (mean.cols())");
  // gaussian_nll_loss: negative variance (PyTorch: "var has negative entry/entries"), in every layout
  Eigen::MatrixXd negative = var;
  negative(1, 2) = -0.5;
  check_throws<value>([&] { nll::gaussian_nll_loss(mean, negative, target, gm, gv); },
                      "nll::gaussian_nll_loss: var(1, 2) is -0.5, but must be >= 0");
  check_throws<value>([&] { nll::gaussian_nll_loss(mean, negative, target); },
                      "nll::gaussian_nll_loss: var(1, 2) is -0.5, but must be >= 0");
  Eigen::VectorXd negative_row = Eigen::VectorXd::Constant(4, 1.0);
  negative_row[3] = -1e-30;
  check_throws<value>([&] { nll::gaussian_nll_loss(mean, negative_row, target, gm, gv_row); },
                      "nll::gaussian_nll_loss: var[3] is -1.0000000000000001e-30, but must be >= 0");
  check_throws<value>([&] { nll::gaussian_nll_loss(mean, Eigen::MatrixXd::Constant(1, 1, -1.0), target); },
                      "nll::gaussian_nll_loss: var[0] is -1, but must be >= 0");
  // eps
  check_throws<value>([&] { nll::gaussian_nll_loss(mean, var, target, gm, gv, {.eps = 0.0}); },
                      "nll::gaussian_nll_loss: options.eps is 0, but must be finite and > 0");
  check_throws<value>([&] { nll::gaussian_nll_loss(mean, var, target, {.eps = -1e-6}); },
                      "nll::gaussian_nll_loss: options.eps is -9.9999999999999995e-07, but must be finite and > 0");
  check_throws<value>(
      [&] { nll::gaussian_nll_loss(mean, var, target, gm, gv, {.eps = std::numeric_limits<double>::quiet_NaN()}); },
      "nll::gaussian_nll_loss: options.eps is nan, but must be finite and > 0");
  // shapes
  check_throws<shape>([&] { nll::gaussian_nll_loss(mean, Eigen::MatrixXd::Ones(2, 2), target, gm, gv); },
                      "nll::gaussian_nll_loss: var.shape() is 2x2, but must be 4x3 (mean's shape), 4x1 (one per row), "
                      "1x3 (one per column) or 1x1");
  check_throws<shape>([&] { nll::gaussian_nll_loss(mean, Eigen::MatrixXd::Ones(3, 1), target); },
                      "nll::gaussian_nll_loss: var.shape() is 3x1, but must be 4x3 (mean's shape), 4x1 (one per row), "
                      "1x3 (one per column) or 1x1");
  check_throws<shape>([&] { nll::gaussian_nll_loss(mean, var, target.topRows(2), gm, gv); },
                      "nll::gaussian_nll_loss: target.rows() is 2, but must be 4 (mean.rows())");
  check_throws<shape>([&] { nll::gaussian_nll_loss(mean, var.col(0), target, gm, gv); },
                      "nll::gaussian_nll_loss: grad_var.cols() is 3, but must be 1 (var.cols())");
  check_throws<shape>([&] { nll::gaussian_nll_loss(mean, var, target, gm.topRows(3), gv); },
                      "nll::gaussian_nll_loss: grad_mean.rows() is 3, but must be 4 (mean.rows())");
  check_throws<shape>([&] { nll::gaussian_nll_loss(mean, var, target, gm, gv, {.weight = short_weight}); },
                      "nll::gaussian_nll_loss: options.weight.size() is 3, but must be 12 (the number of examples)");
  // gaussian_nll_loss_logvar
  check_throws<shape>([&] { nll::gaussian_nll_loss_logvar(mean, Eigen::MatrixXd::Ones(1, 2), target, gm, gv); },
                      "nll::gaussian_nll_loss_logvar: log_var.shape() is 1x2, but must be 4x3 (mean's shape), 4x1 (one "
                      "per row), 1x3 (one per column) or 1x1");
  check_throws<shape>([&] { nll::gaussian_nll_loss_logvar(mean, var, target, gm, gv_row); },
                      "nll::gaussian_nll_loss_logvar: grad_log_var.cols() is 1, but must be 3 (log_var.cols())");
  // the driver's checks carry the loss's name
  check_throws<value>([&] { nll::gaussian_nll_loss_logvar(mean, var, target, gm, gv, {.normalizer = -1.0}); },
                      "nll::gaussian_nll_loss_logvar: options.normalizer is -1, but must be finite and > 0");

  CHECK((gm.array() == 7.0).all());
  CHECK((gv.array() == 7.0).all());
  CHECK((gv_row.array() == 7.0).all());
}

TEST_CASE("the fast float log of the fused variance kernel is within 1 ulp", "[gaussian][log]") {
  // Every 61st float from FLT_MIN to FLT_MAX (about 35 million values, every binade and both
  // sides of sqrt(1/2)·2^k), plus every float in [0.99, 1.01], against std::log in double.
  if constexpr (nll::detail::kFastLogFloat && nll::detail::kVectorisedGaussian<float>) {
    using namespace Eigen::internal;
    using Packet = packet_traits<float>::type;
    constexpr int kPacket = packet_traits<float>::size;
    alignas(64) float in[kPacket], out[kPacket];
    double worst = 0;
    float worst_at = 0;
    const auto sweep = [&](std::uint32_t first, std::uint32_t last, std::uint32_t step) {
      for (std::uint32_t bits = first; bits <= last;) {
        for (int l = 0; l < kPacket; ++l, bits = bits + step <= last ? bits + step : last)
          std::memcpy(&in[l], &bits, 4);
        pstore(out, nll::detail::fast_log_positive_float(pload<Packet>(in)));
        for (int l = 0; l < kPacket; ++l) {
          const double exact = std::log(static_cast<double>(in[l]));
          const double ulp = std::max(std::fabs(exact), static_cast<double>(std::numeric_limits<float>::min())) *
                             std::numeric_limits<float>::epsilon();
          const double e = std::fabs(out[l] - exact) / ulp;
          if (e > worst) worst = e, worst_at = in[l];
        }
        if (bits == last) break;
      }
    };
    std::uint32_t lo, hi, one_lo, one_hi;
    const float fmin = std::numeric_limits<float>::min(), fmax = std::numeric_limits<float>::max(), a = 0.99f,
                b = 1.01f;
    std::memcpy(&lo, &fmin, 4);
    std::memcpy(&hi, &fmax, 4);
    std::memcpy(&one_lo, &a, 4);
    std::memcpy(&one_hi, &b, 4);
    sweep(lo, hi, 61);
    sweep(one_lo, one_hi, 1);
    std::printf("fast float log: worst error %.3f eps (relative to |log x|) at x = %.9g\n", worst, worst_at);
    CHECK(worst <= 1.0);
    // +inf and NaN pass through
    for (int l = 0; l < kPacket; ++l)
      in[l] = l % 2 ? std::numeric_limits<float>::infinity() : std::numeric_limits<float>::quiet_NaN();
    pstore(out, nll::detail::fast_log_positive_float(pload<Packet>(in)));
    for (int l = 0; l < kPacket; ++l)
      CHECK((l % 2 ? out[l] == std::numeric_limits<float>::infinity() : std::isnan(out[l])));
  } else {
    SUCCEED("this build uses Eigen's plog for the variance kernel");
  }
}
