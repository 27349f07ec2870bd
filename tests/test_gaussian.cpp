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
    const nll::GaussianNllOptions options{.reduction = Reduction::none, .full = key.second != 0,
                                          .eps = static_cast<double>(key.first)};
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
        INFO("eps " << static_cast<double>(key.first) << " full " << key.second << " mu " << static_cast<double>(mean[j])
                    << " var " << static_cast<double>(var[j]) << " y " << static_cast<double>(y[j]) << " loss "
                    << loss.per_example[j] << " gm " << static_cast<double>(gm[j]) << " gv "
                    << static_cast<double>(gv[j]) << " errors " << static_cast<double>(e_value) << " "
                    << static_cast<double>(e_mean) << " " << static_cast<double>(e_var));
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
    const auto family = kind == "mse" ? nll::GaussianFixedFamily<T>::squared_error()
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
