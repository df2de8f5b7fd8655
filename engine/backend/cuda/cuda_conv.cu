// CUDA convolutions and image-plane kernels. Convolutions go to cuDNN where it loads and
// takes the geometry (cudnn_conv.h); otherwise, our own: im2col for the batch into (K, N*P),
// cuBLAS GEMMs, col2im as a gather (each input pixel sums its own taps: no atomics, so
// deterministic), NCHW <-> (C, N*P) transposes; pooling, upsampling, window copy.
#include "engine/backend/cuda/cuda_backend.h"
#include "engine/backend/cuda/cuda_common.cuh"
#include "engine/backend/cuda/cudnn_conv.h"

#include <stdexcept>

namespace wn {

namespace {

// The geometry in 32-bit integers (index arithmetic in 64 bits is several times slower).
struct G32 {
  int n, cin, h, w, cout, kh, kw, sh, sw, ph, pw, oh, ow;
};
G32 g32(const ConvGeom& g) {
  if (double(g.n) * g.cin * g.kh * g.kw * g.oh * g.ow >= 2147483647.0 || double(g.n) * g.cin * g.h * g.w >= 2147483647.0 ||
      double(g.n) * g.cout * g.oh * g.ow >= 2147483647.0)
    throw std::runtime_error("convolution too large for the CUDA backend's 32-bit indexing; use a smaller batch");
  return {int(g.n), int(g.cin), int(g.h), int(g.w), int(g.cout), int(g.kh), int(g.kw), int(g.sh), int(g.sw),
          int(g.ph), int(g.pw), int(g.oh), int(g.ow)};
}

// One thread per (input channel ci, column c = image b, output pixel p): writes the kh*kw
// rows of ci in column c. Consecutive threads take consecutive columns, so every store is
// coalesced, and the Cin * N * P threads fill the GPU even where N * P is small (one
// thread per column with a serial loop over all K rows left most of it idle).
template <class T>
__global__ void im2col_k(G32 g, const T* __restrict__ x, T* __restrict__ col) {
  const int P = g.oh * g.ow, NP = g.n * P, total = g.cin * NP, taps = g.kh * g.kw;
  GRID_LOOP(t, total) {
    const int ci = t / NP, c = t - ci * NP;
    const int b = c / P, p = c - b * P, oy = p / g.ow, ox = p - oy * g.ow;
    const int y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;
    const T* xc = x + (size_t(b) * g.cin + ci) * g.h * g.w;
    T* out = col + size_t(ci) * taps * NP + c;
    for (int ki = 0; ki < g.kh; ++ki) {
      const int iy = y0 + ki;
      const bool row_ok = iy >= 0 && iy < g.h;
      for (int kj = 0; kj < g.kw; ++kj, out += NP) {
        const int ix = x0 + kj;
        *out = (row_ok && ix >= 0 && ix < g.w) ? xc[iy * g.w + ix] : T(0);
      }
    }
  }
}

// One thread per input element: sums the columns that read it (a gather, no atomics).
template <class T>
__global__ void col2im_k(G32 g, const T* __restrict__ col, T* __restrict__ dx) {
  const int P = g.oh * g.ow, NP = g.n * P, total = g.n * g.cin * g.h * g.w;
  GRID_LOOP(i, total) {
    const int ix = i % g.w, t1 = i / g.w, iy = t1 % g.h, t2 = t1 / g.h, ci = t2 % g.cin, b = t2 / g.cin;
    T acc = T(0);
    for (int ki = 0; ki < g.kh; ++ki) {
      const int ty = iy + g.ph - ki;
      if (ty < 0) break;
      if (ty % g.sh) continue;
      const int oy = ty / g.sh;
      if (oy >= g.oh) continue;
      for (int kj = 0; kj < g.kw; ++kj) {
        const int tx = ix + g.pw - kj;
        if (tx < 0) break;
        if (tx % g.sw) continue;
        const int ox = tx / g.sw;
        if (ox >= g.ow) continue;
        acc += col[size_t((ci * g.kh + ki) * g.kw + kj) * NP + b * P + oy * g.ow + ox];
      }
    }
    dx[i] = acc;
  }
}

// (N, C, P) -> (C, N*P).
template <class T>
__global__ void nchw_to_cnp_k(const T* __restrict__ src, int n, int c, int p, T* __restrict__ dst) {
  const int total = n * c * p;
  GRID_LOOP(i, total) {
    const int j = i % p, t = i / p, ch = t % c, b = t / c;
    dst[(ch * n + b) * p + j] = src[i];
  }
}

// (C, N*P) -> (N, C, P), plus bias[c].
template <class T>
__global__ void cnp_to_nchw_k(const T* __restrict__ src, int n, int c, int p, const T* __restrict__ bias,
                              T* __restrict__ dst) {
  const int total = n * c * p;
  GRID_LOOP(i, total) {
    const int j = i % p, t = i / p, ch = t % c, b = t / c;
    dst[i] = src[(ch * n + b) * p + j] + (bias ? bias[ch] : T(0));
  }
}

template <class T>
__global__ void pool_k(const T* x, T* y, int planes, int h, int w) {
  const int oh = h / 2, ow = w / 2;
  GRID_LOOP(i, planes * oh * ow) {
    const int j = i % ow, r = (i / ow) % oh, p = i / (ow * oh);
    const T* a = x + (p * h + 2 * r) * w + 2 * j;
    y[i] = T(0.25) * (a[0] + a[1] + a[w] + a[w + 1]);
  }
}

template <class T>
__global__ void pool_bwd_k(const T* dy, T* dx, int planes, int h, int w) {
  GRID_LOOP(i, planes * h * w) {
    const int j = i % w, r = (i / w) % h, p = i / (w * h);
    dx[i] = T(0.25) * dy[(p * (h / 2) + r / 2) * (w / 2) + j / 2];
  }
}

template <class T>
__global__ void up_k(const T* x, T* y, int planes, int h, int w) {
  GRID_LOOP(i, planes * 4 * h * w) {
    const int j = i % (2 * w), r = (i / (2 * w)) % (2 * h), p = i / (4 * w * h);
    y[i] = x[(p * h + r / 2) * w + j / 2];
  }
}

template <class T>
__global__ void up_bwd_k(const T* dy, T* dx, int planes, int h, int w) {
  GRID_LOOP(i, planes * h * w) {
    const int j = i % w, r = (i / w) % h, p = i / (w * h);
    const T* a = dy + (p * 2 * h + 2 * r) * 2 * w + 2 * j;
    dx[i] = a[0] + a[1] + a[2 * w] + a[2 * w + 1];
  }
}

template <class T>
__global__ void window_k(const T* s, T* d, int planes, int sh, int sw, int dh, int dw, int top, int left) {
  GRID_LOOP(i, planes * dh * dw) {
    const int j = i % dw, r = (i / dw) % dh, p = i / (dw * dh);
    const int si = r - top, sj = j - left;
    d[i] = (si >= 0 && si < sh && sj >= 0 && sj < sw) ? s[(p * sh + si) * sw + sj] : T(0);
  }
}

// y[i] += bias[channel of i], y (N, C, P).
template <class T>
__global__ void add_bias_k(T* __restrict__ y, const T* __restrict__ bias, int total, int c, int p) {
  GRID_LOOP(i, total) y[i] += bias[(i / p) % c];
}

}  // namespace

void CudaBackend::conv2d_forward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y) {
  if (use_cudnn_ && cudnn_conv_forward(*this, g, x, w, y)) {
    if (bias.defined()) {
      if (y.numel() >= 2147483647) throw std::runtime_error("convolution output too large for the CUDA bias kernel");
      WN_CUDA_DISPATCH(x.dtype(), T, {
        add_bias_k<T><<<grid_for(y.numel()), 256>>>(y.data<T>(), bias.data<T>(), int(y.numel()), int(g.cout),
                                                     int(g.oh * g.ow));
      });
    }
    cuda_check(cudaGetLastError(), "conv2d forward bias");
    return;
  }
  const int64_t K = g.cin * g.kh * g.kw, P = g.oh * g.ow, NP = g.n * P;
  WN_CUDA_DISPATCH(x.dtype(), T, {
    CudaScratch col(*this, sizeof(T) * K * NP), yt(*this, sizeof(T) * g.cout * NP);
    im2col_k<T><<<grid_for(g.cin * NP), 256>>>(g32(g), x.data<T>(), col.as<T>());
    cuda_gemm<T>(*this, false, false, g.cout, NP, K, T(1), w.data<T>(), K, col.as<T>(), NP, T(0), yt.as<T>(), NP);
    cnp_to_nchw_k<T><<<grid_for(g.cout * NP), 256>>>(yt.as<T>(), int(g.n), int(g.cout), int(P), bias.defined() ? bias.data<T>() : nullptr,
                                                      y.data<T>());
  });
  cuda_check(cudaGetLastError(), "conv2d forward");
}

