// The CPU backend: its own SGEMM (sgemm.h; Eigen for double and where the CPU lacks
// AVX2 + FMA) for the matrix products, oneTBB for parallelism, plain loops that the
// compiler vectorises for everything else. float and double.
#pragma once
#include <memory>

#include "engine/backend/backend.h"
#include "engine/backend/shape_plan.h"

namespace wn {

#define WN_DISPATCH_FLOAT(dtype, T, ...)      \
  switch (dtype) {                            \
    case DType::F32: {                        \
      using T = float;                        \
      __VA_ARGS__;                            \
      break;                                  \
    }                                         \
    case DType::F64: {                        \
      using T = double;                       \
      __VA_ARGS__;                            \
      break;                                  \
    }                                         \
  }

class CpuBackend final : public Backend {
 public:
  CpuBackend();
  const char* name() const override { return "cpu"; }
  std::string conv_library() const override;
  CachingAllocator& allocator() override { return alloc_; }
  WN_BACKEND_OVERRIDES

 private:
  CachingAllocator alloc_;
};

// Row-major matrix product on raw pointers, split over oneTBB tasks, each calling the
// own SGEMM (float) or Eigen: C (m x n, ldc) = alpha * op(A) op(B) + beta * C.
template <class T>
void cpu_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
              int64_t ldb, T beta, T* c, int64_t ldc);

// Scratch memory from the CPU allocator, returned when it goes out of scope.
class CpuScratch {
 public:
  CpuScratch(size_t bytes);
  ~CpuScratch();
  CpuScratch(const CpuScratch&) = delete;
  CpuScratch& operator=(const CpuScratch&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }

 private:
  void* p_;
  size_t bytes_;
};

struct SgemmPackedA;  // engine/backend/cpu/sgemm.h
struct SgemmBPacker;  // engine/backend/cpu/sgemm.h

// Whether the float convolutions pack the SGEMM's panels straight from the images (implicit
// GEMM) instead of unfolding them first (im2col): on where the own SGEMM serves floats, unless
// WNGAN_CPU_CONV=im2col (read once; auto, the default, or implicit otherwise; others throw).
bool cpu_implicit_conv_enabled();
// Switches the implicit path on (where the own SGEMM serves) or off, overriding
// WNGAN_CPU_CONV; returns the previous state. For tests and benchmarks that compare both.
bool set_cpu_implicit_conv(bool on);

// op(A) of several products that share it (a convolution's weights over its chunks of
// images): packed once where the own SGEMM serves floats, else the products run as cpu_gemm.
template <class T>
class CpuGemmA {
 public:
  CpuGemmA(bool ta, const T* a, int64_t lda, int64_t m, int64_t k);
  ~CpuGemmA();
  // C (m x n, ldc) = alpha op(A) op(B) + beta C, split over tasks as cpu_gemm, with the
  // same results bit for bit. whole: C in one block where the split would not touch k (for
  // callers whose own loop is already split over tasks: B is then packed once, not per block;
  // the same bits).
  void mul(bool tb, int64_t n, T alpha, const T* b, int64_t ldb, T beta, T* c, int64_t ldc,
           bool whole = false) const;
  // Whether mul_implicit can run for n columns (A packed for the own SGEMM, no split of k).
  bool implicit_ok(int64_t n) const;
  // mul with B (k x n) given by a packer: the same bits as mul on the stored B. Only where
  // implicit_ok(n) (throws std::logic_error otherwise).
  void mul_implicit(int64_t n, T alpha, const SgemmBPacker& b, T beta, T* c, int64_t ldc, bool whole = false) const;

 private:
  bool ta_;
  const T* a_;
  int64_t lda_, m_, k_;
  std::unique_ptr<SgemmPackedA> packed_;  // float on the own kernel only
  std::unique_ptr<CpuScratch> store_;  // its panels
};

}  // namespace wn
