// nll tests: the categorical family's interface and invariants: every integer target type, the
// fused kernel against nll::nll_per_example on batches that cross block boundaries, bfloat16 and
// half logits, the per-row outputs, NaN rows, micro-batches with a normaliser, H(p, q) = H(p) +
// KL(p ‖ q) and KL ≥ 0, a 128256-class vocabulary against mpmath (tests/data/categorical_large.txt),
// and every bad-input message (nothing written to the gradient).
#include <nll/dist/categorical.hpp>
#include <nll/math/softmax.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <limits>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/reference.hpp"

namespace {

template <class S> using RowMat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Logits that are multiples of 1/64 in [-8, 8] (exact in every type, bfloat16 included for
/// |x| < 2 only; the 16-bit tests compare against double on the rounded values).
template <class S> RowMat<S> grid_logits(Eigen::Index n, Eigen::Index c, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(-512, 512);
  RowMat<S> x(n, c);
  for (Eigen::Index i = 0; i < n; ++i)
    for (Eigen::Index j = 0; j < c; ++j) x(i, j) = static_cast<S>(d(rng) / 64.0);
  return x;
}

std::vector<std::int64_t> targets_for(Eigen::Index n, Eigen::Index c, unsigned seed, bool with_ignored) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::int64_t> d(0, c - 1);
  std::vector<std::int64_t> y(static_cast<std::size_t>(n));
  for (Eigen::Index i = 0; i < n; ++i) y[static_cast<std::size_t>(i)] = with_ignored && i % 7 == 3 ? -100 : d(rng);
  return y;
}

/// max over rows of max_c |a − b| / max(max_c |b|, floor), in units of eps.
template <class A, class B> double row_error(const A& a, const B& b, double eps, double floor) {
  double worst = 0;
  for (Eigen::Index i = 0; i < a.rows(); ++i) {
    double scale = floor;
    for (Eigen::Index j = 0; j < a.cols(); ++j) scale = std::max(scale, std::fabs(static_cast<double>(b(i, j))));
    for (Eigen::Index j = 0; j < a.cols(); ++j) {
      const double e = std::fabs(static_cast<double>(a(i, j)) - static_cast<double>(b(i, j))) / (scale * eps);
      worst = std::max(worst, std::isnan(e) ? std::numeric_limits<double>::infinity() : e);
    }
  }
  return worst;
}

double rel(double a, double b) { return std::fabs(a - b) / std::max(std::fabs(b), 1e-300); }

/// Row i's loss in r equals the other results' to 1e-6 relative (NaN and ±inf exactly).
void check_row_losses_agree(const nll::Loss& r, std::initializer_list<const nll::Loss*> others, Eigen::Index i) {
  for (const nll::Loss* other : others) {
    const double a = r.per_example[i], b = other->per_example[i];
    if (std::isnan(b) || std::isinf(b)) {
      CHECK(((std::isnan(a) && std::isnan(b)) || a == b));
    } else {
      CHECK(rel(a, b) < 1e-6);
    }
  }
}

} // namespace

TEST_CASE("categorical: every integer target type gives the same loss and gradient") {
  const RowMat<float> x = grid_logits<float>(6, 5, 1);
  const std::vector<std::int64_t> y64 = {0, 4, 2, -100, 1, 3};
  const std::vector<int> y32(y64.begin(), y64.end());
  Eigen::VectorXi yi(6);
  Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1> yl(6);
  for (int i = 0; i < 6; ++i) {
    yi[i] = y32[static_cast<std::size_t>(i)];
    yl[i] = y64[static_cast<std::size_t>(i)];
  }
  const nll::CrossEntropyOptions o{.label_smoothing = 0.125};
  RowMat<float> g0(6, 5), g1(6, 5), g2(6, 5), g3(6, 5), g4(6, 5);
  const double v0 = nll::cross_entropy(x, y64, g0, o).value;
  CHECK(nll::cross_entropy(x, y32, g1, o).value == v0);
  CHECK(nll::cross_entropy(x, yi, g2, o).value == v0);
  CHECK(nll::cross_entropy(x, yl, g3, o).value == v0);
  CHECK(nll::cross_entropy(x, std::span<const int>(y32), g4, o).value == v0);
  CHECK(g0 == g1);
  CHECK(g0 == g2);
  CHECK(g0 == g3);
  CHECK(g0 == g4);
  // An Eigen expression of integers (a segment) and a Map work too.
  Eigen::VectorXi longer(8);
  longer << 9, yi, 9;
  CHECK(nll::cross_entropy(x, longer.segment(1, 6), o).value == v0);
  CHECK(nll::cross_entropy(x, Eigen::Map<const Eigen::VectorXi>(yi.data(), 6), o).value == v0);
  // A gradient into a block of a larger matrix, and column-major logits.
  RowMat<float> big = RowMat<float>::Zero(8, 5);
  nll::cross_entropy(x, y64, big.middleRows(1, 6), o);
  CHECK(big.middleRows(1, 6) == g0);
  CHECK(big.row(0).isZero());
  const Eigen::MatrixXf xc = x;
  Eigen::MatrixXf gc(6, 5);
  CHECK(rel(nll::cross_entropy(xc, y64, gc, o).value, v0) < 1e-6);
  CHECK(row_error(gc, g0, 1.0, 1e-30) < 1e-6);
}

