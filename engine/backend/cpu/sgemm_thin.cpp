// The own SGEMM's thin products: one column of C (a matrix-vector product: D's last
// convolution), one row (its weight gradient) or an inner dimension of 1 (its data gradient:
// an outer product). The tiled kernels run them with 15 of every 16 columns, or 5 of every 6
// rows, padding. Every element here is the tiled kernels' arithmetic in their order: over
// each block of kSgemmBlockK of the inner dimension, a fused multiply-add chain from +0 in
// order of p, times alpha, then stored (first block, beta 0), fused with beta C (first block)
// or added to C (later blocks). So these give the same bits as own_sgemm's tiles.
#include <algorithm>
#include <cmath>

#include "engine/backend/cpu/sgemm.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "engine/backend/cpu/avx2.h"
#define WN_THIN_X86 1
#endif

namespace wn {

namespace {

constexpr int64_t kKc = kSgemmBlockK;

// C = alpha acc (first block: + beta C fused where beta != 0; later blocks: + C), one element.
inline void finish(float acc, float alpha, float beta, bool first, float& c) {
  const float x = alpha * acc;
  c = first ? (beta == 0.0f ? x : std::fma(beta, c, x)) : std::fma(1.0f, c, x);
}

#ifdef WN_THIN_X86
#define WN_THIN_TARGET __attribute__((target("avx2,fma")))
// finish for 8 consecutive elements of C.
WN_THIN_TARGET inline void finish8(__m256 acc, float alpha, float beta, bool first, float* c) {
  const __m256 x = _mm256_mul_ps(_mm256_set1_ps(alpha), acc);
  if (first && beta == 0.0f) return _mm256_storeu_ps(c, x);
  const __m256 bt = _mm256_set1_ps(first ? beta : 1.0f);
  _mm256_storeu_ps(c, _mm256_fmadd_ps(bt, _mm256_loadu_ps(c), x));
}

// n == 1 with A stored by rows (A(i, p) = a[i * lda + p]): 8 rows at a time, each 8 x 8
// block of A transposed so that a register holds 8 rows' values at one p.
WN_THIN_TARGET void column(int64_t m, int64_t k, float alpha, const float* a, int64_t lda, const float* bv,
                           float beta, float* c, int64_t ldc) {
  int64_t i = 0;
  for (; i + 8 <= m; i += 8) {
    alignas(32) float out[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (beta != 0.0f)  // (with beta 0, C is not read)
      for (int r = 0; r < 8; ++r) out[r] = c[(i + r) * ldc];
    for (int64_t pc = 0; pc < k; pc += kKc) {
      const int64_t pe = std::min(k, pc + kKc);
      __m256 acc = _mm256_setzero_ps();
      int64_t p = pc;
      for (; p + 8 <= pe; p += 8) {
        __m256 v[8];
        for (int r = 0; r < 8; ++r) v[r] = _mm256_loadu_ps(a + (i + r) * lda + p);
        transpose8(v);  // v[q]: the 8 rows at p + q
        for (int q = 0; q < 8; ++q) acc = _mm256_fmadd_ps(v[q], _mm256_set1_ps(bv[p + q]), acc);
      }
      for (; p < pe; ++p) {
        alignas(32) float col[8];
        for (int r = 0; r < 8; ++r) col[r] = a[(i + r) * lda + p];
        acc = _mm256_fmadd_ps(_mm256_load_ps(col), _mm256_set1_ps(bv[p]), acc);
      }
      finish8(acc, alpha, beta, pc == 0, out);
    }
    for (int r = 0; r < 8; ++r) c[(i + r) * ldc] = out[r];
  }
  for (; i < m; ++i)
    for (int64_t pc = 0; pc < k; pc += kKc) {
      float acc = 0.0f;
      for (int64_t p = pc; p < std::min(k, pc + kKc); ++p) acc = std::fma(a[i * lda + p], bv[p], acc);
      finish(acc, alpha, beta, pc == 0, c[i * ldc]);
    }
}

// m == 1 with B stored by rows (B(p, j) = b[p * ldb + j]): 32 columns at a time in four
// independent chains, then 8, then one by one. A(0, p) = a[p * stride].
WN_THIN_TARGET void row(int64_t n, int64_t k, float alpha, const float* a, int64_t stride, const float* b, int64_t ldb,
                        float beta, float* c) {
  int64_t j = 0;
  for (; j + 32 <= n; j += 32)
    for (int64_t pc = 0; pc < k; pc += kKc) {
      __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
      for (int64_t p = pc; p < std::min(k, pc + kKc); ++p) {
        const __m256 av = _mm256_set1_ps(a[p * stride]);
        for (int q = 0; q < 4; ++q) acc[q] = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + p * ldb + j + 8 * q), acc[q]);
      }
      for (int q = 0; q < 4; ++q) finish8(acc[q], alpha, beta, pc == 0, c + j + 8 * q);
    }
  for (; j + 8 <= n; j += 8)
    for (int64_t pc = 0; pc < k; pc += kKc) {
      __m256 acc = _mm256_setzero_ps();
      for (int64_t p = pc; p < std::min(k, pc + kKc); ++p)
        acc = _mm256_fmadd_ps(_mm256_set1_ps(a[p * stride]), _mm256_loadu_ps(b + p * ldb + j), acc);
      finish8(acc, alpha, beta, pc == 0, c + j);
    }
  for (; j < n; ++j)
    for (int64_t pc = 0; pc < k; pc += kKc) {
      float acc = 0.0f;
      for (int64_t p = pc; p < std::min(k, pc + kKc); ++p) acc = std::fma(a[p * stride], b[p * ldb + j], acc);
      finish(acc, alpha, beta, pc == 0, c[j]);
    }
}

// k == 1 with B's row stored contiguously: C(i, j) = alpha fma(A(i, 0), b[j], +0) (+ beta C).
// A(i, 0) = a[i * stride].
WN_THIN_TARGET void outer(int64_t m, int64_t n, float alpha, const float* a, int64_t stride, const float* b,
                          float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    const __m256 av = _mm256_set1_ps(a[i * stride]);
    float* ci = c + i * ldc;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
      finish8(_mm256_fmadd_ps(av, _mm256_loadu_ps(b + j), _mm256_setzero_ps()), alpha, beta, true, ci + j);
    for (; j < n; ++j) finish(std::fma(a[i * stride], b[j], 0.0f), alpha, beta, true, ci[j]);
  }
}
#endif

}  // namespace

bool own_sgemm_thin(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                    const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
#ifdef WN_THIN_X86
  if (m <= 0 || n <= 0 || k <= 0) return false;
  if (n == 1 && !ta && (tb || ldb == 1)) {  // B's column contiguous: b[p] (tb: B(p, 0) = b[p])
    column(m, k, alpha, a, lda, b, beta, c, ldc);
    return true;
  }
  if (m == 1 && !tb) {  // A(0, p) = a[p * lda] (ta) or a[p]
    row(n, k, alpha, a, ta ? lda : 1, b, ldb, beta, c);
    return true;
  }
  if (k == 1 && !tb) {  // B(0, j) = b[j]; A(i, 0) = a[i] (ta) or a[i * lda]
    outer(m, n, alpha, a, ta ? 1 : lda, b, beta, c, ldc);
    return true;
  }
#else
  (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb, (void)beta;
  (void)c, (void)ldc;
#endif
  return false;
}

}  // namespace wn
