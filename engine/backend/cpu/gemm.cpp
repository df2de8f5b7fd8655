// CPU matrix products: the own single-threaded SGEMM (sgemm.h; Eigen's where the CPU lacks
// AVX2 + FMA, and for double), split over oneTBB tasks by
// blocks of C's columns or rows (or, for small C with a long inner dimension, by
// slices of the inner dimension summed in a fixed order). Block sizes depend only
// on the problem's shape, so results do not depend on the thread count.
#include <Eigen/Core>
#include <algorithm>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cpu/sgemm.h"
#include "engine/parallel.h"
#include "engine/profile.h"

namespace wn {

namespace {

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using CMap = Eigen::Map<const RowMat<T>, 0, Eigen::OuterStride<>>;
template <class T>
using MMap = Eigen::Map<RowMat<T>, 0, Eigen::OuterStride<>>;

// One single-threaded block product C (m x n) = alpha op(A) op(B) + beta C.
template <class T>
void gemm_block(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
                int64_t ldb, T beta, T* c, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>) {
    if (own_sgemm_enabled()) {
      own_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      return;
    }
  }
  MMap<T> C(c, m, n, Eigen::OuterStride<>(ldc));
  if (beta == T(0))
    C.setZero();
  else if (beta != T(1))
    C *= beta;
  if (k == 0) return;
  auto run = [&](const auto& A, const auto& B) { C.noalias() += alpha * (A * B); };
  if (!ta && !tb)
    run(CMap<T>(a, m, k, Eigen::OuterStride<>(lda)), CMap<T>(b, k, n, Eigen::OuterStride<>(ldb)));
  else if (!ta && tb)
    run(CMap<T>(a, m, k, Eigen::OuterStride<>(lda)), CMap<T>(b, n, k, Eigen::OuterStride<>(ldb)).transpose());
  else if (ta && !tb)
    run(CMap<T>(a, k, m, Eigen::OuterStride<>(lda)).transpose(), CMap<T>(b, k, n, Eigen::OuterStride<>(ldb)));
  else
    run(CMap<T>(a, k, m, Eigen::OuterStride<>(lda)).transpose(),
        CMap<T>(b, n, k, Eigen::OuterStride<>(ldb)).transpose());
}

int64_t chunk_of(int64_t total, int64_t min_chunk, int64_t parts) {
  int64_t c = std::max(min_chunk, (total + parts - 1) / parts);
  return (c + 15) / 16 * 16;
}

constexpr int64_t kMinChunk = 256, kParts = 8;

bool small_product(int64_t m, int64_t n, int64_t k) { return double(m) * n * k < double(1 << 20); }
bool split_by_cols(int64_t m, int64_t n) { return n >= 2 * kMinChunk && n >= m; }
bool split_by_rows(int64_t m, int64_t n) { return !split_by_cols(m, n) && m >= 2 * kMinChunk; }

// Whether the product's inner dimension is split over tasks (small C, long k).
bool splits_k(int64_t m, int64_t n, int64_t k) {
  return !small_product(m, n, k) && !split_by_cols(m, n) && !split_by_rows(m, n) && k >= 2 * 4096;
}

// How a product C (m x n, inner dimension k) splits over tasks, from the shape alone:
// block(i0, rows, j0, cols) runs for each block of C (the whole of C when it is small or
// `whole` is set), row blocks a multiple of row_step. Returns false, having run nothing, when
// the shape calls for the split of k (small C, long inner dimension), which the caller does.
// On the own SGEMM the blocks of C do not change any element's sums (only a split of k does).
template <class Block>
bool split_c(int64_t m, int64_t n, int64_t k, int64_t row_step, bool whole, Block block) {
  if (splits_k(m, n, k)) return false;
  if (whole || small_product(m, n, k)) {
    block(0, m, 0, n);
    return true;
  }
  if (split_by_cols(m, n)) {
    const int64_t cn = chunk_of(n, kMinChunk, kParts);
    parallel_for((n + cn - 1) / cn, 1, [&](int64_t s, int64_t e) {
      for (int64_t blk = s; blk < e; ++blk) block(0, m, blk * cn, std::min(cn, n - blk * cn));
    });
    return true;
  }
  if (split_by_rows(m, n)) {
    const int64_t cm = (chunk_of(m, kMinChunk, kParts) + row_step - 1) / row_step * row_step;
    parallel_for((m + cm - 1) / cm, 1, [&](int64_t s, int64_t e) {
      for (int64_t blk = s; blk < e; ++blk) block(blk * cm, std::min(cm, m - blk * cm), 0, n);
    });
    return true;
  }
  block(0, m, 0, n);
  return true;
}

}  // namespace