TEST_CASE("categorical: the fused kernel equals nll_per_example across blocks and options") {
  // 2500 rows cross the driver's 1024-row blocks; options the fused kernel handles itself
  // (class-index targets, class weights, smoothing, z-loss, temperature, per-example weights)
  // and ones it hands to the per-example function (soft-cap, class mask, smoothing + weights).
  const Eigen::Index n = 2500, c = 37;
  const RowMat<float> xf = grid_logits<float>(n, c, 2);
  const RowMat<double> xd = xf.cast<double>();
  const auto y = targets_for(n, c, 3, true);
  std::vector<double> cw(static_cast<std::size_t>(c)), w(static_cast<std::size_t>(n)),
      mask(static_cast<std::size_t>(c), 1.0);
  for (Eigen::Index j = 0; j < c; ++j) cw[static_cast<std::size_t>(j)] = 0.25 + 0.125 * static_cast<double>(j % 9);
  for (Eigen::Index i = 0; i < n; ++i)
    w[static_cast<std::size_t>(i)] = i % 11 == 0 ? 0.0 : 0.5 + 0.25 * static_cast<double>(i % 5);
  std::vector<nll::CrossEntropyOptions> all = {
      {},
      {.reduction = nll::Reduction::sum, .class_weight = cw},
      {.weight = w, .class_weight = cw, .z_loss = 1e-3, .temperature = 0.75},
      {.label_smoothing = 0.1, .z_loss = 1e-4, .temperature = 2.0},
      {.reduction = nll::Reduction::none, .weight = w, .label_smoothing = 0.2},
      {.class_weight = cw, .label_smoothing = 0.1, .soft_cap = 5.0},
      {.normalizer = 4096.0, .z_loss = 1e-2},
  };
  double worst_value = 0, worst_grad_f = 0, worst_grad_d = 0;
  for (const auto& o : all) {
    RowMat<float> gf(n, c), gf_ref(n, c);
    RowMat<double> gd(n, c), gd_ref(n, c);
    const nll::Categorical family(o);
    const auto rf = nll::cross_entropy(xf, y, gf, o);
    const auto rf_ref = nll::nll_per_example(family, xf, y, gf_ref, nll::driver_options(o));
    const auto rd = nll::cross_entropy(xd, y, gd, o);
    const auto rd_ref = nll::nll_per_example(family, xd, y, gd_ref, nll::driver_options(o));
    worst_value = std::max({worst_value, rel(rf.value, rf_ref.value) / 1.2e-7, rel(rd.value, rd_ref.value) / 2.2e-16});
    CHECK(rel(rf.value, rf_ref.value) < 8 * 1.2e-7);
    CHECK(rel(rd.value, rd_ref.value) < 64 * 2.2e-16);
    CHECK(rf.total_weight == rf_ref.total_weight);
    CHECK(nll::cross_entropy(xf, y, o).value == rf.value); // value-only fused kernel, same sum
    // Per row, relative to the row's gradient scale (at least 0.25·w_i/D, the smallest class
    // weight times the driver's factor): a target whose probability is near 1 has p_y·A − B_y
    // cancel, and the two paths use different exp implementations.
    const double d = o.reduction != nll::Reduction::mean ? 1.0 : o.normalizer ? *o.normalizer : rf.total_weight;
    const double floor = 0.25 / d;
    const double ef = row_error(gf, gf_ref, std::numeric_limits<float>::epsilon(), floor);
    const double ed = row_error(gd, gd_ref, std::numeric_limits<double>::epsilon(), floor);
    CHECK(ef <= 16);
    CHECK(ed <= 16);
    worst_grad_f = std::max(worst_grad_f, ef);
    worst_grad_d = std::max(worst_grad_d, ed);
    if (o.reduction == nll::Reduction::none) {
      for (Eigen::Index i = 0; i < n; ++i) CHECK(rel(rf.per_example[i], rf_ref.per_example[i]) < 8 * 1.2e-7 + 1e-300);
    }
  }
  std::printf("categorical fused vs per-example: value %.2f eps, gradient float %.2f eps, double %.2f eps\n",
              worst_value, worst_grad_f, worst_grad_d);
}

TEST_CASE("categorical: bfloat16 and half logits accumulate in float and write their own type") {
  const Eigen::Index n = 40, c = 3000;
  const RowMat<float> x0 = grid_logits<float>(n, c, 4);
  const auto y = targets_for(n, c, 5, true);
  const nll::CrossEntropyOptions o{.z_loss = 1e-4};
  const auto check_type = [&](auto tag, double type_eps) {
    using S = decltype(tag);
    const RowMat<S> x = x0.cast<S>();
    const RowMat<double> xd = x.template cast<double>(); // the same (rounded) inputs, in double
    RowMat<S> g(n, c);
    RowMat<double> gd(n, c);
    const auto r = nll::cross_entropy(x, y, g, o);
    const auto rd = nll::cross_entropy(xd, y, gd, o);
    // The value is accumulated in float/double: far better than the type's own epsilon.
    CHECK(rel(r.value, rd.value) < 1e-5);
    // The gradient is within one rounding of the 16-bit type (normwise per row).
    CHECK(row_error(g, gd, type_eps, 1e-30) <= 1.0);
    // In place over the logits, and the per-example path, agree with it.
    RowMat<S> inplace = x;
    const auto ri = nll::cross_entropy(inplace, y, inplace, o);
    CHECK(ri.value == r.value);
    CHECK(row_error(inplace, g, type_eps, 1e-30) == 0);
    RowMat<S> gp(n, c);
    const auto rp = nll::nll_per_example(nll::Categorical(o), x, y, gp, nll::driver_options(o));
    CHECK(rel(rp.value, r.value) < 1e-6);
    CHECK(row_error(gp, g, type_eps, 1e-30) <= 1.0);
  };
  check_type(Eigen::bfloat16(0), 1.0 / 256);
  check_type(Eigen::half(0), 1.0 / 2048);
}

TEST_CASE("categorical: per-row outputs (log-sum-exp, argmax, accuracy, loss)") {
  RowMat<float> x(4, 3);
  x << 1, 3, 2,   //
      5, 0, 5,    // two maxima: the first is the argmax
      -1, -2, -3, //
      0, 0, 1;
  const std::vector<int> y = {1, 2, -100, 0};
  std::vector<double> lse(4), loss(4);
  std::vector<std::int64_t> arg(4);
  std::vector<std::uint8_t> hit(4);
  const nll::CrossEntropyOptions o{
      .reduction = nll::Reduction::sum,
      .outputs = {.log_sum_exp = lse, .argmax = arg, .target_is_argmax = hit, .loss = loss}};
  RowMat<float> g(4, 3);
  const auto r = nll::cross_entropy(x, y, g, o);
  CHECK(arg == std::vector<std::int64_t>{1, 0, -1, 2});
  CHECK(hit == std::vector<std::uint8_t>{1, 0, 0, 0});
  CHECK(std::isnan(lse[2]));
  CHECK(loss[2] == 0);
  // lse and ℓ against std::log/std::exp in long double on these small rows.
  const auto lse_ref = [&](int i) {
    long double s = 0;
    for (int j = 0; j < 3; ++j) s += std::exp(static_cast<long double>(x(i, j)));
    return std::log(s);
  };
  for (int i : {0, 1, 3}) {
    CHECK(rel(lse[static_cast<std::size_t>(i)], static_cast<double>(lse_ref(i))) < 1e-6);
    CHECK(rel(loss[static_cast<std::size_t>(i)],
              static_cast<double>(lse_ref(i) - x(i, y[static_cast<std::size_t>(i)]))) < 1e-6);
  }
  CHECK(rel(r.value, loss[0] + loss[1] + loss[3]) < 1e-12);
  // Probability targets: target_is_argmax compares with the most probable class.
  RowMat<float> q(4, 3);
  q << 0, 1, 0, 0.5, 0.25, 0.25, 0, 0, 1, 0.25, 0.5, 0.25;
  nll::cross_entropy(x, q, nll::CrossEntropyOptions{.outputs = {.target_is_argmax = hit}});
  CHECK(hit == std::vector<std::uint8_t>{1, 1, 0, 0});
  // A mean over nothing returns early: every row gets the "not evaluated" outputs.
  const std::vector<int> none = {-100, -100, -100, -100};
  nll::cross_entropy(x, none, nll::CrossEntropyOptions{.outputs = {.log_sum_exp = lse, .argmax = arg}});
  CHECK(arg == std::vector<std::int64_t>{-1, -1, -1, -1});
  CHECK(std::isnan(lse[0]));
}

