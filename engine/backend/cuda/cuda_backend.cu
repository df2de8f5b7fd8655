// CUDA backend: memory, element-wise maps, broadcasting, reductions, GEMM, optimizer
// updates and losses. The element-wise formulas are the functors of
// engine/backend/elementwise_ops.h, the layouts the plans of engine/backend/shape_plan.h. Convolutions are in cuda_conv.cu, batch norm in cuda_norm.cu.
#include <algorithm>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/backend/cuda/cuda_backend.h"
#include "engine/backend/cuda/cuda_common.cuh"
#include "engine/backend/cuda/cudnn_conv.h"
#include "engine/backend/shape_plan.h"

namespace wn {

void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e));
}

void cublas_check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuBLAS error in ") + what + ": status " + std::to_string(int(s)));
}

CudaBackend::CudaBackend(int index)
    : index_(index),
      alloc_(
          [index](size_t n) -> void* {
            void* p = nullptr;
            cudaSetDevice(index);
            return cudaMalloc(&p, n) == cudaSuccess ? p : nullptr;
          },
          [](void* p) { cudaFree(p); }) {
  cuda_check(cudaSetDevice(index), "cudaSetDevice");
  cublas_check(cublasCreate(&cublas_), "cublasCreate");
  // Plain FP32: no TF32 tensor-core rounding, so results match the CPU to ~1e-6.
  cublas_check(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
  use_cudnn_ = cudnn_conv_wanted();
}

std::string CudaBackend::conv_library() const {
  if (!use_cudnn_) return "own im2col + cuBLAS kernels (the default; WNGAN_CUDNN=heuristic|benchmark for cuDNN)";
  const std::string s = cudnn_conv_status();
  return s.rfind("cuDNN", 0) == 0 ? s : "own im2col + cuBLAS kernels (cuDNN " + s + ")";
}

bool CudaBackend::set_conv_library(bool on) {
  const bool was = use_cudnn_;
  use_cudnn_ = on;
  return was;
}

CudaBackend::~CudaBackend() {
  // Process exit: the driver reclaims device memory; the handle and staging slots are released.
  if (cublas_) cublasDestroy(cublas_);
  for (StageSlot& s : stage_) {
    if (s.done) cudaEventDestroy(s.done);
    if (s.host) cudaFreeHost(s.host);
  }
}

void CudaBackend::host_to_device(void* dst, const void* src, size_t bytes) {
  std::lock_guard<std::mutex> lock(stage_mu_);
  ++transfers_.to_device;
  transfers_.to_device_bytes += bytes;
  if (bytes > kStageBytes) {
    cuda_check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "copy to the device");
    return;
  }
  // Every kernel and copy runs on the device's legacy default stream (no other stream
  // exists), so the copy is ordered before every later kernel that reads dst.
  cuda_check(cudaSetDevice(index_), "cudaSetDevice");
  StageSlot& s = stage_[next_slot_];
  next_slot_ = (next_slot_ + 1) % kStageSlots;
  if (!s.done) cuda_check(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming), "staging event");
  if (!s.host) cuda_check(cudaHostAlloc(&s.host, kStageBytes, cudaHostAllocDefault), "pinned staging memory");
  if (s.pending) cuda_check(cudaEventSynchronize(s.done), "staging slot wait");
  std::memcpy(s.host, src, bytes);
  cuda_check(cudaMemcpyAsync(dst, s.host, bytes, cudaMemcpyHostToDevice, 0), "copy to the device");
  cuda_check(cudaEventRecord(s.done, 0), "staging event record");
  s.pending = true;
}
void CudaBackend::device_to_host(void* dst, const void* src, size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(stage_mu_);
    ++transfers_.to_host;
    transfers_.to_host_bytes += bytes;
  }
  cuda_check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "copy from the device");
}
void CudaBackend::device_to_device(void* dst, const void* src, size_t bytes) {
  cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0), "device copy");
}
TransferStats CudaBackend::transfers() const {
  std::lock_guard<std::mutex> lock(stage_mu_);
  return transfers_;
}
Ncr ncr32(const Tensor& x, const char* op) {
  if (x.numel() >= 2147483647)
    throw std::runtime_error(std::string(op) + ": input " + x.shape().str() +
                             " too large for the CUDA backend's 32-bit indexing");
  const NCR d = ncr_of(x.shape());
  return {int(d.n), int(d.c), int(d.r)};
}

