// The own single-precision GEMM: the BLIS loop nest. C is computed in blocks of kNc
// columns; for each, op(B) is packed kKc rows at a time into panels of kNr columns and
// op(A) kMc rows at a time into panels of kMr rows (zero-padded at the edges), and a
// micro-kernel adds one tile of op(A) op(B) over kKc in registers: kMr x kNr (AVX2), or
// 2kMr x 2kNr from two panels of each (AVX-512, sgemm_wide.inc). Every C
// element sums its k in the same order whatever the threads (blocks of kKc in sequence,
// each in order of p), so results are deterministic.
#include "engine/backend/cpu/sgemm.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define WN_SGEMM_X86 1
#include "engine/backend/cpu/avx2.h"
#endif

namespace wn {

namespace {

constexpr int kMr = 6, kNr = 16;  // the tile of C held in registers
static_assert(kMr == kSgemmPanelRows && kNr == kSgemmPanelCols);
constexpr int64_t kKc = kSgemmBlockK;  // inner-dimension block: a 6x16 tile's A and B panels stay in L1
constexpr int64_t kMc = 144;      // rows of A packed at once (L2)
constexpr int64_t kNc = 2048;     // columns of B packed at once (L3)

#ifdef WN_SGEMM_X86
// One full panel of kNr columns of B(p, j) = b[j * ldb + p]: d[p * kNr + j] for p < kc,
// 8 x 8 blocks at a time (the packing of a transposed B is a transpose).
__attribute__((target("avx2"))) void pack_b_t_panel(const float* b, int64_t ldb, int64_t kc, float* d) {
  int64_t p = 0;
  for (; p + 8 <= kc; p += 8)
    for (int h = 0; h < 2; ++h) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(b + (h * 8 + i) * ldb + p);
      transpose8(r);
      for (int i = 0; i < 8; ++i) _mm256_storeu_ps(d + (p + i) * kNr + h * 8, r[i]);
    }
  for (; p < kc; ++p)
    for (int j = 0; j < kNr; ++j) d[p * kNr + j] = b[j * ldb + p];
}

// One full panel of kMr rows of A(i, p) = a[i * lda + p]: d[p * kMr + r] for p < kc.
__attribute__((target("avx2"))) void pack_a_panel(const float* a, int64_t lda, int64_t kc, float* d) {
  static_assert(kMr == 6, "pack_a_panel transposes 6 rows (and 2 of zeros) 8 x 8");
  const __m256i six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
  int64_t p = 0;
  for (; p + 8 <= kc; p += 8) {
    __m256 r[8];
    for (int i = 0; i < kMr; ++i) r[i] = _mm256_loadu_ps(a + i * lda + p);
    r[6] = r[7] = _mm256_setzero_ps();
    transpose8(r);
    // Each store writes 8 values, the 2 past the 6 overwritten by the next; the last masked.
    for (int i = 0; i < 7; ++i) _mm256_storeu_ps(d + (p + i) * kMr, r[i]);
    _mm256_maskstore_ps(d + (p + 7) * kMr, six, r[7]);
  }
  for (; p < kc; ++p)
    for (int i = 0; i < kMr; ++i) d[p * kMr + i] = a[i * lda + p];
}
#endif

// Packs op(A)[i0 : i0+mc, p0 : p0+kc] into panels of kMr rows, each p-major (kMr values
// per p) at dst + (row offset) * kc; rows past mc are zeros.
void pack_a(bool ta, const float* a, int64_t lda, int64_t i0, int64_t p0, int64_t mc, int64_t kc, float* dst) {
  if (ta) {
    // A(i, p) = a[p * lda + i]: each row of a once, front to back, into every panel
    // (walking down a column at a stride of lda keeps hitting the same cache sets).
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = a + (p0 + p) * lda + i0;
      for (int64_t q = 0; q < mc; q += kMr) {
        const int rows = int(std::min<int64_t>(kMr, mc - q));
        float* d = dst + q * kc + p * kMr;
        for (int r = 0; r < rows; ++r) d[r] = src[q + r];
        for (int r = rows; r < kMr; ++r) d[r] = 0.0f;
      }
    }
    return;
  }
  for (int64_t q = 0; q < mc; q += kMr) {  // A(i, p) = a[i * lda + p]: rows of a are rows of the panel
    const int rows = int(std::min<int64_t>(kMr, mc - q));
    float* d = dst + q * kc;
#ifdef WN_SGEMM_X86
    if (rows == kMr) {
      pack_a_panel(a + (i0 + q) * lda + p0, lda, kc, d);
      continue;
    }
#endif
    for (int r = 0; r < rows; ++r) {
      const float* src = a + (i0 + q + r) * lda + p0;
      for (int64_t p = 0; p < kc; ++p) d[p * kMr + r] = src[p];
    }
    for (int r = rows; r < kMr; ++r)
      for (int64_t p = 0; p < kc; ++p) d[p * kMr + r] = 0.0f;
  }
}

