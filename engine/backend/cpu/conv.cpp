// CPU convolution kernels over chunks of images, oneTBB running the chunks in parallel. A
// chunk holds enough images for a GEMM with at least kChunkCols columns (one image when its
// output plane is that large; a few more where that makes the chunks equal). The forward
// pass and the weight gradient, where the own SGEMM serves floats, pack the SGEMM's panels
// straight from a zero-padded copy of the chunk's images (implicit GEMM, conv_pack.h: the
// same values, so the same bits, as unfolding first); elsewhere the chunk is unfolded
// (im2col) into a buffer that stays in cache between the unfold and the GEMM. The data
// gradient computes the unfolded matrix's gradient (W^T dy, dy's panels packed straight from
// the tensor where the own SGEMM serves) into such a buffer and folds it (col2im). The
// weights are packed for the SGEMM once per call (CpuGemmA). The weight gradient splits the
// input channels into groups instead (and, for inputs of few channels, the chunks into fixed
// ranges whose partial sums are added in order): each task owns its columns of dw and sums
// over its chunks in a fixed order, so the result does not depend on the thread count. A
// kernel covering the whole unpadded input is a plain matrix product.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "engine/backend/cpu/conv_pack.h"
#include "engine/backend/cpu/cpu_backend.h"
#include "engine/parallel.h"
#include "engine/profile.h"

namespace wn {

namespace {

// Calls row(width) with the row width as a compile-time constant for the DCGAN's planes
// (4-32 pixels: the stride-2 loops then unroll into permutes), else as a run-time value.
template <class F>
inline void with_row_width(int64_t ow, F&& row) {
  switch (ow) {
    case 4: row(std::integral_constant<int64_t, 4>{}); break;
    case 8: row(std::integral_constant<int64_t, 8>{}); break;
    case 16: row(std::integral_constant<int64_t, 16>{}); break;
    case 32: row(std::integral_constant<int64_t, 32>{}); break;
    default: row(ow);
  }
}

// Size of the zero-padded copy of one channel plane the unfold and fold work on.
inline int64_t padded_plane(const ConvGeom& g) { return (g.h + 2 * g.ph) * (g.w + 2 * g.pw); }

// Unfolds one channel plane xc (H, W) into the KH*KW rows starting at dst, writing
// P = OH*OW columns of each (leading dimension ld). The plane is first copied into
// `pad` with its zero border, so every tap's row is a plain strided copy.
template <class T>
void im2col_channel(const ConvGeom& g, const T* __restrict xc, T* __restrict dst, int64_t ld, T* __restrict pad) {
  const int64_t PW = g.w + 2 * g.pw;
  std::fill(pad, pad + padded_plane(g), T(0));
  for (int64_t iy = 0; iy < g.h; ++iy) std::memcpy(pad + (iy + g.ph) * PW + g.pw, xc + iy * g.w, sizeof(T) * g.w);
  for (int64_t ki = 0; ki < g.kh; ++ki)
    for (int64_t kj = 0; kj < g.kw; ++kj) {
      T* row = dst + (ki * g.kw + kj) * ld;
      for (int64_t oy = 0; oy < g.oh; ++oy) {
        const T* __restrict src = pad + (oy * g.sh + ki) * PW + kj;
        T* __restrict out = row + oy * g.ow;
        if (g.sw == 1) {
          std::memcpy(out, src, sizeof(T) * g.ow);
        } else if (g.sw == 2) {
          with_row_width(g.ow, [&](auto ow) {
            for (int64_t ox = 0; ox < ow; ++ox) out[ox] = src[2 * ox];
          });
        } else {
          for (int64_t ox = 0; ox < g.ow; ++ox) out[ox] = src[ox * g.sw];
        }
      }
    }
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define WN_CONV_X86 1
// d[2 * ox] += in[ox] for ox < ow (a multiple of 8), 8 at a time: in's values interleaved
// with -0.0 (which, in the default floating-point environment the project never changes, adds
// nothing to any value, -0.0 included) and added to 16 floats of d, so each element gets the
// same sums in the same order as the scalar loop. Reads and writes d up to d[2 * ow - 1].
__attribute__((target("avx2"))) void fold_row_stride2(float* __restrict d, const float* __restrict in, int64_t ow) {
  const __m256 nz = _mm256_set1_ps(-0.0f);
  for (int64_t ox = 0; ox < ow; ox += 8) {
    const __m256 a = _mm256_loadu_ps(in + ox);
    const __m256 lo = _mm256_unpacklo_ps(a, nz), hi = _mm256_unpackhi_ps(a, nz);  // a0 . a1 . | a4 . a5 .
    float* o = d + 2 * ox;
    _mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), _mm256_permute2f128_ps(lo, hi, 0x20)));
    _mm256_storeu_ps(o + 8, _mm256_add_ps(_mm256_loadu_ps(o + 8), _mm256_permute2f128_ps(lo, hi, 0x31)));
  }
}