void CudaBackend::synchronize() { cuda_check(cudaDeviceSynchronize(), "synchronize"); }

namespace {

template <class T>
__global__ void fill_k(T* y, T v, int64_t n) {
  GRID_LOOP(i, n) y[i] = v;
}

template <class S, class D>
__global__ void cast_k(const S* x, D* y, int64_t n) {
  GRID_LOOP(i, n) y[i] = static_cast<D>(x[i]);
}

// y = F(x), F a functor of engine/backend/elementwise_ops.h.
template <class F, class T>
__global__ void unary_k(const T* x, T* y, int64_t n, T a, T b) {
  GRID_LOOP(i, n) y[i] = F::fwd(x[i], a, b);
}

// dx = dy * F'(x), given y = F(x).
template <class F, class T>
__global__ void unary_bwd_k(const T* x, const T* y, const T* dy, T* dx, int64_t n, T a, T b) {
  GRID_LOOP(i, n) dx[i] = F::bwd(x[i], y[i], dy[i], a, b);
}

// The broadcast plan (engine/backend/shape_plan.h) in 32-bit indices: index arithmetic
// in 64 bits is several times slower.
struct Bcast {
  int rank;
  int n[4], sa[4], sb[4];
};

Bcast bcast32(const Shape& out, const Shape& a, const Shape& b) {
  const BroadcastPlan p = plan_broadcast(out, a, b);
  Bcast c{};
  c.rank = p.rank;
  for (int i = 0; i < p.rank; ++i) {
    c.n[i] = int(p.n[i]);
    c.sa[i] = int(p.st[0][i]);
    c.sb[i] = int(p.st[1][i]);
  }
  return c;
}

template <class F, class T>
__global__ void binary_k(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ o, Bcast c, int total) {
  GRID_LOOP(i, total) {
    int rem = i, oa = 0, ob = 0;
    for (int d = c.rank - 1; d >= 0; --d) {
      const int q = rem / c.n[d], idx = rem - q * c.n[d];
      rem = q;
      oa += idx * c.sa[d];
      ob += idx * c.sb[d];
    }
    o[i] = F::fwd(a[oa], b[ob]);
  }
}

template <class F, class T>
__global__ void binary_same_k(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ o, int total) {
  GRID_LOOP(i, total) o[i] = F::fwd(a[i], b[i]);
}

// The sum_to plan (engine/backend/shape_plan.h) in 32-bit indices: x's merged dims split
// into kept dims (those of the output) and reduced ones.
struct Reduce {
  int n[4], xs[4];
  int kept[4], nk;
  int red[4], nr;
  int R;
};

// Offset in x of the i-th element of the dims dims[0..nd) (row-major over them).
__device__ inline int offset_over(const Reduce& r, const int* dims, int nd, int i) {
  int off = 0;
  for (int k = nd - 1; k >= 0; --k) {
    const int d = dims[k], q = i / r.n[d];
    off += (i - q * r.n[d]) * r.xs[d];
    i = q;
  }
  return off;
}
// Offset in x of output element o (its kept-dim coordinates).
__device__ inline int kept_offset(const Reduce& r, int o) { return offset_over(r, r.kept, r.nk, o); }
// Offset in x of the q-th reduced element (its reduced-dim coordinates).
__device__ inline int reduced_offset(const Reduce& r, int q) { return offset_over(r, r.red, r.nr, q); }

template <class T, int BS>
__global__ void sum_to_k(const T* __restrict__ x, T* __restrict__ out, Reduce r, int n_out) {
  // One group of BS threads per output element; a fixed tree, so deterministic.
  const int groups_per_block = blockDim.x / BS;
  const int lane = threadIdx.x % BS;
  for (int o = blockIdx.x * groups_per_block + threadIdx.x / BS; o < n_out; o += gridDim.x * groups_per_block) {
    const int base = kept_offset(r, o);
    double acc = 0;
    if (r.nr == 1) {
      const int s = r.xs[r.red[0]];
      for (int q = lane; q < r.R; q += BS) acc += double(x[base + q * s]);
    } else {
      for (int q = lane; q < r.R; q += BS) acc += double(x[base + reduced_offset(r, q)]);
    }
    acc = group_sum<BS>(acc);
    if (lane == 0) out[o] = static_cast<T>(acc);
  }
}

// Few outputs with long reductions: block (o, chunk) sums its slice of output o's
// reduced elements into partial[o * chunks + chunk] (double), so that the whole GPU
// works on it; sum_partials_k (cuda_common.cuh) then adds each output's chunks in order.
template <class T>
__global__ void sum_chunks_k(const T* __restrict__ x, double* __restrict__ partial, Reduce r, int chunks, int len) {
  const int o = blockIdx.x / chunks, chunk = blockIdx.x % chunks;
  const int base = kept_offset(r, o), q0 = chunk * len, q1 = min(r.R, q0 + len);
  double acc = 0;
  for (int q = q0 + threadIdx.x; q < q1; q += blockDim.x) acc += double(x[base + reduced_offset(r, q)]);
  acc = group_sum<1024>(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

template <class T>
__global__ void bce_fwd_k(const T* x, const T* t, T* loss, int64_t n) {
  double acc = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += ew::bce_logits_term(double(x[i]), double(t[i]));
  acc = block_sum(acc);
  if (threadIdx.x == 0) loss[0] = static_cast<T>(acc / double(n));
}

template <class T>
__global__ void bce_bwd_k(const T* x, const T* t, const T* dloss, T* dx, int64_t n) {
  const double scale = double(dloss[0]) / double(n);
  GRID_LOOP(i, n) dx[i] = static_cast<T>(scale * ew::bce_logits_grad(double(x[i]), double(t[i])));
}

template <class T>
__global__ void rmsprop_k(T* p, const T* g, T* s, int64_t n, ew::RmsPropStep<T> step) {
  GRID_LOOP(i, n) step(p[i], g[i], s[i]);
}

template <class T>
__global__ void adam_k(T* p, const T* g, T* m, T* v, int64_t n, ew::AdamStep<T> update) {
  GRID_LOOP(i, n) update(p[i], g[i], m[i], v[i]);
}

template <class T>
__global__ void sgd_k(T* p, const T* g, T* buf, int64_t n, ew::SgdStep<T> step) {
  GRID_LOOP(i, n) step(p[i], g[i], buf ? buf + i : nullptr);
}

}  // namespace

void CudaBackend::fill(Tensor& y, double v) {
  WN_CUDA_DISPATCH(y.dtype(), T, { fill_k<T><<<grid_for(y.numel()), 256>>>(y.data<T>(), T(v), y.numel()); });
  cuda_check(cudaGetLastError(), "fill");
}

void CudaBackend::cast(const Tensor& x, Tensor& y) {
  if (x.dtype() == DType::F32 && y.dtype() == DType::F64)
    cast_k<<<grid_for(x.numel()), 256>>>(x.data<float>(), y.data<double>(), x.numel());
  else if (x.dtype() == DType::F64 && y.dtype() == DType::F32)
    cast_k<<<grid_for(x.numel()), 256>>>(x.data<double>(), y.data<float>(), x.numel());
  else
    device_to_device(y.raw(), x.raw(), x.nbytes());
  cuda_check(cudaGetLastError(), "cast");
}

void CudaBackend::unary(UnaryOp op, const Tensor& x, Tensor& y, double a, double b) {
  WN_CUDA_DISPATCH(x.dtype(), T, {
    visit_unary(op, [&](auto f) {
      unary_k<decltype(f), T><<<grid_for(x.numel()), 256>>>(x.data<T>(), y.data<T>(), x.numel(), T(a), T(b));
    });
  });
  cuda_check(cudaGetLastError(), "unary");
}

void CudaBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx, double a,
                                 double b) {
  WN_CUDA_DISPATCH(x.dtype(), T, {
    visit_unary(op, [&](auto f) {
      unary_bwd_k<decltype(f), T><<<grid_for(x.numel()), 256>>>(x.data<T>(), y.data<T>(), dy.data<T>(), dx.data<T>(),
                                                                x.numel(), T(a), T(b));
    });
  });
  cuda_check(cudaGetLastError(), "unary backward");
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  if (out.numel() >= (int64_t(1) << 31))
    throw std::runtime_error(std::string("binary ") + binary_op_name(op) + ": output " + out.shape().str() +
                             " too large for the CUDA backend's 32-bit indexing");
  const int total = int(out.numel());
  WN_CUDA_DISPATCH(a.dtype(), T, {
    visit_binary(op, [&](auto f) {
      using F = decltype(f);
      if (a.numel() == total && b.numel() == total) {
        binary_same_k<F, T><<<grid_for(total), 256>>>(a.data<T>(), b.data<T>(), out.data<T>(), total);
      } else {
        const Bcast c = bcast32(out.shape(), a.shape(), b.shape());
        binary_k<F, T><<<grid_for(total), 256>>>(a.data<T>(), b.data<T>(), out.data<T>(), c, total);
      }
    });
  });
  cuda_check(cudaGetLastError(), "binary");
}

void CudaBackend::sum_to(const Tensor& x, Tensor& out) {
  if (x.numel() >= (int64_t(1) << 31))
    throw std::runtime_error("sum_to: input " + x.shape().str() + " too large for the CUDA backend's 32-bit indexing");
  const ReducePlan p = plan_sum_to(x.shape(), out.shape());
  Reduce r{};
  r.R = int(p.n_red);
  r.nk = p.nk;
  r.nr = p.nr;
  for (int i = 0; i < p.rank; ++i) {
    r.n[i] = int(p.n[i]);
    r.xs[i] = int(p.xs[i]);
  }
  for (int k = 0; k < p.nk; ++k) r.kept[k] = p.kept[k];
  for (int k = 0; k < p.nr; ++k) r.red[k] = p.red[k];
  const int n_out = int(out.numel());
  // Chunks of a fixed length (a function of the shape only): deterministic. 2048 keeps a
  // per-channel sum of a DCGAN activation (R = N*H*W of 8192 and up) on hundreds of
  // blocks instead of one 32-thread group per channel; longer for huge reductions, so that
  // n_out * chunks stays within the partial buffer's 65536 entries.
  const int64_t max_chunks = std::max<int64_t>(1, 65536 / std::max(1, n_out));
  const int len = int(std::max<int64_t>(2048, (int64_t(r.R) + max_chunks - 1) / max_chunks));
  const int chunks = int((int64_t(r.R) + len - 1) / len);
  WN_CUDA_DISPATCH(x.dtype(), T, {
    if (chunks > 1 && int64_t(n_out) * chunks <= 65536) {
      CudaScratch partial(*this, sizeof(double) * n_out * chunks);
      sum_chunks_k<T><<<unsigned(n_out * chunks), 256>>>(x.data<T>(), partial.as<double>(), r, chunks, len);
      sum_partials_k<<<grid_for(n_out), 256>>>(partial.as<double>(), n_out, chunks, int64_t(chunks), int64_t(1),
                                               out.data<T>());
    } else if (n_out == 1) {
      sum_to_k<T, 1024><<<1, 1024>>>(x.data<T>(), out.data<T>(), r, n_out);
    } else {
      sum_to_k<T, 32><<<grid_for(int64_t(n_out) * 32), 256>>>(x.data<T>(), out.data<T>(), r, n_out);
    }
  });
  cuda_check(cudaGetLastError(), "sum_to");
}

template <>
void cuda_gemm<float>(CudaBackend& be, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                      int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T.
  cublas_check(cublasSgemm(be.cublas(), tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, int(n), int(m),
                           int(k), &alpha, b, int(ldb), a, int(lda), &beta, c, int(ldc)),
               "sgemm");
}

template <>
void cuda_gemm<double>(CudaBackend& be, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                       const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cublas_check(cublasDgemm(be.cublas(), tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, int(n), int(m),
                           int(k), &alpha, b, int(ldb), a, int(lda), &beta, c, int(ldc)),
               "dgemm");
}

template <>
void cuda_gemm_batched<float>(CudaBackend& be, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a,
                              int64_t lda, int64_t sa, const float* b, int64_t ldb, int64_t sb, float* c, int64_t ldc,
                              int64_t sc, int64_t count) {
  const float one = 1, zero = 0;
  cublas_check(cublasSgemmStridedBatched(be.cublas(), tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                                         int(n), int(m), int(k), &one, b, int(ldb), sb, a, int(lda), sa, &zero, c,
                                         int(ldc), sc, int(count)),
               "sgemm batched");
}

template <>
void cuda_gemm_batched<double>(CudaBackend& be, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a,
                               int64_t lda, int64_t sa, const double* b, int64_t ldb, int64_t sb, double* c, int64_t ldc,
                               int64_t sc, int64_t count) {
  const double one = 1, zero = 0;
  cublas_check(cublasDgemmStridedBatched(be.cublas(), tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                                         int(n), int(m), int(k), &one, b, int(ldb), sb, a, int(lda), sa, &zero, c,
                                         int(ldc), sc, int(count)),
               "dgemm batched");
}

void CudaBackend::gemm(bool ta, bool tb, double alpha, const Tensor& a, const Tensor& b, double beta, Tensor& c) {
  const int64_t m = c.dim(0), n = c.dim(1), k = ta ? a.dim(0) : a.dim(1);
  WN_CUDA_DISPATCH(a.dtype(), T, {
    cuda_gemm<T>(*this, ta, tb, m, n, k, T(alpha), a.data<T>(), a.dim(1), b.data<T>(), b.dim(1), T(beta), c.data<T>(), n);
  });
}

void CudaBackend::rmsprop_update(Tensor& p, const Tensor& g, Tensor& s, double lr, double alpha, double eps) {
  WN_CUDA_DISPATCH(p.dtype(), T, {
    rmsprop_k<T><<<grid_for(p.numel()), 256>>>(p.data<T>(), g.data<T>(), s.data<T>(), p.numel(),
                                                ew::RmsPropStep<T>(lr, alpha, eps));
  });
  cuda_check(cudaGetLastError(), "rmsprop");
}

void CudaBackend::adam_update(Tensor& p, const Tensor& g, Tensor& m, Tensor& v, double lr, double b1, double b2,
                              double eps, int64_t step) {
  WN_CUDA_DISPATCH(p.dtype(), T, {
    adam_k<T><<<grid_for(p.numel()), 256>>>(p.data<T>(), g.data<T>(), m.data<T>(), v.data<T>(), p.numel(),
                                             ew::AdamStep<T>(lr, b1, b2, eps, step));
  });
  cuda_check(cudaGetLastError(), "adam");
}

void CudaBackend::sgd_update(Tensor& p, const Tensor& g, Tensor& buf, double lr, double momentum, bool first) {
  WN_CUDA_DISPATCH(p.dtype(), T, {
    sgd_k<T><<<grid_for(p.numel()), 256>>>(p.data<T>(), g.data<T>(), buf.defined() ? buf.data<T>() : nullptr,
                                            p.numel(), ew::SgdStep<T>(lr, momentum, first));
  });
  cuda_check(cudaGetLastError(), "sgd");
}

void CudaBackend::bce_logits_forward(const Tensor& x, const Tensor& t, Tensor& loss) {
  WN_CUDA_DISPATCH(x.dtype(), T, { bce_fwd_k<T><<<1, 1024>>>(x.data<T>(), t.data<T>(), loss.data<T>(), x.numel()); });
  cuda_check(cudaGetLastError(), "bce forward");
}

void CudaBackend::bce_logits_backward(const Tensor& x, const Tensor& t, const Tensor& dloss, Tensor& dx) {
  WN_CUDA_DISPATCH(x.dtype(), T, {
    bce_bwd_k<T><<<grid_for(x.numel()), 256>>>(x.data<T>(), t.data<T>(), dloss.data<T>(), dx.data<T>(), x.numel());
  });
  cuda_check(cudaGetLastError(), "bce backward");
}

namespace {
std::mutex g_mu;
std::vector<CudaBackend*> g_backends;

Backend* cuda_factory(int index) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (index < 0) throw std::runtime_error("negative CUDA device index");
  int count = 0;
  cudaGetDeviceCount(&count);
  if (index >= count) throw std::runtime_error("cuda:" + std::to_string(index) + " requested, but " +
                                               std::to_string(count) + " CUDA device(s) are present");
  if (g_backends.size() <= size_t(index)) g_backends.resize(index + 1, nullptr);
  if (!g_backends[index]) g_backends[index] = new CudaBackend(index);  // lives for the process
  return g_backends[index];
}

bool cuda_available() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}
}  // namespace

void init_cuda_backend() { register_cuda_backend(cuda_factory, cuda_available); }

}  // namespace wn
