// CUDA backend: memory, element-wise maps, broadcasting, reductions, GEMM, optimizer
// updates and losses. Convolutions are in cuda_conv.cu, batch norm in cuda_norm.cu.
#include <cmath>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/backend/cuda/cuda_backend.h"
#include "engine/backend/cuda/cuda_common.cuh"
#include "engine/backend/cuda/cudnn_conv.h"

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
  if (!use_cudnn_) return "own im2col + cuBLAS kernels (cuDNN switched off)";
  const std::string s = cudnn_conv_status();
  return s.rfind("cuDNN", 0) == 0 ? s : "own im2col + cuBLAS kernels (cuDNN " + s + ")";
}

bool CudaBackend::set_conv_library(bool on) {
  const bool was = use_cudnn_;
  use_cudnn_ = on;
  return was;
}

CudaBackend::~CudaBackend() {
  // Process exit: the driver reclaims device memory; only the handle is released.
  if (cublas_) cublasDestroy(cublas_);
}

void CudaBackend::host_to_device(void* dst, const void* src, size_t bytes) {
  cuda_check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "copy to the device");
}
void CudaBackend::device_to_host(void* dst, const void* src, size_t bytes) {
  cuda_check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "copy from the device");
}
void CudaBackend::device_to_device(void* dst, const void* src, size_t bytes) {
  cuda_check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), "device copy");
}
Ncr ncr32(const Tensor& x, const char* op) {
  if (x.numel() >= 2147483647)
    throw std::runtime_error(std::string(op) + ": input too large for the CUDA backend's 32-bit indexing");
  return {int(x.dim(0)), int(x.dim(1)), int(x.numel() / (x.dim(0) * x.dim(1)))};
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

template <class T>
__device__ T sigmoid_d(T x) {
  if (x >= T(0)) return T(1) / (T(1) + exp(-x));
  T e = exp(x);
  return e / (T(1) + e);
}

template <class T>
__global__ void unary_k(int op, const T* x, T* y, int64_t n, T a, T b) {
  GRID_LOOP(i, n) {
    T v = x[i], r;
    switch (op) {
      case int(UnaryOp::Neg): r = -v; break;
      case int(UnaryOp::Square): r = v * v; break;
      case int(UnaryOp::Sqrt): r = sqrt(v); break;
      case int(UnaryOp::Exp): r = exp(v); break;
      case int(UnaryOp::Log): r = log(v); break;
      case int(UnaryOp::Sigmoid): r = sigmoid_d(v); break;
      case int(UnaryOp::Relu): r = v > T(0) ? v : T(0); break;
      case int(UnaryOp::Clamp): r = v < a ? a : (v > b ? b : v); break;
      case int(UnaryOp::Scale): r = a * v; break;
      default: r = v + a; break;  // AddScalar
    }
    y[i] = r;
  }
}

template <class T>
__global__ void unary_bwd_k(int op, const T* x, const T* y, const T* dy, T* dx, int64_t n, T a, T b) {
  GRID_LOOP(i, n) {
    T v = x[i], o = y[i], d = dy[i], r;
    switch (op) {
      case int(UnaryOp::Neg): r = -d; break;
      case int(UnaryOp::Square): r = T(2) * v * d; break;
      case int(UnaryOp::Sqrt): r = d * T(0.5) / o; break;
      case int(UnaryOp::Exp): r = d * o; break;
      case int(UnaryOp::Log): r = d / v; break;
      case int(UnaryOp::Sigmoid): r = d * o * (T(1) - o); break;
      case int(UnaryOp::Relu): r = v > T(0) ? d : T(0); break;
      case int(UnaryOp::Clamp): r = (v >= a && v <= b) ? d : T(0); break;
      case int(UnaryOp::Scale): r = a * d; break;
      default: r = d; break;
    }
    dx[i] = r;
  }
}

// Broadcast layout in at most 4 dims, adjacent dims merged where both operands treat
// them alike; strides are 0 on broadcast dims. 32-bit: index arithmetic in 64 bits is
// several times slower.
struct Bcast {
  int rank;
  int n[4], sa[4], sb[4];
};

Bcast make_bcast(const Shape& out, const Shape& a, const Shape& b) {
  const int r = out.rank();
  int64_t on[4];
  bool ba[4], bb[4];
  for (int i = 0; i < 4; ++i) {
    const int k = i - (4 - r);
    on[i] = k >= 0 ? out[k] : 1;
    const int ka = k - (r - a.rank()), kb = k - (r - b.rank());
    const int64_t da = (k >= 0 && ka >= 0) ? a[ka] : 1, db = (k >= 0 && kb >= 0) ? b[kb] : 1;
    ba[i] = da == 1 && on[i] != 1;
    bb[i] = db == 1 && on[i] != 1;
  }
  Bcast c{};
  std::vector<int64_t> dn;
  std::vector<bool> da, db;
  for (int i = 0; i < 4; ++i) {
    if (on[i] == 1) continue;
    if (!dn.empty() && da.back() == ba[i] && db.back() == bb[i]) {
      dn.back() *= on[i];
    } else {
      dn.push_back(on[i]);
      da.push_back(ba[i]);
      db.push_back(bb[i]);
    }
  }
  if (dn.empty()) dn.push_back(1), da.push_back(false), db.push_back(false);
  c.rank = static_cast<int>(dn.size());
  int64_t sa = 1, sb = 1;
  for (int i = c.rank - 1; i >= 0; --i) {
    c.n[i] = int(dn[i]);
    c.sa[i] = da[i] ? 0 : int(sa);
    c.sb[i] = db[i] ? 0 : int(sb);
    if (!da[i]) sa *= dn[i];
    if (!db[i]) sb *= dn[i];
  }
  return c;
}

template <class T>
__device__ T apply_binary(int op, T u, T v) {
  switch (op) {
    case int(BinaryOp::Add): return u + v;
    case int(BinaryOp::Sub): return u - v;
    case int(BinaryOp::Mul): return u * v;
    default: return u / v;
  }
}

template <class T>
__global__ void binary_k(int op, const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ o, Bcast c, int total) {
  GRID_LOOP(i, total) {
    int rem = i, oa = 0, ob = 0;
    for (int d = c.rank - 1; d >= 0; --d) {
      const int q = rem / c.n[d], idx = rem - q * c.n[d];
      rem = q;
      oa += idx * c.sa[d];
      ob += idx * c.sb[d];
    }
    o[i] = apply_binary(op, a[oa], b[ob]);
  }
}

template <class T>
__global__ void binary_same_k(int op, const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ o, int total) {
  GRID_LOOP(i, total) o[i] = apply_binary(op, a[i], b[i]);
}

// sum_to: x's dims (merged where adjacent dims are both kept or both reduced) split
// into kept dims (those of the output) and reduced ones.
struct Reduce {
  int n[4], xs[4];
  int kept[4], nk;
  int red[4], nr;
  int R;
};

// Offset in x of output element o (its kept-dim coordinates).
__device__ inline int kept_offset(const Reduce& r, int o) {
  int off = 0;
  for (int k = r.nk - 1; k >= 0; --k) {
    const int d = r.kept[k], q = o / r.n[d];
    off += (o - q * r.n[d]) * r.xs[d];
    o = q;
  }
  return off;
}

// Offset in x of the q-th reduced element (its reduced-dim coordinates).
__device__ inline int reduced_offset(const Reduce& r, int q) {
  int off = 0;
  for (int k = r.nr - 1; k >= 0; --k) {
    const int d = r.red[k], t = q / r.n[d];
    off += (q - t * r.n[d]) * r.xs[d];
    q = t;
  }
  return off;
}

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
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const double v = x[i];
    acc += fmax(v, 0.0) - v * double(t[i]) + log1p(exp(-fabs(v)));
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) loss[0] = static_cast<T>(acc / double(n));
}

