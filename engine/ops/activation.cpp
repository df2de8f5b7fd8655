#include "engine/ops/activation.h"

#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"

namespace wn {

// The composed gradients (their double backward) beside each map.
Tensor sigmoid(const Tensor& x) {
  return unary_op("sigmoid", UnaryOp::Sigmoid, x, 0, 0, [](const Tensor& x, const Tensor& g, double, double) {
    Tensor s = sigmoid(x);
    return mul(g, mul(s, add(neg(s), 1.0)));
  });
}
Tensor relu(const Tensor& x) {
  return unary_op("relu", UnaryOp::Relu, x, 0, 0, [](const Tensor& x, const Tensor& g, double p, double q) {
    return piecewise_linear_grad(UnaryOp::Relu, x, g, p, q);
  });
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  if (!(lo <= hi)) throw OpError(fmt::format("clamp: lower bound {} exceeds upper bound {}", lo, hi));
  return unary_op("clamp", UnaryOp::Clamp, x, lo, hi, [](const Tensor& x, const Tensor& g, double p, double q) {
    return piecewise_linear_grad(UnaryOp::Clamp, x, g, p, q);
  });
}

Tensor prelu(const Tensor& x, const Tensor& slope) {
  check_compatible("prelu", x, slope);
  if (x.rank() < 2) op_fail("prelu", "input needs rank >= 2 (N, C, ...)", x, slope);
  if (slope.rank() != 1 || (slope.dim(0) != x.dim(1) && slope.dim(0) != 1))
    op_fail("prelu", "slope must have shape (C) or (1)", x, slope);
  // A shared slope is expanded to one per channel, through a differentiable op.
  Tensor a = slope.dim(0) == x.dim(1) ? slope : add(Tensor::zeros(Shape{x.dim(1)}, x.dtype(), x.device()), slope);
  Tensor y = empty_like(x);
  x.backend().prelu_forward(x, a, y);
  return record(y, "prelu", {x, a}, [x, a](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = empty_like(x), da = empty_like(a);
    x.backend().prelu_backward(x, a, g, dx, da);
    return {dx, da};
  });
}

Tensor tprelu(const Tensor& x, const Tensor& slope, const Tensor& shift) {
  const char* op = "tprelu";
  check_compatible(op, x, slope);
  check_compatible(op, x, shift);
  if (x.rank() < 2) op_fail(op, "input needs rank >= 2 (N, C, ...)", x, slope);
  for (const Tensor* p : {&slope, &shift})
    if (p->rank() != 1 || p->dim(0) != x.dim(1)) op_fail(op, "slope and shift must have shape (C)", x, *p);
  Tensor y = empty_like(x);
  x.backend().tprelu_forward(x, slope, shift, y);
  return record(y, op, {x, slope, shift}, [x, slope, shift](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = x.requires_grad() ? empty_like(x) : Tensor();
    Tensor da = slope.requires_grad() ? empty_like(slope) : Tensor();
    Tensor dt = shift.requires_grad() ? empty_like(shift) : Tensor();
    x.backend().tprelu_backward(x, slope, shift, g, dx, da, dt);
    return {dx, da, dt};
  });
}

}  // namespace wn
