// The AVX-512 log-sum-exp kernel (include/nll/detail/log_sum_exp_avx512.hpp), through the public
// log_sum_exp / log_sum_exp_rows / LogSumExpState and directly: its exponential against long double
// std::exp, and whole rows of every length class the chunking has (below one vector, around the
// 2048-float chunk boundary, many chunks) against a long double evaluation of the same formula,
// m + log1p((ties − 1) + Σ_{x < m} exp(x − m)), whose own error is far below float's eps. The
// mpmath reference rows (tests/test_log_sum_exp.cpp) run through the same kernel as well.
//
// Without AVX-512 the public functions take the generic path and the row checks still apply; the
// kernel-only checks are compiled only where the kernel is.
#include <nll/math/log_sum_exp.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/kernel_tables.hpp"
#include "support/reference.hpp"

namespace {

#if defined(NLL_LOG_SUM_EXP_AVX512)
constexpr bool kKernel = true;
#else
constexpr bool kKernel = false;
#endif

using nll_test::error_in_eps;
using nll_test::Worst;

constexpr float inf = std::numeric_limits<float>::infinity();
using RowMajorXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ColMajorXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;

/// m + log1p((ties − 1) + Σ_{x < m} exp(x − m)) in long double; NaN / ±inf as documented.
long double reference_lse(const Eigen::VectorXf& x) {
  long double m = -std::numeric_limits<long double>::infinity();
  bool nan = false;
  for (float v : x) {
    if (std::isnan(v)) nan = true;
    m = std::max(m, static_cast<long double>(v));
  }
  if (nan) return std::numeric_limits<long double>::quiet_NaN();
  if (!std::isfinite(m)) return m;
  long double ties = 0, rest = 0;
  for (float v : x) {
    if (static_cast<long double>(v) == m)
      ties += 1;
    else
      rest += std::exp(static_cast<long double>(v) - m);
  }
  return m + std::log1p((ties - 1) + rest);
}

/// Lengths around every boundary of the kernel: vector (16), unrolled loops (32, 64), chunk (2048).
std::vector<Eigen::Index> lengths() {
  std::vector<Eigen::Index> n;
  for (Eigen::Index k = 1; k <= 70; ++k) n.push_back(k);
  for (Eigen::Index k = 2030; k <= 2070; ++k) n.push_back(k);
  for (Eigen::Index k : {4095, 4096, 4097, 6143, 6144, 6145, 10000, 32000, 100003}) n.push_back(k);
  return n;
}

} // namespace

TEST_CASE("log_sum_exp of float rows of every length class agrees with long double (budget 2 eps)") {
  std::mt19937_64 rng(12345);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> coin(0, 9);
  Worst worst, worst_minus_inf, worst_rows;
  for (Eigen::Index n : lengths()) {
    for (float spread : {0.5f, 3.0f, 40.0f}) {
      // Shifted so that lse ≈ ±8: the budget is relative to the result, and a result near 0 (a
      // cancellation between m and log1p(s − 1)) would measure the cancellation, not the kernel.
      Eigen::VectorXf x(n);
      for (float& v : x) v = spread * normal(rng);
      x.array() += static_cast<float>((n % 2 == 0 ? 8.0L : -8.0L) - reference_lse(x));
      const std::string where = "n=" + std::to_string(n) + " spread=" + std::to_string(spread);
      worst.update(error_in_eps<float>(nll::log_sum_exp(x), reference_lse(x)), where);
      // −inf (masked logits) next to finite values contribute nothing.
      Eigen::VectorXf masked = x;
      for (Eigen::Index j = 0; j + 1 < n; ++j)
        if (coin(rng) < 3) masked[j] = -inf;
      masked.array() += static_cast<float>((n % 2 == 0 ? 8.0L : -8.0L) - reference_lse(masked));
      worst_minus_inf.update(error_in_eps<float>(nll::log_sum_exp(masked), reference_lse(masked)), where);
      // The same row in a row-major matrix (contiguous), with a neighbour row after it.
      RowMajorXf m(2, n);
      m.row(0) = x.transpose();
      m.row(1) = masked.transpose();
      const Eigen::VectorXf per_row = nll::log_sum_exp_rows(m);
      worst_rows.update(error_in_eps<float>(per_row[0], reference_lse(x)), where);
      CHECK(per_row[0] == nll::log_sum_exp(x));
    }
  }
  std::cout << worst.report("log_sum_exp<float>, random rows") << "\n"
            << worst_minus_inf.report("log_sum_exp<float>, random rows with -inf") << "\n"
            << worst_rows.report("log_sum_exp_rows<float>, random rows") << "\n";
  INFO(worst.report("random rows"));
  INFO(worst_minus_inf.report("random rows with -inf"));
  CHECK(worst.error <= 2);
  CHECK(worst_minus_inf.error <= 2);
  CHECK(worst_rows.error <= 2);
}

