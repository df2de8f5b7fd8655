#include "engine/ops/pool.h"

#include "engine/ops/common.h"

namespace wn {

namespace {
using PlaneKernel = void (Backend::*)(const Tensor&, Tensor&);

// An op on the image planes of x (N, C, H, W) giving (N, C, oh, ow): forward kernel fwd,
// and bwd mapping the output's gradient back to x's shape.
Tensor plane_op(const char* op, const Tensor& x, int64_t oh, int64_t ow, PlaneKernel fwd, PlaneKernel bwd) {
  Tensor y = empty_like_shape(x, Shape{x.dim(0), x.dim(1), oh, ow});
  (x.backend().*fwd)(x, y);
  const Shape in = x.shape();
  return record(y, op, {x}, [in, bwd](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = empty_like_shape(g, in);
    (g.backend().*bwd)(g, dx);
    return {dx};
  });
}
}  // namespace

Tensor avg_pool2x2(const Tensor& x) {
  check_rank("avg_pool2x2", x, 4);
  if (x.dim(2) % 2 || x.dim(3) % 2) op_fail("avg_pool2x2", "height and width must be even", x);
  return plane_op("avg_pool2x2", x, x.dim(2) / 2, x.dim(3) / 2, &Backend::avg_pool2_forward,
                  &Backend::avg_pool2_backward);
}

Tensor upsample_nearest2x(const Tensor& x) {
  check_rank("upsample_nearest2x", x, 4);
  return plane_op("upsample_nearest2x", x, x.dim(2) * 2, x.dim(3) * 2, &Backend::upsample2_forward,
                  &Backend::upsample2_backward);
}

}  // namespace wn
