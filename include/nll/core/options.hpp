// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// What every loss shares: the reduction, per-example weights, a mask, an external normaliser, the
// policy for a mean over nothing, per-example upstream gradients, and the Loss result.
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <ranges>
#include <type_traits>

namespace nll {

/// How per-example losses ℓ_i (already multiplied by their weights w_i) become the result.
enum class Reduction {
  none, ///< keep every w_i·ℓ_i in Loss::per_example; Loss::value is their sum
  sum,  ///< Σ_i w_i·ℓ_i
  mean  ///< Σ_i w_i·ℓ_i / Σ_i w_i·v_i (v_i: the family's target weight, e.g. a class weight),
        ///< or / normalizer when one is given
};

/// What a mean over nothing (a denominator of zero: every example masked or ignored, or every
/// weight zero) returns.
enum class EmptyMean {
  zero, ///< value 0, gradient 0 (the default; what a sharded or masked trainer wants)
  nan   ///< value NaN, like PyTorch's 0/0; the gradient of the examples that count is NaN
};

/// What Reduction::mean divides by when per-example weights are given (without weights, and with
/// weights of 0 and 1 only through `mask`, the two agree). PyTorch has both conventions: its
/// cross_entropy averages over Σ w[y_i] (a weighted average), its binary_cross_entropy* multiplies
/// each element's loss by `weight` and still divides by the element count.
enum class WeightedMean {
  family_default, ///< the family's convention (Distribution hook default_weighted_mean): count for
                  ///< the Bernoulli family (PyTorch's binary_cross_entropy*), weight_sum otherwise
  weight_sum,     ///< Σ_i w_i·ℓ_i / Σ_i w_i·v_i: a weighted average (w_i = 0 removes example i)
  count           ///< Σ_i w_i·ℓ_i / Σ_i v_i over the examples that count (not masked, not ignored):
                  ///< w_i rescales example i's loss; an example of weight 0 still counts as present
};

namespace detail {
/// A contiguous, sized range that is not an Eigen object (std::vector, std::array, std::span, …).
template <class Range>
concept ContiguousNonEigenRange = std::ranges::contiguous_range<Range> && std::ranges::sized_range<Range> &&
    !std::is_base_of_v<Eigen::EigenBase<std::remove_cvref_t<Range>>, std::remove_cvref_t<Range>>;
/// An Eigen object with directly accessible storage.
template <class Derived>
concept DirectAccess = requires(const Derived& v) {
  v.data();
  v.innerStride();
};
} // namespace detail

/// A non-owning view of one number per example: per-example weights, a mask, upstream gradients.
/// Binds to contiguous float, double, bool, uint8, int32 or int64 data: Eigen vectors (Matrix,
/// Array, Map, Ref with unit inner stride), std::vector (not vector<bool>), std::array, std::span,
/// or a pointer and a size. An empty view means "not given". The viewed data must outlive the call.
/// An Eigen vector with a non-unit inner stride (a row of a column-major matrix) binds too, but the
/// driver rejects it (std::invalid_argument naming the stride): copy it into a vector first.
class ExampleView {
public:
  enum class Kind { f32, f64, boolean, u8, i32, i64 };

  constexpr ExampleView() = default;
  ExampleView(const float* data, std::ptrdiff_t size) : data_(data), size_(size), kind_(Kind::f32) {}
  ExampleView(const double* data, std::ptrdiff_t size) : data_(data), size_(size), kind_(Kind::f64) {}
  ExampleView(const bool* data, std::ptrdiff_t size) : data_(data), size_(size), kind_(Kind::boolean) {}
  ExampleView(const std::uint8_t* data, std::ptrdiff_t size) : data_(data), size_(size), kind_(Kind::u8) {}
  ExampleView(const std::int32_t* data, std::ptrdiff_t size) : data_(data), size_(size), kind_(Kind::i32) {}
  ExampleView(const std::int64_t* data, std::ptrdiff_t size) : data_(data), size_(size), kind_(Kind::i64) {}

  /// Any contiguous range of a supported element type (std::vector, std::array, std::span, …).
  template <detail::ContiguousNonEigenRange Range>
  ExampleView(const Range& range) // NOLINT(google-explicit-constructor): a view, like std::span
      : ExampleView(std::ranges::data(range), static_cast<std::ptrdiff_t>(std::ranges::size(range))) {}

  /// An Eigen vector with directly accessible storage.
  template <detail::DirectAccess Derived>
  ExampleView(const Eigen::DenseBase<Derived>& v) // NOLINT(google-explicit-constructor)
      : ExampleView(v.derived().data(), static_cast<std::ptrdiff_t>(v.size())) {
    static_assert(Derived::IsVectorAtCompileTime || Derived::ColsAtCompileTime == Eigen::Dynamic ||
                      Derived::RowsAtCompileTime == Eigen::Dynamic,
                  "nll::ExampleView views a vector");
    if (v.size() > 1) stride_ = static_cast<std::ptrdiff_t>(v.derived().innerStride());
  }

