#include "engine/ops/loss.h"

#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"

namespace wn {

Tensor bce_with_logits(const Tensor& x, const Tensor& t) {
  check_compatible("bce_with_logits", x, t);
  if (x.shape() != t.shape()) op_fail("bce_with_logits", "logits and targets must have the same shape", x, t);
  Tensor loss = empty_like_shape(x, Shape{});
  x.backend().bce_logits_forward(x, t, loss);
  return record(loss, "bce_with_logits", {x, t}, [x, t](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx, dt;
    if (x.requires_grad()) {
      dx = empty_like(x);
      x.backend().bce_logits_backward(x, t, g, dx);
    }
    // d/dt = -x / numel: the targets are usually constants, but the rule is exact.
    if (t.requires_grad()) dt = mul(x, -g.item() / double(x.numel()));
    return {dx, dt};
  });
}

Tensor mse(const Tensor& a, const Tensor& b) {
  check_compatible("mse", a, b);
  if (a.shape() != b.shape()) op_fail("mse", "operands must have the same shape", a, b);
  return mean(square(sub(a, b)));
}

}  // namespace wn
