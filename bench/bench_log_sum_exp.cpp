// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// Row-wise log-sum-exp of a 2048 × 32000 row-major float matrix (262 MB, a batch of vocabulary
// logits), one thread, against bounds measured in the same run:
//   BM_read_bound           a vectorised sum of every element: one read pass of the same bytes
//   BM_memcpy               memcpy of the same bytes: one read pass plus one write pass
//   BM_naive_rows           what a user would write: per row a std::max loop, a std::exp sum loop
//                           in float, then a log (scalar code)
//   BM_log_sum_exp_rows     nll::log_sum_exp_rows (the AVX-512 kernel when compiled with AVX-512)
//   BM_generic_rows         the generic Eigen path of log_sum_exp per row (detail::nan_max, then
//                           detail::scaled_exp_excess), which other instruction sets use
//   BM_log_sum_exp_state    nll::LogSumExpState, each row added in chunks of 4096 values
// Every benchmark reports the matrix size as bytes processed, so the bytes_per_second columns are
// directly comparable; the ratio table printed at the end is the figure to quote (docs/performance.md).
//
//   build-bench/bench/bench_log_sum_exp --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <nll/math/log_sum_exp.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "ratio_reporter.hpp"

namespace {

constexpr Eigen::Index kRows = 2048;
constexpr Eigen::Index kCols = 32000;
constexpr Eigen::Index kStreamChunk = 4096;

using RowMajorXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Logits like a language model's: normal with a per-row offset and spread, plus a few large
/// values per row (the "confident" tokens), fixed seed.
RowMajorXf make_logits() {
  std::mt19937_64 rng(20240607);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::uniform_int_distribution<Eigen::Index> column(0, kCols - 1);
  RowMajorXf x(kRows, kCols);
  for (Eigen::Index i = 0; i < kRows; ++i) {
    const float offset = 4.0f * normal(rng), spread = 1.0f + 3.0f * uniform(rng);
    for (Eigen::Index j = 0; j < kCols; ++j) x(i, j) = offset + spread * normal(rng);
    for (int k = 0; k < 8; ++k) x(i, column(rng)) = offset + spread * (6.0f + 4.0f * uniform(rng));
  }
  return x;
}

const RowMajorXf& logits() {
  static const RowMajorXf x = make_logits();
  return x;
}

std::int64_t matrix_bytes() { return static_cast<std::int64_t>(kRows * kCols * sizeof(float)); }

/// The scalar code a typical user writes (no Eigen, no vector maths library, float throughout).
void naive_log_sum_exp_rows(const float* x, Eigen::Index rows, Eigen::Index cols, float* out) {
  for (Eigen::Index i = 0; i < rows; ++i) {
    const float* row = x + i * cols;
    float m = -std::numeric_limits<float>::infinity();
    for (Eigen::Index j = 0; j < cols; ++j) m = std::max(m, row[j]);
    float s = 0.0f;
    for (Eigen::Index j = 0; j < cols; ++j) s += std::exp(row[j] - m);
    out[i] = m + std::log(s);
  }
}

/// nll::LogSumExpState fed each row in chunks of kStreamChunk values.
void stream_log_sum_exp_rows(const RowMajorXf& x, Eigen::VectorXd& out) {
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    nll::LogSumExpState<double> state;
    for (Eigen::Index start = 0; start < x.cols(); start += kStreamChunk)
      state.add(x.row(i).segment(start, std::min(kStreamChunk, x.cols() - start)));
    out[i] = state.value();
  }
}

/// The generic path of nll::log_sum_exp (what runs without AVX-512), called directly.
void generic_log_sum_exp_rows(const RowMajorXf& x, Eigen::VectorXf& out) {
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    const auto row = x.row(i);
    const float m = nll::detail::nan_max(row);
    out[i] = std::isfinite(m) ? static_cast<float>(m + std::log1p(nll::detail::scaled_exp_excess(row, m))) : m;
  }
}

void BM_read_bound(benchmark::State& state) {
  const RowMajorXf& x = logits();
  const Eigen::Map<const Eigen::VectorXf> flat(x.data(), x.size());
  for (auto _ : state) {
    float sum = flat.sum();
    benchmark::DoNotOptimize(sum);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * matrix_bytes());
}

