// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// Softmax cross entropy with class-index targets (mean reduction), one thread, float32 logits of
// two shapes (argument 0: 2048 × 32000; argument 1: 512 × 128256, both about 262 MB), against
// bounds measured in the same run on the same bytes:
//   BM_read_bound/s      a vectorised sum of every logit: one read pass
//   BM_memcpy/s          memcpy of the logits into the gradient buffer: one read + one write pass
//   BM_value/s           nll::cross_entropy(logits, targets): the value only
//   BM_value_grad/s      nll::cross_entropy(logits, targets, grad): value and gradient
//   BM_bf16_value_grad/s the same with bfloat16 logits and gradient (half the bytes)
//   BM_naive/s           a straightforward implementation: per row max, exp-sum, log, then a
//                        second loop writing softmax − one-hot (scalar std::exp, float sums)
//   BM_bf16_f32_paired/s float32 and bfloat16 value + gradient called alternately (the order
//                        swapped every iteration), each call timed on the thread's CPU clock;
//                        counter bf16_over_f32 = the median of the per-pair ratios. Both calls of
//                        a pair see the same state of this shared machine, whose memory speed
//                        moves by tens of percent between seconds; printed as the "paired" ratio.
//   BM_threads/s/t       BM_value_grad with t OpenMP threads (only in a -DNLL_OPENMP=ON build);
//                        compared by wall-clock time (the ratio table below uses CPU time).
// The ratio table printed at the end is what docs/performance.md quotes. For bench/compare_pytorch.py:
//   bench_categorical --benchmark_repetitions=5 --benchmark_out=ours.json --benchmark_out_format=json
#include <benchmark/benchmark.h>

#include <nll/dist/categorical.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "categorical_problem.hpp"
#include "ratio_reporter.hpp"
#include "timing.hpp"

