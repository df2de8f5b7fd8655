// The own SGEMM kernel (engine/backend/cpu/sgemm.h) against a product computed here in
// double, over shapes that cross every block edge (the 6 x 16 tile, kKc = 256, kMc = 144,
// kNc = 2048), all four transpositions, strided operands and alpha / beta; and the
// threaded product (cpu_gemm) bit for bit the same for 1 and 2 threads.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cpu/sgemm.h"
#include "engine/parallel.h"
#include "helpers.h"

using namespace wn;

namespace {

struct Case {
  int64_t m, n, k;
};

// Operands with values of mixed sign and size from a simple fixed sequence.
std::vector<float> values(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  uint32_t s = seed * 2654435761u + 1;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = float((int(s >> 9) % 2001) - 1000) / 512.0f;
  }
  return v;
}

// The own kernels this CPU can run: the 6 x 16 AVX2 kernel, the 12 x 32 tiling on AVX2
// register pairs, and the AVX-512 12 x 32 kernel where the CPU has AVX-512F.
std::vector<SgemmKernel> kernels_here() {
  std::vector<SgemmKernel> ks;
  for (SgemmKernel k : {SgemmKernel::Avx2, SgemmKernel::WideOnAvx2, SgemmKernel::Avx512})
    if (sgemm_kernel_supported(k)) ks.push_back(k);
  return ks;
}

const char* kernel_label(SgemmKernel k) {
  return k == SgemmKernel::Avx2 ? "avx2 6x16" : k == SgemmKernel::Avx512 ? "avx512 12x32" : "12x32 on ymm pairs";
}

// Puts the kernel in use back as it was, also when a REQUIRE fails.
struct KernelRestore {
  SgemmKernel was = sgemm_kernel();
  ~KernelRestore() { set_sgemm_kernel(was); }
};

}  // namespace

TEST_CASE("own SGEMM: every block edge, transposition, stride, alpha and beta against a double product") {
  if (!own_sgemm_supported()) {
    MESSAGE("no AVX2 + FMA on this CPU: the own SGEMM is not used here");
    return;
  }
  // The 12 x 32 tiles' edges too: whole tiles only, one row or column past them, 2 x 2 tiles.
  const std::vector<Case> cases = {{1, 1, 1},      {5, 7, 3},       {6, 16, 256},  {7, 17, 257},
                                   {150, 33, 300}, {13, 2100, 20},  {145, 50, 513}, {64, 4096, 48},
                                   {12, 32, 5},    {13, 33, 260},   {24, 64, 9},    {11, 95, 17}};
  const KernelRestore restore;
  int checked = 0;
  for (const SgemmKernel kernel : kernels_here()) {
    set_sgemm_kernel(kernel);
    CAPTURE(kernel_label(kernel));
    for (const Case& cs : cases)
      for (int t = 0; t < 4; ++t)
        for (auto [alpha, beta] : {std::pair<float, float>{1, 0}, {0.5f, 1}, {-2, 0.25f}}) {
          const bool ta = t & 1, tb = t & 2;
          const int64_t m = cs.m, n = cs.n, k = cs.k;
          // Leading dimensions wider than the rows: strides are honoured.
          const int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
          const std::vector<float> a = values(size_t((ta ? k : m) * lda), 1), b = values(size_t((tb ? n : k) * ldb), 2);
          std::vector<float> c = values(size_t(m * ldc), 3);
          if (beta == 0)  // C must not be read: a NaN read makes the result NaN, which fails below
            for (int64_t i = 0; i < m; ++i)
              std::fill(c.begin() + i * ldc, c.begin() + i * ldc + n, std::numeric_limits<float>::quiet_NaN());
          const std::vector<float> c0 = c;
          own_sgemm(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
          INFO(m << "x" << n << "x" << k << (ta ? " tA" : "") << (tb ? " tB" : "") << " alpha " << alpha << " beta "
                 << beta);
          double worst = 0;
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
              double s = 0, mag = 0;
              for (int64_t p = 0; p < k; ++p) {
                const double x = ta ? a[p * lda + i] : a[i * lda + p], y = tb ? b[j * ldb + p] : b[p * ldb + j];
                s += x * y;
                mag += std::fabs(x * y);
              }
              const double old = beta == 0 ? 0.0 : double(c0[i * ldc + j]);
              const double ref = alpha * s + beta * old, scale = std::fabs(alpha) * mag + std::fabs(beta * old) + 1e-30;
              const double e = std::fabs(double(c[i * ldc + j]) - ref) / scale;
              if (!(e <= worst)) worst = e;  // a NaN (C read, or never written) sticks
            }
          // The padding between rows of C (finite values) is left alone, bit for bit.
          bool pad_kept = true;
          for (int64_t i = 0; i < m; ++i)
            pad_kept &= std::memcmp(&c[i * ldc + n], &c0[i * ldc + n], sizeof(float) * (ldc - n)) == 0;
          CHECK(pad_kept);
          CHECK(worst < 1e-5);
          ++checked;
        }
  }
  CHECK(checked == int(cases.size()) * 12 * int(kernels_here().size()));
  CHECK(kernels_here().size() >= 2);
  set_sgemm_kernel(restore.was);
  MESSAGE("float products on this CPU: " << sgemm_kernel_name());
}

