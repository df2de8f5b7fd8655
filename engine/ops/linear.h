// Matrix products: matmul of 2-D tensors and the fully connected layer.
#pragma once
#include "engine/tensor.h"

namespace wn {

// (M, K) x (K, N) -> (M, N).
Tensor matmul(const Tensor& a, const Tensor& b);
// x (N, in), weight (out, in) as PyTorch, bias (out) or undefined -> x weight^T + bias.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace wn
