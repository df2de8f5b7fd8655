// Reductions: sum and mean over everything or over chosen axes.
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace wn {

Tensor sum(const Tensor& x);   // sum of all elements, 0-d
Tensor mean(const Tensor& x);  // mean of all elements, 0-d
// Sum / mean over the given axes (negative counts from the end); keepdim keeps them as 1.
Tensor sum(const Tensor& x, const std::vector<int>& axes, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int>& axes, bool keepdim = false);
// Sum of squares of all elements as a double (no graph; for norms and statistics).
double sum_squares(const Tensor& x);

}  // namespace wn