TEST_CASE("ties, dominated rows and the maximum in any chunk") {
  SECTION("constant rows: lse = c + log n, ties counted across chunks") {
    for (Eigen::Index n : {1, 17, 2048, 2049, 5000, 100003}) {
      for (float c : {0.0f, -3.5f, 1e4f}) {
        const Eigen::VectorXf x = Eigen::VectorXf::Constant(n, c);
        INFO("n=" << n << " c=" << c);
        CHECK(error_in_eps<float>(nll::log_sum_exp(x), reference_lse(x)) <= 1);
      }
    }
  }
  SECTION("one dominant element in any chunk keeps the relative precision of a tiny result") {
    // lse = log1p((n − 1)·exp(−gap)): 9e−14 … 2e−23, or a float subnormal for gap 100 (then only
    // two terms: each subnormal term is rounded to a subnormal ulp before it is summed). Thousands
    // of equal terms summed in float cost about 3.5 eps with 16-lane accumulators (the kernel, and
    // the generic path with AVX-512); the generic path with SSE2's 4 lanes reaches 39 eps on these
    // rows, so only the kernel is held to 4 eps for them.
    for (Eigen::Index n : {3, 40, 2048, 2049, 6000}) {
      for (Eigen::Index at : {Eigen::Index(0), n / 2, n - 1}) {
        for (float gap : {30.0f, 60.0f, 100.0f}) {
          if (gap == 100.0f && n > 3) continue;
          Eigen::VectorXf x = Eigen::VectorXf::Constant(n, -gap);
          x[at] = 0.0f;
          INFO("n=" << n << " at=" << at << " gap=" << gap);
          CHECK(error_in_eps<float>(nll::log_sum_exp(x), reference_lse(x)) <= (n <= 40 ? 1.0 : kKernel ? 4.0 : 64.0));
        }
      }
    }
  }
  SECTION("the maximum grows from chunk to chunk, or shrinks") {
    for (bool rising : {true, false}) {
      Eigen::VectorXf x(10000);
      for (Eigen::Index j = 0; j < x.size(); ++j)
        x[j] = 0.003f * static_cast<float>(rising ? j : x.size() - j) + 0.25f * std::sin(static_cast<float>(j));
      INFO("rising=" << rising);
      CHECK(error_in_eps<float>(nll::log_sum_exp(x), reference_lse(x)) <= 2);
    }
  }
}

TEST_CASE("NaN and infinities in any chunk give the documented results") {
  for (Eigen::Index n : {5, 40, 2048, 5000}) {
    for (Eigen::Index at : {Eigen::Index(0), n / 2, n - 1}) {
      INFO("n=" << n << " at=" << at);
      Eigen::VectorXf x = Eigen::VectorXf::LinSpaced(n, -3.0f, 2.0f);
      x[at] = std::numeric_limits<float>::quiet_NaN();
      CHECK(std::isnan(nll::log_sum_exp(x)));
      x[at] = inf;
      CHECK(nll::log_sum_exp(x) == inf);
      x[(at + 1) % n] = -inf;
      CHECK(nll::log_sum_exp(x) == inf); // +inf with −inf: +inf
      x[(at + n - 1) % n] = std::numeric_limits<float>::quiet_NaN();
      if (n > 2) CHECK(std::isnan(nll::log_sum_exp(x))); // NaN wins over +inf
      const Eigen::VectorXf all_minus_inf = Eigen::VectorXf::Constant(n, -inf);
      CHECK(nll::log_sum_exp(all_minus_inf) == -inf);
      Eigen::VectorXf one_finite = all_minus_inf;
      one_finite[at] = -2.5f;
      CHECK(nll::log_sum_exp(one_finite) == -2.5f);
    }
  }
  // Finite values whose sum overflows (the kernel's NaN check) are still summed correctly.
  Eigen::VectorXf huge(4000);
  for (Eigen::Index j = 0; j < huge.size(); ++j) huge[j] = (j < 3000 ? 3.0e38f : -3.0e38f);
  CHECK(error_in_eps<float>(nll::log_sum_exp(huge), reference_lse(huge)) <= 1);
}

