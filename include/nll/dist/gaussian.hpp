// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// The Gaussian family: real-valued outputs y ~ N(μ, σ²), element-wise. Every ELEMENT of the
// prediction matrix is one example for the generic driver (core/nll.hpp), as in PyTorch, so a mean
// divides by the element count, and options.weight / mask / upstream hold one entry per element,
// in Eigen's column-major order (element (r, c) is example r + c·rows). A vector is an N×1 matrix.
//
// Named losses (d = μ − y; a ½·log 2π term is added where `full` says so):
//
//   mse_loss(pred, target)                     ℓ = d²                       ∂ℓ/∂μ = 2d
//   gaussian_nll_loss_fixed(mean, target, σ)   ℓ = d²/(2σ²) [+ log σ + ½·log 2π]
//                                                                           ∂ℓ/∂μ = d/σ²
//   gaussian_nll_loss(mean, var, target)       ℓ = ½·(log v + d²/v) [+ ½·log 2π],  v = max(var, eps)
//                                              ∂ℓ/∂μ = d/v,   ∂ℓ/∂var = ½·(1 − d²/v)/v
//   gaussian_nll_loss_logvar(mean, s, target)  ℓ = ½·(s + d²·e^{−s}) [+ ½·log 2π],  s = log σ²
//                                              ∂ℓ/∂μ = d·e^{−s},   ∂ℓ/∂s = ½·(1 − d²·e^{−s})
//
// so gaussian_nll_loss_fixed = mse_loss/(2σ²) + log σ + ½·log 2π (with include_constants) and its
// gradient is the mse_loss gradient times 1/(2σ²).
//
// The clamp (matches torch.nn.functional.gaussian_nll_loss, torch 1.13): the variance used is
// v = max(var, eps) (NaN stays NaN). PyTorch clamps under torch.no_grad(), so its gradient passes
// straight through the clamp: ∂ℓ/∂var is the derivative with respect to v, evaluated at v = eps,
// even where var < eps (the true derivative there is 0). We return the same straight-through
// gradient, so a model whose variance is stuck below eps still gets pushed (up when d² < eps).
//
// Shapes of var (mean and target are R×C and must have the same shape):
//   R×C   one variance per element (heteroscedastic; the diagonal multivariate model with one
//         column per output dimension)
//   R×1   one variance per row, shared by the row's columns (torch: var of shape (N,) or (N, 1)
//         for an input of shape (N, D))
//   1×C   one variance per column, shared by every row (torch 1.13 rejects this shape for N > 1)
//   1×1   one variance for everything (torch: a single value for a 1-D input)
// checked in that order, so an R×1 mean with an R×1 var is per element. The value is always
// element-wise: Reduction::none returns R·C losses (column-major), exactly like torch 1.13, which
// returns the broadcast (N, D) loss, not per-row sums. The diagonal multivariate NLL of row r is the
// sum of its row: r.per_example.reshaped(R, C).rowwise().sum().
//
// Gradients and the broadcast variance: the families give each element its own gradient slot, also
// for the variance (GaussianGrad::var has the shape of mean). When var is broadcast, several
// elements share one variance, and the gradient with respect to it is the sum of their slots. The
// named losses handle this: for a broadcast var they let the driver write the per-element
// variance gradients into a temporary R×C buffer and then sum it over the broadcast elements (in a
// fixed order, in double) into grad_var, so the result does not depend on threads or block sizes.
// A per-element var needs no temporary: the driver writes straight into grad_var.
//
// The log-variance form never forms e^{s} or d²: it computes h = e^{−s/2}, z = d·h, and uses
// z² = d²·e^{−s} and z·h = d·e^{−s}. Nothing overflows unless the exact result does, for
// |s| ≤ 170 in float (e^{±85} is a normal float) and |s| ≤ 1400 in double; in particular the whole
// range s ∈ [−80, 80] is exact to a few ulp with residuals up to the overflow threshold. Likewise the
// variance form computes d²/v as d·(d/v), so a huge residual over a huge variance stays finite.
//
// NaN in (mean, target or var) gives NaN out, for the value and both gradients. var = +inf gives
// ℓ = +inf and zero gradients; a residual of ±inf gives ℓ = +inf.
//
// Errors (grammar of core/check.hpp; nothing is written to a gradient buffer when a check fails):
//   std::invalid_argument: target, grad, grad_mean not of mean's shape; var not one of the shapes
//     above; grad_var not of var's shape.
//   std::domain_error: var < 0 ("var has negative entry" in PyTorch); options.eps not finite and > 0;
//     sigma not finite and > 0; and the driver's option checks (weights, mask, normaliser …).
//
// Scalar types: float and double (long double works too, unvectorised: the tests evaluate the
// losses in long double for their finite-difference checks). mean, target, var and the gradient
// buffers share one scalar type. Inputs may be any Eigen expression (a row-major one is copied into
// column-major storage); gradient buffers must be column-major with unit inner stride (a Matrix,
// Array, Map, Ref or a block of one). A gradient buffer may be the mean (or var) itself.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <string_view>
#include <type_traits>

#include "../core/check.hpp"
#include "../core/distribution.hpp"
#include "../core/nll.hpp"
#include "../core/options.hpp"
#include "../math/exp.hpp"

