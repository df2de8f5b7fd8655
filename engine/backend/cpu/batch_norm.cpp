// CPU batch normalization: fused training forward (statistics, normalisation and the
// running-statistics update), evaluation forward and fused backward. One task per
// channel; sums in double.
#include <cmath>

#include <fmt/format.h>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cpu/lanes.h"
#include "engine/parallel.h"
#include "engine/profile.h"

namespace wn {

void CpuBackend::batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps,
                                  double momentum, Tensor& running_mean, Tensor& running_var, Tensor& y,
                                  Tensor& mean, Tensor& invstd) {
  WN_PROFILE("batch_norm_train", x.shape().str(), 0);
  WN_DISPATCH_FLOAT(x.dtype(), T, {
    NCR d = ncr_of(x.shape());
    const T* px = x.data<T>();
    const T* pg = gamma.data<T>();
    const T* pb = beta.data<T>();
    T* py = y.data<T>();
    T* pm = mean.data<T>();
    T* pi = invstd.data<T>();
    T* rm = running_mean.defined() ? running_mean.data<T>() : nullptr;
    T* rv = running_var.defined() ? running_var.data<T>() : nullptr;
    const double m = double(d.n) * d.r;
    parallel_for(d.c, 1, [&](int64_t cb, int64_t ce) {
      for (int64_t c = cb; c < ce; ++c) {
        double s = 0;
        for (int64_t n = 0; n < d.n; ++n) {
          const T* row = px + (n * d.c + c) * d.r;
          s += lane_sum(d.r, [&](int64_t j) { return row[j]; });
        }
        const double mu = s / m;
        double q = 0;
        for (int64_t n = 0; n < d.n; ++n) {
          const T* row = px + (n * d.c + c) * d.r;
          q += lane_sum(d.r, [&](int64_t j) {
            const double t = double(row[j]) - mu;
            return t * t;
          });
        }
        const double var = q / m;
        const double is = 1.0 / std::sqrt(var + eps);
        pm[c] = static_cast<T>(mu);
        pi[c] = static_cast<T>(is);
        const T scale = static_cast<T>(is * double(pg[c]));
        const T shift = static_cast<T>(double(pb[c]) - mu * is * double(pg[c]));
        for (int64_t n = 0; n < d.n; ++n) {
          const T* row = px + (n * d.c + c) * d.r;
          T* out = py + (n * d.c + c) * d.r;
          for (int64_t j = 0; j < d.r; ++j) out[j] = row[j] * scale + shift;
        }
        if (rm) rm[c] = static_cast<T>((1 - momentum) * rm[c] + momentum * mu);
        if (rv) rv[c] = static_cast<T>((1 - momentum) * rv[c] + momentum * (m > 1 ? var * m / (m - 1) : var));
      }
    });
  });
}

void CpuBackend::batch_norm_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                                 const Tensor& running_var, double eps, Tensor& y) {
  WN_PROFILE("batch_norm_eval", x.shape().str(), 0);
  WN_DISPATCH_FLOAT(x.dtype(), T, {
    NCR d = ncr_of(x.shape());
    const T* px = x.data<T>();
    const T* pg = gamma.data<T>();
    const T* pb = beta.data<T>();
    const T* rm = running_mean.data<T>();
    const T* rv = running_var.data<T>();
    T* py = y.data<T>();
    parallel_for(d.n * d.c, std::max<int64_t>(1, 4096 / d.r), [&](int64_t s, int64_t e) {
      for (int64_t nc = s; nc < e; ++nc) {
        const int64_t c = nc % d.c;
        const double is = 1.0 / std::sqrt(double(rv[c]) + eps);
        const T scale = static_cast<T>(is * double(pg[c]));
        const T shift = static_cast<T>(double(pb[c]) - double(rm[c]) * is * double(pg[c]));
        const T* row = px + nc * d.r;
        T* out = py + nc * d.r;
        for (int64_t j = 0; j < d.r; ++j) out[j] = row[j] * scale + shift;
      }
    });
  });
}

void CpuBackend::batch_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& invstd,
                                     const Tensor& dy, Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  WN_PROFILE("batch_norm_backward", x.shape().str(), 0);
  WN_DISPATCH_FLOAT(x.dtype(), T, {
    NCR d = ncr_of(x.shape());
    const T* px = x.data<T>();
    const T* pg = gamma.data<T>();
    const T* pm = mean.data<T>();
    const T* pi = invstd.data<T>();
    const T* pd = dy.data<T>();
    T* pdx = dx.defined() ? dx.data<T>() : nullptr;
    T* pdg = dgamma.defined() ? dgamma.data<T>() : nullptr;
    T* pdb = dbeta.defined() ? dbeta.data<T>() : nullptr;
    const double m = double(d.n) * d.r;
    parallel_for(d.c, 1, [&](int64_t cb, int64_t ce) {
      for (int64_t c = cb; c < ce; ++c) {
        const double mu = pm[c], is = pi[c];
        double sdy = 0, sdyx = 0;
        for (int64_t n = 0; n < d.n; ++n) {
          const int64_t off = (n * d.c + c) * d.r;
          double a, b;
          lane_sum2(
              d.r,
              [&](int64_t j, double& u, double& v) {
                u = pd[off + j];
                v = u * (double(px[off + j]) - mu);
              },
              a, b);
          sdy += a;
          sdyx += b * is;
        }
        if (pdb) pdb[c] = static_cast<T>(sdy);
        if (pdg) pdg[c] = static_cast<T>(sdyx);
        if (pdx) {
          // dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)): the two
          // projection terms remove the gradient's mean and its component along xhat.
          const double k = double(pg[c]) * is;
          const T a = static_cast<T>(k), b = static_cast<T>(-k * sdy / m), cc = static_cast<T>(-k * sdyx / m * is);
          const T mT = static_cast<T>(mu);
          for (int64_t n = 0; n < d.n; ++n) {
            const int64_t off = (n * d.c + c) * d.r;
            for (int64_t j = 0; j < d.r; ++j) pdx[off + j] = a * pd[off + j] + b + cc * (px[off + j] - mT);
          }
        }
      }
    });
  });
}

}  // namespace wn
