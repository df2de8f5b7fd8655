// CUDA batch normalization: one block per channel computes the statistics (and the
// running update) or the backward sums in double with a fixed reduction tree; an
// element-wise kernel applies them.
#include "engine/backend/cuda/cuda_backend.h"
#include "engine/backend/cuda/cuda_common.cuh"

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
__global__ void bn_apply_k(const T* x, const T* g, const T* b, const T* mean, const T* invstd, T* y, int total, int c,
                           int r) {
  GRID_LOOP(i, total) {
    const int ch = (i / r) % c;
    const double is = double(invstd[ch]), gm = double(g[ch]);
    const T scale = static_cast<T>(is * gm), shift = static_cast<T>(double(b[ch]) - double(mean[ch]) * is * gm);
    y[i] = x[i] * scale + shift;
  }
}

template <class T>
__global__ void bn_eval_k(const T* x, const T* g, const T* b, const T* rm, const T* rv, double eps, T* y, int total,
                          int c, int r) {
  GRID_LOOP(i, total) {
    const int ch = (i / r) % c;
    const double is = 1.0 / sqrt(double(rv[ch]) + eps), gm = double(g[ch]);
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
      const double g = dy[off];
      a += g;
      b += g * (double(x[off]) - mu) * is;
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
__global__ void bn_bwd_dx_k(const T* x, const T* dy, const T* g, const T* mean, const T* invstd, const double* sums,
                            T* dx, int total, int c, int r, double m) {
  GRID_LOOP(i, total) {
    const int ch = (i / r) % c;
    const double is = invstd[ch], k = double(g[ch]) * is;
    const T a = static_cast<T>(k), b = static_cast<T>(-k * sums[2 * ch] / m),
            cc = static_cast<T>(-k * sums[2 * ch + 1] / m * is);
    dx[i] = a * dy[i] + b + cc * (x[i] - mean[ch]);
  }
}

}  // namespace

void CudaBackend::batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps,
                                   double momentum, Tensor& running_mean, Tensor& running_var, Tensor& y, Tensor& mean,
                                   Tensor& invstd) {
  const int n = int(x.dim(0)), c = int(x.dim(1)), r = int(x.numel() / (x.dim(0) * x.dim(1)));
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
  const int n = int(x.dim(0)), c = int(x.dim(1)), r = int(x.numel() / (x.dim(0) * x.dim(1)));
  WN_CUDA_DISPATCH(x.dtype(), T, {
    bn_eval_k<T><<<grid_for(x.numel()), 256>>>(x.data<T>(), gamma.data<T>(), beta.data<T>(), rm.data<T>(), rv.data<T>(),
                                                eps, y.data<T>(), x.numel(), c, r);
  });
  cuda_check(cudaGetLastError(), "batch_norm eval");
}

void CudaBackend::batch_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& invstd,
                                      const Tensor& dy, Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  const int n = int(x.dim(0)), c = int(x.dim(1)), r = int(x.numel() / (x.dim(0) * x.dim(1)));
  double* sums = static_cast<double*>(scratch(sizeof(double) * 2 * c));
  WN_CUDA_DISPATCH(x.dtype(), T, {
    bn_bwd_sums_k<T><<<unsigned(c), 1024>>>(x.data<T>(), dy.data<T>(), mean.data<T>(), invstd.data<T>(), n, c, r,
                                            dgamma.defined() ? dgamma.data<T>() : nullptr,
                                            dbeta.defined() ? dbeta.data<T>() : nullptr, sums);
    if (dx.defined())
      bn_bwd_dx_k<T><<<grid_for(x.numel()), 256>>>(x.data<T>(), dy.data<T>(), gamma.data<T>(), mean.data<T>(),
                                                    invstd.data<T>(), sums, dx.data<T>(), x.numel(), c, r, double(n) * r);
  });
  release(sums, sizeof(double) * 2 * c);
  cuda_check(cudaGetLastError(), "batch_norm backward");
}

}  // namespace wn
