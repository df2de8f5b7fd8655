// CUDA batch normalization: one block per channel computes the statistics (and the
// running update) or the backward sums in double with a fixed reduction tree; an
// element-wise kernel applies them. Weight normalization: one block per unit computes
// its norm (or the backward's dot product) the same way and then scales the unit.
#include "engine/backend/cuda/cuda_backend.h"
#include "engine/backend/cuda/cuda_common.cuh"

#include <stdexcept>

namespace wn {

namespace {

template <class T>
__global__ void bn_stats_k(const T* x, int n, int c, int r, double eps, double mom, T* mean, T* invstd, T* rm, T* rv) {
  const int ch = blockIdx.x, m = n * r;
  double s = 0;
  for (int b = 0; b < n; ++b)
    for (int j = threadIdx.x; j < r; j += blockDim.x) s += double(x[(b * c + ch) * r + j]);
  s = block_sum(s);
  __shared__ double mu_s;
  if (threadIdx.x == 0) mu_s = s / double(m);
  __syncthreads();
  const double mu = mu_s;
  double v = 0;
  for (int b = 0; b < n; ++b)
    for (int j = threadIdx.x; j < r; j += blockDim.x) {
      const double t = double(x[(b * c + ch) * r + j]) - mu;
      v += t * t;
    }
  v = block_sum(v);
  if (threadIdx.x == 0) {
    const double var = v / double(m);
    mean[ch] = static_cast<T>(mu);
    invstd[ch] = static_cast<T>(1.0 / sqrt(var + eps));
    if (rm) rm[ch] = static_cast<T>((1 - mom) * double(rm[ch]) + mom * mu);
    if (rv) rv[ch] = static_cast<T>((1 - mom) * double(rv[ch]) + mom * (m > 1 ? var * double(m) / double(m - 1) : var));
  }
}

template <class T>
__global__ void bn_apply_k(const T* x, const T* gamma, const T* b, const T* mean, const T* invstd, T* y, int total, int c,
                           int r) {
  GRID_LOOP(i, total) {
    const int ch = (i / r) % c;
    const double is = double(invstd[ch]), gm = double(gamma[ch]);
    const T scale = static_cast<T>(is * gm), shift = static_cast<T>(double(b[ch]) - double(mean[ch]) * is * gm);
    y[i] = x[i] * scale + shift;
  }
}

template <class T>
__global__ void bn_eval_k(const T* x, const T* gamma, const T* b, const T* rm, const T* rv, double eps, T* y, int total,
                          int c, int r) {
  GRID_LOOP(i, total) {
    const int ch = (i / r) % c;
    const double is = 1.0 / sqrt(double(rv[ch]) + eps), gm = double(gamma[ch]);
    const T scale = static_cast<T>(is * gm), shift = static_cast<T>(double(b[ch]) - double(rm[ch]) * is * gm);
    y[i] = x[i] * scale + shift;
  }
}

template <class T>
__global__ void bn_bwd_sums_k(const T* x, const T* dy, const T* mean, const T* invstd, int n, int c, int r, T* dgamma,
                              T* dbeta, double* sums) {
  const int ch = blockIdx.x;
  const double mu = mean[ch], is = invstd[ch];
  double a = 0, b = 0;
  for (int bi = 0; bi < n; ++bi)
    for (int j = threadIdx.x; j < r; j += blockDim.x) {
      const int off = (bi * c + ch) * r + j;
      const double d = dy[off];
      a += d;
      b += d * (double(x[off]) - mu) * is;
    }
  a = block_sum(a);
  b = block_sum(b);
  if (threadIdx.x == 0) {
    if (dbeta) dbeta[ch] = static_cast<T>(a);
    if (dgamma) dgamma[ch] = static_cast<T>(b);
    sums[2 * ch] = a;
    sums[2 * ch + 1] = b;
  }
}

template <class T>
__global__ void bn_bwd_dx_k(const T* x, const T* dy, const T* gamma, const T* mean, const T* invstd, const double* sums,
                            T* dx, int total, int c, int r, double m) {
  GRID_LOOP(i, total) {
    const int ch = (i / r) % c;
    const double is = invstd[ch], k = double(gamma[ch]) * is;
    const T a = static_cast<T>(k), b = static_cast<T>(-k * sums[2 * ch] / m),
            cc = static_cast<T>(-k * sums[2 * ch + 1] / m * is);
    dx[i] = a * dy[i] + b + cc * (x[i] - mean[ch]);
  }
}

// Offset of a weight-norm unit's e-th element: v[e / inner, u, e % inner].
__device__ inline int wn_offset(int e, int u, int units, int inner) {
  return ((e / inner) * units + u) * inner + e % inner;
}

// Weight norm, one block per unit u: the unit's elements are v[o, u, j] for o < outer,
// j < inner, walked as one flat index e = o * inner + j. norm_u = sqrt(factor * sum v^2 +
// eps) + eps_out in double; w = v g_u / norm_u (scale null: 1).
template <class T>
__global__ void wn_fwd_k(const T* __restrict__ v, const T* __restrict__ scale, T* __restrict__ w, T* __restrict__ norm,
                         int outer, int units, int inner, double factor, double eps, double eps_out) {
  const int u = blockIdx.x, m = outer * inner;
  double ss = 0;
  for (int e = threadIdx.x; e < m; e += blockDim.x) {
    const double x = v[wn_offset(e, u, units, inner)];
    ss += x * x;
  }
  ss = block_sum(ss);
  __shared__ double k_s;
  if (threadIdx.x == 0) {
    const double n = sqrt(factor * ss + eps) + eps_out;
    norm[u] = static_cast<T>(n);
    k_s = (scale ? double(scale[u]) : 1.0) / n;
  }
  __syncthreads();
  const T k = static_cast<T>(k_s);
  for (int e = threadIdx.x; e < m; e += blockDim.x) {
    const int off = wn_offset(e, u, units, inner);
    w[off] = v[off] * k;
  }
}

// Its backward, one block per unit: dot = sum dw v; dg_u = dot / norm_u; dv = k dw - c v
// with k = g_u / norm_u and c = factor k dot / (norm_u (norm_u - eps_out)) (dv, dscale null:
// not wanted).
template <class T>
__global__ void wn_bwd_k(const T* __restrict__ v, const T* __restrict__ scale, const T* __restrict__ norm,
                         const T* __restrict__ dw, T* __restrict__ dv, T* __restrict__ dscale, int outer, int units,
                         int inner, double factor, double eps_out) {
  const int u = blockIdx.x, m = outer * inner;
  double dot = 0;
  for (int e = threadIdx.x; e < m; e += blockDim.x) {
    const int off = wn_offset(e, u, units, inner);
    dot += double(dw[off]) * double(v[off]);
  }
  dot = block_sum(dot);
  __shared__ double kc_s[2];
  if (threadIdx.x == 0) {
    const double n = norm[u], k = (scale ? double(scale[u]) : 1.0) / n;
    if (dscale) dscale[u] = static_cast<T>(dot / n);
    kc_s[0] = k;
    kc_s[1] = factor * k * dot / (n * (n - eps_out));
  }
  __syncthreads();
  if (!dv) return;
  const T k = static_cast<T>(kc_s[0]), c = static_cast<T>(kc_s[1]);
  for (int e = threadIdx.x; e < m; e += blockDim.x) {
    const int off = wn_offset(e, u, units, inner);
    dv[off] = k * dw[off] - c * v[off];
  }
}

// Threads per unit block: whole warps, no more than a unit has elements.
unsigned wn_threads(const WNGeom& geom) {
  const int64_t m = geom.outer * geom.inner;
  return m >= 1024 ? 256u : m >= 128 ? 128u : 32u;
}

void wn_check(const WNGeom& geom) {
  if (geom.outer * geom.units * geom.inner >= 2147483647)
    throw std::runtime_error("weight norm too large for the CUDA backend's 32-bit indexing");
}

}  // namespace

void CudaBackend::batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps,
                                   double momentum, Tensor& running_mean, Tensor& running_var, Tensor& y, Tensor& mean,
                                   Tensor& invstd) {
  const auto [n, c, r] = ncr32(x, "batch_norm");
  WN_CUDA_DISPATCH(x.dtype(), T, {
    bn_stats_k<T><<<unsigned(c), 1024>>>(x.data<T>(), n, c, r, eps, momentum, mean.data<T>(), invstd.data<T>(),
                                         running_mean.defined() ? running_mean.data<T>() : nullptr,
                                         running_var.defined() ? running_var.data<T>() : nullptr);
    bn_apply_k<T><<<grid_for(x.numel()), 256>>>(x.data<T>(), gamma.data<T>(), beta.data<T>(), mean.data<T>(),
                                                 invstd.data<T>(), y.data<T>(), x.numel(), c, r);
  });
  cuda_check(cudaGetLastError(), "batch_norm");
}

