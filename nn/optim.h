// Optimizers with PyTorch semantics: RMSProp, Adam, SGD with momentum. A step skips
// parameters without a gradient; post-step hooks run after every step (the GANs clip
// PReLU / TPReLU slopes to [0, 1] there).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "nn/module.h"

namespace wn::nn {

class Optimizer {
 public:
  explicit Optimizer(Named params) : params_(std::move(params)) {}
  virtual ~Optimizer() = default;
  // Updates every parameter that has a gradient, then runs the post-step hooks.
  void step();
  // Drops the gradients of the optimised parameters.
  void zero_grad();
  // Registers a function to run after every step.
  void add_post_step_hook(std::function<void()> hook) { hooks_.push_back(std::move(hook)); }
  // Steps taken so far.
  int64_t steps() const { return steps_; }
  void set_steps(int64_t s) { steps_ = s; }
  // The state tensors, named "<param name>.<state>" (PyTorch's state names), for
  // checkpoints; loading copies into them.
  virtual Named state() const = 0;
  const Named& params() const { return params_; }
  virtual std::string type_name() const = 0;

 protected:
  // Updates parameter i with gradient g.
  virtual void update(size_t i, Tensor& p, const Tensor& g) = 0;
  Named params_;
  int64_t steps_ = 0;

 private:
  std::vector<std::function<void()>> hooks_;
};

// The paper's RMSProp (the authors' code), for G, D and the codes of the reconstruction
// test: decay alpha 0.9, epsilon 1e-6 (their ResNet code trains with epsilon 1e-8).
constexpr double kPaperRMSPropAlpha = 0.9;
constexpr double kPaperRMSPropEps = 1e-6;

// s = alpha s + (1 - alpha) g^2; p -= lr g / (sqrt(s) + eps).
class RMSProp : public Optimizer {
 public:
  RMSProp(Named params, double lr, double alpha = 0.99, double eps = 1e-8);
  Named state() const override;
  std::string type_name() const override { return "RMSProp"; }
  double lr, alpha, eps;

 protected:
  void update(size_t i, Tensor& p, const Tensor& g) override;

 private:
  std::vector<Tensor> square_avg_;
};

// Adam with bias correction.
class Adam : public Optimizer {
 public:
  Adam(Named params, double lr, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8);
  Named state() const override;
  std::string type_name() const override { return "Adam"; }
  double lr, beta1, beta2, eps;

 protected:
  void update(size_t i, Tensor& p, const Tensor& g) override;

 private:
  std::vector<Tensor> exp_avg_, exp_avg_sq_;
};

// p -= lr b with b = momentum b + g (b = g on the first step); plain SGD when momentum is 0.
class SGD : public Optimizer {
 public:
  SGD(Named params, double lr, double momentum = 0.0);
  Named state() const override;
  std::string type_name() const override { return "SGD"; }
  double lr, momentum;

 protected:
  void update(size_t i, Tensor& p, const Tensor& g) override;

 private:
  std::vector<Tensor> buf_;
};

}  // namespace wn::nn
