#include "engine/ops/common.h"

namespace wn {

void op_fail(const char* op, const std::string& msg, const Tensor& a, const Tensor& b) {
  std::string s = fmt::format("{}: {} (got {}", op, msg, a.describe());
  if (b.defined()) s += fmt::format(" and {}", b.describe());
  throw OpError(s + ")");
}

void check_compatible(const char* op, const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) throw OpError(fmt::format("{}: undefined tensor argument", op));
  if (a.dtype() != b.dtype()) op_fail(op, "dtypes differ", a, b);
  if (a.device() != b.device()) op_fail(op, "tensors are on different devices", a, b);
}

void check_rank(const char* op, const Tensor& x, int rank) {
  if (!x.defined()) throw OpError(fmt::format("{}: undefined tensor argument", op));
  if (x.rank() != rank) op_fail(op, fmt::format("expects a tensor of rank {}", rank), x);
}

Tensor empty_like_shape(const Tensor& x, const Shape& shape) { return Tensor::empty(shape, x.dtype(), x.device()); }

Tensor view_as(const Tensor& x, const Shape& shape) {
  if (shape.numel() != x.numel())
    throw OpError(fmt::format("view: cannot view {} as {}", x.describe(), shape.str()));
  Tensor v = x.detach();
  v.impl().shape = shape;
  return v;
}

}  // namespace wn
