// CPU optimizer updates: one fused pass over each parameter and its state.
#include <cmath>

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
    const T a = T(alpha), b = T(1 - alpha), l = T(lr), e = T(eps);
    parallel_for(p.numel(), 1 << 15, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        ps[i] = a * ps[i] + b * pg[i] * pg[i];
        pp[i] -= l * pg[i] / (std::sqrt(ps[i]) + e);
      }
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
    const double bc1 = 1 - std::pow(beta1, double(step)), bc2 = 1 - std::pow(beta2, double(step));
    const T b1 = T(beta1), b2 = T(beta2), step_size = T(lr / bc1), sq = T(std::sqrt(bc2)), e = T(eps);
    parallel_for(p.numel(), 1 << 15, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        pm[i] = b1 * pm[i] + (T(1) - b1) * pg[i];
        pv[i] = b2 * pv[i] + (T(1) - b2) * pg[i] * pg[i];
        pp[i] -= step_size * pm[i] / (std::sqrt(pv[i]) / sq + e);
      }
    });
  });
}

void CpuBackend::sgd_update(Tensor& p, const Tensor& g, Tensor& buf, double lr, double momentum, bool first) {
  WN_PROFILE("sgd_update", p.shape().str(), 0);
  WN_DISPATCH_FLOAT(p.dtype(), T, {
    T* pp = p.data<T>();
    const T* pg = g.data<T>();
    T* pb = buf.defined() ? buf.data<T>() : nullptr;
    const T mo = T(momentum), l = T(lr);
    parallel_for(p.numel(), 1 << 15, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        T d = pg[i];
        if (pb) {
          pb[i] = first ? d : mo * pb[i] + d;
          d = pb[i];
        }
        pp[i] -= l * d;
      }
    });
  });
}

}  // namespace wn
