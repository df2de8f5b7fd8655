// CPU element-wise kernels: unary maps and their derivatives, broadcasting binary
// ops, sum-to-shape (the reduction every broadcast gradient goes through) and PReLU.
// The formulas are those of engine/backend/elementwise_ops.h, the layouts those of
// engine/backend/shape_plan.h; this file only runs the loops.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>

#include "engine/backend/cpu/avx2.h"
#endif

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cpu/lanes.h"
#include "engine/backend/cpu/sgemm.h"
#include "engine/parallel.h"
#include "engine/profile.h"

namespace wn {

namespace {

// A function compiled without trapping-math (GCC): its floating-point selects may then
// become blends, so its loops vectorise; the values are the same. Clang does not trap by
// default and has no such attribute.
#if defined(__GNUC__) && !defined(__clang__)
#define WN_NO_TRAPPING_MATH __attribute__((optimize("no-trapping-math")))
#else
#define WN_NO_TRAPPING_MATH
#endif

constexpr int64_t kGrain = 1 << 14;

template <class T, class F>
void map1(const Tensor& x, Tensor& y, F f) {
  const T* px = x.data<T>();
  T* py = y.data<T>();
  parallel_for(x.numel(), kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) py[i] = f(px[i]);
  });
}

template <class T, class F>
void map_bwd(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx, F f) {
  const T* px = x.data<T>();
  const T* py = y.data<T>();
  const T* pd = dy.data<T>();
  T* pdx = dx.data<T>();
  parallel_for(x.numel(), kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) pdx[i] = f(px[i], py[i], pd[i]);
  });
}

template <class T, class F>
void broadcast_binary(const Tensor& a, const Tensor& b, Tensor& out, F f) {
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.data<T>();
  const int64_t total = out.numel();
  if (a.numel() == total && b.numel() == total) {
    parallel_for(total, kGrain, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) po[i] = f(pa[i], pb[i]);
    });
    return;
  }
  const BroadcastPlan c = plan_broadcast(out.shape(), a.shape(), b.shape());
  const int r = c.rank;
  const int64_t inner = c.n[r - 1];
  const int64_t sa = c.st[0][r - 1], sb = c.st[1][r - 1];
  const int64_t rows = total / inner;
  parallel_for(rows, std::max<int64_t>(1, kGrain / inner), [&](int64_t rb, int64_t re) {
    for (int64_t row = rb; row < re; ++row) {
      int64_t rem = row, oa = 0, ob = 0;
      for (int i = r - 2; i >= 0; --i) {
        int64_t idx = rem % c.n[i];
        rem /= c.n[i];
        oa += idx * c.st[0][i];
        ob += idx * c.st[1][i];
      }
      const T* ra = pa + oa;
      const T* rb2 = pb + ob;
      T* ro = po + row * inner;
      if (sa && sb) {
        for (int64_t j = 0; j < inner; ++j) ro[j] = f(ra[j], rb2[j]);
      } else if (sa) {
        const T vb = rb2[0];
        for (int64_t j = 0; j < inner; ++j) ro[j] = f(ra[j], vb);
      } else if (sb) {
        const T va = ra[0];
        for (int64_t j = 0; j < inner; ++j) ro[j] = f(va, rb2[j]);
      } else {
        const T v = f(ra[0], rb2[0]);
        for (int64_t j = 0; j < inner; ++j) ro[j] = v;
      }
    }
  });
}

}  // namespace

void CpuBackend::unary(UnaryOp op, const Tensor& x, Tensor& y, double a, double b) {
  WN_PROFILE("unary", fmt::format("{} {}", unary_op_name(op), x.shape().str()), 0);
  WN_DISPATCH_FLOAT(x.dtype(), T, {
    const T ta = static_cast<T>(a), tb = static_cast<T>(b);
    visit_unary(op, [&](auto f) {
      map1<T>(x, y, [=](T v) { return decltype(f)::fwd(v, ta, tb); });
    });
  });
}

void CpuBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx, double a,
                                double b) {
  WN_PROFILE("unary_backward", fmt::format("{} {}", unary_op_name(op), x.shape().str()), 0);
  WN_DISPATCH_FLOAT(x.dtype(), T, {
    const T ta = static_cast<T>(a), tb = static_cast<T>(b);
    visit_unary(op, [&](auto f) {
      map_bwd<T>(x, y, dy, dx, [=](T v, T o, T d) { return decltype(f)::bwd(v, o, d, ta, tb); });
    });
  });
}

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  WN_PROFILE("binary", fmt::format("{} {} {}", binary_op_name(op), a.shape().str(), b.shape().str()), 0);
  WN_DISPATCH_FLOAT(a.dtype(), T, {
    visit_binary(op, [&](auto f) {
      broadcast_binary<T>(a, b, out, [](T u, T v) { return decltype(f)::fwd(u, v); });
    });
  });
}

