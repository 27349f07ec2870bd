// nll built with -fno-exceptions: a failed check writes its message to stderr and aborts.
// Run by tests/no_exceptions/expect_abort.cmake, which passes only if this program aborts (a
// non-zero result) and its output contains the exact message.
#include <nll/core/nll.hpp>

#include <Eigen/Core>
#include <cmath>
#include <cstdio>
#include <vector>

static_assert(NLL_HAS_EXCEPTIONS == 0, "this program must be compiled with -fno-exceptions");

namespace {

/// Squared error: l = (x - y)^2 / 2, dl/dx = x - y.
struct Squared {
  Eigen::Index num_examples(const Eigen::VectorXd& x, const Eigen::VectorXd&) const { return x.size(); }
  double neg_log_prob(const Eigen::VectorXd& x, const Eigen::VectorXd& y, Eigen::Index i) const {
    const double d = x[i] - y[i];
    return 0.5 * d * d;
  }
  double neg_log_prob_grad(const Eigen::VectorXd& x, const Eigen::VectorXd& y, Eigen::Index i, double scale,
                           Eigen::VectorXd& grad) const {
    const double d = x[i] - y[i];
    grad[i] = scale * d;
    return 0.5 * d * d;
  }
  void zero_grad(Eigen::VectorXd& grad, Eigen::Index i) const { grad[i] = 0; }
};

} // namespace

int main() {
  const Eigen::VectorXd x = (Eigen::VectorXd(4) << 1, 2, 3, 4).finished();
  const Eigen::VectorXd y = Eigen::VectorXd::Zero(4);
  Eigen::VectorXd grad(4);
  // A call that passes its checks works as usual: (1 + 4 + 9 + 16) / 2 / 4 = 3.75.
  const nll::Loss ok = nll::nll(Squared{}, x, y, grad);
  if (ok.value != 3.75 || grad[3] != 1.0) {
    std::printf("wrong result without exceptions: %.17g\n", ok.value);
    return 0; // the CMake script requires an abort: this fails the test
  }
  std::printf("checked call: value %g\n", ok.value);
  std::fflush(stdout);
  const std::vector<double> weight{1, -2, 1, 1};
  const nll::Loss bad = nll::nll(Squared{}, x, y, grad, {.weight = weight});
  std::printf("the failed check did not abort (value %g)\n", bad.value);
  return 0;
}
