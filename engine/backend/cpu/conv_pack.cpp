// Implicit GEMM packing (conv_pack.h). A panel of 16 columns is cut into runs that share one
// row of the padded images (forward: consecutive output pixels of one output row, read at the
// stride; weight gradient: consecutive taps of one kernel row, read contiguously), and each
// run is copied for every row p of the block. Runs of 16, 8 and 4 at strides 1 and 2 (the
// DCGAN's planes and 4x4 kernels) have loops of constant length, which the compiler turns
// into vector loads and permutes. Compiled for AVX2: called only where the own SGEMM serves.
#include "engine/backend/cpu/conv_pack.h"

#include <algorithm>
#include <cstring>

#include "engine/parallel.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>

#include "engine/backend/cpu/avx2.h"
#define WN_PACK_X86 1
#define WN_PACK_TARGET __attribute__((target("avx2,fma")))
#else
#define WN_PACK_TARGET
#endif

namespace wn {

namespace {

constexpr int64_t kCols = kSgemmPanelCols;

#ifdef WN_PACK_X86
// The even elements of the 16 floats a, b: a[0], a[2], a[4], a[6], b[0], ..., b[6].
WN_PACK_TARGET inline __m256 evens(__m256 a, __m256 b) {
  const __m256 t = _mm256_shuffle_ps(a, b, 0x88);  // a0 a2 b0 b2 | a4 a6 b4 b6
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), 0xD8));
}

// The even elements of the 16 floats at s: s[0], s[2], ..., s[14].
WN_PACK_TARGET inline __m256 evens(const float* s) { return evens(_mm256_loadu_ps(s), _mm256_loadu_ps(s + 8)); }
#endif

// For each of the kc rows of a panel: d[p * 16 + u] = src[off[p] + u * Stride], u < Len
// (stride 2 loads 16 floats per 8 values, up to src[off[p] + 15] for Len 4: past the last
// plane, that is the padded planes' zeroed tail).
template <int64_t Len, int64_t Stride>
WN_PACK_TARGET void copy_runs_fixed(const float* src, const int64_t* off, int64_t kc, float* d) {
  for (int64_t p = 0; p < kc; ++p) {
    const float* __restrict s = src + off[p];
    float* __restrict o = d + p * kCols;
#ifdef WN_PACK_X86
    if constexpr (Stride == 1 && Len == 4) {
      _mm_storeu_ps(o, _mm_loadu_ps(s));
      continue;
    } else if constexpr (Stride == 1) {
      for (int64_t u = 0; u < Len; u += 8) _mm256_storeu_ps(o + u, _mm256_loadu_ps(s + u));
      continue;
    } else if constexpr (Stride == 2 && Len == 4) {
      _mm_storeu_ps(o, _mm256_castps256_ps128(evens(s)));
      continue;
    } else if constexpr (Stride == 2) {
      for (int64_t u = 0; u < Len; u += 8) _mm256_storeu_ps(o + u, evens(s + 2 * u));
      continue;
    }
#endif
    for (int64_t u = 0; u < Len; ++u) o[u] = s[u * Stride];
  }
}

#ifdef WN_PACK_X86
// copy_runs_fixed for any run of 1 to 16 at stride 1 or 2 (the runs an output row narrower
// than 16, or an image's end, cuts): whole vectors where the run covers them, masked loads for
// the rest, so nothing outside the run is read, blended into what d holds past the run (the
// next runs, the zeroed tail, the next rows: rewritten unchanged; up to 7 floats past the
// last panel, see SgemmBPacker), since masked stores are slow on some CPUs.
WN_PACK_TARGET void copy_runs_masked(const float* src, const int64_t* off, int64_t kc, float* d, int64_t len,
                                     int64_t stride) {
  const int64_t full = len >= 8 ? 8 : 0, rest = len - full;  // the first 8 whole, then `rest`
  const __m256i m = first_lanes(rest);
  // Stride 2: the rest's 2 * rest - 1 source floats, as two masked loads of 8.
  const __m256i m0 = first_lanes(std::min<int64_t>(8, 2 * rest - 1)),
                m1 = first_lanes(std::max<int64_t>(0, 2 * rest - 9));
  for (int64_t p = 0; p < kc; ++p) {
    const float* s = src + off[p];
    float* o = d + p * kCols;
    if (stride == 1) {
      if (full) _mm256_storeu_ps(o, _mm256_loadu_ps(s));
      _mm256_storeu_ps(o + full, _mm256_blendv_ps(_mm256_loadu_ps(o + full), _mm256_maskload_ps(s + full, m),
                                                   _mm256_castsi256_ps(m)));
    } else {
      if (full) _mm256_storeu_ps(o, evens(s));
      const float* t = s + 2 * full;
      const __m256 e = evens(_mm256_maskload_ps(t, m0), _mm256_maskload_ps(t + 8, m1));
      _mm256_storeu_ps(o + full, _mm256_blendv_ps(_mm256_loadu_ps(o + full), e, _mm256_castsi256_ps(m)));
    }
  }
}
#endif

