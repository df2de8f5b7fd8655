// Activations: sigmoid, ReLU, PReLU with a per-channel slope, translated PReLU, and clamp.
#pragma once
#include "engine/tensor.h"

namespace wn {

Tensor sigmoid(const Tensor& x);  // 1 / (1 + e^-x), stable for large |x|
Tensor relu(const Tensor& x);     // max(x, 0)
// x > 0 ? x : slope[c] * x, with slope of shape (C) over dim 1 (or (1) shared).
Tensor prelu(const Tensor& x, const Tensor& slope);
// Translated PReLU: prelu(x - shift, slope) + shift, with slope and shift of shape (C).
Tensor tprelu(const Tensor& x, const Tensor& slope, const Tensor& shift);
// min(max(x, lo), hi); the gradient passes where lo <= x <= hi.
Tensor clamp(const Tensor& x, double lo, double hi);

}  // namespace wn
