#include "engine/ops/linear.h"

#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"

namespace wn {

namespace {
// The gradient of `like` as gemm(ta, tb, a, b), or undefined when like wants none.
Tensor grad_gemm(const Tensor& like, bool ta, bool tb, const Tensor& a, const Tensor& b) {
  if (!like.requires_grad()) return Tensor();
  Tensor d = empty_like(like);
  a.backend().gemm(ta, tb, 1.0, a, b, 0.0, d);
  return d;
}
}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_compatible("matmul", a, b);
  if (a.rank() != 2 || b.rank() != 2 || a.dim(1) != b.dim(0))
    op_fail("matmul", "expects (M, K) and (K, N)", a, b);
  Tensor y = empty_like_shape(a, Shape{a.dim(0), b.dim(1)});
  a.backend().gemm(false, false, 1.0, a, b, 0.0, y);
  return record(y, "matmul", {a, b}, [a, b](const Tensor& g) -> std::vector<Tensor> {
    return {grad_gemm(a, false, true, g, b), grad_gemm(b, true, false, a, g)};
  });
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_compatible("linear", x, weight);
  if (x.rank() != 2 || weight.rank() != 2 || x.dim(1) != weight.dim(1))
    op_fail("linear", "expects input (N, in) and weight (out, in)", x, weight);
  if (bias.defined()) {
    check_compatible("linear", weight, bias);
    if (bias.rank() != 1 || bias.dim(0) != weight.dim(0)) op_fail("linear", "bias must have shape (out)", weight, bias);
  }
  Tensor y = empty_like_shape(x, Shape{x.dim(0), weight.dim(0)});
  x.backend().gemm(false, true, 1.0, x, weight, 0.0, y);
  if (bias.defined()) x.backend().binary(BinaryOp::Add, y, bias, y);
  return record(y, "linear", {x, weight, bias}, [x, weight, bias](const Tensor& g) -> std::vector<Tensor> {
    Tensor db = bias.defined() && bias.requires_grad() ? reduce_to(g, bias.shape()) : Tensor();
    return {grad_gemm(x, false, false, g, weight), grad_gemm(weight, true, false, g, x), db};
  });
}

}  // namespace wn
