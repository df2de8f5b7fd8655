// Weight-normalized layers (docs/paper.md section 2). Strict: y = (v / ||v||) . x per output
// unit, no bias, no scale. Affine: y = scale * (v / ||v||) . x + bias (scale 1, bias 0
// at first). ||v|| = sqrt(sum(v^2) * factor + 1e-6) (the authors' DCGAN code) or
// sqrt(sum(v^2) * factor) + 1e-8 (their ResNet code), one norm per output unit; factor
// is 1, except 1 / (stride_h * stride_w) for transposed convolutions. The normalized
// weight comes from the fused weight_norm op (engine/ops/weight_norm.h).
// Parameters: `.weight` (v, the PyTorch layout of the plain layer), `.scale`, `.bias`.
#pragma once
#include <functional>
#include <vector>

#include "engine/ops/conv.h"
#include "engine/random.h"
#include "nn/module.h"

namespace wn::nn {

enum class WNMode { Strict, Affine };
// Where ||v||'s epsilon sits: Inside the root (1e-6, the DCGAN code) or Outside (1e-8,
// the ResNet code).
enum class WNEps { Inside, Outside };

// Shared by the three weight-normalized layers.
class WNLayer : public Module {
 public:
  // The normalized weight w = v / ||v|| (times scale, in affine mode).
  Tensor normalized_weight() const;
  // Per output unit: ||v|| as used in the forward (including factor and epsilon).
  std::vector<double> norms() const;
  // Per output unit: cos(v, dL/dv) from the current gradient (NaN where it is 0/0: no
  // gradient reached the unit); these must be ~0 since the output does not change with |v|.
  std::vector<double> v_grad_cosines() const;
  // Per output unit: factor * ||v_u||^2 without the epsilon (the squared norm it regularizes).
  std::vector<double> squared_norms() const;
  // Per output unit: how far eps keeps w from being invariant to the scale of v, which is
  // what keeps cos(v_u, dL/dv_u) from 0: eps / (factor ||v_u||^2 + eps) inside the root,
  // eps / (sqrt(factor) ||v_u|| + eps) outside; v_u . dL/dv_u = scale_u (v_u . dL/dw_u) /
  // n_u * this share, n_u the norm with eps (norms()).
  std::vector<double> eps_shares() const;
  WNMode mode() const { return mode_; }
  WNEps eps_style() const { return eps_; }
  // The epsilon of ||v|| (1e-6 inside the root, 1e-8 outside).
  double eps() const;
  // Inspection: a function each forward calls with the effective weight w it computes (it
  // may keep w's gradient, nn::EffectiveWeights does); nullptr removes it.
  void set_weight_hook(std::function<void(const Tensor& w)> hook) { weight_hook_ = std::move(hook); }
  Tensor weight, scale, bias;

 protected:
  // normalized_weight(), shown to the weight hook: what forward uses.
  Tensor forward_weight() const;
  // out_dim: the weight dim indexing output units; factor: multiplies sum(v^2).
  void init_wn(Tensor v, int out_dim, double factor, WNMode mode, WNEps eps, int64_t out_units);
  int out_dim_ = 0;
  double factor_ = 1.0;
  WNMode mode_ = WNMode::Strict;
  WNEps eps_ = WNEps::Inside;
  std::function<void(const Tensor& w)> weight_hook_;
};

class WNLinear : public WNLayer {
 public:
  // v (and in affine mode the bias, as the authors' code draws it) ~ U(+-init_factor /
  // sqrt(in)); the WN generators' first layer uses init_factor 0.01.
  WNLinear(int64_t in, int64_t out, WNMode mode, Generator& gen, WNEps eps = WNEps::Inside, double init_factor = 1.0);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return mode_ == WNMode::Strict ? "WNLinear" : "WNLinear(affine)"; }
};

class WNConv2d : public WNLayer {
 public:
  WNConv2d(int64_t in, int64_t out, Hw kernel, Hw stride, Hw padding, WNMode mode, Generator& gen,
           WNEps eps = WNEps::Inside);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return mode_ == WNMode::Strict ? "WNConv2d" : "WNConv2d(affine)"; }
  Hw stride, padding;
};

class WNConvTranspose2d : public WNLayer {
 public:
  WNConvTranspose2d(int64_t in, int64_t out, Hw kernel, Hw stride, Hw padding, WNMode mode, Generator& gen,
                    WNEps eps = WNEps::Inside);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override {
    return mode_ == WNMode::Strict ? "WNConvTranspose2d" : "WNConvTranspose2d(affine)";
  }
  Hw stride, padding;
};

// Weight-normalized addition of n branches, per channel c:
// y_c = sum_i w_ic x_i,c / (sqrt(sum_i w_ic^2) + 1e-8); weight (n, C), initial rows
// given (the ResNet uses (0, 1) for (residual, shortcut): identity on the shortcut).
class WNAdd : public Module {
 public:
  WNAdd(int64_t channels, const std::vector<double>& init);
  // The weighted sum of the branches (all of the same shape, channels on dim 1).
  Tensor forward_many(const std::vector<Tensor>& xs);
  std::string type_name() const override { return "WNAdd"; }
  Tensor weight;
};

}  // namespace wn::nn