void BM_memcpy(benchmark::State& state) {
  const RowMajorXf& x = logits();
  std::vector<float> dst(static_cast<std::size_t>(x.size()), 1.0f); // touched: no page faults inside the loop
  for (auto _ : state) {
    benchmark::DoNotOptimize(dst.data());
    std::memcpy(dst.data(), x.data(), static_cast<std::size_t>(matrix_bytes()));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * matrix_bytes());
}

void BM_naive_rows(benchmark::State& state) {
  const RowMajorXf& x = logits();
  std::vector<float> out(static_cast<std::size_t>(kRows));
  for (auto _ : state) {
    naive_log_sum_exp_rows(x.data(), x.rows(), x.cols(), out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * matrix_bytes());
}

void BM_log_sum_exp_rows(benchmark::State& state) {
  const RowMajorXf& x = logits();
  for (auto _ : state) {
    Eigen::VectorXf out = nll::log_sum_exp_rows(x);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * matrix_bytes());
}

void BM_generic_rows(benchmark::State& state) {
  const RowMajorXf& x = logits();
  Eigen::VectorXf out(kRows);
  for (auto _ : state) {
    generic_log_sum_exp_rows(x, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * matrix_bytes());
}

void BM_log_sum_exp_state(benchmark::State& state) {
  const RowMajorXf& x = logits();
  Eigen::VectorXd out(kRows);
  for (auto _ : state) {
    stream_log_sum_exp_rows(x, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * matrix_bytes());
}

BENCHMARK(BM_read_bound)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_memcpy)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_naive_rows)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_log_sum_exp_rows)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_generic_rows)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_log_sum_exp_state)->Unit(benchmark::kMillisecond);

/// Before timing anything: every implementation must compute the same thing. Prints the largest
/// relative difference of each from a double-precision reference on a sample of rows.
void print_agreement() {
  const RowMajorXf& x = logits();
  const Eigen::VectorXf ours = nll::log_sum_exp_rows(x);
  std::vector<float> naive(static_cast<std::size_t>(kRows));
  naive_log_sum_exp_rows(x.data(), x.rows(), x.cols(), naive.data());
  Eigen::VectorXd stream(kRows);
  stream_log_sum_exp_rows(x, stream);
  Eigen::VectorXf generic(kRows);
  generic_log_sum_exp_rows(x, generic);
  double worst_ours = 0, worst_naive = 0, worst_stream = 0, worst_generic = 0;
  for (Eigen::Index i = 0; i < kRows; i += 16) {
    const Eigen::VectorXd row = x.row(i).cast<double>().transpose();
    const double m = row.maxCoeff();
    const double ref = m + std::log((row.array() - m).exp().sum());
    const double ulp = std::numeric_limits<float>::epsilon() * std::abs(ref);
    worst_ours = std::max(worst_ours, std::abs(ours[i] - ref) / ulp);
    worst_naive = std::max(worst_naive, std::abs(naive[static_cast<std::size_t>(i)] - ref) / ulp);
    worst_stream = std::max(worst_stream, std::abs(stream[i] - ref) / ulp);
    worst_generic = std::max(worst_generic, std::abs(generic[i] - ref) / ulp);
  }
  std::printf("Agreement with a double-precision reference (%lld sampled rows), worst |error| / (FLT_EPSILON·|ref|):\n"
              "  log_sum_exp_rows %.2f, generic path %.2f, LogSumExpState %.2f, naive %.2f\n\n",
              static_cast<long long>(kRows / 16), worst_ours, worst_generic, worst_stream, worst_naive);
  std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) {
  print_agreement();
  return nll_bench::run_with_ratios(
      argc, argv,
      {
          {"memcpy / read bound", "BM_memcpy", "BM_read_bound"},
          {"naive / read bound", "BM_naive_rows", "BM_read_bound"},
          {"log_sum_exp_rows / read bound", "BM_log_sum_exp_rows", "BM_read_bound"},
          {"generic path / read bound", "BM_generic_rows", "BM_read_bound"},
          {"LogSumExpState / read bound", "BM_log_sum_exp_state", "BM_read_bound"},
          {"LogSumExpState / log_sum_exp_rows", "BM_log_sum_exp_state", "BM_log_sum_exp_rows"},
          {"speed-up of log_sum_exp_rows over naive", "BM_naive_rows", "BM_log_sum_exp_rows"},
          {"speed-up of log_sum_exp_rows over the generic path", "BM_generic_rows", "BM_log_sum_exp_rows"},
      });
}