// Blocks of 8 column pairs and tap shifts fold_taps_stride2 holds masks for.
constexpr int64_t kFoldBlocks = 32, kFoldShifts = 4;

// The stride-2 fold of rows whose width ow is not a multiple of 8 (7 and 14 on 28x28 images,
// 4 on the DCGAN's smallest planes), one row of the padded plane per output row oy and kernel
// row ki with all kw taps at once: row 2 oy + ki gets, at column 2 ox + kj, src[(ki kw + kj)
// ld + oy ow + ox]. The row is held as its even and odd columns, 8 of each at a time; tap kj
// adds to the even (kj even) or odd columns, shifted by kj / 2, through a masked load, and
// lanes without a value add -0.0 (nothing, as above). So every element gets the same sums in
// the same order as the scalar fold (taps in increasing (ki, kj)), with each row read and
// written once per ki instead of once per tap. Reads and rewrites up to 15 floats past a row's
// last column (the next row, or fold_plane's tail: unchanged). False where ow or kw exceed
// the masks held (the caller folds another way).
__attribute__((target("avx2"))) bool fold_taps_stride2(const ConvGeom& g, const float* src, int64_t ld,
                                                       float* pad) {
  const int64_t kw = g.kw, ow = g.ow, PW = g.w + 2 * g.pw;
  const int64_t ne = ow + (kw - 1) / 2, blocks = (ne + 7) / 8, shifts = (kw + 1) / 2;  // pairs: columns 2e, 2e + 1
  if (blocks > kFoldBlocks || shifts > kFoldShifts) return false;
  __m256i mask[kFoldBlocks][kFoldShifts];  // lanes whose ox = e0 + lane - shift is in [0, ow)
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int64_t q = 0; q < blocks; ++q)
    for (int64_t sh = 0; sh < shifts; ++sh) {
      const __m256i ix = _mm256_add_epi32(lane, _mm256_set1_epi32(int(8 * q - sh)));
      mask[q][sh] = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), ix),
                                        _mm256_cmpgt_epi32(_mm256_set1_epi32(int(ow)), ix));
    }
  const __m256 nz = _mm256_set1_ps(-0.0f);
  for (int64_t ki = 0; ki < g.kh; ++ki)
    for (int64_t oy = 0; oy < g.oh; ++oy) {
      float* d = pad + (oy * g.sh + ki) * PW;
      const float* in = src + ki * kw * ld + oy * ow;
      for (int64_t q = 0; q < blocks; ++q) {
        float* o = d + 16 * q;
        const __m256 a = _mm256_loadu_ps(o), b = _mm256_loadu_ps(o + 8);
        __m256 even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
        __m256 odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
        for (int64_t kj = 0; kj < kw; ++kj) {
          const __m256i m = mask[q][kj / 2];
          const float* x = in + kj * ld + 8 * q - kj / 2;  // lane 0's value (masked off where outside the row)
          const __m256 v = _mm256_blendv_ps(nz, _mm256_maskload_ps(x, m), _mm256_castsi256_ps(m));
          if (kj & 1)
            odd = _mm256_add_ps(odd, v);
          else
            even = _mm256_add_ps(even, v);
        }
        const __m256 lo = _mm256_unpacklo_ps(even, odd), hi = _mm256_unpackhi_ps(even, odd);  // e0 o0 e1 o1 | e4 ..
        _mm256_storeu_ps(o, _mm256_permute2f128_ps(lo, hi, 0x20));
        _mm256_storeu_ps(o + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
      }
    }
  return true;
}
#endif

// Whether the float fold may use fold_row_stride2 and fold_taps_stride2 (AVX2, read once).
bool fold_avx2() {
#ifdef WN_CONV_X86
  static const bool on = __builtin_cpu_supports("avx2");
  return on;
#else
  return false;
#endif
}