namespace nll {

/// A read-only view of a column-major matrix (any outer stride): what the Gaussian families read.
template <class T>
using ConstMatrixRef = Eigen::Ref<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>, 0, Eigen::OuterStride<>>;
/// A writable view of a column-major matrix: what the Gaussian families write gradients into.
template <class T>
using MatrixRef = Eigen::Ref<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>, 0, Eigen::OuterStride<>>;

/// How a variance (or log-variance) matrix is laid out relative to an R×C mean.
enum class VarShape {
  element, ///< R×C: one per element
  row,     ///< R×1: one per row
  column,  ///< 1×C: one per column
  scalar,  ///< 1×1: one for all
  invalid  ///< none of the above
};

/// The layout of `var` for a `rows`×`cols` mean (see the file comment for the order of the tests).
inline VarShape var_shape(Eigen::Index rows, Eigen::Index cols, Eigen::Index var_rows, Eigen::Index var_cols) {
  if (var_rows == rows && var_cols == cols) return VarShape::element;
  if (var_rows == rows && var_cols == 1) return VarShape::row;
  if (var_rows == 1 && var_cols == cols) return VarShape::column;
  if (var_rows == 1 && var_cols == 1) return VarShape::scalar;
  return VarShape::invalid;
}

/// Parameters of the learned-variance families: the means and the variances (GaussianFamily) or
/// the log-variances (GaussianLogVarFamily), var laid out as one of the VarShape layouts.
template <class T> struct GaussianParams {
  ConstMatrixRef<T> mean;
  ConstMatrixRef<T> var;
};

/// Gradient buffers of the learned-variance families, both of the shape of mean: the families
/// write each element's ∂/∂μ and ∂/∂var (or ∂/∂s) into its own slot, also for a broadcast var (the
/// named losses sum those slots; see the file comment).
template <class T> struct GaussianGrad {
  MatrixRef<T> mean;
  MatrixRef<T> var;
};

namespace detail {

// ---------------------------------------------------------------------------------------------
// Element formulas, written once over Eigen's packet functions. With Packet = T (a scalar) they are
// the per-example path (std::exp, std::log, plain division); with Packet = Eigen's SIMD packet they
// are the fused path. Each writes the loss and the two unscaled partial derivatives.

template <class Packet> Packet clamp_below(const Packet& v, const Packet& eps) {
  if constexpr (std::is_arithmetic_v<Packet>) {
    return v < eps ? eps : v; // NaN compares false and stays NaN
  } else {
    return Eigen::internal::pselect(Eigen::internal::pcmp_lt(v, eps), eps, v);
  }
}

/// ℓ = (a·d)² + k, ∂ℓ/∂μ = 2a·(a·d): the fixed-σ Gaussian (a = 1/(σ√2), k = log σ + ½ log 2π or
/// 0) and the squared error (a = 1, k = 0). `var` is not read.
template <class T> struct FixedSigmaFormula {
  T a = 1;
  T two_a = 2;
  T constant = 0;
  static constexpr bool kReadsVar = false;
  template <class P> void operator()(const P& mu, const P& /*var*/, const P& y, P& loss, P& g_mean, P& g_var) const {
    using namespace Eigen::internal;
    const P ad = pmul(pset1<P>(a), psub(mu, y));
    loss = pmadd(ad, ad, pset1<P>(constant));
    g_mean = pmul(pset1<P>(two_a), ad);
    g_var = pzero(ad);
  }
};

#if defined(EIGEN_VECTORIZE_AVX512) || defined(EIGEN_VECTORIZE_AVX2)
inline constexpr bool kFastLogFloat = true;
#else
inline constexpr bool kFastLogFloat = false;
#endif

/// log(v) of a float packet whose lanes are normal positive floats, +inf or NaN (no zeros, negatives
/// or subnormals: the callers clamp at eps >= FLT_MIN). musl's logf (FreeBSD e_logf.c): v = 2^k·m
/// with m in [√½, √2), f = m − 1, s = f/(2 + f), log(1 + f) = f − ½f² + s·(½f² + R(s²)), R a
/// degree-4 minimax polynomial; k·ln2 added in two parts. Under 1 ulp, and about half the operations
/// of Eigen's plog (which must also handle zeros, negatives and subnormals). +inf and NaN are passed
/// through.
template <class P> P fast_log_positive_float(const P& v) {
  using namespace Eigen::internal;
  using PI = typename unpacket_traits<P>::integer_packet;
  const PI bits = padd(preinterpret<PI>(v), pset1<PI>(0x3f800000 - 0x3f3504f3));
  const P k = pcast<PI, P>(psub(plogical_shift_right<23>(bits), pset1<PI>(0x7f)));
  const P m = preinterpret<P>(padd(pand(bits, pset1<PI>(0x007fffff)), pset1<PI>(0x3f3504f3)));
  const P f = psub(m, pset1<P>(1.0f));
  const P s = pdiv(f, padd(pset1<P>(2.0f), f));
  const P z = pmul(s, s);
  const P w = pmul(z, z);
  const P t1 = pmul(w, pmadd(w, pset1<P>(0.24279078841f), pset1<P>(0.40000972152f)));
  const P t2 = pmul(z, pmadd(w, pset1<P>(0.28498786688f), pset1<P>(0.66666662693f)));
  const P hfsq = pmul(pset1<P>(0.5f), pmul(f, f));
  // s·(hfsq + R) + k·ln2_lo − hfsq + f + k·ln2_hi
  const P r = pmadd(k, pset1<P>(6.9313812256e-01f),
                    padd(psub(pmadd(s, padd(hfsq, padd(t1, t2)), pmul(k, pset1<P>(9.0580006145e-06f))), hfsq), f));
  return pselect(pcmp_lt(v, pset1<P>(std::numeric_limits<float>::infinity())), r, v); // +inf, NaN: v
}

/// ℓ = ½(log v + d·(d/v)) + k, ∂ℓ/∂μ = d/v, ∂ℓ/∂var = (½ − ½·d·(d/v))/v with v = max(var, eps).
template <class T> struct VarFormula {
  T eps = T(1e-6);
  T constant = 0;
  static constexpr bool kReadsVar = true;
  template <class P> void operator()(const P& mu, const P& var, const P& y, P& loss, P& g_mean, P& g_var) const {
    using namespace Eigen::internal;
    const P half = pset1<P>(T(0.5));
    const P v = clamp_below(var, pset1<P>(eps));
    const P d = psub(mu, y);
    const P t = pdiv(d, v); // d/v
    const P q = pmul(d, t); // d²/v without forming d²
    P log_v;
    if constexpr (std::is_same_v<T, float> && !std::is_arithmetic_v<P> && kFastLogFloat) {
      // v >= eps: the fast log's domain when eps is a normal float (the usual case)
      log_v = eps >= std::numeric_limits<float>::min() ? fast_log_positive_float(v) : plog(v);
    } else {
      log_v = plog(v);
    }
    loss = pmadd(half, padd(log_v, q), pset1<P>(constant));
    g_mean = t;
    g_var = pdiv(psub(half, pmul(half, q)), v);
  }
};

/// ℓ = ½(s + z²) + k, ∂ℓ/∂μ = z·h, ∂ℓ/∂s = ½ − ½z², with h = e^{−s/2}, z = d·h.
template <class T> struct LogVarFormula {
  T constant = 0;
  static constexpr bool kReadsVar = true;
  template <class P> void operator()(const P& mu, const P& s, const P& y, P& loss, P& g_mean, P& g_var) const {
    using namespace Eigen::internal;
    const P half = pset1<P>(T(0.5));
    const P h = pexp(pmul(pset1<P>(T(-0.5)), s));
    const P z = pmul(psub(mu, y), h);
    const P z2 = pmul(z, z);
    loss = pmadd(half, padd(s, z2), pset1<P>(constant));
    g_mean = pmul(z, h);
    g_var = psub(half, pmul(half, z2));
  }
};

template <class T> inline constexpr bool kVectorisedGaussian = vectorised_float_math<T, true>();

/// The SIMD packet of T when the formulas vectorise for T, else T itself.
template <class T, bool kVectorised> struct gaussian_packet { using type = T; };
template <class T> struct gaussian_packet<T, true> { using type = typename Eigen::internal::packet_traits<T>::type; };

/// The var entry of element (r, c) for a var laid out as `shape`.
template <class T> T var_at(const ConstMatrixRef<T>& var, VarShape shape, Eigen::Index r, Eigen::Index c) {
  switch (shape) {
  case VarShape::row: return var(r, 0);
  case VarShape::column: return var(0, c);
  case VarShape::scalar: return var(0, 0);
  default: return var(r, c);
  }
}

/// The per-example path: the formula on the scalars of element i.
template <class Formula, class T>
void element_terms(const Formula& formula, const ConstMatrixRef<T>& mean, const ConstMatrixRef<T>* var, VarShape shape,
                   const ConstMatrixRef<T>& target, Eigen::Index i, T& loss, T& g_mean, T& g_var) {
  const Eigen::Index rows = mean.rows();
  const Eigen::Index r = i % rows, c = i / rows;
  const T v = var ? var_at(*var, shape, r, c) : T(0);
  formula(mean(r, c), v, target(r, c), loss, g_mean, g_var);
}

/// The fused path over examples [block.begin, block.begin + block.size): the block is cut into
/// runs inside one column, each run processed a SIMD packet at a time, the tail with the scalar
/// formula. Inputs of a packet are loaded before its outputs are stored, so a gradient buffer may
/// alias an input. Uniform blocks sum the losses in float packets for at most 4 packets and then
/// in double; weighted blocks apply weight and scale per element in double.
template <class Formula, class T>
double fused_block(const Formula& formula, const ConstMatrixRef<T>& mean, const ConstMatrixRef<T>* var, VarShape shape,
                   const ConstMatrixRef<T>& target, const Block& block, MatrixRef<T>* g_mean, MatrixRef<T>* g_var) {
  using namespace Eigen::internal;
  using Packet = typename gaussian_packet<T, kVectorisedGaussian<T>>::type;
  constexpr Eigen::Index kPacket = kVectorisedGaussian<T> ? Eigen::Index(packet_traits<T>::size) : 1;
  const Eigen::Index rows = mean.rows();
  const bool weighted = block.weight != nullptr;
  const T uniform_scale = static_cast<T>(block.uniform_grad_scale);
  double total = 0;

  // Applies loss/gradients of `count` consecutive elements starting at block offset k.
  const auto finish = [&](Eigen::Index k, Eigen::Index count, const T* loss, const T* gm, const T* gv, T* out_m,
                          T* out_v) {
    for (Eigen::Index l = 0; l < count; ++l) {
      const double w = block.weight_at(k + l);
      double contribution = 0;
      if (w != 0) {
        contribution = w * static_cast<double>(loss[l]);
        const T scale = static_cast<T>(block.grad_scale_at(k + l));
        if (out_m) out_m[l] = scale * gm[l];
        if (out_v) out_v[l] = scale * gv[l];
      } else {
        if (out_m) out_m[l] = T(0);
        if (out_v) out_v[l] = T(0);
      }
      if (block.loss_out) block.loss_out[k + l] = contribution;
      total += contribution;
    }
  };

  const Eigen::Index end = block.begin + block.size;
  for (Eigen::Index i = block.begin; i < end;) {
    const Eigen::Index c = i / rows, r0 = i % rows;
    const Eigen::Index len = std::min(rows - r0, end - i);
    const Eigen::Index k0 = i - block.begin;
    const T* mu = mean.data() + r0 + c * mean.outerStride();
    const T* y = target.data() + r0 + c * target.outerStride();
    const T* v = nullptr;
    bool v_varies = false; // one var per element of the run, or a single one
    if (var) {
      switch (shape) {
      case VarShape::element: v = var->data() + r0 + c * var->outerStride(), v_varies = true; break;
      case VarShape::row: v = var->data() + r0, v_varies = true; break;
      case VarShape::column: v = var->data() + c * var->outerStride(); break;
      default: v = var->data(); break;
      }
    }
    T* out_m = g_mean ? g_mean->data() + r0 + c * g_mean->outerStride() : nullptr;
    T* out_v = g_var ? g_var->data() + r0 + c * g_var->outerStride() : nullptr;

    Eigen::Index j = 0;
    if constexpr (kPacket > 1) {
      const Packet v_single = v && !v_varies ? pset1<Packet>(*v) : pzero(Packet{});
      const Packet s = pset1<Packet>(uniform_scale);
      Packet sum = pzero(Packet{});
      int pending = 0;
      alignas(64) T lbuf[kPacket], mbuf[kPacket], vbuf[kPacket];
      for (; j + kPacket <= len; j += kPacket) {
        const Packet pm = ploadu<Packet>(mu + j);
        const Packet py = ploadu<Packet>(y + j);
        const Packet pv = !Formula::kReadsVar ? pzero(pm) : v_varies ? ploadu<Packet>(v + j) : v_single;
        Packet loss, gm, gv;
        formula(pm, pv, py, loss, gm, gv);
        if (!weighted && !block.loss_out) {
          sum = padd(sum, loss);
          if (++pending == 4) {
            total += static_cast<double>(predux(sum));
            sum = pzero(sum);
            pending = 0;
          }
          if (out_m) pstoreu(out_m + j, pmul(s, gm));
          if (out_v) pstoreu(out_v + j, pmul(s, gv));
        } else {
          pstore(lbuf, loss);
          pstore(mbuf, gm);
          pstore(vbuf, gv);
          finish(k0 + j, kPacket, lbuf, mbuf, vbuf, out_m ? out_m + j : nullptr, out_v ? out_v + j : nullptr);
        }
      }
      if (pending) total += static_cast<double>(predux(sum));
    }
    for (; j < len; ++j) {
      T loss, gm, gv;
      formula(mu[j], v ? (v_varies ? v[j] : *v) : T(0), y[j], loss, gm, gv);
      finish(k0 + j, 1, &loss, &gm, &gv, out_m ? out_m + j : nullptr, out_v ? out_v + j : nullptr);
    }
    i += len;
  }
  return total;
}

inline std::string shape_text(Eigen::Index rows, Eigen::Index cols) {
  return std::to_string(rows) + "x" + std::to_string(cols);
}

/// "name[i]" for a vector, "name(r, c)" for a matrix with more than one column.
template <class M> std::string element_name(std::string_view name, const M& m, Eigen::Index r, Eigen::Index c) {
  std::string s(name);
  if (m.cols() == 1) return s + "[" + std::to_string(r) + "]";
  return s + "(" + std::to_string(r) + ", " + std::to_string(c) + ")";
}

template <class T>
void check_var_shape(std::string_view function, std::string_view name, const ConstMatrixRef<T>& mean,
                     const ConstMatrixRef<T>& var) {
  if (var_shape(mean.rows(), mean.cols(), var.rows(), var.cols()) != VarShape::invalid) return;
  const std::string requirement = shape_text(mean.rows(), mean.cols()) + " (mean's shape), " +
                                  shape_text(mean.rows(), 1) + " (one per row), " + shape_text(1, mean.cols()) +
                                  " (one per column) or 1x1";
  fail(ErrorKind::shape, function, std::string(name) + ".shape()", shape_text(var.rows(), var.cols()), requirement);
}

/// True when some entry of x is < 0 (NaN is not): a vectorised pass that ORs the lanes' comparisons.
template <class T> bool any_negative(const T* x, Eigen::Index n) {
  Eigen::Index i = 0;
  bool negative = false;
  if constexpr (kVectorisedGaussian<T>) {
    using namespace Eigen::internal;
    using Packet = typename gaussian_packet<T, true>::type;
    constexpr Eigen::Index kPacket = packet_traits<T>::size;
    Packet seen = pzero(Packet{});
    const Packet zero = pzero(Packet{});
    for (; i + kPacket <= n; i += kPacket) seen = por(seen, pcmp_lt(ploadu<Packet>(x + i), zero));
    negative = predux_any(seen);
  }
  for (; i < n; ++i) negative |= x[i] < T(0);
  return negative;
}

/// Throws for the first negative entry of var (NaN passes: it propagates into the loss).
template <class T> void check_var_nonnegative(std::string_view function, const ConstMatrixRef<T>& var) {
  bool negative = false;
  for (Eigen::Index c = 0; c < var.cols() && !negative; ++c)
    negative = any_negative(var.data() + c * var.outerStride(), var.rows());
  if (!negative) return;
  for (Eigen::Index c = 0; c < var.cols(); ++c)
    for (Eigen::Index r = 0; r < var.rows(); ++r)
      if (var(r, c) < T(0)) fail(ErrorKind::value, function, element_name("var", var, r, c), var(r, c), ">= 0");
}

/// Shared parts of the two learned-variance families (CRTP over the element formula).
template <class T, class Derived> struct LearnedVarianceBase {
  static constexpr Eigen::Index block_size = 1024;

  Eigen::Index num_examples(const GaussianParams<T>& p, const ConstMatrixRef<T>& /*target*/) const {
    return p.mean.size();
  }
  void check_gradient(const GaussianParams<T>& p, const ConstMatrixRef<T>& /*target*/, const GaussianGrad<T>& g,
                      std::string_view function) const {
    check_same_shape(function, p.mean, g.mean, "mean", "grad.mean");
    check_same_shape(function, p.mean, g.var, "mean", "grad.var");
  }
  double neg_log_prob(const GaussianParams<T>& p, const ConstMatrixRef<T>& target, Eigen::Index i) const {
    T loss, gm, gv;
    element_terms(self().formula(), p.mean, &p.var, shape_of(p), target, i, loss, gm, gv);
    return static_cast<double>(loss);
  }
  double neg_log_prob_grad(const GaussianParams<T>& p, const ConstMatrixRef<T>& target, Eigen::Index i, double scale,
                           GaussianGrad<T>& g) const {
    T loss, gm, gv;
    element_terms(self().formula(), p.mean, &p.var, shape_of(p), target, i, loss, gm, gv);
    const Eigen::Index rows = p.mean.rows();
    const T s = static_cast<T>(scale);
    g.mean(i % rows, i / rows) = s * gm;
    g.var(i % rows, i / rows) = s * gv;
    return static_cast<double>(loss);
  }
  void zero_grad(GaussianGrad<T>& g, Eigen::Index i) const {
    const Eigen::Index rows = g.mean.rows();
    g.mean(i % rows, i / rows) = T(0);
    g.var(i % rows, i / rows) = T(0);
  }
  double neg_log_prob_block(const GaussianParams<T>& p, const ConstMatrixRef<T>& target, const Block& block) const {
    return fused_block(self().formula(), p.mean, &p.var, shape_of(p), target, block,
                       static_cast<MatrixRef<T>*>(nullptr), static_cast<MatrixRef<T>*>(nullptr));
  }
  double neg_log_prob_grad_block(const GaussianParams<T>& p, const ConstMatrixRef<T>& target, const Block& block,
                                 GaussianGrad<T>& g) const {
    return fused_block(self().formula(), p.mean, &p.var, shape_of(p), target, block, &g.mean, &g.var);
  }

protected:
  static VarShape shape_of(const GaussianParams<T>& p) {
    return var_shape(p.mean.rows(), p.mean.cols(), p.var.rows(), p.var.cols());
  }
  const Derived& self() const { return static_cast<const Derived&>(*this); }
};

template <class T> T half_log_two_pi() {
  return static_cast<T>(0.5L * std::log(2.0L * std::numbers::pi_v<long double>));
}

} // namespace detail

/// The fixed-σ Gaussian family, ℓ_i = a²·(μ_i − y_i)² + k (a = 1/(σ√2), k = log σ + ½·log 2π or 0),
/// with ∂ℓ_i/∂μ_i = 2a²·(μ_i − y_i); a = 1, k = 0 is the squared error of mse_loss. Params: the
/// means (ConstMatrixRef<T>); targets: the same shape; gradient: a MatrixRef<T> of that shape.
template <class T> struct GaussianFixedFamily {
  static_assert(std::is_floating_point_v<T>, "nll::GaussianFixedFamily: T must be float, double or long double");
  static constexpr Eigen::Index block_size = 1024;
  detail::FixedSigmaFormula<T> formula_ = {};
  /// How messages name the first argument ("pred" for mse_loss, as its signature does).
  std::string_view mean_name = "mean";

  /// The squared error (μ − y)².
  static GaussianFixedFamily squared_error() {
    GaussianFixedFamily f;
    f.mean_name = "pred";
    return f;
  }
  /// The Gaussian NLL with standard deviation sigma (> 0), with or without log σ + ½·log 2π.
  static GaussianFixedFamily with_sigma(double sigma, bool include_constants) {
    GaussianFixedFamily f;
    const long double a = 1.0L / (static_cast<long double>(sigma) * std::sqrt(2.0L));
    f.formula_.a = static_cast<T>(a);
    f.formula_.two_a = static_cast<T>(2 * a);
    f.formula_.constant =
        include_constants
            ? static_cast<T>(std::log(static_cast<long double>(sigma)) + detail::half_log_two_pi<long double>())
            : T(0);
    return f;
  }

  Eigen::Index num_examples(const ConstMatrixRef<T>& mean, const ConstMatrixRef<T>& /*target*/) const {
    return mean.size();
  }
  void check(const ConstMatrixRef<T>& mean, const ConstMatrixRef<T>& target, std::string_view function) const {
    check_same_shape(function, mean, target, mean_name, "target");
  }
  void check_gradient(const ConstMatrixRef<T>& mean, const ConstMatrixRef<T>& /*target*/, const MatrixRef<T>& grad,
                      std::string_view function) const {
    check_same_shape(function, mean, grad, mean_name, "grad");
  }
  double neg_log_prob(const ConstMatrixRef<T>& mean, const ConstMatrixRef<T>& target, Eigen::Index i) const {
    T loss, gm, gv;
    detail::element_terms(formula_, mean, static_cast<const ConstMatrixRef<T>*>(nullptr), VarShape::scalar, target, i,
                          loss, gm, gv);
    return static_cast<double>(loss);
  }
  double neg_log_prob_grad(const ConstMatrixRef<T>& mean, const ConstMatrixRef<T>& target, Eigen::Index i, double scale,
                           MatrixRef<T>& grad) const {
    T loss, gm, gv;
    detail::element_terms(formula_, mean, static_cast<const ConstMatrixRef<T>*>(nullptr), VarShape::scalar, target, i,
                          loss, gm, gv);
    grad(i % mean.rows(), i / mean.rows()) = static_cast<T>(scale) * gm;
    return static_cast<double>(loss);
  }
  void zero_grad(MatrixRef<T>& grad, Eigen::Index i) const { grad(i % grad.rows(), i / grad.rows()) = T(0); }
  double neg_log_prob_block(const ConstMatrixRef<T>& mean, const ConstMatrixRef<T>& target, const Block& block) const {
    return detail::fused_block(formula_, mean, static_cast<const ConstMatrixRef<T>*>(nullptr), VarShape::scalar, target,
                               block, static_cast<MatrixRef<T>*>(nullptr), static_cast<MatrixRef<T>*>(nullptr));
  }
  double neg_log_prob_grad_block(const ConstMatrixRef<T>& mean, const ConstMatrixRef<T>& target, const Block& block,
                                 MatrixRef<T>& grad) const {
    return detail::fused_block(formula_, mean, static_cast<const ConstMatrixRef<T>*>(nullptr), VarShape::scalar, target,
                               block, &grad, static_cast<MatrixRef<T>*>(nullptr));
  }
};

/// The learned-variance Gaussian family (PyTorch's gaussian_nll_loss), per element:
///   ℓ = ½·(log v + d²/v) + k,  v = max(var, eps),  d = μ − y,  k = ½·log 2π or 0;
///   ∂ℓ/∂μ = d/v,  ∂ℓ/∂var = ½·(1 − d²/v)/v  (straight through the clamp, as in PyTorch).
/// Params: GaussianParams<T>{mean, var} with var in any VarShape layout; targets: a matrix of the
/// mean's shape; gradient: GaussianGrad<T>, both buffers of the mean's shape (per-element slots).
/// check() throws for a target or var of the wrong shape, var < 0, and eps not finite and > 0.
template <class T> struct GaussianFamily : detail::LearnedVarianceBase<T, GaussianFamily<T>> {
  static_assert(std::is_floating_point_v<T>, "nll::GaussianFamily: T must be float, double or long double");
  T eps = T(1e-6);
  bool full = false;

  void check(const GaussianParams<T>& p, const ConstMatrixRef<T>& target, std::string_view function) const {
    check_same_shape(function, p.mean, target, "mean", "target");
    detail::check_var_shape(function, "var", p.mean, p.var);
    if (!(eps > T(0)) || !std::isfinite(eps)) fail(ErrorKind::value, function, "options.eps", eps, "finite and > 0");
    detail::check_var_nonnegative(function, p.var);
  }
  detail::VarFormula<T> formula() const { return {eps, full ? detail::half_log_two_pi<T>() : T(0)}; }
};

/// The log-variance Gaussian family, per element with s = log σ²:
///   ℓ = ½·(s + d²·e^{−s}) + k,  ∂ℓ/∂μ = d·e^{−s},  ∂ℓ/∂s = ½·(1 − d²·e^{−s}),
/// computed through h = e^{−s/2} and z = d·h (see the file comment). Same params/targets/gradient
/// layout as GaussianFamily, with params.var holding s. check() throws for shape mismatches only.
template <class T> struct GaussianLogVarFamily : detail::LearnedVarianceBase<T, GaussianLogVarFamily<T>> {
  static_assert(std::is_floating_point_v<T>, "nll::GaussianLogVarFamily: T must be float, double or long double");
  bool full = false;

  void check(const GaussianParams<T>& p, const ConstMatrixRef<T>& target, std::string_view function) const {
    check_same_shape(function, p.mean, target, "mean", "target");
    detail::check_var_shape(function, "log_var", p.mean, p.var);
  }
  detail::LogVarFormula<T> formula() const { return {full ? detail::half_log_two_pi<T>() : T(0)}; }
};

/// Options of mse_loss: the driver's fields only.
struct MseLossOptions {
  NLL_DRIVER_OPTION_FIELDS
};

/// Options of gaussian_nll_loss_fixed.
struct GaussianFixedOptions {
  NLL_DRIVER_OPTION_FIELDS
  /// Add log σ + ½·log 2π to every element's loss (the true negative log-density). Without them the
  /// loss is d²/(2σ²): the same gradient.
  bool include_constants = true;
};

/// Options of gaussian_nll_loss (PyTorch's names and defaults).
struct GaussianNllOptions {
  NLL_DRIVER_OPTION_FIELDS
  /// Add ½·log 2π to every element's loss (torch: full).
  bool full = false;
  /// The variance is clamped at max(var, eps) (torch: eps, default 1e-6). Finite and > 0.
  double eps = 1e-6;
};

/// Options of gaussian_nll_loss_logvar.
struct GaussianNllLogVarOptions {
  NLL_DRIVER_OPTION_FIELDS
  /// Add ½·log 2π to every element's loss.
  bool full = false;
};

namespace detail {

template <class D> using eigen_scalar_t = typename std::remove_cvref_t<D>::Scalar;

template <class D>
concept EigenDense = std::is_base_of_v<Eigen::DenseBase<std::remove_cvref_t<D>>, std::remove_cvref_t<D>>;

/// A column-major read-only view of an Eigen expression (copied when its layout needs it).
template <class T, class D> ConstMatrixRef<T> const_ref(const Eigen::DenseBase<D>& x) {
  static_assert(
      std::is_same_v<typename D::Scalar, T>,
      "nll: the means, targets, variances and gradient buffers of a Gaussian loss must share one scalar type");
  if constexpr (std::is_base_of_v<Eigen::ArrayBase<D>, D>) {
    return ConstMatrixRef<T>(x.derived().matrix());
  } else {
    return ConstMatrixRef<T>(x.derived());
  }
}

/// A writable view of a gradient buffer (column-major, unit inner stride).
template <class T, class G> MatrixRef<T> grad_ref(G&& g) {
  using D = std::remove_cvref_t<G>;
  static_assert(
      std::is_same_v<typename D::Scalar, T>,
      "nll: the means, targets, variances and gradient buffers of a Gaussian loss must share one scalar type");
  if constexpr (std::is_base_of_v<Eigen::ArrayBase<D>, D>) {
    return MatrixRef<T>(g.matrix());
  } else {
    return MatrixRef<T>(g);
  }
}

/// Runs a learned-variance family with gradients; reduces the per-element variance gradient into
/// grad_var when var is broadcast (see the file comment).
template <class Family, class T>
Loss learned_variance_with_grad(std::string_view function, std::string_view var_name, const Family& family,
                                const GaussianParams<T>& params, const ConstMatrixRef<T>& target,
                                MatrixRef<T>& grad_mean, MatrixRef<T>& grad_var, const NllOptions& options) {
  check_same_shape(function, params.mean, target, "mean", "target");
  check_var_shape(function, var_name, params.mean, params.var);
  check_size(function, std::string("grad_") + std::string(var_name) + ".rows()", grad_var.rows(), params.var.rows(),
             std::string(var_name) + ".rows()");
  check_size(function, std::string("grad_") + std::string(var_name) + ".cols()", grad_var.cols(), params.var.cols(),
             std::string(var_name) + ".cols()");
  check_same_shape(function, params.mean, grad_mean, "mean", "grad_mean");
  const VarShape shape = var_shape(params.mean.rows(), params.mean.cols(), params.var.rows(), params.var.cols());
  if (shape == VarShape::element) {
    GaussianGrad<T> grad{grad_mean, grad_var};
    return run_nll<KernelPath::fused>(function, family, params, target, &grad, options);
  }
  Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> per_element(params.mean.rows(), params.mean.cols());
  GaussianGrad<T> grad{grad_mean, MatrixRef<T>(per_element)};
  Loss result = run_nll<KernelPath::fused>(function, family, params, target, &grad, options);
  const Eigen::Index rows = per_element.rows(), cols = per_element.cols();
  if (shape == VarShape::row) {
    Eigen::VectorXd sums = Eigen::VectorXd::Zero(rows);
    for (Eigen::Index c = 0; c < cols; ++c) sums += per_element.col(c).template cast<double>();
    grad_var.col(0) = sums.template cast<T>();
  } else if (shape == VarShape::column) {
    for (Eigen::Index c = 0; c < cols; ++c)
      grad_var(0, c) = static_cast<T>(per_element.col(c).template cast<double>().sum());
  } else {
    grad_var(0, 0) = static_cast<T>(per_element.template cast<double>().sum());
  }
  return result;
}

inline void check_sigma(std::string_view function, double sigma) {
  if (!(sigma > 0) || !std::isfinite(sigma)) fail(ErrorKind::value, function, "sigma", sigma, "finite and > 0");
}

} // namespace detail

/// Mean squared error, matching torch.nn.functional.mse_loss: ℓ_i = (pred_i − target_i)² per
/// element, reduced by options (mean: divided by the element count). NaN in gives NaN out.
/// Throws std::invalid_argument when target is not of pred's shape, plus the driver's checks.
template <class DP, class DT>
Loss mse_loss(const Eigen::DenseBase<DP>& pred, const Eigen::DenseBase<DT>& target,
              const MseLossOptions& options = {}) {
  using T = typename DP::Scalar;
  const ConstMatrixRef<T> p = detail::const_ref<T>(pred), y = detail::const_ref<T>(target);
  return detail::run_nll<KernelPath::fused>("mse_loss", GaussianFixedFamily<T>::squared_error(), p, y,
                                            static_cast<detail::NoGradient*>(nullptr), driver_options(options));
}

/// mse_loss and its gradient: grad_i = scale_i·2·(pred_i − target_i) (scale_i = 1/n for the mean)
/// written into grad (pred's shape; may be pred itself). NaN in gives a NaN value and gradient for
/// that element; an infinite residual gives ℓ = +inf and a gradient of ±inf. Throws as mse_loss, and
/// std::invalid_argument when grad is not of pred's shape; grad is untouched when a check fails.
template <class DP, class DT, detail::EigenDense G>
Loss mse_loss(const Eigen::DenseBase<DP>& pred, const Eigen::DenseBase<DT>& target, G&& grad,
              const MseLossOptions& options = {}) {
  using T = typename DP::Scalar;
  const ConstMatrixRef<T> p = detail::const_ref<T>(pred), y = detail::const_ref<T>(target);
  MatrixRef<T> g = detail::grad_ref<T>(grad);
  return detail::run_nll<KernelPath::fused>("mse_loss", GaussianFixedFamily<T>::squared_error(), p, y, &g,
                                            driver_options(options));
}

/// The Gaussian NLL with a fixed standard deviation sigma, per element:
///   ℓ_i = (mean_i − target_i)²/(2σ²) + [log σ + ½·log 2π  if options.include_constants]
/// = mse_loss/(2σ²) + constant. NaN in gives NaN out; an infinite residual gives +inf. Throws
/// std::domain_error for sigma not finite and > 0, std::invalid_argument for a target not of mean's
/// shape, plus the driver's checks.
template <class DM, class DT>
Loss gaussian_nll_loss_fixed(const Eigen::DenseBase<DM>& mean, const Eigen::DenseBase<DT>& target, double sigma,
                             const GaussianFixedOptions& options = {}) {
  using T = typename DM::Scalar;
  detail::check_sigma("gaussian_nll_loss_fixed", sigma);
  const ConstMatrixRef<T> m = detail::const_ref<T>(mean), y = detail::const_ref<T>(target);
  return detail::run_nll<KernelPath::fused>("gaussian_nll_loss_fixed",
                                            GaussianFixedFamily<T>::with_sigma(sigma, options.include_constants), m, y,
                                            static_cast<detail::NoGradient*>(nullptr), driver_options(options));
}

/// gaussian_nll_loss_fixed and its gradient: grad_i = scale_i·(mean_i − target_i)/σ² (exactly the
/// mse_loss gradient times 1/(2σ²)), written into grad (mean's shape; may be mean itself). NaN and
/// inf as mse_loss. Throws as the value-only overload, and std::invalid_argument when grad is not of
/// mean's shape; grad is untouched when a check fails.
template <class DM, class DT, detail::EigenDense G>
Loss gaussian_nll_loss_fixed(const Eigen::DenseBase<DM>& mean, const Eigen::DenseBase<DT>& target, double sigma,
                             G&& grad, const GaussianFixedOptions& options = {}) {
  using T = typename DM::Scalar;
  detail::check_sigma("gaussian_nll_loss_fixed", sigma);
  const ConstMatrixRef<T> m = detail::const_ref<T>(mean), y = detail::const_ref<T>(target);
  MatrixRef<T> g = detail::grad_ref<T>(grad);
  return detail::run_nll<KernelPath::fused>("gaussian_nll_loss_fixed",
                                            GaussianFixedFamily<T>::with_sigma(sigma, options.include_constants), m, y,
                                            &g, driver_options(options));
}

/// The Gaussian NLL with a learned variance, matching torch.nn.functional.gaussian_nll_loss(mean,
/// target, var, full, eps, reduction) (note the argument order: var before target here):
///   ℓ_i = ½·(log v_i + (mean_i − target_i)²/v_i) [+ ½·log 2π if options.full],  v_i = max(var_i, eps)
/// var: mean's shape, one per row (R×1), one per column (1×C) or one value (1×1); see the file
/// comment. Reduction::mean divides by the element count. NaN in (mean, target or var) gives NaN out
/// (a NaN var is not clamped); var = +inf gives ℓ = +inf. Throws std::invalid_argument for a target
/// not of mean's shape or a var of none of those shapes; std::domain_error for a negative var entry
/// or options.eps not finite and > 0; plus the driver's checks.
template <class DM, class DV, class DT>
Loss gaussian_nll_loss(const Eigen::DenseBase<DM>& mean, const Eigen::DenseBase<DV>& var,
                       const Eigen::DenseBase<DT>& target, const GaussianNllOptions& options = {}) {
  using T = typename DM::Scalar;
  const GaussianParams<T> params{detail::const_ref<T>(mean), detail::const_ref<T>(var)};
  const ConstMatrixRef<T> y = detail::const_ref<T>(target);
  GaussianFamily<T> family;
  family.eps = static_cast<T>(options.eps);
  family.full = options.full;
  return detail::run_nll<KernelPath::fused>("gaussian_nll_loss", family, params, y,
                                            static_cast<detail::NoGradient*>(nullptr), driver_options(options));
}

/// gaussian_nll_loss and its gradients, written into grad_mean (mean's shape) and grad_var (var's
/// shape; for a broadcast var, the sum over the elements sharing each entry):
///   ∂ℓ_i/∂mean_i = (mean_i − target_i)/v_i,   ∂ℓ_i/∂var_i = ½·(1 − (mean_i − target_i)²/v_i)/v_i,
/// each times the driver's scale (1/n for the mean). Where var_i < eps the variance gradient is
/// the derivative at v_i = eps, passed straight through the clamp (what PyTorch's autograd returns),
/// not the true derivative 0. Either buffer may alias its input. NaN in gives NaN gradients for that
/// element; var = +inf gives zero gradients; an infinite residual gives ±inf. Throws as the
/// value-only overload, and std::invalid_argument for grad_mean not of mean's shape or grad_var not
/// of var's shape; nothing is written when a check fails.
template <class DM, class DV, class DT, detail::EigenDense GM, detail::EigenDense GV>
Loss gaussian_nll_loss(const Eigen::DenseBase<DM>& mean, const Eigen::DenseBase<DV>& var,
                       const Eigen::DenseBase<DT>& target, GM&& grad_mean, GV&& grad_var,
                       const GaussianNllOptions& options = {}) {
  using T = typename DM::Scalar;
  const GaussianParams<T> params{detail::const_ref<T>(mean), detail::const_ref<T>(var)};
  const ConstMatrixRef<T> y = detail::const_ref<T>(target);
  MatrixRef<T> gm = detail::grad_ref<T>(grad_mean);
  MatrixRef<T> gv = detail::grad_ref<T>(grad_var);
  GaussianFamily<T> family;
  family.eps = static_cast<T>(options.eps);
  family.full = options.full;
  return detail::learned_variance_with_grad("gaussian_nll_loss", "var", family, params, y, gm, gv,
                                            driver_options(options));
}

/// The Gaussian NLL parameterised by the log-variance s = log σ², per element:
///   ℓ_i = ½·(s_i + (mean_i − target_i)²·e^{−s_i}) [+ ½·log 2π if options.full]
/// equal to gaussian_nll_loss with var = e^{s} and no clamp, but finite and accurate for every s in
/// [−80, 80] and huge residuals (see the file comment). log_var: the layouts of var. NaN in gives NaN
/// out; s = +inf gives ℓ = +inf. Throws
/// std::invalid_argument for a target or log_var of the wrong shape, plus the driver's checks.
template <class DM, class DS, class DT>
Loss gaussian_nll_loss_logvar(const Eigen::DenseBase<DM>& mean, const Eigen::DenseBase<DS>& log_var,
                              const Eigen::DenseBase<DT>& target, const GaussianNllLogVarOptions& options = {}) {
  using T = typename DM::Scalar;
  const GaussianParams<T> params{detail::const_ref<T>(mean), detail::const_ref<T>(log_var)};
  const ConstMatrixRef<T> y = detail::const_ref<T>(target);
  GaussianLogVarFamily<T> family;
  family.full = options.full;
  return detail::run_nll<KernelPath::fused>("gaussian_nll_loss_logvar", family, params, y,
                                            static_cast<detail::NoGradient*>(nullptr), driver_options(options));
}

/// gaussian_nll_loss_logvar and its gradients (times the driver's scale):
///   ∂ℓ_i/∂mean_i = (mean_i − target_i)·e^{−s_i},   ∂ℓ_i/∂s_i = ½·(1 − (mean_i − target_i)²·e^{−s_i})
/// into grad_mean (mean's shape) and grad_log_var (log_var's shape; summed over shared elements).
/// NaN in gives NaN gradients for that element; s = +inf gives ∂/∂mean = 0 and ∂/∂s = ½. Throws as
/// the value-only overload, and std::invalid_argument for a gradient buffer of the wrong shape;
/// nothing is written when a check fails.
template <class DM, class DS, class DT, detail::EigenDense GM, detail::EigenDense GS>
Loss gaussian_nll_loss_logvar(const Eigen::DenseBase<DM>& mean, const Eigen::DenseBase<DS>& log_var,
                              const Eigen::DenseBase<DT>& target, GM&& grad_mean, GS&& grad_log_var,
                              const GaussianNllLogVarOptions& options = {}) {
  using T = typename DM::Scalar;
  const GaussianParams<T> params{detail::const_ref<T>(mean), detail::const_ref<T>(log_var)};
  const ConstMatrixRef<T> y = detail::const_ref<T>(target);
  MatrixRef<T> gm = detail::grad_ref<T>(grad_mean);
  MatrixRef<T> gs = detail::grad_ref<T>(grad_log_var);
  GaussianLogVarFamily<T> family;
  family.full = options.full;
  return detail::learned_variance_with_grad("gaussian_nll_loss_logvar", "log_var", family, params, y, gm, gs,
                                            driver_options(options));
}

} // namespace nll