WN_PACK_TARGET void copy_runs(const float* src, const int64_t* off, int64_t kc, float* d, int64_t len,
                              int64_t stride) {
  if (stride == 1) {
    if (len == 16) return copy_runs_fixed<16, 1>(src, off, kc, d);
    if (len == 8) return copy_runs_fixed<8, 1>(src, off, kc, d);
    if (len == 4) return copy_runs_fixed<4, 1>(src, off, kc, d);
  } else if (stride == 2) {
    if (len == 16) return copy_runs_fixed<16, 2>(src, off, kc, d);
    if (len == 8) return copy_runs_fixed<8, 2>(src, off, kc, d);
    if (len == 4) return copy_runs_fixed<4, 2>(src, off, kc, d);
  }
#ifdef WN_PACK_X86
  if ((stride == 1 || stride == 2) && len >= 1 && len <= kCols) return copy_runs_masked(src, off, kc, d, len, stride);
#endif
  for (int64_t p = 0; p < kc; ++p) {
    const float* s = src + off[p];
    float* o = d + p * kCols;
    for (int64_t u = 0; u < len; ++u) o[u] = s[u * stride];
  }
}

// Zeros columns [cols, 16) of every row of a panel (the last panel of a block).
void zero_tail(float* panel, int64_t kc, int64_t cols) {
  if (cols == kCols) return;
  for (int64_t p = 0; p < kc; ++p) std::fill(panel + p * kCols + cols, panel + (p + 1) * kCols, 0.0f);
}

// B(p, j) = U(p, j): runs of consecutive columns along one row of the output pixels.
WN_PACK_TARGET void pack_unfolded(const void* ctx, int64_t p0, int64_t j0, int64_t kc, int64_t nc, float* dst) {
  const Unfolded& u = *static_cast<const Unfolded*>(ctx);
  const int64_t* tap = u.tap + p0;
  for (int64_t q = 0; q < nc; q += kCols) {
    float* panel = dst + q * kc;
    const int64_t cols = std::min(kCols, nc - q);
    zero_tail(panel, kc, cols);
    for (int64_t t = 0, j = j0 + q; t < cols;) {
      const int64_t b = j / u.per_image, r = j % u.per_image, y = r / u.width, x = r % u.width;
      const int64_t len = std::min(cols - t, u.width - x);
      copy_runs(u.data + b * u.image + y * u.row + x * u.stride, tap, kc, panel + t, len, u.stride);
      t += len;
      j += len;
    }
  }
}

// B(p, j) = U(j, p): runs of consecutive taps that lie next to each other in a plane row.
WN_PACK_TARGET void pack_unfolded_t(const void* ctx, int64_t p0, int64_t j0, int64_t kc, int64_t nc, float* dst) {
  const Unfolded& u = *static_cast<const Unfolded*>(ctx);
  int64_t col[kSgemmBlockK];  // column(p) of the block's rows
  for (int64_t p = 0; p < kc; ++p) {
    const int64_t j = p0 + p, b = j / u.per_image, r = j % u.per_image;
    col[p] = b * u.image + (r / u.width) * u.row + (r % u.width) * u.stride;
  }
  for (int64_t q = 0; q < nc; q += kCols) {
    float* panel = dst + q * kc;
    const int64_t cols = std::min(kCols, nc - q);
    zero_tail(panel, kc, cols);
    for (int64_t t = 0, j = j0 + q; t < cols;) {
      int64_t len = 1;
      while (t + len < cols && u.tap[j + len] == u.tap[j] + len) ++len;
      copy_runs(u.data + u.tap[j], col, kc, panel + t, len, 1);
      t += len;
      j += len;
    }
  }
}

}  // namespace

int64_t padded_planes_size(int64_t m, int64_t channels, int64_t h, int64_t w, int64_t ph, int64_t pw) {
  return m * channels * (h + 2 * ph) * (w + 2 * pw) + 2 * kCols;  // + the tail stride-2 runs read
}

PaddedPlanes pad_planes(const float* x, int64_t c, int64_t h, int64_t w, int64_t b0, int64_t m, int64_t c0,
                        int64_t c1, int64_t ph, int64_t pw, float* dst) {
  PaddedPlanes pp;
  pp.data = dst;
  pp.row = w + 2 * pw;
  pp.plane = (h + 2 * ph) * pp.row;
  pp.image = (c1 - c0) * pp.plane;
  const int64_t nch = c1 - c0, plane = pp.plane, row = pp.row;
  parallel_for(m * nch, std::max<int64_t>(1, (1 << 15) / plane), [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) {
      const int64_t b = i / nch, ci = c0 + i % nch;
      const float* src = x + ((b0 + b) * c + ci) * h * w;
      float* d = dst + i * plane;
      std::fill(d, d + ph * row, 0.0f);
      for (int64_t iy = 0; iy < h; ++iy) {
        float* r = d + (ph + iy) * row;
        std::fill(r, r + pw, 0.0f);
        std::memcpy(r + pw, src + iy * w, sizeof(float) * w);
        std::fill(r + pw + w, r + row, 0.0f);
      }
      std::fill(d + (ph + h) * row, d + plane, 0.0f);
    }
  });
  std::fill(dst + m * pp.image, dst + m * pp.image + 2 * kCols, 0.0f);
  return pp;
}

SgemmBPacker unfolded_packer(const Unfolded& u) { return {&pack_unfolded, &u}; }

SgemmBPacker unfolded_t_packer(const Unfolded& u) { return {&pack_unfolded_t, &u}; }

}  // namespace wn
