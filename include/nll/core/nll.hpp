// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// The generic negative log-likelihood: one driver that turns any Distribution into a loss.
//
//   value = Σ_i w_i·ℓ_i / D,    ℓ_i = −log p_θi(y_i)   (the family's per-example loss)
//
// over the examples that count (not masked, not ignored by the family, weight w_i > 0), with
//   D = 1                 for Reduction::sum (and none, where the w_i·ℓ_i are also returned),
//   D = Σ_i w_i·v_i       for Reduction::mean (v_i: the family's target weight, 1 by default),
//   D = Σ_i v_i           for Reduction::mean with WeightedMean::count (weights rescale each loss,
//                         the mean stays over examples: PyTorch's binary_cross_entropy* `weight`),
//   D = normalizer        for Reduction::mean with an external normaliser.
//
// Gradient, written into a caller buffer (which may alias the parameters):
//   ∂value/∂θ_i = (w_i / D)·∂ℓ_i/∂θ_i            (sum, mean)
//   ∂/∂θ_i of Σ_j g_j·w_j·ℓ_j = g_i·w_i·∂ℓ_i/∂θ_i  (none, upstream g; g = 1 when not given)
// and zero for every example that does not count. The per-example factor is folded in before any
// reduction, so per-example upstream gradients are honoured (Liger-Kernel issues 678 and 968).
//
// A mean over a total weight of zero follows options.empty_mean: zero (value 0, gradient 0, the
// default) or nan (value NaN like PyTorch; examples that count get a NaN gradient). total_weight
// is always returned so callers can combine micro-batches exactly.
//
// Order of work: every argument check runs before anything is evaluated or written, so a failed
// check leaves the gradient buffer untouched. Then the examples are processed in blocks of the
// family's block_size; block sums are added in block order, so the result does not depend on the
// number of OpenMP threads. Compiled with OpenMP (-fopenmp; CMake option NLL_OPENMP for nll's own
// targets), the blocks of one call are split across threads; define NLL_DISABLE_OPENMP to keep
// the driver serial in an OpenMP program.
//
// Errors (std::invalid_argument for shapes, std::domain_error for values), in the grammar
// "nll::<function>: <argument>[i] is <value>, but must be <requirement>":
//   options.weight / mask / upstream of the wrong length or not contiguous (invalid_argument); a
//   negative or non-finite weight, a mask entry other than 0 or 1, upstream without
//   Reduction::none, a weighted_mean that is not one of the enumerators, a normaliser that is not
//   finite and positive or given without Reduction::mean (domain_error); and whatever the family's check() and
//   check_gradient() reject.
// The family's check() runs first, then check_gradient(), then the option checks in that order.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string_view>
#include <type_traits>
#include <vector>

#include "check.hpp"
#include "distribution.hpp"
#include "options.hpp"

