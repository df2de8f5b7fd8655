// Resampling of image planes: 2x2 average pooling and nearest-neighbour 2x upsampling.
#pragma once
#include "engine/tensor.h"

namespace wn {

// (N, C, H, W) -> (N, C, H/2, W/2), H and W even.
Tensor avg_pool2x2(const Tensor& x);
// (N, C, H, W) -> (N, C, 2H, 2W), each pixel repeated in a 2x2 block.
Tensor upsample_nearest2x(const Tensor& x);

}  // namespace wn