// Floats of the padded plane the fold accumulates in: fold_taps_stride2 may touch up to 15
// floats past the last row (the tail is zeroed with the plane).
inline int64_t fold_plane(const ConvGeom& g) { return padded_plane(g) + 16; }

// Adds the KH*KW rows starting at src (the unfolded columns of one channel) into the
// zeroed padded plane pad, tap by tap in increasing (ki, kj).
template <class T>
void fold_taps(const ConvGeom& g, const T* __restrict src, int64_t ld, T* __restrict pad) {
  const int64_t PW = g.w + 2 * g.pw;
  bool vec = false;
#ifdef WN_CONV_X86
  if constexpr (std::is_same_v<T, float>)
    if (g.sw == 2 && fold_avx2()) {
      if (g.ow % 8 != 0 && fold_taps_stride2(g, src, ld, pad)) return;
      vec = g.ow % 8 == 0;
    }
#endif
  for (int64_t ki = 0; ki < g.kh; ++ki)
    for (int64_t kj = 0; kj < g.kw; ++kj) {
      const T* row = src + (ki * g.kw + kj) * ld;
      for (int64_t oy = 0; oy < g.oh; ++oy) {
        T* __restrict d = pad + (oy * g.sh + ki) * PW + kj;
        const T* __restrict in = row + oy * g.ow;
        if (g.sw == 1) {
          for (int64_t ox = 0; ox < g.ow; ++ox) d[ox] += in[ox];
        } else if (vec) {
#ifdef WN_CONV_X86
          if constexpr (std::is_same_v<T, float>) fold_row_stride2(d, in, g.ow);
#endif
        } else if (g.sw == 2) {
          with_row_width(g.ow, [&](auto ow) {
            for (int64_t ox = 0; ox < ow; ++ox) d[2 * ox] += in[ox];
          });
        } else {
          for (int64_t ox = 0; ox < g.ow; ++ox) d[ox * g.sw] += in[ox];
        }
      }
    }
}

// Folds the KH*KW rows starting at src back into one channel plane dc (H, W): the sum
// of the unfolded columns over every tap, accumulated in the padded plane `pad`
// (fold_plane floats).
template <class T>
void col2im_channel(const ConvGeom& g, const T* __restrict src, int64_t ld, T* __restrict dc, T* __restrict pad) {
  const int64_t PW = g.w + 2 * g.pw;
  std::fill(pad, pad + fold_plane(g), T(0));
  fold_taps(g, src, ld, pad);
  for (int64_t iy = 0; iy < g.h; ++iy) std::memcpy(dc + iy * g.w, pad + (iy + g.ph) * PW + g.pw, sizeof(T) * g.w);
}

constexpr int64_t kChunkCols = 128;      // GEMM columns per chunk (forward, data gradient)
constexpr int64_t kWeightChunkCols = 512;  // columns (reduction length) per chunk for dw
constexpr int64_t kChannelGroups = 8;      // most channel groups (tasks) of the weight gradient
constexpr int64_t kMinGroupCols = 48;      // fewest columns of dw per group where the input has them
// With at least this many tasks in a convolution's own loop, each of its products runs as one
// block of C (CpuGemmA's `whole`: B packed once instead of once per block; the same bits).
// From the shape alone, like every split here: as many tasks as the weight gradient's channel
// groups; on more cores than that, such a convolution leaves some idle.
constexpr int64_t kTasksForWhole = 8;

// Images per chunk so that a chunk has at least `cols` output columns.
int64_t images_per_chunk(const ConvGeom& g, int64_t cols) {
  const int64_t P = g.oh * g.ow;
  return std::clamp<int64_t>((cols + P - 1) / P, 1, g.n);
}

// Images per chunk of the forward and data-gradient passes: at least kChunkCols columns, and
// up to twice that many images where that makes the chunks equal and even in number (32
// images of 7x7 planes: 8 chunks of 4, not 10 of 3 and one of 2, which leave a core idle at
// the end), from the shape alone. On the own SGEMM an output column's sums do not depend on
// the chunks unless a chunk's product splits its inner dimension (cpu_gemm's k split: K >=
// 8192 on an output too small to split by rows or columns; not in the DCGAN or Fashion-MNIST
// models), which depends on the chunk's columns; on Eigen the chunk's width can change the
// rounding too. Either way the results stay the same for any thread count.
int64_t images_per_output_chunk(const ConvGeom& g) {
  const int64_t nb = images_per_chunk(g, kChunkCols);
  for (int64_t b = nb; b <= std::min(2 * nb, g.n); ++b)
    if (g.n % b == 0 && (g.n / b) % 2 == 0) return b;
  return nb;
}

