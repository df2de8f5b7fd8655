// The communicator of a job spread over processes: rank, world size, local rank, and the
// collectives data-parallel training and distributed studies need (a sum of a list of
// tensors as one flattened buffer, broadcast, gather, barrier). MPI carries them, and NCCL
// the sums of CUDA tensors where the build has NCCL's header and libnccl.so.2 loads
// (engine/dist/nccl.h; WNGAN_NCCL=0 sends them through the host); nothing else in wngan
// calls MPI or NCCL. Every wait is bounded (Comm::timeout_s) and watches a side
// channel on which a failing rank announces its failure, so no rank hangs on a dead peer.
// Without MPI (a build with -Dmpi=disabled, or a process not started by mpirun / srun)
// the world is one rank and every collective is the identity.
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace wn::dist {

// A collective did not complete: no answer within the timeout, or a broken communicator.
struct DistError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Another rank announced its failure while this one waited for it.
struct RankFailed : DistError {
  RankFailed(int rank, const std::string& what) : DistError(what), failed_rank(rank) {}
  int failed_rank;  // in the communicator that saw it
};

// Rank r's part [begin, end) of n items split as evenly as possible over k ranks (the
// running and final tests' images).
inline std::pair<int64_t, int64_t> even_part(int64_t n, int r, int k) { return {n * r / k, n * (r + 1) / k}; }

class Comm {
 public:
  struct Impl;
  explicit Comm(std::unique_ptr<Impl> impl);
  // A communicator of this process alone (a one-process run inside an MPI job).
  static std::unique_ptr<Comm> self();
  ~Comm();
  Comm(const Comm&) = delete;
  Comm& operator=(const Comm&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  // The rank among the processes of this machine (which GPU a rank takes).
  int local_rank() const { return local_rank_; }
  bool is_root() const { return rank_ == 0; }
  // The rank in the world communicator (for messages).
  int world_rank() const { return world_rank_; }

  // Sums the tensors over ranks in place, as one flattened buffer (every rank passes the
  // same shapes in the same order; float32, or float64 for checks; one dtype per call).
  void all_reduce_sum(const std::vector<Tensor>& tensors);
  // Sums doubles over ranks in place.
  void all_reduce_sum(std::vector<double>& values);
  // Copies root's tensors into every rank's (same shapes everywhere).
  void broadcast(const std::vector<Tensor>& tensors, int root = 0);
  // Copies root's string to every rank.
  void broadcast(std::string& text, int root = 0);
  // Every rank's string, in rank order, on root (other ranks get an empty list).
  std::vector<std::string> gather(const std::string& text, int root = 0);
  // Every rank's string on root, in rank order, each taken as it arrives, waiting at most
  // limit seconds (a rank's send likewise). On root, ranks that did not send within the
  // limit make it throw DistError naming them and `what`. Other ranks get an empty list.
  std::vector<std::string> gather_within(const std::string& text, double limit, const std::string& what,
                                         int root = 0);
  // Waits until every rank arrives.
  void barrier();
  // How all_reduce_sum carries tensors on `device`, for logs: "MPI", "NCCL 2.28.9, GPU to
  // GPU", or "MPI through the host (NCCL: why not)".
  std::string reduce_path(Device device) const;
  // Tells every other rank that this one failed (their next wait throws RankFailed naming
  // it and the message) and waits, bounded, until they acknowledged it.
  void announce_failure(const std::string& what);
  // After a RankFailed was reported: lets the failed rank stop waiting for this one.
  void acknowledge_failure();
  // A communicator over the ranks that pass the same color, ordered by rank (collective).
  std::unique_ptr<Comm> split(int color);
  // A fresh communicator over the same ranks (collective; call it on one without pending
  // collectives, e.g. a study's group, so that a run's failure stays with that run's copy).
  std::unique_ptr<Comm> dup();

  // Seconds a collective may wait for the other ranks before it fails (WNGAN_DIST_TIMEOUT
  // in the environment; default 600).
  double timeout_s = 600;

 private:
  std::unique_ptr<Impl> impl_;
  int rank_ = 0, size_ = 1, local_rank_ = 0, world_rank_ = 0;
};

// Starts MPI when this process was launched by mpirun or srun (argc/argv as main's);
// otherwise the world stays one rank. Call once, first thing in main.
void init(int* argc, char*** argv);
// The communicator of all ranks (one rank until init found a launcher).
Comm& world();
// Ends MPI cleanly (all ranks). After a failure, ends the process without waiting on
// peers: exit code `code`.
void finalize();
[[noreturn]] void abandon(int code);
// Whether this build carries MPI (-Dmpi).
bool built_with_mpi();
// Whether this process runs under mpirun / srun with more than one rank or MPI started.
bool active();

}  // namespace wn::dist
