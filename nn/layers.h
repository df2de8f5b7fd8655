// The plain layers of the paper's networks, PyTorch weight layouts and default
// initialisation: Linear, Conv2d, ConvTranspose2d, BatchNorm, PReLU, TPReLU, Affine,
// and the parameter-free Sigmoid, Upsample2x, AvgPool2x2, Pad2d, Crop2d, Unflatten.
// Conv and linear weights and biases start U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the
// fan-in of the authors' frameworks (nn/init.h).
#pragma once
#include "engine/ops/conv.h"
#include "engine/random.h"
#include "engine/dist/comm.h"
#include "nn/module.h"

namespace wn::nn {

// y = x weight^T + bias; weight (out, in).
class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, Generator& gen, bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Linear"; }
  Tensor weight, bias;
};

// 2-D convolution; weight (out, in, kh, kw).
class Conv2d : public Module {
 public:
  Conv2d(int64_t in, int64_t out, Hw kernel, Hw stride, Hw padding, Generator& gen, bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Conv2d"; }
  Tensor weight, bias;
  Hw stride, padding;
};

// Transposed 2-D convolution; weight (in, out, kh, kw).
class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(int64_t in, int64_t out, Hw kernel, Hw stride, Hw padding, Generator& gen, bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ConvTranspose2d"; }
  Tensor weight, bias;
  Hw stride, padding;
};

// Batch normalization over dim 1 of (N, C) or (N, C, H, W): weight (gamma, 1), bias
// (beta, 0), running_mean (0), running_var (1); momentum 0.1, eps 1e-5 by default.
class BatchNorm : public Module {
 public:
  explicit BatchNorm(int64_t channels, double momentum = 0.1, double eps = 1e-5);
  // As Torch7 and PyTorch before 1.2 (the authors' frameworks): gamma ~ U(0, 1).
  BatchNorm(int64_t channels, Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "BatchNorm"; }
  Tensor weight, bias, running_mean, running_var;
  double momentum, eps;
  // Training statistics over the batch of all these ranks (--sync-bn); null: this batch.
  dist::Comm* sync = nullptr;
};

// PReLU with one slope per channel (init 0.25), clipped to [0, 1] after each update.
class PReLU : public Module {
 public:
  explicit PReLU(int64_t channels, double init = 0.25);
  Tensor forward(const Tensor& x) override;
  void after_update() override;
  std::string type_name() const override { return "PReLU"; }
  Tensor weight;
};

// Translated PReLU: y = PReLU_a(x - b) + b, slope a (weight, init 0.25) and bias b
// (init 0) per channel. The slope is kept in [0, 1] either by clipping the parameter
// after each update (the paper, the authors' Torch code) or, with clamp_in_forward, by
// using clamp(a, 0, 1) in the forward pass (the authors' PyTorch code).
class TPReLU : public Module {
 public:
  explicit TPReLU(int64_t channels, double init = 0.25, bool clamp_in_forward = false);
  Tensor forward(const Tensor& x) override;
  void after_update() override;
  std::string type_name() const override { return clamp_in_forward_ ? "TPReLU(clamped)" : "TPReLU"; }
  Tensor weight, bias;

 private:
  bool clamp_in_forward_;
};

// y = weight * x + bias per channel (weight 1, bias 0 at first).
class Affine : public Module {
 public:
  explicit Affine(int64_t channels);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Affine"; }
  Tensor weight, bias;
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Sigmoid"; }
};

// Nearest-neighbour 2x upsampling.
class Upsample2x : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Upsample2x"; }
};

// 2x2 average pooling.
class AvgPool2x2 : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "AvgPool2x2"; }
};

// Zero padding (or, with crop = true, cropping) of the image plane by fixed margins.
class Pad2d : public Module {
 public:
  Pad2d(int64_t top, int64_t bottom, int64_t left, int64_t right, bool crop = false)
      : t_(top), b_(bottom), l_(left), r_(right), crop_(crop) {}
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return crop_ ? "Crop2d" : "Pad2d"; }

 private:
  int64_t t_, b_, l_, r_;
  bool crop_;
};

// (N, C*H*W) -> (N, C, H, W).
class Unflatten : public Module {
 public:
  Unflatten(int64_t c, int64_t h, int64_t w) : c_(c), h_(h), w_(w) {}
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Unflatten"; }

 private:
  int64_t c_, h_, w_;
};

// Runs after_update on every module below root (the optimizers' post-step hook): PReLU
// and TPReLU clip their slopes to [0, 1] there, unless a TPReLU clamps in its forward.
void after_update_all(Module& root);

}  // namespace wn::nn