namespace nll {

/// Which kernel the driver uses: the family's fused block kernel when it has one, or always the
/// per-example functions (the reference path the fused kernels are tested against).
enum class KernelPath { fused, per_example };

namespace detail {

/// The gradient argument of a value-only call.
struct NoGradient {};

/// Called at the top of every loop that calls a family's per-example code: keeps GCC from
/// vectorising it. Those loops add in example order, so vectorising gains nothing; and GCC 12 with
/// AVX-512 vectorises a simple family's loads as gathers, which made a value-only call 4x slower
/// than the plain scalar loop (bench/bench_driver.cpp, docs/performance.md). Costs no instruction.
inline void keep_scalar() {
#if defined(__GNUC__) && !defined(__clang__)
  __asm__ __volatile__("");
#endif
}

inline void check_example_view(std::string_view function, std::string_view name, const ExampleView& view,
                               Eigen::Index n) {
  if (view.empty()) return;
  std::string argument(name);
  if (view.inner_stride() != 1)
    fail(ErrorKind::shape, function, argument + ".innerStride()", view.inner_stride(), "1 (contiguous storage)");
  check_size(function, argument + ".size()", view.size(), n, "the number of examples");
}

inline void check_driver_options(std::string_view function, const NllOptions& o, Eigen::Index n) {
  check_example_view(function, "options.weight", o.weight, n);
  check_example_view(function, "options.mask", o.mask, n);
  check_example_view(function, "options.upstream", o.upstream, n);
  if (!o.weight.empty()) {
    o.weight.visit([&](const auto* w) {
      using W = std::remove_cvref_t<decltype(*w)>;
      if constexpr (!std::is_same_v<W, bool>) { // bool weights are 0 or 1: always valid
        // One branch-free (vectorised) pass — NaN fails both comparisons — and a search for the
        // index only when it fails.
        constexpr W kMax = std::numeric_limits<W>::max();
        Eigen::Index good = 0;
        for (Eigen::Index i = 0; i < n; ++i) good += Eigen::Index(w[i] >= 0) & Eigen::Index(w[i] <= kMax);
        if (good == n) return;
        for (Eigen::Index i = 0; i < n; ++i) {
          if (!(w[i] >= 0 && w[i] <= kMax))
            fail_at(ErrorKind::value, function, "options.weight", i, w[i], "finite and >= 0");
        }
      }
    });
  }
  if (!o.mask.empty()) {
    o.mask.visit([&](const auto* m) {
      if constexpr (!std::is_same_v<std::remove_cvref_t<decltype(*m)>, bool>) {
        Eigen::Index good = 0;
        for (Eigen::Index i = 0; i < n; ++i) good += Eigen::Index(m[i] == 0) | Eigen::Index(m[i] == 1);
        if (good == n) return;
        for (Eigen::Index i = 0; i < n; ++i) {
          if (!(m[i] == 0 || m[i] == 1)) fail_at(ErrorKind::value, function, "options.mask", i, m[i], "0 or 1");
        }
      }
    });
  }
  if (!o.upstream.empty() && o.reduction != Reduction::none)
    fail(ErrorKind::value, function, "options.upstream.size()", o.upstream.size(),
         "0 unless options.reduction is none");
  if (o.weighted_mean != WeightedMean::family_default && o.weighted_mean != WeightedMean::weight_sum &&
      o.weighted_mean != WeightedMean::count)
    fail(ErrorKind::value, function, "options.weighted_mean", static_cast<int>(o.weighted_mean),
         "family_default (0), weight_sum (1) or count (2)");
  if (o.normalizer) {
    const double d = *o.normalizer;
    if (o.reduction != Reduction::mean)
      fail(ErrorKind::value, function, "options.normalizer", d, "unset unless options.reduction is mean");
    if (!(d > 0) || !std::isfinite(d)) fail(ErrorKind::value, function, "options.normalizer", d, "finite and > 0");
  }
}

/// The family's WeightedMean convention: F::default_weighted_mean when it declares one, else weight_sum.
template <class F> constexpr WeightedMean family_weighted_mean() {
  if constexpr (requires { F::default_weighted_mean; }) {
    static_assert(F::default_weighted_mean == WeightedMean::weight_sum ||
                      F::default_weighted_mean == WeightedMean::count,
                  "nll: a family's default_weighted_mean must be WeightedMean::weight_sum or WeightedMean::count");
    return F::default_weighted_mean;
  } else {
    return WeightedMean::weight_sum;
  }
}

/// Writes the loss weight of examples [begin, begin + count) into out[0, count): the per-example
/// weight (1 when none is given), or 0 where the example does not count (masked, or ignored by the
/// family; ignored() is asked only about examples that would otherwise count). Typed loops: one
/// switch on the view's element type per call, not per example.
template <class F, class T>
void example_weights(const F& family, const T& targets, const NllOptions& o, Eigen::Index begin, Eigen::Index count,
                     double* out) {
  if (o.weight.empty()) {
    std::fill_n(out, count, 1.0);
  } else {
    o.weight.visit([&](const auto* w) {
      for (Eigen::Index k = 0; k < count; ++k) out[k] = static_cast<double>(w[begin + k]);
    });
  }
  if (!o.mask.empty()) {
    o.mask.visit([&](const auto* m) {
      for (Eigen::Index k = 0; k < count; ++k) out[k] = m[begin + k] == 0 ? 0.0 : out[k];
    });
  }
  if constexpr (HasIgnored<F, T>) {
    for (Eigen::Index k = 0; k < count; ++k) {
      keep_scalar();
      if (out[k] != 0 && family.ignored(targets, begin + k)) out[k] = 0;
    }
  }
}

/// Σ_i w_i·v_i over the examples that count. Example i is added to lane i mod 8 and the lanes are
/// added in a fixed order at the end: deterministic, exact for integer counts, and eight
/// independent additions per step instead of one chain (vectorised without a target weight).
template <class F, class T>
double total_weight_of(const F& family, const T& targets, const NllOptions& o, Eigen::Index n) {
  constexpr Eigen::Index kChunk = 256, kLanes = 8;
  static_assert(kChunk % kLanes == 0);
  std::array<double, kChunk> w;
  std::array<double, kLanes> lanes{};
  for (Eigen::Index begin = 0; begin < n; begin += kChunk) {
    const Eigen::Index count = std::min(kChunk, n - begin);
    example_weights(family, targets, o, begin, count, w.data());
    if constexpr (HasTargetWeight<F, T>) {
      for (Eigen::Index k = 0; k < count; ++k) {
        keep_scalar();
        // target_weight is asked only about examples that count (an ignored label may be no class).
        if (w[k] != 0) lanes[k % kLanes] += w[k] * static_cast<double>(family.target_weight(targets, begin + k));
      }
    } else {
      // w[k] is 0 for an example that does not count; adding +0 to a lane changes nothing.
      Eigen::Index k = 0;
      for (; k + kLanes <= count; k += kLanes) {
        for (Eigen::Index l = 0; l < kLanes; ++l) lanes[l] += w[k + l];
      }
      for (; k < count; ++k) lanes[k % kLanes] += w[k];
    }
  }
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

/// The per-example reference implementation of a block (value only).
template <class F, class P, class T>
double value_block_per_example(const F& family, const P& params, const T& targets, const Block& block) {
  double sum = 0;
  if (!block.weight && !block.loss_out) { // every example counts with weight 1, no per-example output
    for (Eigen::Index k = 0; k < block.size; ++k) {
      keep_scalar();
      sum += static_cast<double>(family.neg_log_prob(params, targets, block.begin + k));
    }
    return sum;
  }
  for (Eigen::Index k = 0; k < block.size; ++k) {
    keep_scalar();
    const double w = block.weight_at(k);
    double contribution = 0;
    if (w != 0) contribution = w * static_cast<double>(family.neg_log_prob(params, targets, block.begin + k));
    if (block.loss_out) block.loss_out[k] = contribution;
    sum += contribution;
  }
  return sum;
}

/// The per-example reference implementation of a block (value and gradient).
template <class F, class P, class T, class G>
double grad_block_per_example(const F& family, const P& params, const T& targets, const Block& block, G& grad) {
  double sum = 0;
  for (Eigen::Index k = 0; k < block.size; ++k) {
    keep_scalar();
    const double w = block.weight_at(k);
    const Eigen::Index i = block.begin + k;
    double contribution = 0;
    if (w != 0) {
      contribution =
          w * static_cast<double>(family.neg_log_prob_grad(params, targets, i, block.grad_scale_at(k), grad));
    } else {
      family.zero_grad(grad, i);
    }
    if (block.loss_out) block.loss_out[k] = contribution;
    sum += contribution;
  }
  return sum;
}

/// The driver behind nll::nll and every named loss. `grad` is null for a value-only call.
template <KernelPath kPath, class F, class P, class T, class G>
Loss run_nll(std::string_view function, const F& family, const P& params, const T& targets, G* grad,
             const NllOptions& options) {
  constexpr bool kWithGrad = !std::is_same_v<G, NoGradient>;
  // 1. Every check before any evaluation or write.
  if constexpr (HasCheck<F, P, T>) family.check(params, targets, function);
  const Eigen::Index n = static_cast<Eigen::Index>(family.num_examples(params, targets));
  if constexpr (kWithGrad) {
    if constexpr (HasCheckGradient<F, P, T, G>) family.check_gradient(params, targets, *grad, function);
  }
  check_driver_options(function, options, n);

  // 2. The denominator: Σ w_i·v_i, or Σ v_i for WeightedMean::count (the weights left out).
  const bool uniform = options.weight.empty() && options.mask.empty() && !HasIgnored<F, T>;
  const WeightedMean weighted_mean =
      options.weighted_mean == WeightedMean::family_default ? family_weighted_mean<F>() : options.weighted_mean;
  NllOptions denominator_options = options;
  if (weighted_mean == WeightedMean::count) denominator_options.weight = {};
  const bool every_example_counts_once =
      denominator_options.weight.empty() && options.mask.empty() && !HasIgnored<F, T> && !HasTargetWeight<F, T>;
  const double total_weight =
      every_example_counts_once ? static_cast<double>(n) : total_weight_of(family, targets, denominator_options, n);
  Loss result;
  result.total_weight = total_weight;
  const bool mean = options.reduction == Reduction::mean;
  result.denominator = !mean ? 1.0 : options.normalizer ? *options.normalizer : total_weight;
  const bool empty_mean = mean && result.denominator == 0;
  if (options.reduction == Reduction::none) result.per_example.setZero(n);

  if (empty_mean && options.empty_mean == EmptyMean::zero) {
    if constexpr (kWithGrad) {
      for (Eigen::Index i = 0; i < n; ++i) family.zero_grad(*grad, i);
    }
    result.value = 0;
    return result;
  }
  const double grad_factor = empty_mean ? std::numeric_limits<double>::quiet_NaN() : 1.0 / result.denominator;

  // 3. Blocks, summed in block order.
  constexpr Eigen::Index kBlock = block_size_of<F>();
  static_assert(kBlock > 0 && kBlock <= 4096, "a family's block_size must be in [1, 4096]");
  const Eigen::Index num_blocks = (n + kBlock - 1) / kBlock;
  // One partial sum per block; on the stack up to 64 blocks (no allocation for small batches).
  constexpr Eigen::Index kStackBlocks = 64;
  std::array<double, kStackBlocks> small_sums;
  std::vector<double> large_sums;
  if (num_blocks > kStackBlocks) large_sums.resize(static_cast<std::size_t>(num_blocks));
  double* const block_sums = num_blocks > kStackBlocks ? large_sums.data() : small_sums.data();
  const bool per_example_weights = !uniform || !options.upstream.empty();
  double* const loss_out = options.reduction == Reduction::none ? result.per_example.data() : nullptr;

  const auto run_block = [&](Eigen::Index b) {
    Block block;
    block.begin = b * kBlock;
    block.size = std::min(kBlock, n - block.begin);
    block.uniform_grad_scale = grad_factor;
    block.loss_out = loss_out ? loss_out + block.begin : nullptr;
    std::array<double, 2 * kBlock> scratch; // on the stack: no allocation per block
    if (per_example_weights) {
      double* weight = scratch.data();
      example_weights(family, targets, options, block.begin, block.size, weight);
      block.weight = weight;
      if constexpr (kWithGrad) {
        double* scale = weight + block.size;
        if (options.upstream.empty()) {
          for (Eigen::Index k = 0; k < block.size; ++k) scale[k] = weight[k] * grad_factor;
        } else {
          options.upstream.visit([&](const auto* g) {
            for (Eigen::Index k = 0; k < block.size; ++k)
              scale[k] = weight[k] * grad_factor * static_cast<double>(g[block.begin + k]);
          });
        }
        block.grad_scale = scale;
      }
    }
    double sum = 0;
    if constexpr (kWithGrad) {
      if constexpr (kPath == KernelPath::fused && HasGradBlock<F, P, T, G>) {
        sum = family.neg_log_prob_grad_block(params, targets, block, *grad);
      } else {
        sum = grad_block_per_example(family, params, targets, block, *grad);
      }
    } else {
      if constexpr (kPath == KernelPath::fused && HasValueBlock<F, P, T>) {
        sum = family.neg_log_prob_block(params, targets, block);
      } else {
        sum = value_block_per_example(family, params, targets, block);
      }
    }
    block_sums[b] = sum;
  };
#if defined(_OPENMP) && !defined(NLL_DISABLE_OPENMP)
#pragma omp parallel for schedule(static) if (num_blocks > 1)
  for (Eigen::Index b = 0; b < num_blocks; ++b) run_block(b);
#else
  for (Eigen::Index b = 0; b < num_blocks; ++b) run_block(b);
#endif
  double total = 0;
  for (Eigen::Index b = 0; b < num_blocks; ++b) total += block_sums[b];

  result.value = empty_mean ? std::numeric_limits<double>::quiet_NaN() : total / result.denominator;
  return result;
}

template <class F, class P, class T> constexpr void require_distribution() {
  static_assert(
      Distribution<F, P, T>,
      "nll::nll / nll::nll_per_example: the family is not an nll::Distribution for these params and targets. It needs "
      "`Index num_examples(params, targets) const` and `double neg_log_prob(params, targets, i) const`.");
}
template <class F, class P, class T, class G> constexpr void require_differentiable() {
  static_assert(DifferentiableDistribution<F, P, T, G>,
                "nll::nll / nll::nll_per_example: a gradient was requested, but the family is not an "
                "nll::DifferentiableDistribution "
                "for this gradient buffer. It needs `double neg_log_prob_grad(params, targets, i, scale, grad) "
                "const` (writes scale * d(-log p_i)/d(theta_i) into grad) and `void zero_grad(grad, i) const`.");
}

template <class G>
concept GradientBuffer = !std::is_same_v<std::remove_cvref_t<G>, NllOptions>;

} // namespace detail

/// The negative log-likelihood of `targets` under `family` with parameters `params`, reduced as
/// `options` says (see the file comment for the formulas). Value only.
template <class F, class P, class T>
Loss nll(const F& family, const P& params, const T& targets, const NllOptions& options = {}) {
  detail::require_distribution<F, P, T>();
  if constexpr (Distribution<F, P, T>) {
    return detail::run_nll<KernelPath::fused>("nll", family, params, targets, static_cast<detail::NoGradient*>(nullptr),
                                              options);
  } else {
    return {};
  }
}

/// The same, and the gradient of the reduced value with respect to the parameters, written into
/// `grad` (laid out as the family defines, usually the shape of params; may be params itself).
template <class F, class P, class T, detail::GradientBuffer G>
Loss nll(const F& family, const P& params, const T& targets, G&& grad, const NllOptions& options = {}) {
  using Grad = std::remove_reference_t<G>;
  detail::require_differentiable<F, P, T, Grad>();
  if constexpr (DifferentiableDistribution<F, P, T, Grad>) {
    return detail::run_nll<KernelPath::fused>("nll", family, params, targets, &grad, options);
  } else {
    return {};
  }
}

/// nll() through the family's per-example functions only, never its fused block kernels: the
/// reference the fused kernels are tested against.
template <class F, class P, class T>
Loss nll_per_example(const F& family, const P& params, const T& targets, const NllOptions& options = {}) {
  detail::require_distribution<F, P, T>();
  if constexpr (Distribution<F, P, T>) {
    return detail::run_nll<KernelPath::per_example>("nll_per_example", family, params, targets,
                                                    static_cast<detail::NoGradient*>(nullptr), options);
  } else {
    return {};
  }
}

/// nll() with a gradient, through the per-example functions only.
template <class F, class P, class T, detail::GradientBuffer G>
Loss nll_per_example(const F& family, const P& params, const T& targets, G&& grad, const NllOptions& options = {}) {
  using Grad = std::remove_reference_t<G>;
  detail::require_differentiable<F, P, T, Grad>();
  if constexpr (DifferentiableDistribution<F, P, T, Grad>) {
    return detail::run_nll<KernelPath::per_example>("nll_per_example", family, params, targets, &grad, options);
  } else {
    return {};
  }
}

} // namespace nll
