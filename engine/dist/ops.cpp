#include "engine/dist/ops.h"

#include <fmt/format.h>

#include "engine/autograd.h"
#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/ops/shape.h"

namespace wn::dist {

Tensor all_reduce(const Tensor& x, Comm& comm) {
  Tensor y = x.detach().clone();
  comm.all_reduce_sum({y});
  Comm* c = &comm;
  return record(y, "all_reduce", {x}, [c](const Tensor& g) -> std::vector<Tensor> {
    Tensor s = g.clone();
    c->all_reduce_sum({s});
    return {s};
  });
}

Tensor sync_batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor running_mean,
                       Tensor running_var, Comm& comm, double momentum, double eps) {
  if (!x.defined() || (x.rank() != 2 && x.rank() != 4))
    throw OpError(fmt::format("sync_batch_norm: needs (N, C) or (N, C, H, W), got {}", x.defined() ? x.shape().str() : "none"));
  const int64_t c = x.dim(1);
  if (gamma.numel() != c || beta.numel() != c)
    op_fail("sync_batch_norm", fmt::format("gamma and beta need {} elements", c), gamma, beta);
  const std::vector<int> axes = x.rank() == 2 ? std::vector<int>{0} : std::vector<int>{0, 2, 3};
  const Shape bshape = x.rank() == 2 ? Shape({1, c}) : Shape({1, c, 1, 1});
  std::vector<double> count = {double(x.numel() / c)};
  comm.all_reduce_sum(count);
  const double n = count[0];
  Tensor mean_c = all_reduce(sum(x, axes), comm) / n;           // (C)
  Tensor centred = x - reshape(mean_c, bshape);
  Tensor var_c = all_reduce(sum(square(centred), axes), comm) / n;  // biased
  Tensor y = centred / reshape(sqrt(var_c + eps), bshape) * reshape(gamma, bshape) + reshape(beta, bshape);
  if (running_mean.defined() && running_var.defined()) {
    NoGradGuard ng;
    running_mean.copy_from(running_mean * (1 - momentum) + mean_c.detach() * momentum);
    running_var.copy_from(running_var * (1 - momentum) + var_c.detach() * (momentum * n / std::max(n - 1, 1.0)));
  }
  return y;
}

}  // namespace wn::dist
