// CPU weight normalization: fused forward (per-unit norms and the scaled weight) and
// backward. Tasks own blocks of units; sums in double, in a fixed order.
#include <cmath>

#include <fmt/format.h>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cpu/lanes.h"
#include "engine/parallel.h"
#include "engine/profile.h"

namespace wn {

// Units per task of the weight-norm kernels.
constexpr int64_t kUnitBlock = 16;

void CpuBackend::weight_norm_forward(const WNGeom& geom, const Tensor& v, const Tensor& scale, Tensor& w, Tensor& norm) {
  WN_PROFILE("weight_norm_forward", v.shape().str(), 0);
  WN_DISPATCH_FLOAT(v.dtype(), T, {
    const T* pv = v.data<T>();
    const T* pscale = scale.defined() ? scale.data<T>() : nullptr;
    T* pw = w.data<T>();
    T* pn = norm.data<T>();
    const int64_t U = geom.units, I = geom.inner;
    // Tasks own blocks of units; within a block the outer rows are walked in memory
    // order. Each unit's sum runs over o, then lanes of j: a fixed order.
    parallel_for(U, kUnitBlock, [&](int64_t ub, int64_t ue) {
      double ss[kUnitBlock] = {};
      for (int64_t o = 0; o < geom.outer; ++o)
        for (int64_t u = ub; u < ue; ++u) {
          const T* row = pv + (o * U + u) * I;
          ss[u - ub] += lane_sum(I, [&](int64_t j) { return double(row[j]) * double(row[j]); });
        }
      T k[kUnitBlock];
      for (int64_t u = ub; u < ue; ++u) {
        const double n = std::sqrt(geom.factor * ss[u - ub] + geom.eps) + geom.eps_out;
        pn[u] = static_cast<T>(n);
        k[u - ub] = static_cast<T>((pscale ? double(pscale[u]) : 1.0) / n);
      }
      for (int64_t o = 0; o < geom.outer; ++o)
        for (int64_t u = ub; u < ue; ++u) {
          const T* row = pv + (o * U + u) * I;
          T* out = pw + (o * U + u) * I;
          const T ku = k[u - ub];
          for (int64_t j = 0; j < I; ++j) out[j] = row[j] * ku;
        }
    });
  });
}

void CpuBackend::weight_norm_backward(const WNGeom& geom, const Tensor& v, const Tensor& scale, const Tensor& norm,
                                      const Tensor& dw, Tensor& dv, Tensor& dscale) {
  WN_PROFILE("weight_norm_backward", v.shape().str(), 0);
  WN_DISPATCH_FLOAT(v.dtype(), T, {
    const T* pv = v.data<T>();
    const T* pscale = scale.defined() ? scale.data<T>() : nullptr;
    const T* pn = norm.data<T>();
    const T* pd = dw.data<T>();
    T* pdv = dv.defined() ? dv.data<T>() : nullptr;
    T* pdscale = dscale.defined() ? dscale.data<T>() : nullptr;
    const int64_t U = geom.units, I = geom.inner;
    parallel_for(U, kUnitBlock, [&](int64_t ub, int64_t ue) {
      double dot[kUnitBlock] = {};
      for (int64_t o = 0; o < geom.outer; ++o)
        for (int64_t u = ub; u < ue; ++u) {
          const int64_t off = (o * U + u) * I;
          dot[u - ub] += lane_sum(I, [&](int64_t j) { return double(pd[off + j]) * double(pv[off + j]); });
        }
      T a[kUnitBlock], c[kUnitBlock];
      for (int64_t u = ub; u < ue; ++u) {
        const double n = pn[u], k = (pscale ? double(pscale[u]) : 1.0) / n, d = dot[u - ub];
        if (pdscale) pdscale[u] = static_cast<T>(d / n);
        a[u - ub] = static_cast<T>(k);
        c[u - ub] = static_cast<T>(geom.factor * k * d / (n * (n - geom.eps_out)));
      }
      if (!pdv) return;
      for (int64_t o = 0; o < geom.outer; ++o)
        for (int64_t u = ub; u < ue; ++u) {
          const int64_t off = (o * U + u) * I;
          const T au = a[u - ub], cu = c[u - ub];
          for (int64_t j = 0; j < I; ++j) pdv[off + j] = au * pd[off + j] - cu * pv[off + j];
        }
    });
  });
}

}  // namespace wn
