// nll tests: the categorical family against mpmath references (scripts/gen_reference_categorical.py,
// 50 digits): cross_entropy with every option and their combinations, nll_loss, entropy,
// kl_divergence, kl_div; values, total weights, per-example losses, the per-row outputs and
// gradients; float, double and long double; row-major (fused kernel) and column-major (per-example
// functions) storage; nll::nll_per_example; in-place gradients. Errors are reported in units of
// epsilon of the scalar type against the budgets below.
#include <nll/dist/categorical.hpp>

#include <cstdio>
#include <string>

#include "categorical_cases.hpp"
#include "support/catch.hpp"
#include "support/gradcheck.hpp"

namespace {

using nll_test::CasePath;
using nll_test::CategoricalCase;
using nll_test::error_in_eps;
using nll_test::gradient_error_in_eps;

// Budgets in units of the scalar type's epsilon. The value is relative to |value|; the gradient per
// row relative to the row's scale (see gradient_error_in_eps). Measured worst (AVX-512 build):
// about 2 eps for float and double, 1 for long double; the budget leaves room for other exp
// implementations (Eigen's vectorised float exp is within about 4.5 ulp, GUIDE.md section 2).
// Loss::value is a double, and the driver's per-example gradient factor w_i/D too: long double
// runs are measured in double's epsilon.
template <class T> using value_eps_t = std::conditional_t<std::is_same_v<T, long double>, double, T>;
template <class T> constexpr long double value_budget() { return 16; }
template <class T> constexpr long double grad_budget() { return 16; }

struct Worst {
  long double value = 0, grad = 0, outputs = 0;
  std::string value_case, grad_case;
};

template <class T, int Order> void check_case(const CategoricalCase& k, CasePath path, bool in_place, Worst& worst) {
  INFO("case " << k.name << " (" << k.kind << "), scalar bytes " << sizeof(T) << ", row-major "
               << (Order == Eigen::RowMajor) << ", per-example " << (path == CasePath::per_example) << ", in place "
               << in_place);
  const auto run = nll_test::run_categorical_case<T, Order>(k, path, in_place);
  const long double ev = error_in_eps<value_eps_t<T>>(run.value_only.value, k.value);
  const long double eg = error_in_eps<value_eps_t<T>>(run.with_grad.value, k.value);
  CHECK(ev <= value_budget<T>());
  CHECK(eg <= value_budget<T>());
  if (std::max(ev, eg) > worst.value) {
    worst.value = std::max(ev, eg);
    worst.value_case = k.name;
  }
  CHECK(error_in_eps<double>(run.with_grad.total_weight, k.total_weight) <= 4);
  CHECK(run.value_only.total_weight == run.with_grad.total_weight);
  if (!k.per_example.empty()) {
    REQUIRE(run.with_grad.per_example.size() == k.n);
    for (Eigen::Index i = 0; i < k.n; ++i) {
      const long double e =
          error_in_eps<value_eps_t<T>>(run.with_grad.per_example[i], k.per_example[static_cast<std::size_t>(i)]);
      CHECK(e <= value_budget<T>());
      worst.outputs = std::max(worst.outputs, e);
    }
  }
  if (k.softmax_ce() && path == CasePath::named) { // the named function fills rows not evaluated
    for (Eigen::Index i = 0; i < k.n; ++i) {
      const auto u = static_cast<std::size_t>(i);
      const long double el = error_in_eps<value_eps_t<T>>(run.rowloss[u], k.rowloss[u]);
      const long double es = error_in_eps<value_eps_t<T>>(run.lse[u], k.lse[u]);
      CHECK(el <= value_budget<T>());
      CHECK(es <= value_budget<T>());
      worst.outputs = std::max({worst.outputs, el, es});
    }
  }
  const long double gerr = gradient_error_in_eps<value_eps_t<T>>(run.grad, k.grad, k.n, k.c, k.row_scales());
  CHECK(gerr <= grad_budget<T>());
  if (gerr > worst.grad) {
    worst.grad = gerr;
    worst.grad_case = k.name;
  }
  // −inf logits get exactly zero gradient where the reference is zero, never NaN.
  for (std::size_t j = 0; j < k.x.size(); ++j) {
    if (std::isinf(k.x[j]) && k.grad[j] == 0) CHECK(run.grad[j] == 0);
    if (!std::isnan(k.grad[j])) CHECK(!std::isnan(run.grad[j]));
  }
}

template <class T> void check_all(const char* label) {
  const auto cases = nll_test::read_categorical_cases();
  REQUIRE(cases.size() > 40);
  Worst fused, per_example, column_major;
  for (const auto& k : cases) {
    check_case<T, Eigen::RowMajor>(k, CasePath::named, false, fused);
    check_case<T, Eigen::RowMajor>(k, CasePath::named, true, fused);
    check_case<T, Eigen::RowMajor>(k, CasePath::per_example, false, per_example);
    check_case<T, Eigen::ColMajor>(k, CasePath::named, false, column_major);
  }
  const auto report = [label](const char* path, const Worst& w) {
    std::printf("categorical %-11s %-12s worst value %7.2f eps (%s), gradient %7.2f eps (%s), outputs %7.2f eps\n",
                label, path, static_cast<double>(w.value), w.value_case.c_str(), static_cast<double>(w.grad),
                w.grad_case.c_str(), static_cast<double>(w.outputs));
  };
  report("fused", fused);
  report("per-example", per_example);
  report("col-major", column_major);
}

} // namespace