namespace {

using nll_bench::kShapes;
using nll_bench::make_problem;
using nll_bench::Problem;
using nll_bench::RowMajorXb;
using nll_bench::RowMajorXf;
using nll_bench::thread_seconds;

Problem& problem(std::int64_t which) {
  static std::map<std::int64_t, Problem> cache;
  auto it = cache.find(which);
  if (it == cache.end()) it = cache.emplace(which, make_problem(kShapes[which])).first;
  return it->second;
}

std::int64_t float_bytes(const Problem& p) { return static_cast<std::int64_t>(p.x.size() * sizeof(float)); }

/// The straightforward implementation: per row max, exp-sum and log, then a second loop writing
/// (softmax − one-hot)/N. Returns the mean loss.
double naive_cross_entropy(const RowMajorXf& x, const std::vector<std::int32_t>& y, RowMajorXf& g) {
  const Eigen::Index n = x.rows(), c = x.cols();
  const float inv_n = 1.0f / static_cast<float>(n);
  double total = 0;
  for (Eigen::Index i = 0; i < n; ++i) {
    const float* row = x.data() + i * c;
    float* grow = g.data() + i * c;
    float m = -std::numeric_limits<float>::infinity();
    for (Eigen::Index j = 0; j < c; ++j) m = std::max(m, row[j]);
    float s = 0;
    for (Eigen::Index j = 0; j < c; ++j) s += std::exp(row[j] - m);
    const float lse = m + std::log(s);
    const auto t = static_cast<Eigen::Index>(y[static_cast<std::size_t>(i)]);
    total += static_cast<double>(lse - row[t]);
    for (Eigen::Index j = 0; j < c; ++j) grow[j] = (std::exp(row[j] - lse) - (j == t ? 1.0f : 0.0f)) * inv_n;
  }
  return total / static_cast<double>(n);
}

void BM_read_bound(benchmark::State& state) {
  const Problem& p = problem(state.range(0));
  const Eigen::Map<const Eigen::VectorXf> flat(p.x.data(), p.x.size());
  for (auto _ : state) {
    float sum = flat.sum();
    benchmark::DoNotOptimize(sum);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * float_bytes(p));
}

void BM_memcpy(benchmark::State& state) {
  Problem& p = problem(state.range(0));
  for (auto _ : state) {
    benchmark::DoNotOptimize(p.g.data());
    std::memcpy(p.g.data(), p.x.data(), static_cast<std::size_t>(float_bytes(p)));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * float_bytes(p));
}

void BM_value(benchmark::State& state) {
  const Problem& p = problem(state.range(0));
  for (auto _ : state) {
    double v = nll::cross_entropy(p.x, p.y).value;
    benchmark::DoNotOptimize(v);
  }
  state.SetBytesProcessed(state.iterations() * float_bytes(p));
}

void BM_value_grad(benchmark::State& state) {
  Problem& p = problem(state.range(0));
  for (auto _ : state) {
    double v = nll::cross_entropy(p.x, p.y, p.g).value;
    benchmark::DoNotOptimize(v);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * float_bytes(p));
}

void BM_bf16_value_grad(benchmark::State& state) {
  Problem& p = problem(state.range(0));
  for (auto _ : state) {
    double v = nll::cross_entropy(p.xb, p.y, p.gb).value;
    benchmark::DoNotOptimize(v);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * float_bytes(p) / 2);
}

void BM_bf16_f32_paired(benchmark::State& state) {
  Problem& p = problem(state.range(0));
  std::vector<double> ratios;
  bool bf16_first = false;
  for (auto _ : state) {
    double f32 = 0, bf16 = 0;
    for (int k = 0; k < 2; ++k) {
      const bool run_bf16 = (k == 0) == bf16_first;
      const double t0 = thread_seconds();
      const double v = run_bf16 ? nll::cross_entropy(p.xb, p.y, p.gb).value : nll::cross_entropy(p.x, p.y, p.g).value;
      benchmark::DoNotOptimize(v);
      benchmark::ClobberMemory();
      (run_bf16 ? bf16 : f32) = thread_seconds() - t0;
    }
    bf16_first = !bf16_first;
    ratios.push_back(bf16 / f32);
  }
  state.counters["bf16_over_f32"] = nll_bench::median(ratios);
  state.SetBytesProcessed(state.iterations() * (float_bytes(p) + float_bytes(p) / 2));
}

void BM_naive(benchmark::State& state) {
  Problem& p = problem(state.range(0));
  for (auto _ : state) {
    double v = naive_cross_entropy(p.x, p.y, p.g);
    benchmark::DoNotOptimize(v);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * float_bytes(p));
}

#if defined(_OPENMP)
void BM_threads(benchmark::State& state) {
  Problem& p = problem(state.range(0));
  const int previous = omp_get_max_threads();
  omp_set_num_threads(static_cast<int>(state.range(1)));
  for (auto _ : state) {
    double v = nll::cross_entropy(p.x, p.y, p.g).value;
    benchmark::DoNotOptimize(v);
    benchmark::ClobberMemory();
  }
  omp_set_num_threads(previous);
  state.SetBytesProcessed(state.iterations() * float_bytes(p));
}
#endif

void shapes(benchmark::internal::Benchmark* b) { b->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond); }

BENCHMARK(BM_read_bound)->Apply(shapes);
BENCHMARK(BM_memcpy)->Apply(shapes);
BENCHMARK(BM_value)->Apply(shapes);
BENCHMARK(BM_value_grad)->Apply(shapes);
BENCHMARK(BM_bf16_value_grad)->Apply(shapes);
BENCHMARK(BM_naive)->Apply(shapes);
BENCHMARK(BM_bf16_f32_paired)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->MinTime(2.0);
#if defined(_OPENMP)
BENCHMARK(BM_threads)->ArgsProduct({{0, 1}, {1, 2}})->Unit(benchmark::kMillisecond)->UseRealTime();
#endif

