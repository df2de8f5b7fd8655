// Device helpers shared by the CUDA kernels: grid sizes and deterministic reductions.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

// Runs the body with T = float or double according to a dtype.
#define WN_CUDA_DISPATCH(dtype, T, ...) \
  if ((dtype) == DType::F32) {          \
    using T = float;                    \
    __VA_ARGS__;                        \
  } else {                              \
    using T = double;                   \
    __VA_ARGS__;                        \
  }

// A grid-stride loop over [0, n) with 32-bit indices.
#define GRID_LOOP(i, n) for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < int(n); i += gridDim.x * blockDim.x)

namespace wn {

// Blocks of 256 threads for n elements (grid-stride loops cover the rest).
inline unsigned grid_for(int64_t n) {
  int64_t b = (n + 255) / 256;
  if (b < 1) b = 1;
  if (b > 65535 * 8) b = 65535 * 8;
  return static_cast<unsigned>(b);
}

// Sum over a group of BS consecutive threads (BS a power of two <= 32, or 1024 for a
// whole block); lane 0 of the group gets the total. Fixed order: deterministic.
template <int BS>
__device__ double group_sum(double v) {
  if constexpr (BS <= 32) {
    for (int o = BS / 2; o > 0; o /= 2) v += __shfl_down_sync(0xffffffffu, v, o, BS);
    return v;
  } else {
    __shared__ double part[32];
    for (int o = 16; o > 0; o /= 2) v += __shfl_down_sync(0xffffffffu, v, o);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = (threadIdx.x < blockDim.x / 32) ? part[lane] : 0.0;
    if (warp == 0)
      for (int o = 16; o > 0; o /= 2) v += __shfl_down_sync(0xffffffffu, v, o);
    __syncthreads();
    return v;
  }
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024); thread 0 gets it.
__device__ inline double block_sum(double v) { return group_sum<1024>(v); }

// Partial results computed side by side, added in a fixed order (deterministic):
// out[o] = sum over k < count of parts[o * so + k * sk], accumulated in P.
template <class P, class T>
__global__ void sum_partials_k(const P* __restrict__ parts, int n_out, int count, int64_t so, int64_t sk,
                               T* __restrict__ out) {
  GRID_LOOP(o, n_out) {
    P acc = P(0);
    for (int k = 0; k < count; ++k) acc += parts[o * so + k * sk];
    out[o] = static_cast<T>(acc);
  }
}

}  // namespace wn