TEST_CASE("categorical: NaN stays in its row; -inf logits never make NaN") {
  RowMat<float> x(3, 4);
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  x << 1, nan, 2, 0, -inf, 0.5f, -inf, -inf, 3, 1, 2, -inf;
  RowMat<float> g(3, 4);
  const auto r = nll::cross_entropy(x, std::vector<int>{0, 1, 2}, g, {.reduction = nll::Reduction::none});
  CHECK(std::isnan(r.per_example[0]));
  CHECK(r.per_example[1] == 0); // the only finite logit is the target: p = 1 exactly
  CHECK(std::isfinite(r.per_example[2]));
  CHECK(g.row(0).array().isNaN().all());
  CHECK(g(1, 0) == 0);
  CHECK(g(1, 1) == 0);
  CHECK(g(2, 3) == 0);
  CHECK(!g.bottomRows(2).array().isNaN().any());
  // A NaN logit of a masked class is not looked at.
  const std::vector<double> keep = {1, 0, 1, 1};
  const auto rm = nll::cross_entropy(x.topRows(1), std::vector<int>{0}, {.class_mask = keep});
  CHECK(std::isfinite(rm.value));
}

TEST_CASE("categorical: micro-batches with a global normaliser add up to the full mean") {
  const Eigen::Index n = 64, c = 11;
  const RowMat<double> x = grid_logits<double>(n, c, 6);
  const auto y = targets_for(n, c, 7, true);
  std::vector<double> cw(static_cast<std::size_t>(c), 1.0);
  cw[3] = 2.5;
  cw[5] = 0.5;
  RowMat<double> g(n, c), g1(32, c), g2(32, c);
  const auto full = nll::cross_entropy(x, y, g, {.class_weight = cw});
  const std::vector<std::int64_t> y1(y.begin(), y.begin() + 32), y2(y.begin() + 32, y.end());
  const auto a = nll::cross_entropy(x.topRows(32), y1, g1, {.reduction = nll::Reduction::sum, .class_weight = cw});
  const auto b = nll::cross_entropy(x.bottomRows(32), y2, g2, {.reduction = nll::Reduction::sum, .class_weight = cw});
  CHECK(a.total_weight + b.total_weight == full.total_weight);
  CHECK(rel((a.value + b.value) / full.total_weight, full.value) < 1e-14);
  const auto an = nll::cross_entropy(x.topRows(32), y1, g1, {.normalizer = full.total_weight, .class_weight = cw});
  const auto bn = nll::cross_entropy(x.bottomRows(32), y2, g2, {.normalizer = full.total_weight, .class_weight = cw});
  CHECK(rel(an.value + bn.value, full.value) < 1e-14);
  CHECK(row_error(g1, g.topRows(32), 2.2e-16, 1e-300) <= 4);
  CHECK(row_error(g2, g.bottomRows(32), 2.2e-16, 1e-300) <= 4);
}

TEST_CASE("categorical: H(p, q) = H(p) + KL(p || q), KL >= 0, and the three ways to give p") {
  const Eigen::Index n = 50, c = 17;
  const RowMat<double> p_logits = grid_logits<double>(n, c, 8);
  RowMat<double> q_logits = grid_logits<double>(n, c, 9);
  q_logits.row(3) = p_logits.row(3); // KL = 0 exactly there
  const RowMat<double> p = nll::softmax_rows(p_logits);
  const nll::EntropyOptions none{.reduction = nll::Reduction::none};
  const auto h = nll::entropy(p_logits, none);
  const auto kl = nll::kl_divergence(p_logits, q_logits, none);
  const auto hpq = nll::cross_entropy(q_logits, nll::as_logits(p_logits), {.reduction = nll::Reduction::none});
  const auto hpq_probs = nll::cross_entropy(q_logits, p, {.reduction = nll::Reduction::none});
  const auto kl_torch = nll::kl_div(nll::log_softmax_rows(q_logits), p, {.reduction = nll::Reduction::none});
  double worst = 0;
  for (Eigen::Index i = 0; i < n; ++i) {
    CHECK(kl.per_example[i] >= 0);
    const double e = rel(h.per_example[i] + kl.per_example[i], hpq.per_example[i]);
    worst = std::max(worst, e);
    CHECK(e < 1e-14);
    CHECK(rel(hpq_probs.per_example[i], hpq.per_example[i]) < 1e-14);
    CHECK(std::fabs(kl_torch.per_example[i] - kl.per_example[i]) < 1e-14 * std::max(1.0, h.per_example[i]));
  }
  CHECK(std::fabs(kl.per_example[3]) < 1e-15);
  // Their gradients with respect to the q logits agree too: ∂H(p,q) = ∂KL(p‖q) = q − p.
  RowMat<double> g1(n, c), g2(n, c);
  nll::kl_divergence(p_logits, q_logits, g1);
  nll::cross_entropy(q_logits, nll::as_logits(p_logits), g2);
  CHECK(row_error(g1, g2, 2.2e-16, 1.0 / n) <= 8); // relative to the row scale 1/n (row 3 is all zero)
  std::printf("categorical H(p,q) = H(p) + KL: worst relative difference %.3e\n", worst);
}

