// Ops across ranks, recorded on the tape like any other: a differentiable all-reduce and
// batch normalization with statistics over the global batch (--sync-bn).
#pragma once
#include "engine/dist/comm.h"
#include "engine/tensor.h"

namespace wn::dist {

// The sum of x over the ranks of comm (same shape everywhere). Its backward sums the
// upstream gradients over the ranks, because every rank's loss depends on every x.
Tensor all_reduce(const Tensor& x, Comm& comm);

// Training-mode batch normalization of (N, C) or (N, C, H, W) over the batch of all
// ranks of comm: the mean and biased variance of the global batch (two passes, each an
// all-reduce of C numbers), composed from ops so that its gradient comes from the tape;
// running statistics updated as batch_norm does (momentum, unbiased variance).
Tensor sync_batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor running_mean,
                       Tensor running_var, Comm& comm, double momentum = 0.1, double eps = 1e-5);

}  // namespace wn::dist
