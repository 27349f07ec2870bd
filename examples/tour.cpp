// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// A tour of nll, run by scripts/demo. Every number printed is computed by the library; the text
// only says what to expect. Each section is one function, called from main() in order: a new
// section (a family, a named loss) is a new function plus one line in main().
#include <nll/nll.hpp>

#include <Eigen/Core>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace tour {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A section title, underlined.
void title(std::string_view text) {
  std::printf("\n%.*s\n%s\n", static_cast<int>(text.size()), text.data(), std::string(text.size(), '-').c_str());
}

/// A categorical distribution given by its log-probabilities, one row per example, and the observed
/// class of each example: ℓ_i = −log p_i(y_i) = log Σ_c exp(row_i[c]) − row_i[y_i]. (The
/// log-sum-exp is 0 when a row's probabilities add up to 1; it makes any row of scores a
/// distribution.) A minimal nll::Distribution: the generic driver nll::nll does the rest.
struct LogProbCategorical {
  Eigen::Index num_examples(const RowMatrix& log_p, const std::vector<int>&) const { return log_p.rows(); }
  void check(const RowMatrix& log_p, const std::vector<int>& y, std::string_view function) const {
    nll::check_size(function, "targets.size()", static_cast<long long>(y.size()), log_p.rows(), "log_p.rows()");
    for (std::size_t i = 0; i < y.size(); ++i)
      if (y[i] < 0 || y[i] >= log_p.cols())
        nll::fail_at(nll::ErrorKind::value, function, "targets", static_cast<long long>(i), y[i],
                     "a class index in [0, log_p.cols())");
  }
  double neg_log_prob(const RowMatrix& log_p, const std::vector<int>& y, Eigen::Index i) const {
    return static_cast<double>(nll::log_sum_exp(log_p.row(i))) - log_p(i, y[static_cast<std::size_t>(i)]);
  }
};

/// Log-probabilities of a batch of probability rows (the inputs of this tour are probabilities).
RowMatrix log_of(const RowMatrix& p) { return p.array().log().matrix(); }

void section_surprise() {
  title("The cost of an outcome: -log p");
  std::printf("An outcome the model gave probability p costs -log p (natural log, in nats):\n"
              "certain outcomes are free, and every factor of 10 less belief costs 2.3 more.\n\n");
  const std::vector<double> probabilities = {1.0, 0.5, 0.1, 0.01};
  // One example per p: two classes (p, 1 - p), the observed class is the first.
  RowMatrix p(static_cast<Eigen::Index>(probabilities.size()), 2);
  for (std::size_t i = 0; i < probabilities.size(); ++i)
    p.row(static_cast<Eigen::Index>(i)) << probabilities[i], 1.0 - probabilities[i];
  const std::vector<int> observed(probabilities.size(), 0);
  const nll::Loss loss = nll::nll(LogProbCategorical{}, log_of(p), observed, {.reduction = nll::Reduction::none});

  std::printf("  %6s  %8s\n", "p", "-log p");
  for (std::size_t i = 0; i < probabilities.size(); ++i)
    std::printf("  %6.2f  %8.3f\n", probabilities[i], loss.per_example[static_cast<Eigen::Index>(i)]);
}

void section_worked_example() {
  title("A worked example: three classes, the true class is the second");
  std::printf("Two models see the same example. The loss only looks at the probability given to\n"
              "the class that happened.\n\n");
  RowMatrix p(2, 3);
  p << 0.1, 0.7, 0.2, //
      0.1, 0.2, 0.7;
  const std::vector<int> observed = {1, 1}; // 0-based: the second class
  const nll::Loss each = nll::nll(LogProbCategorical{}, log_of(p), observed, {.reduction = nll::Reduction::none});
  const nll::Loss mean = nll::nll(LogProbCategorical{}, log_of(p), observed);

  const char* names[] = {"right", "wrong"};
  std::printf("  %-6s  %-18s  %7s  %12s\n", "model", "p(class 1, 2, 3)", "p(true)", "-log p(true)");
  for (Eigen::Index i = 0; i < p.rows(); ++i)
    std::printf("  %-6s  %4.1f  %4.1f  %4.1f    %7.1f  %12.3f\n", names[i], p(i, 0), p(i, 1), p(i, 2), p(i, 1),
                each.per_example[i]);
  std::printf("\nThe wrong model pays %.1fx the cost of the right one.\n", each.per_example[1] / each.per_example[0]);
  std::printf("The batch mean (nll::Reduction::mean, the default) is %.3f over a total weight of %.0f.\n", mean.value,
              mean.total_weight);
}