void CudaBackend::conv2d_backward_data(const ConvGeom& g, const Tensor& dy, const Tensor& w, Tensor& dx) {
  if (use_cudnn_ && cudnn_conv_backward_data(*this, g, dy, w, dx)) return;
  const int64_t K = g.cin * g.kh * g.kw, P = g.oh * g.ow, NP = g.n * P;
  WN_CUDA_DISPATCH(dy.dtype(), T, {
    CudaScratch dyt(*this, sizeof(T) * g.cout * NP), col(*this, sizeof(T) * K * NP);
    nchw_to_cnp_k<T><<<grid_for(g.cout * NP), 256>>>(dy.data<T>(), int(g.n), int(g.cout), int(P), dyt.as<T>());
    cuda_gemm<T>(*this, true, false, K, NP, g.cout, T(1), w.data<T>(), K, dyt.as<T>(), NP, T(0), col.as<T>(), NP);
    col2im_k<T><<<grid_for(g.n * g.cin * g.h * g.w), 256>>>(g32(g), col.as<T>(), dx.data<T>());
  });
  cuda_check(cudaGetLastError(), "conv2d backward data");
}

void CudaBackend::conv2d_backward_weight(const ConvGeom& g, const Tensor& x, const Tensor& dy, Tensor& dw) {
  if (use_cudnn_ && cudnn_conv_backward_weight(*this, g, x, dy, dw)) return;
  const int64_t K = g.cin * g.kh * g.kw, P = g.oh * g.ow, NP = g.n * P;
  WN_CUDA_DISPATCH(x.dtype(), T, {
    CudaScratch dyt(*this, sizeof(T) * g.cout * NP), col(*this, sizeof(T) * K * NP);
    nchw_to_cnp_k<T><<<grid_for(g.cout * NP), 256>>>(dy.data<T>(), int(g.n), int(g.cout), int(P), dyt.as<T>());
    im2col_k<T><<<grid_for(g.cin * NP), 256>>>(g32(g), x.data<T>(), col.as<T>());
    // dW (Cout x K) reduces over N*P. A small dW with a long reduction leaves most of
    // the GPU idle in one GEMM, so the reduction is split into slices computed side by
    // side and summed in a fixed order (deterministic).
    const int64_t mn = g.cout * K;
    int64_t slices = 1;
    while (slices < 64 && mn * slices < 1024 * 1024 && NP / (slices * 2) >= 1024) slices *= 2;
    if (slices == 1) {
      cuda_gemm<T>(*this, false, true, g.cout, K, NP, T(1), dyt.as<T>(), NP, col.as<T>(), NP, T(0), dw.data<T>(), K);
    } else {
      const int64_t kc = NP / slices, rest = NP - kc * slices;
      CudaScratch parts(*this, sizeof(T) * mn * (slices + 1));
      cuda_gemm_batched<T>(*this, false, true, g.cout, K, kc, dyt.as<T>(), NP, kc, col.as<T>(), NP, kc, parts.as<T>(), K,
                           mn, slices);
      if (rest)
        cuda_gemm<T>(*this, false, true, g.cout, K, rest, T(1), dyt.as<T>() + slices * kc, NP,
                     col.as<T>() + slices * kc, NP, T(0), parts.as<T>() + slices * mn, K);
      sum_partials_k<<<grid_for(mn), 256>>>(parts.as<T>(), int(mn), int(slices + (rest ? 1 : 0)), int64_t(1), mn,
                                             dw.data<T>());
    }
  });
  cuda_check(cudaGetLastError(), "conv2d backward weight");
}

