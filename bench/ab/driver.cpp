// nll: the A/B driver of scripts/ab_categorical. SPDX-License-Identifier: MIT
//
// Times two versions of the categorical kernels (libnll_ab_A.so and libnll_ab_B.so, built from
// kernel.cpp against two trees of include/nll) in one process, on the benchmark's data
// (bench/categorical_problem.hpp): float32 value + gradient, float32 value, bfloat16 value +
// gradient. Rounds alternate A and B, the order swapped every round, each call timed on the
// thread's CPU clock; the table gives medians and, per kernel, the median of the per-round ratios
// B / A. Consecutive whole-program runs on a shared machine disagree by more than the differences
// that decide a kernel change (docs/performance.md); calls of one round see the same machine.
//
// Before timing, A and B are run once and compared: the values, and the gradients entry by entry
// (bitwise equal, or the largest difference relative to the largest entry). Exit status 1 when the
// two versions disagree beyond that report's "same" threshold (1e-6 relative on the value,
// 1e-5 of the largest gradient entry), so that a kernel change that is not a pure speed change
// shows.
//
// Usage: driver ROWS COLS ROUNDS
#include <Eigen/Core>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../categorical_problem.hpp"
#include "../timing.hpp"

using nll_bench::RowMajorXb;
using nll_bench::RowMajorXf;

extern "C" {
double nll_ab_A_f32_value_grad(const float*, float*, const int*, long, long);
double nll_ab_B_f32_value_grad(const float*, float*, const int*, long, long);
double nll_ab_A_f32_value(const float*, float*, const int*, long, long);
double nll_ab_B_f32_value(const float*, float*, const int*, long, long);
double nll_ab_A_bf16_value_grad(const Eigen::bfloat16*, Eigen::bfloat16*, const int*, long, long);
double nll_ab_B_bf16_value_grad(const Eigen::bfloat16*, Eigen::bfloat16*, const int*, long, long);
}

namespace {

/// Largest |a − b| over the largest |a|, and how many entries differ in their bits.
template <class Matrix> void compare_gradients(const char* what, const Matrix& a, const Matrix& b, bool& same) {
  double largest = 0, worst = 0;
  long differing = 0;
  for (Eigen::Index k = 0; k < a.size(); ++k) {
    const double x = static_cast<double>(static_cast<float>(a.data()[k]));
    const double y = static_cast<double>(static_cast<float>(b.data()[k]));
    largest = std::fmax(largest, std::fabs(x));
    worst = std::fmax(worst, std::fabs(x - y));
    differing += std::memcmp(&a.data()[k], &b.data()[k], sizeof(a.data()[k])) != 0;
  }
  const double relative = largest > 0 ? worst / largest : worst;
  std::printf(
      "  %-16s gradient: %ld of %ld entries differ in their bits; largest difference %.3g of the largest entry\n", what,
      differing, static_cast<long>(a.size()), relative);
  if (!(relative <= 1e-5)) same = false;
}

void compare_values(const char* what, double a, double b, bool& same) {
  const double relative = std::fabs(a - b) / std::fmax(std::fabs(a), 1e-300);
  std::printf("  %-16s value: A %.17g, B %.17g (relative difference %.3g)\n", what, a, b, relative);
  if (!(relative <= 1e-6)) same = false;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s ROWS COLS ROUNDS\n", argv[0]);
    return 2;
  }
  const nll_bench::Shape shape{std::atol(argv[1]), std::atol(argv[2])};
  const int rounds = std::atoi(argv[3]);
  if (shape.rows < 1 || shape.cols < 1 || rounds < 1) {
    std::fprintf(stderr, "%s: ROWS, COLS and ROUNDS must be positive\n", argv[0]);
    return 2;
  }
  nll_bench::Problem p = nll_bench::make_problem(shape);
  const long r = static_cast<long>(shape.rows), c = static_cast<long>(shape.cols);
  const int* y = p.y.data();

  std::printf("%ld x %ld: A against B\n", r, c);
  bool same = true;
  {
    RowMajorXf ga = p.g, gb = p.g;
    RowMajorXb ha = p.gb, hb = p.gb;
    compare_values("f32 value+grad", nll_ab_A_f32_value_grad(p.x.data(), ga.data(), y, r, c),
                   nll_ab_B_f32_value_grad(p.x.data(), gb.data(), y, r, c), same);
    compare_gradients("f32 value+grad", ga, gb, same);
    compare_values("f32 value", nll_ab_A_f32_value(p.x.data(), nullptr, y, r, c),
                   nll_ab_B_f32_value(p.x.data(), nullptr, y, r, c), same);
    compare_values("bf16 value+grad", nll_ab_A_bf16_value_grad(p.xb.data(), ha.data(), y, r, c),
                   nll_ab_B_bf16_value_grad(p.xb.data(), hb.data(), y, r, c), same);
    compare_gradients("bf16 value+grad", ha, hb, same);
  }

  // times[kernel][side] per round; a kernel's A and B calls follow each other.
  enum { kF32Grad, kF32Value, kBf16Grad, kKernels };
  std::vector<double> times[kKernels][2];
  volatile double sink = 0;
  const auto timed = [&](auto&& call) {
    const double t0 = nll_bench::thread_seconds();
    sink = sink + call();
    return nll_bench::thread_seconds() - t0;
  };
  for (int round = 0; round < rounds; ++round) {
    for (int k = 0; k < kKernels; ++k) {
      for (int turn = 0; turn < 2; ++turn) {
        const int side = (turn + round) % 2; // A first in even rounds, B first in odd ones
        double t = 0;
        if (k == kF32Grad) {
          t = timed([&] {
            return side == 0 ? nll_ab_A_f32_value_grad(p.x.data(), p.g.data(), y, r, c)
                             : nll_ab_B_f32_value_grad(p.x.data(), p.g.data(), y, r, c);
          });
        } else if (k == kF32Value) {
          t = timed([&] {
            return side == 0 ? nll_ab_A_f32_value(p.x.data(), nullptr, y, r, c)
                             : nll_ab_B_f32_value(p.x.data(), nullptr, y, r, c);
          });
        } else {
          t = timed([&] {
            return side == 0 ? nll_ab_A_bf16_value_grad(p.xb.data(), p.gb.data(), y, r, c)
                             : nll_ab_B_bf16_value_grad(p.xb.data(), p.gb.data(), y, r, c);
          });
        }
        times[k][side].push_back(t);
      }
    }
  }

  const auto ratios = [](const std::vector<double>& num, const std::vector<double>& den) {
    std::vector<double> out;
    for (std::size_t i = 0; i < num.size(); ++i) out.push_back(num[i] / den[i]);
    return nll_bench::median(out);
  };
  std::printf("%d rounds, thread CPU time, medians (ms)     A         B     B / A (per round)\n", rounds);
  const char* names[kKernels] = {"f32 value+grad", "f32 value", "bf16 value+grad"};
  for (int k = 0; k < kKernels; ++k) {
    std::printf("  %-38s %8.3f  %8.3f  %8.3f\n", names[k], 1e3 * nll_bench::median(times[k][0]),
                1e3 * nll_bench::median(times[k][1]), ratios(times[k][1], times[k][0]));
  }
  std::printf("  %-38s %8.3f  %8.3f\n", "bf16 / f32 value+grad (per round)",
              ratios(times[kBf16Grad][0], times[kF32Grad][0]), ratios(times[kBf16Grad][1], times[kF32Grad][1]));
  if (!same) std::printf("A and B DISAGREE beyond 1e-6 (values) / 1e-5 (gradients): not a pure speed change\n");
  return same ? 0 : 1;
}
