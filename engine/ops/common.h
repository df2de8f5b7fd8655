// Helpers shared by the op families: argument checks whose messages name the op and
// the shapes, output allocation, and shape-only views.
#pragma once
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "engine/autograd.h"
#include "engine/backend/backend.h"
#include "engine/tensor.h"

namespace wn {

// Error thrown for bad arguments to an op (shapes, dtypes, devices).
struct OpError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Throws an OpError "op: message (a: ..., b: ...)".
[[noreturn]] void op_fail(const char* op, const std::string& msg, const Tensor& a, const Tensor& b = Tensor());
// Checks that a and b share dtype and device.
void check_compatible(const char* op, const Tensor& a, const Tensor& b);
// Checks the rank of x.
void check_rank(const char* op, const Tensor& x, int rank);
// An uninitialised tensor of the given shape with x's dtype and device.
Tensor empty_like_shape(const Tensor& x, const Shape& shape);
inline Tensor empty_like(const Tensor& x) { return empty_like_shape(x, x.shape()); }
// A tensor sharing x's storage with another shape of the same size (no graph).
Tensor view_as(const Tensor& x, const Shape& shape);

}  // namespace wn