// Whether the kernel covers the whole unpadded input (one output pixel): then each
// image's unfolded column is the image itself and the conv is a matrix product.
bool fully_connected(const ConvGeom& g) {
  return g.oh == 1 && g.ow == 1 && g.ph == 0 && g.pw == 0 && g.kh == g.h && g.kw == g.w;
}

// Unfolds channels [c0, c1) of images [b0, b0 + m) into col ((c1 - c0) * KH*KW, m * P):
// image b's columns start at (b - b0) * P.
// Split into tasks of at least this many unfolded values when a kernel has few chunks.
constexpr int64_t kUnfoldGrain = 1 << 15;

template <class T>
void im2col_chunk(const ConvGeom& g, const T* x, int64_t b0, int64_t m, int64_t c0, int64_t c1, T* col) {
  const int64_t P = g.oh * g.ow, cols = m * P, kk = g.kh * g.kw, nc = c1 - c0;
  parallel_for(m * nc, std::max<int64_t>(1, kUnfoldGrain / (kk * P)), [&](int64_t s, int64_t e) {
    CpuScratch pad(sizeof(T) * padded_plane(g));
    for (int64_t i = s; i < e; ++i) {
      const int64_t b = i / nc, ci = c0 + i % nc;
      im2col_channel(g, x + ((b0 + b) * g.cin + ci) * g.h * g.w, col + (ci - c0) * kk * cols + b * P, cols,
                     pad.as<T>());
    }
  });
}

// Folds col (Cin * KH*KW, m * P) back into images [b0, b0 + m) of dx.
template <class T>
void col2im_chunk(const ConvGeom& g, const T* col, int64_t b0, int64_t m, T* dx) {
  const int64_t P = g.oh * g.ow, cols = m * P, kk = g.kh * g.kw;
  parallel_for(m * g.cin, std::max<int64_t>(1, kUnfoldGrain / (kk * P)), [&](int64_t s, int64_t e) {
    CpuScratch pad(sizeof(T) * fold_plane(g));
    for (int64_t i = s; i < e; ++i) {
      const int64_t b = i / g.cin, ci = i % g.cin;
      col2im_channel(g, col + ci * kk * cols + b * P, cols, dx + ((b0 + b) * g.cin + ci) * g.h * g.w, pad.as<T>());
    }
  });
}

// Copies planes [s, e) of src (m, C, P) into the channel-major matrix dst (C, m*P)
// whose rows have leading dimension ld: plane (b, c) goes to row c, columns b*P...
template <class T>
void to_channel_major(const T* src, int64_t c, int64_t p, int64_t s, int64_t e, T* dst, int64_t ld) {
  for (int64_t i = s; i < e; ++i) std::memcpy(dst + (i % c) * ld + (i / c) * p, src + i * p, sizeof(T) * p);
}

// A task's scratch buffer, grown on demand (from the CPU allocator's cache).
template <class T>
class TaskBuffer {
 public:
  T* get(int64_t count) {
    if (count > n_) {
      s_.reset();
      s_ = std::make_unique<CpuScratch>(sizeof(T) * size_t(count));
      n_ = count;
    }
    return s_ ? s_->as<T>() : nullptr;
  }

 private:
  std::unique_ptr<CpuScratch> s_;
  int64_t n_ = 0;
};

// Runs f(b0, m, buf, t, whole) for the chunks of images [b0, b0 + m) of the forward and
// backward-data passes, chunks split over tasks; each task has its own buffer buf (for the
// unfolded or the padded images) and, when a chunk holds several images, a (Cout, nb*P)
// buffer t; whole: there are at least kTasksForWhole chunks (each chunk's product then runs as
// one block).
template <class T, class F>
void for_image_chunks(const ConvGeom& g, F f) {
  const int64_t P = g.oh * g.ow;
  const int64_t nb = images_per_output_chunk(g), chunks = (g.n + nb - 1) / nb;
  parallel_for(chunks, 1, [&](int64_t s, int64_t e) {
    TaskBuffer<T> buf;
    CpuScratch t(nb > 1 ? sizeof(T) * g.cout * nb * P : 0);
    for (int64_t c = s; c < e; ++c) {
      const int64_t b0 = c * nb;
      f(b0, std::min(nb, g.n - b0), buf, t.as<T>(), chunks >= kTasksForWhole);
    }
  });
}