TEST_CASE("own SGEMM: the 12x32 kernels (AVX-512, and on AVX2 register pairs) give the 6x16 kernel's bits") {
  if (!own_sgemm_supported()) return;
  const KernelRestore restore;
  if (!sgemm_kernel_supported(SgemmKernel::Avx512))
    MESSAGE("no AVX-512F on this CPU: the 12x32 tiling is checked on AVX2 register pairs only");
  // Plain and packed-A products with beta 0 and not, tiles whole and cut at every edge.
  for (const Case cs : {Case{150, 100, 300}, Case{36, 64, 256}, Case{25, 47, 1}, Case{144, 2049, 40}})
    for (const float beta : {0.0f, 0.5f}) {
      const std::vector<float> a = values(size_t(cs.m * cs.k), 12), b = values(size_t(cs.k * cs.n), 13);
      const std::vector<float> c0 = values(size_t(cs.m * cs.n), 14);
      std::vector<float> store(size_t(own_sgemm_packed_size(cs.m, cs.k)));
      std::vector<std::vector<float>> plain, packed;
      for (const SgemmKernel kernel : kernels_here()) {
        set_sgemm_kernel(kernel);
        plain.push_back(c0);
        own_sgemm(false, true, cs.m, cs.n, cs.k, -0.75f, a.data(), cs.k, b.data(), cs.k, beta, plain.back().data(),
                  cs.n);
        const SgemmPackedA p = own_sgemm_pack(false, a.data(), cs.k, cs.m, cs.k, store.data());
        packed.push_back(c0);
        // Rows [0, 6) and [6, m): the second range's wide tiles start one panel into A.
        own_sgemm_packed(p, 0, 6, false, cs.n, 1.25f, b.data(), cs.n, beta, packed.back().data(), cs.n);
        own_sgemm_packed(p, 6, cs.m - 6, false, cs.n, 1.25f, b.data(), cs.n, beta, packed.back().data() + 6 * cs.n,
                         cs.n);
      }
      INFO(cs.m << "x" << cs.n << "x" << cs.k << " beta " << beta);
      for (size_t i = 1; i < plain.size(); ++i) {
        CAPTURE(kernel_label(kernels_here()[i]));
        CHECK(std::memcmp(plain[i].data(), plain[0].data(), sizeof(float) * plain[0].size()) == 0);
        CHECK(std::memcmp(packed[i].data(), packed[0].data(), sizeof(float) * packed[0].size()) == 0);
      }
      CHECK(plain[0] != c0);  // the products were written
    }
}

TEST_CASE("own SGEMM: the self-check auto runs before picking AVX-512 passes on every kernel here") {
  if (!own_sgemm_supported()) {
    CHECK_FALSE(sgemm_kernel_self_check(SgemmKernel::Avx2));  // nothing can run it
    return;
  }
  for (const SgemmKernel k : kernels_here()) {
    if (k == SgemmKernel::Avx2) continue;  // the reference itself
    CAPTURE(kernel_label(k));
    CHECK(sgemm_kernel_self_check(k));
  }
  // A kernel the CPU cannot run fails it; auto picks AVX-512 exactly where it can run and passes.
  CHECK(sgemm_kernel_self_check(SgemmKernel::Avx512) == sgemm_kernel_supported(SgemmKernel::Avx512));
  if (!std::getenv("WNGAN_CPU_GEMM"))
    CHECK((sgemm_kernel() == SgemmKernel::Avx512) == sgemm_kernel_supported(SgemmKernel::Avx512));
}