void CpuBackend::sum_to(const Tensor& x, Tensor& out) {
  WN_PROFILE("sum_to", fmt::format("{} -> {}", x.shape().str(), out.shape().str()), 0);
  WN_DISPATCH_FLOAT(x.dtype(), T, {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    const ReducePlan c = plan_sum_to(x.shape(), out.shape());
    const int r = c.rank;
    const bool tail_kept = !c.reduced(r - 1);
    const int64_t tail = c.n[r - 1];
    const int64_t vec = tail_kept ? tail : 1;  // accumulated as a vector
    const int64_t seg = tail_kept ? 1 : tail;  // summed as a contiguous segment
    // Kept and reduced dims among the leading r - 1.
    std::vector<int> kept, red;
    for (int i = 0; i < r - 1; ++i) (c.reduced(i) ? red : kept).push_back(i);
    int64_t n_out = 1, n_red = 1;
    for (int i : kept) n_out *= c.n[i];
    for (int i : red) n_red *= c.n[i];
    parallel_for(n_out, std::max<int64_t>(1, kGrain / (vec * seg * n_red + 1)), [&](int64_t ob, int64_t oe) {
      std::vector<double> acc(vec);
      for (int64_t o = ob; o < oe; ++o) {
        int64_t rem = o, xbase = 0, obase = 0;
        for (int k = static_cast<int>(kept.size()) - 1; k >= 0; --k) {
          int i = kept[k];
          int64_t idx = rem % c.n[i];
          rem /= c.n[i];
          xbase += idx * c.xs[i];
          obase += idx * c.os[i];
        }
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t q = 0; q < n_red; ++q) {
          int64_t rq = q, off = xbase;
          for (int k = static_cast<int>(red.size()) - 1; k >= 0; --k) {
            int i = red[k];
            off += (rq % c.n[i]) * c.xs[i];
            rq /= c.n[i];
          }
          const T* row = px + off;
          if (tail_kept) {
            for (int64_t j = 0; j < vec; ++j) acc[j] += row[j];
          } else {
            acc[0] += lane_sum(seg, [&](int64_t j) { return row[j]; });
          }
        }
        for (int64_t j = 0; j < vec; ++j) po[obase + j] = static_cast<T>(acc[j]);
      }
    });
  });
}

