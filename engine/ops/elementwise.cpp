#include "engine/ops/elementwise.h"

#include <algorithm>

#include "engine/ops/common.h"
#include "engine/ops/reduce.h"
#include "engine/ops/shape.h"

namespace wn {

Shape broadcast_shape(const char* op, const Shape& a, const Shape& b) {
  const int r = std::max(a.rank(), b.rank());
  std::vector<int64_t> out(r);
  for (int i = 0; i < r; ++i) {
    const int ia = a.rank() - r + i, ib = b.rank() - r + i;
    const int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    if (da != db && da != 1 && db != 1)
      throw OpError(fmt::format("{}: shapes {} and {} do not broadcast", op, a.str(), b.str()));
    out[i] = da == 1 ? db : da;
  }
  return Shape(out);
}

Tensor reduce_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  if (grad_enabled()) {
    // Under grad(..., create_graph): the same sum through recorded ops, so it can be
    // differentiated again.
    std::vector<int> axes;
    for (int i = 0; i < g.rank(); ++i) {
      const int j = i - (g.rank() - shape.rank());
      if (g.dim(i) != 1 && (j < 0 || shape[j] == 1)) axes.push_back(i);
    }
    return reshape(sum(g, axes, true), shape);
  }
  // Left-pad the target to g's rank, sum, then drop the padding.
  std::vector<int64_t> keep(g.rank(), 1);
  for (int i = 0; i < shape.rank(); ++i) keep[g.rank() - shape.rank() + i] = shape[i];
  Tensor out = empty_like_shape(g, Shape(keep));
  g.backend().sum_to(g, out);
  return view_as(out, shape);
}

namespace {

// A 1-D operand against rank >= 3 becomes (1, C, 1, ...), through a differentiable
// reshape so its gradient comes back as (C).
Tensor channel_align(const char* op, const Tensor& v, const Tensor& other) {
  if (v.rank() == 1 && other.rank() >= 3) {
    if (v.dim(0) != other.dim(1) && v.dim(0) != 1)
      op_fail(op, "a 1-D operand must have one value per channel (dim 1)", v, other);
    std::vector<int64_t> s(other.rank(), 1);
    s[1] = v.dim(0);
    return reshape(v, Shape(s));
  }
  return v;
}

Tensor binary_op(const char* name, BinaryOp op, const Tensor& a0, const Tensor& b0) {
  check_compatible(name, a0, b0);
  Tensor a = channel_align(name, a0, b0), b = channel_align(name, b0, a0);
  Tensor out = empty_like_shape(a, broadcast_shape(name, a.shape(), b.shape()));
  a.backend().binary(op, a, b, out);
  // A node never holds its own output's impl (that would be a reference cycle).
  Tensor od = out.detach();
  return record(out, name, {a, b}, [op, a, b, od](const Tensor& g) -> std::vector<Tensor> {
    Tensor ga, gb;
    switch (op) {
      case BinaryOp::Add:
        ga = g;
        gb = g;
        break;
      case BinaryOp::Sub:
        ga = g;
        gb = neg(g);
        break;
      case BinaryOp::Mul:
        ga = mul(g, b);
        gb = mul(g, a);
        break;
      case BinaryOp::Div:
        ga = div(g, b);
        // Under create_graph the output is recomputed from a and b, so that gb depends on them.
        gb = neg(div(mul(g, grad_enabled() ? div(a, b) : od), b));
        break;
    }
    return {reduce_to(ga, a.shape()), reduce_to(gb, b.shape())};
  }, /*double_backward=*/true);
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary_op("add", BinaryOp::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary_op("sub", BinaryOp::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary_op("mul", BinaryOp::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary_op("div", BinaryOp::Div, a, b); }
// Each map's gradient through recorded ops, for grad(..., create_graph): its double backward.
Tensor add(const Tensor& a, double s) {
  return unary_op("add_scalar", UnaryOp::AddScalar, a, s, 0,
                  [](const Tensor&, const Tensor& g, double, double) { return g; });
}
Tensor mul(const Tensor& a, double s) {
  return unary_op("scale", UnaryOp::Scale, a, s, 0,
                  [](const Tensor&, const Tensor& g, double s, double) { return mul(g, s); });
}
Tensor neg(const Tensor& x) {
  return unary_op("neg", UnaryOp::Neg, x, 0, 0, [](const Tensor&, const Tensor& g, double, double) { return neg(g); });
}
Tensor square(const Tensor& x) {
  return unary_op("square", UnaryOp::Square, x, 0, 0,
                  [](const Tensor& x, const Tensor& g, double, double) { return mul(g, mul(x, 2.0)); });
}
Tensor sqrt(const Tensor& x) {
  return unary_op("sqrt", UnaryOp::Sqrt, x, 0, 0,
                  [](const Tensor& x, const Tensor& g, double, double) { return div(mul(g, 0.5), sqrt(x)); });
}
Tensor exp(const Tensor& x) {
  return unary_op("exp", UnaryOp::Exp, x, 0, 0,
                  [](const Tensor& x, const Tensor& g, double, double) { return mul(g, exp(x)); });
}
Tensor log(const Tensor& x) {
  return unary_op("log", UnaryOp::Log, x, 0, 0, [](const Tensor& x, const Tensor& g, double, double) { return div(g, x); });
}

Tensor unary_op(const char* name, UnaryOp op, const Tensor& x, double p, double q, UnaryGrad composed) {
  if (!x.defined()) throw OpError(fmt::format("{}: undefined tensor argument", name));
  Tensor y = empty_like(x);
  x.backend().unary(op, x, y, p, q);
  Tensor yd = y.detach();
  return record(
      y, name, {x},
      [op, x, yd, p, q, composed](const Tensor& g) -> std::vector<Tensor> {
        if (composed && grad_enabled()) return {composed(x, g, p, q)};  // under create_graph
        Tensor dx = empty_like(x);
        x.backend().unary_backward(op, x, yd, g, dx, p, q);
        return {dx};
      },
      composed != nullptr);
}

Tensor piecewise_linear_grad(UnaryOp op, const Tensor& x, const Tensor& g, double p, double q) {
  Tensor y = empty_like(x), slope = empty_like(x);
  x.backend().unary(op, x, y, p, q);
  x.backend().unary_backward(op, x, y, Tensor::ones(x.shape(), x.dtype(), x.device()), slope, p, q);
  return mul(g, slope);
}

}  // namespace wn
