// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// Gaussian NLL, value + gradients with respect to the mean and the (log-)variance, over 16M float
// elements (one variance per element), one thread, reduction mean, against bounds measured in the
// same run:
//   BM_io_bound             one vectorised pass that reads mean, var and target and writes two outputs
//                           (gm = mean − target, gv = var − target) and sums gm: the memory traffic of
//                           any fused value-plus-gradient kernel (3 reads + 2 writes of 64 MB)
//   BM_naive_var            what a user would write: one scalar loop, std::max clamp, std::log,
//                           divisions, a double sum
//   BM_naive_logvar         the same for the log-variance form (std::exp per element)
//   BM_gaussian_nll_loss    nll::gaussian_nll_loss(mean, var, target, grad_mean, grad_var)
//   BM_gaussian_nll_logvar  nll::gaussian_nll_loss_logvar(mean, log_var, target, grad_mean, grad_log_var)
//   BM_mse_loss             nll::mse_loss(pred, target, grad) (2 reads + 1 write), for reference
// Every benchmark reports 5 × 64 MB as bytes processed; the ratio table printed at the end is the
// figure to quote (docs/performance.md).
//
//   build-bench/bench/bench_gaussian --benchmark_repetitions=9 --benchmark_enable_random_interleaving=true
//       --benchmark_report_aggregates_only=true      (one command line; no trailing backslash: -Wcomment)
// (random interleaving spreads the machine's load changes over every benchmark instead of one)
#include <benchmark/benchmark.h>

#include <nll/dist/gaussian.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "ratio_reporter.hpp"

namespace {

constexpr Eigen::Index kN = Eigen::Index(1) << 24; // 16M elements

struct Data {
  Eigen::VectorXf mean, var, log_var, target, grad_mean, grad_var;
};

/// Means N(0, 1), targets N(0.3, 1.5²), variances in [0.05, 2] (a few below eps = 1e-6), fixed seed.
const Data& data() {
  static const Data d = [] {
    Data x;
    std::mt19937_64 rng(20240614);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    x.mean.resize(kN);
    x.var.resize(kN);
    x.log_var.resize(kN);
    x.target.resize(kN);
    for (Eigen::Index i = 0; i < kN; ++i) {
      x.mean[i] = normal(rng);
      x.target[i] = 0.3f + 1.5f * normal(rng);
      x.var[i] = (i % 4096 == 0) ? 1e-7f : 0.05f + 1.95f * uniform(rng);
      x.log_var[i] = std::log(x.var[i]);
    }
    x.grad_mean = Eigen::VectorXf::Ones(kN); // touched: no page faults inside the timed loops
    x.grad_var = Eigen::VectorXf::Ones(kN);
    return x;
  }();
  return d;
}

Data& buffers() { return const_cast<Data&>(data()); }

std::int64_t bytes() { return 5 * static_cast<std::int64_t>(kN * sizeof(float)); }

/// Reads three streams, writes two, sums one: the traffic floor, vectorised with Eigen's packets.
double io_bound(const float* a, const float* b, const float* c, float* out1, float* out2, Eigen::Index n) {
  using namespace Eigen::internal;
  using Packet = packet_traits<float>::type;
  constexpr Eigen::Index kPacket = packet_traits<float>::size;
  Packet sum = pset1<Packet>(0.0f);
  static_assert(kN % kPacket == 0, "the benchmark size is a whole number of packets");
  for (Eigen::Index i = 0; i < n; i += kPacket) {
    const Packet pa = ploadu<Packet>(a + i), pb = ploadu<Packet>(b + i), pc = ploadu<Packet>(c + i);
    const Packet d = psub(pa, pc);
    pstoreu(out1 + i, d);
    pstoreu(out2 + i, psub(pb, pc));
    sum = padd(sum, d);
  }
  return static_cast<double>(predux(sum));
}

/// The scalar loop a typical user writes for PyTorch's gaussian_nll_loss (mean reduction).
double naive_var(const float* mean, const float* var, const float* target, float* gm, float* gv, Eigen::Index n,
                 float eps) {
  double sum = 0;
  const float scale = 1.0f / static_cast<float>(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    const float v = std::max(var[i], eps);
    const float d = mean[i] - target[i];
    sum += 0.5f * (std::log(v) + d * d / v);
    gm[i] = scale * d / v;
    gv[i] = scale * 0.5f * (1.0f / v - d * d / (v * v));
  }
  return sum / static_cast<double>(n);
}

/// The same for the log-variance form.
double naive_logvar(const float* mean, const float* s, const float* target, float* gm, float* gs, Eigen::Index n) {
  double sum = 0;
  const float scale = 1.0f / static_cast<float>(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    const float d = mean[i] - target[i];
    const float e = std::exp(-s[i]);
    sum += 0.5f * (s[i] + d * d * e);
    gm[i] = scale * d * e;
    gs[i] = scale * 0.5f * (1.0f - d * d * e);
  }
  return sum / static_cast<double>(n);
}

void BM_io_bound(benchmark::State& state) {
  const Data& x = data();
  Data& out = buffers();
  for (auto _ : state) {
    double s = io_bound(x.mean.data(), x.var.data(), x.target.data(), out.grad_mean.data(), out.grad_var.data(), kN);
    benchmark::DoNotOptimize(s);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * bytes());
}

void BM_naive_var(benchmark::State& state) {
  const Data& x = data();
  Data& out = buffers();
  for (auto _ : state) {
    double s =
        naive_var(x.mean.data(), x.var.data(), x.target.data(), out.grad_mean.data(), out.grad_var.data(), kN, 1e-6f);
    benchmark::DoNotOptimize(s);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * bytes());
}

void BM_naive_logvar(benchmark::State& state) {
  const Data& x = data();
  Data& out = buffers();
  for (auto _ : state) {
    double s =
        naive_logvar(x.mean.data(), x.log_var.data(), x.target.data(), out.grad_mean.data(), out.grad_var.data(), kN);
    benchmark::DoNotOptimize(s);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * bytes());
}

void BM_gaussian_nll_loss(benchmark::State& state) {
  const Data& x = data();
  Data& out = buffers();
  for (auto _ : state) {
    const nll::Loss r = nll::gaussian_nll_loss(x.mean, x.var, x.target, out.grad_mean, out.grad_var);
    benchmark::DoNotOptimize(r.value);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * bytes());
}

void BM_gaussian_nll_logvar(benchmark::State& state) {
  const Data& x = data();
  Data& out = buffers();
  for (auto _ : state) {
    const nll::Loss r = nll::gaussian_nll_loss_logvar(x.mean, x.log_var, x.target, out.grad_mean, out.grad_var);
    benchmark::DoNotOptimize(r.value);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * bytes());
}

void BM_mse_loss(benchmark::State& state) {
  const Data& x = data();
  Data& out = buffers();
  for (auto _ : state) {
    const nll::Loss r = nll::mse_loss(x.mean, x.target, out.grad_mean);
    benchmark::DoNotOptimize(r.value);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * 3 * static_cast<std::int64_t>(kN * sizeof(float)));
}

BENCHMARK(BM_io_bound)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_naive_var)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_naive_logvar)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_gaussian_nll_loss)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_gaussian_nll_logvar)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_mse_loss)->Unit(benchmark::kMillisecond);