void section_cross_entropy() {
  title("Categorical: cross entropy from logits (nll::cross_entropy)");
  std::printf("A model outputs scores (logits); softmax turns them into probabilities. The same two\n"
              "models as above, given as logits log p, through nll::cross_entropy and its options:\n\n");
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> logits(2, 3);
  logits << std::log(0.1f), std::log(0.7f), std::log(0.2f), //
      std::log(0.1f), std::log(0.2f), std::log(0.7f);
  const Eigen::VectorXi observed = Eigen::VectorXi::Constant(2, 1);
  const nll::Loss plain = nll::cross_entropy(logits, observed, {.reduction = nll::Reduction::none});
  const nll::Loss smooth =
      nll::cross_entropy(logits, observed, {.reduction = nll::Reduction::none, .label_smoothing = 0.1});
  // Adding 3 to every logit leaves the softmax unchanged, but the z-loss 1e-2 * lse^2 sees it.
  const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> shifted = logits.array() + 3.0f;
  const nll::Loss zloss = nll::cross_entropy(shifted, observed, {.reduction = nll::Reduction::none, .z_loss = 1e-2});
  std::printf("  %-6s  %10s  %16s  %22s\n", "model", "plain", "smoothing 0.1", "logits+3, z-loss 1e-2");
  const char* names[] = {"right", "wrong"};
  for (Eigen::Index i = 0; i < 2; ++i)
    std::printf("  %-6s  %10.3f  %16.3f  %22.3f\n", names[i], plain.per_example[i], smooth.per_example[i],
                zloss.per_example[i]);

  // The gradient of the mean loss, written into a caller buffer: softmax(x) - onehot(y), divided by N.
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> grad(2, 3);
  const nll::Loss mean = nll::cross_entropy(logits, observed, grad);
  std::printf("\nMean %.3f; its gradient (softmax - one-hot) / N, row by row:\n", mean.value);
  for (Eigen::Index i = 0; i < 2; ++i)
    std::printf("  %-6s  % .3f  % .3f  % .3f\n", names[i], grad(i, 0), grad(i, 1), grad(i, 2));

  // Huge and masked logits: exact, never inf or NaN.
  Eigen::Matrix<float, 1, Eigen::Dynamic> extreme(4);
  extreme << 1e4f, -1e4f, -std::numeric_limits<float>::infinity(), 0.0f;
  const Eigen::VectorXi class_zero = Eigen::VectorXi::Zero(1), class_one = Eigen::VectorXi::Ones(1);
  std::printf("\nLogits [1e4, -1e4, -inf, 0]: true class 0 costs %.3g, true class 1 costs %.3g.\n",
              nll::cross_entropy(extreme, class_zero).value, nll::cross_entropy(extreme, class_one).value);
}

void section_bernoulli() {
  title("Bernoulli: binary log-loss from logits (nll::binary_cross_entropy_with_logits)");
  std::printf("One yes/no output per element: loss softplus(x) - y*x, gradient sigmoid(x) - y,\n"
              "exact in both tails.\n\n");
  Eigen::ArrayXd logits(7);
  logits << -1e4, -30, -2, 0, 2, 30, 1e4;
  std::printf("  %10s  %14s  %14s  %14s  %14s\n", "logit x", "loss (y = 1)", "grad (y = 1)", "loss (y = 0)",
              "grad (y = 0)");
  for (Eigen::Index i = 0; i < logits.size(); ++i) {
    Eigen::VectorXd x(1), one(1), zero(1), g1(1), g0(1);
    x << logits[i];
    one << 1.0;
    zero << 0.0;
    const double l1 = nll::binary_cross_entropy_with_logits(x, one, g1).value;
    const double l0 = nll::binary_cross_entropy_with_logits(x, zero, g0).value;
    std::printf("  %10.0f  %14.6g  %14.6g  %14.6g  %14.6g\n", logits[i], l1, g1[0], l0, g0[0]);
  }
}

void section_gaussian() {
  title("Gaussian: squared error and a learned variance");
  std::printf("With a fixed sigma the Gaussian NLL is the squared error, scaled and shifted; with a\n"
              "learned variance a wide prediction pays log(var) and an overconfident one pays (y-mu)^2/var.\n\n");
  Eigen::VectorXd mean(1), target(1);
  mean << 0.0;
  target << 1.0;
  std::printf("  mse_loss(mu = 0, y = 1)                        = %.4f\n", nll::mse_loss(mean, target).value);
  std::printf("  gaussian_nll_loss_fixed(mu = 0, y = 1, s = 1)  = %.4f  (= mse/2 + log(2 pi)/2)\n",
              nll::gaussian_nll_loss_fixed(mean, target, 1.0).value);
  std::printf("\n  %8s  %24s\n", "var", "gaussian_nll_loss, y-mu = 1");
  for (const double v : {0.01, 0.1, 1.0, 10.0, 100.0}) {
    Eigen::VectorXd var(1);
    var << v;
    std::printf("  %8.2f  %24.4f\n", v, nll::gaussian_nll_loss(mean, var, target).value);
  }
  std::printf("The best variance is the squared residual (here 1): too sure and too vague both cost.\n");
}

} // namespace tour

int main() {
  std::printf("nll %s: a tour of negative-log-likelihood losses\n", NLL_VERSION_STRING);
  tour::section_surprise();
  tour::section_worked_example();
  tour::section_cross_entropy();
  tour::section_bernoulli();
  tour::section_gaussian();
  return 0;
}