TEST_CASE("categorical: a 128256-class vocabulary against mpmath (tests/data/categorical_large.txt)") {
  const auto table = nll_test::read_table("categorical_large.txt");
  REQUIRE(table[0].text(0) == "large");
  const Eigen::Index n = std::stol(table[0].text(1)), c = std::stol(table[0].text(2));
  // x[i][c] = (((i·7919 + c·104729) mod 2039) − 1019)/64, as in scripts/gen_reference_categorical.py
  RowMat<float> x(n, c);
  for (Eigen::Index i = 0; i < n; ++i)
    for (Eigen::Index j = 0; j < c; ++j)
      x(i, j) = static_cast<float>(static_cast<double>((i * 7919 + j * 104729) % 2039 - 1019) / 64.0);
  std::vector<std::int64_t> y;
  std::vector<long double> lse_ref, loss_ref;
  long double value_ref = 0;
  std::vector<std::tuple<Eigen::Index, Eigen::Index, long double>> grad_ref;
  for (const auto& r : table) {
    if (r.text(0) == "t")
      for (std::size_t k = 1; k < r.size(); ++k) y.push_back(std::stoll(r.text(k)));
    if (r.text(0) == "lse")
      for (std::size_t k = 1; k < r.size(); ++k) lse_ref.push_back(r.number(k));
    if (r.text(0) == "rowloss")
      for (std::size_t k = 1; k < r.size(); ++k) loss_ref.push_back(r.number(k));
    if (r.text(0) == "value") value_ref = r.number(1);
    if (r.text(0) == "gradat") grad_ref.emplace_back(std::stol(r.text(1)), std::stol(r.text(2)), r.number(3));
  }
  const auto check_type = [&](auto tag, const char* label) {
    using S = decltype(tag);
    using Eps = S;
    const RowMat<S> xs = x.cast<S>();
    RowMat<S> g(n, c), gp(n, c);
    std::vector<double> lse(static_cast<std::size_t>(n)), loss(static_cast<std::size_t>(n));
    const nll::CrossEntropyOptions o{.outputs = {.log_sum_exp = lse, .loss = loss}};
    const auto r = nll::cross_entropy(xs, y, g, o);
    const auto rp = nll::nll_per_example(nll::Categorical(o), xs, y, gp, nll::driver_options(o));
    long double worst = nll_test::error_in_eps<Eps>(r.value, value_ref);
    worst = std::max(worst, nll_test::error_in_eps<Eps>(rp.value, value_ref));
    for (Eigen::Index i = 0; i < n; ++i) {
      worst = std::max(
          worst, nll_test::error_in_eps<Eps>(lse[static_cast<std::size_t>(i)], lse_ref[static_cast<std::size_t>(i)]));
      worst = std::max(
          worst, nll_test::error_in_eps<Eps>(loss[static_cast<std::size_t>(i)], loss_ref[static_cast<std::size_t>(i)]));
    }
    long double worst_grad = 0;
    for (const auto& [i, j, ref] : grad_ref) {
      // relative to the row's scale 1/n (the target entry is about −1/n)
      const long double scale = std::max(std::fabs(ref), 1.0L / static_cast<long double>(n));
      const long double e1 =
          std::fabs(static_cast<long double>(g(i, j)) - ref) / (scale * std::numeric_limits<Eps>::epsilon());
      const long double e2 =
          std::fabs(static_cast<long double>(gp(i, j)) - ref) / (scale * std::numeric_limits<Eps>::epsilon());
      worst_grad = std::max({worst_grad, e1, e2});
      // and relative to the entry itself where it is a normal number of the type
      if (std::fabs(ref) > static_cast<long double>(std::numeric_limits<S>::min()) * 1e6L)
        CHECK(std::fabs(static_cast<long double>(g(i, j)) - ref) / std::fabs(ref) <
              64 * std::numeric_limits<Eps>::epsilon());
    }
    CHECK(worst <= 16);
    CHECK(worst_grad <= 8);
    std::printf("categorical vocabulary 128256 %-6s: worst value/lse/loss %.2Lf eps, gradient %.2Lf eps\n", label,
                worst, worst_grad);
  };
  check_type(0.0f, "float");
  check_type(0.0, "double");
}

