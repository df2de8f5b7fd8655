// The CUDA backend: device memory through the caching allocator (plain cudaMalloc
// underneath), kernels of our own for every op and cuBLAS for the matrix products
// (the convolutions are im2col / col2im kernels around cuBLAS GEMMs, or cuDNN where its
// library loads: cudnn_conv.h). Reductions use fixed-shape trees and cuDNN runs only
// deterministic algorithms, so results are deterministic run to run. float and double.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <mutex>
#include <string>

#include "engine/backend/backend.h"

namespace wn {

// Throws std::runtime_error naming the call if a CUDA runtime call failed.
void cuda_check(cudaError_t e, const char* what);
void cublas_check(cublasStatus_t s, const char* what);

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int index);
  ~CudaBackend() override;
  const char* name() const override { return "cuda"; }
  CachingAllocator& allocator() override { return alloc_; }
  void synchronize() override;
  std::string conv_library() const override;
  bool set_conv_library(bool on) override;
  WN_BACKEND_OVERRIDES

  TransferStats transfers() const override;

  cublasHandle_t cublas() const { return cublas_; }
  int index() const { return index_; }

 private:
  // Small host-to-device copies go through pinned staging slots, asynchronously: the
  // host does not wait for queued kernels (a plain cudaMemcpy from pageable memory
  // would). A slot is reused once the event recorded after its copy has passed.
  static constexpr int kStageSlots = 8;
  static constexpr size_t kStageBytes = size_t(1) << 20;
  struct StageSlot {
    void* host = nullptr;
    cudaEvent_t done = nullptr;
    bool pending = false;
  };
  int index_;
  CachingAllocator alloc_;
  cublasHandle_t cublas_ = nullptr;
  bool use_cudnn_ = false;  // on with WNGAN_CUDNN=1|heuristic|benchmark|nondeterministic or set_conv_library(true)
  mutable std::mutex stage_mu_;
  StageSlot stage_[kStageSlots];
  int next_slot_ = 0;
  TransferStats transfers_;
};

// Row-major C (m x n) = alpha op(A) op(B) + beta C through cuBLAS.
template <class T>
void cuda_gemm(CudaBackend& be, bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
               const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// count independent row-major products C_i = op(A_i) op(B_i) in one launch, the i-th
// operands at A + i * stride_a, B + i * stride_b, C + i * stride_c.
template <class T>
void cuda_gemm_batched(CudaBackend& be, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
                       int64_t stride_a, const T* b, int64_t ldb, int64_t stride_b, T* c, int64_t ldc, int64_t stride_c,
                       int64_t count);

// Device scratch memory from a backend's caching allocator for one scope (0 bytes: none).
// Released at scope exit while kernels using it may still be queued: they run on the one
// stream before any later user of the buffer, so the reuse is ordered.
class CudaScratch {
 public:
  CudaScratch(CudaBackend& be, size_t bytes)
      : be_(be), bytes_(bytes), p_(bytes ? be.allocator().allocate(bytes) : nullptr) {}
  ~CudaScratch() {
    if (p_) be_.allocator().release(p_, bytes_);
  }
  CudaScratch(const CudaScratch&) = delete;
  CudaScratch& operator=(const CudaScratch&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }
  void* get() const { return p_; }
  size_t bytes() const { return bytes_; }

 private:
  CudaBackend& be_;
  size_t bytes_;
  void* p_;
};

// (N, C, rest) sizes of a tensor with channels on dim 1, checked to fit the kernels'
// 32-bit indices (op names the caller in the error).
struct Ncr {
  int n, c, r;
};
Ncr ncr32(const Tensor& x, const char* op);

}  // namespace wn
