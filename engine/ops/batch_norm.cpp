#include "engine/ops/batch_norm.h"

#include <cmath>

#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"

namespace wn {

namespace {
// Sums (N, C, ...) over every dim but the channel: (C).
Tensor channel_sum(const Tensor& t) {
  std::vector<int64_t> keep(t.rank(), 1);
  keep[1] = t.dim(1);
  return view_as(reduce_to(t, Shape(keep)), Shape{t.dim(1)});
}
// Inspection: dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)) per channel; reports
// the norms of the two projected-out terms relative to |dy| over the whole layer, as the
// node's statistics "mean share" and "xhat share".
void projection_shares(const Tensor& x, const Tensor& mu, const Tensor& invstd, const Tensor& dy) {
  std::vector<int> axes{0};
  for (int i = 2; i < x.rank(); ++i) axes.push_back(i);
  Tensor xhat = mul(sub(x, mu), invstd);
  Tensor m1 = mean(dy, axes, true), m2 = mul(xhat, mean(mul(dy, xhat), axes, true));
  const double n = std::sqrt(sum_squares(dy)), per_channel = double(dy.numel() / dy.dim(1));
  node_stat("mean share", n > 0 ? std::sqrt(sum_squares(m1) * per_channel) / n : 0.0);
  node_stat("xhat share", n > 0 ? std::sqrt(sum_squares(m2)) / n : 0.0);
}
}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor running_mean, Tensor running_var,
                  bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  check_compatible(op, x, gamma);
  check_compatible(op, x, beta);
  if (x.rank() != 2 && x.rank() != 4) op_fail(op, "input must be (N, C) or (N, C, H, W)", x);
  const int64_t c = x.dim(1);
  for (const Tensor* t : {&gamma, &beta})
    if (t->rank() != 1 || t->dim(0) != c) op_fail(op, "gamma and beta must have one value per channel", x, *t);
  for (const Tensor* t : {&running_mean, &running_var})
    if (t->defined() && (t->rank() != 1 || t->dim(0) != c || t->dtype() != x.dtype() || t->device() != x.device()))
      op_fail(op, "running statistics must match the channels, dtype and device of the input", x, *t);
  Tensor y = empty_like(x);
  if (!training) {
    if (!running_mean.defined() || !running_var.defined())
      op_fail(op, "evaluation mode needs running statistics", x);
    x.backend().batch_norm_eval(x, gamma, beta, running_mean, running_var, eps, y);
    // In evaluation mode the map is affine per channel: y = gamma * (x - rm) / sd + beta.
    Tensor rm = running_mean, rv = running_var;
    return record(y, "batch_norm_eval", {x, gamma, beta},
                  [x, gamma, beta, rm, rv, eps](const Tensor& g) -> std::vector<Tensor> {
                    Tensor sd = sqrt(add(rv, eps));
                    Tensor dx, dgamma, dbeta;
                    if (x.requires_grad()) dx = mul(g, div(gamma, sd));
                    if (gamma.requires_grad()) dgamma = channel_sum(mul(g, div(sub(x, rm), sd)));
                    if (beta.requires_grad()) dbeta = channel_sum(g);
                    return {dx, dgamma, dbeta};
                  });
  }
  if (x.numel() / c < 2) op_fail(op, "training mode needs more than one value per channel", x);
  Tensor mean = empty_like_shape(x, Shape{c}), invstd = empty_like_shape(x, Shape{c});
  x.backend().batch_norm_train(x, gamma, beta, eps, momentum, running_mean, running_var, y, mean, invstd);
  return record(y, "batch_norm", {x, gamma, beta}, [x, gamma, mean, invstd](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = empty_like(x), dgamma = empty_like(gamma), dbeta = empty_like(gamma);
    x.backend().batch_norm_backward(x, gamma, mean, invstd, g, dx, dgamma, dbeta);
    if (record_grad_norms()) projection_shares(x, mean, invstd, g);
    return {dx, dgamma, dbeta};
  });
}

}  // namespace wn
