// nll example: logistic regression trained by gradient descent with the library's gradient.
//
// Data: 2000 points in 5 dimensions; the label is 1 with probability σ(w*·x + b*) for a hidden
// weight vector w* (so the best possible accuracy is below 100%). The model's logits are z = X·w + b;
// nll::binary_cross_entropy_with_logits gives the mean loss and ∂loss/∂z, written in place over the
// logits; the chain rule through z = X·w + b gives ∂loss/∂w = Xᵀ·∂loss/∂z and ∂loss/∂b = Σ ∂loss/∂z.
#include <nll/nll.hpp>

#include <Eigen/Core>
#include <cstdio>
#include <random>

int main() {
  constexpr Eigen::Index kExamples = 2000, kFeatures = 5;
  std::mt19937 rng(42);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);

  // The hidden model and the data it generates.
  const Eigen::VectorXd w_true = (Eigen::VectorXd(kFeatures) << 2.0, -1.5, 0.5, 0.0, 3.0).finished();
  const double b_true = -0.5;
  Eigen::MatrixXd X(kExamples, kFeatures);
  Eigen::VectorXd y(kExamples);
  for (Eigen::Index i = 0; i < kExamples; ++i) {
    for (Eigen::Index j = 0; j < kFeatures; ++j) X(i, j) = normal(rng);
    const double p = 1.0 / (1.0 + std::exp(-(X.row(i).dot(w_true) + b_true)));
    y[i] = uniform(rng) < p ? 1.0 : 0.0;
  }
  // The loss of the hidden model itself: the floor the training loss approaches.
  const Eigen::VectorXd z_true = (X * w_true).array() + b_true;
  const double floor = nll::binary_cross_entropy_with_logits(z_true, y).value;

  // Gradient descent from zero.
  Eigen::VectorXd w = Eigen::VectorXd::Zero(kFeatures);
  double b = 0;
  const double learning_rate = 4.0;
  Eigen::VectorXd z(kExamples);
  std::printf("epoch      loss  accuracy   (loss of the generating model: %.4f)\n", floor);
  for (int epoch = 1; epoch <= 60; ++epoch) {
    z = (X * w).array() + b;
    const double accuracy = ((z.array() > 0).cast<double>() == y.array()).cast<double>().mean();
    // Mean binary cross entropy and its gradient with respect to the logits, in place (z becomes
    // ∂loss/∂z).
    const nll::Loss loss = nll::binary_cross_entropy_with_logits(z, y, z, {.reduction = nll::Reduction::mean});
    if (epoch <= 5 || epoch % 5 == 0) std::printf("%5d  %8.4f  %7.2f%%\n", epoch, loss.value, 100 * accuracy);
    w -= learning_rate * (X.transpose() * z);
    b -= learning_rate * z.sum();
  }
  std::printf("learned w = [");
  for (Eigen::Index j = 0; j < kFeatures; ++j) std::printf("%s%.2f", j ? ", " : "", w[j]);
  std::printf("], b = %.2f   (generating w = [2.00, -1.50, 0.50, 0.00, 3.00], b = -0.50)\n", b);
  return 0;
}