namespace {

// One row of tprelu_fwd. Without trapping-math for this function alone: GCC keeps a
// floating-point comparison a branch under it, and the loop would not vectorise (the
// values are the same either way).
template <class T>
WN_NO_TRAPPING_MATH void tprelu_row(const T* __restrict xr, T* __restrict yr, int64_t r, T s,
                                                              T t, bool shifted) {
  if (shifted) {
    for (int64_t j = 0; j < r; ++j) {
      const T u = xr[j] - t, su = s * u;
      yr[j] = (u > T(0) ? u : su) + t;
    }
  } else {
    for (int64_t j = 0; j < r; ++j) {
      const T u = xr[j], su = s * u;
      yr[j] = u > T(0) ? u : su;
    }
  }
}

// PReLU on x - t[c] (t null: 0), plus t[c]: the operations of the composed sub, prelu,
// add, in one pass (the compiler may fuse the multiply-add).
template <class T>
void tprelu_fwd(const Tensor& x, const Tensor& a, const T* pt, Tensor& y) {
  NCR d = ncr_of(x.shape());
  const T* px = x.data<T>();
  const T* pa = a.data<T>();
  T* py = y.data<T>();
  parallel_for(d.n * d.c, std::max<int64_t>(1, kGrain / d.r), [&](int64_t b, int64_t e) {
    for (int64_t nc = b; nc < e; ++nc) {
      const T s = pa[nc % d.c], t = pt ? pt[nc % d.c] : T(0);
      const T* __restrict xr = px + nc * d.r;
      T* __restrict yr = py + nc * d.r;
      tprelu_row(xr, yr, d.r, s, t, pt != nullptr);
    }
  });
}

// dx of one row of tprelu_fwd: dy where x - t > 0, else dy times the slope. Without
// trapping-math for this function alone: GCC keeps a floating-point comparison a branch
// under it, and the loop would not vectorise (the values are the same either way).
template <class T>
WN_NO_TRAPPING_MATH void tprelu_dx_row(const T* __restrict xr, const T* __restrict gr,
                                                                 T* __restrict dr, int64_t r, T s, T t) {
  for (int64_t j = 0; j < r; ++j) {
    const T g = gr[j], sg = s * g;
    dr[j] = xr[j] - t > T(0) ? g : sg;
  }
}

// The slope's and the shift's gradient sums over one row of tprelu_fwd, added to a and b:
// sum dy min(x - t, 0) (NaN stays NaN) and sum dy (1 - s) [x - t <= 0]. Eight lanes of T
// over the row (a feature map's pixels: a few thousand at most, so float lanes keep about
// 1e-6 relative) in lane_sum's fixed order (lanes.h), the row's total added in double;
// written out here so that it vectorises without trapping-math.
template <class T>
WN_NO_TRAPPING_MATH void tprelu_sums_row(const T* __restrict xr, const T* __restrict gr,
                                                                   int64_t r, T s, T t, double& a, double& b) {
  T la[8] = {0, 0, 0, 0, 0, 0, 0, 0}, lb[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= r; i += 8)
    for (int l = 0; l < 8; ++l) {
      const T g = gr[i + l], u = xr[i + l] - t, neg = u > T(0) ? T(0) : u, on = u <= T(0) ? T(1) : T(0);
      la[l] += g * neg;
      lb[l] += (g - s * g) * on;
    }
  for (int l = 0; i < r; ++i, ++l) {
    const T g = gr[i], u = xr[i] - t, neg = u > T(0) ? T(0) : u, on = u <= T(0) ? T(1) : T(0);
    la[l] += g * neg;
    lb[l] += (g - s * g) * on;
  }
  a += double(lane_total(la));
  b += double(lane_total(lb));
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define WN_TPRELU_AVX2 1
// One row of tprelu_bwd for float in AVX2 + FMA: dx (where dr is not null) and, where `sums`,
// the slope's and shift's sums added to a and b. GCC's own vectorisation of tprelu_sums_row
// (two selects into eight-lane arrays, a ragged tail) spilled to the stack and took ~15 cycles
// a value, and whether it fused la + g neg depended on the row's length (its vector loop did
// not, its scalar blocks did). Here every lane is tprelu_sums_row's sequence with both
// multiply-adds fused (g - s g, and la + g neg), the tail's lanes [0, r % 8) by masked
// loads, the others left as they were; dx and the shift's sum keep their bits.
// The 8 lanes of tprelu_bwd_row_avx2 at offset i (tail: only the lanes in m are the row's):
// dx into dr where not null, the sums into la and lb where `sums`.
__attribute__((target("avx2,fma"))) inline void tprelu_bwd_lanes(__m256 g, __m256 x, __m256 vs, __m256 vt,
                                                                 float* dr, bool sums, __m256& la, __m256& lb,
                                                                 __m256i m, bool tail) {
  const __m256 zero = _mm256_setzero_ps();
  const __m256 u = _mm256_sub_ps(x, vt);
  const __m256 pos = _mm256_cmp_ps(u, zero, _CMP_GT_OQ);
  if (dr) {
    const __m256 v = _mm256_blendv_ps(_mm256_mul_ps(vs, g), g, pos);
    if (tail) _mm256_maskstore_ps(dr, m, v);
    else _mm256_storeu_ps(dr, v);
  }
  if (!sums) return;
  const __m256 neg = _mm256_blendv_ps(u, zero, pos);
  const __m256 on = _mm256_and_ps(_mm256_cmp_ps(u, zero, _CMP_LE_OQ), _mm256_set1_ps(1.0f));
  const __m256 na = _mm256_fmadd_ps(g, neg, la);
  const __m256 nb = _mm256_fmadd_ps(_mm256_fnmadd_ps(vs, g, g), on, lb);
  la = tail ? _mm256_blendv_ps(la, na, _mm256_castsi256_ps(m)) : na;
  lb = tail ? _mm256_blendv_ps(lb, nb, _mm256_castsi256_ps(m)) : nb;
}

__attribute__((target("avx2,fma"))) void tprelu_bwd_row_avx2(const float* __restrict xr, const float* __restrict gr,
                                                             float* __restrict dr, int64_t r, float s, float t,
                                                             bool sums, double& a, double& b) {
  const __m256 vs = _mm256_set1_ps(s), vt = _mm256_set1_ps(t);
  __m256 la = _mm256_setzero_ps(), lb = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= r; i += 8)
    tprelu_bwd_lanes(_mm256_loadu_ps(gr + i), _mm256_loadu_ps(xr + i), vs, vt, dr ? dr + i : nullptr, sums, la, lb,
                     _mm256_setzero_si256(), false);
  if (i < r) {
    const __m256i m = first_lanes(r - i);
    tprelu_bwd_lanes(_mm256_maskload_ps(gr + i, m), _mm256_maskload_ps(xr + i, m), vs, vt, dr ? dr + i : nullptr,
                     sums, la, lb, m, true);
  }
  if (!sums) return;
  alignas(32) float fa[8], fb[8];
  _mm256_store_ps(fa, la);
  _mm256_store_ps(fb, lb);
  a += double(lane_total(fa));
  b += double(lane_total(fb));
}
#endif

// Gradients of tprelu_fwd: dx, the slope's and (with t) the shift's, each optional.
template <class T>
void tprelu_bwd(const Tensor& x, const Tensor& a, const T* pt, const Tensor& dy, Tensor& dx, Tensor& da, Tensor& dt) {
  NCR d = ncr_of(x.shape());
  const T* px = x.data<T>();
  const T* pa = a.data<T>();
  const T* pd = dy.data<T>();
  T* pdx = dx.defined() ? dx.data<T>() : nullptr;
  T* pda = da.defined() ? da.data<T>() : nullptr;
  T* pdt = dt.defined() ? dt.data<T>() : nullptr;
  // Tasks own ranges of channels: dx of those channels and their slope and shift gradients,
  // each channel's rows summed in the order of the images. A task walks its channels image by
  // image, so small planes (7x7: 196 bytes a row) are read as one run per image rather than a
  // row every C*H*W floats; the same sums in the same order either way.
  const bool avx2 = own_sgemm_supported();  // AVX2 + FMA on this CPU
  parallel_for(d.c, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, d.n * d.r)), [&](int64_t cb, int64_t ce) {
    std::vector<double> acc(size_t(2 * (ce - cb)), 0.0);  // channel c's slope and shift sums
    for (int64_t n = 0; n < d.n; ++n)
      for (int64_t c = cb; c < ce; ++c) {
        const T s = pa[c], t = pt ? pt[c] : T(0);
        const int64_t off = (n * d.c + c) * d.r;
        const T* __restrict xr = px + off;
        const T* __restrict gr = pd + off;
        double* ac = acc.data() + 2 * (c - cb);
#ifdef WN_TPRELU_AVX2
        if constexpr (std::is_same_v<T, float>) {
          if (avx2) {
            tprelu_bwd_row_avx2(xr, gr, pdx ? pdx + off : nullptr, d.r, s, t, pda || pdt, ac[0], ac[1]);
            continue;
          }
        }
#endif
        if (pdx) tprelu_dx_row(xr, gr, pdx + off, d.r, s, t);
        // The shift's gradient is dy where the slope applies, times (1 - a).
        if (pda || pdt) tprelu_sums_row(xr, gr, d.r, s, t, ac[0], ac[1]);
      }
    for (int64_t c = cb; c < ce; ++c) {
      if (pda) pda[c] = static_cast<T>(acc[size_t(2 * (c - cb))]);
      if (pdt) pdt[c] = static_cast<T>(acc[size_t(2 * (c - cb)) + 1]);
    }
  });
}

}  // namespace