TEST_CASE("every storage order and 16-bit input gives the bits of contiguous float data (1 eps without the kernel)") {
  // With the kernel every float-computed vector goes through the same chunks: identical bits. The
  // generic path reduces strided rows in another order: within 1 eps.
  const auto same = [](float a, float b) { return kKernel ? a == b : error_in_eps<float>(a, b) <= 1; };
  std::mt19937_64 rng(99);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  for (Eigen::Index n : {7, 2049, 5000}) {
    RowMajorXf rm(3, n);
    for (Eigen::Index i = 0; i < rm.rows(); ++i)
      for (Eigen::Index j = 0; j < n; ++j) rm(i, j) = normal(rng);
    const ColMajorXf cm = rm;
    const Eigen::VectorXf from_rows = nll::log_sum_exp_rows(rm), from_cols = nll::log_sum_exp_rows(cm);
    for (Eigen::Index i = 0; i < rm.rows(); ++i) {
      INFO("n=" << n << " row " << i);
      CHECK(same(from_rows[i], from_cols[i]));
      CHECK(same(from_rows[i], nll::log_sum_exp(cm.row(i))));
      CHECK(same(from_rows[i], nll::log_sum_exp(rm.row(i).transpose())));
      const Eigen::Matrix<Eigen::half, Eigen::Dynamic, 1> h = rm.row(i).transpose().cast<Eigen::half>();
      CHECK(same(nll::log_sum_exp(h), nll::log_sum_exp(h.cast<float>().eval())));
      nll::LogSumExpState<double> state;
      state.add(rm.row(i));
      CHECK(error_in_eps<float>(static_cast<float>(state.value()), from_rows[i]) <= 1);
    }
  }
}

#if defined(NLL_LOG_SUM_EXP_AVX512)

TEST_CASE("AVX-512 exp_nonpositive: within 1 ulp of long double exp on [-110, 0], exact at 0 and -inf") {
  const nll::detail::avx512::ExpConstants c;
  long double worst_normal = 0, worst_subnormal = 0;
  float at_normal = 0, at_subnormal = 0;
  const long double smallest_normal = std::numeric_limits<float>::min();
  const long double subnormal_ulp = std::numeric_limits<float>::denorm_min();
  // Every float in [-1, 0] at a stride, then a dense sweep of [-110, -1].
  std::vector<float> d;
  for (float v = 0.0f; v >= -1.0f; v = std::nextafter(v, -2.0f) - 3e-7f) d.push_back(v);
  for (int k = 0; k <= 4000000; ++k) d.push_back(-1.0f - 109.0f * static_cast<float>(k) / 4000000.0f);
  while (d.size() % 16 != 0) d.push_back(-0.5f);
  alignas(64) float out[16];
  for (std::size_t i = 0; i < d.size(); i += 16) {
    _mm512_store_ps(out, nll::detail::avx512::exp_nonpositive(_mm512_loadu_ps(d.data() + i), c));
    for (int k = 0; k < 16; ++k) {
      const long double ref = std::exp(static_cast<long double>(d[i + k]));
      if (ref >= smallest_normal) {
        const long double e = std::fabs(out[k] - ref) / (ref * std::numeric_limits<float>::epsilon());
        if (e > worst_normal) {
          worst_normal = e;
          at_normal = d[i + k];
        }
      } else {
        const long double e = std::fabs(out[k] - ref) / subnormal_ulp;
        if (e > worst_subnormal) {
          worst_subnormal = e;
          at_subnormal = d[i + k];
        }
      }
    }
  }
  std::cout << "exp_nonpositive: worst " << static_cast<double>(worst_normal)
            << " ulp (normal results) at d = " << at_normal << ", " << static_cast<double>(worst_subnormal)
            << " subnormal ulp at d = " << at_subnormal << "\n";
  CHECK(worst_normal <= 1.0L);
  CHECK(worst_subnormal <= 1.05L);
  alignas(64) float special[16] = {0.0f,       -0.0f,  -inf,    -1e30f,  -110.0f, -104.0f, -1e-30f, -1e-45f,
                                   -87.33654f, -88.0f, -100.0f, -103.0f, -1.0f,   -0.5f,   -2.0f,   -20.0f};
  _mm512_store_ps(out, nll::detail::avx512::exp_nonpositive(_mm512_load_ps(special), c));
  CHECK(out[0] == 1.0f);
  CHECK(out[1] == 1.0f);
  CHECK(out[2] == 0.0f);
  CHECK(out[3] == 0.0f);
  CHECK(out[4] == 0.0f);
  CHECK(out[5] == 0.0f); // exp(−104) = 6.8e−46 rounds to 0
  CHECK(out[6] == 1.0f);
  CHECK(out[7] == 1.0f);
  for (int k = 8; k < 16; ++k) {
    INFO("d = " << special[k]);
    const long double ref = std::exp(static_cast<long double>(special[k]));
    CHECK(std::fabs(out[k] - ref) <= std::max(ref * std::numeric_limits<float>::epsilon(), subnormal_ulp));
  }
}

