#include "engine/ops/weight_norm.h"

#include "engine/ops/common.h"

namespace wn {

Tensor weight_norm(const Tensor& v, const Tensor& scale, int unit_dim, double factor, double eps, double eps_out) {
  const char* op = "weight_norm";
  if (!v.defined() || v.rank() < 1) throw OpError("weight_norm: the weight must have at least one dimension");
  if (unit_dim < 0 || unit_dim >= v.rank())
    op_fail(op, fmt::format("unit dimension {} is outside the weight's rank {}", unit_dim, v.rank()), v);
  if (!(factor > 0) || !(eps >= 0) || !(eps_out >= 0)) op_fail(op, "factor must be > 0 and both epsilons >= 0", v);
  WNGeom geom;
  geom.units = v.dim(unit_dim);
  for (int i = 0; i < unit_dim; ++i) geom.outer *= v.dim(i);
  for (int i = unit_dim + 1; i < v.rank(); ++i) geom.inner *= v.dim(i);
  geom.factor = factor;
  geom.eps = eps;
  geom.eps_out = eps_out;
  if (scale.defined()) {
    check_compatible(op, v, scale);
    if (scale.rank() != 1 || scale.dim(0) != geom.units) op_fail(op, "the scale must have one value per unit", v, scale);
  }
  Tensor w = empty_like(v), norm = empty_like_shape(v, Shape{geom.units});
  v.backend().weight_norm_forward(geom, v, scale, w, norm);
  return record(w, "weight_norm", {v, scale}, [geom, v, scale, norm](const Tensor& dw) -> std::vector<Tensor> {
    Tensor dv = v.requires_grad() ? empty_like(v) : Tensor();
    Tensor dscale = scale.defined() && scale.requires_grad() ? empty_like(scale) : Tensor();
    dw.backend().weight_norm_backward(geom, v, scale, norm, dw, dv, dscale);
    return {dv, dscale};
  });
}

}  // namespace wn
