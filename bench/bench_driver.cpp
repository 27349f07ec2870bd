// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// The cost of the generic driver itself (include/nll/core/nll.hpp), measured with the cheapest
// family there is — squared error ℓ_i = (x_i − y_i)²/2, no fused kernel — on N = 2^22 double
// examples (32 MB of parameters + 32 MB of targets), one thread:
//   BM_read_bound             a vectorised sum over params and targets: one read of the same bytes
//   BM_naive_loop             the loop a user writes: Σ (x_i − y_i)²/2, then / N
//   BM_driver                 nll::nll(Squared{}, x, y): the per-example path, no options
//   BM_naive_weighted         the hand loop with float weights and a uint8 mask (Σ w·m·ℓ / Σ w·m)
//   BM_driver_weighted        nll::nll with the same weights and mask
//   BM_driver_grad            nll::nll with a gradient buffer, no options
//   BM_weights_typed          the driver's per-block weight preparation (detail::example_weights:
//                             one switch on the element type per loop), over all N examples
//   BM_weights_switch         the same result with one ExampleView::operator[] switch per entry
//                             (how the driver did it before)
// The ratio table printed at the end is what docs/performance.md quotes.
//
//   build-bench/bench/bench_driver --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <nll/core/nll.hpp>

#include <Eigen/Core>
#include <cstdint>
#include <random>
#include <vector>

#include "ratio_reporter.hpp"

namespace {

constexpr Eigen::Index kN = Eigen::Index(1) << 22;

/// ℓ_i = (x_i − y_i)²/2, ∂ℓ/∂x_i = x_i − y_i: the driver's overhead is all there is to measure.
struct Squared {
  Eigen::Index num_examples(const Eigen::VectorXd& x, const Eigen::VectorXd&) const { return x.size(); }
  double neg_log_prob(const Eigen::VectorXd& x, const Eigen::VectorXd& y, Eigen::Index i) const {
    const double d = x[i] - y[i];
    return 0.5 * d * d;
  }
  double neg_log_prob_grad(const Eigen::VectorXd& x, const Eigen::VectorXd& y, Eigen::Index i, double scale,
                           Eigen::VectorXd& grad) const {
    const double d = x[i] - y[i];
    grad[i] = scale * d;
    return 0.5 * d * d;
  }
  void zero_grad(Eigen::VectorXd& grad, Eigen::Index i) const { grad[i] = 0; }
};

struct Data {
  Eigen::VectorXd x, y;
  std::vector<float> weight;
  std::vector<std::uint8_t> mask;
};

const Data& data() {
  static const Data d = [] {
    std::mt19937_64 rng(7);
    std::normal_distribution<double> normal;
    std::uniform_real_distribution<float> uniform(0.0f, 2.0f);
    Data out{Eigen::VectorXd(kN), Eigen::VectorXd(kN), std::vector<float>(kN), std::vector<std::uint8_t>(kN)};
    for (Eigen::Index i = 0; i < kN; ++i) {
      out.x[i] = normal(rng);
      out.y[i] = normal(rng);
      out.weight[static_cast<std::size_t>(i)] = uniform(rng);
      out.mask[static_cast<std::size_t>(i)] = (i % 7) != 0;
    }
    return out;
  }();
  return d;
}

constexpr std::int64_t kPairBytes = 2 * kN * static_cast<std::int64_t>(sizeof(double));
constexpr std::int64_t kWeightedBytes = kPairBytes + kN * static_cast<std::int64_t>(sizeof(float) + 1);

void BM_read_bound(benchmark::State& state) {
  const Data& d = data();
  for (auto _ : state) {
    double s = d.x.sum() + d.y.sum();
    benchmark::DoNotOptimize(s);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kPairBytes);
}

void BM_naive_loop(benchmark::State& state) {
  const Data& d = data();
  for (auto _ : state) {
    double s = 0;
    for (Eigen::Index i = 0; i < kN; ++i) {
      const double e = d.x[i] - d.y[i];
      s += 0.5 * e * e;
    }
    s /= static_cast<double>(kN);
    benchmark::DoNotOptimize(s);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kPairBytes);
}

void BM_driver(benchmark::State& state) {
  const Data& d = data();
  for (auto _ : state) {
    nll::Loss r = nll::nll(Squared{}, d.x, d.y);
    benchmark::DoNotOptimize(r.value);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kPairBytes);
}

void BM_naive_weighted(benchmark::State& state) {
  const Data& d = data();
  for (auto _ : state) {
    double s = 0, total = 0;
    for (Eigen::Index i = 0; i < kN; ++i) {
      const auto k = static_cast<std::size_t>(i);
      if (d.mask[k] == 0 || d.weight[k] == 0) continue;
      const double e = d.x[i] - d.y[i];
      s += d.weight[k] * (0.5 * e * e);
      total += d.weight[k];
    }
    s /= total;
    benchmark::DoNotOptimize(s);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kWeightedBytes);
}

void BM_driver_weighted(benchmark::State& state) {
  const Data& d = data();
  for (auto _ : state) {
    nll::Loss r = nll::nll(Squared{}, d.x, d.y, {.weight = d.weight, .mask = d.mask});
    benchmark::DoNotOptimize(r.value);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kWeightedBytes);
}

void BM_driver_grad(benchmark::State& state) {
  const Data& d = data();
  Eigen::VectorXd grad = Eigen::VectorXd::Zero(kN);
  for (auto _ : state) {
    nll::Loss r = nll::nll(Squared{}, d.x, d.y, grad);
    benchmark::DoNotOptimize(r.value);
    benchmark::DoNotOptimize(grad.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kPairBytes);
}

constexpr Eigen::Index kBlock = 1024;
constexpr std::int64_t kViewBytes = kN * static_cast<std::int64_t>(sizeof(float) + 1);

void BM_weights_typed(benchmark::State& state) {
  const Data& d = data();
  const nll::NllOptions options{.weight = d.weight, .mask = d.mask};
  std::vector<double> out(kBlock);
  for (auto _ : state) {
    double s = 0;
    for (Eigen::Index begin = 0; begin < kN; begin += kBlock) {
      nll::detail::example_weights(Squared{}, d.y, options, begin, kBlock, out.data());
      s += out[0];
    }
    benchmark::DoNotOptimize(s);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kViewBytes);
}

void BM_weights_switch(benchmark::State& state) {
  const Data& d = data();
  const nll::NllOptions options{.weight = d.weight, .mask = d.mask};
  std::vector<double> out(kBlock);
  for (auto _ : state) {
    double s = 0;
    for (Eigen::Index begin = 0; begin < kN; begin += kBlock) {
      for (Eigen::Index k = 0; k < kBlock; ++k) {
        const Eigen::Index i = begin + k;
        out[static_cast<std::size_t>(k)] = options.mask[i] == 0 ? 0.0 : options.weight[i];
      }
      s += out[0];
    }
    benchmark::DoNotOptimize(s);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kViewBytes);
}

} // namespace

BENCHMARK(BM_read_bound)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_naive_loop)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_driver)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_naive_weighted)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_driver_weighted)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_driver_grad)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_weights_typed)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_weights_switch)->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  return nll_bench::run_with_ratios(
      argc, argv,
      {
          {"driver / read bound", "BM_driver", "BM_read_bound"},
          {"driver / naive loop", "BM_driver", "BM_naive_loop"},
          {"driver weighted / naive weighted", "BM_driver_weighted", "BM_naive_weighted"},
          {"driver with gradient / read bound", "BM_driver_grad", "BM_read_bound"},
          {"per-entry switch / typed loops (weights)", "BM_weights_switch", "BM_weights_typed"},
      });
}
