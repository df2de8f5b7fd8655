// CUDA convolutions and image-plane kernels: im2col for the whole batch into (K, N*P),
// cuBLAS GEMMs, col2im as a gather (each input pixel sums its own taps: no atomics, so
// deterministic), NCHW <-> (C, N*P) transposes; pooling, upsampling, window copy, PReLU.
#include "engine/backend/cuda/cuda_backend.h"
#include "engine/backend/cuda/cuda_common.cuh"

namespace wn {

namespace {

#define GRID_LOOP(i, n) for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

template <class T>
__global__ void im2col_k(ConvGeom g, const T* x, T* col) {
  const int64_t P = g.oh * g.ow, NP = g.n * P, K = g.cin * g.kh * g.kw;
  GRID_LOOP(i, K * NP) {
    const int64_t k = i / NP, c = i % NP;
    const int64_t b = c / P, p = c % P, oy = p / g.ow, ox = p % g.ow;
    const int64_t kj = k % g.kw, ki = (k / g.kw) % g.kh, ci = k / (g.kw * g.kh);
    const int64_t iy = oy * g.sh - g.ph + ki, ix = ox * g.sw - g.pw + kj;
    col[i] = (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) ? x[((b * g.cin + ci) * g.h + iy) * g.w + ix] : T(0);
  }
}

template <class T>
__global__ void col2im_k(ConvGeom g, const T* col, T* dx) {
  const int64_t P = g.oh * g.ow, NP = g.n * P;
  GRID_LOOP(i, g.n * g.cin * g.h * g.w) {
    const int64_t ix = i % g.w, iy = (i / g.w) % g.h, ci = (i / (g.w * g.h)) % g.cin, b = i / (g.w * g.h * g.cin);
    T acc = T(0);
    for (int64_t ki = 0; ki < g.kh; ++ki) {
      const int64_t ty = iy + g.ph - ki;
      if (ty < 0 || ty % g.sh) continue;
      const int64_t oy = ty / g.sh;
      if (oy >= g.oh) continue;
      for (int64_t kj = 0; kj < g.kw; ++kj) {
        const int64_t tx = ix + g.pw - kj;
        if (tx < 0 || tx % g.sw) continue;
        const int64_t ox = tx / g.sw;
        if (ox >= g.ow) continue;
        acc += col[((ci * g.kh + ki) * g.kw + kj) * NP + b * P + oy * g.ow + ox];
      }
    }
    dx[i] = acc;
  }
}

// (N, C, P) -> (C, N*P).
template <class T>
__global__ void nchw_to_cnp_k(const T* src, int64_t n, int64_t c, int64_t p, T* dst) {
  GRID_LOOP(i, n * c * p) {
    const int64_t j = i % p, ch = (i / p) % c, b = i / (p * c);
    dst[(ch * n + b) * p + j] = src[i];
  }
}

// (C, N*P) -> (N, C, P), plus bias[c].
template <class T>
__global__ void cnp_to_nchw_k(const T* src, int64_t n, int64_t c, int64_t p, const T* bias, T* dst) {
  GRID_LOOP(i, n * c * p) {
    const int64_t j = i % p, ch = (i / p) % c, b = i / (p * c);
    dst[i] = src[(ch * n + b) * p + j] + (bias ? bias[ch] : T(0));
  }
}

template <class T>
__global__ void pool_k(const T* x, T* y, int64_t planes, int64_t h, int64_t w) {
  const int64_t oh = h / 2, ow = w / 2;
  GRID_LOOP(i, planes * oh * ow) {
    const int64_t j = i % ow, r = (i / ow) % oh, p = i / (ow * oh);
    const T* a = x + (p * h + 2 * r) * w + 2 * j;
    y[i] = T(0.25) * (a[0] + a[1] + a[w] + a[w + 1]);
  }
}

template <class T>
__global__ void pool_bwd_k(const T* dy, T* dx, int64_t planes, int64_t h, int64_t w) {
  GRID_LOOP(i, planes * h * w) {
    const int64_t j = i % w, r = (i / w) % h, p = i / (w * h);
    dx[i] = T(0.25) * dy[(p * (h / 2) + r / 2) * (w / 2) + j / 2];
  }
}

template <class T>
__global__ void up_k(const T* x, T* y, int64_t planes, int64_t h, int64_t w) {
  GRID_LOOP(i, planes * 4 * h * w) {
    const int64_t j = i % (2 * w), r = (i / (2 * w)) % (2 * h), p = i / (4 * w * h);
    y[i] = x[(p * h + r / 2) * w + j / 2];
  }
}

template <class T>
__global__ void up_bwd_k(const T* dy, T* dx, int64_t planes, int64_t h, int64_t w) {
  GRID_LOOP(i, planes * h * w) {
    const int64_t j = i % w, r = (i / w) % h, p = i / (w * h);
    const T* a = dy + (p * 2 * h + 2 * r) * 2 * w + 2 * j;
    dx[i] = a[0] + a[1] + a[2 * w] + a[2 * w + 1];
  }
}

template <class T>
__global__ void window_k(const T* s, T* d, int64_t planes, int64_t sh, int64_t sw, int64_t dh, int64_t dw, int64_t top,
                         int64_t left) {
  GRID_LOOP(i, planes * dh * dw) {
    const int64_t j = i % dw, r = (i / dw) % dh, p = i / (dw * dh);
    const int64_t si = r - top, sj = j - left;
    d[i] = (si >= 0 && si < sh && sj >= 0 && sj < sw) ? s[(p * sh + si) * sw + sj] : T(0);
  }
}

template <class T>
__global__ void prelu_k(const T* x, const T* a, T* y, int64_t total, int64_t c, int64_t r) {
  GRID_LOOP(i, total) {
    const T v = x[i];
    y[i] = v > T(0) ? v : a[(i / r) % c] * v;
  }
}

template <class T>
__global__ void prelu_dx_k(const T* x, const T* a, const T* dy, T* dx, int64_t total, int64_t c, int64_t r) {
  GRID_LOOP(i, total) dx[i] = x[i] > T(0) ? dy[i] : a[(i / r) % c] * dy[i];
}

// One block per channel: da[c] = sum of dy * x where x <= 0.
template <class T>
__global__ void prelu_da_k(const T* x, const T* dy, T* da, int64_t n, int64_t c, int64_t r) {
  const int64_t ch = blockIdx.x;
  double acc = 0;
  for (int64_t q = threadIdx.x; q < n * r; q += blockDim.x) {
    const int64_t off = ((q / r) * c + ch) * r + q % r;
    if (x[off] <= T(0)) acc += double(dy[off]) * double(x[off]);
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) da[ch] = static_cast<T>(acc);
}

#define WN_CUDA_DISPATCH(dtype, T, ...)   \
  if ((dtype) == DType::F32) {            \
    using T = float;                      \
    __VA_ARGS__;                          \
  } else {                                \
    using T = double;                     \
    __VA_ARGS__;                          \
  }

// (N, C, rest) sizes of a tensor with channels on dim 1.
struct Ncr {
  int64_t n, c, r;
};

// Device scratch released at scope exit.
struct Scratch {
  CudaBackend& be;
  size_t bytes;
  void* p;
  Scratch(CudaBackend& b, size_t n) : be(b), bytes(n), p(b.scratch(n)) {}
  ~Scratch() { be.release(p, bytes); }
  template <class T>
  T* as() const {
    return static_cast<T*>(p);
  }
};

}  // namespace

void CudaBackend::conv2d_forward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y) {
  const int64_t K = g.cin * g.kh * g.kw, P = g.oh * g.ow, NP = g.n * P;
  WN_CUDA_DISPATCH(x.dtype(), T, {
    Scratch col(*this, sizeof(T) * K * NP), yt(*this, sizeof(T) * g.cout * NP);
    im2col_k<T><<<grid_for(K * NP), 256>>>(g, x.data<T>(), col.as<T>());
    cuda_gemm<T>(*this, false, false, g.cout, NP, K, T(1), w.data<T>(), K, col.as<T>(), NP, T(0), yt.as<T>(), NP);
    cnp_to_nchw_k<T><<<grid_for(g.cout * NP), 256>>>(yt.as<T>(), g.n, g.cout, P, bias.defined() ? bias.data<T>() : nullptr,
                                                      y.data<T>());
  });
  cuda_check(cudaGetLastError(), "conv2d forward");
}