namespace {
// Launches a plane kernel k(src, dst, planes, h, w) with one thread per element of dst;
// planes, h and w are those of `dims`, the op's input side (x, or dx in a backward).
template <class T>
void launch_planes(void (*k)(const T*, T*, int, int, int), const Tensor& src, Tensor& dst, const Tensor& dims,
                   const char* what) {
  k<<<grid_for(dst.numel()), 256>>>(src.data<T>(), dst.data<T>(), int(dims.dim(0) * dims.dim(1)), int(dims.dim(2)),
                                    int(dims.dim(3)));
  cuda_check(cudaGetLastError(), what);
}
}  // namespace

void CudaBackend::avg_pool2_forward(const Tensor& x, Tensor& y) {
  WN_CUDA_DISPATCH(x.dtype(), T, { launch_planes<T>(pool_k<T>, x, y, x, "avg_pool2"); });
}

void CudaBackend::avg_pool2_backward(const Tensor& dy, Tensor& dx) {
  WN_CUDA_DISPATCH(dy.dtype(), T, { launch_planes<T>(pool_bwd_k<T>, dy, dx, dx, "avg_pool2 backward"); });
}

void CudaBackend::upsample2_forward(const Tensor& x, Tensor& y) {
  WN_CUDA_DISPATCH(x.dtype(), T, { launch_planes<T>(up_k<T>, x, y, x, "upsample2"); });
}

void CudaBackend::upsample2_backward(const Tensor& dy, Tensor& dx) {
  WN_CUDA_DISPATCH(dy.dtype(), T, { launch_planes<T>(up_bwd_k<T>, dy, dx, dx, "upsample2 backward"); });
}

void CudaBackend::window_copy(const Tensor& src, Tensor& dst, int64_t top, int64_t left) {
  WN_CUDA_DISPATCH(src.dtype(), T, {
    window_k<T><<<grid_for(dst.numel()), 256>>>(src.data<T>(), dst.data<T>(), src.dim(0) * src.dim(1), src.dim(2),
                                                 src.dim(3), dst.dim(2), dst.dim(3), top, left);
  });
  cuda_check(cudaGetLastError(), "window copy");
}

}  // namespace wn