/// Before timing: ours (float and bfloat16 logits) and the naive implementation against a double
/// reference (nll::nll_per_example on the logits converted to double) on the first 64 rows.
void print_agreement() {
  for (std::int64_t which : {0, 1}) {
    Problem& p = problem(which);
    const Eigen::Index rows = 64;
    const RowMajorXf x = p.x.topRows(rows);
    const RowMajorXb xb = p.xb.topRows(rows);
    const std::vector<std::int32_t> y(p.y.begin(), p.y.begin() + rows);
    const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> xd = x.cast<double>(),
                                                                                 xbd = xb.cast<double>();
    Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> gd(rows, x.cols()), gbd(rows, x.cols());
    RowMajorXf g(rows, x.cols()), g_naive(rows, x.cols());
    RowMajorXb gb(rows, x.cols());
    const double ref = nll::nll_per_example(nll::Categorical{}, xd, y, gd).value;
    const double ref_b = nll::nll_per_example(nll::Categorical{}, xbd, y, gbd).value;
    const double ours = nll::cross_entropy(x, y, g).value;
    const double ours_b = nll::cross_entropy(xb, y, gb).value;
    const double naive = naive_cross_entropy(x, y, g_naive);
    const double gmax = gd.cwiseAbs().maxCoeff();
    const auto grad_err = [&](const auto& a, const auto& r) {
      return (a.template cast<double>() - r).cwiseAbs().maxCoeff() / gmax;
    };
    std::printf("Agreement (%lld x %lld, first %lld rows) with a double reference: relative value error ours %.2e, "
                "naive %.2e, bfloat16 logits %.2e; max gradient error / max |gradient|: ours %.2e, naive %.2e, "
                "bfloat16 %.2e\n",
                static_cast<long long>(p.x.rows()), static_cast<long long>(p.x.cols()), static_cast<long long>(rows),
                std::abs(ours - ref) / ref, std::abs(naive - ref) / ref, std::abs(ours_b - ref_b) / ref_b,
                grad_err(g, gd), grad_err(g_naive, gd), grad_err(gb, gbd));
  }
  std::printf("\n");
  std::fflush(stdout);
}

/// The ratio table of nll_bench::RatioReporter (CPU times), plus the OpenMP speed-up by wall-clock
/// time (CPU time of the main thread does not measure the other thread's work).
class Reporter : public nll_bench::RatioReporter {
public:
  using nll_bench::RatioReporter::RatioReporter;
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      if (run.run_name.function_name == "BM_threads") wall_.record(run, run.run_name.args, run.GetAdjustedRealTime());
      if (run.run_name.function_name == "BM_bf16_f32_paired") {
        // per repetition, the median of that repetition's per-pair ratios
        if (const auto c = run.counters.find("bf16_over_f32"); c != run.counters.end())
          paired_.record(run, run.run_name.args, c->second.value);
      }
    }
    nll_bench::RatioReporter::ReportRuns(runs);
  }
  void Finalize() override {
    nll_bench::RatioReporter::Finalize();
    for (const char* shape : {"0", "1"}) {
      const double ratio = paired_.get(shape);
      if (ratio < 0) continue;
      std::printf("  %-44s %8.3f\n",
                  (std::string("bf16 / f32 value+grad, paired") + (shape[0] == '0' ? " [2048x32000]" : " [512x128256]"))
                      .c_str(),
                  ratio);
    }
    for (const char* shape : {"0", "1"}) {
      const double one = wall_.get(std::string(shape) + "/1"), two = wall_.get(std::string(shape) + "/2");
      if (one <= 0 || two <= 0) continue;
      std::printf("  %-44s %8.3f\n", (std::string("OpenMP 2 threads speed-up (wall), shape ") + shape).c_str(),
                  one / two);
    }
    std::fflush(stdout);
  }

private:
  nll_bench::PerBenchmark wall_;   // BM_threads, wall-clock time per shape/threads
  nll_bench::PerBenchmark paired_; // BM_bf16_f32_paired's counter per shape
};

} // namespace

int main(int argc, char** argv) {
  print_agreement();
  std::vector<nll_bench::Ratio> ratios;
  for (const char* s : {"0", "1"}) {
    const std::string tag = std::string(" [") + (s[0] == '0' ? "2048x32000" : "512x128256") + "]";
    const auto bm = [s](const char* name) { return std::string(name) + "/" + s; };
    ratios.push_back({"value+grad / memcpy" + tag, bm("BM_value_grad"), bm("BM_memcpy")});
    ratios.push_back({"value / read bound" + tag, bm("BM_value"), bm("BM_read_bound")});
    ratios.push_back({"bf16 value+grad / f32 value+grad" + tag, bm("BM_bf16_value_grad"), bm("BM_value_grad")});
    ratios.push_back({"speed-up over naive" + tag, bm("BM_naive"), bm("BM_value_grad")});
    ratios.push_back({"memcpy / read bound" + tag, bm("BM_memcpy"), bm("BM_read_bound")});
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  Reporter reporter(std::move(ratios));
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