void CudaBackend::conv2d_backward_data(const ConvGeom& g, const Tensor& dy, const Tensor& w, Tensor& dx) {
  const int64_t K = g.cin * g.kh * g.kw, P = g.oh * g.ow, NP = g.n * P;
  WN_CUDA_DISPATCH(dy.dtype(), T, {
    Scratch dyt(*this, sizeof(T) * g.cout * NP), col(*this, sizeof(T) * K * NP);
    nchw_to_cnp_k<T><<<grid_for(g.cout * NP), 256>>>(dy.data<T>(), g.n, g.cout, P, dyt.as<T>());
    cuda_gemm<T>(*this, true, false, K, NP, g.cout, T(1), w.data<T>(), K, dyt.as<T>(), NP, T(0), col.as<T>(), NP);
    col2im_k<T><<<grid_for(g.n * g.cin * g.h * g.w), 256>>>(g, col.as<T>(), dx.data<T>());
  });
  cuda_check(cudaGetLastError(), "conv2d backward data");
}

void CudaBackend::conv2d_backward_weight(const ConvGeom& g, const Tensor& x, const Tensor& dy, Tensor& dw) {
  const int64_t K = g.cin * g.kh * g.kw, P = g.oh * g.ow, NP = g.n * P;
  WN_CUDA_DISPATCH(x.dtype(), T, {
    Scratch dyt(*this, sizeof(T) * g.cout * NP), col(*this, sizeof(T) * K * NP);
    nchw_to_cnp_k<T><<<grid_for(g.cout * NP), 256>>>(dy.data<T>(), g.n, g.cout, P, dyt.as<T>());
    im2col_k<T><<<grid_for(K * NP), 256>>>(g, x.data<T>(), col.as<T>());
    cuda_gemm<T>(*this, false, true, g.cout, K, NP, T(1), dyt.as<T>(), NP, col.as<T>(), NP, T(0), dw.data<T>(), K);
  });
  cuda_check(cudaGetLastError(), "conv2d backward weight");
}

