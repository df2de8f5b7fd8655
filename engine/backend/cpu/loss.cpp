// CPU loss kernels: binary cross-entropy on logits, computed stably for any |logit|
// (the per-element formulas are in engine/backend/elementwise_ops.h), summed in double.
#include <fmt/format.h>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/profile.h"

namespace wn {

void CpuBackend::bce_logits_forward(const Tensor& x, const Tensor& t, Tensor& loss) {
  WN_PROFILE("bce_logits_forward", x.shape().str(), 0);
  WN_DISPATCH_FLOAT(x.dtype(), T, {
    const T* px = x.data<T>();
    const T* pt = t.data<T>();
    double s = 0;
    const int64_t n = x.numel();
    for (int64_t i = 0; i < n; ++i) s += ew::bce_logits_term(double(px[i]), double(pt[i]));
    loss.data<T>()[0] = static_cast<T>(s / double(n));
  });
}

void CpuBackend::bce_logits_backward(const Tensor& x, const Tensor& t, const Tensor& dloss, Tensor& dx) {
  WN_PROFILE("bce_logits_backward", x.shape().str(), 0);
  WN_DISPATCH_FLOAT(x.dtype(), T, {
    const T* px = x.data<T>();
    const T* pt = t.data<T>();
    T* pd = dx.data<T>();
    const int64_t n = x.numel();
    const double scale = double(dloss.data<T>()[0]) / double(n);
    for (int64_t i = 0; i < n; ++i) pd[i] = static_cast<T>(scale * ew::bce_logits_grad(double(px[i]), double(pt[i])));
  });
}

}  // namespace wn
