// The CPU's own single-precision matrix product (BLIS-style): op(A) and op(B) packed into
// panels, register-blocked micro-kernels (AVX-512: 12 x 32 floats of C in 24 zmm
// registers; AVX2 + FMA: 6 x 16 in 12 ymm). Chosen at run time where the CPU has AVX2 and
// FMA; elsewhere, or with WNGAN_CPU_GEMM=eigen, the products stay on Eigen.
// Single-threaded: cpu_gemm splits a product over threads by blocks of C (or of k, summed in
// order) chosen from the shape alone, so the sums run in the same fixed order for any thread
// count. Results differ in
// the last bits between this kernel and Eigen (another order of the sums).
#pragma once
#include <cstdint>
#include <string>

namespace wn {

// Whether this CPU can run the own kernel (AVX2 and FMA).
bool own_sgemm_supported();
// Whether the own kernel serves float products on this CPU (AVX2 and FMA present and
// WNGAN_CPU_GEMM not set to eigen; read once). Throws on an unknown WNGAN_CPU_GEMM.
bool own_sgemm_enabled();
// Switches float products to the own kernel (where supported) or to Eigen, overriding
// WNGAN_CPU_GEMM; returns the previous state. For benchmarks that time both.
bool set_own_sgemm(bool on);
// The own SGEMM's micro-kernels. Avx512: 12 x 32 tiles in zmm registers (the default where
// the CPU has AVX-512F), Avx2: 6 x 16 tiles in ymm registers (the default elsewhere, and the
// edges of the wide tiles), WideOnAvx2: Avx512's tiling on pairs of ymm registers (slow; it
// lets the tests check the wide kernel's code on hosts without AVX-512). All three give the
// same bits: every element is the same fused sum in the same order.
enum class SgemmKernel { Avx2, Avx512, WideOnAvx2 };
// Whether this CPU can run kernel k.
bool sgemm_kernel_supported(SgemmKernel k);
// Whether kernel k writes the same bits as the AVX2 kernel on a small product crossing the
// tile and block edges (false where the CPU cannot run it; trivially true for Avx2). The
// first read of the kernel choice runs it before picking AVX-512, and falls back to AVX2 with
// a warning where it fails (WNGAN_CPU_GEMM=avx512: an error). set_sgemm_kernel does not.
bool sgemm_kernel_self_check(SgemmKernel k);
// The kernel own_sgemm uses (WNGAN_CPU_GEMM=avx512|avx2 picks one; read once).
SgemmKernel sgemm_kernel();
// Switches the own SGEMM's kernel (throws where unsupported); returns the previous one. For
// tests and benchmarks.
SgemmKernel set_sgemm_kernel(SgemmKernel k);
// "own AVX2/FMA 6x16 micro-kernel", "own AVX-512 12x32 ..." or "Eigen (...why)": for
// benchmark headers.
std::string sgemm_kernel_name();
// Row-major C (m x n) = alpha op(A) op(B) + beta C on the own kernel (beta 0: C is not
// read). Call only where own_sgemm_supported().
void own_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// own_sgemm for thin shapes where the tiles would be mostly padding: n == 1 (B's column
// contiguous), m == 1 or k == 1 (B stored by rows); the same bits as the tiles. Returns false,
// having done nothing, for any other shape (and off x86). Call only where own_sgemm_supported().
bool own_sgemm_thin(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                    const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// Switches own_sgemm's use of own_sgemm_thin (on by default); returns the previous state. For
// tests that compare it with the tiles, and benchmarks.
bool set_sgemm_thin(bool on);

// Rows of one packed panel of op(A): own_sgemm_packed's row ranges start at multiples of it.
constexpr int64_t kSgemmPanelRows = 6;
// Columns of one packed panel of op(B), and the most rows of B packed at once.
constexpr int64_t kSgemmPanelCols = 16;
constexpr int64_t kSgemmBlockK = 256;
constexpr int64_t kSgemmPackSlack = 16;

// A B that is never stored (a convolution's unfolded images): pack(ctx, p0, j0, kc, nc, dst)
// writes B[p0 : p0+kc, j0 : j0+nc] (kc <= kSgemmBlockK) into panels of kSgemmPanelCols
// columns, panel q (columns j0 + q*16...) at dst + q*16*kc, each p-major (16 values per p),
// columns past nc zero: exactly what the SGEMM's own packing of a stored B writes, so the
// product has the same bits as on the stored B. It may read and rewrite, unchanged, up to
// kSgemmPackSlack floats past the last panel (the SGEMM's buffer has them).
struct SgemmBPacker {
  void (*pack)(const void* ctx, int64_t p0, int64_t j0, int64_t kc, int64_t nc, float* dst) = nullptr;
  const void* ctx = nullptr;
};

// op(A) (m x k) packed once into the micro-kernel's panels, for several products that share
// it (a convolution's weights over its chunks of images). The caller owns the storage.
struct SgemmPackedA {
  int64_t m = 0, k = 0, mpad = 0;  // mpad: m rounded up to whole panels
  const float* data = nullptr;
};
// Floats the packing of an m x k op(A) takes.
int64_t own_sgemm_packed_size(int64_t m, int64_t k);
// Packs op(A) into dst (own_sgemm_packed_size floats). Call only where own_sgemm_supported().
SgemmPackedA own_sgemm_pack(bool ta, const float* a, int64_t lda, int64_t m, int64_t k, float* dst);
// C (rows x n) = alpha op(A)[r0 : r0 + rows, :] op(B) + beta C with op(A) packed (r0 a
// multiple of kSgemmPanelRows): every element the same sums in the same order as own_sgemm.
void own_sgemm_packed(const SgemmPackedA& a, int64_t r0, int64_t rows, bool tb, int64_t n, float alpha,
                      const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
// own_sgemm_packed with B given by a packer, its columns [j0, j0 + n) (B is k x (j0 + n) at
// least): the same bits as on the stored B.
void own_sgemm_packed_implicit(const SgemmPackedA& a, int64_t r0, int64_t rows, int64_t n, float alpha,
                               const SgemmBPacker& b, int64_t j0, float beta, float* c, int64_t ldc);

}  // namespace wn