TEST_CASE("categorical: bad input throws with the message grammar and writes nothing") {
  const RowMat<float> x = grid_logits<float>(4, 5, 10);
  const std::vector<int> y = {0, 1, 2, 3};
  RowMat<float> g = RowMat<float>::Constant(4, 5, 7.0f);
  const auto expect = [&](auto&& call, const std::string& message, bool shape) {
    g.setConstant(7.0f);
    try {
      call();
      FAIL("no exception; expected: " << message);
    } catch (const std::invalid_argument& e) {
      CHECK(shape);
      CHECK(std::string(e.what()) == message);
    } catch (const std::domain_error& e) {
      CHECK(!shape);
      CHECK(std::string(e.what()) == message);
    }
    CHECK((g.array() == 7.0f).all());
  };
  using O = nll::CrossEntropyOptions;
  expect(
      [&] {
        nll::cross_entropy(x, std::vector<int>{0, 5, 2, 3}, g);
      },
      "nll::cross_entropy: targets[1] is 5, but must be in [0, 5) or equal to options.ignore_index (-100)", false);
  expect(
      [&] {
        nll::cross_entropy(x, std::vector<int>{-1, 0, 2, 3}, g);
      },
      "nll::cross_entropy: targets[0] is -1, but must be in [0, 5) or equal to options.ignore_index (-100)", false);
  expect(
      [&] {
        nll::cross_entropy(x, std::vector<int>{-100, 0, 2, 3}, g, O{.ignore_index = 4});
      },
      "nll::cross_entropy: targets[0] is -100, but must be in [0, 5) or equal to options.ignore_index (4)", false);
  expect(
      [&] {
        nll::cross_entropy(x, std::vector<int>{0, 1, 2}, g);
      },
      "nll::cross_entropy: targets.size() is 3, but must be 4 (logits.rows())", true);
  const std::vector<double> w4 = {1, 1, 1, 1}, wneg = {1, 1, -0.5, 1, 1}, wnan = {1, 1, 1, 1, std::nan("")};
  expect([&] { nll::cross_entropy(x, y, g, O{.class_weight = w4}); },
         "nll::cross_entropy: options.class_weight.size() is 4, but must be 5 (the number of classes)", true);
  expect([&] { nll::cross_entropy(x, y, g, O{.class_weight = wneg}); },
         "nll::cross_entropy: options.class_weight[2] is -0.5, but must be finite and >= 0", false);
  expect([&] { nll::cross_entropy(x, y, g, O{.class_weight = wnan}); },
         "nll::cross_entropy: options.class_weight[4] is nan, but must be finite and >= 0", false);
  expect([&] { nll::cross_entropy(x, y, g, O{.label_smoothing = 1.5}); },
         "nll::cross_entropy: options.label_smoothing is 1.5, but must be in [0, 1]", false);
  expect([&] { nll::cross_entropy(x, y, g, O{.label_smoothing = -0.25}); },
         "nll::cross_entropy: options.label_smoothing is -0.25, but must be in [0, 1]", false);
  expect([&] { nll::cross_entropy(x, y, g, O{.z_loss = -1}); },
         "nll::cross_entropy: options.z_loss is -1, but must be finite and >= 0", false);
  expect([&] { nll::cross_entropy(x, y, g, O{.soft_cap = -1}); },
         "nll::cross_entropy: options.soft_cap is -1, but must be finite and >= 0 (0 turns it off)", false);
  expect([&] { nll::cross_entropy(x, y, g, O{.temperature = 0}); },
         "nll::cross_entropy: options.temperature is 0, but must be finite and > 0", false);
  expect([&] { nll::cross_entropy(x, y, g, O{.temperature = -2}); },
         "nll::cross_entropy: options.temperature is -2, but must be finite and > 0", false);
  const std::vector<double> mask = {1, 1, 0, 1, 1}, mask_bad = {1, 1, 0.5, 1, 1}, mask_none = {0, 0, 0, 0, 0};
  expect([&] { nll::cross_entropy(x, y, g, O{.class_mask = mask}); },
         "nll::cross_entropy: targets[2] is 2, but must be a class options.class_mask keeps", false);
  expect([&] { nll::cross_entropy(x, y, g, O{.class_mask = mask_bad}); },
         "nll::cross_entropy: options.class_mask[2] is 0.5, but must be 0 or 1", false);
  expect([&] { nll::cross_entropy(x, y, g, O{.class_mask = mask_none}); },
         "nll::cross_entropy: the number of classes options.class_mask keeps is 0, but must be >= 1", false);
  const RowMat<float> empty(4, 0);
  RowMat<float> g_empty(4, 0);
  expect([&] { nll::cross_entropy(empty, y, g_empty); },
         "nll::cross_entropy: logits.cols() is 0, but must be >= 1 (classes)", true);
  RowMat<float> g_small(3, 5);
  expect([&] { nll::cross_entropy(x, y, g_small); },
         "nll::cross_entropy: grad.rows() is 3, but must be 4 (logits.rows())", true);
  // probability targets
  RowMat<float> q = RowMat<float>::Constant(4, 5, 0.2f);
  const RowMat<float> q_short = RowMat<float>::Constant(3, 5, 0.2f);
  expect([&] { nll::cross_entropy(x, q_short, g); },
         "nll::cross_entropy: targets.rows() is 3, but must be 4 (logits.rows())", true);
  q(1, 2) = -0.25f;
  expect([&] { nll::cross_entropy(x, q, g); },
         "nll::cross_entropy: targets(1, 2) is -0.25, but must be >= 0 (a probability)", false);
  q(1, 2) = 0.2f;
  expect([&] { nll::cross_entropy(x, q, g, O{.class_mask = mask}); },
         "nll::cross_entropy: targets(0, 2) is 0.200000003, but must be 0 (class 2 is masked)", false);
  expect([&] { nll::cross_entropy(x, q, g, O{.ignore_index = 0}); },
         "nll::cross_entropy: options.ignore_index is 0, but must be negative with probability targets (ignore_index "
         "applies to class indices only)",
         false);
  // outputs of the wrong length, and the driver's own checks carry the loss's name
  std::vector<double> lse3(3);
  expect([&] { nll::cross_entropy(x, y, g, O{.outputs = {.log_sum_exp = lse3}}); },
         "nll::cross_entropy: options.outputs.log_sum_exp.size() is 3, but must be 4 (the number of examples)", true);
  const std::vector<double> w3 = {1, 1, 1};
  expect([&] { nll::cross_entropy(x, y, g, O{.weight = w3}); },
         "nll::cross_entropy: options.weight.size() is 3, but must be 4 (the number of examples)", true);
  // nll_loss, entropy, kl_divergence and kl_div name themselves and their arguments
  expect(
      [&] {
        nll::nll_loss(x, std::vector<int>{0, 1, 7, 3}, g);
      },
      "nll::nll_loss: targets[2] is 7, but must be in [0, 5) or equal to options.ignore_index (-100)", false);
  expect(
      [&] {
        nll::nll_loss(x, std::vector<int>{0, 1}, g);
      },
      "nll::nll_loss: targets.size() is 2, but must be 4 (log_probs.rows())", true);
  expect([&] { nll::entropy(x, g_small); }, "nll::entropy: grad.rows() is 3, but must be 4 (logits.rows())", true);
  expect([&] { nll::kl_divergence(q_short, x, g); },
         "nll::kl_divergence: p_logits.rows() is 3, but must be 4 (q_logits.rows())", true);
  q(3, 4) = -1;
  expect([&] { nll::kl_div(x, q, g); },
         "nll::kl_div: target(3, 4) is -1, but must be >= 0 (a probability; use log_target for log-probabilities)",
         false);
}