TEST_CASE("own SGEMM: thin products (one column, one row, an inner dimension of 1) give the tiles' bits") {
  if (!own_sgemm_supported()) return;
  struct Thin {
    bool ta, tb;
    int64_t m, n, k;
  };
  std::vector<Thin> cases;
  for (int64_t m : {1, 7, 8, 32, 37})
    for (int64_t k : {1, 7, 256, 257, 600}) {
      cases.push_back({false, true, m, 1, k});   // D's last convolution: B's column is w
      cases.push_back({false, false, m, 1, k});  // a column stored with ldb 1
    }
  for (int64_t n : {1, 5, 8, 31, 32, 45, 100})
    for (int64_t k : {1, 3, 32, 256, 300}) {
      cases.push_back({true, false, 1, n, k});  // its weight gradient: dy^T x
      cases.push_back({false, false, 1, n, k});
    }
  for (int64_t m : {1, 5, 32})
    for (int64_t n : {1, 7, 8, 33, 300}) {
      cases.push_back({false, false, m, n, 1});  // its data gradient: dy w
      cases.push_back({true, false, m, n, 1});
    }
  const bool was = set_sgemm_thin(true);
  int checked = 0;
  for (const Thin& t : cases)
    for (const float beta : {0.0f, -0.5f, 1.0f}) {
      // Strided operands (lda, ldc past the shape); B's leading dimension 1 where a column
      // must be contiguous.
      const int64_t lda = (t.ta ? t.m : t.k) + 3, ldb = t.n == 1 && !t.tb ? 1 : (t.tb ? t.k : t.n) + 2,
                    ldc = t.n + 4;
      const int64_t arows = t.ta ? t.k : t.m, brows = t.tb ? t.n : t.k;
      const std::vector<float> a = values(size_t(arows * lda), 21), b = values(size_t(brows * ldb), 22);
      std::vector<float> c0 = values(size_t(t.m * ldc), 23);
      if (beta == 0.0f)  // never read then
        for (int64_t i = 0; i < t.m; ++i)
          for (int64_t j = 0; j < t.n; ++j) c0[size_t(i * ldc + j)] = std::numeric_limits<float>::quiet_NaN();
      std::vector<float> thin = c0, tiles = c0;
      set_sgemm_thin(true);
      own_sgemm(t.ta, t.tb, t.m, t.n, t.k, -0.75f, a.data(), lda, b.data(), ldb, beta, thin.data(), ldc);
      set_sgemm_thin(false);
      own_sgemm(t.ta, t.tb, t.m, t.n, t.k, -0.75f, a.data(), lda, b.data(), ldb, beta, tiles.data(), ldc);
      INFO((t.ta ? "tA " : "") << (t.tb ? "tB " : "") << t.m << "x" << t.n << "x" << t.k << " beta " << beta);
      CHECK(std::memcmp(thin.data(), tiles.data(), sizeof(float) * thin.size()) == 0);
      double worst = 0;
      for (int64_t i = 0; i < t.m; ++i)
        for (int64_t j = 0; j < t.n; ++j) {
          double ref = 0;
          for (int64_t p = 0; p < t.k; ++p)
            ref += double(t.ta ? a[size_t(p * lda + i)] : a[size_t(i * lda + p)]) *
                   double(t.tb ? b[size_t(j * ldb + p)] : b[size_t(p * ldb + j)]);
          ref = -0.75 * ref + (beta == 0.0f ? 0.0 : double(beta) * double(c0[size_t(i * ldc + j)]));
          worst = std::max(worst, std::fabs(double(thin[size_t(i * ldc + j)]) - ref) / (1.0 + std::fabs(ref)));
        }
      CHECK(worst < 1e-5);
      ++checked;
    }
  set_sgemm_thin(was);
  CHECK(checked == int(cases.size()) * 3);
}

TEST_CASE("own SGEMM: empty products leave C alone, k == 0 gives beta C") {
  if (!own_sgemm_supported()) return;
  std::vector<float> c = {1, 2, 3, 4}, a = {5}, b = {6};
  own_sgemm(false, false, 0, 2, 3, 1.0f, a.data(), 1, b.data(), 1, 0.0f, c.data(), 2);
  own_sgemm(false, false, 2, 0, 3, 1.0f, a.data(), 1, b.data(), 1, 0.0f, c.data(), 2);
  CHECK(c == std::vector<float>{1, 2, 3, 4});
  own_sgemm(false, false, 2, 2, 0, 1.0f, a.data(), 1, b.data(), 1, 0.5f, c.data(), 2);
  CHECK(c == std::vector<float>{0.5f, 1, 1.5f, 2});
  c.assign(4, std::numeric_limits<float>::quiet_NaN());
  own_sgemm(false, false, 2, 2, 0, 1.0f, a.data(), 1, b.data(), 1, 0.0f, c.data(), 2);
  CHECK(c == std::vector<float>{0, 0, 0, 0});
}

