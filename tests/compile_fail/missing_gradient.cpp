// Compile-fail test: a gradient requested from a family without neg_log_prob_grad.
// tests/compile_fail/expect_compile_failure.cmake compiles this file twice: as it is, which must
// fail with exactly one error whose text contains the EXPECT line below, and with
// -DNLL_COMPILE_FAIL_CONTROL, which completes the family and must compile cleanly (so the failure
// is the concept's and not a missing include or flag).
// EXPECT: is not an nll::DifferentiableDistribution
#include <nll/core/nll.hpp>

#include <Eigen/Core>

struct SquaredValueOnly {
  Eigen::Index num_examples(const Eigen::VectorXd& x, const Eigen::VectorXd&) const { return x.size(); }
  double neg_log_prob(const Eigen::VectorXd& x, const Eigen::VectorXd& y, Eigen::Index i) const {
    const double d = x[i] - y[i];
    return 0.5 * d * d;
  }
#if defined(NLL_COMPILE_FAIL_CONTROL)
  double neg_log_prob_grad(const Eigen::VectorXd& x, const Eigen::VectorXd& y, Eigen::Index i, double scale,
                           Eigen::VectorXd& grad) const {
    const double d = x[i] - y[i];
    grad[i] = scale * d;
    return 0.5 * d * d;
  }
  void zero_grad(Eigen::VectorXd& grad, Eigen::Index i) const { grad[i] = 0; }
#endif
};

int main() {
  const Eigen::VectorXd x = Eigen::VectorXd::Ones(3), y = Eigen::VectorXd::Zero(3);
  Eigen::VectorXd grad(3);
  return nll::nll(SquaredValueOnly{}, x, y, grad).value > 0 ? 0 : 1;
}