void CpuBackend::prelu_forward(const Tensor& x, const Tensor& a, Tensor& y) {
  WN_PROFILE("prelu_forward", x.shape().str(), 0);
  WN_DISPATCH_FLOAT(x.dtype(), T, { tprelu_fwd<T>(x, a, nullptr, y); });
}

void CpuBackend::prelu_backward(const Tensor& x, const Tensor& a, const Tensor& dy, Tensor& dx, Tensor& da) {
  WN_PROFILE("prelu_backward", x.shape().str(), 0);
  Tensor none;
  WN_DISPATCH_FLOAT(x.dtype(), T, { tprelu_bwd<T>(x, a, nullptr, dy, dx, da, none); });
}

void CpuBackend::tprelu_forward(const Tensor& x, const Tensor& a, const Tensor& t, Tensor& y) {
  WN_PROFILE("tprelu_forward", x.shape().str(), 0);
  WN_DISPATCH_FLOAT(x.dtype(), T, { tprelu_fwd<T>(x, a, t.data<T>(), y); });
}

void CpuBackend::tprelu_backward(const Tensor& x, const Tensor& a, const Tensor& t, const Tensor& dy, Tensor& dx,
                                 Tensor& da, Tensor& dt) {
  WN_PROFILE("tprelu_backward", x.shape().str(), 0);
  WN_DISPATCH_FLOAT(x.dtype(), T, { tprelu_bwd<T>(x, a, t.data<T>(), dy, dx, da, dt); });
}

}  // namespace wn
