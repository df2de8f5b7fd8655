// CPU convolution kernels: im2col / col2im and Eigen GEMMs. Two layouts:
// - per image, when the output plane has at least kPerImage pixels: each oneTBB task
//   unfolds one image and runs its own GEMM straight into the NCHW output;
// - batched, for small planes: the whole batch is unfolded into one (K, N*P) matrix
//   so the GEMM is wide enough to run near peak; results are transposed back.
// The weight gradient always uses the batched form (one GEMM reducing over N*P).
#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/parallel.h"
#include "engine/profile.h"

namespace wn {

namespace {

constexpr int64_t kPerImage = 256;

// The output columns ox whose input column ox*sw - pw + kj lies inside [0, w): [lo, hi).
struct ColRange {
  int64_t lo, hi;
};
inline ColRange valid_cols(const ConvGeom& g, int64_t kj) {
  // ix >= 0  <=>  ox >= ceil((pw - kj) / sw);  ix <= w - 1  <=>  ox <= floor((w - 1 + pw - kj) / sw).
  const int64_t a = g.pw - kj, b = g.w - 1 + g.pw - kj;
  int64_t lo = a <= 0 ? 0 : (a + g.sw - 1) / g.sw;
  int64_t hi = b < 0 ? 0 : b / g.sw + 1;
  lo = std::min(lo, g.ow);
  hi = std::max(lo, std::min(hi, g.ow));
  return {lo, hi};
}

// Unfolds channel ci of one image x_img (Cin, H, W) into rows ci*KH*KW.. of dst,
// writing P = OH*OW columns starting at dst (leading dimension ld). The border
// columns are zero-filled apart, so the inner copy has no branch and vectorises.
template <class T>
void im2col_channel(const ConvGeom& g, const T* __restrict x_img, int64_t ci, T* __restrict dst, int64_t ld) {
  const T* xc = x_img + ci * g.h * g.w;
  for (int64_t kj = 0; kj < g.kw; ++kj) {
    const ColRange r = valid_cols(g, kj);
    const int64_t off = kj - g.pw;  // ix = ox * sw + off
    for (int64_t ki = 0; ki < g.kh; ++ki) {
      T* row = dst + ((ci * g.kh + ki) * g.kw + kj) * ld;
      for (int64_t oy = 0; oy < g.oh; ++oy) {
        T* __restrict out = row + oy * g.ow;
        const int64_t iy = oy * g.sh - g.ph + ki;
        if (iy < 0 || iy >= g.h) {
          std::fill(out, out + g.ow, T(0));
          continue;
        }
        const T* __restrict xr = xc + iy * g.w + off;
        for (int64_t ox = 0; ox < r.lo; ++ox) out[ox] = T(0);
        if (g.sw == 1) {
          std::memcpy(out + r.lo, xr + r.lo, sizeof(T) * (r.hi - r.lo));
        } else if (g.sw == 2) {
          for (int64_t ox = r.lo; ox < r.hi; ++ox) out[ox] = xr[2 * ox];
        } else {
          for (int64_t ox = r.lo; ox < r.hi; ++ox) out[ox] = xr[ox * g.sw];
        }
        for (int64_t ox = r.hi; ox < g.ow; ++ox) out[ox] = T(0);
      }
    }
  }
}

// Folds the rows of channel ci back: dx_img[ci] = sum of the unfolded columns.
template <class T>
void col2im_channel(const ConvGeom& g, const T* __restrict src, int64_t ld, int64_t ci, T* __restrict dx_img) {
  T* dc = dx_img + ci * g.h * g.w;
  std::fill(dc, dc + g.h * g.w, T(0));
  for (int64_t ki = 0; ki < g.kh; ++ki)
    for (int64_t kj = 0; kj < g.kw; ++kj) {
      const ColRange r = valid_cols(g, kj);
      const int64_t off = kj - g.pw;
      const T* row = src + ((ci * g.kh + ki) * g.kw + kj) * ld;
      for (int64_t oy = 0; oy < g.oh; ++oy) {
        const int64_t iy = oy * g.sh - g.ph + ki;
        if (iy < 0 || iy >= g.h) continue;
        const T* __restrict in = row + oy * g.ow;
        T* __restrict dr = dc + iy * g.w + off;
        if (g.sw == 1) {
          for (int64_t ox = r.lo; ox < r.hi; ++ox) dr[ox] += in[ox];
        } else if (g.sw == 2) {
          for (int64_t ox = r.lo; ox < r.hi; ++ox) dr[2 * ox] += in[ox];
        } else {
          for (int64_t ox = r.lo; ox < r.hi; ++ox) dr[ox * g.sw] += in[ox];
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

// Whether the kernel covers the whole unpadded input (one output pixel): then each
// image's unfolded column is the image itself and the conv is a matrix product.
bool fully_connected(const ConvGeom& g) {
  return g.oh == 1 && g.ow == 1 && g.ph == 0 && g.pw == 0 && g.kh == g.h && g.kw == g.w;
}

template <class T>
void conv_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
  const int64_t K = g.cin * g.kh * g.kw, P = g.oh * g.ow;
  if (fully_connected(g)) {  // y (N, Cout) = x (N, K) w^T
    cpu_gemm<T>(false, true, g.n, g.cout, K, T(1), x, K, w, K, T(0), y, g.cout);
    if (bias)
      for (int64_t b = 0; b < g.n; ++b)
        for (int64_t co = 0; co < g.cout; ++co) y[b * g.cout + co] += bias[co];
    return;
  }
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
  if (fully_connected(g)) {  // dx (N, K) = dy (N, Cout) w
    cpu_gemm<T>(false, false, g.n, K, g.cout, T(1), dy, g.cout, w, K, T(0), dx, K);
    return;
  }
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
  if (fully_connected(g)) {  // dw (Cout, K) = dy^T (Cout, N) x (N, K)
    cpu_gemm<T>(true, false, g.cout, K, g.n, T(1), dy, g.cout, x, K, T(0), dw, K);
    return;
  }
  CpuScratch dyt(sizeof(T) * g.cout * NP), col(sizeof(T) * K * NP);
  nchw_to_cnp(dy, g.n, g.cout, P, dyt.as<T>());
  im2col_batch(g, x, col.as<T>());
  cpu_gemm<T>(false, true, g.cout, K, NP, T(1), dyt.as<T>(), NP, col.as<T>(), NP, T(0), dw, K);
}

}  // namespace

void CpuBackend::conv2d_forward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y) {
  WN_PROFILE("conv2d_forward", g.str(), 2 * g.macs());
  WN_DISPATCH_FLOAT(x.dtype(), T, {
    conv_forward<T>(g, x.data<T>(), w.data<T>(), bias.defined() ? bias.data<T>() : nullptr, y.data<T>());
  });
}

void CpuBackend::conv2d_backward_data(const ConvGeom& g, const Tensor& dy, const Tensor& w, Tensor& dx) {
  WN_PROFILE("conv2d_backward_data", g.str(), 2 * g.macs());
  WN_DISPATCH_FLOAT(dy.dtype(), T, { conv_backward_data<T>(g, dy.data<T>(), w.data<T>(), dx.data<T>()); });
}

void CpuBackend::conv2d_backward_weight(const ConvGeom& g, const Tensor& x, const Tensor& dy, Tensor& dw) {
  WN_PROFILE("conv2d_backward_weight", g.str(), 2 * g.macs());
  WN_DISPATCH_FLOAT(x.dtype(), T, { conv_backward_weight<T>(g, x.data<T>(), dy.data<T>(), dw.data<T>()); });
}

}  // namespace wn