void CudaBackend::avg_pool2_forward(const Tensor& x, Tensor& y) {
  WN_CUDA_DISPATCH(x.dtype(), T, {
    pool_k<T><<<grid_for(y.numel()), 256>>>(x.data<T>(), y.data<T>(), x.dim(0) * x.dim(1), x.dim(2), x.dim(3));
  });
  cuda_check(cudaGetLastError(), "avg_pool2");
}

void CudaBackend::avg_pool2_backward(const Tensor& dy, Tensor& dx) {
  WN_CUDA_DISPATCH(dy.dtype(), T, {
    pool_bwd_k<T><<<grid_for(dx.numel()), 256>>>(dy.data<T>(), dx.data<T>(), dx.dim(0) * dx.dim(1), dx.dim(2), dx.dim(3));
  });
  cuda_check(cudaGetLastError(), "avg_pool2 backward");
}

void CudaBackend::upsample2_forward(const Tensor& x, Tensor& y) {
  WN_CUDA_DISPATCH(x.dtype(), T, {
    up_k<T><<<grid_for(y.numel()), 256>>>(x.data<T>(), y.data<T>(), x.dim(0) * x.dim(1), x.dim(2), x.dim(3));
  });
  cuda_check(cudaGetLastError(), "upsample2");
}

void CudaBackend::upsample2_backward(const Tensor& dy, Tensor& dx) {
  WN_CUDA_DISPATCH(dy.dtype(), T, {
    up_bwd_k<T><<<grid_for(dx.numel()), 256>>>(dy.data<T>(), dx.data<T>(), dx.dim(0) * dx.dim(1), dx.dim(2), dx.dim(3));
  });
  cuda_check(cudaGetLastError(), "upsample2 backward");
}

void CudaBackend::window_copy(const Tensor& src, Tensor& dst, int64_t top, int64_t left) {
  WN_CUDA_DISPATCH(src.dtype(), T, {
    window_k<T><<<grid_for(dst.numel()), 256>>>(src.data<T>(), dst.data<T>(), src.dim(0) * src.dim(1), src.dim(2),
                                                 src.dim(3), dst.dim(2), dst.dim(3), top, left);
  });
  cuda_check(cudaGetLastError(), "window copy");
}

void CudaBackend::prelu_forward(const Tensor& x, const Tensor& a, Tensor& y) {
  const Ncr d{x.dim(0), x.dim(1), x.numel() / (x.dim(0) * x.dim(1))};
  WN_CUDA_DISPATCH(x.dtype(), T, {
    prelu_k<T><<<grid_for(x.numel()), 256>>>(x.data<T>(), a.data<T>(), y.data<T>(), x.numel(), d.c, d.r);
  });
  cuda_check(cudaGetLastError(), "prelu");
}

void CudaBackend::prelu_backward(const Tensor& x, const Tensor& a, const Tensor& dy, Tensor& dx, Tensor& da) {
  const Ncr d{x.dim(0), x.dim(1), x.numel() / (x.dim(0) * x.dim(1))};
  WN_CUDA_DISPATCH(x.dtype(), T, {
    if (dx.defined())
      prelu_dx_k<T><<<grid_for(x.numel()), 256>>>(x.data<T>(), a.data<T>(), dy.data<T>(), dx.data<T>(), x.numel(), d.c, d.r);
    if (da.defined()) prelu_da_k<T><<<unsigned(d.c), 1024>>>(x.data<T>(), dy.data<T>(), da.data<T>(), d.n, d.c, d.r);
  });
  cuda_check(cudaGetLastError(), "prelu backward");
}

}  // namespace wn
