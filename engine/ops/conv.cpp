#include "engine/ops/conv.h"

#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"

namespace wn {

namespace {

void check_args(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias, Hw stride, Hw pad,
                int64_t bias_len) {
  check_compatible(op, x, w);
  if (x.rank() != 4) op_fail(op, "input must be (N, C, H, W)", x, w);
  if (w.rank() != 4) op_fail(op, "weight must be 4-D", x, w);
  if (x.numel() == 0 || w.numel() == 0) op_fail(op, "an empty batch, image or weight has nothing to convolve", x, w);
  if (stride.h < 1 || stride.w < 1 || pad.h < 0 || pad.w < 0)
    op_fail(op, fmt::format("stride ({}, {}) must be >= 1 and padding ({}, {}) >= 0", stride.h, stride.w, pad.h, pad.w),
            x, w);
  if (bias.defined()) {
    check_compatible(op, w, bias);
    if (bias.rank() != 1 || bias.dim(0) != bias_len)
      op_fail(op, fmt::format("bias must have shape ({},)", bias_len), w, bias);
  }
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, Hw stride, Hw pad) {
  check_args("conv2d", x, w, bias, stride, pad, w.defined() && w.rank() == 4 ? w.dim(0) : 0);
  if (x.dim(1) != w.dim(1)) op_fail("conv2d", "input channels differ from weight dim 1", x, w);
  ConvGeom g;
  g.n = x.dim(0), g.cin = x.dim(1), g.h = x.dim(2), g.w = x.dim(3);
  g.cout = w.dim(0), g.kh = w.dim(2), g.kw = w.dim(3);
  g.sh = stride.h, g.sw = stride.w, g.ph = pad.h, g.pw = pad.w;
  g.oh = (g.h + 2 * g.ph - g.kh) / g.sh + 1;
  g.ow = (g.w + 2 * g.pw - g.kw) / g.sw + 1;
  if (g.h + 2 * g.ph < g.kh || g.w + 2 * g.pw < g.kw)
    op_fail("conv2d", "kernel larger than the padded input", x, w);
  Tensor y = empty_like_shape(x, Shape{g.n, g.cout, g.oh, g.ow});
  x.backend().conv2d_forward(g, x, w, bias, y);
  return record(y, "conv2d", {x, w, bias}, [g, x, w, bias](const Tensor& dy) -> std::vector<Tensor> {
    Tensor dx, dw, db;
    if (x.requires_grad()) {
      dx = empty_like(x);
      dy.backend().conv2d_backward_data(g, dy, w, dx);
    }
    if (w.requires_grad()) {
      dw = empty_like(w);
      dy.backend().conv2d_backward_weight(g, x, dy, dw);
    }
    if (bias.defined() && bias.requires_grad()) db = view_as(reduce_to(dy, Shape{1, g.cout, 1, 1}), bias.shape());
    return {dx, dw, db};
  });
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& bias, Hw stride, Hw pad) {
  check_args("conv_transpose2d", x, w, bias, stride, pad, w.defined() && w.rank() == 4 ? w.dim(1) : 0);
  if (x.dim(1) != w.dim(0)) op_fail("conv_transpose2d", "input channels differ from weight dim 0", x, w);
  // The transposed conv is the data-gradient of the conv2d that maps the output
  // y (N, Cout, OH, OW) to x (N, Cin, H, W) with the same weight seen as (Cin, Cout, KH, KW).
  ConvGeom g;
  g.n = x.dim(0), g.cin = w.dim(1), g.cout = w.dim(0);
  g.kh = w.dim(2), g.kw = w.dim(3);
  g.sh = stride.h, g.sw = stride.w, g.ph = pad.h, g.pw = pad.w;
  g.oh = x.dim(2), g.ow = x.dim(3);
  g.h = (g.oh - 1) * g.sh - 2 * g.ph + g.kh;
  g.w = (g.ow - 1) * g.sw - 2 * g.pw + g.kw;
  if (g.h <= 0 || g.w <= 0) op_fail("conv_transpose2d", "padding leaves an empty output", x, w);
  Tensor y = empty_like_shape(x, Shape{g.n, g.cin, g.h, g.w});
  x.backend().conv2d_backward_data(g, x, w, y);
  if (bias.defined()) x.backend().binary(BinaryOp::Add, y, view_as(bias, Shape{1, g.cin, 1, 1}), y);
  return record(y, "conv_transpose2d", {x, w, bias}, [g, x, w, bias](const Tensor& dy) -> std::vector<Tensor> {
    Tensor dx, dw, db;
    if (x.requires_grad()) {
      dx = empty_like(x);
      dy.backend().conv2d_forward(g, dy, w, Tensor(), dx);
    }
    if (w.requires_grad()) {
      dw = empty_like(w);
      dy.backend().conv2d_backward_weight(g, dy, x, dw);
    }
    if (bias.defined() && bias.requires_grad()) db = view_as(reduce_to(dy, Shape{1, g.cin, 1, 1}), bias.shape());
    return {dx, dw, db};
  });
}

}  // namespace wn
