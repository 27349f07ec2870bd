// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// Binary cross entropy with logits, value + gradient, 16M float elements (2^24: 64 MB of logits,
// 64 MB of labels, 64 MB of gradient), mean reduction, one thread, against bounds measured in the
// same run:
//   BM_bound_x_minus_y     g = x − y with Eigen: reads the logits and the labels and writes the
//                          gradient once — the memory traffic of a fused BCE forward + backward
//   BM_read_bound          a vectorised sum of x and y: the read traffic alone
//   BM_naive               what a user would write: one scalar loop, max(x,0) − x·y + log1p(exp(−|x|))
//                          summed in double and (σ(x) − y)/N written per element
//   BM_bce_with_logits     nll::binary_cross_entropy_with_logits(x, y, g) (hard labels: the label
//                          check packs them into bits, the kernel pass reads those)
//   BM_bce_with_logits_soft    the same with soft labels 0.01 / 0.99 (nothing to pack)
//   BM_bce_with_logits_value   the same as BM_bce_with_logits, value only
//   BM_bce_with_logits_pos_weight  a 2^20 × 16 multi-label matrix with a pos_weight per column
// Every benchmark reports the element count as items processed; the ratio table printed at the end
// is the figure to quote (docs/performance.md).
//
//   build-bench/bench/bench_bernoulli --benchmark_enable_random_interleaving=true
//       --benchmark_repetitions=9 --benchmark_report_aggregates_only=true      (one command line)
// (random interleaving spreads the machine's slow phases over every benchmark of the run).
#include <benchmark/benchmark.h>

#include <nll/dist/bernoulli.hpp>

#include <Eigen/Core>
#include <cmath>
#include <cstdio>
#include <random>

#include "ratio_reporter.hpp"

