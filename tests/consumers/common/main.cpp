// nll consumer test: a program outside nll's build that uses the library the way a user would.
// It defines its own tiny family (Bernoulli with a logit, coded by hand) and runs it through the
// generic driver nll::nll, then checks the loss, the total weight and the gradient against numbers
// worked out by hand (below). Returns non-zero on any mismatch.
#include <nll/nll.hpp>

#include <Eigen/Core>
#include <cmath>
#include <cstdio>
#include <string>

namespace {

/// y ~ Bernoulli(sigmoid(x)):  ℓ = softplus(x) − y·x,  ∂ℓ/∂x = sigmoid(x) − y.
struct BernoulliLogit {
  Eigen::Index num_examples(const Eigen::VectorXd& x, const Eigen::VectorXd&) const { return x.size(); }
  double neg_log_prob(const Eigen::VectorXd& x, const Eigen::VectorXd& y, Eigen::Index i) const {
    return nll::softplus(x[i]) - y[i] * x[i];
  }
  double neg_log_prob_grad(const Eigen::VectorXd& x, const Eigen::VectorXd& y, Eigen::Index i, double scale,
                           Eigen::VectorXd& grad) const {
    const double loss = neg_log_prob(x, y, i);
    grad[i] = scale * (nll::sigmoid(x[i]) - y[i]);
    return loss;
  }
  void zero_grad(Eigen::VectorXd& grad, Eigen::Index i) const { grad[i] = 0; }
};

int failures = 0;

void expect_near(const char* what, double got, double want) {
  const double tolerance = 1e-14 * std::abs(want);
  if (!(std::abs(got - want) <= tolerance)) {
    std::printf("MISMATCH %s: got %.17g, want %.17g\n", what, got, want);
    ++failures;
  } else {
    std::printf("ok       %s = %.17g\n", what, got);
  }
}

} // namespace

int main() {
  if (std::string(NLL_VERSION_STRING) != NLL_CONSUMER_EXPECTED_VERSION) {
    std::printf("MISMATCH version: headers say %s, the build says %s\n", NLL_VERSION_STRING,
                NLL_CONSUMER_EXPECTED_VERSION);
    ++failures;
  }

  Eigen::VectorXd logits(3), labels(3), grad(3);
  logits << 0.0, 2.0, -1.0;
  labels << 1.0, 0.0, 1.0;

  // By hand: ℓ_0 = log 2 = 0.693147180559945309, ℓ_1 = log(1 + e²) = 2.12692801104297250,
  // ℓ_2 = log(1 + e) = 1.31326168751822283; mean = 4.13333687912112063 / 3.
  const nll::Loss mean = nll::nll(BernoulliLogit{}, logits, labels, grad, {.reduction = nll::Reduction::mean});
  expect_near("mean loss", mean.value, 1.37777895970704688);
  expect_near("total weight", mean.total_weight, 3.0);
  // (sigmoid(x) − y)/3: (1/2 − 1)/3, sigmoid(2)/3 = 0.880797077977882444/3, (sigmoid(−1) − 1)/3.
  expect_near("grad[0]", grad[0], -1.0 / 6.0);
  expect_near("grad[1]", grad[1], 0.293599025992627481);
  expect_near("grad[2]", grad[2], -0.243686192876668293);

  // Weight 2 on the first example, sum: 2·log 2 + log(1 + e²) + log(1 + e).
  const Eigen::VectorXd weight = Eigen::Vector3d(2.0, 1.0, 1.0);
  const nll::Loss sum =
      nll::nll(BernoulliLogit{}, logits, labels, {.reduction = nll::Reduction::sum, .weight = weight});
  expect_near("weighted sum", sum.value, 4.82648405968108595);

  // A kernel straight from the library: log(e⁰ + e⁰) = log 2.
  expect_near("log_sum_exp(0, 0)", static_cast<double>(nll::log_sum_exp(0.0, 0.0)), 0.693147180559945309);

  std::printf(failures == 0 ? "consumer: all checks passed\n" : "consumer: %d check(s) failed\n", failures);
  return failures == 0 ? 0 : 1;
}