// Whether this conv's float products pack their panels straight from the images.
template <class T>
bool implicit_gemm() {
  return std::is_same_v<T, float> && cpu_implicit_conv_enabled();
}

// Channels [c0, c1) of images [b0, b0 + m) of x with the convolution's zero border, in the
// task's buffer: what the implicit forward and weight gradient read.
PaddedPlanes pad_input(const ConvGeom& g, const float* x, int64_t b0, int64_t m, int64_t c0, int64_t c1,
                       TaskBuffer<float>& buf) {
  float* dst = buf.get(padded_planes_size(m, c1 - c0, g.h, g.w, g.ph, g.pw));
  return pad_planes(x, g.cin, g.h, g.w, b0, m, c0, c1, g.ph, g.pw, dst);
}

// Offsets of the unfolded rows (c, ki, kj) of `channels` channels in planes padded as
// pad_input's: c * plane + ki * row + kj.
std::vector<int64_t> input_taps(const ConvGeom& g, int64_t channels) {
  const int64_t row = g.w + 2 * g.pw, plane = (g.h + 2 * g.ph) * row;
  std::vector<int64_t> tap(size_t(channels * g.kh * g.kw));
  size_t i = 0;
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t ki = 0; ki < g.kh; ++ki)
      for (int64_t kj = 0; kj < g.kw; ++kj) tap[i++] = c * plane + ki * row + kj;
  return tap;
}

// The unfolded matrix of padded input planes: columns (b, oy, ox) read at the stride.
Unfolded input_unfolded(const ConvGeom& g, const PaddedPlanes& pp, const int64_t* tap) {
  Unfolded u;
  u.data = pp.data;
  u.tap = tap;
  u.image = pp.image;
  u.row = g.sh * pp.row;
  u.stride = g.sw;
  u.width = g.ow;
  u.per_image = g.oh * g.ow;
  return u;
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
  const CpuGemmA<T> wa(false, w, K, g.cout, K);  // the weights, packed once for every chunk
  const bool implicit = implicit_gemm<T>();  // read once: the taps below are built for it
  const std::vector<int64_t> tap = implicit ? input_taps(g, g.cin) : std::vector<int64_t>();
  for_image_chunks<T>(g, [&](int64_t b0, int64_t m, TaskBuffer<T>& buf, T* yt, bool whole) {
    const int64_t cols = m * P;
    // One image: straight into its NCHW output; several: (Cout, m*P), then scattered.
    T* out = m == 1 ? y + b0 * g.cout * P : yt;
    if (implicit && wa.implicit_ok(cols)) {
      if constexpr (std::is_same_v<T, float>) {
        const Unfolded u = input_unfolded(g, pad_input(g, x, b0, m, 0, g.cin, buf), tap.data());
        wa.mul_implicit(cols, 1.0f, unfolded_packer(u), 0.0f, out, cols, whole);
      }
    } else {
      T* col = buf.get(K * cols);
      im2col_chunk(g, x, b0, m, int64_t(0), g.cin, col);
      wa.mul(false, cols, T(1), col, cols, T(0), out, cols, whole);
    }
    for (int64_t b = 0; b < m; ++b)
      for (int64_t co = 0; co < g.cout; ++co) {
        T* dst = y + ((b0 + b) * g.cout + co) * P;
        const T add = bias ? bias[co] : T(0);
        if (m == 1) {
          if (bias)
            for (int64_t j = 0; j < P; ++j) dst[j] += add;
        } else {
          const T* src = out + co * cols + b * P;
          for (int64_t j = 0; j < P; ++j) dst[j] = src[j] + add;
        }
      }
  });
}

