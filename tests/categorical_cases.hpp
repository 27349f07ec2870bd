// nll tests: the categorical reference cases (tests/data/categorical_cases.txt, written by
// scripts/gen_reference_categorical.py with mpmath at 50 digits) and a runner that evaluates one
// case through the library for any scalar type and memory layout.
#pragma once

#include <nll/dist/categorical.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "support/reference.hpp"

namespace nll_test {

struct CategoricalCase {
  std::string name, kind;
  Eigen::Index n = 0, c = 0;
  std::map<std::string, std::string> opt;
  std::vector<double> x, t, cw, cm, w;
  std::vector<std::int64_t> y;
  long double value = 0, total_weight = 0;
  std::vector<long double> per_example, rowloss, lse, grad;

  bool has(const std::string& key) const { return opt.count(key) != 0; }
  double number(const std::string& key, double fallback) const {
    auto it = opt.find(key);
    return it == opt.end() ? fallback : std::stod(it->second);
  }
  /// s_i = w_i / D: the driver's factor in front of example i's gradient.
  std::vector<long double> row_scales() const {
    const nll::Reduction r = reduction();
    long double d = 1;
    if (r == nll::Reduction::mean) d = has("normalizer") ? number("normalizer", 1) : total_weight;
    std::vector<long double> s;
    for (Eigen::Index i = 0; i < n; ++i) {
      const long double wi = w.empty() ? 1.0L : w[static_cast<std::size_t>(i)];
      s.push_back(d == 0 ? 0.0L : wi / d);
    }
    return s;
  }
  bool class_index() const { return kind == "ce" || kind == "nll"; }
  bool softmax_ce() const { return kind == "ce" || kind == "ce_prob" || kind == "ce_logit"; }
  /// Every input finite and |x| <= 100: where finite differences are meaningful.
  bool moderate() const {
    for (double v : x)
      if (!std::isfinite(v) || std::fabs(v) > 100) return false;
    return true;
  }

  nll::Reduction reduction() const {
    const std::string r = opt.at("reduction");
    return r == "none" ? nll::Reduction::none : r == "sum" ? nll::Reduction::sum : nll::Reduction::mean;
  }

  template <class Options> void driver_fields(Options& o) const {
    o.reduction = reduction();
    if (!w.empty()) o.weight = w;
    if (has("normalizer")) o.normalizer = number("normalizer", 1);
    if (has("empty_mean") && opt.at("empty_mean") == "nan") o.empty_mean = nll::EmptyMean::nan;
  }

