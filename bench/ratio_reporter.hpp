// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// A Google Benchmark main() that, after the usual console table, prints RATIOS between benchmarks
// of the same run (e.g. "ours / read bound", "naive / ours"). Absolute times on a shared 2-core
// machine move from run to run; ratios against a bound measured in the same process move much less,
// so every speed figure in docs/performance.md is one of these ratios.
//
// Each benchmark's time is the CPU time per iteration of its (single) thread: the "median" aggregate
// when the run has repetitions (--benchmark_repetitions=N), otherwise the median of its reported
// iteration runs. CPU rather than wall-clock time, because on a shared machine the time the scheduler
// gives to other processes would otherwise be counted; benchmarks used in ratios must therefore be
// single-threaded and use the same time unit.
//
// Usage (in a bench_*.cpp, instead of BENCHMARK_MAIN()):
//   int main(int argc, char** argv) {
//     return nll_bench::run_with_ratios(argc, argv, {{"ours / read bound", "BM_ours", "BM_read"}, ...});
//   }
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "timing.hpp"

namespace nll_bench {

/// One line of the ratio table: time(numerator) / time(denominator). Names are benchmark function
/// names as registered (e.g. "BM_log_sum_exp_rows"), with "/args" appended for benchmarks with
/// arguments.
struct Ratio {
  std::string label;
  std::string numerator;
  std::string denominator;
};

/// One number per benchmark (a time, a counter), read from its runs the way the ratio table reads
/// times: the "median" aggregate when the run has repetitions, otherwise the median of its
/// iteration runs; −1 for a benchmark that did not run.
class PerBenchmark {
public:
  void record(const benchmark::BenchmarkReporter::Run& run, const std::string& key, double value) {
    if (run.run_type == benchmark::BenchmarkReporter::Run::RT_Aggregate) {
      if (run.aggregate_name == "median") medians_[key] = value;
    } else {
      iterations_[key].push_back(value);
    }
  }
  double get(const std::string& key) const {
    if (auto it = medians_.find(key); it != medians_.end()) return it->second;
    auto it = iterations_.find(key);
    return it == iterations_.end() ? -1 : median(it->second);
  }

private:
  std::map<std::string, double> medians_;
  std::map<std::string, std::vector<double>> iterations_;
};

/// A console reporter that remembers each benchmark's time and prints the ratio table at the end.
class RatioReporter : public benchmark::ConsoleReporter {
public:
  explicit RatioReporter(std::vector<Ratio> ratios) : ratios_(std::move(ratios)) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      std::string key = run.run_name.function_name;
      if (!run.run_name.args.empty()) key += "/" + run.run_name.args;
      times_.record(run, key, run.GetAdjustedCPUTime());
    }
    ConsoleReporter::ReportRuns(runs);
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    std::FILE* out = stdout;
    std::fprintf(out, "\nRatios of CPU times (medians of the repetitions when --benchmark_repetitions > 1):\n");
    for (const Ratio& r : ratios_) {
      const double num = times_.get(r.numerator), den = times_.get(r.denominator);
      if (num <= 0 || den <= 0) {
        std::fprintf(out, "  %-44s (not run)\n", r.label.c_str());
        continue;
      }
      std::fprintf(out, "  %-44s %8.3f\n", r.label.c_str(), num / den);
    }
    std::fflush(out);
  }

private:
  std::vector<Ratio> ratios_;
  PerBenchmark times_;
};

/// Initialises Google Benchmark from the command line, runs the selected benchmarks with a
/// RatioReporter on the console and returns the process exit code.
inline int run_with_ratios(int argc, char** argv, std::vector<Ratio> ratios) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RatioReporter reporter(std::move(ratios));
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}

} // namespace nll_bench