template <class T>
void conv_backward_data(const ConvGeom& g, const T* dy, const T* w, T* dx) {
  const int64_t K = g.cin * g.kh * g.kw, P = g.oh * g.ow;
  if (fully_connected(g)) {  // dx (N, K) = dy (N, Cout) w
    cpu_gemm<T>(false, false, g.n, K, g.cout, T(1), dy, g.cout, w, K, T(0), dx, K);
    return;
  }
  const CpuGemmA<T> wt(true, w, K, K, g.cout);  // w^T, packed once for every chunk
  const bool implicit = implicit_gemm<T>();
  std::vector<int64_t> tap;  // dy's channel planes: B's row co at co * P of an image
  if (implicit)
    for (int64_t co = 0; co < g.cout; ++co) tap.push_back(co * P);
  for_image_chunks<T>(g, [&](int64_t b0, int64_t m, TaskBuffer<T>& buf, T* dyt, bool whole) {
    const int64_t cols = m * P;
    T* col = buf.get(K * cols);
    const T* src = dy + b0 * g.cout * P;
    // Several images: B = dy's chunk as (Cout, m*P), packed straight from (m, Cout, P).
    if (m > 1 && implicit && wt.implicit_ok(cols)) {
      if constexpr (std::is_same_v<T, float>) {
        Unfolded u;
        u.data = src;
        u.tap = tap.data();
        u.image = g.cout * P;
        u.width = P;
        u.per_image = P;
        wt.mul_implicit(cols, 1.0f, unfolded_packer(u), 0.0f, col, cols, whole);
      }
    } else {
      if (m > 1) {  // (m, Cout, P) -> (Cout, m*P)
        to_channel_major(src, g.cout, P, 0, m * g.cout, dyt, cols);
        src = dyt;
      }
      wt.mul(false, cols, T(1), src, cols, T(0), col, cols, whole);
    }
    col2im_chunk(g, col, b0, m, dx);
  });
}

