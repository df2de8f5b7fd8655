// The one interface every device implements. Ops call backend_for(tensor) once and
// never branch on the device themselves. Kernels write their outputs (they never
// accumulate); the engine does the accumulation of gradients.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/allocator.h"
#include "engine/tensor.h"

namespace wn {

enum class UnaryOp { Neg, Square, Sqrt, Exp, Log, Sigmoid, Relu, Clamp, Scale, AddScalar };
enum class BinaryOp { Add, Sub, Mul, Div };
// Names of the element-wise ops, for profiles and messages.
const char* unary_op_name(UnaryOp op);
const char* binary_op_name(BinaryOp op);

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

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  virtual CachingAllocator& allocator() = 0;

  // Memory movement (bytes). host_to_device/device_to_host are plain copies on the CPU.
  virtual void host_to_device(void* dst, const void* src, size_t bytes) = 0;
  virtual void device_to_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void device_to_device(void* dst, const void* src, size_t bytes) = 0;
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

  // y[i] = value.
  virtual void fill(Tensor& y, double value) = 0;
  // y = x converted to y's dtype (same shape).
  virtual void cast(const Tensor& x, Tensor& y) = 0;

  // y = f(x); a and b parametrise Clamp (lo, hi), Scale (a) and AddScalar (a).
  virtual void unary(UnaryOp op, const Tensor& x, Tensor& y, double a, double b) = 0;
  // dx = dy * f'(x), given x and y = f(x).
  virtual void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx, double a,
                              double b) = 0;
  // out = a (op) b with broadcasting: shapes are right-aligned, each dim equal or 1.
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) = 0;
  // out = x summed down to out's shape (same rank; each out dim equal to x's or 1).
  virtual void sum_to(const Tensor& x, Tensor& out) = 0;
  // C = alpha * op(A) op(B) + beta * C for 2-D tensors; op transposes when asked.
  virtual void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta,
                    Tensor& c) = 0;

  // y = conv(x, w) + bias (bias may be undefined).
  virtual void conv2d_forward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y) = 0;
  // dx = gradient of conv(x, w) with respect to x, given dy.
  virtual void conv2d_backward_data(const ConvGeom& g, const Tensor& dy, const Tensor& w, Tensor& dx) = 0;
  // dw = gradient with respect to w, given x and dy.
  virtual void conv2d_backward_weight(const ConvGeom& g, const Tensor& x, const Tensor& dy, Tensor& dw) = 0;

  // 2x2 average pooling, stride 2, (N, C, H, W) -> (N, C, H/2, W/2), and its backward.
  virtual void avg_pool2_forward(const Tensor& x, Tensor& y) = 0;
  virtual void avg_pool2_backward(const Tensor& dy, Tensor& dx) = 0;
  // Nearest-neighbour 2x upsampling (N, C, H, W) -> (N, C, 2H, 2W), and its backward.
  virtual void upsample2_forward(const Tensor& x, Tensor& y) = 0;
  virtual void upsample2_backward(const Tensor& dy, Tensor& dx) = 0;
  // dst = src placed at (top, left) in dst's (H, W) plane (negative offsets crop);
  // what src does not cover is zero. Used for zero padding and cropping both ways.
  virtual void window_copy(const Tensor& src, Tensor& dst, int64_t top, int64_t left) = 0;

  // PReLU with one slope per channel (dim 1): y = x > 0 ? x : a_c x.
  virtual void prelu_forward(const Tensor& x, const Tensor& a, Tensor& y) = 0;
  virtual void prelu_backward(const Tensor& x, const Tensor& a, const Tensor& dy, Tensor& dx, Tensor& da) = 0;
  // Translated PReLU with a per-channel shift t: y = prelu(x - t, a) + t. The base
  // versions compose prelu and the element-wise kernels; backends may fuse them.
  virtual void tprelu_forward(const Tensor& x, const Tensor& a, const Tensor& t, Tensor& y);
  // dx, da and dt (each may be undefined: not wanted).
  virtual void tprelu_backward(const Tensor& x, const Tensor& a, const Tensor& t, const Tensor& dy, Tensor& dx,
                               Tensor& da, Tensor& dt);

  // Batch norm over dim 1 of (N, C) or (N, C, H, W). Training: batch mean and biased
  // variance; writes mean, invstd = 1/sqrt(var + eps) and updates the running
  // statistics (momentum, unbiased variance) when they are defined.
  virtual void batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, double momentum,
                                Tensor& running_mean, Tensor& running_var, Tensor& y, Tensor& mean,
                                Tensor& invstd) = 0;
  virtual void batch_norm_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                               const Tensor& running_var, double eps, Tensor& y) = 0;
  // Backward of the training-mode forward: dx, dgamma, dbeta.
  virtual void batch_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& invstd,
                                   const Tensor& dy, Tensor& dx, Tensor& dgamma, Tensor& dbeta) = 0;

  // Weight normalization: w = v * g_u / norm_u (g undefined: 1), writing norm (units).
  // The base versions compose the element-wise kernels above; backends may fuse them.
  virtual void weight_norm_forward(const WNGeom& geom, const Tensor& v, const Tensor& g, Tensor& w, Tensor& norm);
  // Given dw: dv = (g_u / norm_u) (dw - factor v_u (dw_u . v_u) / (norm_u root_u)), root_u =
  // norm_u - eps_out, and
  // dg_u = (dw_u . v_u) / norm_u; either output may be undefined (not wanted).
  virtual void weight_norm_backward(const WNGeom& geom, const Tensor& v, const Tensor& g, const Tensor& norm,
                                    const Tensor& dw, Tensor& dv, Tensor& dg);

  // Optimizer updates, in place on the parameter p and its state, given gradient g:
  // RMSProp (PyTorch): s = alpha s + (1 - alpha) g^2; p -= lr g / (sqrt(s) + eps).
  virtual void rmsprop_update(Tensor& p, const Tensor& g, Tensor& s, double lr, double alpha, double eps) = 0;
  // Adam (PyTorch, bias-corrected; step counts from 1).
  virtual void adam_update(Tensor& p, const Tensor& g, Tensor& m, Tensor& v, double lr, double beta1, double beta2,
                           double eps, int64_t step) = 0;
  // SGD with momentum (PyTorch): b = momentum b + g (b = g on the first step); p -= lr b.
  virtual void sgd_update(Tensor& p, const Tensor& g, Tensor& buf, double lr, double momentum, bool first) = 0;

  // loss = mean(max(x,0) - x t + log(1 + exp(-|x|))) into a 0-d tensor.
  virtual void bce_logits_forward(const Tensor& x, const Tensor& t, Tensor& loss) = 0;
  // dx = dloss * (sigmoid(x) - t) / numel, dloss a 0-d tensor.
  virtual void bce_logits_backward(const Tensor& x, const Tensor& t, const Tensor& dloss, Tensor& dx) = 0;
};

// The backend serving a device; throws if that device is not built in or absent.
Backend& backend_for(Device device);
// Whether a device type is usable in this build on this machine.
bool device_available(DeviceType type);
// Registers the CUDA backend (called by the CUDA backend's own translation unit).
void register_cuda_backend(Backend* (*factory)(int index), bool (*available)());

}  // namespace wn
