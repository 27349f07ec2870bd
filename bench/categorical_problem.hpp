// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// The categorical benchmark's problems, shared by bench_categorical.cpp and the A/B driver
// (bench/ab/driver.cpp), so that both time the same data: logits like a language model's, of the
// two benchmark shapes or any other.
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <random>
#include <vector>

namespace nll_bench {

using RowMajorXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMajorXb = Eigen::Matrix<Eigen::bfloat16, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct Shape {
  Eigen::Index rows, cols;
};
/// The benchmark's shapes (argument 0 and 1), about 262 MB of float32 each.
constexpr Shape kShapes[2] = {{2048, 32000}, {512, 128256}};

/// One problem: logits like a language model's (normal with a per-row offset and spread, a few
/// confident values per row; fixed seed), targets, and gradient buffers (touched, so no page
/// faults are timed).
struct Problem {
  RowMajorXf x, g;
  RowMajorXb xb, gb;
  std::vector<std::int32_t> y;
};

inline Problem make_problem(const Shape& s) {
  Problem p;
  std::mt19937_64 rng(20261128 + static_cast<std::uint64_t>(s.cols));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::uniform_int_distribution<Eigen::Index> column(0, s.cols - 1);
  p.x.resize(s.rows, s.cols);
  p.y.resize(static_cast<std::size_t>(s.rows));
  for (Eigen::Index i = 0; i < s.rows; ++i) {
    const float offset = 4.0f * normal(rng), spread = 1.0f + 3.0f * uniform(rng);
    for (Eigen::Index j = 0; j < s.cols; ++j) p.x(i, j) = offset + spread * normal(rng);
    for (int k = 0; k < 8; ++k) p.x(i, column(rng)) = offset + spread * (6.0f + 4.0f * uniform(rng));
    p.y[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(column(rng));
  }
  p.g = RowMajorXf::Ones(s.rows, s.cols);
  p.xb = p.x.cast<Eigen::bfloat16>();
  p.gb = RowMajorXb::Constant(s.rows, s.cols, Eigen::bfloat16(1.0f));
  return p;
}

} // namespace nll_bench
