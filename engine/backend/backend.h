// The one interface every device implements. Ops call backend_for(tensor) once and
// never branch on the device themselves. Kernels write their outputs (they never
// accumulate); the engine does the accumulation of gradients.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "engine/allocator.h"
#include "engine/backend/elementwise_ops.h"
#include "engine/tensor.h"

namespace wn {

// The element-wise ops, generated from the one table of their formulas
// (engine/backend/elementwise_ops.h).
enum class UnaryOp {
#define WN_X(op, name) op,
  WN_UNARY_OPS(WN_X)
#undef WN_X
};
enum class BinaryOp {
#define WN_X(op, name) op,
  WN_BINARY_OPS(WN_X)
#undef WN_X
};

// Names of the element-wise ops, for profiles and messages.
inline const char* unary_op_name(UnaryOp op) {
  switch (op) {
#define WN_X(op, name) \
  case UnaryOp::op:    \
    return name;
    WN_UNARY_OPS(WN_X)
#undef WN_X
  }
  return "unknown unary op";
}
inline const char* binary_op_name(BinaryOp op) {
  switch (op) {
#define WN_X(op, name) \
  case BinaryOp::op:   \
    return name;
    WN_BINARY_OPS(WN_X)
#undef WN_X
  }
  return "unknown binary op";
}

// Calls f(ew::Op{}) with the functor of op (engine/backend/elementwise_ops.h): the one
// switch over the unary ops, which both backends' kernels go through.
template <class F>
void visit_unary(UnaryOp op, F&& f) {
  switch (op) {
#define WN_X(op_, name) \
  case UnaryOp::op_:    \
    f(ew::op_{});       \
    return;
    WN_UNARY_OPS(WN_X)
#undef WN_X
  }
  throw std::invalid_argument("unary op: no such op " + std::to_string(static_cast<int>(op)));
}
// The same for the binary ops.
template <class F>
void visit_binary(BinaryOp op, F&& f) {
  switch (op) {
#define WN_X(op_, name) \
  case BinaryOp::op_:   \
    f(ew::op_{});       \
    return;
    WN_BINARY_OPS(WN_X)
#undef WN_X
  }
  throw std::invalid_argument("binary op: no such op " + std::to_string(static_cast<int>(op)));
}

// Geometry of a 2-D convolution x (N, Cin, H, W) * w (Cout, Cin, KH, KW) -> y (N, Cout, OH, OW).
struct ConvGeom {
  int64_t n = 0, cin = 0, h = 0, w = 0;
  int64_t cout = 0, kh = 0, kw = 0;
  int64_t sh = 1, sw = 1, ph = 0, pw = 0;
  int64_t oh = 0, ow = 0;
  // Multiply-adds of the forward pass (one direction; backward data and weight cost the same).
  double macs() const { return double(n) * cout * oh * ow * cin * kh * kw; }
  // "N32 64x32x32 -> 128x16x16 k4x4 s2 p1", for profiles.
  std::string str() const;
};

// Geometry of a weight normalization: v viewed as (outer, units, inner); unit u is the
// slice v[:, u, :]. norm_u = sqrt(factor * sum v_u^2 + eps) + eps_out (the authors' DCGAN
// code puts its epsilon inside the root, their ResNet code outside).
struct WNGeom {
  int64_t outer = 1, units = 1, inner = 1;
  double factor = 1, eps = 0, eps_out = 0;
};

// The kernels of the Backend interface, declared once: X(name, (parameters)), each
// returning void. Backend declares them pure virtual; a backend class declares them all
// as overrides with WN_BACKEND_OVERRIDES.
#define WN_BACKEND_KERNELS(X)                                                                                        \
  /* Memory movement (bytes). host_to_device/device_to_host are plain copies on the CPU. */                          \
  X(host_to_device, (void* dst, const void* src, size_t bytes))                                                      \
  X(device_to_host, (void* dst, const void* src, size_t bytes))                                                      \
  X(device_to_device, (void* dst, const void* src, size_t bytes))                                                    \
  /* y[i] = value. */                                                                                                \
  X(fill, (Tensor & y, double value))                                                                                \
  /* y = x converted to y's dtype (same shape). */                                                                   \
  X(cast, (const Tensor& x, Tensor& y))                                                                              \
  /* y = f(x); a and b parametrise Clamp (lo, hi), Scale (a) and AddScalar (a). */                                   \
  X(unary, (UnaryOp op, const Tensor& x, Tensor& y, double a, double b))                                             \
  /* dx = dy * f'(x), given x and y = f(x). */                                                                       \
  X(unary_backward, (UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx, double a, double b)) \
  /* out = a (op) b with broadcasting: shapes are right-aligned, each dim equal or 1. */                             \
  X(binary, (BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out))                                            \
  /* out = x summed down to out's shape (same rank; each out dim equal to x's or 1). */                              \
  X(sum_to, (const Tensor& x, Tensor& out))                                                                          \
  /* C = alpha * op(A) op(B) + beta * C for 2-D tensors; op transposes when asked. */                                \
  X(gemm, (bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta, Tensor& c))      \
  /* y = conv(x, w) + bias (bias may be undefined). */                                                               \
  X(conv2d_forward, (const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y))             \
  /* dx = gradient of conv(x, w) with respect to x, given dy. */                                                     \
  X(conv2d_backward_data, (const ConvGeom& g, const Tensor& dy, const Tensor& w, Tensor& dx))                        \
  /* dw = gradient with respect to w, given x and dy. */                                                             \
  X(conv2d_backward_weight, (const ConvGeom& g, const Tensor& x, const Tensor& dy, Tensor& dw))                      \
  /* 2x2 average pooling, stride 2, (N, C, H, W) -> (N, C, H/2, W/2), and its backward. */                           \
  X(avg_pool2_forward, (const Tensor& x, Tensor& y))                                                                 \
  X(avg_pool2_backward, (const Tensor& dy, Tensor& dx))                                                              \
  /* Nearest-neighbour 2x upsampling (N, C, H, W) -> (N, C, 2H, 2W), and its backward. */                            \
  X(upsample2_forward, (const Tensor& x, Tensor& y))                                                                 \
  X(upsample2_backward, (const Tensor& dy, Tensor& dx))                                                              \
  /* dst = src placed at (top, left) in dst's (H, W) plane (negative offsets crop); */                               \
  /* what src does not cover is zero. Used for zero padding and cropping both ways. */                               \
  X(window_copy, (const Tensor& src, Tensor& dst, int64_t top, int64_t left))                                        \
  /* PReLU with one slope per channel (dim 1): y = x > 0 ? x : a_c x. */                                             \
  X(prelu_forward, (const Tensor& x, const Tensor& a, Tensor& y))                                                    \
  X(prelu_backward, (const Tensor& x, const Tensor& a, const Tensor& dy, Tensor& dx, Tensor& da))                    \
  /* Batch norm over dim 1 of (N, C) or (N, C, H, W). Training: batch mean and biased */                             \
  /* variance; writes mean, invstd = 1/sqrt(var + eps) and updates the running */                                    \
  /* statistics (momentum, unbiased variance) when they are defined. */                                              \
  X(batch_norm_train, (const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, double momentum,         \
                       Tensor& running_mean, Tensor& running_var, Tensor& y, Tensor& mean, Tensor& invstd))          \
  X(batch_norm_eval, (const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,           \
                      const Tensor& running_var, double eps, Tensor& y))                                             \
  /* Backward of the training-mode forward: dx, dgamma, dbeta. */                                                    \
  X(batch_norm_backward, (const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& invstd,             \
                          const Tensor& dy, Tensor& dx, Tensor& dgamma, Tensor& dbeta))                              \
  /* Optimizer updates, in place on the parameter p and its state, given gradient g */                               \
  /* (the formulas: ew::RmsPropStep, ew::AdamStep, ew::SgdStep in elementwise_ops.h). */                             \
  X(rmsprop_update, (Tensor & p, const Tensor& g, Tensor& s, double lr, double alpha, double eps))                    \
  X(adam_update, (Tensor & p, const Tensor& g, Tensor& m, Tensor& v, double lr, double beta1, double beta2,          \
                  double eps, int64_t step))                                                                         \
  X(sgd_update, (Tensor & p, const Tensor& g, Tensor& buf, double lr, double momentum, bool first))                  \
  /* loss = mean(max(x,0) - x t + log(1 + exp(-|x|))) into a 0-d tensor. */                                          \
  X(bce_logits_forward, (const Tensor& x, const Tensor& t, Tensor& loss))                                             \
  /* dx = dloss * (sigmoid(x) - t) / numel, dloss a 0-d tensor. */                                                   \
  X(bce_logits_backward, (const Tensor& x, const Tensor& t, const Tensor& dloss, Tensor& dx))

// Fused kernels with composed default versions in Backend (backend/composed.cpp, kept
// as the reference the tests compare the fused ones against); backends may override.
#define WN_BACKEND_FUSED(X)                                                                                          \
  /* Translated PReLU with a per-channel shift t: y = prelu(x - t, a) + t. */                                        \
  X(tprelu_forward, (const Tensor& x, const Tensor& a, const Tensor& t, Tensor& y))                                  \
  /* dx, da and dt (each may be undefined: not wanted). */                                                           \
  X(tprelu_backward, (const Tensor& x, const Tensor& a, const Tensor& t, const Tensor& dy, Tensor& dx, Tensor& da,    \
                      Tensor& dt))                                                                                   \
  /* Weight normalization: w = v * scale_u / norm_u (scale undefined: 1), writing norm (units). */                           \
  X(weight_norm_forward, (const WNGeom& geom, const Tensor& v, const Tensor& scale, Tensor& w, Tensor& norm))            \
  /* Given dw: dv = (g_u / norm_u) (dw - factor v_u (dw_u . v_u) / (norm_u root_u)), */                              \
  /* root_u = norm_u - eps_out, and dscale_u = (dw_u . v_u) / norm_u; either output may be */                            \
  /* undefined (not wanted). */                                                                                      \
  X(weight_norm_backward, (const WNGeom& geom, const Tensor& v, const Tensor& scale, const Tensor& norm,                  \
                           const Tensor& dw, Tensor& dv, Tensor& dscale))

#define WN_BACKEND_PURE(name, params) virtual void name params = 0;
#define WN_BACKEND_DEFAULT(name, params) virtual void name params;
#define WN_BACKEND_OVERRIDE(name, params) void name params override;
// Inside a backend class: declares every kernel and fused kernel as an override.
#define WN_BACKEND_OVERRIDES                 \
  WN_BACKEND_KERNELS(WN_BACKEND_OVERRIDE) \
  WN_BACKEND_FUSED(WN_BACKEND_OVERRIDE)

// Copies between host and device memory made so far (zero on the CPU).
struct TransferStats {
  int64_t to_device = 0, to_host = 0;
  int64_t to_device_bytes = 0, to_host_bytes = 0;
};

// The one interface of a device: the kernels above, plus identity and options.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  virtual CachingAllocator& allocator() = 0;
  // Waits for queued work (a no-op on the CPU).
  virtual void synchronize() {}
  // How this backend computes convolutions, for benchmark headers and logs.
  virtual std::string conv_library() const { return "own kernels"; }
  // Whether convolutions may use a vendor library (cuDNN) where the backend has one;
  // returns the previous setting. A backend without one ignores it and returns false.
  virtual bool set_conv_library(bool on) {
    (void)on;
    return false;
  }
  // Host <-> device copies so far, for benchmarks (a device that has none: zeros).
  virtual TransferStats transfers() const { return {}; }

  WN_BACKEND_KERNELS(WN_BACKEND_PURE)
  WN_BACKEND_FUSED(WN_BACKEND_DEFAULT)
};

// The backend serving a device; throws if that device is not built in or absent.
Backend& backend_for(Device device);
// Whether a device type is usable in this build on this machine.
bool device_available(DeviceType type);
// Registers the CUDA backend (called by the CUDA backend's own translation unit).
void register_cuda_backend(Backend* (*factory)(int index), bool (*available)());

}  // namespace wn
