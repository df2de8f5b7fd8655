// Sums of CUDA tensors over the ranks of a communicator with NCCL, device to device.
// Internal to engine/dist (Comm uses it for CUDA tensors; nothing else calls NCCL). The
// library is loaded with dlopen at first use, so a build with NCCL's header runs where
// libnccl.so.2 is absent (Comm then sums through the host over MPI and says so). The NCCL
// id travels over MPI (Comm's broadcast); every wait is Comm's bounded wait, which also
// watches MPI's failure channel, and a communicator that failed or timed out is aborted
// when it is destroyed (after the caller announced the failure: an abort may wait on peers).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace wn::dist {

// Waits until done() returns true (done is called repeatedly); throws DistError on a
// timeout, RankFailed when another rank announced its failure. `what` names the wait.
using WaitFn = std::function<void(const char* what, const std::function<bool()>& done)>;

class NcclComm {
 public:
  // Whether NCCL can carry CUDA reductions: libnccl.so.2 (2.14 or newer) loads and
  // WNGAN_NCCL is not 0. Otherwise false and *why says why not.
  static bool available(std::string* why);
  // The loaded library, e.g. "NCCL 2.28.9" (empty when not available).
  static std::string version();

  // Joins the NCCL communicator of `size` ranks, this one `rank`, on CUDA device `device`.
  // share(id) must hand rank 0's id to every rank (a broadcast over MPI; collective; an
  // empty id says rank 0 failed). The set-up completes in the background: the first
  // all_reduce_sum waits for it. The destructor waits at most finalize_s for the others.
  NcclComm(int rank, int size, int device, const std::function<void(std::string&)>& share, double finalize_s);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  int device() const;
  // Sums the tensors over the ranks in place as one flattened device buffer (all on this
  // communicator's device, contiguous, one dtype: float32 or float64; `bytes` in all).
  void all_reduce_sum(const std::vector<Tensor>& ts, size_t bytes, const WaitFn& wait);

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace wn::dist