template <class T>
void conv_backward_weight(const ConvGeom& g, const T* x, const T* dy, T* dw) {
  const int64_t K = g.cin * g.kh * g.kw, P = g.oh * g.ow, NP = g.n * P, kk = g.kh * g.kw;
  if (fully_connected(g)) {  // dw (Cout, K) = dy^T (Cout, N) x (N, K)
    cpu_gemm<T>(true, false, g.cout, K, g.n, T(1), dy, g.cout, x, K, T(0), dw, K);
    return;
  }
  const bool implicit = implicit_gemm<T>();  // read once: the taps below are built for it
  // dy as (Cout, N*P), shared by every task, where the products keep pointing into it (the
  // implicit path packs each chunk's dy for the SGEMM and needs no copy of the whole).
  CpuScratch dyt(implicit ? 0 : sizeof(T) * g.cout * NP);
  T* t = dyt.as<T>();
  if (!implicit)
    parallel_for(g.n * g.cout, std::max<int64_t>(1, 4096 / P),
                 [&](int64_t s, int64_t e) { to_channel_major(dy, g.cout, P, s, e, t, NP); });
  // Channel groups of at least kMinGroupCols columns of dw where the input has them (a
  // group re-reads dy for its own product), at most kChannelGroups of them.
  const int64_t per = std::max((g.cin + kChannelGroups - 1) / kChannelGroups,
                               std::min(g.cin, (kMinGroupCols + kk - 1) / kk)),
                groups = (g.cin + per - 1) / per;
  const int64_t nb = images_per_chunk(g, kWeightChunkCols), chunks = (g.n + nb - 1) / nb;
  // Fewer than kChannelGroups groups (1- or 3-channel images, or few wide taps) leave cores
  // idle: the chunks are then dealt into `parts` fixed ranges too, each summed into its own
  // partial dw, the partials added in order. Every count comes from the shape alone, never
  // from the threads, and no range is empty.
  const int64_t wanted = std::min(chunks, (kChannelGroups + groups - 1) / groups);
  const int64_t per_part = (chunks + wanted - 1) / wanted, parts = (chunks + per_part - 1) / per_part;
  CpuScratch partial(parts > 1 ? sizeof(T) * parts * g.cout * K : 0);
  // dy's chunks packed for the SGEMM: all at once where several channel groups share them
  // (each would otherwise pack them for its own product), else by the one task using each.
  // Implicit: one image's dy (Cout, P) is packed where it lies, several images' through a
  // channel-major copy of the chunk made right before (in cache), into `copy`: a buffer that
  // lives as long as the CpuGemmA built on it (which may read it again where it did not pack).
  const auto pack_chunk = [&](int64_t c, TaskBuffer<T>& copy) {
    const int64_t b0 = c * nb, m = std::min(nb, g.n - b0), cols = m * P;
    if (!implicit) return std::make_unique<CpuGemmA<T>>(false, t + b0 * P, NP, g.cout, cols);
    const T* src = dy + b0 * g.cout * P;
    if (m == 1) return std::make_unique<CpuGemmA<T>>(false, src, P, g.cout, cols);
    T* chunk = copy.get(g.cout * cols);
    to_channel_major(src, g.cout, P, 0, m * g.cout, chunk, cols);
    return std::make_unique<CpuGemmA<T>>(false, chunk, cols, g.cout, cols);
  };
  std::vector<std::unique_ptr<CpuGemmA<T>>> shared(groups > 1 ? chunks : 0);
  std::vector<TaskBuffer<T>> shared_copies(shared.size());  // each chunk's copy, kept (empty unless used)
  if (groups > 1)
    parallel_for(chunks, 1, [&](int64_t s, int64_t e) {
      for (int64_t c = s; c < e; ++c) shared[c] = pack_chunk(c, shared_copies[c]);
    });
  const bool whole = groups * parts >= kTasksForWhole;
  const std::vector<int64_t> tap = implicit ? input_taps(g, per) : std::vector<int64_t>();  // any group's
  parallel_for(groups * parts, 1, [&](int64_t s, int64_t e) {
    TaskBuffer<T> buf, copy;  // copy: the chunk's dy, reused once its product is done
    for (int64_t task = s; task < e; ++task) {
      const int64_t grp = task / parts, part = task % parts;
      const int64_t c0 = grp * per, c1 = std::min(g.cin, c0 + per), kg = (c1 - c0) * kk;
      T* out = parts > 1 ? partial.as<T>() + part * g.cout * K : dw;
      const int64_t first = part * per_part, last = std::min(chunks, first + per_part);
      for (int64_t c = first; c < last; ++c) {
        const int64_t b0 = c * nb, m = std::min(nb, g.n - b0), cols = m * P;
        // out[:, c0*kk : c1*kk] (+)= dy_chunk (Cout, cols) col^T (cols, kg), chunks in order.
        const T beta = c == first ? T(0) : T(1);
        std::unique_ptr<CpuGemmA<T>> own = groups > 1 ? nullptr : pack_chunk(c, copy);
        const CpuGemmA<T>& dya = groups > 1 ? *shared[c] : *own;
        if (implicit && dya.implicit_ok(kg)) {
          if constexpr (std::is_same_v<T, float>) {
            const Unfolded u = input_unfolded(g, pad_input(g, x, b0, m, c0, c1, buf), tap.data());
            dya.mul_implicit(kg, 1.0f, unfolded_t_packer(u), beta, out + c0 * kk, K, whole);
          }
        } else {
          T* col = buf.get(kg * cols);
          im2col_chunk(g, x, b0, m, c0, c1, col);
          dya.mul(true, kg, T(1), col, cols, beta, out + c0 * kk, K, whole);
        }
      }
    }
  });
  if (parts > 1) {
    const T* pp = partial.as<T>();
    const int64_t total = g.cout * K;
    parallel_for(total, 4096, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) {
        T acc = pp[i];
        for (int64_t q = 1; q < parts; ++q) acc += pp[q * total + i];
        dw[i] = acc;
      }
    });
  }
}

}  // namespace

namespace {
enum class ConvChoice { Implicit, Im2col };

ConvChoice parse_conv_choice() {
  const char* e = std::getenv("WNGAN_CPU_CONV");
  const std::string v = e ? e : "";
  if (v.empty() || v == "auto" || v == "implicit") return ConvChoice::Implicit;
  if (v == "im2col") return ConvChoice::Im2col;
  throw std::runtime_error("WNGAN_CPU_CONV='" + v + "': expected auto (the default), implicit or im2col");
}

std::atomic<int> g_conv_forced{-1};  // set_cpu_implicit_conv: -1 none, 0 im2col, 1 implicit
}  // namespace

bool cpu_implicit_conv_enabled() {
  static const ConvChoice c = parse_conv_choice();
  const int f = g_conv_forced.load(std::memory_order_relaxed);
  return own_sgemm_enabled() && (f >= 0 ? f == 1 : c == ConvChoice::Implicit);
}

bool set_cpu_implicit_conv(bool on) {
  const bool was = cpu_implicit_conv_enabled();
  g_conv_forced.store(on ? 1 : 0);
  return was;
}

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
