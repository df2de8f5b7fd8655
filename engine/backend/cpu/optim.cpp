// CPU optimizer updates: one fused pass over each parameter and its state, with the
// per-element formulas of engine/backend/elementwise_ops.h.
#include <fmt/format.h>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/parallel.h"
#include "engine/profile.h"

namespace wn {

void CpuBackend::rmsprop_update(Tensor& p, const Tensor& g, Tensor& s, double lr, double alpha, double eps) {
  WN_PROFILE("rmsprop_update", p.shape().str(), 0);
  WN_DISPATCH_FLOAT(p.dtype(), T, {
    T* pp = p.data<T>();
    const T* pg = g.data<T>();
    T* ps = s.data<T>();
    const ew::RmsPropStep<T> step(lr, alpha, eps);
    parallel_for(p.numel(), 1 << 15, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) step(pp[i], pg[i], ps[i]);
    });
  });
}

void CpuBackend::adam_update(Tensor& p, const Tensor& g, Tensor& m, Tensor& v, double lr, double beta1, double beta2,
                             double eps, int64_t step) {
  WN_PROFILE("adam_update", p.shape().str(), 0);
  WN_DISPATCH_FLOAT(p.dtype(), T, {
    T* pp = p.data<T>();
    const T* pg = g.data<T>();
    T* pm = m.data<T>();
    T* pv = v.data<T>();
    const ew::AdamStep<T> update(lr, beta1, beta2, eps, step);
    parallel_for(p.numel(), 1 << 15, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) update(pp[i], pg[i], pm[i], pv[i]);
    });
  });
}

void CpuBackend::sgd_update(Tensor& p, const Tensor& g, Tensor& buf, double lr, double momentum, bool first) {
  WN_PROFILE("sgd_update", p.shape().str(), 0);
  WN_DISPATCH_FLOAT(p.dtype(), T, {
    T* pp = p.data<T>();
    const T* pg = g.data<T>();
    T* pb = buf.defined() ? buf.data<T>() : nullptr;
    const ew::SgdStep<T> step(lr, momentum, first);
    parallel_for(p.numel(), 1 << 15, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) step(pp[i], pg[i], pb ? pb + i : nullptr);
    });
  });
}

}  // namespace wn
