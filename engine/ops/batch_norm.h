// Batch normalization over dim 1 of (N, C) or (N, C, H, W), fused forward and backward.
#pragma once
#include "engine/tensor.h"

namespace wn {

// training: normalises with the batch mean and biased variance and, when running_mean
// and running_var are defined, updates them in place (momentum, unbiased variance, as
// PyTorch). Otherwise (evaluation) normalises with the running statistics.
// gamma and beta have shape (C).
Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor running_mean,
                  Tensor running_var, bool training, double momentum = 0.1, double eps = 1e-5);

}  // namespace wn