/// Before timing: ours and the naive loops must compute the same thing (relative difference of the
/// values, largest relative difference of the gradients on a sample).
void print_agreement() {
  const Data& x = data();
  Eigen::VectorXf gm(kN), gv(kN), nm(kN), nv(kN);
  const double ours = nll::gaussian_nll_loss(x.mean, x.var, x.target, gm, gv).value;
  const double naive = naive_var(x.mean.data(), x.var.data(), x.target.data(), nm.data(), nv.data(), kN, 1e-6f);
  double worst = 0;
  for (Eigen::Index i = 0; i < kN; i += 997)
    worst = std::max(worst, static_cast<double>(std::abs(gm[i] - nm[i]) / std::abs(nm[i])));
  const double ours_lv = nll::gaussian_nll_loss_logvar(x.mean, x.log_var, x.target, gm, gv).value;
  const double naive_lv = naive_logvar(x.mean.data(), x.log_var.data(), x.target.data(), nm.data(), nv.data(), kN);
  std::printf("Agreement with the naive loops: gaussian_nll_loss value %.3g (relative), d/dmean %.3g; "
              "logvar value %.3g\n\n",
              std::abs(ours - naive) / std::abs(naive), worst, std::abs(ours_lv - naive_lv) / std::abs(naive_lv));
  std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) {
  print_agreement();
  return nll_bench::run_with_ratios(
      argc, argv,
      {
          {"gaussian_nll_loss / io bound", "BM_gaussian_nll_loss", "BM_io_bound"},
          {"gaussian_nll_loss_logvar / io bound", "BM_gaussian_nll_logvar", "BM_io_bound"},
          {"naive var / io bound", "BM_naive_var", "BM_io_bound"},
          {"naive logvar / io bound", "BM_naive_logvar", "BM_io_bound"},
          {"speed-up of gaussian_nll_loss over naive", "BM_naive_var", "BM_gaussian_nll_loss"},
          {"speed-up of logvar over naive", "BM_naive_logvar", "BM_gaussian_nll_logvar"},
          {"mse_loss / io bound (3/5 of its bytes)", "BM_mse_loss", "BM_io_bound"},
      });
}
