// Element-wise arithmetic with broadcasting, and the unary maps.
// Broadcasting: shapes are right-aligned and each dim must match or be 1; in
// addition a 1-D (C) operand against a tensor of rank >= 3 is a per-channel vector
// over dim 1 (so a (C) bias broadcasts over (N, C, H, W)). Gradients of broadcast
// operands are summed back to their shape in one place: reduce_to.
#pragma once
#include "engine/backend/backend.h"
#include "engine/tensor.h"

namespace wn {

Tensor add(const Tensor& a, const Tensor& b);  // a + b
Tensor sub(const Tensor& a, const Tensor& b);  // a - b
Tensor mul(const Tensor& a, const Tensor& b);  // a * b
Tensor div(const Tensor& a, const Tensor& b);  // a / b
Tensor add(const Tensor& a, double s);         // a + s
Tensor mul(const Tensor& a, double s);         // a * s
Tensor neg(const Tensor& x);                   // -x
Tensor square(const Tensor& x);                // x^2
Tensor sqrt(const Tensor& x);                  // sqrt(x)
Tensor exp(const Tensor& x);                   // e^x
Tensor log(const Tensor& x);                   // natural logarithm

// dL/dx of a unary map given x and dL/dy = g, built from recorded ops: its double backward.
using UnaryGrad = Tensor (*)(const Tensor& x, const Tensor& g, double p, double q);

// A unary element-wise op y = f(x; p, q) from the table of engine/backend/elementwise_ops.h,
// with its backward: how the op families define their maps (activation.cpp). With
// `composed`, grad(..., create_graph) can differentiate its backward; without, it throws.
Tensor unary_op(const char* name, UnaryOp op, const Tensor& x, double p = 0, double q = 0,
                UnaryGrad composed = nullptr);
// g times the slope of a piecewise-linear map (relu, clamp): the composed gradient of a map
// whose second derivative is 0 wherever it exists.
Tensor piecewise_linear_grad(UnaryOp op, const Tensor& x, const Tensor& g, double p, double q);

// Sums a gradient of a broadcast result back down to an operand's shape.
Tensor reduce_to(const Tensor& g, const Shape& shape);
// The shape a binary op between a and b produces; throws naming op and both shapes.
Shape broadcast_shape(const char* op, const Shape& a, const Shape& b);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& x) { return neg(x); }
inline Tensor operator+(const Tensor& a, double s) { return add(a, s); }
inline Tensor operator-(const Tensor& a, double s) { return add(a, -s); }
inline Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
inline Tensor operator*(double s, const Tensor& a) { return mul(a, s); }
inline Tensor operator/(const Tensor& a, double s) { return mul(a, 1.0 / s); }

}  // namespace wn
