// CPU kernels on image planes: 2x2 average pooling, nearest 2x upsampling and the
// window copy that implements zero padding and cropping.
#include <algorithm>

#include <fmt/format.h>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/parallel.h"
#include "engine/profile.h"

namespace wn {

namespace {
// Number of (n, c) planes and the plane size of an (N, C, H, W) tensor.
struct Planes {
  int64_t count, h, w;
};
Planes planes_of(const Tensor& t) { return {t.dim(0) * t.dim(1), t.dim(2), t.dim(3)}; }

// Runs f(src plane, dst plane, src planes, dst planes) over every (n, c) plane of src and
// dst (equal plane counts), in parallel.
template <class T, class F>
void for_planes(const Tensor& src, Tensor& dst, F f) {
  const Planes ps = planes_of(src), pd = planes_of(dst);
  const T* s = src.data<T>();
  T* d = dst.data<T>();
  parallel_for(ps.count, 8, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) f(s + p * ps.h * ps.w, d + p * pd.h * pd.w, ps, pd);
  });
}
}  // namespace

void CpuBackend::avg_pool2_forward(const Tensor& x, Tensor& y) {
  WN_PROFILE("avg_pool2_forward", x.shape().str(), 0);
  WN_DISPATCH_FLOAT(x.dtype(), T, {
    for_planes<T>(x, y, [](const T* xi, T* yo, const Planes& pi, const Planes& po) {
      for (int64_t i = 0; i < po.h; ++i)
        for (int64_t j = 0; j < po.w; ++j) {
          const T* a = xi + 2 * i * pi.w + 2 * j;
          yo[i * po.w + j] = T(0.25) * (a[0] + a[1] + a[pi.w] + a[pi.w + 1]);
        }
    });
  });
}

void CpuBackend::avg_pool2_backward(const Tensor& dy, Tensor& dx) {
  WN_PROFILE("avg_pool2_backward", dx.shape().str(), 0);
  WN_DISPATCH_FLOAT(dy.dtype(), T, {
    for_planes<T>(dy, dx, [](const T* yo, T* xi, const Planes& po, const Planes& pi) {
      for (int64_t i = 0; i < pi.h; ++i)
        for (int64_t j = 0; j < pi.w; ++j) xi[i * pi.w + j] = T(0.25) * yo[(i / 2) * po.w + j / 2];
    });
  });
}

void CpuBackend::upsample2_forward(const Tensor& x, Tensor& y) {
  WN_PROFILE("upsample2_forward", x.shape().str(), 0);
  WN_DISPATCH_FLOAT(x.dtype(), T, {
    for_planes<T>(x, y, [](const T* xi, T* yo, const Planes& pi, const Planes& po) {
      for (int64_t i = 0; i < po.h; ++i)
        for (int64_t j = 0; j < po.w; ++j) yo[i * po.w + j] = xi[(i / 2) * pi.w + j / 2];
    });
  });
}

void CpuBackend::upsample2_backward(const Tensor& dy, Tensor& dx) {
  WN_PROFILE("upsample2_backward", dx.shape().str(), 0);
  WN_DISPATCH_FLOAT(dy.dtype(), T, {
    for_planes<T>(dy, dx, [](const T* yo, T* xi, const Planes& po, const Planes& pi) {
      for (int64_t i = 0; i < pi.h; ++i)
        for (int64_t j = 0; j < pi.w; ++j) {
          const T* a = yo + 2 * i * po.w + 2 * j;
          xi[i * pi.w + j] = a[0] + a[1] + a[po.w] + a[po.w + 1];
        }
    });
  });
}

void CpuBackend::window_copy(const Tensor& src, Tensor& dst, int64_t top, int64_t left) {
  WN_PROFILE("window_copy", fmt::format("{} -> {}", src.shape().str(), dst.shape().str()), 0);
  WN_DISPATCH_FLOAT(src.dtype(), T, {
    for_planes<T>(src, dst, [&](const T* sp, T* dp, const Planes& ps, const Planes& pd) {
      for (int64_t i = 0; i < pd.h; ++i) {
        const int64_t si = i - top;
        for (int64_t j = 0; j < pd.w; ++j) {
          const int64_t sj = j - left;
          dp[i * pd.w + j] = (si >= 0 && si < ps.h && sj >= 0 && sj < ps.w) ? sp[si * ps.w + sj] : T(0);
        }
      }
    });
  });
}

}  // namespace wn
