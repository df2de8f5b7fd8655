// Host-side shape planning shared by the backends: the broadcast layout of a binary op,
// the reduction plan of sum_to, and the (N, C, rest) split of a channel-major tensor.
// Every backend runs its loops over these plans; the CUDA backend converts them to its
// 32-bit index structs after a size check.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace wn {

// Broadcast layout of two operands a, b over an output of rank <= 4, with adjacent dims
// merged when both operands treat them alike (both broadcast or both full) and size-1
// output dims dropped. st[k][i] is operand k's stride on merged dim i (0 where broadcast).
struct BroadcastPlan {
  int rank = 0;
  int64_t n[4]{};
  int64_t st[2][4]{};
};
// Plans out = a (op) b; shapes right-aligned, each operand dim equal to out's or 1.
BroadcastPlan plan_broadcast(const Shape& out, const Shape& a, const Shape& b);

// Reduction of x (rank <= 4) down to out (same rank, each dim equal to x's or 1), with
// adjacent dims merged when both are kept or both reduced and size-1 dims of x dropped.
struct ReducePlan {
  int rank = 0;
  int64_t n[4]{};
  int64_t xs[4]{};     // x's stride on merged dim i
  int64_t os[4]{};     // out's stride on merged dim i (0 where reduced)
  int kept[4]{}, nk = 0;  // merged dims kept, in order
  int red[4]{}, nr = 0;   // merged dims reduced, in order
  int64_t n_out = 1, n_red = 1;  // elements of out; elements summed into each
  bool reduced(int i) const { return os[i] == 0; }
};
// Plans out = x summed to out's shape.
ReducePlan plan_sum_to(const Shape& x, const Shape& out);

// (N, C, rest) sizes of a tensor with channels on dim 1 (rank 1: C = 1).
struct NCR {
  int64_t n, c, r;
};
// Splits a shape of rank >= 1 into N, C (dim 1) and the product of the rest.
NCR ncr_of(const Shape& s);

}  // namespace wn