TEST_CASE("categorical: the fused kernel's blocks: late maxima, NaN, +inf and -inf in later blocks, in place") {
  // 5000 classes = several blocks of the fused kernel (five of 1024 at most): the running maximum
  // is raised in a later block (the earlier blocks' exponentials are rescaled), and non-finite
  // values appear after earlier blocks were already exponentiated. Every row must match the
  // per-example function.
  const Eigen::Index n = 8, c = 5000;
  static_assert(c / nll::detail::kFusedBlock >= 2); // three blocks at least
  RowMat<float> x = grid_logits<float>(n, c, 11);
  const float inf = std::numeric_limits<float>::infinity();
  x(1, 4500) = 60;            // the maximum in the last block, far above the rest
  x(2, 3000) = std::nanf(""); // NaN in the second block
  x(3, 4999) = inf;           // +inf in the last block
  x.row(4).setConstant(-inf); // every logit −inf except the target, in the last block
  x(4, 4321) = 1.5f;
  x(5, 100) = -inf; // −inf in the first block, maximum in the second
  x(5, 2100) = 40;
  x(6, 0) = 30; // the maximum in the first block, equal maxima later
  x(6, 4000) = 30;
  const std::vector<int> y = {0, 4500, 7, 8, 4321, 2100, 4000, 2047};
  for (const double eps : {0.0, 0.1}) {
    const nll::CrossEntropyOptions o{.reduction = nll::Reduction::none, .label_smoothing = eps, .z_loss = 1e-3};
    RowMat<float> g(n, c), gp(n, c), inplace = x;
    std::vector<std::int64_t> arg(static_cast<std::size_t>(n)), arg_inplace(static_cast<std::size_t>(n));
    nll::CrossEntropyOptions with_outputs = o, with_outputs_inplace = o;
    with_outputs.outputs.argmax = arg;
    with_outputs_inplace.outputs.argmax = arg_inplace;
    const auto r = nll::cross_entropy(x, y, g, with_outputs);
    const auto rp = nll::nll_per_example(nll::Categorical(o), x, y, gp, nll::driver_options(o));
    const auto ri = nll::cross_entropy(inplace, y, inplace, with_outputs_inplace);
    const auto rv = nll::cross_entropy(x, y, o);
    for (Eigen::Index i = 0; i < n; ++i) {
      INFO("row " << i << ", smoothing " << eps);
      check_row_losses_agree(r, {&rp, &ri, &rv}, i);
      for (Eigen::Index j = 0; j < c; ++j) {
        const float a = g(i, j), b = gp(i, j), d = inplace(i, j);
        if (std::isnan(b)) {
          CHECK(std::isnan(a));
          CHECK(std::isnan(d));
        } else {
          // (in place, the row maximum is known before the blocked pass; otherwise earlier blocks
          // are rescaled when it rises: the same numbers up to rounding)
          CHECK(std::fabs(a - b) <= 1e-6f * (1 + std::fabs(b)));
          CHECK(std::fabs(d - b) <= 1e-6f * (1 + std::fabs(b)));
        }
      }
    }
    CHECK(std::isnan(r.per_example[2]));
    // p = 1 exactly (the only finite logit is the target): only the z-loss λ·lse² remains, or +inf
    // with smoothing (mass on classes of probability 0)
    if (eps == 0) {
      CHECK(rel(r.per_example[4], 1e-3 * 1.5 * 1.5) < 1e-12);
    } else {
      CHECK(r.per_example[4] == std::numeric_limits<double>::infinity());
    }
    CHECK(arg[1] == 4500);
    CHECK(arg[5] == 2100);
    CHECK(arg[6] == 0);
    CHECK(arg == arg_inplace);
    if (eps == 0) CHECK(g(5, 100) == 0); // −inf logit: zero gradient (with smoothing −ε/C: finite)
  }
}

TEST_CASE("categorical: the fused kernel's blocks in bfloat16: late maxima, NaN, +inf and -inf, in place") {
  // The same edge cases as above with bfloat16 logits (with AVX-512 BW/VL the kernel reads them
  // directly and widens in registers; 5000 classes also leave masked tails of 8 lanes), against the
  // per-example function on the same bfloat16 input: within one bfloat16 rounding of each entry.
  const Eigen::Index n = 8, c = 5000;
  using bf16 = Eigen::bfloat16;
  RowMat<float> x = grid_logits<float>(n, c, 12);
  const float inf = std::numeric_limits<float>::infinity();
  x(1, 4500) = 60;
  x(2, 3000) = std::nanf("");
  x(3, 4999) = inf;
  x.row(4).setConstant(-inf);
  x(4, 4321) = 1.5f;
  x(5, 100) = -inf;
  x(5, 2100) = 40;
  x(6, 0) = 30;
  x(6, 4000) = 30;
  const RowMat<bf16> xb = x.cast<bf16>();
  const std::vector<int> y = {0, 4500, 7, 8, 4321, 2100, 4000, 2047};
  for (const double eps : {0.0, 0.1}) {
    const nll::CrossEntropyOptions o{.reduction = nll::Reduction::none, .label_smoothing = eps, .z_loss = 1e-3};
    RowMat<bf16> g(n, c), gp(n, c), inplace = xb;
    const auto r = nll::cross_entropy(xb, y, g, o);
    const auto rp = nll::nll_per_example(nll::Categorical(o), xb, y, gp, nll::driver_options(o));
    const auto ri = nll::cross_entropy(inplace, y, inplace, o);
    const auto rv = nll::cross_entropy(xb, y, o);
    for (Eigen::Index i = 0; i < n; ++i) {
      INFO("row " << i << ", smoothing " << eps);
      check_row_losses_agree(r, {&rp, &ri, &rv}, i);
      for (const auto* same : {&ri, &rv}) { // in place and value only: the same number
        CHECK(((std::isnan(same->per_example[i]) && std::isnan(r.per_example[i])) ||
               same->per_example[i] == r.per_example[i]));
      }
      for (Eigen::Index j = 0; j < c; ++j) {
        const float a = static_cast<float>(g(i, j)), b = static_cast<float>(gp(i, j)),
                    d = static_cast<float>(inplace(i, j));
        if (std::isnan(b)) {
          CHECK(std::isnan(a));
          CHECK(std::isnan(d));
        } else {
          CHECK(std::fabs(a - b) <= std::fabs(b) / 128);
          CHECK(((std::isnan(a) && std::isnan(d)) || a == d)); // in place: the same bits
        }
      }
    }
    CHECK(std::isnan(r.per_example[2]));
    if (eps == 0) { // (with smoothing, the +inf class's lse − z = inf − inf makes row 3 NaN)
      CHECK(r.per_example[3] == std::numeric_limits<double>::infinity());
      CHECK(static_cast<float>(g(5, 100)) == 0.0f);
    }
  }
}

