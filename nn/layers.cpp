#include "nn/layers.h"

#include "engine/autograd.h"
#include "engine/dist/ops.h"
#include "engine/ops/activation.h"
#include "engine/ops/batch_norm.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linear.h"
#include "engine/ops/pool.h"
#include "engine/ops/shape.h"
#include "nn/init.h"

namespace wn::nn {

Linear::Linear(int64_t in, int64_t out, Generator& gen, bool with_bias) {
  weight = register_parameter("weight", default_uniform({out, in}, in, gen));
  if (with_bias) bias = register_parameter("bias", default_uniform({out}, in, gen));
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

Conv2d::Conv2d(int64_t in, int64_t out, Hw k, Hw s, Hw p, Generator& gen, bool with_bias) : stride(s), padding(p) {
  const Shape ws{out, in, k.h, k.w};
  weight = register_parameter("weight", default_uniform(ws, fan_in_of(ws), gen));
  if (with_bias) bias = register_parameter("bias", default_uniform({out}, fan_in_of(ws), gen));
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight, bias, stride, padding); }

ConvTranspose2d::ConvTranspose2d(int64_t in, int64_t out, Hw k, Hw s, Hw p, Generator& gen, bool with_bias)
    : stride(s), padding(p) {
  const Shape ws{in, out, k.h, k.w};
  weight = register_parameter("weight", default_uniform(ws, fan_in_of(ws, true), gen));
  if (with_bias) bias = register_parameter("bias", default_uniform({out}, fan_in_of(ws, true), gen));
}

Tensor ConvTranspose2d::forward(const Tensor& x) { return conv_transpose2d(x, weight, bias, stride, padding); }

BatchNorm::BatchNorm(int64_t c, double m, double e) : momentum(m), eps(e) {
  weight = register_parameter("weight", Tensor::ones({c}));
  bias = register_parameter("bias", Tensor::zeros({c}));
  running_mean = register_buffer("running_mean", Tensor::zeros({c}));
  running_var = register_buffer("running_var", Tensor::ones({c}));
}

BatchNorm::BatchNorm(int64_t c, Generator& gen) : BatchNorm(c) {
  weight.copy_from(rand_uniform({c}, gen, 0.0, 1.0));
}

Tensor BatchNorm::forward(const Tensor& x) {
  if (sync && sync->size() > 1 && is_training())
    return dist::sync_batch_norm(x, weight, bias, running_mean, running_var, *sync, momentum, eps);
  return batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum, eps);
}

PReLU::PReLU(int64_t c, double init) { weight = register_parameter("weight", Tensor::full({c}, init)); }

Tensor PReLU::forward(const Tensor& x) { return prelu(x, weight); }

namespace {
// Clips a parameter's elements to [0, 1] in place, outside the graph.
void clip01(Tensor& t) {
  NoGradGuard ng;
  t.copy_from(clamp(t, 0.0, 1.0));
}
}  // namespace

void PReLU::after_update() { clip01(weight); }

TPReLU::TPReLU(int64_t c, double init, bool clamp_in_forward) : clamp_in_forward_(clamp_in_forward) {
  weight = register_parameter("weight", Tensor::full({c}, init));
  bias = register_parameter("bias", Tensor::zeros({c}));
}

Tensor TPReLU::forward(const Tensor& x) {
  // prelu(x - bias, weight) + bias, fused (bias per channel over (N, C) and (N, C, H, W)).
  return tprelu(x, clamp_in_forward_ ? clamp(weight, 0.0, 1.0) : weight, bias);
}

void TPReLU::after_update() {
  if (!clamp_in_forward_) clip01(weight);
}

Affine::Affine(int64_t c) {
  weight = register_parameter("weight", Tensor::ones({c}));
  bias = register_parameter("bias", Tensor::zeros({c}));
}

Tensor Affine::forward(const Tensor& x) { return add(mul(x, weight), bias); }

Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }
Tensor Upsample2x::forward(const Tensor& x) { return upsample_nearest2x(x); }
Tensor AvgPool2x2::forward(const Tensor& x) { return avg_pool2x2(x); }

Tensor Pad2d::forward(const Tensor& x) { return crop_ ? crop2d(x, t_, b_, l_, r_) : pad2d(x, t_, b_, l_, r_); }

Tensor Unflatten::forward(const Tensor& x) { return reshape(x, {x.dim(0), c_, h_, w_}); }

void after_update_all(Module& root) {
  root.apply([](Module& m) { m.after_update(); });
}

}  // namespace wn::nn
