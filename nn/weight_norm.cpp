#include "nn/weight_norm.h"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linear.h"
#include "engine/ops/reduce.h"
#include "engine/ops/shape.h"
#include "engine/ops/weight_norm.h"
#include "nn/init.h"

namespace wn::nn {

namespace {
constexpr double kEpsInside = 1e-6, kEpsOutside = 1e-8;

// Axes of v other than the output dim.
std::vector<int> other_axes(int rank, int out_dim) {
  std::vector<int> a;
  for (int i = 0; i < rank; ++i)
    if (i != out_dim) a.push_back(i);
  return a;
}

}  // namespace

void WNLayer::init_wn(Tensor v, int out_dim, double factor, WNMode mode, WNEps eps, int64_t out_units) {
  out_dim_ = out_dim;
  factor_ = factor;
  mode_ = mode;
  eps_ = eps;
  weight = register_parameter("weight", v);
  if (mode == WNMode::Affine) {
    scale = register_parameter("scale", Tensor::ones({out_units}));
    bias = register_parameter("bias", Tensor::zeros({out_units}));
  }
}

Tensor WNLayer::normalized_weight() const {
  const bool in = eps_ == WNEps::Inside;
  return weight_norm(weight, mode_ == WNMode::Affine ? scale : Tensor(), out_dim_, factor_, in ? kEpsInside : 0.0,
                     in ? 0.0 : kEpsOutside);
}

Tensor WNLayer::forward_weight() const {
  Tensor w = normalized_weight();
  if (weight_hook_) weight_hook_(w);
  return w;
}

double WNLayer::eps() const { return eps_ == WNEps::Inside ? kEpsInside : kEpsOutside; }

std::vector<double> WNLayer::squared_norms() const {
  NoGradGuard ng;
  std::vector<double> v = sum(square(weight), other_axes(weight.rank(), out_dim_), false).to_vector();
  for (double& x : v) x *= factor_;
  return v;
}

std::vector<double> WNLayer::norms() const {
  std::vector<double> v = squared_norms();
  for (double& x : v) x = eps_ == WNEps::Inside ? std::sqrt(x + kEpsInside) : std::sqrt(x) + kEpsOutside;
  return v;
}

std::vector<double> WNLayer::eps_shares() const {
  std::vector<double> v = squared_norms();
  for (double& x : v) x = eps_ == WNEps::Inside ? kEpsInside / (x + kEpsInside) : kEpsOutside / (std::sqrt(x) + kEpsOutside);
  return v;
}

std::vector<double> WNLayer::v_grad_cosines() const {
  const Tensor g = weight.grad();
  const int64_t units = weight.dim(out_dim_);
  std::vector<double> cos(static_cast<size_t>(units), NAN);
  if (!g.defined()) return cos;
  std::vector<double> v = weight.to_vector(), d = g.to_vector();
  // Element i belongs to unit (i / inner) % units, inner = product of dims after out_dim.
  int64_t inner = 1;
  for (int k = out_dim_ + 1; k < weight.rank(); ++k) inner *= weight.dim(k);
  std::vector<double> vd(units, 0), vv(units, 0), dd(units, 0);
  for (size_t i = 0; i < v.size(); ++i) {
    const int64_t u = (static_cast<int64_t>(i) / inner) % units;
    vd[u] += v[i] * d[i];
    vv[u] += v[i] * v[i];
    dd[u] += d[i] * d[i];
  }
  for (int64_t u = 0; u < units; ++u)
    cos[u] = (vv[u] > 0 && dd[u] > 0) ? vd[u] / std::sqrt(vv[u] * dd[u]) : NAN;
  return cos;
}

WNLinear::WNLinear(int64_t in, int64_t out, WNMode mode, Generator& gen, WNEps eps, double init_factor) {
  init_wn(default_uniform({out, in}, in, gen, init_factor), 0, 1.0, mode, eps, out);
  if (mode == WNMode::Affine) bias.copy_from(default_uniform({out}, in, gen, init_factor));
}

Tensor WNLinear::forward(const Tensor& x) { return linear(x, forward_weight(), bias); }

WNConv2d::WNConv2d(int64_t in, int64_t out, Hw k, Hw s, Hw p, WNMode mode, Generator& gen, WNEps eps)
    : stride(s), padding(p) {
  const Shape ws{out, in, k.h, k.w};
  init_wn(default_uniform(ws, fan_in_of(ws), gen), 0, 1.0, mode, eps, out);
}

Tensor WNConv2d::forward(const Tensor& x) { return conv2d(x, forward_weight(), bias, stride, padding); }

WNConvTranspose2d::WNConvTranspose2d(int64_t in, int64_t out, Hw k, Hw s, Hw p, WNMode mode, Generator& gen,
                                     WNEps eps)
    : stride(s), padding(p) {
  const Shape ws{in, out, k.h, k.w};
  init_wn(default_uniform(ws, fan_in_of(ws, true), gen), 1, 1.0 / double(s.h * s.w), mode, eps, out);
}

Tensor WNConvTranspose2d::forward(const Tensor& x) {
  return conv_transpose2d(x, forward_weight(), bias, stride, padding);
}

WNAdd::WNAdd(int64_t channels, const std::vector<double>& init) {
  if (init.empty()) throw std::invalid_argument("WNAdd needs at least one branch");
  std::vector<double> w;
  for (double v : init) w.insert(w.end(), static_cast<size_t>(channels), v);
  weight = register_parameter("weight", Tensor::from_vector(w, {static_cast<int64_t>(init.size()), channels}));
}

Tensor WNAdd::forward_many(const std::vector<Tensor>& xs) {
  if (static_cast<int64_t>(xs.size()) != weight.dim(0))
    throw std::invalid_argument(fmt::format("WNAdd '{}': {} branches given, {} expected", name(), xs.size(),
                                            weight.dim(0)));
  Tensor norm = add(sqrt(sum(square(weight), {0})), 1e-8);  // (C)
  Tensor y;
  for (size_t i = 0; i < xs.size(); ++i) {
    Tensor term = mul(xs[i], div(select(weight, static_cast<int64_t>(i)), norm));
    y = y.defined() ? add(y, term) : term;
  }
  return finish(y);
}

}  // namespace wn::nn
