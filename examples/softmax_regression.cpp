// nll example: 3-class softmax regression trained with plain gradient descent.
//
// Data: three Gaussian blobs in the plane (a fixed seed, so every run prints the same numbers).
// Model: logits = X·Wᵀ with X = [x₁, x₂, 1] (N×3) and W (3 classes × 3 features).
// Each step asks nll::cross_entropy for the mean loss and its gradient with respect to the logits
// (G = ∂loss/∂logits, N×3), then W ← W − lr·Gᵀ·X. The accuracy comes from the same call
// (options.outputs.target_is_argmax), so nothing is evaluated twice.
#include <nll/dist/categorical.hpp>

#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

int main() {
  using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  constexpr int kPerClass = 200, kClasses = 3, kSteps = 200;
  const double centres[kClasses][2] = {{-2.0, 0.0}, {2.0, 0.5}, {0.0, 2.5}};

  std::mt19937 rng(7);
  std::normal_distribution<double> noise(0.0, 1.0);
  const int n = kPerClass * kClasses;
  RowMat x(n, 3);
  std::vector<int> labels(static_cast<std::size_t>(n));
  for (int k = 0; k < kClasses; ++k) {
    for (int j = 0; j < kPerClass; ++j) {
      const int i = k * kPerClass + j;
      x(i, 0) = centres[k][0] + noise(rng);
      x(i, 1) = centres[k][1] + noise(rng);
      x(i, 2) = 1.0; // bias feature
      labels[static_cast<std::size_t>(i)] = k;
    }
  }

  RowMat w = RowMat::Zero(kClasses, 3);
  RowMat logits(n, kClasses), grad(n, kClasses);
  std::vector<std::uint8_t> correct(static_cast<std::size_t>(n));
  const double learning_rate = 0.5;

  std::printf("step   loss      accuracy\n");
  for (int step = 0; step <= kSteps; ++step) {
    logits.noalias() = x * w.transpose();
    const nll::Loss loss = nll::cross_entropy(logits, labels, grad, {.outputs = {.target_is_argmax = correct}});
    if (step % 20 == 0) {
      int hits = 0;
      for (const std::uint8_t c : correct) hits += c;
      std::printf("%4d   %.6f  %.3f\n", step, loss.value, static_cast<double>(hits) / n);
    }
    w.noalias() -= learning_rate * grad.transpose() * x; // ∂loss/∂W = Gᵀ·X
  }
  std::printf("weights (rows: classes; columns: x1, x2, bias):\n");
  for (int k = 0; k < kClasses; ++k) std::printf("  % .4f  % .4f  % .4f\n", w(k, 0), w(k, 1), w(k, 2));
  return 0;
}
