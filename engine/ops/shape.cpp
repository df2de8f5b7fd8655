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
  return record(
      y, "reshape", {x},
      [in](const Tensor& g) -> std::vector<Tensor> { return {grad_enabled() ? reshape(g, in) : view_as(g, in)}; },
      /*double_backward=*/true);
}

Tensor flatten(const Tensor& x) {
  if (!x.defined() || x.rank() < 1) throw OpError("flatten: needs a tensor of rank >= 1");
  return reshape(x, Shape{x.dim(0), x.numel() / std::max<int64_t>(1, x.dim(0))});
}

namespace {

// Rows [begin, end) of x's dim 0 copied out with shape out_shape (same element count),
// and its backward: the gradient placed back in those rows, zero elsewhere.
Tensor take_rows(const char* op, const Tensor& x, int64_t begin, int64_t end, const Shape& out_shape) {
  const int64_t per_row = x.dim(0) ? x.numel() / x.dim(0) : 0;
  const size_t row_bytes = static_cast<size_t>(per_row) * dtype_size(x.dtype());
  const size_t offset = static_cast<size_t>(begin) * row_bytes, bytes = static_cast<size_t>(end - begin) * row_bytes;
  Tensor y = empty_like_shape(x, out_shape);
  if (bytes) x.backend().device_to_device(y.raw(), static_cast<const char*>(x.raw()) + offset, bytes);
  const Shape in = x.shape();
  return record(y, op, {x}, [in, offset, bytes](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = Tensor::zeros(in, g.dtype(), g.device());
    if (bytes) g.backend().device_to_device(static_cast<char*>(dx.raw()) + offset, g.raw(), bytes);
    return {dx};
  });
}

}  // namespace

Tensor select(const Tensor& x, int64_t index) {
  if (!x.defined() || x.rank() < 1) throw OpError("select: needs a tensor of rank >= 1");
  if (index < 0 || index >= x.dim(0)) op_fail("select", fmt::format("index {} out of range", index), x);
  std::vector<int64_t> dims = x.shape().vec();
  dims.erase(dims.begin());
  return take_rows("select", x, index, index + 1, Shape(dims));
}

Tensor slice(const Tensor& x, int64_t begin, int64_t end) {
  if (!x.defined() || x.rank() < 1) throw OpError("slice: needs a tensor of rank >= 1");
  if (begin < 0 || end < begin || end > x.dim(0))
    op_fail("slice", fmt::format("rows [{}, {}) out of range", begin, end), x);
  std::vector<int64_t> dims = x.shape().vec();
  dims[0] = end - begin;
  return take_rows("slice", x, begin, end, Shape(dims));
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
