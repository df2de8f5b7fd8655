// Losses: binary cross-entropy on logits and mean squared error.
#pragma once
#include "engine/tensor.h"

namespace wn {

// mean over elements of -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))], computed
// stably as max(x, 0) - x t + log(1 + e^-|x|); t has x's shape. 0-d result.
Tensor bce_with_logits(const Tensor& logits, const Tensor& target);
// mean over elements of (a - b)^2. 0-d result.
Tensor mse(const Tensor& a, const Tensor& b);

}  // namespace wn