void CudaBackend::batch_norm_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& rm,
                                  const Tensor& rv, double eps, Tensor& y) {
  const Ncr d = ncr32(x, "batch_norm eval");
  WN_CUDA_DISPATCH(x.dtype(), T, {
    bn_eval_k<T><<<grid_for(x.numel()), 256>>>(x.data<T>(), gamma.data<T>(), beta.data<T>(), rm.data<T>(), rv.data<T>(),
                                                eps, y.data<T>(), x.numel(), d.c, d.r);
  });
  cuda_check(cudaGetLastError(), "batch_norm eval");
}

void CudaBackend::batch_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& invstd,
                                      const Tensor& dy, Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  const auto [n, c, r] = ncr32(x, "batch_norm backward");
  CudaScratch sums(*this, sizeof(double) * 2 * c);
  WN_CUDA_DISPATCH(x.dtype(), T, {
    bn_bwd_sums_k<T><<<unsigned(c), 1024>>>(x.data<T>(), dy.data<T>(), mean.data<T>(), invstd.data<T>(), n, c, r,
                                            dgamma.defined() ? dgamma.data<T>() : nullptr,
                                            dbeta.defined() ? dbeta.data<T>() : nullptr, sums.as<double>());
    if (dx.defined())
      bn_bwd_dx_k<T><<<grid_for(x.numel()), 256>>>(x.data<T>(), dy.data<T>(), gamma.data<T>(), mean.data<T>(),
                                                    invstd.data<T>(), sums.as<double>(), dx.data<T>(), x.numel(), c, r,
                                                    double(n) * r);
  });
  cuda_check(cudaGetLastError(), "batch_norm backward");
}

