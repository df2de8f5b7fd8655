// Parameter initialisation as PyTorch does it by default, so runs compare directly.
#pragma once
#include "engine/random.h"
#include "engine/tensor.h"

namespace wn::nn {

// Uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for Linear / Conv
// weights (kaiming_uniform with a = sqrt(5)) and for their biases.
Tensor default_uniform(const Shape& shape, int64_t fan_in, Generator& gen);
// PyTorch's fan_in of a weight: dim 1 times the kernel size. For a transposed conv
// weight (in, out, kh, kw) that is out * kh * kw, as in PyTorch.
int64_t fan_in_of(const Shape& weight_shape);

}  // namespace wn::nn
