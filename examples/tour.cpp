// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// A tour of nll, run by scripts/demo. Every number printed is computed by the library; the text
// only says what to expect. Each section is one function, called from main() in order: a new
// section (a family, a named loss) is a new function plus one line in main().
#include <nll/nll.hpp>

#include <Eigen/Core>
#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace tour {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A section title, underlined.
void title(std::string_view text) {
  std::printf("\n%.*s\n%s\n", static_cast<int>(text.size()), text.data(),
              std::string(text.size(), '-').c_str());
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
  std::printf("\nThe wrong model pays %.1fx the cost of the right one.\n",
              each.per_example[1] / each.per_example[0]);
  std::printf("The batch mean (nll::Reduction::mean, the default) is %.3f over a total weight of %.0f.\n",
              mean.value, mean.total_weight);
}

} // namespace tour

int main() {
  std::printf("nll %s: a tour of negative-log-likelihood losses\n", NLL_VERSION_STRING);
  tour::section_surprise();
  tour::section_worked_example();
  return 0;
}
