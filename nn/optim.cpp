#include "nn/optim.h"

#include "engine/autograd.h"
#include "engine/backend/backend.h"
#include "engine/profile.h"

namespace wn::nn {

namespace {
std::vector<Tensor> zeros_like_all(const Named& params) {
  std::vector<Tensor> v;
  for (auto& [n, p] : params) v.push_back(Tensor::zeros(p.shape(), p.dtype(), p.device()));
  return v;
}
Named named_state(const Named& params, const std::vector<Tensor>& s, const std::string& suffix) {
  Named out;
  for (size_t i = 0; i < params.size(); ++i) out.emplace_back(params[i].first + "." + suffix, s[i]);
  return out;
}
}  // namespace

void Optimizer::step() {
  NoGradGuard ng;
  profile::Phase phase("update");
  ++steps_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i].second;
    Tensor g = p.grad();
    if (g.defined()) update(i, p, g);
  }
  for (auto& h : hooks_) h();
}

void Optimizer::zero_grad() {
  for (auto& [n, p] : params_) p.zero_grad();
}

RMSProp::RMSProp(Named params, double lr_, double alpha_, double eps_)
    : Optimizer(std::move(params)), lr(lr_), alpha(alpha_), eps(eps_), square_avg_(zeros_like_all(params_)) {}

void RMSProp::update(size_t i, Tensor& p, const Tensor& g) {
  p.backend().rmsprop_update(p, g, square_avg_[i], lr, alpha, eps);
}

Named RMSProp::state() const { return named_state(params_, square_avg_, "square_avg"); }

Adam::Adam(Named params, double lr_, double b1, double b2, double eps_)
    : Optimizer(std::move(params)),
      lr(lr_),
      beta1(b1),
      beta2(b2),
      eps(eps_),
      exp_avg_(zeros_like_all(params_)),
      exp_avg_sq_(zeros_like_all(params_)) {}

void Adam::update(size_t i, Tensor& p, const Tensor& g) {
  p.backend().adam_update(p, g, exp_avg_[i], exp_avg_sq_[i], lr, beta1, beta2, eps, steps_);
}

Named Adam::state() const {
  Named a = named_state(params_, exp_avg_, "exp_avg"), b = named_state(params_, exp_avg_sq_, "exp_avg_sq");
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

SGD::SGD(Named params, double lr_, double momentum_)
    : Optimizer(std::move(params)), lr(lr_), momentum(momentum_), buf_(zeros_like_all(params_)) {}

void SGD::update(size_t i, Tensor& p, const Tensor& g) {
  Tensor none;
  p.backend().sgd_update(p, g, momentum != 0 ? buf_[i] : none, lr, momentum, steps_ == 1);
}

Named SGD::state() const { return named_state(params_, buf_, "momentum_buffer"); }

}  // namespace wn::nn
