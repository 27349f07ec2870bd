// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// Timing helpers shared by the benchmark programs and the A/B driver (bench/ab/): the thread's CPU
// clock and the median. No Google Benchmark here, so that bench/ab/driver.cpp builds without it.
#pragma once

#include <algorithm>
#include <ctime>
#include <vector>

namespace nll_bench {

/// The median of `values` (the mean of the two middle ones for an even count); −1 when empty.
inline double median(std::vector<double> values) {
  if (values.empty()) return -1;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

/// CPU time of the calling thread (seconds): what the scheduler gave this thread, not the wall
/// clock, so time given to other processes of this shared machine is not counted.
inline double thread_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

} // namespace nll_bench