#ifdef WN_SGEMM_X86
// pack_b of a B stored row by row (B(p, j) = b[p * ldb + j], b at [p0, j0]): each row of b
// once, front to back, 16 floats at a time by two vector copies (a memcpy call per 16 floats
// cost more than the copy where few rows of A use each packed value).
__attribute__((target("avx2"))) void pack_b_rows(const float* b, int64_t ldb, int64_t kc, int64_t nc,
                                                 float* dst) {
  const int64_t whole = nc / kNr * kNr;
  for (int64_t p = 0; p < kc; ++p) {
    const float* src = b + p * ldb;
    float* o = dst + p * kNr;
    for (int64_t q = 0; q < whole; q += kNr) {
      _mm256_store_ps(o + q * kc, _mm256_loadu_ps(src + q));
      _mm256_store_ps(o + q * kc + 8, _mm256_loadu_ps(src + q + 8));
    }
    if (whole < nc) {
      float* t = o + whole * kc;
      int j = 0;
      for (; j < nc - whole; ++j) t[j] = src[whole + j];
      for (; j < kNr; ++j) t[j] = 0.0f;
    }
  }
}
#endif

// Packs op(B)[p0 : p0+kc, j0 : j0+nc] into panels of kNr columns, each p-major (kNr values
// per p) at dst + (column offset) * kc; columns past nc are zeros.
void pack_b(bool tb, const float* b, int64_t ldb, int64_t p0, int64_t j0, int64_t kc, int64_t nc, float* dst) {
  if (!tb) {
#ifdef WN_SGEMM_X86
    return pack_b_rows(b + p0 * ldb + j0, ldb, kc, nc, dst);
#else
    // B(p, j) = b[p * ldb + j]: each row of b once, front to back, into every panel.
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = b + (p0 + p) * ldb + j0;
      for (int64_t q = 0; q < nc; q += kNr) {
        const int cols = int(std::min<int64_t>(kNr, nc - q));
        float* o = dst + q * kc + p * kNr;
        std::memcpy(o, src + q, sizeof(float) * cols);
        for (int j = cols; j < kNr; ++j) o[j] = 0.0f;
      }
    }
    return;
#endif
  }
  for (int64_t q = 0; q < nc; q += kNr) {  // B(p, j) = b[j * ldb + p]: rows of b are columns of the panel
    const int cols = int(std::min<int64_t>(kNr, nc - q));
    float* d = dst + q * kc;
#ifdef WN_SGEMM_X86
    if (cols == kNr) {
      pack_b_t_panel(b + (j0 + q) * ldb + p0, ldb, kc, d);
      continue;
    }
#endif
    for (int j = 0; j < cols; ++j) {
      const float* src = b + (j0 + q + j) * ldb + p0;
      for (int64_t p = 0; p < kc; ++p) d[p * kNr + j] = src[p];
    }
    for (int j = cols; j < kNr; ++j)
      for (int64_t p = 0; p < kc; ++p) d[p * kNr + j] = 0.0f;
  }
}

// A 64-byte aligned buffer per thread, grown on demand.
struct PackBuffer {
  float* p = nullptr;
  size_t n = 0;
  float* get(size_t floats) {
    if (floats > n) {
      std::free(p);
      const size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
      p = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!p) throw std::bad_alloc();
      n = floats;
    }
    return p;
  }
  ~PackBuffer() { std::free(p); }
};

#ifdef WN_SGEMM_X86
// C tile row = alpha acc (+ beta C where beta != 0), 16 floats.
__attribute__((target("avx2,fma"))) inline void store_row(float* c, __m256 x0, __m256 x1, __m256 va, float beta) {
  x0 = _mm256_mul_ps(va, x0);
  x1 = _mm256_mul_ps(va, x1);
  if (beta != 0.0f) {
    const __m256 vb = _mm256_set1_ps(beta);
    x0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), x0);
    x1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), x1);
  }
  _mm256_storeu_ps(c, x0);
  _mm256_storeu_ps(c + 8, x1);
}

