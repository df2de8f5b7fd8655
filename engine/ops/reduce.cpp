#include "engine/ops/reduce.h"

#include <algorithm>

#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/shape.h"

namespace wn {

namespace {

// Sums x down to `keep` (same rank, reduced dims 1), then views it as `out_shape`.
Tensor sum_impl(const char* op, const Tensor& x, const Shape& keep, const Shape& out_shape, double scale) {
  Tensor s = empty_like_shape(x, keep);
  x.backend().sum_to(x, s);
  if (scale != 1.0) x.backend().unary(UnaryOp::Scale, s, s, scale, 0);
  Tensor y = view_as(s, out_shape);
  const Shape in = x.shape();
  return record(y, op, {x}, [in, keep, scale](const Tensor& g) -> std::vector<Tensor> {
    if (grad_enabled()) {  // under grad(..., create_graph): the same through recorded ops
      Tensor dx = add(Tensor::zeros(in, g.dtype(), g.device()), reshape(g, keep));
      return {scale != 1.0 ? mul(dx, scale) : dx};
    }
    // Broadcast the gradient back over the reduced axes.
    Tensor gk = view_as(g, keep);
    Tensor dx = Tensor::full(in, 0.0, g.dtype(), g.device());
    g.backend().binary(BinaryOp::Add, dx, gk, dx);
    if (scale != 1.0) g.backend().unary(UnaryOp::Scale, dx, dx, scale, 0);
    return {dx};
  }, /*double_backward=*/true);
}

Tensor reduce_axes(const char* op, const Tensor& x, const std::vector<int>& axes, bool keepdim, bool average) {
  if (!x.defined()) throw OpError(fmt::format("{}: undefined tensor argument", op));
  std::vector<bool> red(x.rank(), false);
  for (int a : axes) {
    int ax = a < 0 ? a + x.rank() : a;
    if (ax < 0 || ax >= x.rank()) op_fail(op, fmt::format("axis {} out of range", a), x);
    red[ax] = true;
  }
  std::vector<int64_t> keep(x.rank()), out;
  int64_t count = 1;
  for (int i = 0; i < x.rank(); ++i) {
    keep[i] = red[i] ? 1 : x.dim(i);
    if (red[i]) count *= x.dim(i);
    if (!red[i] || keepdim) out.push_back(keep[i]);
  }
  return sum_impl(op, x, Shape(keep), Shape(out), average ? 1.0 / double(std::max<int64_t>(count, 1)) : 1.0);
}

std::vector<int> all_axes(const Tensor& x) {
  std::vector<int> a(x.defined() ? x.rank() : 0);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<int>(i);
  return a;
}

}  // namespace

Tensor sum(const Tensor& x) { return reduce_axes("sum", x, all_axes(x), false, false); }
Tensor mean(const Tensor& x) { return reduce_axes("mean", x, all_axes(x), false, true); }
Tensor sum(const Tensor& x, const std::vector<int>& axes, bool keepdim) {
  return reduce_axes("sum", x, axes, keepdim, false);
}
Tensor mean(const Tensor& x, const std::vector<int>& axes, bool keepdim) {
  return reduce_axes("mean", x, axes, keepdim, true);
}

double sum_squares(const Tensor& x) {
  Tensor sq = empty_like(x);
  x.backend().unary(UnaryOp::Square, x, sq, 0, 0);
  Tensor s = empty_like_shape(x, Shape(std::vector<int64_t>(x.rank(), 1)));
  x.backend().sum_to(sq, s);
  return s.item();
}

}  // namespace wn
