// A family of your own: Poisson counts with a log-rate, plugged into the generic driver and
// published as a named loss (the worked example of docs/architecture.md, section 2).
//
//   ℓ(η, y) = e^η − y·η + lgamma(y + 1)        ∂ℓ/∂η = e^η − y
//
// Fits the log-rate of a constant-rate Poisson model by gradient descent (the maximum-likelihood
// log-rate is the log of the mean count; the program fails if it does not get there), then shows
// per-example losses and an error message that carries the named loss's name.
#include <nll/nll.hpp>

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

/// The family: what −log p(y | η) is and what its gradient is, nothing about reductions.
struct Poisson {
  Eigen::Index num_examples(const Eigen::VectorXd& eta, const Eigen::VectorXd&) const { return eta.size(); }

  double neg_log_prob(const Eigen::VectorXd& eta, const Eigen::VectorXd& y, Eigen::Index i) const {
    return std::exp(eta[i]) - y[i] * eta[i] + std::lgamma(y[i] + 1);
  }
  double neg_log_prob_grad(const Eigen::VectorXd& eta, const Eigen::VectorXd& y, Eigen::Index i, double scale,
                           Eigen::VectorXd& grad) const {
    const double e = std::exp(eta[i]);
    const double loss = e - y[i] * eta[i] + std::lgamma(y[i] + 1);
    grad[i] = scale * (e - y[i]); // written last: grad may alias eta
    return loss;
  }
  void zero_grad(Eigen::VectorXd& grad, Eigen::Index i) const { grad[i] = 0; }
};

/// The named loss: its options start with the driver's six fields. A loss's own fields would
/// follow, each with a default (g++ warns about designated initializers that skip a field without one).
struct PoissonNllOptions {
  NLL_DRIVER_OPTION_FIELDS
};

/// Mean Poisson negative log-likelihood of counts y under log-rates eta, gradient into grad.
/// Throws like every nll loss, with "nll::poisson_nll_loss: …" messages.
inline nll::Loss poisson_nll_loss(const Eigen::VectorXd& eta, const Eigen::VectorXd& y, Eigen::VectorXd& grad,
                                  const PoissonNllOptions& o = {}) {
  return nll::detail::run_nll<nll::KernelPath::fused>("poisson_nll_loss", Poisson{}, eta, y, &grad,
                                                      nll::driver_options(o));
}

int main() {
  const Eigen::VectorXd counts = (Eigen::VectorXd(8) << 3, 0, 2, 5, 1, 4, 2, 7).finished();
  const std::vector<std::uint8_t> keep{1, 1, 1, 1, 1, 1, 1, 0}; // the last count is padding
  // The maximum-likelihood rate over the kept counts is their mean: 17 / 7.
  const double best_eta = std::log(17.0 / 7.0);

  // One shared log-rate, broadcast to every example; its gradient is the sum of the examples'.
  double eta = 0;
  Eigen::VectorXd etas(8), grad(8);
  nll::Loss r;
  for (int step = 0; step < 200; ++step) {
    etas.setConstant(eta);
    r = poisson_nll_loss(etas, counts, grad, {.mask = keep});
    eta -= 0.5 * grad.sum();
  }
  std::printf("fitted log-rate %.12f (maximum likelihood %.12f), mean loss %.9f over %g counts\n", eta, best_eta,
              r.value, r.total_weight);

  // The same family through nll::nll: per-example losses, and the error grammar.
  etas.setConstant(eta);
  const nll::Loss each = nll::nll(Poisson{}, etas, counts, {.reduction = nll::Reduction::none, .mask = keep});
  std::printf("per-example losses:");
  for (Eigen::Index i = 0; i < each.per_example.size(); ++i) std::printf(" %.4f", each.per_example[i]);
  std::printf("\n");
  try {
    const std::vector<double> weight{1, 1, 1, -1, 1, 1, 1, 1};
    poisson_nll_loss(etas, counts, grad, {.weight = weight});
  } catch (const std::domain_error& e) {
    std::printf("%s\n", e.what());
  }
  return std::fabs(eta - best_eta) < 1e-9 ? 0 : 1;
}