namespace {

constexpr Eigen::Index kN = Eigen::Index(1) << 24;
constexpr Eigen::Index kLabels = 16;

using ArrayXf = Eigen::ArrayXf;

struct Data {
  ArrayXf x, y, g, y_soft;
  Data() : x(kN), y(kN), g(kN), y_soft(kN) {
    std::mt19937_64 rng(20240608);
    std::normal_distribution<float> normal(0.0f, 4.0f);
    std::bernoulli_distribution coin(0.3);
    for (Eigen::Index i = 0; i < kN; ++i) {
      x[i] = normal(rng);
      y[i] = coin(rng) ? 1.0f : 0.0f;
    }
    y_soft = 0.98f * y + 0.01f;
    g.setZero(); // touched: no page faults inside the timed loops
  }
};

Data& data() {
  static Data d;
  return d;
}

/// The scalar code a typical user writes (float per element, the sum in double).
double naive_bce_with_logits(const float* x, const float* y, float* g, Eigen::Index n) {
  double sum = 0;
  const float inv_n = 1.0f / static_cast<float>(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    const float xi = x[i], yi = y[i];
    sum += std::max(xi, 0.0f) - xi * yi + std::log1p(std::exp(-std::fabs(xi)));
    g[i] = (1.0f / (1.0f + std::exp(-xi)) - yi) * inv_n;
  }
  return sum / static_cast<double>(n);
}

void set_items(benchmark::State& state) {
  state.SetItemsProcessed(state.iterations() * kN);
  state.SetBytesProcessed(state.iterations() * kN * static_cast<std::int64_t>(3 * sizeof(float)));
}

void BM_bound_x_minus_y(benchmark::State& state) {
  Data& d = data();
  for (auto _ : state) {
    d.g = d.x - d.y;
    benchmark::DoNotOptimize(d.g.data());
    benchmark::ClobberMemory();
  }
  set_items(state);
}

void BM_read_bound(benchmark::State& state) {
  Data& d = data();
  for (auto _ : state) {
    float s = (d.x + d.y).sum();
    benchmark::DoNotOptimize(s);
    benchmark::ClobberMemory();
  }
  set_items(state);
}

void BM_naive(benchmark::State& state) {
  Data& d = data();
  for (auto _ : state) {
    double v = naive_bce_with_logits(d.x.data(), d.y.data(), d.g.data(), kN);
    benchmark::DoNotOptimize(v);
    benchmark::ClobberMemory();
  }
  set_items(state);
}

void BM_bce_with_logits(benchmark::State& state) {
  Data& d = data();
  for (auto _ : state) {
    const nll::Loss r = nll::binary_cross_entropy_with_logits(d.x, d.y, d.g);
    benchmark::DoNotOptimize(r.value);
    benchmark::ClobberMemory();
  }
  set_items(state);
}

void BM_bce_with_logits_soft(benchmark::State& state) {
  Data& d = data();
  for (auto _ : state) {
    const nll::Loss r = nll::binary_cross_entropy_with_logits(d.x, d.y_soft, d.g);
    benchmark::DoNotOptimize(r.value);
    benchmark::ClobberMemory();
  }
  set_items(state);
}

void BM_bce_with_logits_value(benchmark::State& state) {
  Data& d = data();
  for (auto _ : state) {
    const nll::Loss r = nll::binary_cross_entropy_with_logits(d.x, d.y);
    benchmark::DoNotOptimize(r.value);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kN);
}

void BM_bce_with_logits_pos_weight(benchmark::State& state) {
  Data& d = data();
  const Eigen::Map<const Eigen::ArrayXXf> x(d.x.data(), kN / kLabels, kLabels);
  const Eigen::Map<const Eigen::ArrayXXf> y(d.y.data(), kN / kLabels, kLabels);
  Eigen::Map<Eigen::ArrayXXf> g(d.g.data(), kN / kLabels, kLabels);
  const Eigen::ArrayXf pos_weight = Eigen::ArrayXf::LinSpaced(kLabels, 0.5f, 4.0f);
  for (auto _ : state) {
    const nll::Loss r = nll::binary_cross_entropy_with_logits(x, y, g, {.pos_weight = pos_weight});
    benchmark::DoNotOptimize(r.value);
    benchmark::ClobberMemory();
  }
  set_items(state);
}

BENCHMARK(BM_bound_x_minus_y)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_read_bound)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_naive)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_bce_with_logits)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_bce_with_logits_soft)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_bce_with_logits_value)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_bce_with_logits_pos_weight)->Unit(benchmark::kMillisecond);

/// Before timing: the naive loop and the library compute the same value and gradient.
void print_agreement() {
  Data& d = data();
  ArrayXf g_naive(kN);
  const double naive = naive_bce_with_logits(d.x.data(), d.y.data(), g_naive.data(), kN);
  const nll::Loss ours = nll::binary_cross_entropy_with_logits(d.x, d.y, d.g);
  const float gmax = g_naive.abs().maxCoeff();
  std::printf("agreement: value %.9g (nll) vs %.9g (naive), relative difference %.2e; largest gradient "
              "difference %.2e of the largest gradient\n",
              ours.value, naive, std::fabs(ours.value - naive) / naive, (d.g - g_naive).abs().maxCoeff() / gmax);
}

} // namespace

int main(int argc, char** argv) {
  print_agreement();
  return nll_bench::run_with_ratios(
      argc, argv,
      {{"bce_with_logits / (g = x - y) bound", "BM_bce_with_logits", "BM_bound_x_minus_y"},
       {"bce_with_logits / read bound", "BM_bce_with_logits", "BM_read_bound"},
       {"soft labels / (g = x - y) bound", "BM_bce_with_logits_soft", "BM_bound_x_minus_y"},
       {"naive / bce_with_logits", "BM_naive", "BM_bce_with_logits"},
       {"value only / (g = x - y) bound", "BM_bce_with_logits_value", "BM_bound_x_minus_y"},
       {"pos_weight 2^20x16 / (g = x - y) bound", "BM_bce_with_logits_pos_weight", "BM_bound_x_minus_y"}});
}
