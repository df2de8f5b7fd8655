// The CUDA backend: device memory through the caching allocator (plain cudaMalloc
// underneath), kernels of our own for every op and cuBLAS for the matrix products
// (the convolutions are im2col / col2im kernels around cuBLAS GEMMs, or cuDNN where its
// library loads: cudnn_conv.h). Reductions use fixed-shape trees and cuDNN runs only
// deterministic algorithms, so results are deterministic run to run. float and double.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

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
  void host_to_device(void* dst, const void* src, size_t bytes) override;
  void device_to_host(void* dst, const void* src, size_t bytes) override;
  void device_to_device(void* dst, const void* src, size_t bytes) override;
  void synchronize() override;
  std::string conv_library() const override;
  bool set_conv_library(bool on) override;
  void fill(Tensor& y, double value) override;
  void cast(const Tensor& x, Tensor& y) override;
  void unary(UnaryOp op, const Tensor& x, Tensor& y, double a, double b) override;
  void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx, double a,
                      double b) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) override;
  void sum_to(const Tensor& x, Tensor& out) override;
  void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta,
            Tensor& c) override;
  void conv2d_forward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y) override;
  void conv2d_backward_data(const ConvGeom& g, const Tensor& dy, const Tensor& w, Tensor& dx) override;
  void conv2d_backward_weight(const ConvGeom& g, const Tensor& x, const Tensor& dy, Tensor& dw) override;
  void avg_pool2_forward(const Tensor& x, Tensor& y) override;
  void avg_pool2_backward(const Tensor& dy, Tensor& dx) override;
  void upsample2_forward(const Tensor& x, Tensor& y) override;
  void upsample2_backward(const Tensor& dy, Tensor& dx) override;
  void window_copy(const Tensor& src, Tensor& dst, int64_t top, int64_t left) override;
  void prelu_forward(const Tensor& x, const Tensor& a, Tensor& y) override;
  void prelu_backward(const Tensor& x, const Tensor& a, const Tensor& dy, Tensor& dx, Tensor& da) override;
  void tprelu_forward(const Tensor& x, const Tensor& a, const Tensor& t, Tensor& y) override;
  void tprelu_backward(const Tensor& x, const Tensor& a, const Tensor& t, const Tensor& dy, Tensor& dx, Tensor& da,
                       Tensor& dt) override;
  void batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, double momentum,
                        Tensor& running_mean, Tensor& running_var, Tensor& y, Tensor& mean, Tensor& invstd) override;
  void batch_norm_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                       const Tensor& running_var, double eps, Tensor& y) override;
  void batch_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& invstd,
                           const Tensor& dy, Tensor& dx, Tensor& dgamma, Tensor& dbeta) override;
  void weight_norm_forward(const WNGeom& geom, const Tensor& v, const Tensor& g, Tensor& w, Tensor& norm) override;
  void weight_norm_backward(const WNGeom& geom, const Tensor& v, const Tensor& g, const Tensor& norm, const Tensor& dw,
                            Tensor& dv, Tensor& dg) override;
  void rmsprop_update(Tensor& p, const Tensor& g, Tensor& s, double lr, double alpha, double eps) override;
  void adam_update(Tensor& p, const Tensor& g, Tensor& m, Tensor& v, double lr, double beta1, double beta2, double eps,
                   int64_t step) override;
  void sgd_update(Tensor& p, const Tensor& g, Tensor& buf, double lr, double momentum, bool first) override;
  void bce_logits_forward(const Tensor& x, const Tensor& t, Tensor& loss) override;
  void bce_logits_backward(const Tensor& x, const Tensor& t, const Tensor& dloss, Tensor& dx) override;

  cublasHandle_t cublas() const { return cublas_; }
  int index() const { return index_; }

 private:
  int index_;
  CachingAllocator alloc_;
  cublasHandle_t cublas_ = nullptr;
  bool use_cudnn_ = true;  // off with WNGAN_CUDNN=0 or set_conv_library(false)
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