// One kMr x kNr tile: C[0:mr, 0:nr] = alpha sum_p A[p] B[p] (+ beta C), A and B packed.
__attribute__((target("avx2,fma"))) void kernel_avx2(int64_t kc, const float* __restrict A,
                                                     const float* __restrict B, float* C, int64_t ldc, float alpha,
                                                     float beta, int mr, int nr) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(),
         c11 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(),
         c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps(),
         c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(B), b1 = _mm256_load_ps(B + 8);
    __m256 a = _mm256_broadcast_ss(A + 0);
    c00 = _mm256_fmadd_ps(a, b0, c00);
    c01 = _mm256_fmadd_ps(a, b1, c01);
    a = _mm256_broadcast_ss(A + 1);
    c10 = _mm256_fmadd_ps(a, b0, c10);
    c11 = _mm256_fmadd_ps(a, b1, c11);
    a = _mm256_broadcast_ss(A + 2);
    c20 = _mm256_fmadd_ps(a, b0, c20);
    c21 = _mm256_fmadd_ps(a, b1, c21);
    a = _mm256_broadcast_ss(A + 3);
    c30 = _mm256_fmadd_ps(a, b0, c30);
    c31 = _mm256_fmadd_ps(a, b1, c31);
    a = _mm256_broadcast_ss(A + 4);
    c40 = _mm256_fmadd_ps(a, b0, c40);
    c41 = _mm256_fmadd_ps(a, b1, c41);
    a = _mm256_broadcast_ss(A + 5);
    c50 = _mm256_fmadd_ps(a, b0, c50);
    c51 = _mm256_fmadd_ps(a, b1, c51);
    A += kMr;
    B += kNr;
  }
  const __m256 va = _mm256_set1_ps(alpha);
  if (mr == kMr && nr == kNr) {
    store_row(C, c00, c01, va, beta);
    store_row(C + ldc, c10, c11, va, beta);
    store_row(C + 2 * ldc, c20, c21, va, beta);
    store_row(C + 3 * ldc, c30, c31, va, beta);
    store_row(C + 4 * ldc, c40, c41, va, beta);
    store_row(C + 5 * ldc, c50, c51, va, beta);
    return;
  }
  // An edge tile: the full tile into a buffer (the same arithmetic), then its valid part.
  alignas(64) float t[kMr * kNr];
  store_row(t, c00, c01, va, 0.0f);
  store_row(t + kNr, c10, c11, va, 0.0f);
  store_row(t + 2 * kNr, c20, c21, va, 0.0f);
  store_row(t + 3 * kNr, c30, c31, va, 0.0f);
  store_row(t + 4 * kNr, c40, c41, va, 0.0f);
  store_row(t + 5 * kNr, c50, c51, va, 0.0f);
  for (int r = 0; r < mr; ++r)
    for (int j = 0; j < nr; ++j) {
      float& dst = C[r * ldc + j];
      dst = beta == 0.0f ? t[r * kNr + j] : std::fma(beta, dst, t[r * kNr + j]);
    }
}

// 16 floats in one AVX-512 zmm register: the wide kernel AVX-512 hosts run.
struct Zmm {
  using R = __m512;
  __attribute__((target("avx512f"))) static R zero() { return _mm512_setzero_ps(); }
  __attribute__((target("avx512f"))) static R load(const float* p) { return _mm512_loadu_ps(p); }
  __attribute__((target("avx512f"))) static R bcast(const float* p) { return _mm512_set1_ps(*p); }
  __attribute__((target("avx512f"))) static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  // alpha x (+ beta c where beta != 0, fused), as store_row computes it.
  __attribute__((target("avx512f"))) static R scale(float alpha, R x, float beta, const float* c) {
    x = _mm512_mul_ps(_mm512_set1_ps(alpha), x);
    return beta != 0.0f ? _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_loadu_ps(c), x) : x;
  }
  __attribute__((target("avx512f"))) static void store(float* p, R x) { _mm512_storeu_ps(p, x); }
};