TEST_CASE("categorical: bfloat16 rows against a long double reference (pair order, tails, ties, tails of exp)") {
  // With AVX-512 BW/VL the block passes read bfloat16 in pairs, store the exponentials in pair
  // order, skip the comparison with the maximum in blocks below it, and use the one-step reduction
  // exponential; this checks the loss of every row to 2e-6 relative and every gradient entry to
  // one bfloat16 rounding against long double, for targets at even and odd places of a pair group
  // and in a block's tail, a confident row (loss about 1e-9), ties across blocks, a row spanning
  // [-200, 0], -inf logits, magnitudes near 1e4 and a constant row; with temperature and smoothing.
  using bf16 = Eigen::bfloat16;
  // Blocks of 1024 and a last one of 904 = 28 pair groups + 8; the ties below lie in three blocks.
  const Eigen::Index n = 8, c = 5000;
  constexpr Eigen::Index block = nll::detail::kFusedBlock;
  static_assert(c % block == 904 && 100 / block != 2500 / block && 2500 / block != 4500 / block);
  const long double inf = std::numeric_limits<long double>::infinity();
  std::mt19937 rng(20261128);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(-200.0f, 0.0f);
  RowMat<float> x0(n, c);
  for (Eigen::Index j = 0; j < c; ++j) {
    x0(0, j) = 3.0f * normal(rng);
    x0(1, j) = normal(rng);
    x0(2, j) = normal(rng);
    x0(3, j) = 2.0f * normal(rng);
    x0(4, j) = uniform(rng);
    x0(5, j) = normal(rng);
    x0(6, j) = 1e4f * normal(rng);
    x0(7, j) = 1.5f;
  }
  x0(1, 777) = 30.0f;                            // confident, target at an odd place
  x0(2, 4995) = 12.0f;                           // maximum in the last block's tail
  x0(3, 100) = x0(3, 2500) = x0(3, 4500) = 9.0f; // ties in three blocks
  x0(4, 3333) = 0.5f;                            // the rest down to -200
  for (Eigen::Index j = 10; j < 20; ++j) x0(5, j) = -std::numeric_limits<float>::infinity();
  const RowMat<bf16> x = x0.cast<bf16>();
  const RowMat<float> xr = x.cast<float>(); // the rounded logits the reference sees
  const std::vector<int> y = {1234, 777, 4995, 2500, 4001, 4093, 42, 4999};
  for (const auto& [eps, temperature] : std::vector<std::pair<double, double>>{{0, 1}, {0.1, 1}, {0, 2}, {0.1, 0.5}}) {
    const nll::CrossEntropyOptions o{
        .reduction = nll::Reduction::none, .label_smoothing = eps, .temperature = temperature};
    RowMat<bf16> g(n, c), inplace = x;
    const auto r = nll::cross_entropy(x, y, g, o);
    const auto ri = nll::cross_entropy(inplace, y, inplace, o);
    const auto rv = nll::cross_entropy(x, y, o);
    for (Eigen::Index i = 0; i < n; ++i) {
      INFO("row " << i << ", smoothing " << eps << ", temperature " << temperature);
      // Reference: lse = m + log1p(sum over z_j != m of e^(z_j - m), + count - 1), in long double.
      const long double t = temperature, e = eps, cl = static_cast<long double>(c);
      const std::size_t yi = static_cast<std::size_t>(y[static_cast<std::size_t>(i)]);
      long double m = -inf, rest = 0, count = 0, sum_z = 0;
      for (Eigen::Index j = 0; j < c; ++j) m = std::max(m, static_cast<long double>(xr(i, j)) / t);
      for (Eigen::Index j = 0; j < c; ++j) {
        const long double z = static_cast<long double>(xr(i, j)) / t;
        if (z == m) {
          count += 1;
        } else {
          rest += std::exp(z - m);
        }
        sum_z += z;
      }
      const long double lse = m + std::log1p(rest + (count - 1));
      const long double zy = static_cast<long double>(xr(i, static_cast<Eigen::Index>(yi))) / t;
      const long double loss = (1 - e) * (lse - zy) + (e > 0 ? e * (lse - sum_z / cl) : 0.0L);
      const double got = r.per_example[i];
      if (std::isinf(static_cast<double>(loss))) {
        CHECK(got == static_cast<double>(loss));
      } else {
        CHECK(rel(got, static_cast<double>(loss)) < 2e-6);
      }
      CHECK(ri.per_example[i] == got); // in place and value only: the same number
      CHECK(rv.per_example[i] == got);
      for (Eigen::Index j = 0; j < c; ++j) {
        const long double z = static_cast<long double>(xr(i, j)) / t;
        const long double p = std::exp(z - lse);
        const long double ref = (p - (static_cast<std::size_t>(j) == yi ? 1 - e : 0) - e / cl) / t;
        const double tol = std::ldexp(std::fabs(static_cast<double>(ref)), -8) +
                           1e-6 * static_cast<double>((p + e / cl) / t) + 1.2e-38;
        const double a = static_cast<double>(static_cast<float>(g(i, j)));
        if (!(std::fabs(a - static_cast<double>(ref)) <= tol))
          FAIL_CHECK("entry " << j << ": " << a << " against " << static_cast<double>(ref));
        if (!(static_cast<float>(inplace(i, j)) == static_cast<float>(g(i, j))))
          FAIL_CHECK("in place, entry " << j << ": " << static_cast<float>(inplace(i, j)) << " against " << a);
      }
    }
  }
}

#if defined(NLL_CATEGORICAL_AVX512)
/// Worst error in float ulps (subnormal ulps 2^-149 below FLT_MIN) of exp32<kOneStep> against
/// double exp on [lo, 0], sampled densely (every 0.00123, with 16 lanes 7.7e-5 apart).
template <bool kOneStep> double exp32_worst_ulp(double lo) {
  using namespace nll::detail::avx512_categorical;
  const ExpConstants k;
  double worst = 0;
  alignas(64) float in[16], out[16];
  for (double d0 = lo; d0 < 0; d0 += 0.00123) {
    for (int l = 0; l < 16; ++l) in[l] = static_cast<float>(std::min(0.0, d0 + l * 0.0000771));
    _mm512_store_ps(out, exp32<kOneStep>(_mm512_load_ps(in), k));
    for (int l = 0; l < 16; ++l) {
      const double ref = std::exp(static_cast<double>(in[l]));
      const double ulp = ref < 1.1754943508222875e-38 ? std::ldexp(1.0, -149) : std::ldexp(1.0, std::ilogb(ref) - 23);
      worst = std::max(worst, std::fabs(static_cast<double>(out[l]) - ref) / ulp);
    }
  }
  return worst;
}

TEST_CASE("categorical: the AVX-512 table exponential (exp32) against double exp") {
  using namespace nll::detail::avx512_categorical;
  const ExpConstants k;
  alignas(64) float out[16];
  const double worst = exp32_worst_ulp<false>(-104.0);
  std::printf("categorical exp32: worst error %.3f ulp on [-104, 0]\n", worst);
  CHECK(worst <= 2.0);
  // The one-step reduction of the bfloat16 block passes: ln 2's float rounding adds |d|·2.7e-9
  // relative (exp32_n's comment), so the bound grows with |d|.
  const double one_step_104 = exp32_worst_ulp<true>(-104.0), one_step_10 = exp32_worst_ulp<true>(-10.0);
  std::printf("categorical exp32 (one-step reduction): worst error %.3f ulp on [-104, 0], %.3f ulp on [-10, 0]\n",
              one_step_104, one_step_10);
  CHECK(one_step_104 <= 5.5);
  CHECK(one_step_10 <= 2.2);
  const float inf = std::numeric_limits<float>::infinity();
  alignas(64) const float special[16] = {0.0f,    -0.0f, -inf,  std::nanf(""), -1e30f, -110.0f, -103.28f, -87.3f,
                                         -1e-30f, -1.0f, -0.5f, -2.0f,         -20.0f, -50.0f,  -88.0f,   -104.0f};
  alignas(64) float out_one_step[16];
  _mm512_store_ps(out_one_step, exp32<true>(_mm512_load_ps(special), k));
  _mm512_store_ps(out, exp32(_mm512_load_ps(special), k));
  for (int l = 0; l < 7; ++l) { // the special cases (0, -inf, NaN, underflow) are the same with either
    INFO("lane " << l);
    CHECK(((std::isnan(out[l]) && std::isnan(out_one_step[l])) || out[l] == out_one_step[l]));
  }
  CHECK(out[0] == 1.0f);
  CHECK(out[1] == 1.0f);
  CHECK(out[2] == 0.0f);
  CHECK(std::isnan(out[3]));
  CHECK(out[4] == 0.0f);
  CHECK(out[5] == 0.0f);
  CHECK(out[8] == 1.0f);
  CHECK(out[15] == 0.0f);
}
#endif

