#include "engine/ops/shape.h"

#include "engine/ops/common.h"

namespace wn {

Tensor reshape(const Tensor& x, const Shape& shape) {
  if (!x.defined()) throw OpError("reshape: undefined tensor argument");
  if (shape.numel() != x.numel())
    throw OpError(fmt::format("reshape: cannot reshape {} ({} elements) to {} ({} elements)", x.describe(),
                              x.numel(), shape.str(), shape.numel()));
  Tensor y = view_as(x, shape);
  const Shape in = x.shape();
  return record(y, "reshape", {x}, [in](const Tensor& g) -> std::vector<Tensor> { return {view_as(g, in)}; });
}

Tensor flatten(const Tensor& x) {
  if (!x.defined() || x.rank() < 1) throw OpError("flatten: needs a tensor of rank >= 1");
  return reshape(x, Shape{x.dim(0), x.numel() / std::max<int64_t>(1, x.dim(0))});
}

Tensor select(const Tensor& x, int64_t index) {
  if (!x.defined() || x.rank() < 1) throw OpError("select: needs a tensor of rank >= 1");
  if (index < 0 || index >= x.dim(0)) op_fail("select", fmt::format("index {} out of range", index), x);
  std::vector<int64_t> dims = x.shape().vec();
  dims.erase(dims.begin());
  const Shape out_shape(dims);
  const size_t row_bytes = static_cast<size_t>(out_shape.numel()) * dtype_size(x.dtype());
  Tensor y = empty_like_shape(x, out_shape);
  x.backend().device_to_device(y.raw(), static_cast<const char*>(x.raw()) + index * row_bytes, row_bytes);
  const Shape in = x.shape();
  return record(y, "select", {x}, [in, index, row_bytes](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = Tensor::zeros(in, g.dtype(), g.device());
    g.backend().device_to_device(static_cast<char*>(dx.raw()) + index * row_bytes, g.raw(), row_bytes);
    return {dx};
  });
}

namespace {

Tensor window(const char* op, const Tensor& x, int64_t top, int64_t bottom, int64_t left, int64_t right) {
  check_rank(op, x, 4);
  const int64_t h = x.dim(2) + top + bottom, w = x.dim(3) + left + right;
  if (h <= 0 || w <= 0) op_fail(op, fmt::format("margins leave an empty {}x{} plane", h, w), x);
  Tensor y = empty_like_shape(x, Shape{x.dim(0), x.dim(1), h, w});
  x.backend().window_copy(x, y, top, left);
  const Shape in = x.shape();
  return record(y, op, {x}, [in, top, left](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = empty_like_shape(g, in);
    g.backend().window_copy(g, dx, -top, -left);
    return {dx};
  });
}

void check_margins(const char* op, const Tensor& x, int64_t t, int64_t b, int64_t l, int64_t r) {
  if (t < 0 || b < 0 || l < 0 || r < 0)
    op_fail(op, fmt::format("margins must be >= 0, got top {} bottom {} left {} right {}", t, b, l, r), x);
}

}  // namespace

Tensor pad2d(const Tensor& x, int64_t top, int64_t bottom, int64_t left, int64_t right) {
  check_margins("pad2d", x, top, bottom, left, right);
  return window("pad2d", x, top, bottom, left, right);
}

Tensor crop2d(const Tensor& x, int64_t top, int64_t bottom, int64_t left, int64_t right) {
  check_margins("crop2d", x, top, bottom, left, right);
  return window("crop2d", x, -top, -bottom, -left, -right);
}

}  // namespace wn