  bool empty() const { return size_ == 0; }
  /// The number of entries.
  std::ptrdiff_t size() const { return size_; }
  /// The distance between consecutive entries, in elements: 1 for every view the driver accepts.
  std::ptrdiff_t inner_stride() const { return stride_; }
  Kind kind() const { return kind_; }
  /// The first entry (of the type kind() names).
  const void* data() const { return data_; }

  /// Calls fn with the data as a typed pointer (const float*, const double*, const bool*,
  /// const std::uint8_t*, const std::int32_t* or const std::int64_t*) and returns its result: one
  /// switch per loop instead of one per entry.
  template <class Fn> decltype(auto) visit(Fn&& fn) const {
    switch (kind_) {
    case Kind::f64: return fn(static_cast<const double*>(data_));
    case Kind::boolean: return fn(static_cast<const bool*>(data_));
    case Kind::u8: return fn(static_cast<const std::uint8_t*>(data_));
    case Kind::i32: return fn(static_cast<const std::int32_t*>(data_));
    case Kind::i64: return fn(static_cast<const std::int64_t*>(data_));
    case Kind::f32: break;
    }
    return fn(static_cast<const float*>(data_));
  }

  /// Entry i as a double (bool and integers as 0/1/…). Only for contiguous views.
  double operator[](std::ptrdiff_t i) const {
    return visit([i](const auto* p) { return static_cast<double>(p[i]); });
  }

private:
  const void* data_ = nullptr;
  std::ptrdiff_t size_ = 0;
  std::ptrdiff_t stride_ = 1;
  Kind kind_ = Kind::f32;
};

/// The fields every loss's options share, with the same names and defaults everywhere. A named
/// loss's options struct starts with this macro, so users write the same designated initializers
/// for every loss: {.reduction = nll::Reduction::sum, .weight = w, .label_smoothing = 0.1}.
///
///   reduction   none, sum or mean (the default, as in PyTorch).
///   weight      per-example weights w_i >= 0 (finite); empty = all 1. An example of weight 0 does
///               not count: it adds exactly 0 to the value and gets a zero gradient, even when its
///               loss is NaN.
///   mask        per-example mask of 0s and 1s (any other entry is rejected: weights belong in
///               `weight`); empty = every example counts. An entry of 0 (false) removes the
///               example: it is not evaluated, adds nothing to the value or to the denominator,
///               and gets a zero gradient.
///   normalizer  with Reduction::mean: divide the weighted sum by this positive number instead of
///               by the total weight. Give every micro-batch (or machine) the global token count
///               and their gradients add up to the gradient of the global mean, exactly.
///   empty_mean  what a mean over a total weight of zero returns (see EmptyMean).
///   upstream    with Reduction::none: the upstream gradient g_i of each per-example loss; the
///               gradient written is sum_i g_i * d(w_i l_i)/d theta. Empty = all 1.
///   weighted_mean  with Reduction::mean and weights: divide by the total weight (weight_sum) or by
///               the number of examples that count (count); family_default (the default) takes
///               the family's convention, which is PyTorch's for the loss of the same name.
#define NLL_DRIVER_OPTION_FIELDS                                                                                       \
  ::nll::Reduction reduction = ::nll::Reduction::mean;                                                                 \
  ::nll::ExampleView weight = {};                                                                                      \
  ::nll::ExampleView mask = {};                                                                                        \
  ::std::optional<double> normalizer = ::std::nullopt;                                                                 \
  ::nll::EmptyMean empty_mean = ::nll::EmptyMean::zero;                                                                \
  ::nll::ExampleView upstream = {};                                                                                    \
  ::nll::WeightedMean weighted_mean = ::nll::WeightedMean::family_default;

/// The options the generic driver owns (see NLL_DRIVER_OPTION_FIELDS for each field).
struct NllOptions {
  NLL_DRIVER_OPTION_FIELDS
};

/// The driver's part of a named loss's options (any struct that starts with
/// NLL_DRIVER_OPTION_FIELDS).
template <class Options> NllOptions driver_options(const Options& o) {
  return NllOptions{o.reduction, o.weight, o.mask, o.normalizer, o.empty_mean, o.upstream, o.weighted_mean};
}

/// The result of a loss.
struct Loss {
  /// The reduced loss: Σ w_i·ℓ_i / denominator (for none, the plain sum of per_example).
  double value = 0;
  /// The mean's natural denominator over the examples that count: Σ w_i·v_i (WeightedMean::
  /// weight_sum), or Σ v_i (count) — the number of examples that count when there are no target
  /// weights. Add it across micro-batches to combine them (pass the sum as the normaliser).
  double total_weight = 0;
  /// What the weighted sum was divided by: 1 for none and sum, total_weight for mean, or the
  /// normaliser. (0 for a mean over nothing, whose value follows EmptyMean.)
  double denominator = 1;
  /// Reduction::none only: w_i·ℓ_i per example (0 where an example does not count). Empty otherwise.
  Eigen::VectorXd per_example;
};

} // namespace nll
