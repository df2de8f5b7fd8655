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
    r.ncclGetVersion(&v);
    // From 2.9 on the code is major * 10000 + minor * 100 + patch.
    r.version = fmt::format("{}.{}.{}", v / 10000, v / 100 % 100, v % 100);
    if (v < 21400) r.error = fmt::format("NCCL {} found, 2.14 or newer needed (non-blocking communicators)", r.version);
    return r;
  }();
  return a;
}

// Throws on an NCCL error (in progress is not one: the caller waits for it).
void check(ncclResult_t r, const char* what) {
  if (r == ncclSuccess || r == ncclInProgress) return;
  throw DistError(fmt::format("NCCL error in {}: {} (WNGAN_NCCL=0 sums CUDA tensors through the host over MPI)", what,
                              api().ncclGetErrorString(r)));
}

void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw DistError(fmt::format("CUDA error in {}: {}", what, cudaGetErrorString(e)));
}

}  // namespace

struct NcclComm::State {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  cudaEvent_t done = nullptr;
  int device = 0;
  bool aborted = false;
  Tensor flat;  // the flattened buffer, reused while large enough

  // Whether the communicator's pending initialisation or call has finished (throws on an error).
  bool settled(const char* what) const {
    ncclResult_t st = ncclSuccess;
    check(api().ncclCommGetAsyncError(comm, &st), what);
    if (st == ncclInProgress) return false;
    check(st, what);
    return true;
  }
};

bool NcclComm::available(std::string* why) {
  const Api& a = api();
  if (why) *why = a.error;
  return a.error.empty();
}

std::string NcclComm::version() { return available(nullptr) ? "NCCL " + api().version : std::string(); }

NcclComm::NcclComm(int rank, int size, int device, const std::function<void(std::string&)>& share, const WaitFn& wait)
    : s_(std::make_unique<State>()) {
  std::string why;
  if (!available(&why)) throw DistError("NCCL is not usable: " + why);
  s_->device = device;
  cuda_ok(cudaSetDevice(device), "cudaSetDevice");
  ncclUniqueId id;
  std::string bytes;
  if (rank == 0) {
    check(api().ncclGetUniqueId(&id), "ncclGetUniqueId");
    bytes.assign(reinterpret_cast<const char*>(&id), sizeof id);
  }
  share(bytes);
  if (bytes.size() != sizeof id)
    throw DistError(fmt::format("NCCL id from rank 0 has {} bytes, {} expected", bytes.size(), sizeof id));
  std::memcpy(&id, bytes.data(), sizeof id);
  // Non-blocking: every NCCL call returns at once and this rank waits (bounded) on its own
  // terms, so a peer that never joins cannot hang it.
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  try {
    check(api().ncclCommInitRankConfig(&s_->comm, size, id, rank, &config), "ncclCommInitRankConfig");
    wait("NCCL communicator set-up", [this] { return s_->settled("ncclCommInitRankConfig"); });
  } catch (...) {
    abort();
    throw;
  }
  // A blocking stream: ordered after, and before, the backend's work on the default stream.
  cuda_ok(cudaStreamCreate(&s_->stream), "cudaStreamCreate");
  cuda_ok(cudaEventCreateWithFlags(&s_->done, cudaEventDisableTiming), "cudaEventCreate");
}

NcclComm::~NcclComm() {
  if (!s_->comm) return;
  if (!s_->aborted) {
    // Finalize flushes pending work; bounded, then abort.
    const ncclResult_t fin = api().ncclCommFinalize(s_->comm);
    bool ok = fin == ncclSuccess || fin == ncclInProgress;
    const auto t0 = std::chrono::steady_clock::now();
    while (ok) {
      ncclResult_t st = ncclSuccess;
      if (api().ncclCommGetAsyncError(s_->comm, &st) != ncclSuccess || (st != ncclSuccess && st != ncclInProgress)) {
        ok = false;
        break;
      }
      if (st == ncclSuccess) break;
      if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(10)) {
        ok = false;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (ok)
      api().ncclCommDestroy(s_->comm);
    else
      api().ncclCommAbort(s_->comm);
  } else {
    api().ncclCommAbort(s_->comm);
  }
  if (s_->done) cudaEventDestroy(s_->done);
  if (s_->stream) cudaStreamDestroy(s_->stream);
}

int NcclComm::device() const { return s_->device; }

void NcclComm::abort() {
  if (s_->comm && !s_->aborted) api().ncclCommAbort(s_->comm);
  s_->aborted = true;
}

void NcclComm::all_reduce_sum(const std::vector<Tensor>& ts, size_t bytes, const WaitFn& wait) {
  if (s_->aborted) throw DistError("all_reduce_sum: the NCCL communicator was aborted after an earlier failure");
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
    check(api().ncclAllReduce(flat, flat, count, f64 ? ncclFloat64 : ncclFloat32, ncclSum, s_->comm, s_->stream),
          "ncclAllReduce");
    wait("all_reduce_sum (NCCL)", [this] { return s_->settled("ncclAllReduce"); });
    cuda_ok(cudaEventRecord(s_->done, s_->stream), "cudaEventRecord");
    // Bounded: a peer that died leaves NCCL's kernel spinning; the wait sees the timeout
    // or the failure notice and the communicator is aborted.
    wait("all_reduce_sum (NCCL)", [this] {
      const cudaError_t e = cudaEventQuery(s_->done);
      if (e == cudaSuccess) return true;
      if (e != cudaErrorNotReady) cuda_ok(e, "all_reduce_sum (NCCL)");
      s_->settled("ncclAllReduce");  // throws when NCCL reports an error
      return false;
    });
  } catch (...) {
    abort();
    throw;
  }
  off = 0;
  for (const Tensor& t : ts) {
    be.device_to_device(t.raw(), flat + off, t.nbytes());
    off += t.nbytes();
  }
}

}  // namespace wn::dist
