// nll tests: parity with torch.nn.functional.cross_entropy, nll_loss and kl_div (torch 1.13, float64)
// on every option the libraries share: reductions, class weights, ignore_index, label smoothing,
// probability targets, an all-ignored batch (torch's NaN = our EmptyMean::nan), kl_div's
// batchmean / sum / mean / none and log_target. Values from scripts/gen_torch_reference_categorical.py
// (tests/data/categorical_torch.txt). Relative tolerances in units of the scalar type's epsilon.
#include <nll/dist/categorical.hpp>

#include <cstdio>
#include <string>

#include "categorical_cases.hpp"
#include "support/catch.hpp"

namespace {

// torch's float64 results are themselves rounded (a few double eps); ours are within 2 eps of the
// mpmath references (test_categorical.cpp).
constexpr long double kBudget = 32;

template <class T> void check_torch(const char* label) {
  const auto cases = nll_test::read_categorical_cases("categorical_torch.txt");
  REQUIRE(cases.size() >= 30);
  long double worst_value = 0, worst_grad = 0;
  for (const auto& k : cases) {
    INFO("torch case " << k.name);
    for (const auto path : {nll_test::CasePath::named, nll_test::CasePath::per_example}) {
      const auto run = nll_test::run_categorical_case<T>(k, path);
      const long double ev = nll_test::error_in_eps<T>(run.with_grad.value, k.value);
      const long double ev0 = nll_test::error_in_eps<T>(run.value_only.value, k.value);
      CHECK(ev <= kBudget);
      CHECK(ev0 <= kBudget);
      worst_value = std::max({worst_value, ev, ev0});
      if (!k.per_example.empty()) {
        for (Eigen::Index i = 0; i < k.n; ++i) {
          const long double e =
              nll_test::error_in_eps<T>(run.with_grad.per_example[i], k.per_example[static_cast<std::size_t>(i)]);
          CHECK(e <= kBudget);
          worst_value = std::max(worst_value, e);
        }
      }
      // torch reports no total weight: use ours for the row scales (its value is checked against
      // mpmath in test_categorical.cpp).
      nll_test::CategoricalCase scaled = k;
      scaled.total_weight = run.with_grad.total_weight;
      const long double eg = nll_test::gradient_error_in_eps<T>(run.grad, k.grad, k.n, k.c, scaled.row_scales());
      CHECK(eg <= kBudget);
      worst_grad = std::max(worst_grad, eg);
    }
  }
  std::printf("categorical vs torch %-6s: worst value %.2Lf eps, gradient %.2Lf eps (%zu cases)\n", label, worst_value,
              worst_grad, cases.size());
}

} // namespace

TEST_CASE("categorical: torch.nn.functional parity in double") { check_torch<double>("double"); }

TEST_CASE("categorical: torch.nn.functional parity in float") { check_torch<float>("float"); }
