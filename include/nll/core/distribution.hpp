// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// The Distribution concept: what a family p_θ(y | x) provides so that the generic driver
// (core/nll.hpp) can turn it into a loss with reductions, weights, masks, a normaliser and a
// gradient.
//
// A family is a small object (it may hold options, such as class weights or a label-smoothing
// factor). It is handed the whole batch — `params` (one parameter block per example: a row of
// logits, a mean and a variance, a reward difference …) and `targets` (one target per example) —
// and answers questions about example i. Params, targets and gradient buffers are whatever types
// the family accepts (any Eigen expression, a tuple of them, a struct of the family's own).
//
// Required (Distribution):
//   Index  num_examples(params, targets)          the batch size N
//   double neg_log_prob(params, targets, i)       ℓ_i = −log p_θi(y_i), including any weighting
//                                                 the family owns (class weights, smoothing …)
// Required for gradients (DifferentiableDistribution):
//   double neg_log_prob_grad(params, targets, i, scale, grad)
//          writes scale · ∂ℓ_i/∂θ_i into the gradient slot of example i and returns ℓ_i. It must
//          read everything it needs from params before writing, so grad may alias params.
//   void   zero_grad(grad, i)                     writes zeros into example i's gradient slot
//
// Optional (detected by the driver; see core/nll.hpp):
//   void   check(params, targets, function)        throw on structural misuse (via core/check.hpp)
//   void   check_gradient(params, targets, grad, function)   the gradient buffer's shape
//   bool   ignored(targets, i)                     example i does not count (e.g. ignore_index)
//   double target_weight(targets, i)               v_i in the mean's denominator (e.g. w[y_i])
//   double neg_log_prob_block(params, targets, const Block&)           a fused kernel over a block
//   double neg_log_prob_grad_block(params, targets, const Block&, grad) of examples; must agree
//                                                  with the per-example functions (tested against
//                                                  nll::nll_per_example)
//   static constexpr Eigen::Index block_size       examples per block, in [1, 4096] (default 1024)
//   static constexpr WeightedMean default_weighted_mean   what a weighted mean divides by when the
//                                                  caller does not say (core/options.hpp; default
//                                                  weight_sum, the Bernoulli family says count)
//
// Blocks may run on different threads (OpenMP): every member is const and must be safe to call
// concurrently for different examples, writing only example i's gradient slot.
// docs/architecture.md has a complete worked example (a Poisson family) and the full contract.
#pragma once

#include <Eigen/Core>
#include <concepts>
#include <string_view>

namespace nll {

/// A family p_θ(y | x) that can evaluate ℓ_i = −log p(y_i | θ_i) for each example of a batch.
template <class F, class Params, class Targets>
concept Distribution = requires(const F& family, const Params& params, const Targets& targets, Eigen::Index i) {
  { family.num_examples(params, targets) } -> std::convertible_to<Eigen::Index>;
  { family.neg_log_prob(params, targets, i) } -> std::convertible_to<double>;
};

/// A Distribution that also provides the analytic gradient of ℓ_i with respect to θ_i.
template <class F, class Params, class Targets, class Grad>
concept DifferentiableDistribution = Distribution<F, Params, Targets> &&
    requires(const F& family, const Params& params, const Targets& targets, Eigen::Index i, double scale, Grad& grad) {
  { family.neg_log_prob_grad(params, targets, i, scale, grad) } -> std::convertible_to<double>;
  family.zero_grad(grad, i);
};

/// What the driver hands a family's fused block kernel: examples [begin, begin + size).
///
/// - `weight == nullptr`: every example in the block counts with weight 1 and its gradient is
///   scaled by `uniform_grad_scale`.
/// - otherwise `weight[k]` is example begin+k's weight (0: it does not count — add nothing, write a
///   zero gradient, do not even evaluate it) and `grad_scale[k]` its gradient scale.
/// - `loss_out`, when not null, receives weight_k · ℓ_{begin+k} (0 where it does not count).
/// The kernel returns Σ_k weight_k · ℓ_{begin+k}, accumulated in double.
struct Block {
  Eigen::Index begin = 0;
  Eigen::Index size = 0;
  const double* weight = nullptr;
  const double* grad_scale = nullptr;
  double uniform_grad_scale = 1;
  double* loss_out = nullptr;

  /// The weight of the k-th example of the block.
  double weight_at(Eigen::Index k) const { return weight ? weight[k] : 1.0; }
  /// The gradient scale of the k-th example of the block.
  double grad_scale_at(Eigen::Index k) const { return grad_scale ? grad_scale[k] : uniform_grad_scale; }
};

namespace detail {
template <class F, class P, class T>
concept HasCheck = requires(const F& f, const P& p, const T& t, std::string_view fn) {
  f.check(p, t, fn);
};
template <class F, class P, class T, class G>
concept HasCheckGradient = requires(const F& f, const P& p, const T& t, G& g, std::string_view fn) {
  f.check_gradient(p, t, g, fn);
};
template <class F, class T>
concept HasIgnored = requires(const F& f, const T& t, Eigen::Index i) {
  { f.ignored(t, i) } -> std::convertible_to<bool>;
};
template <class F, class T>
concept HasTargetWeight = requires(const F& f, const T& t, Eigen::Index i) {
  { f.target_weight(t, i) } -> std::convertible_to<double>;
};
template <class F, class P, class T>
concept HasValueBlock = requires(const F& f, const P& p, const T& t, const Block& b) {
  { f.neg_log_prob_block(p, t, b) } -> std::convertible_to<double>;
};
template <class F, class P, class T, class G>
concept HasGradBlock = requires(const F& f, const P& p, const T& t, const Block& b, G& g) {
  { f.neg_log_prob_grad_block(p, t, b, g) } -> std::convertible_to<double>;
};
template <class F> constexpr Eigen::Index block_size_of() {
  if constexpr (requires { F::block_size; }) {
    return F::block_size;
  } else {
    return 1024;
  }
}
} // namespace detail

} // namespace nll