TEST_CASE("categorical: every reference case in float (fused, in place, per-example, column-major)") {
  check_all<float>("float");
}

TEST_CASE("categorical: every reference case in double") { check_all<double>("double"); }

TEST_CASE("categorical: every reference case in long double") { check_all<long double>("long double"); }

TEST_CASE("categorical: finite differences of every gradient, through the library in long double") {
  // f(x) = the reduced value, evaluated by the library in long double; the analytic long double
  // gradient must agree with an 8th-order central difference to a relative 1e-9 of the row's
  // largest entry (the difference's own error is around 1e-14).
  long double worst = 0;
  std::string worst_case;
  int checked = 0;
  for (const auto& k : nll_test::read_categorical_cases()) {
    if (!k.moderate()) continue;
    const bool empty = k.reduction() == nll::Reduction::mean && k.total_weight == 0;
    if (empty) continue;
    INFO("case " << k.name);
    const auto analytic = nll_test::run_categorical_case<long double>(k).grad;
    std::vector<long double> x0(k.x.begin(), k.x.end());
    for (Eigen::Index i = 0; i < k.n; ++i) {
      long double row_scale = 0;
      for (Eigen::Index j = 0; j < k.c; ++j)
        row_scale = std::max(row_scale, std::fabs(analytic[static_cast<std::size_t>(i * k.c + j)]));
      for (Eigen::Index j = 0; j < k.c; ++j) {
        const std::size_t at = static_cast<std::size_t>(i * k.c + j);
        // Long double inputs: run the case with a long double x vector (x is parsed from double;
        // the perturbations are long double, so evaluate through a dedicated matrix).
        const auto f = [&](const std::vector<long double>& xs) {
          using Mat = Eigen::Matrix<long double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
          Mat x(k.n, k.c);
          for (Eigen::Index a = 0; a < k.n; ++a)
            for (Eigen::Index b = 0; b < k.c; ++b) x(a, b) = xs[static_cast<std::size_t>(a * k.c + b)];
          Mat t;
          if (!k.t.empty()) {
            t.resize(k.n, k.c);
            for (Eigen::Index a = 0; a < k.n; ++a)
              for (Eigen::Index b = 0; b < k.c; ++b)
                t(a, b) = static_cast<long double>(k.t[static_cast<std::size_t>(a * k.c + b)]);
          }
          if (k.kind == "ce") return static_cast<long double>(nll::cross_entropy(x, k.y, k.ce_options()).value);
          if (k.kind == "ce_prob") return static_cast<long double>(nll::cross_entropy(x, t, k.ce_options()).value);
          if (k.kind == "ce_logit")
            return static_cast<long double>(nll::cross_entropy(x, nll::as_logits(t), k.ce_options()).value);
          if (k.kind == "nll") {
            nll::NllLossOptions o;
            k.driver_fields(o);
            if (!k.cw.empty()) o.class_weight = k.cw;
            o.ignore_index = static_cast<std::int64_t>(k.number("ignore_index", -100));
            return static_cast<long double>(nll::nll_loss(x, k.y, o).value);
          }
          if (k.kind == "entropy") {
            nll::EntropyOptions o;
            k.driver_fields(o);
            return static_cast<long double>(nll::entropy(x, o).value);
          }
          if (k.kind == "kl") {
            nll::KlDivergenceOptions o;
            k.driver_fields(o);
            return static_cast<long double>(nll::kl_divergence(t, x, o).value);
          }
          nll::KlDivOptions o;
          k.driver_fields(o);
          o.log_target = k.number("log_target", 0) != 0;
          o.elementwise_mean = k.number("elementwise_mean", 0) != 0;
          return static_cast<long double>(nll::kl_div(x, t, o).value);
        };
        // Loss::value is a double, so the quotients carry its rounding (~1e-16·|f|/h): a step of
        // 3e-3 balances that against the 8th-order truncation error.
        const long double fd = nll_test::central_difference(f, x0, at, 3e-3L);
        const long double err = std::fabs(fd - analytic[at]) / std::max(row_scale, 1e-300L);
        CHECK(err <= 1e-9L);
        if (err > worst) {
          worst = err;
          worst_case = k.name;
        }
        ++checked;
      }
    }
  }
  std::printf("categorical finite differences: %d partial derivatives, worst relative error %.3Le (%s)\n", checked,
              worst, worst_case.c_str());
  CHECK(checked > 500);
}
