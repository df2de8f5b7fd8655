// Convolutions through cuDNN 9's convolution API, loaded with dlopen (no link-time
// dependency: without cuDNN the CUDA backend runs its own kernels). Per geometry a plan
// holds the descriptors and, per direction, the best algorithm among those that are
// deterministic and use plain FP32/FP64 FMA (no TF32): by cuDNN's heuristics, or measured
// with cudnnFind (as PyTorch's cudnn.benchmark does) when WNGAN_CUDNN=benchmark. The legacy convolution API is marked
// deprecated in cuDNN 9 but fully supported; the graph API would be far more code.
#include "engine/backend/cuda/cudnn_conv.h"

#include <fmt/format.h>

#if __has_include(<cudnn.h>)
#include <cudnn.h>
#include <dlfcn.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>

#include "engine/backend/cuda/cuda_backend.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace wn {

namespace {

// The cuDNN functions used, as an X-macro list.
#define WN_CUDNN_FUNCTIONS(X) \
  X(cudnnGetVersion) \
  X(cudnnGetErrorString) \
  X(cudnnCreate) \
  X(cudnnCreateTensorDescriptor) \
  X(cudnnSetTensor4dDescriptor) \
  X(cudnnCreateFilterDescriptor) \
  X(cudnnSetFilter4dDescriptor) \
  X(cudnnCreateConvolutionDescriptor) \
  X(cudnnSetConvolution2dDescriptor) \
  X(cudnnSetConvolutionMathType) \
  X(cudnnGetConvolution2dForwardOutputDim) \
  X(cudnnFindConvolutionForwardAlgorithm) \
  X(cudnnFindConvolutionBackwardDataAlgorithm) \
  X(cudnnFindConvolutionBackwardFilterAlgorithm) \
  X(cudnnGetConvolutionForwardAlgorithm_v7) \
  X(cudnnGetConvolutionBackwardDataAlgorithm_v7) \
  X(cudnnGetConvolutionBackwardFilterAlgorithm_v7) \
  X(cudnnGetConvolutionForwardWorkspaceSize) \
  X(cudnnGetConvolutionBackwardDataWorkspaceSize) \
  X(cudnnGetConvolutionBackwardFilterWorkspaceSize) \
  X(cudnnConvolutionForward) \
  X(cudnnConvolutionBackwardData) \
  X(cudnnConvolutionBackwardFilter)

// The cuDNN entry points, resolved once; error says why cuDNN is unusable (empty: usable).
struct Api {
#define WN_CUDNN_POINTER(name) decltype(&::name) name = nullptr;
  WN_CUDNN_FUNCTIONS(WN_CUDNN_POINTER)
#undef WN_CUDNN_POINTER
  std::string error, version;
};

const Api& api() {
  static const Api a = [] {
    Api r;
    // Plain FP32: cuDNN (and cuBLAS) honour NVIDIA_TF32_OVERRIDE=0 by never using TF32, so
    // no algorithm can round through TF32 whatever math type it reports. A value the
    // user set is kept.
    setenv("NVIDIA_TF32_OVERRIDE", "0", 0);
    void* lib = nullptr;
    for (const char* name : {"libcudnn.so.9", "libcudnn.so"})
      if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
    if (!lib) {
      const char* e = dlerror();
      r.error = fmt::format("libcudnn.so.9 not loadable ({})", e ? e : "unknown reason");
      return r;
    }
#define WN_CUDNN_RESOLVE(name)                                                        \
  r.name = reinterpret_cast<decltype(&::name)>(dlsym(lib, #name));                    \
  if (!r.name) {                                                                      \
    r.error = fmt::format("libcudnn.so.9 has no {}", #name);                          \
    return r;                                                                         \
  }
    WN_CUDNN_FUNCTIONS(WN_CUDNN_RESOLVE)
#undef WN_CUDNN_RESOLVE
    const size_t v = r.cudnnGetVersion();
    r.version = fmt::format("{}.{}.{}", v / 10000, v / 100 % 100, v % 100);
    if (v / 10000 != 9) r.error = fmt::format("cuDNN {} found, version 9 needed", r.version);
    return r;
  }();
  return a;
}

void check(cudnnStatus_t s, const char* what) {
  if (s != CUDNN_STATUS_SUCCESS)
    throw std::runtime_error(fmt::format("cuDNN error in {}: {}", what, api().cudnnGetErrorString(s)));
}

// A direction's chosen algorithm: algo < 0 while not yet measured; usable false when no
// deterministic FMA algorithm exists (the own kernels run instead).
struct Choice {
  int algo = -1;
  bool usable = false;
  size_t workspace = 0;
  cudnnMathType_t math = CUDNN_FMA_MATH;
};

struct Plan {
  bool ok = false;       // cuDNN accepts the geometry
  bool counted = false;  // a rejected geometry is counted once
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  Choice fwd, data, filter;
};

using Key = std::array<int64_t, 14>;

struct State {
  cudnnHandle_t handle = nullptr;
  std::map<Key, Plan> plans;
  int used = 0, declined = 0;  // directions on cuDNN / on the own kernels
};

std::mutex g_mu;
std::map<int, State> g_states;  // by device index

cudnnDataType_t cudnn_type(DType t) { return t == DType::F32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE; }

// The plan of a geometry on a device, created on first use (under g_mu).
Plan& plan_for(CudaBackend& be, const ConvGeom& g, DType dt, State*& st) {
  const Api& A = api();
  State& s = g_states[be.index()];
  st = &s;
  if (!s.handle) {
    cuda_check(cudaSetDevice(be.index()), "cudaSetDevice");
    check(A.cudnnCreate(&s.handle), "cudnnCreate");
  }
  const Key key{int64_t(dt), g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.oh, g.ow};
  auto it = s.plans.find(key);
  if (it != s.plans.end()) return it->second;
  Plan& p = s.plans[key];
  const cudnnDataType_t t = cudnn_type(dt);
  for (int64_t v : {g.n, g.cin, g.h, g.w, g.cout, g.oh, g.ow})
    if (v >= (int64_t(1) << 31)) return p;  // not ok: the own kernels report the size
  check(A.cudnnCreateTensorDescriptor(&p.x), "tensor descriptor");
  check(A.cudnnCreateTensorDescriptor(&p.y), "tensor descriptor");
  check(A.cudnnCreateFilterDescriptor(&p.w), "filter descriptor");
  check(A.cudnnCreateConvolutionDescriptor(&p.conv), "convolution descriptor");
  // A geometry cuDNN rejects is declined (the own kernels run it), not an error.
  int n = 0, c = 0, h = 0, w = 0;
  p.ok = A.cudnnSetTensor4dDescriptor(p.x, CUDNN_TENSOR_NCHW, t, int(g.n), int(g.cin), int(g.h), int(g.w)) ==
             CUDNN_STATUS_SUCCESS &&
         A.cudnnSetTensor4dDescriptor(p.y, CUDNN_TENSOR_NCHW, t, int(g.n), int(g.cout), int(g.oh), int(g.ow)) ==
             CUDNN_STATUS_SUCCESS &&
         A.cudnnSetFilter4dDescriptor(p.w, t, CUDNN_TENSOR_NCHW, int(g.cout), int(g.cin), int(g.kh), int(g.kw)) ==
             CUDNN_STATUS_SUCCESS &&
         A.cudnnSetConvolution2dDescriptor(p.conv, int(g.ph), int(g.pw), int(g.sh), int(g.sw), 1, 1,
                                           CUDNN_CROSS_CORRELATION, t) == CUDNN_STATUS_SUCCESS &&
         A.cudnnSetConvolutionMathType(p.conv, CUDNN_FMA_MATH) == CUDNN_STATUS_SUCCESS &&
         A.cudnnGetConvolution2dForwardOutputDim(p.conv, p.x, p.w, &n, &c, &h, &w) == CUDNN_STATUS_SUCCESS &&
         n == g.n && c == g.cout && h == g.oh && w == g.ow;
  return p;
}

// How algorithms are chosen, from WNGAN_CUDNN (unset or 0, the own kernels, is the CUDA
// backend's business): heuristic (or 1) takes cuDNN's heuristic ranking, the same
// choice in every run; benchmark measures them (cudnnFind, as PyTorch's cudnn.benchmark),
// which is faster where the ranking is off but may choose differently from run to run;
// nondeterministic measures them and also admits algorithms whose sums run in a varying
// order (to see what determinism costs).
enum class Mode { Heuristic, Benchmark, Nondeterministic };

Mode parse_mode() {
  const char* e = std::getenv("WNGAN_CUDNN");
  const std::string v = e ? e : "";
  if (v.empty() || v == "0" || v == "1" || v == "heuristic") return Mode::Heuristic;
  if (v == "benchmark") return Mode::Benchmark;
  if (v == "nondeterministic") return Mode::Nondeterministic;
  throw std::runtime_error(
      fmt::format("WNGAN_CUDNN='{}': expected 0 (the own kernels, the default), 1 or heuristic, benchmark or "
                  "nondeterministic", v));
}

Mode mode() {
  static const Mode m = parse_mode();
  return m;
}

const char* mode_name() {
  switch (mode()) {
    case Mode::Heuristic: return "heuristic choice, deterministic";
    case Mode::Benchmark: return "measured choice, deterministic";
    default: return "measured choice, any";
  }
}

// The first (best ranked) result that succeeded, is deterministic (unless the mode admits
// any) and uses FMA math: CUDNN_FMA_MATH, or CUDNN_DEFAULT_MATH, which some versions
// report for the same kernels (TF32 is off, see api()).
template <class Perf>
Choice choose(const Perf* r, int count) {
  Choice c;
  c.algo = 0;
  for (int i = 0; i < count; ++i)
    if (r[i].status == CUDNN_STATUS_SUCCESS && (r[i].determinism == CUDNN_DETERMINISTIC || mode() == Mode::Nondeterministic) &&
        (r[i].mathType == CUDNN_FMA_MATH || r[i].mathType == CUDNN_DEFAULT_MATH)) {
      c.algo = int(r[i].algo);
      c.usable = true;
      c.workspace = r[i].memory;
      c.math = r[i].mathType;
      break;
    }
  return c;
}

enum class Dir { Forward, Data, Filter };

// Finds (once) and returns the plan and choice for a direction, with the descriptor's math
// type set for it; null: use the own kernels. The caller holds g_mu.
const Choice* prepare(CudaBackend& be, const ConvGeom& g, DType dt, Dir dir, Plan*& plan, cudnnHandle_t& handle) {
  const Api& A = api();
  State* st = nullptr;
  Plan& p = plan_for(be, g, dt, st);
  plan = &p;
  handle = st->handle;
  if (!p.ok) {
    if (!p.counted) ++st->declined;  // counted once per geometry
    p.counted = true;
    return nullptr;
  }
  Choice& c = dir == Dir::Forward ? p.fwd : dir == Dir::Data ? p.data : p.filter;
  if (c.algo < 0) {
    check(A.cudnnSetConvolutionMathType(p.conv, CUDNN_FMA_MATH), "math type");
    const bool measure = mode() != Mode::Heuristic;
    int got = 0;
    size_t ws = 0;
    if (dir == Dir::Forward) {
      cudnnConvolutionFwdAlgoPerf_t r[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
      const int n = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
      const cudnnStatus_t e = measure ? A.cudnnFindConvolutionForwardAlgorithm(handle, p.x, p.w, p.conv, p.y, n, &got, r)
                                      : A.cudnnGetConvolutionForwardAlgorithm_v7(handle, p.x, p.w, p.conv, p.y, n, &got, r);
      c = choose(r, e == CUDNN_STATUS_SUCCESS ? got : 0);
      if (c.usable) {
        check(A.cudnnSetConvolutionMathType(p.conv, c.math), "math type");
        check(A.cudnnGetConvolutionForwardWorkspaceSize(handle, p.x, p.w, p.conv, p.y,
                                                          cudnnConvolutionFwdAlgo_t(c.algo), &ws),
                "forward workspace size");
      }
    } else if (dir == Dir::Data) {
      cudnnConvolutionBwdDataAlgoPerf_t r[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
      const int n = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
      const cudnnStatus_t e =
          measure ? A.cudnnFindConvolutionBackwardDataAlgorithm(handle, p.w, p.y, p.conv, p.x, n, &got, r)
                  : A.cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, p.w, p.y, p.conv, p.x, n, &got, r);
      c = choose(r, e == CUDNN_STATUS_SUCCESS ? got : 0);
      if (c.usable) {
        check(A.cudnnSetConvolutionMathType(p.conv, c.math), "math type");
        check(A.cudnnGetConvolutionBackwardDataWorkspaceSize(handle, p.w, p.y, p.conv, p.x,
                                                               cudnnConvolutionBwdDataAlgo_t(c.algo), &ws),
                "backward data workspace size");
      }
    } else {
      cudnnConvolutionBwdFilterAlgoPerf_t r[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
      const int n = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
      const cudnnStatus_t e =
          measure ? A.cudnnFindConvolutionBackwardFilterAlgorithm(handle, p.x, p.y, p.conv, p.w, n, &got, r)
                  : A.cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle, p.x, p.y, p.conv, p.w, n, &got, r);
      c = choose(r, e == CUDNN_STATUS_SUCCESS ? got : 0);
      if (c.usable) {
        check(A.cudnnSetConvolutionMathType(p.conv, c.math), "math type");
        check(A.cudnnGetConvolutionBackwardFilterWorkspaceSize(handle, p.x, p.y, p.conv, p.w,
                                                                 cudnnConvolutionBwdFilterAlgo_t(c.algo), &ws),
                "backward filter workspace size");
      }
    }
    c.workspace = std::max(c.workspace, ws);
    ++(c.usable ? st->used : st->declined);
  }
  if (!c.usable) return nullptr;
  check(A.cudnnSetConvolutionMathType(p.conv, c.math), "math type");
  return &c;
}

// Runs f(alpha, beta) with 1 and 0 in the tensor's precision (cuDNN reads them as such).
template <class F>
void with_scalars(DType dt, F f) {
  if (dt == DType::F32) {
    const float one = 1, zero = 0;
    f(&one, &zero);
  } else {
    const double one = 1, zero = 0;
    f(&one, &zero);
  }
}

// One call on cuDNN: the direction's algorithm (found on first use), its workspace, and
// run(handle, plan, algo, workspace, &one, &zero); false: not done, the own kernels run.
// g_mu is held while the call is queued: it sets the plan's math type.
template <class Run>
bool run_on_cudnn(CudaBackend& be, const ConvGeom& g, DType dt, Dir dir, Run run) {
  if (!api().error.empty()) return false;
  std::lock_guard<std::mutex> lock(g_mu);
  Plan* p = nullptr;
  cudnnHandle_t h = nullptr;
  const Choice* c = prepare(be, g, dt, dir, p, h);
  if (!c) return false;
  CudaScratch ws(be, c->workspace);
  with_scalars(dt, [&](const void* one, const void* zero) { run(h, *p, c->algo, ws, one, zero); });
  return true;
}

}  // namespace

bool cudnn_conv_forward(CudaBackend& be, const ConvGeom& g, const Tensor& x, const Tensor& w, Tensor& y) {
  return run_on_cudnn(be, g, x.dtype(), Dir::Forward,
                      [&](cudnnHandle_t h, const Plan& p, int algo, const CudaScratch& ws, const void* one,
                          const void* zero) {
                        check(api().cudnnConvolutionForward(h, one, p.x, x.raw(), p.w, w.raw(), p.conv,
                                                            cudnnConvolutionFwdAlgo_t(algo), ws.get(), ws.bytes(),
                                                            zero, p.y, y.raw()),
                              "convolution forward");
                      });
}

bool cudnn_conv_backward_data(CudaBackend& be, const ConvGeom& g, const Tensor& dy, const Tensor& w, Tensor& dx) {
  return run_on_cudnn(be, g, dy.dtype(), Dir::Data,
                      [&](cudnnHandle_t h, const Plan& p, int algo, const CudaScratch& ws, const void* one,
                          const void* zero) {
                        check(api().cudnnConvolutionBackwardData(h, one, p.w, w.raw(), p.y, dy.raw(), p.conv,
                                                                 cudnnConvolutionBwdDataAlgo_t(algo), ws.get(),
                                                                 ws.bytes(), zero, p.x, dx.raw()),
                              "convolution backward data");
                      });
}

bool cudnn_conv_backward_weight(CudaBackend& be, const ConvGeom& g, const Tensor& x, const Tensor& dy, Tensor& dw) {
  return run_on_cudnn(be, g, x.dtype(), Dir::Filter,
                      [&](cudnnHandle_t h, const Plan& p, int algo, const CudaScratch& ws, const void* one,
                          const void* zero) {
                        check(api().cudnnConvolutionBackwardFilter(h, one, p.x, x.raw(), p.y, dy.raw(), p.conv,
                                                                   cudnnConvolutionBwdFilterAlgo_t(algo), ws.get(),
                                                                   ws.bytes(), zero, p.w, dw.raw()),
                              "convolution backward filter");
                      });
}

bool cudnn_conv_wanted() {
  const char* e = std::getenv("WNGAN_CUDNN");
  if (!e || !*e || std::string(e) == "0") return false;
  parse_mode();  // a value it does not know is an error now, not at the first convolution
  return true;
}

std::string cudnn_conv_status() {
  const Api& A = api();
  if (!A.error.empty()) return "not in use: " + A.error;
  std::lock_guard<std::mutex> lock(g_mu);
  int used = 0, declined = 0;
  for (auto& [dev, s] : g_states) {
    used += s.used;
    declined += s.declined;
  }
  return fmt::format("cuDNN {} ({} FMA algorithms): {} of {} geometry-directions so far", A.version, mode_name(),
                     used, used + declined);
}

}  // namespace wn

#else  // built without cudnn.h: the own kernels always run

namespace wn {
bool cudnn_conv_forward(CudaBackend&, const ConvGeom&, const Tensor&, const Tensor&, Tensor&) { return false; }
bool cudnn_conv_backward_data(CudaBackend&, const ConvGeom&, const Tensor&, const Tensor&, Tensor&) { return false; }
bool cudnn_conv_backward_weight(CudaBackend&, const ConvGeom&, const Tensor&, const Tensor&, Tensor&) { return false; }
bool cudnn_conv_wanted() {
  const char* e = std::getenv("WNGAN_CUDNN");
  return e && *e && std::string(e) != "0";
}
std::string cudnn_conv_status() { return "not in use: built without cudnn.h"; }
}  // namespace wn

#endif
