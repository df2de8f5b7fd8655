#include "engine/dist/nccl.h"

#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "engine/backend/backend.h"
#include "engine/dist/comm.h"

namespace wn::dist {

namespace {

// The NCCL functions used, as an X-macro list.
#define WN_NCCL_FUNCTIONS(X) \
  X(ncclGetVersion)          \
  X(ncclGetErrorString)      \
  X(ncclGetLastError)        \
  X(ncclGetUniqueId)         \
  X(ncclCommInitRankConfig)  \
  X(ncclCommGetAsyncError)   \
  X(ncclAllReduce)           \
  X(ncclCommFinalize)        \
  X(ncclCommDestroy)         \
  X(ncclCommAbort)

// The NCCL entry points, resolved once; error says why NCCL is unusable (empty: usable).
struct Api {
#define WN_NCCL_POINTER(name) decltype(&::name) name = nullptr;
  WN_NCCL_FUNCTIONS(WN_NCCL_POINTER)
#undef WN_NCCL_POINTER
  std::string error, version;
};

const Api& api() {
  static const Api a = [] {
    Api r;
    if (const char* e = std::getenv("WNGAN_NCCL"); e && std::string(e) == "0") {
      r.error = "WNGAN_NCCL=0";
      return r;
    }
    void* lib = nullptr;
    for (const char* name : {"libnccl.so.2", "libnccl.so"})
      if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
    if (!lib) {
      const char* e = dlerror();
      r.error = fmt::format("libnccl.so.2 not loadable ({})", e ? e : "unknown reason");
      return r;
    }
#define WN_NCCL_RESOLVE(name)                                    \
  r.name = reinterpret_cast<decltype(&::name)>(dlsym(lib, #name)); \
  if (!r.name) {                                                 \
    r.error = fmt::format("libnccl.so.2 has no {}", #name);      \
    return r;                                                    \
  }
    WN_NCCL_FUNCTIONS(WN_NCCL_RESOLVE)
#undef WN_NCCL_RESOLVE
    int v = 0;
    if (r.ncclGetVersion(&v) != ncclSuccess) {
      r.error = "ncclGetVersion failed";
      return r;
    }
    // From 2.9 on the code is major * 10000 + minor * 100 + patch; before, major * 1000 +
    // minor * 100 + patch.
    r.version = v >= 10000 ? fmt::format("{}.{}.{}", v / 10000, v / 100 % 100, v % 100)
                           : fmt::format("{}.{}.{}", v / 1000, v / 100 % 10, v % 100);
    if (v < 21400) r.error = fmt::format("NCCL {} found, 2.14 or newer needed (non-blocking communicators)", r.version);
    return r;
  }();
  return a;
}

// Throws on an NCCL error (in progress is not one: the caller waits for it), with NCCL's
// last message where there is a communicator.
void check(ncclResult_t r, const char* what, ncclComm_t comm = nullptr) {
  if (r == ncclSuccess || r == ncclInProgress) return;
  const char* last = api().ncclGetLastError(comm);
  throw DistError(fmt::format("NCCL error in {}: {}{} (WNGAN_NCCL=0 sums CUDA tensors through the host over MPI)",
                              what, api().ncclGetErrorString(r), last && *last ? fmt::format(": {}", last) : ""));
}

void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw DistError(fmt::format("CUDA error in {}: {}", what, cudaGetErrorString(e)));
}

}  // namespace

struct NcclComm::State {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  cudaEvent_t packed = nullptr, done = nullptr;
  int device = 0;
  double finalize_s = 600;
  bool ready = false;   // the set-up has completed
  bool failed = false;  // a wait failed: the communicator is aborted at destruction
  Tensor flat;          // the flattened buffer, reused while large enough

  // Whether the communicator's pending initialisation or call has finished (throws on an error).
  bool settled(const char* what) const {
    ncclResult_t st = ncclSuccess;
    check(api().ncclCommGetAsyncError(comm, &st), what, comm);
    if (st == ncclInProgress) return false;
    check(st, what, comm);
    return true;
  }
};

bool NcclComm::available(std::string* why) {
  const Api& a = api();
  if (why) *why = a.error;
  return a.error.empty();
}

std::string NcclComm::version() { return available(nullptr) ? "NCCL " + api().version : std::string(); }

NcclComm::NcclComm(int rank, int size, int device, const std::function<void(std::string&)>& share, double finalize_s)
    : s_(std::make_unique<State>()) {
  s_->device = device;
  s_->finalize_s = finalize_s;
  // What can fail on this rank alone comes before the id is shared: rank 0 shares no id
  // when it failed, so that every rank fails at once instead of waiting for it.
  std::string why, bytes;
  ncclUniqueId id;
  try {
    if (!available(&why)) throw DistError("NCCL is not usable: " + why);
    cuda_ok(cudaSetDevice(device), "cudaSetDevice");
    // A blocking stream: ordered after, and before, the backend's work on the default stream
    // (and an event makes the order explicit).
    cuda_ok(cudaStreamCreate(&s_->stream), "cudaStreamCreate");
    cuda_ok(cudaEventCreateWithFlags(&s_->packed, cudaEventDisableTiming), "cudaEventCreate");
    cuda_ok(cudaEventCreateWithFlags(&s_->done, cudaEventDisableTiming), "cudaEventCreate");
    if (rank == 0) {
      check(api().ncclGetUniqueId(&id), "ncclGetUniqueId");
      bytes.assign(reinterpret_cast<const char*>(&id), sizeof id);
    }
  } catch (const std::exception& e) {
    why = e.what();
    bytes.clear();
  }
  share(bytes);
  if (!why.empty()) throw DistError(why);
  if (bytes.size() != sizeof id)
    throw DistError(fmt::format("NCCL set-up: rank 0 could not make an NCCL id (it says why); got {} bytes",
                                bytes.size()));
  std::memcpy(&id, bytes.data(), sizeof id);
  // Non-blocking: every NCCL call returns at once and this rank waits (bounded) on its own
  // terms, so a peer that never joins cannot hang it.
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  const ncclResult_t r = api().ncclCommInitRankConfig(&s_->comm, size, id, rank, &config);
  if (r != ncclSuccess && r != ncclInProgress) {
    if (s_->comm) api().ncclCommAbort(s_->comm);  // a local error: no peer to wait for
    s_->comm = nullptr;
    check(r, "ncclCommInitRankConfig");
  }
  // The set-up completes in the background; the first all_reduce_sum waits for it (bounded).
}

NcclComm::~NcclComm() {
  if (s_->comm) {
    bool ok = !s_->failed;
    if (ok) {
      // Finalize flushes pending work and waits for the other ranks: bounded, then abort.
      const ncclResult_t fin = api().ncclCommFinalize(s_->comm);
      ok = fin == ncclSuccess || fin == ncclInProgress;
      const auto t0 = std::chrono::steady_clock::now();
      while (ok) {
        ncclResult_t st = ncclSuccess;
        if (api().ncclCommGetAsyncError(s_->comm, &st) != ncclSuccess || (st != ncclSuccess && st != ncclInProgress))
          ok = false;
        else if (st == ncclSuccess)
          break;
        else if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > s_->finalize_s)
          ok = false;
        else
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    if (ok)
      api().ncclCommDestroy(s_->comm);
    else
      api().ncclCommAbort(s_->comm);  // frees the communicator
    s_->comm = nullptr;
  }
  if (s_->done) cudaEventDestroy(s_->done);
  if (s_->packed) cudaEventDestroy(s_->packed);
  if (s_->stream) cudaStreamDestroy(s_->stream);
}

int NcclComm::device() const { return s_->device; }

void NcclComm::all_reduce_sum(const std::vector<Tensor>& ts, size_t bytes, const WaitFn& wait) {
  if (s_->failed) throw DistError("all_reduce_sum: the NCCL communicator failed earlier");
  if (!s_->ready) {
    try {
      wait("NCCL communicator set-up", [this] { return s_->settled("ncclCommInitRankConfig"); });
    } catch (...) {
      s_->failed = true;  // aborted by the destructor, after the caller has told the others
      throw;
    }
    s_->ready = true;
  }
  const Device dev{DeviceType::CUDA, s_->device};
  for (const Tensor& t : ts)
    if (t.device() != dev)
      throw std::invalid_argument(fmt::format("all_reduce_sum: a tensor on {} in a call on {}: one GPU per rank",
                                              t.device().str(), dev.str()));
  const bool f64 = ts[0].dtype() == DType::F64;
  if (!f64 && ts[0].dtype() != DType::F32)
    throw std::invalid_argument(fmt::format("all_reduce_sum: float32 or float64 tensors only ({})", ts[0].describe()));
  cuda_ok(cudaSetDevice(s_->device), "cudaSetDevice");
  if (!s_->flat.defined() || s_->flat.nbytes() < bytes)
    s_->flat = Tensor::empty({int64_t((bytes + 7) / 8)}, DType::F64, dev);
  char* flat = static_cast<char*>(s_->flat.raw());
  Backend& be = s_->flat.backend();
  // The copies run on the backend's stream (the default one); the reduction's stream waits for them.
  size_t off = 0;
  for (const Tensor& t : ts) {
    be.device_to_device(flat + off, t.raw(), t.nbytes());
    off += t.nbytes();
  }
  const size_t count = bytes / (f64 ? 8 : 4);
  try {
    cuda_ok(cudaEventRecord(s_->packed, 0), "cudaEventRecord");
    cuda_ok(cudaStreamWaitEvent(s_->stream, s_->packed, 0), "cudaStreamWaitEvent");
    check(api().ncclAllReduce(flat, flat, count, f64 ? ncclFloat64 : ncclFloat32, ncclSum, s_->comm, s_->stream),
          "ncclAllReduce", s_->comm);
    wait("all_reduce_sum (NCCL)", [this] { return s_->settled("ncclAllReduce"); });
    cuda_ok(cudaEventRecord(s_->done, s_->stream), "cudaEventRecord");
    // Bounded: a peer that died leaves NCCL's kernel spinning; the wait sees the timeout
    // or the failure notice, and the communicator is aborted when destroyed.
    wait("all_reduce_sum (NCCL)", [this] {
      const cudaError_t e = cudaEventQuery(s_->done);
      if (e == cudaSuccess) return true;
      if (e != cudaErrorNotReady) cuda_ok(e, "all_reduce_sum (NCCL)");
      s_->settled("ncclAllReduce");  // throws when NCCL reports an error
      return false;
    });
  } catch (...) {
    // Aborted by the destructor: ncclCommAbort may wait on peers, and the caller first
    // tells the other ranks of this failure.
    s_->failed = true;
    throw;
  }
  off = 0;
  for (const Tensor& t : ts) {
    be.device_to_device(t.raw(), flat + off, t.nbytes());
    off += t.nbytes();
  }
}

}  // namespace wn::dist
