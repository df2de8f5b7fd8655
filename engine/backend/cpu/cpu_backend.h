// The CPU backend: Eigen for the matrix products, oneTBB for parallelism, plain
// loops that the compiler vectorises for everything else. float and double.
#pragma once
#include "engine/backend/backend.h"

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
  std::string conv_library() const override { return "own kernels (im2col + Eigen GEMM)"; }
  CachingAllocator& allocator() override { return alloc_; }
  void host_to_device(void* dst, const void* src, size_t bytes) override;
  void device_to_host(void* dst, const void* src, size_t bytes) override;
  void device_to_device(void* dst, const void* src, size_t bytes) override;
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

 private:
  CachingAllocator alloc_;
};

// Row-major matrix product on raw pointers, split over oneTBB tasks, each calling
// Eigen: C (m x n, ldc) = alpha * op(A) op(B) + beta * C.
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

// Row-major (rows x per_row) channel layout helper: number of (N, C, rest) pieces.
struct NCR {
  int64_t n, c, r;
};
// Splits a tensor of rank >= 2 into N, C (dim 1) and the product of the rest.
NCR ncr_of(const Shape& s);

}  // namespace wn
