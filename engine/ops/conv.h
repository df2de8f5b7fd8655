// Convolutions with PyTorch's weight layouts: conv2d weight (out, in, kh, kw),
// conv_transpose2d weight (in, out, kh, kw). Any kernel size, stride and padding,
// rectangular images.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace wn {

// A (height, width) pair for strides and paddings.
struct Hw {
  int64_t h = 0, w = 0;
  Hw() = default;
  Hw(int64_t both) : h(both), w(both) {}  // NOLINT: a single number means both
  Hw(int64_t hh, int64_t ww) : h(hh), w(ww) {}
};

// x (N, Cin, H, W), weight (Cout, Cin, KH, KW), bias (Cout) or undefined.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Hw stride = 1, Hw padding = 0);
// x (N, Cin, H, W), weight (Cin, Cout, KH, KW), bias (Cout) or undefined;
// output size (H - 1) * stride - 2 * padding + KH (and likewise for W).
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Hw stride = 1,
                        Hw padding = 0);

}  // namespace wn
