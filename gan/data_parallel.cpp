#include "gan/data_parallel.h"

#include <chrono>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "nn/layers.h"

namespace wn::gan {

DataParallel::DataParallel(dist::Comm& comm, int64_t global_batch) : comm_(&comm), global_(global_batch) {
  if (global_batch % comm.size() != 0)
    throw std::invalid_argument(fmt::format("--batch {} is not divisible by the {} ranks of this run (mpirun -np {}): "
                                            "each rank takes an equal slice of the global batch",
                                            global_batch, comm.size(), comm.size()));
}

void DataParallel::average_gradients(const nn::Optimizer& opt) const {
  if (single()) return;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<Tensor> grads;
  for (const auto& [name, p] : opt.params()) {
    Tensor g = p.grad();
    if (g.defined()) grads.push_back(g);
  }
  comm_->all_reduce_sum(grads);
  NoGradGuard ng;
  const double inv = 1.0 / ranks();
  for (Tensor& g : grads) g.copy_from(mul(g, inv));
  reduce_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int64_t DataParallel::gradient_bytes(const nn::Optimizer& opt) {
  int64_t n = 0;
  for (const auto& [name, p] : opt.params())
    if (p.grad().defined()) n += int64_t(p.grad().nbytes());
  return n;
}

void DataParallel::broadcast_state(const nn::Named& state) const {
  if (single()) return;
  std::vector<Tensor> ts;
  for (const auto& [name, t] : state) ts.push_back(t);
  comm_->broadcast(ts, 0);
}

void DataParallel::sync_batch_norm(nn::Module& m) const {
  m.apply([this](nn::Module& x) {
    if (auto* bn = dynamic_cast<nn::BatchNorm*>(&x)) bn->sync = comm_;
  });
}

}  // namespace wn::gan