// 16 floats in two AVX2 ymm registers: the wide kernel's tiling on any AVX2 host (for tests;
// its 48 accumulators do not fit in 16 registers, so it is not fast).
struct YmmPair {
  struct R {
    __m256 lo, hi;
  };
  __attribute__((target("avx2,fma"))) static R zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
  __attribute__((target("avx2,fma"))) static R load(const float* p) {
    return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)};
  }
  __attribute__((target("avx2,fma"))) static R bcast(const float* p) {
    const __m256 v = _mm256_broadcast_ss(p);
    return {v, v};
  }
  __attribute__((target("avx2,fma"))) static R fma(R a, R b, R c) {
    return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
  }
  __attribute__((target("avx2,fma"))) static R scale(float alpha, R x, float beta, const float* c) {
    const __m256 va = _mm256_set1_ps(alpha);
    x = {_mm256_mul_ps(va, x.lo), _mm256_mul_ps(va, x.hi)};
    if (beta == 0.0f) return x;
    const __m256 vb = _mm256_set1_ps(beta);
    return {_mm256_fmadd_ps(vb, _mm256_loadu_ps(c), x.lo), _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), x.hi)};
  }
  __attribute__((target("avx2,fma"))) static void store(float* p, R x) {
    _mm256_storeu_ps(p, x.lo);
    _mm256_storeu_ps(p + 8, x.hi);
  }
};

#define WN_WIDE_NAME kernel_wide_avx512
#define WN_WIDE_TARGET "avx512f"
#define WN_WIDE_V Zmm
#include "engine/backend/cpu/sgemm_wide.inc"

#define WN_WIDE_NAME kernel_wide_ymm_pair
#define WN_WIDE_TARGET "avx2,fma"
#define WN_WIDE_V YmmPair
#include "engine/backend/cpu/sgemm_wide.inc"
#endif

enum class Choice { Own, Eigen };