  nll::CrossEntropyOptions ce_options() const {
    nll::CrossEntropyOptions o;
    driver_fields(o);
    if (!cw.empty()) o.class_weight = cw;
    if (!cm.empty()) o.class_mask = cm;
    o.ignore_index = static_cast<std::int64_t>(number("ignore_index", -100));
    o.label_smoothing = number("label_smoothing", 0);
    o.z_loss = number("z_loss", 0);
    o.soft_cap = number("soft_cap", 0);
    o.temperature = number("temperature", 1);
    return o;
  }
};

inline std::vector<CategoricalCase> read_categorical_cases(const std::string& table = "categorical_cases.txt") {
  std::vector<CategoricalCase> cases;
  for (const Record& r : read_table(table)) {
    const std::string& key = r.text(0);
    if (key == "case") {
      CategoricalCase k;
      k.name = r.text(1);
      k.kind = r.text(2);
      k.n = std::stol(r.text(3));
      k.c = std::stol(r.text(4));
      cases.push_back(k);
      continue;
    }
    CategoricalCase& k = cases.back();
    const auto doubles = [&r] {
      std::vector<double> v;
      for (std::size_t j = 1; j < r.size(); ++j) {
        const std::string& f = r.text(j);
        v.push_back(f == "inf"    ? std::numeric_limits<double>::infinity()
                    : f == "-inf" ? -std::numeric_limits<double>::infinity()
                    : f == "nan"  ? std::numeric_limits<double>::quiet_NaN()
                                  : std::stod(f));
      }
      return v;
    };
    const auto longs = [&r] {
      std::vector<long double> v;
      for (std::size_t j = 1; j < r.size(); ++j) v.push_back(r.number(j));
      return v;
    };
    if (key == "opt") {
      k.opt[r.text(1)] = r.text(2);
    } else if (key == "x") {
      k.x = doubles();
    } else if (key == "t") {
      if (k.class_index()) {
        for (std::size_t j = 1; j < r.size(); ++j) k.y.push_back(std::stoll(r.text(j)));
      } else {
        k.t = doubles();
      }
    } else if (key == "cw") {
      k.cw = doubles();
    } else if (key == "cm") {
      k.cm = doubles();
    } else if (key == "w") {
      k.w = doubles();
    } else if (key == "value") {
      k.value = r.number(1);
    } else if (key == "total_weight") {
      k.total_weight = r.number(1);
    } else if (key == "per_example") {
      k.per_example = longs();
    } else if (key == "rowloss") {
      k.rowloss = longs();
    } else if (key == "lse") {
      k.lse = longs();
    } else if (key == "grad") {
      k.grad = longs();
    }
  }
  return cases;
}

/// What one evaluation of a case through the library gives.
struct CategoricalRun {
  nll::Loss value_only;
  nll::Loss with_grad;
  std::vector<long double> grad;
  std::vector<double> lse, rowloss;
};

/// Which path: the named function (fused kernel when eligible) or nll::nll_per_example.
enum class CasePath { named, per_example };

/// Evaluates `k` with logits of scalar type S in a matrix of storage order `Order`. The gradient
/// buffer has the logits' type and layout; when `in_place` it is the logits matrix itself.
template <class S, int Order = Eigen::RowMajor>
CategoricalRun run_categorical_case(const CategoricalCase& k, CasePath path = CasePath::named, bool in_place = false) {
  using Mat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Order>;
  Mat x(k.n, k.c), t;
  for (Eigen::Index i = 0; i < k.n; ++i)
    for (Eigen::Index j = 0; j < k.c; ++j) x(i, j) = static_cast<S>(k.x[static_cast<std::size_t>(i * k.c + j)]);
  if (!k.t.empty()) {
    t.resize(k.n, k.c);
    for (Eigen::Index i = 0; i < k.n; ++i)
      for (Eigen::Index j = 0; j < k.c; ++j) t(i, j) = static_cast<S>(k.t[static_cast<std::size_t>(i * k.c + j)]);
  }
  Mat g(k.n, k.c);
  g.setConstant(static_cast<S>(12345));
  CategoricalRun run;
  run.lse.assign(static_cast<std::size_t>(k.n), -7);
  run.rowloss.assign(static_cast<std::size_t>(k.n), -7);
  const Mat x_copy = x;
  Mat& grad = in_place ? x : g;

  if (k.softmax_ce()) {
    nll::CrossEntropyOptions o = k.ce_options();
    o.outputs.log_sum_exp = run.lse;
    o.outputs.loss = run.rowloss;
    const auto call = [&](auto&& targets) {
      if (path == CasePath::named) {
        run.value_only = nll::cross_entropy(x_copy, targets, o);
        run.with_grad = nll::cross_entropy(x, targets, grad, o);
      } else {
        const nll::Categorical family(o);
        run.value_only = nll::nll_per_example(family, x_copy, targets, nll::driver_options(o));
        run.with_grad = nll::nll_per_example(family, x, targets, grad, nll::driver_options(o));
      }
    };
    if (k.kind == "ce") {
      call(k.y);
    } else if (k.kind == "ce_prob") {
      call(t);
    } else {
      call(nll::as_logits(t));
    }
  } else if (k.kind == "nll") {
    nll::NllLossOptions o;
    k.driver_fields(o);
    if (!k.cw.empty()) o.class_weight = k.cw;
    o.ignore_index = static_cast<std::int64_t>(k.number("ignore_index", -100));
    if (path == CasePath::named) {
      run.value_only = nll::nll_loss(x_copy, k.y, o);
      run.with_grad = nll::nll_loss(x, k.y, grad, o);
    } else {
      const nll::Categorical family(o);
      run.value_only = nll::nll_per_example(family, x_copy, k.y, nll::driver_options(o));
      run.with_grad = nll::nll_per_example(family, x, k.y, grad, nll::driver_options(o));
    }
  } else if (k.kind == "entropy") {
    nll::EntropyOptions o;
    k.driver_fields(o);
    run.value_only = nll::entropy(x_copy, o);
    run.with_grad = nll::entropy(x, grad, o);
  } else if (k.kind == "kl") {
    nll::KlDivergenceOptions o;
    k.driver_fields(o);
    run.value_only = nll::kl_divergence(t, x_copy, o);
    run.with_grad = nll::kl_divergence(t, x, grad, o);
  } else if (k.kind == "kldiv") {
    nll::KlDivOptions o;
    k.driver_fields(o);
    o.log_target = k.number("log_target", 0) != 0;
    o.elementwise_mean = k.number("elementwise_mean", 0) != 0;
    run.value_only = nll::kl_div(x_copy, t, o);
    run.with_grad = nll::kl_div(x, t, grad, o);
  }
  for (Eigen::Index i = 0; i < k.n; ++i)
    for (Eigen::Index j = 0; j < k.c; ++j) run.grad.push_back(static_cast<long double>(grad(i, j)));
  return run;
}

/// The error of a gradient in units of eps of T, per row relative to the row's scale:
/// max_c |g_c − ref_c| / (eps·max(max_c |ref_c|, s_i)), where s_i is the factor the driver puts in
/// front of ∂ℓ_i (w_i / D). ∂ℓ_i/∂x_c is a difference of terms of size s_i (p_c·A − B_c): when the
/// target's probability rounds to 1 in T, its gradient is exactly representable only to eps·s_i,
/// whatever the implementation. Rows with s_i = 0 and an all-zero reference must be exactly zero;
/// NaN must match NaN.
template <class T>
long double gradient_error_in_eps(const std::vector<long double>& g, const std::vector<long double>& ref,
                                  Eigen::Index n, Eigen::Index c, const std::vector<long double>& row_scale) {
  long double worst = 0;
  for (Eigen::Index i = 0; i < n; ++i) {
    long double scale = row_scale[static_cast<std::size_t>(i)];
    for (Eigen::Index j = 0; j < c; ++j) {
      const long double r = ref[static_cast<std::size_t>(i * c + j)];
      if (std::isfinite(r)) scale = std::max(scale, std::fabs(r));
    }
    for (Eigen::Index j = 0; j < c; ++j) {
      const long double a = g[static_cast<std::size_t>(i * c + j)], r = ref[static_cast<std::size_t>(i * c + j)];
      long double e;
      if (std::isnan(r) || std::isnan(a) || std::isinf(r) || std::isinf(a)) {
        e = ((std::isnan(r) && std::isnan(a)) || a == r) ? 0.0L : std::numeric_limits<long double>::infinity();
      } else if (scale == 0) {
        e = a == r ? 0.0L : std::numeric_limits<long double>::infinity();
      } else {
        e = std::fabs(a - r) / (scale * std::numeric_limits<T>::epsilon());
      }
      worst = std::max(worst, e);
    }
  }
  return worst;
}

} // namespace nll_test
