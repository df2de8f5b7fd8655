// Shape ops: reshape / flatten (sharing storage), rows of dim 0 (select, slice) and zero padding / cropping of the
// (H, W) plane of (N, C, H, W) tensors.
#pragma once
#include "engine/tensor.h"

namespace wn {

// Same elements, new shape of equal size (shares storage).
Tensor reshape(const Tensor& x, const Shape& shape);
// (N, ...) -> (N, product of the rest).
Tensor flatten(const Tensor& x);
// Row `index` of dim 0: (A, ...) -> (...).
Tensor select(const Tensor& x, int64_t index);
// Rows [begin, end) of dim 0: (A, ...) -> (end - begin, ...), e.g. a batch of a data set.
Tensor slice(const Tensor& x, int64_t begin, int64_t end);
// Zero padding of the image plane: (N, C, H, W) -> (N, C, H + top + bottom, W + left + right).
Tensor pad2d(const Tensor& x, int64_t top, int64_t bottom, int64_t left, int64_t right);
// Cropping, the inverse of pad2d: removes the given margins.
Tensor crop2d(const Tensor& x, int64_t top, int64_t bottom, int64_t left, int64_t right);

}  // namespace wn