TEST_CASE("CPU GEMM: the own kernel and Eigen agree on the threaded product's column, row and k splits") {
  if (!own_sgemm_supported()) return;
  // cpu_gemm's three ways of splitting a product over tasks, each checked with both kernels.
  for (Case cs : {Case{96, 1500, 700}, Case{1500, 40, 300}, Case{20, 24, 20000}}) {
    const std::vector<float> a = values(size_t(cs.m * cs.k), 6), b = values(size_t(cs.k * cs.n), 7);
    std::vector<float> own(size_t(cs.m * cs.n)), eig(own.size());
    const bool was = set_own_sgemm(true);
    cpu_gemm<float>(false, false, cs.m, cs.n, cs.k, 1.0f, a.data(), cs.k, b.data(), cs.n, 0.0f, own.data(), cs.n);
    set_own_sgemm(false);
    cpu_gemm<float>(false, false, cs.m, cs.n, cs.k, 1.0f, a.data(), cs.k, b.data(), cs.n, 0.0f, eig.data(), cs.n);
    set_own_sgemm(was);
    double worst = 0, mag = 0;
    for (size_t i = 0; i < own.size(); ++i) {
      const double e = std::fabs(double(own[i]) - eig[i]);
      if (!(e <= worst)) worst = e;
      mag = std::max(mag, std::fabs(double(eig[i])));
    }
    INFO(cs.m << "x" << cs.n << "x" << cs.k);
    CHECK(worst <= 1e-5 * std::max(mag, 1.0) * std::sqrt(double(cs.k)));
  }
}

TEST_CASE("CPU GEMM: the threaded product is bit for bit the same with 1 and 2 threads") {
  const int64_t m = 96, n = 1500, k = 700;
  const std::vector<float> a = values(size_t(m * k), 4), b = values(size_t(k * n), 5);
  std::vector<float> one(size_t(m * n)), two(size_t(m * n));
  const int was = num_threads();
  set_num_threads(1);
  cpu_gemm<float>(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, one.data(), n);
  set_num_threads(2);
  cpu_gemm<float>(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, two.data(), n);
  set_num_threads(was);
  CHECK(one == two);
  double s = 0;  // and it is the product
  for (int64_t p = 0; p < k; ++p) s += double(a[p]) * b[p * n];
  CHECK(one[0] == doctest::Approx(s).epsilon(1e-5));
}

TEST_CASE("own SGEMM with op(A) packed once: the same bits as packing it per product, over row ranges and splits") {
  if (!own_sgemm_supported()) return;
  const bool was = set_own_sgemm(true);
  // Both transpositions of A and B; sizes crossing the 6-row panels, kMc = 144 and kKc = 256.
  for (const bool ta : {false, true})
    for (const bool tb : {false, true}) {
      const int64_t m = 151, n = 45, k = 300;
      const std::vector<float> a = values(size_t(m * k), 8), b = values(size_t(k * n), 9);
      const int64_t lda = ta ? m : k, ldb = tb ? k : n;
      std::vector<float> want(size_t(m * n), 0.5f), got(want.size(), 0.5f);
      own_sgemm(ta, tb, m, n, k, 0.75f, a.data(), lda, b.data(), ldb, 0.25f, want.data(), n);
      std::vector<float> store(size_t(own_sgemm_packed_size(m, k)));
      const SgemmPackedA p = own_sgemm_pack(ta, a.data(), lda, m, k, store.data());
      // Rows [0, 42), [42, 150), [150, 151): each range from the one packing.
      for (auto [r0, rows] : {std::pair<int64_t, int64_t>{0, 42}, {42, 108}, {150, 1}})
        own_sgemm_packed(p, r0, rows, tb, n, 0.75f, b.data(), ldb, 0.25f, got.data() + r0 * n, n);
      INFO("ta " << ta << " tb " << tb);
      CHECK(std::memcmp(got.data(), want.data(), sizeof(float) * want.size()) == 0);
      CHECK_THROWS_AS(own_sgemm_packed(p, 5, 6, tb, n, 1.0f, b.data(), ldb, 0.0f, got.data(), n), std::logic_error);
    }
  // CpuGemmA over cpu_gemm's column, row and k splits, bit for bit cpu_gemm's.
  for (Case cs : {Case{96, 1500, 700}, Case{1500, 40, 300}, Case{20, 24, 20000}, Case{7, 9, 11}}) {
    const std::vector<float> a = values(size_t(cs.m * cs.k), 10), b = values(size_t(cs.k * cs.n), 11);
    std::vector<float> want(size_t(cs.m * cs.n)), got(want.size());
    cpu_gemm<float>(false, false, cs.m, cs.n, cs.k, 1.0f, a.data(), cs.k, b.data(), cs.n, 0.0f, want.data(), cs.n);
    const CpuGemmA<float> ga(false, a.data(), cs.k, cs.m, cs.k);
    ga.mul(false, cs.n, 1.0f, b.data(), cs.n, 0.0f, got.data(), cs.n);
    INFO(cs.m << "x" << cs.n << "x" << cs.k);
    CHECK(std::memcmp(got.data(), want.data(), sizeof(float) * want.size()) == 0);
  }
  set_own_sgemm(was);
}
