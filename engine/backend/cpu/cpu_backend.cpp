#include "engine/backend/cpu/cpu_backend.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/backend/cpu/sgemm.h"
#include "engine/parallel.h"
#include "engine/profile.h"

namespace wn {

namespace {
// 64-byte aligned, with 64 bytes past the end: the AVX2 kernels' masked loads (conv_pack.cpp,
// the fold in conv.cpp) may address, never read, up to 15 floats past a buffer's last one.
void* aligned_raw_alloc(size_t bytes) { return std::aligned_alloc(64, ((bytes + 63) & ~size_t(63)) + 64); }

Backend* (*g_cuda_factory)(int) = nullptr;
bool (*g_cuda_available)() = nullptr;
}  // namespace

CpuBackend::CpuBackend() : alloc_(aligned_raw_alloc, [](void* p) { std::free(p); }) {
  own_sgemm_enabled();  // an unknown WNGAN_CPU_GEMM is an error at start, not in the first product
}

std::string CpuBackend::conv_library() const {
  if (cpu_implicit_conv_enabled())
    return "own kernels (implicit GEMM: panels packed from the images, the data gradient folded by col2im; " +
           sgemm_kernel_name() + ")";
  return "own kernels (im2col + " + (own_sgemm_enabled() ? sgemm_kernel_name() : std::string("Eigen GEMM")) + ")";
}

void CpuBackend::host_to_device(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
void CpuBackend::device_to_host(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
void CpuBackend::device_to_device(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }

void CpuBackend::fill(Tensor& y, double value) {
  WN_PROFILE("fill", y.shape().str(), 0);
  WN_DISPATCH_FLOAT(y.dtype(), T, {
    T* p = y.data<T>();
    T v = static_cast<T>(value);
    parallel_for(y.numel(), 1 << 16, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) p[i] = v;
    });
  });
}

void CpuBackend::cast(const Tensor& x, Tensor& y) {
  WN_PROFILE("cast", x.shape().str(), 0);
  WN_DISPATCH_FLOAT(x.dtype(), S, {
    WN_DISPATCH_FLOAT(y.dtype(), D, {
      const S* s = x.data<S>();
      D* d = y.data<D>();
      for (int64_t i = 0, n = x.numel(); i < n; ++i) d[i] = static_cast<D>(s[i]);
    });
  });
}

CpuScratch::CpuScratch(size_t bytes) : bytes_(bytes) {
  p_ = backend_for(kCPU).allocator().allocate(bytes);
}
CpuScratch::~CpuScratch() { backend_for(kCPU).allocator().release(p_, bytes_); }

std::string ConvGeom::str() const {
  return fmt::format("N{} {}x{}x{} -> {}x{}x{} k{}x{} s{} p{}", n, cin, h, w, cout, oh, ow, kh, kw, sh, ph);
}

#ifdef WN_HAVE_CUDA
void init_cuda_backend();  // engine/backend/cuda/cuda_backend.cu
#endif

namespace {
// Registers the backends built into this binary, once.
void init_backends() {
#ifdef WN_HAVE_CUDA
  static std::once_flag once;
  std::call_once(once, [] { init_cuda_backend(); });
#endif
}
}  // namespace

Backend& backend_for(Device device) {
  static CpuBackend cpu;
  if (device.type == DeviceType::CPU) return cpu;
  init_backends();
  if (!g_cuda_factory)
    throw std::runtime_error(
        fmt::format("device {} requested, but this build has no CUDA backend (configure with -Dcuda=enabled)",
                    device.str()));
  if (!g_cuda_available || !g_cuda_available())
    throw std::runtime_error(fmt::format("device {} requested, but no CUDA GPU is available", device.str()));
  return *g_cuda_factory(device.index);
}

bool device_available(DeviceType type) {
  if (type == DeviceType::CPU) return true;
  init_backends();
  return g_cuda_factory && g_cuda_available && g_cuda_available();
}

void register_cuda_backend(Backend* (*factory)(int), bool (*available)()) {
  g_cuda_factory = factory;
  g_cuda_available = available;
}

}  // namespace wn
