#include "engine/ops/pool.h"

#include "engine/ops/common.h"

namespace wn {

Tensor avg_pool2x2(const Tensor& x) {
  check_rank("avg_pool2x2", x, 4);
  if (x.dim(2) % 2 || x.dim(3) % 2) op_fail("avg_pool2x2", "height and width must be even", x);
  Tensor y = empty_like_shape(x, Shape{x.dim(0), x.dim(1), x.dim(2) / 2, x.dim(3) / 2});
  x.backend().avg_pool2_forward(x, y);
  const Shape in = x.shape();
  return record(y, "avg_pool2x2", {x}, [in](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = empty_like_shape(g, in);
    g.backend().avg_pool2_backward(g, dx);
    return {dx};
  });
}

Tensor upsample_nearest2x(const Tensor& x) {
  check_rank("upsample_nearest2x", x, 4);
  Tensor y = empty_like_shape(x, Shape{x.dim(0), x.dim(1), x.dim(2) * 2, x.dim(3) * 2});
  x.backend().upsample2_forward(x, y);
  const Shape in = x.shape();
  return record(y, "upsample_nearest2x", {x}, [in](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = empty_like_shape(g, in);
    g.backend().upsample2_backward(g, dx);
    return {dx};
  });
}

}  // namespace wn
