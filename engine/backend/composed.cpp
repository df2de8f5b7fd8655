// Default implementations of the Backend operations that can be composed from the
// element-wise kernels every backend has. A backend overrides them with fused kernels
// where that pays (the CPU backend does); the composed versions stay as the reference
// the tests compare the fused ones against.
#include "engine/backend/backend.h"
#include "engine/ops/common.h"

namespace wn {

namespace {
Tensor temp(const Shape& s, const Tensor& like) { return Tensor::empty(s, like.dtype(), like.device()); }

// k = scale / n per unit (scale undefined: 1 / n), all (1, units, 1).
void scale_over_norm(Backend& be, const Tensor& scale, const Tensor& n3, Tensor& k) {
  if (scale.defined()) {
    be.binary(BinaryOp::Div, view_as(scale, n3.shape()), n3, k);
  } else {
    be.fill(k, 1.0);
    be.binary(BinaryOp::Div, k, n3, k);
  }
}

// The (1, C, 1, ...) shape of a per-channel vector against x.
Shape channel_shape(const Tensor& x) {
  std::vector<int64_t> s(x.rank(), 1);
  s[1] = x.dim(1);
  return Shape(s);
}
}  // namespace

void Backend::tprelu_forward(const Tensor& x, const Tensor& a, const Tensor& t, Tensor& y) {
  const Tensor tc = view_as(t, channel_shape(x));
  Tensor xs = temp(x.shape(), x), p = temp(x.shape(), x);
  binary(BinaryOp::Sub, x, tc, xs);
  prelu_forward(xs, a, p);
  binary(BinaryOp::Add, p, tc, y);
}

void Backend::tprelu_backward(const Tensor& x, const Tensor& a, const Tensor& t, const Tensor& dy, Tensor& dx,
                              Tensor& da, Tensor& dt) {
  const Tensor tc = view_as(t, channel_shape(x));
  Tensor xs = temp(x.shape(), x), dxs = temp(x.shape(), x);
  binary(BinaryOp::Sub, x, tc, xs);
  prelu_backward(xs, a, dy, dxs, da);
  if (dx.defined()) device_to_device(dx.raw(), dxs.raw(), dx.nbytes());
  if (dt.defined()) {  // dt = sum of dy (through the add) - dxs (through the sub)
    Tensor diff = temp(x.shape(), x), dtc = view_as(dt, channel_shape(x));
    binary(BinaryOp::Sub, dy, dxs, diff);
    sum_to(diff, dtc);
  }
}

void Backend::weight_norm_forward(const WNGeom& geom, const Tensor& v, const Tensor& scale, Tensor& w, Tensor& norm) {
  const Shape s3{geom.outer, geom.units, geom.inner}, u3{1, geom.units, 1};
  Tensor v3 = view_as(v, s3), w3 = view_as(w, s3), n3 = view_as(norm, u3);
  Tensor sq = temp(s3, v), ss = temp(u3, v), t = temp(u3, v), k = temp(u3, v);
  unary(UnaryOp::Square, v3, sq, 0, 0);
  sum_to(sq, ss);
  unary(UnaryOp::Scale, ss, t, geom.factor, 0);
  unary(UnaryOp::AddScalar, t, ss, geom.eps, 0);
  unary(UnaryOp::Sqrt, ss, t, 0, 0);
  unary(UnaryOp::AddScalar, t, n3, geom.eps_out, 0);
  scale_over_norm(*this, scale, n3, k);
  binary(BinaryOp::Mul, v3, k, w3);
}

void Backend::weight_norm_backward(const WNGeom& geom, const Tensor& v, const Tensor& scale, const Tensor& norm,
                                   const Tensor& dw, Tensor& dv, Tensor& dscale) {
  const Shape s3{geom.outer, geom.units, geom.inner}, u3{1, geom.units, 1};
  Tensor v3 = view_as(v, s3), dw3 = view_as(dw, s3), n3 = view_as(norm, u3);
  Tensor prod = temp(s3, v), dot = temp(u3, v), t = temp(u3, v);
  binary(BinaryOp::Mul, dw3, v3, prod);
  sum_to(prod, dot);
  binary(BinaryOp::Div, dot, n3, t);  // t = dot / n = dscale
  if (dscale.defined()) device_to_device(dscale.raw(), t.raw(), dscale.nbytes());
  if (!dv.defined()) return;
  // k = scale / n; c = factor * k * dot / (n r) with the root r = n - eps_out; dv = k dw - c v.
  Tensor k = temp(u3, v), c = temp(u3, v), c2 = temp(u3, v), r = temp(u3, v);
  scale_over_norm(*this, scale, n3, k);
  unary(UnaryOp::AddScalar, n3, r, -geom.eps_out, 0);
  binary(BinaryOp::Div, t, r, c);  // dot / (n r)
  binary(BinaryOp::Mul, c, k, c2);
  unary(UnaryOp::Scale, c2, c, geom.factor, 0);
  Tensor a = temp(s3, v), b = temp(s3, v), dv3 = view_as(dv, s3);
  binary(BinaryOp::Mul, dw3, k, a);
  binary(BinaryOp::Mul, v3, c, b);
  binary(BinaryOp::Sub, a, b, dv3);
}

}  // namespace wn
