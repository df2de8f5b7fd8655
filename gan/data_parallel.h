// Data parallelism of a training run over the ranks of a communicator (engine/dist/):
// every rank holds the same G and D, takes an equal slice of each global real batch and
// of each global code batch (codes drawn from one stream, so a run does not depend on the
// number of ranks), and the gradients are averaged over the ranks before every optimizer
// step. Batch norm sees each rank's slice (as PyTorch's DDP) unless sync_bn, which takes
// its statistics over the global batch. With one rank every call is a no-op, so a
// one-process run computes exactly what it did before.
#pragma once
#include <cstdint>
#include <utility>

#include "engine/dist/comm.h"
#include "nn/module.h"
#include "nn/optim.h"

namespace wn::gan {

class DataParallel {
 public:
  // comm: the ranks of this run; global_batch: --batch, which they must divide (an error
  // names the number of ranks otherwise).
  DataParallel(dist::Comm& comm, int64_t global_batch);
  dist::Comm& comm() const { return *comm_; }
  int ranks() const { return comm_->size(); }
  bool single() const { return comm_->size() == 1; }
  int64_t global_batch() const { return global_; }
  // This rank's rows [begin, end) of a global batch.
  int64_t begin() const { return global_ / ranks() * comm_->rank(); }
  int64_t end() const { return begin() + global_ / ranks(); }
  // This rank's part [begin, end) of n items split as evenly as possible (test images).
  std::pair<int64_t, int64_t> part(int64_t n) const { return dist::even_part(n, comm_->rank(), ranks()); }
  // Averages the gradients of an optimizer's parameters over the ranks (one flattened
  // all-reduce; parameters without a gradient, the same on every rank, are skipped).
  void average_gradients(const nn::Optimizer& opt) const;
  // The bytes average_gradients reduces for an optimizer (its parameters with a gradient).
  static int64_t gradient_bytes(const nn::Optimizer& opt);
  // Root's parameters and buffers (and optimizer states) copied to every rank.
  void broadcast_state(const nn::Named& state) const;
  // Makes every batch-norm layer of a module take its statistics over all ranks.
  void sync_batch_norm(nn::Module& m) const;
  // Seconds spent in gradient all-reduces so far (the benchmark's communication share).
  double reduce_seconds() const { return reduce_s_; }

 private:
  dist::Comm* comm_;
  int64_t global_;
  mutable double reduce_s_ = 0;
};

}  // namespace wn::gan
