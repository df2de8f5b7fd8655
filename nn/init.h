// Parameter initialisation as the authors' frameworks did it (Torch7 and PyTorch 0.1-0.2;
// docs/paper.md section 6), so runs start where theirs did.
#pragma once
#include "engine/random.h"
#include "engine/tensor.h"

namespace wn::nn {

// Uniform in [-scale/sqrt(fan_in), scale/sqrt(fan_in)): the default of Linear / Conv
// weights and of their biases (scale 1).
Tensor default_uniform(const Shape& shape, int64_t fan_in, Generator& gen, double scale = 1.0);
// The fan-in of a weight: the input channels (features) it reads times the kernel size.
// Those are dim 1 of a conv or linear weight (out, in, kh, kw) and dim 0 of a transposed
// conv weight (in, out, kh, kw): Torch7's and PyTorch 0.1-0.2's rule (today's PyTorch
// takes dim 1 for transposed convs too, which starts G's layers larger).
int64_t fan_in_of(const Shape& weight_shape, bool transposed = false);

}  // namespace wn::nn