template <class T>
void cpu_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
              int64_t ldb, T beta, T* c, int64_t ldc) {
  const bool split = split_c(m, n, k, 16, false, [&](int64_t i0, int64_t rows, int64_t j0, int64_t cols) {
    gemm_block(ta, tb, rows, cols, k, alpha, ta ? a + i0 : a + i0 * lda, lda, tb ? b + j0 * ldb : b + j0, ldb, beta,
               c + i0 * ldc + j0, ldc);
  });
  if (split) return;
  // Small C, long inner dimension: partial products over slices of k, summed in order.
  const int64_t ck = chunk_of(k, 4096, kParts);
  const int64_t parts = (k + ck - 1) / ck;
  std::vector<T> partial(static_cast<size_t>(parts * m * n));
  parallel_for(parts, 1, [&](int64_t s, int64_t e) {
    for (int64_t p = s; p < e; ++p) {
      int64_t k0 = p * ck, kk = std::min(ck, k - k0);
      const T* ap = ta ? a + k0 * lda : a + k0;
      const T* bp = tb ? b + k0 : b + k0 * ldb;
      gemm_block(ta, tb, m, n, kk, T(1), ap, lda, bp, ldb, T(0), partial.data() + p * m * n, n);
    }
  });
  parallel_for(m, 16, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i)
      for (int64_t j = 0; j < n; ++j) {
        T acc = T(0);
        for (int64_t p = 0; p < parts; ++p) acc += partial[(p * m + i) * n + j];
        T& dst = c[i * ldc + j];
        dst = (beta == T(0) ? T(0) : beta * dst) + alpha * acc;
      }
  });
}

template <class T>
CpuGemmA<T>::CpuGemmA(bool ta, const T* a, int64_t lda, int64_t m, int64_t k)
    : ta_(ta), a_(a), lda_(lda), m_(m), k_(k) {
  if constexpr (std::is_same_v<T, float>) {
    // Worth it only when several products reuse the panels (the caller's choice) and there
    // is arithmetic to speak of.
    if (own_sgemm_enabled() && m > 0 && k > 0) {
      store_ = std::make_unique<CpuScratch>(sizeof(float) * size_t(own_sgemm_packed_size(m, k)));
      packed_ = std::make_unique<SgemmPackedA>(own_sgemm_pack(ta, a, lda, m, k, store_->as<float>()));
    }
  }
}

template <class T>
CpuGemmA<T>::~CpuGemmA() = default;

template <class T>
void CpuGemmA<T>::mul(bool tb, int64_t n, T alpha, const T* b, int64_t ldb, T beta, T* c, int64_t ldc,
                      bool whole) const {
  if constexpr (std::is_same_v<T, float>) {
    if (packed_ && own_sgemm_enabled()) {
      // cpu_gemm's split, the row blocks whole panels; the k split stays on cpu_gemm.
      const SgemmPackedA& p = *packed_;
      const auto block = [&](int64_t i0, int64_t rows, int64_t j0, int64_t cols) {
        own_sgemm_packed(p, i0, rows, tb, cols, alpha, tb ? b + j0 * ldb : b + j0, ldb, beta, c + i0 * ldc + j0, ldc);
      };
      if (split_c(m_, n, k_, 8 * kSgemmPanelRows, whole, block)) return;
    }
  }
  cpu_gemm<T>(ta_, tb, m_, n, k_, alpha, a_, lda_, b, ldb, beta, c, ldc);
}

template <class T>
bool CpuGemmA<T>::implicit_ok(int64_t n) const {
  if constexpr (std::is_same_v<T, float>) return packed_ && own_sgemm_enabled() && !splits_k(m_, n, k_);
  (void)n;
  return false;
}

template <class T>
void CpuGemmA<T>::mul_implicit(int64_t n, T alpha, const SgemmBPacker& b, T beta, T* c, int64_t ldc,
                               bool whole) const {
  if constexpr (std::is_same_v<T, float>) {
    if (implicit_ok(n)) {
      const SgemmPackedA& p = *packed_;
      split_c(m_, n, k_, 8 * kSgemmPanelRows, whole, [&](int64_t i0, int64_t rows, int64_t j0, int64_t cols) {
        own_sgemm_packed_implicit(p, i0, rows, cols, alpha, b, j0, beta, c + i0 * ldc + j0, ldc);
      });
      return;
    }
  }
  (void)n, (void)alpha, (void)b, (void)beta, (void)c, (void)ldc, (void)whole;
  throw std::logic_error("CpuGemmA::mul_implicit: called where implicit_ok is false");
}

template class CpuGemmA<float>;
template class CpuGemmA<double>;

template void cpu_gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                              int64_t, float, float*, int64_t);
template void cpu_gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                               int64_t, double, double*, int64_t);

void CpuBackend::gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta,
                      Tensor& c) {
  const int64_t m = c.dim(0), n = c.dim(1);
  const int64_t k = trans_a ? a.dim(0) : a.dim(1);
  WN_PROFILE("gemm", fmt::format("{}x{}x{}{}{}", m, n, k, trans_a ? " tA" : "", trans_b ? " tB" : ""), 2.0 * m * n * k);
  WN_DISPATCH_FLOAT(a.dtype(), T, {
    cpu_gemm<T>(trans_a, trans_b, m, n, k, T(alpha), a.data<T>(), a.dim(1), b.data<T>(), b.dim(1), T(beta),
                c.data<T>(), n);
  });
}

}  // namespace wn
