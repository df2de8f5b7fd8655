// Weight normalization of a weight tensor, fused: w = v * g_u / (sqrt(factor * |v_u|^2 + eps) + eps_out)
// for each output unit u along dimension `unit_dim` (0 for conv and linear weights,
// 1 for transposed-conv weights), with scale a per-unit scale (undefined: 1, strict WN).
#pragma once
#include "engine/tensor.h"

namespace wn {

// The normalized weight; differentiable in v and scale.
Tensor weight_norm(const Tensor& v, const Tensor& scale, int unit_dim, double factor, double eps, double eps_out = 0);

}  // namespace wn