void CudaBackend::weight_norm_forward(const WNGeom& geom, const Tensor& v, const Tensor& scale, Tensor& w, Tensor& norm) {
  wn_check(geom);
  WN_CUDA_DISPATCH(v.dtype(), T, {
    wn_fwd_k<T><<<unsigned(geom.units), wn_threads(geom)>>>(v.data<T>(), scale.defined() ? scale.data<T>() : nullptr,
                                                             w.data<T>(), norm.data<T>(), int(geom.outer),
                                                             int(geom.units), int(geom.inner), geom.factor, geom.eps,
                                                             geom.eps_out);
  });
  cuda_check(cudaGetLastError(), "weight norm");
}

void CudaBackend::weight_norm_backward(const WNGeom& geom, const Tensor& v, const Tensor& scale, const Tensor& norm,
                                       const Tensor& dw, Tensor& dv, Tensor& dscale) {
  wn_check(geom);
  WN_CUDA_DISPATCH(v.dtype(), T, {
    wn_bwd_k<T><<<unsigned(geom.units), wn_threads(geom)>>>(
        v.data<T>(), scale.defined() ? scale.data<T>() : nullptr, norm.data<T>(), dw.data<T>(),
        dv.defined() ? dv.data<T>() : nullptr, dscale.defined() ? dscale.data<T>() : nullptr, int(geom.outer),
        int(geom.units), int(geom.inner), geom.factor, geom.eps_out);
  });
  cuda_check(cudaGetLastError(), "weight norm backward");
}

}  // namespace wn