bool cpu_has_avx2_fma() {
#ifdef WN_SGEMM_X86
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

bool cpu_has_avx512() {
#ifdef WN_SGEMM_X86
  return cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

struct Parsed {
  Choice choice;
  SgemmKernel kernel;
};

bool wide_kernel_agrees(SgemmKernel k);  // defined with the loop nest below

// The kernel auto picks: AVX-512 where the CPU has it and it passes its self-check (a
// warning on stderr where it does not), else AVX2.
SgemmKernel best_kernel() {
  if (!cpu_has_avx512()) return SgemmKernel::Avx2;
  if (wide_kernel_agrees(SgemmKernel::Avx512)) return SgemmKernel::Avx512;
  std::fprintf(stderr,
               "wngan: warning: the AVX-512 SGEMM kernel disagreed with the AVX2 kernel on its self-check; "
               "using the AVX2 kernel (please report this CPU: lscpu)\n");
  return SgemmKernel::Avx2;
}

Parsed parse_choice() {
  const char* e = std::getenv("WNGAN_CPU_GEMM");
  const std::string v = e ? e : "";
  const bool can = cpu_has_avx2_fma();
  if (v.empty() || v == "auto") return {can ? Choice::Own : Choice::Eigen, can ? best_kernel() : SgemmKernel::Avx2};
  if (v == "eigen") return {Choice::Eigen, can ? best_kernel() : SgemmKernel::Avx2};  // for set_own_sgemm
  if (v == "avx2") {
    if (!can) throw std::runtime_error("WNGAN_CPU_GEMM=avx2: this CPU has no AVX2 + FMA");
    return {Choice::Own, SgemmKernel::Avx2};
  }
  if (v == "avx512") {
    if (!cpu_has_avx512()) throw std::runtime_error("WNGAN_CPU_GEMM=avx512: this CPU has no AVX-512F");
    if (!wide_kernel_agrees(SgemmKernel::Avx512))
      throw std::runtime_error("WNGAN_CPU_GEMM=avx512: the AVX-512 kernel disagreed with the AVX2 kernel on its "
                               "self-check on this CPU (use avx2, and please report it)");
    return {Choice::Own, SgemmKernel::Avx512};
  }
  throw std::runtime_error("WNGAN_CPU_GEMM='" + v + "': expected auto (the default), avx512, avx2 or eigen");
}

const Parsed& parsed() {
  static const Parsed p = parse_choice();
  return p;
}

Choice choice() { return parsed().choice; }

}  // namespace

bool own_sgemm_supported() { return cpu_has_avx2_fma(); }

namespace {
std::atomic<int> g_forced{-1};         // set_own_sgemm: -1 none, 0 Eigen, 1 own
std::atomic<int> g_forced_kernel{-1};  // set_sgemm_kernel: -1 none, else an SgemmKernel
std::atomic<bool> g_thin{true};        // set_sgemm_thin
bool thin_enabled() { return g_thin.load(std::memory_order_relaxed); }
}  // namespace

bool set_sgemm_thin(bool on) { return g_thin.exchange(on); }

bool sgemm_kernel_supported(SgemmKernel k) {
  return k == SgemmKernel::Avx512 ? cpu_has_avx512() : cpu_has_avx2_fma();
}

SgemmKernel sgemm_kernel() {
  const int f = g_forced_kernel.load(std::memory_order_relaxed);
  return f >= 0 ? SgemmKernel(f) : parsed().kernel;
}

SgemmKernel set_sgemm_kernel(SgemmKernel k) {
  if (!sgemm_kernel_supported(k)) throw std::logic_error("set_sgemm_kernel: this CPU cannot run that kernel");
  const SgemmKernel was = sgemm_kernel();
  g_forced_kernel.store(int(k));
  return was;
}

bool own_sgemm_enabled() {
  const int f = g_forced.load(std::memory_order_relaxed);
  return f >= 0 ? f == 1 : choice() == Choice::Own;
}

bool set_own_sgemm(bool on) {
  const bool was = own_sgemm_enabled();
  g_forced.store(on && cpu_has_avx2_fma() ? 1 : 0);
  return was;
}

std::string sgemm_kernel_name() {
  if (own_sgemm_enabled()) switch (sgemm_kernel()) {
      case SgemmKernel::Avx512: return "own AVX-512 12x32 micro-kernel (AVX2 6x16 at the edges)";
      case SgemmKernel::WideOnAvx2: return "own 12x32 tiling on AVX2 register pairs (a test path)";
      case SgemmKernel::Avx2: return "own AVX2/FMA 6x16 micro-kernel";
    }
  if (!cpu_has_avx2_fma()) return "Eigen (no AVX2 + FMA on this CPU)";
  return g_forced.load() == 0 ? "Eigen (switched by the program)" : "Eigen (WNGAN_CPU_GEMM=eigen)";
}

namespace {

#ifdef WN_SGEMM_X86
// A 12 x 32 tile kernel (sgemm_wide.inc), or null for the 6 x 16 kernel alone.
using WideKernel = void (*)(int64_t, const float*, const float*, float*, int64_t, float, float);

WideKernel wide_kernel() {
  switch (sgemm_kernel()) {
    case SgemmKernel::Avx512: return kernel_wide_avx512;
    case SgemmKernel::WideOnAvx2: return kernel_wide_ymm_pair;
    case SgemmKernel::Avx2: break;
  }
  return nullptr;
}

// The tiles of C[0:mc, 0:nc] from A's panels at Ap and B's at Bp: whole 12 x 32 tiles on the
// wide kernel, the rest (edges) as 6 x 16 tiles; every element the same arithmetic either way.
void tiles_wide(int64_t kc, const float* Ap, const float* Bp, int64_t mc, int64_t nc, float* c, int64_t ldc,
                float alpha, float beta, WideKernel wide) {
  for (int64_t jr = 0; jr < nc; jr += 2 * kNr)
    for (int64_t ir = 0; ir < mc; ir += 2 * kMr) {
      if (mc - ir >= 2 * kMr && nc - jr >= 2 * kNr) {
        wide(kc, Ap + ir * kc, Bp + jr * kc, c + ir * ldc + jr, ldc, alpha, beta);
        continue;
      }
      for (int64_t j = jr; j < std::min(nc, jr + 2 * kNr); j += kNr)
        for (int64_t i = ir; i < std::min(mc, ir + 2 * kMr); i += kMr)
          kernel_avx2(kc, Ap + i * kc, Bp + j * kc, c + i * ldc + j, ldc, alpha, beta,
                      int(std::min<int64_t>(kMr, mc - i)), int(std::min<int64_t>(kNr, nc - j)));
    }
}

// The loop nest over blocks of C: B's block [pc, pc + kc) x [jc, jc + nc) packed by
// b_pack(pc, jc, kc, nc, dst), A's panels for rows [ic, ic + mc) and inner block [pc, pc + kc)
// from a_panels(ic, pc, mc, kc).
// wide: the 12 x 32 kernel, or null for the 6 x 16 one alone.
template <class BPack, class APanels>
void gemm_loop(int64_t m, int64_t n, int64_t k, float alpha, BPack b_pack, float beta, float* c, int64_t ldc,
               APanels a_panels, WideKernel wide = wide_kernel()) {
  thread_local PackBuffer bbuf;
  float* Bp = bbuf.get(size_t(kNc * kKc + kSgemmPackSlack));  // the slack: see SgemmBPacker
  for (int64_t jc = 0; jc < n; jc += kNc) {
    const int64_t nc = std::min(kNc, n - jc);
    for (int64_t pc = 0; pc < k; pc += kKc) {
      const int64_t kc = std::min(kKc, k - pc);
      b_pack(pc, jc, kc, nc, Bp);
      const float bt = pc == 0 ? beta : 1.0f;  // later blocks add to what the first wrote
      for (int64_t ic = 0; ic < m; ic += kMc) {
        const int64_t mc = std::min(kMc, m - ic);
        const float* Ap = a_panels(ic, pc, mc, kc);
        if (wide) {
          tiles_wide(kc, Ap, Bp, mc, nc, c + ic * ldc + jc, ldc, alpha, bt, wide);
          continue;
        }
        for (int64_t jr = 0; jr < nc; jr += kNr)
          for (int64_t ir = 0; ir < mc; ir += kMr)
            kernel_avx2(kc, Ap + ir * kc, Bp + jr * kc, c + (ic + ir) * ldc + jc + jr, ldc, alpha, bt,
                        int(std::min<int64_t>(kMr, mc - ir)), int(std::min<int64_t>(kNr, nc - jr)));
      }
    }
  }
}
#endif

// C = beta C for an empty inner dimension.
void scale_c(int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
}

#ifdef WN_SGEMM_X86
// gemm_loop's packing of a stored B.
auto stored_b(bool tb, const float* b, int64_t ldb) {
  return [=](int64_t pc, int64_t jc, int64_t kc, int64_t nc, float* dst) { pack_b(tb, b, ldb, pc, jc, kc, nc, dst); };
}

// gemm_loop's packing of a B given by a packer, from its column j0 on.
auto implicit_b(const SgemmBPacker& b, int64_t j0) {
  return [&b, j0](int64_t pc, int64_t jc, int64_t kc, int64_t nc, float* dst) {
    b.pack(b.ctx, pc, j0 + jc, kc, nc, dst);
  };
}

// The product of rows [r0, r0 + rows) of a packed op(A) with the B that b_pack packs (`who`
// names the caller in the error for rows outside A or not at a panel boundary).
template <class BPack>
void packed_product(const SgemmPackedA& a, int64_t r0, int64_t rows, int64_t n, float alpha, BPack b_pack,
                    float beta, float* c, int64_t ldc, const char* who) {
  if (r0 % kMr != 0 || r0 < 0 || rows < 0 || r0 + rows > a.m)
    throw std::logic_error(std::string(who) + ": rows outside the packed A or not at a panel boundary");
  if (rows == 0 || n <= 0) return;
  if (a.k <= 0) return scale_c(rows, n, beta, c, ldc);
  const float* base = a.data;
  gemm_loop(rows, n, a.k, alpha, b_pack, beta, c, ldc, [&](int64_t ic, int64_t pc, int64_t, int64_t kc) {
    return base + pc * a.mpad + (r0 + ic) * kc;
  });
}
#endif

// Whether kernel k writes the same bits as the 6 x 16 kernel alone on a product whose rows
// cross a block of kMc rows and end in a half tile, whose columns end in a half tile, whose
// inner dimension is a whole block then an odd remainder, with beta 0 and not, leaving C's
// elements outside the product alone. Picks no kernel through sgemm_kernel (it runs while
// that choice is made). Its buffers stay with the calling thread (as every product's do).
bool wide_kernel_agrees(SgemmKernel k) {
#ifdef WN_SGEMM_X86
  if (!sgemm_kernel_supported(k)) return false;
  WideKernel wide = nullptr;
  if (k == SgemmKernel::Avx512) wide = kernel_wide_avx512;
  if (k == SgemmKernel::WideOnAvx2) wide = kernel_wide_ymm_pair;
  constexpr int64_t m = kMc + 18, n = 80, kk = kKc + 43, ldc = n + 5;
  std::vector<float> a(size_t(m * kk)), b(size_t(kk * n)), c0(size_t(m * ldc)), c1;
  uint32_t h = 2463534242u;  // xorshift: values in [-1, 1) with every mantissa bit in use
  const auto next = [&h] {
    h ^= h << 13, h ^= h >> 17, h ^= h << 5;
    return float(int32_t(h)) * 0x1p-31f;
  };
  for (float& v : a) v = next();
  for (float& v : b) v = next();
  for (float& v : c0) v = next();
  c1 = c0;
  thread_local PackBuffer abuf;
  float* Ap = abuf.get(size_t(kMc * kKc));
  const auto a_panels = [&](int64_t ic, int64_t pc, int64_t mc, int64_t kc) {
    pack_a(false, a.data(), kk, ic, pc, mc, kc, Ap);
    return static_cast<const float*>(Ap);
  };
  for (const float beta : {0.0f, -0.5f}) {
    gemm_loop(m, n, kk, 0.75f, stored_b(false, b.data(), n), beta, c0.data(), ldc, a_panels, nullptr);
    gemm_loop(m, n, kk, 0.75f, stored_b(false, b.data(), n), beta, c1.data(), ldc, a_panels, wide);
    if (std::memcmp(c0.data(), c1.data(), sizeof(float) * c0.size()) != 0) return false;
  }
  return true;
#else
  (void)k;
  return false;
#endif
}

}  // namespace

bool sgemm_kernel_self_check(SgemmKernel k) { return wide_kernel_agrees(k); }

void own_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
#ifndef WN_SGEMM_X86
  (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb, (void)beta;
  (void)c, (void)ldc;
  throw std::logic_error("own_sgemm: not built for this processor");
#else
  if (!cpu_has_avx2_fma()) throw std::logic_error("own_sgemm: this CPU has no AVX2 + FMA");
  if (m <= 0 || n <= 0) return;
  if (k <= 0) return scale_c(m, n, beta, c, ldc);
  if (thin_enabled() && own_sgemm_thin(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)) return;
  thread_local PackBuffer abuf;
  float* Ap = abuf.get(size_t(kMc * kKc));
  gemm_loop(m, n, k, alpha, stored_b(tb, b, ldb), beta, c, ldc, [&](int64_t ic, int64_t pc, int64_t mc, int64_t kc) {
    pack_a(ta, a, lda, ic, pc, mc, kc, Ap);
    return static_cast<const float*>(Ap);
  });
#endif
}

int64_t own_sgemm_packed_size(int64_t m, int64_t k) { return std::max<int64_t>((m + kMr - 1) / kMr * kMr * k, 1); }

SgemmPackedA own_sgemm_pack(bool ta, const float* a, int64_t lda, int64_t m, int64_t k, float* dst) {
  if (!cpu_has_avx2_fma()) throw std::logic_error("own_sgemm_pack: this CPU has no AVX2 + FMA");
  SgemmPackedA p;
  p.m = m;
  p.k = k;
  p.mpad = (m + kMr - 1) / kMr * kMr;
  p.data = dst;
  // Block pc holds every row's panels for [pc, pc + kc): panel of rows [q, q + kMr) at q * kc.
  for (int64_t pc = 0; pc < k; pc += kKc) pack_a(ta, a, lda, 0, pc, m, std::min(kKc, k - pc), dst + pc * p.mpad);
  return p;
}

void own_sgemm_packed(const SgemmPackedA& a, int64_t r0, int64_t rows, bool tb, int64_t n, float alpha,
                      const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
#ifndef WN_SGEMM_X86
  (void)a, (void)r0, (void)rows, (void)tb, (void)n, (void)alpha, (void)b, (void)ldb, (void)beta, (void)c, (void)ldc;
  throw std::logic_error("own_sgemm_packed: not built for this processor");
#else
  packed_product(a, r0, rows, n, alpha, stored_b(tb, b, ldb), beta, c, ldc, "own_sgemm_packed");
#endif
}

void own_sgemm_packed_implicit(const SgemmPackedA& a, int64_t r0, int64_t rows, int64_t n, float alpha,
                               const SgemmBPacker& b, int64_t j0, float beta, float* c, int64_t ldc) {
#ifndef WN_SGEMM_X86
  (void)a, (void)r0, (void)rows, (void)n, (void)alpha, (void)b, (void)j0, (void)beta, (void)c, (void)ldc;
  throw std::logic_error("own_sgemm_packed_implicit: not built for this processor");
#else
  packed_product(a, r0, rows, n, alpha, implicit_b(b, j0), beta, c, ldc, "own_sgemm_packed_implicit");
#endif
}

}  // namespace wn
