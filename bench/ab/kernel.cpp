// nll: one side of the A/B comparison of scripts/ab_categorical. SPDX-License-Identifier: MIT
//
// Compiled twice into shared libraries with hidden visibility, once against each version of
// include/nll (NLL_AB_SIDE = A or B), so that two versions of the same inline kernels live in one
// process without clashing. Exports the three calls the driver times.
#include <nll/dist/categorical.hpp>

#include <span>

#define NLL_AB_CAT2(a, b) a##b
#define NLL_AB_CAT(a, b) NLL_AB_CAT2(a, b)
#define NLL_AB_EXPORT(name)                                                                                            \
  extern "C" __attribute__((visibility("default"))) double NLL_AB_CAT(NLL_AB_CAT(nll_ab_, NLL_AB_SIDE), name)

using RowF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowB = Eigen::Matrix<Eigen::bfloat16, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// float32 value + gradient (mean reduction), as BM_value_grad.
NLL_AB_EXPORT(_f32_value_grad)(const float* x, float* g, const int* y, long rows, long cols) {
  const Eigen::Map<const RowF> logits(x, rows, cols);
  Eigen::Map<RowF> grad(g, rows, cols);
  return nll::cross_entropy(logits, std::span<const int>(y, static_cast<std::size_t>(rows)), grad).value;
}

/// float32 value only, as BM_value.
NLL_AB_EXPORT(_f32_value)(const float* x, float*, const int* y, long rows, long cols) {
  const Eigen::Map<const RowF> logits(x, rows, cols);
  return nll::cross_entropy(logits, std::span<const int>(y, static_cast<std::size_t>(rows))).value;
}

/// bfloat16 value + gradient, as BM_bf16_value_grad.
NLL_AB_EXPORT(_bf16_value_grad)(const Eigen::bfloat16* x, Eigen::bfloat16* g, const int* y, long rows, long cols) {
  const Eigen::Map<const RowB> logits(x, rows, cols);
  Eigen::Map<RowB> grad(g, rows, cols);
  return nll::cross_entropy(logits, std::span<const int>(y, static_cast<std::size_t>(rows)), grad).value;
}
