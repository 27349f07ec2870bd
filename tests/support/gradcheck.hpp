// nll tests: finite-difference gradient checks in long double.
//
// An eighth-order central difference,
//   f'(x) ≈ Σ_k c_k (f(x + k h) − f(x − k h)) / h,  k = 1..4,
//   c = (4/5, −1/5, 4/105, −1/280),
// has truncation error O(h⁸); with h = 1e-3·max(1, |x|) in long double (64-bit mantissa) the
// combined rounding and truncation error is around 1e-14 relative for smooth losses, far below
// the float/double tolerances the tests use.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace nll_test {

/// d f / d x_j at x, by the eighth-order central difference. `f` takes a std::vector<long double>.
template <class F>
long double central_difference(F&& f, std::vector<long double> x, std::size_t j, long double step = 1e-3L) {
  static constexpr long double c[4] = {4.0L / 5, -1.0L / 5, 4.0L / 105, -1.0L / 280};
  const long double x0 = x[j];
  const long double h = step * std::max(1.0L, std::fabs(x0));
  long double d = 0;
  for (int k = 1; k <= 4; ++k) {
    x[j] = x0 + k * h;
    const long double up = f(x);
    x[j] = x0 - k * h;
    const long double down = f(x);
    d += c[k - 1] * (up - down);
  }
  return d / h;
}

/// Relative difference |a − b| / max(|b|, floor), for comparing gradients whose entries may be 0.
inline long double relative_difference(long double a, long double b, long double floor = 1e-300L) {
  return std::fabs(a - b) / std::max(std::fabs(b), floor);
}

} // namespace nll_test
