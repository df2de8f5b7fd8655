// CUDA PReLU and translated PReLU (TPReLU), one slope a_c and shift t_c per channel (dim 1):
// y = prelu(x - t, a) + t (PReLU: t = 0). The forward is one element-wise pass; the
// backward writes dx and sums the slope's and the shift's gradients in double: blocks own
// (channel, batch slice) pairs, sum_partials_k adds the slices in order (deterministic).
#include "engine/backend/cuda/cuda_backend.h"
#include "engine/backend/cuda/cuda_common.cuh"

#include <algorithm>
#include <stdexcept>

namespace wn {

namespace {

// t null: plain PReLU.
template <class T>
__global__ void tprelu_k(const T* __restrict__ x, const T* __restrict__ a, const T* __restrict__ t, T* __restrict__ y,
                         int total, int c, int r) {
  GRID_LOOP(i, total) {
    const int ch = (i / r) % c;
    const T s = a[ch], sh = t ? t[ch] : T(0), u = x[i] - sh;
    y[i] = (u > T(0) ? u : s * u) + sh;
  }
}

// Block (ch, s) covers images [s n / S, (s + 1) n / S) of channel ch: dx = u > 0 ? dy : a dy
// with u = x - t, and the block's partial sums of da = sum dy min(u, 0) and dt = sum
// (dy - a dy) [u <= 0] into part[(ch S + s) 2 + {0, 1}] (part null: not wanted). dx may be
// null; t null: 0.
template <class T>
__global__ void tprelu_bwd_k(const T* __restrict__ x, const T* __restrict__ a, const T* __restrict__ t,
                             const T* __restrict__ dy, T* __restrict__ dx, double* __restrict__ part, int n, int c,
                             int r) {
  const int ch = blockIdx.x, s = blockIdx.y, S = gridDim.y;
  const T sl = a[ch], sh = t ? t[ch] : T(0);
  double acc_a = 0, acc_t = 0;
  for (int b = s * n / S; b < (s + 1) * n / S; ++b)
    for (int j = threadIdx.x; j < r; j += blockDim.x) {
      const int off = (b * c + ch) * r + j;
      const T u = x[off] - sh, g = dy[off];
      const bool pos = u > T(0);
      if (dx) dx[off] = pos ? g : sl * g;
      if (!pos) {
        acc_a += double(g) * double(u);
        acc_t += double(g - sl * g);
      }
    }
  if (!part) return;
  acc_a = block_sum(acc_a);
  acc_t = block_sum(acc_t);
  if (threadIdx.x == 0) {
    part[(ch * S + s) * 2] = acc_a;
    part[(ch * S + s) * 2 + 1] = acc_t;
  }
}

// Threads per block of the backward: whole warps, no more than a row needs.
unsigned bwd_threads(const Ncr& d) { return d.r >= 512 ? 512u : d.r >= 128 ? 128u : 32u; }
// Slices of the batch per channel: enough blocks to fill the GPU (a few hundred).
int bwd_slices(const Ncr& d) { return std::max(1, std::min(d.n, 512 / std::max(1, d.c))); }

template <class T>
T* opt_out(Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// The backward of PReLU (t null) and TPReLU: dx, da, dt, each optional.
void tprelu_backward_impl(CudaBackend& be, const Tensor& x, const Tensor& a, const Tensor* t, const Tensor& dy,
                          Tensor& dx, Tensor& da, Tensor& dt) {
  const Ncr d = ncr32(x, t ? "tprelu backward" : "prelu backward");
  const int S = bwd_slices(d);
  // part: per (channel, slice), the slope's then the shift's partial sum.
  CudaScratch part(be, da.defined() || dt.defined() ? sizeof(double) * 2 * size_t(S) * d.c : 0);
  WN_CUDA_DISPATCH(x.dtype(), T, {
    tprelu_bwd_k<T><<<dim3(unsigned(d.c), unsigned(S)), bwd_threads(d)>>>(
        x.data<T>(), a.data<T>(), t ? t->data<T>() : nullptr, dy.data<T>(), opt_out<T>(dx), part.as<double>(), d.n, d.c,
        d.r);
    if (da.defined())
      sum_partials_k<<<grid_for(d.c), 256>>>(part.as<double>(), d.c, S, int64_t(2) * S, int64_t(2), da.data<T>());
    if (dt.defined())
      sum_partials_k<<<grid_for(d.c), 256>>>(part.as<double>() + 1, d.c, S, int64_t(2) * S, int64_t(2), dt.data<T>());
  });
}

}  // namespace

void CudaBackend::prelu_forward(const Tensor& x, const Tensor& a, Tensor& y) {
  const Ncr d = ncr32(x, "prelu");
  WN_CUDA_DISPATCH(x.dtype(), T, {
    tprelu_k<T><<<grid_for(x.numel()), 256>>>(x.data<T>(), a.data<T>(), nullptr, y.data<T>(), int(x.numel()), d.c, d.r);
  });
  cuda_check(cudaGetLastError(), "prelu");
}

void CudaBackend::prelu_backward(const Tensor& x, const Tensor& a, const Tensor& dy, Tensor& dx, Tensor& da) {
  Tensor none;
  tprelu_backward_impl(*this, x, a, nullptr, dy, dx, da, none);
  cuda_check(cudaGetLastError(), "prelu backward");
}

void CudaBackend::tprelu_forward(const Tensor& x, const Tensor& a, const Tensor& t, Tensor& y) {
  const Ncr d = ncr32(x, "tprelu");
  WN_CUDA_DISPATCH(x.dtype(), T, {
    tprelu_k<T><<<grid_for(x.numel()), 256>>>(x.data<T>(), a.data<T>(), t.data<T>(), y.data<T>(), int(x.numel()), d.c,
                                              d.r);
  });
  cuda_check(cudaGetLastError(), "tprelu");
}

void CudaBackend::tprelu_backward(const Tensor& x, const Tensor& a, const Tensor& t, const Tensor& dy, Tensor& dx,
                                  Tensor& da, Tensor& dt) {
  tprelu_backward_impl(*this, x, a, t.defined() ? &t : nullptr, dy, dx, da, dt);
  cuda_check(cudaGetLastError(), "tprelu backward");
}

}  // namespace wn