template <class T>
__global__ void bce_bwd_k(const T* x, const T* t, const T* dloss, T* dx, int64_t n) {
  const double scale = double(dloss[0]) / double(n);
  GRID_LOOP(i, n) {
    const double v = x[i];
    const double s = v >= 0 ? 1.0 / (1.0 + exp(-v)) : exp(v) / (1.0 + exp(v));
    dx[i] = static_cast<T>(scale * (s - double(t[i])));
  }
}

template <class T>
__global__ void rmsprop_k(T* p, const T* g, T* s, int64_t n, T lr, T alpha, T eps) {
  GRID_LOOP(i, n) {
    s[i] = alpha * s[i] + (T(1) - alpha) * g[i] * g[i];
    p[i] -= lr * g[i] / (sqrt(s[i]) + eps);
  }
}

template <class T>
__global__ void adam_k(T* p, const T* g, T* m, T* v, int64_t n, T step_size, T b1, T b2, T sq, T eps) {
  GRID_LOOP(i, n) {
    m[i] = b1 * m[i] + (T(1) - b1) * g[i];
    v[i] = b2 * v[i] + (T(1) - b2) * g[i] * g[i];
    p[i] -= step_size * m[i] / (sqrt(v[i]) / sq + eps);
  }
}

template <class T>
__global__ void sgd_k(T* p, const T* g, T* buf, int64_t n, T lr, T mom, bool first) {
  GRID_LOOP(i, n) {
    T d = g[i];
    if (buf) {
      buf[i] = first ? d : mom * buf[i] + d;
      d = buf[i];
    }
    p[i] -= lr * d;
  }
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
  WN_CUDA_DISPATCH(x.dtype(), T,
                   { unary_k<T><<<grid_for(x.numel()), 256>>>(int(op), x.data<T>(), y.data<T>(), x.numel(), T(a), T(b)); });
  cuda_check(cudaGetLastError(), "unary");
}

void CudaBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx, double a,
                                 double b) {
  WN_CUDA_DISPATCH(x.dtype(), T, {
    unary_bwd_k<T><<<grid_for(x.numel()), 256>>>(int(op), x.data<T>(), y.data<T>(), dy.data<T>(), dx.data<T>(),
                                                   x.numel(), T(a), T(b));
  });
  cuda_check(cudaGetLastError(), "unary backward");
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  if (out.numel() >= (int64_t(1) << 31)) throw std::runtime_error("tensor too large for the CUDA backend's 32-bit indexing");
  const int total = int(out.numel());
  WN_CUDA_DISPATCH(a.dtype(), T, {
    if (a.numel() == total && b.numel() == total) {
      binary_same_k<T><<<grid_for(total), 256>>>(int(op), a.data<T>(), b.data<T>(), out.data<T>(), total);
    } else {
      Bcast c = make_bcast(out.shape(), a.shape(), b.shape());
      binary_k<T><<<grid_for(total), 256>>>(int(op), a.data<T>(), b.data<T>(), out.data<T>(), c, total);
    }
  });
  cuda_check(cudaGetLastError(), "binary");
}

void CudaBackend::sum_to(const Tensor& x, Tensor& out) {
  if (x.numel() >= (int64_t(1) << 31)) throw std::runtime_error("tensor too large for the CUDA backend's 32-bit indexing");
  const int rank = x.rank(), pad = 4 - rank;
  // Merge adjacent dims of equal status (kept or reduced), dropping size-1 dims.
  std::vector<int64_t> dn;
  std::vector<bool> dred;
  for (int i = 0; i < 4; ++i) {
    const int64_t xd = i >= pad ? x.dim(i - pad) : 1, od = i >= pad ? out.dim(i - pad) : 1;
    if (xd == 1) continue;
    const bool red = od == 1;
    if (!dn.empty() && dred.back() == red)
      dn.back() *= xd;
    else
      dn.push_back(xd), dred.push_back(red);
  }
  Reduce r{};
  r.R = 1;
  int64_t acc = 1;
  const int nd = static_cast<int>(dn.size());
  for (int i = nd - 1; i >= 0; --i) {
    r.n[i] = int(dn[i]);
    r.xs[i] = int(acc);
    acc *= dn[i];
  }
  for (int i = 0; i < nd; ++i) {
    if (dred[i]) {
      r.red[r.nr++] = i;
      r.R *= r.n[i];
    } else {
      r.kept[r.nk++] = i;
    }
  }
  const int n_out = int(out.numel());
  // Chunks of a fixed length (a function of the shape only): deterministic.
  const int len = 8192, chunks = (r.R + len - 1) / len;
  WN_CUDA_DISPATCH(x.dtype(), T, {
    if (chunks > 1 && int64_t(n_out) * chunks <= 65536) {
      CudaScratch partial(*this, sizeof(double) * n_out * chunks);
      sum_chunks_k<T><<<unsigned(n_out * chunks), 1024>>>(x.data<T>(), partial.as<double>(), r, chunks, len);
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
    rmsprop_k<T><<<grid_for(p.numel()), 256>>>(p.data<T>(), g.data<T>(), s.data<T>(), p.numel(), T(lr), T(alpha), T(eps));
  });
  cuda_check(cudaGetLastError(), "rmsprop");
}

void CudaBackend::adam_update(Tensor& p, const Tensor& g, Tensor& m, Tensor& v, double lr, double b1, double b2,
                              double eps, int64_t step) {
  const double bc1 = 1 - std::pow(b1, double(step)), bc2 = 1 - std::pow(b2, double(step));
  WN_CUDA_DISPATCH(p.dtype(), T, {
    adam_k<T><<<grid_for(p.numel()), 256>>>(p.data<T>(), g.data<T>(), m.data<T>(), v.data<T>(), p.numel(), T(lr / bc1),
                                             T(b1), T(b2), T(std::sqrt(bc2)), T(eps));
  });
  cuda_check(cudaGetLastError(), "adam");
}

void CudaBackend::sgd_update(Tensor& p, const Tensor& g, Tensor& buf, double lr, double momentum, bool first) {
  WN_CUDA_DISPATCH(p.dtype(), T, {
    sgd_k<T><<<grid_for(p.numel()), 256>>>(p.data<T>(), g.data<T>(), buf.defined() ? buf.data<T>() : nullptr, p.numel(),
                                            T(lr), T(momentum), first);
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
