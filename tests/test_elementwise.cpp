#include "helpers.h"

using namespace wn;
using wn::test::rnd;

TEST_CASE("elementwise gradients match central differences") { wn::test::check_gradcheck_family("elementwise"); }

TEST_CASE("broadcasting values, computed by hand") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 2, 2});
  Tensor c = Tensor::from_vector({10, 100}, {2});
  CHECK(add(x, c).to_vector() == std::vector<double>{11, 12, 13, 14, 105, 106, 107, 108});
  CHECK(mul(x, c).to_vector() == std::vector<double>{10, 20, 30, 40, 500, 600, 700, 800});
  Tensor row = Tensor::from_vector({1, 2, 3}, {1, 3}), col = Tensor::from_vector({10, 20}, {2, 1});
  CHECK(sub(row, col).to_vector() == std::vector<double>{-9, -8, -7, -19, -18, -17});
  CHECK(div(Tensor::from_vector({6, 9}, {2}), Tensor::scalar(3)).to_vector() == std::vector<double>{2, 3});
  CHECK(add(Tensor::from_vector({1, 2}, {2}), 0.5).to_vector() == std::vector<double>{1.5, 2.5});
}

TEST_CASE("unary values") {
  Tensor x = Tensor::from_vector({1, 4, 9}, {3}, DType::F64);
  CHECK(sqrt(x).to_vector() == std::vector<double>{1, 2, 3});
  CHECK(neg(x).to_vector() == std::vector<double>{-1, -4, -9});
  CHECK(square(x).to_vector() == std::vector<double>{1, 16, 81});
  CHECK(log(exp(x)).to_vector()[2] == doctest::Approx(9.0));
}

TEST_CASE("broadcast gradients are summed back to the operand's shape") {
  Tensor x = rnd({2, 3, 2, 2}, 1).set_requires_grad();
  Tensor b = rnd({3}, 2).set_requires_grad();
  Tensor u = rnd({2, 3, 2, 2}, 3);
  add(x, b).backward(u);
  // d/db_c = sum over n, h, w of u.
  std::vector<double> uv = u.to_vector(), gb = b.grad().to_vector();
  for (int c = 0; c < 3; ++c) {
    double s = 0;
    for (int n = 0; n < 2; ++n)
      for (int k = 0; k < 4; ++k) s += uv[(n * 3 + c) * 4 + k];
    CHECK(gb[c] == doctest::Approx(s));
  }
}

TEST_CASE("bad arguments name the op and both shapes") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4});
  CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("add: shapes (2, 3) and (4,) do not broadcast"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(mul(Tensor::zeros({2, 3, 4, 4}), Tensor::zeros({5})),
                       doctest::Contains("mul: a 1-D operand must have one value per channel"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(sub(Tensor::zeros({2}), Tensor::zeros({2}, DType::F64)),
                       doctest::Contains("sub: dtypes differ (got f32(2,) on cpu and f64(2,) on cpu)"),
                       std::invalid_argument);
}
