#include "helpers.h"

using namespace wn;
using wn::test::rnd;

TEST_CASE("linear gradients match central differences") { wn::test::check_gradcheck_family("linear"); }

TEST_CASE("matmul value, computed by hand") {
  Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2}), b = Tensor::from_vector({5, 6, 7, 8}, {2, 2});
  CHECK(matmul(a, b).to_vector() == std::vector<double>{19, 22, 43, 50});
  Tensor w = Tensor::from_vector({1, 0, 0, 1, 1, 1}, {3, 2}), bias = Tensor::from_vector({0, 10, 100}, {3});
  CHECK(linear(a, w, bias).to_vector() == std::vector<double>{1, 12, 103, 3, 14, 107});
}

// Naive triple loop in double.
std::vector<double> naive_matmul(const std::vector<double>& a, const std::vector<double>& b, int64_t m, int64_t k,
                                 int64_t n) {
  std::vector<double> c(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t p = 0; p < k; ++p)
      for (int64_t j = 0; j < n; ++j) c[i * n + j] += a[i * k + p] * b[p * n + j];
  return c;
}

TEST_CASE("the parallel GEMM splits (columns, rows, inner dimension) agree with a naive product") {
  struct S {
    int64_t m, k, n;
  };
  for (S s : {S{300, 200, 1200}, S{1100, 150, 90}, S{20, 20000, 30}, S{7, 3, 5}}) {
    Tensor a = rnd({s.m, s.k}, 1, -1, 1, DType::F32), b = rnd({s.k, s.n}, 2, -1, 1, DType::F32);
    std::vector<double> ref = naive_matmul(a.to_vector(), b.to_vector(), s.m, s.k, s.n);
    std::vector<double> got = matmul(a, b).to_vector();
    double scale = std::sqrt(double(s.k));
    CHECK(wn::test::max_abs_diff(got, ref) / scale < 1e-5);
  }
}

TEST_CASE("linear argument errors") {
  CHECK_THROWS_WITH(matmul(Tensor::zeros({2, 3}), Tensor::zeros({2, 3})),
                    doctest::Contains("matmul: expects (M, K) and (K, N) (got f32(2, 3) on cpu and f32(2, 3) on cpu)"));
  CHECK_THROWS_WITH(linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 3}), Tensor::zeros({3})),
                    doctest::Contains("linear: bias must have shape (out)"));
}