#if defined(NLL_CATEGORICAL_AVX512) && defined(NLL_CATEGORICAL_AVX512_BF16_DIRECT)
TEST_CASE("categorical: the bfloat16 block maximum on integer patterns, alone and inside the exponential pass") {
  // Bf16Max orders the raw 16-bit patterns as signed integers (see its comment). Against a scalar
  // maximum of the widened values: random rows, all-negative rows, -0.0 beside negatives, -inf,
  // a positive NaN (returned), for lengths around the 32- and 64-value steps; and the maximum of
  // the next block that exp_sum takes during its loop, for every next-block length.
  using namespace nll::detail::avx512_categorical;
  using bf16 = Eigen::bfloat16;
  const float inf = std::numeric_limits<float>::infinity();
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 10.0f);
  const auto scalar_max = [](const std::vector<bf16>& v, Eigen::Index n) {
    float m = -std::numeric_limits<float>::infinity();
    for (Eigen::Index j = 0; j < n; ++j) {
      const float f = static_cast<float>(v[static_cast<std::size_t>(j)]);
      if (std::isnan(f)) return f;
      m = std::max(m, f);
    }
    return m;
  };
  const std::vector<Eigen::Index> lengths = {1, 2, 31, 32, 33, 63, 64, 65, 100, 904, 2047, 2048};
  for (int kind = 0; kind < 6; ++kind) {
    for (const Eigen::Index n : lengths) {
      INFO("kind " << kind << ", length " << n);
      std::vector<bf16> v(static_cast<std::size_t>(n));
      for (auto& x : v) {
        float f = normal(rng);
        if (kind == 1) f = -std::fabs(f) - 1.0f;                   // all negative
        if (kind == 2 && rng() % 4 == 0) f = -inf;                 // -inf among the rest
        if (kind == 3) f = rng() % 3 == 0 ? -0.0f : -std::fabs(f); // -0.0 and negatives
        if (kind == 4) f = -inf;                                   // all -inf
        x = bf16(f);
      }
      if (kind == 5) v[static_cast<std::size_t>(rng() % static_cast<unsigned>(n))] = bf16(std::nanf("")); // NaN
      const float ref = scalar_max(v, n), got = max_bf16(v.data(), n);
      CHECK(((std::isnan(ref) && std::isnan(got)) || got == ref));
      // The same maximum taken for the "next block" during a 2048-value exponential pass (twice
      // kFusedBlock, so next blocks up to that length go through both the in-loop and the tail part).
      const std::vector<bf16> block(2048, bf16(0.5f));
      float next_max = 0;
      double rest = 0, dist = 0;
      exp_sum<false, false, true, 2>(block.data(), nullptr, 2048, 1.0f, 0.5f, &rest, &dist, nullptr, nullptr, v.data(),
                                     n, &next_max);
      CHECK(((std::isnan(ref) && std::isnan(next_max)) || next_max == ref));
      CHECK(rest == 0); // every value of the block is its maximum: all counted, none summed
    }
  }
}
#endif

#if defined(NLL_CATEGORICAL_AVX512) && defined(NLL_CATEGORICAL_AVX512_BF16_DIRECT)
TEST_CASE("categorical: the bfloat16 gradient pass from pair order writes the bits of the in-order pass") {
  // affine_bf16_pairs reads exponentials stored in pair order (e[0..15] = even entries of a group
  // of 32, e[16..31] = odd ones) and must round exactly as row_affine_narrow on the same values in
  // order (Eigen's packet cast), whichever conversion instruction the build uses.
  using bf16 = Eigen::bfloat16;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  for (const Eigen::Index n : {32, 64, 100, 904, 2048}) {
    std::vector<float> in_order(static_cast<std::size_t>(n)), paired(static_cast<std::size_t>(n));
    for (Eigen::Index j = 0; j < n; ++j) {
      const float u = unit(rng);
      // tiny, normal and exact-halfway-looking values
      in_order[static_cast<std::size_t>(j)] = j % 5 == 0 ? std::ldexp(u, -140) : j % 7 == 0 ? 1.0f + 0x1p-8f : u;
    }
    const Eigen::Index groups_end = n - n % 32;
    for (Eigen::Index q = 0; q < n; ++q) {
      const Eigen::Index at = q < groups_end ? (q & ~Eigen::Index(31)) + (q & 1) * 16 + ((q & 31) >> 1) : q;
      paired[static_cast<std::size_t>(at)] = in_order[static_cast<std::size_t>(q)];
    }
    for (const auto& [alpha, beta] :
         std::vector<std::pair<float, float>>{{1.0f, 0.0f}, {0.37f, 1e-3f}, {3e-5f, 2e-6f}}) {
      std::vector<bf16> a(static_cast<std::size_t>(n)), b(static_cast<std::size_t>(n));
      nll::detail::avx512_categorical::affine_bf16_pairs(paired.data(), a.data(), n, alpha, beta);
      nll::detail::row_affine_narrow(in_order.data(), b.data(), n, alpha, beta);
      Eigen::Index differing = 0;
      for (Eigen::Index j = 0; j < n; ++j)
        differing += std::bit_cast<std::uint16_t>(a[static_cast<std::size_t>(j)]) !=
                     std::bit_cast<std::uint16_t>(b[static_cast<std::size_t>(j)]);
      INFO("n " << n << ", alpha " << alpha << ", beta " << beta);
      CHECK(differing == 0);
    }
  }
}
#endif