TEST_CASE("AVX-512 exp_nonpositive_mostly_normal gives exp_nonpositive's bits on both sides of its -87 cut-off") {
  const nll::detail::avx512::ExpConstants c;
  const auto same_bits = [&](const float* d) {
    alignas(64) float fast[16], full[16];
    _mm512_store_ps(fast, nll::detail::avx512::exp_nonpositive_mostly_normal(_mm512_loadu_ps(d), c));
    _mm512_store_ps(full, nll::detail::avx512::exp_nonpositive(_mm512_loadu_ps(d), c));
    bool same = true;
    for (int k = 0; k < 16; ++k) {
      const bool nan_both = std::isnan(fast[k]) && std::isnan(full[k]);
      if (!nan_both && std::memcmp(&fast[k], &full[k], sizeof(float)) != 0) {
        UNSCOPED_INFO("d = " << d[k] << ": " << fast[k] << " vs " << full[k]);
        same = false;
      }
    }
    return same;
  };
  // Whole packets of d in [-87, 0] take the exponent-bit path: every float of [-1, 0] at a stride and
  // a dense sweep down to -87, including the floats right at the cut-off.
  std::vector<float> d;
  for (float v = 0.0f; v >= -1.0f; v = std::nextafter(v, -2.0f) - 1e-6f) d.push_back(v);
  for (int k = 0; k <= 2000000; ++k) d.push_back(-1.0f - 86.0f * static_cast<float>(k) / 2000000.0f);
  for (float v = -87.0f, k = 0; k < 64; v = std::nextafter(v, 0.0f), ++k) d.push_back(v);
  while (d.size() % 16 != 0) d.push_back(-87.0f);
  bool all_same = true;
  for (std::size_t i = 0; i < d.size(); i += 16) all_same = same_bits(d.data() + i) && all_same;
  CHECK(all_same);
  // Packets with one lane just beyond the cut-off, -inf or NaN take the vscalefps path.
  for (const float odd :
       {std::nextafter(-87.0f, -100.0f), -87.5f, -100.0f, -inf, -1e30f, std::numeric_limits<float>::quiet_NaN()}) {
    alignas(64) float packet[16];
    for (int k = 0; k < 16; ++k) packet[k] = -87.0f * static_cast<float>(k) / 15.0f;
    packet[7] = odd;
    INFO("odd lane " << odd);
    CHECK(same_bits(packet));
    alignas(64) float out[16];
    _mm512_store_ps(out, nll::detail::avx512::exp_nonpositive_mostly_normal(_mm512_load_ps(packet), c));
    CHECK(std::isnan(out[7]) == std::isnan(odd));
  }
}

TEST_CASE("AVX-512 max_excess declines exactly the input it does not take") {
  double m = 0, e = 0;
  std::vector<float> x(3000, 1.0f);
  CHECK(nll::detail::avx512::max_excess(x.data(), 3000, m, e));
  CHECK(m == 1.0);
  CHECK(e == 2999.0); // 3000 ties
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), inf}) {
    for (std::size_t at : {std::size_t(0), std::size_t(2047), std::size_t(2048), std::size_t(2999)}) {
      std::vector<float> y = x;
      y[at] = bad;
      CHECK_FALSE(nll::detail::avx512::max_excess(y.data(), 3000, m, e));
    }
  }
  std::vector<float> all_minus_inf(3000, -inf);
  CHECK_FALSE(nll::detail::avx512::max_excess(all_minus_inf.data(), 3000, m, e));
  all_minus_inf[2500] = 4.0f; // one finite value in the second chunk: taken
  CHECK(nll::detail::avx512::max_excess(all_minus_inf.data(), 3000, m, e));
  CHECK(m == 4.0);
  CHECK(e == 0.0);
}

#endif
