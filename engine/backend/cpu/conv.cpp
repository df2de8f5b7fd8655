// CPU convolution kernels: im2col / col2im and Eigen GEMMs. Two layouts:
// - per image, when the output plane has at least kPerImage pixels: each oneTBB task
//   unfolds one image and runs its own GEMM straight into the NCHW output;
// - batched, for small planes: the whole batch is unfolded into one (K, N*P) matrix
//   so the GEMM is wide enough to run near peak; results are transposed back.
// The weight gradient always uses the batched form (one GEMM reducing over N*P).
#include <algorithm>
#include <cstring>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/parallel.h"

namespace wn {

namespace {

constexpr int64_t kPerImage = 256;

// Unfolds channel ci of one image x_img (Cin, H, W) into rows ci*KH*KW.. of dst,
// writing P = OH*OW columns starting at dst (leading dimension ld).
template <class T>
void im2col_channel(const ConvGeom& g, const T* x_img, int64_t ci, T* dst, int64_t ld) {
  const T* xc = x_img + ci * g.h * g.w;
  for (int64_t ki = 0; ki < g.kh; ++ki)
    for (int64_t kj = 0; kj < g.kw; ++kj) {
      T* row = dst + ((ci * g.kh + ki) * g.kw + kj) * ld;
      for (int64_t oy = 0; oy < g.oh; ++oy) {
        T* out = row + oy * g.ow;
        const int64_t iy = oy * g.sh - g.ph + ki;
        if (iy < 0 || iy >= g.h) {
          std::fill(out, out + g.ow, T(0));
          continue;
        }
        const T* xr = xc + iy * g.w;
        if (g.sw == 1) {
          for (int64_t ox = 0; ox < g.ow; ++ox) {
            const int64_t ix = ox - g.pw + kj;
            out[ox] = (ix >= 0 && ix < g.w) ? xr[ix] : T(0);
          }
        } else {
          for (int64_t ox = 0; ox < g.ow; ++ox) {
            const int64_t ix = ox * g.sw - g.pw + kj;
            out[ox] = (ix >= 0 && ix < g.w) ? xr[ix] : T(0);
          }
        }
      }
    }
}

// Folds the rows of channel ci back: dx_img[ci] = sum of the unfolded columns.
template <class T>
void col2im_channel(const ConvGeom& g, const T* src, int64_t ld, int64_t ci, T* dx_img) {
  T* dc = dx_img + ci * g.h * g.w;
  std::fill(dc, dc + g.h * g.w, T(0));
  for (int64_t ki = 0; ki < g.kh; ++ki)
    for (int64_t kj = 0; kj < g.kw; ++kj) {
      const T* row = src + ((ci * g.kh + ki) * g.kw + kj) * ld;
      for (int64_t oy = 0; oy < g.oh; ++oy) {
        const int64_t iy = oy * g.sh - g.ph + ki;
        if (iy < 0 || iy >= g.h) continue;
        const T* in = row + oy * g.ow;
        T* dr = dc + iy * g.w;
        for (int64_t ox = 0; ox < g.ow; ++ox) {
          const int64_t ix = ox * g.sw - g.pw + kj;
          if (ix >= 0 && ix < g.w) dr[ix] += in[ox];
        }
      }
    }
}

// Unfolds the whole batch into col (K, N*P).
template <class T>
void im2col_batch(const ConvGeom& g, const T* x, T* col) {
  const int64_t P = g.oh * g.ow, NP = g.n * P;
  parallel_for(g.n * g.cin, 1, [&](int64_t s, int64_t e) {
    for (int64_t t = s; t < e; ++t) {
      int64_t b = t / g.cin, ci = t % g.cin;
      im2col_channel(g, x + b * g.cin * g.h * g.w, ci, col + b * P, NP);
    }
  });
}

// (N, C, P) -> (C, N*P).
template <class T>
void nchw_to_cnp(const T* src, int64_t n, int64_t c, int64_t p, T* dst) {
  parallel_for(n * c, std::max<int64_t>(1, 4096 / p), [&](int64_t s, int64_t e) {
    for (int64_t t = s; t < e; ++t) {
      int64_t b = t / c, ch = t % c;
      std::memcpy(dst + ch * n * p + b * p, src + t * p, sizeof(T) * p);
    }
  });
}

// (C, N*P) -> (N, C, P), adding bias[c] when given.
template <class T>
void cnp_to_nchw(const T* src, int64_t n, int64_t c, int64_t p, const T* bias, T* dst) {
  parallel_for(n * c, std::max<int64_t>(1, 4096 / p), [&](int64_t s, int64_t e) {
    for (int64_t t = s; t < e; ++t) {
      int64_t b = t / c, ch = t % c;
      const T* in = src + ch * n * p + b * p;
      T* out = dst + t * p;
      const T add = bias ? bias[ch] : T(0);
      for (int64_t j = 0; j < p; ++j) out[j] = in[j] + add;
    }
  });
}

template <class T>
void conv_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
  const int64_t K = g.cin * g.kh * g.kw, P = g.oh * g.ow;
  if (P >= kPerImage) {
    parallel_for(g.n, 1, [&](int64_t s, int64_t e) {
      CpuScratch col(sizeof(T) * K * P);
      for (int64_t b = s; b < e; ++b) {
        const T* xb = x + b * g.cin * g.h * g.w;
        for (int64_t ci = 0; ci < g.cin; ++ci) im2col_channel(g, xb, ci, col.as<T>(), P);
        T* yb = y + b * g.cout * P;
        cpu_gemm<T>(false, false, g.cout, P, K, T(1), w, K, col.as<T>(), P, T(0), yb, P);
        if (bias)
          for (int64_t co = 0; co < g.cout; ++co)
            for (int64_t j = 0; j < P; ++j) yb[co * P + j] += bias[co];
      }
    });
    return;
  }
  const int64_t NP = g.n * P;
  CpuScratch col(sizeof(T) * K * NP), yt(sizeof(T) * g.cout * NP);
  im2col_batch(g, x, col.as<T>());
  cpu_gemm<T>(false, false, g.cout, NP, K, T(1), w, K, col.as<T>(), NP, T(0), yt.as<T>(), NP);
  cnp_to_nchw(yt.as<T>(), g.n, g.cout, P, bias, y);
}

template <class T>
void conv_backward_data(const ConvGeom& g, const T* dy, const T* w, T* dx) {
  const int64_t K = g.cin * g.kh * g.kw, P = g.oh * g.ow;
  if (P >= kPerImage) {
    parallel_for(g.n, 1, [&](int64_t s, int64_t e) {
      CpuScratch col(sizeof(T) * K * P);
      for (int64_t b = s; b < e; ++b) {
        cpu_gemm<T>(true, false, K, P, g.cout, T(1), w, K, dy + b * g.cout * P, P, T(0), col.as<T>(), P);
        T* dxb = dx + b * g.cin * g.h * g.w;
        for (int64_t ci = 0; ci < g.cin; ++ci) col2im_channel(g, col.as<T>(), P, ci, dxb);
      }
    });
    return;
  }
  const int64_t NP = g.n * P;
  CpuScratch dyt(sizeof(T) * g.cout * NP), col(sizeof(T) * K * NP);
  nchw_to_cnp(dy, g.n, g.cout, P, dyt.as<T>());
  cpu_gemm<T>(true, false, K, NP, g.cout, T(1), w, K, dyt.as<T>(), NP, T(0), col.as<T>(), NP);
  T* c = col.as<T>();
  parallel_for(g.n * g.cin, 1, [&](int64_t s, int64_t e) {
    for (int64_t t = s; t < e; ++t) {
      int64_t b = t / g.cin, ci = t % g.cin;
      col2im_channel(g, c + b * P, NP, ci, dx + b * g.cin * g.h * g.w);
    }
  });
}

template <class T>
void conv_backward_weight(const ConvGeom& g, const T* x, const T* dy, T* dw) {
  const int64_t K = g.cin * g.kh * g.kw, P = g.oh * g.ow, NP = g.n * P;
  CpuScratch dyt(sizeof(T) * g.cout * NP), col(sizeof(T) * K * NP);
  nchw_to_cnp(dy, g.n, g.cout, P, dyt.as<T>());
  im2col_batch(g, x, col.as<T>());
  cpu_gemm<T>(false, true, g.cout, K, NP, T(1), dyt.as<T>(), NP, col.as<T>(), NP, T(0), dw, K);
}

}  // namespace

void CpuBackend::conv2d_forward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y) {
  WN_DISPATCH_FLOAT(x.dtype(), T, {
    conv_forward<T>(g, x.data<T>(), w.data<T>(), bias.defined() ? bias.data<T>() : nullptr, y.data<T>());
  });
}

void CpuBackend::conv2d_backward_data(const ConvGeom& g, const Tensor& dy, const Tensor& w, Tensor& dx) {
  WN_DISPATCH_FLOAT(dy.dtype(), T, { conv_backward_data<T>(g, dy.data<T>(), w.data<T>(), dx.data<T>()); });
}

void CpuBackend::conv2d_backward_weight(const ConvGeom& g, const Tensor& x, const Tensor& dy, Tensor& dw) {
  WN_DISPATCH_FLOAT(x.dtype(), T, { conv_backward_weight<T>(g, x.data<T>(), dy.data<T>(), dw.data<T>()); });
}

}  // namespace wn
