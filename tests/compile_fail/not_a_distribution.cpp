// Compile-fail test: a type without neg_log_prob handed to nll::nll (value only).
// See missing_gradient.cpp for how it is run; -DNLL_COMPILE_FAIL_CONTROL adds neg_log_prob.
// EXPECT: is not an nll::Distribution
#include <nll/core/nll.hpp>

#include <Eigen/Core>

struct NoNegLogProb {
  Eigen::Index num_examples(const Eigen::VectorXd& x, const Eigen::VectorXd&) const { return x.size(); }
#if defined(NLL_COMPILE_FAIL_CONTROL)
  double neg_log_prob(const Eigen::VectorXd& x, const Eigen::VectorXd& y, Eigen::Index i) const {
    const double d = x[i] - y[i];
    return 0.5 * d * d;
  }
#endif
};

int main() {
  const Eigen::VectorXd x = Eigen::VectorXd::Ones(3), y = Eigen::VectorXd::Zero(3);
  return nll::nll(NoNegLogProb{}, x, y).value > 0 ? 0 : 1;
}
