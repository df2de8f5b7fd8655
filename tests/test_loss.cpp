#include "helpers.h"

using namespace wn;

TEST_CASE("loss gradients match central differences") { wn::test::check_gradcheck_family("loss"); }

TEST_CASE("binary cross-entropy values, computed by hand, stable for large logits") {
  auto bce = [](double x, double t) {
    return bce_with_logits(Tensor::from_vector({x}, {1}, DType::F64), Tensor::from_vector({t}, {1}, DType::F64))
        .item();
  };
  CHECK(bce(0, 1) == doctest::Approx(std::log(2.0)));
  CHECK(bce(2, 1) == doctest::Approx(std::log(1 + std::exp(-2.0))));
  CHECK(bce(2, 0) == doctest::Approx(2 + std::log(1 + std::exp(-2.0))));
  CHECK(bce(100, 0) == doctest::Approx(100));
  CHECK(bce(-100, 1) == doctest::Approx(100));
  CHECK(bce(100, 1) == doctest::Approx(0).epsilon(1e-30));
  // float32 too: no inf or NaN, and the gradient saturates at sigmoid(x) - t.
  Tensor x = Tensor::from_vector({-500, 500}, {2}).set_requires_grad();
  Tensor t = Tensor::from_vector({1, 0}, {2});
  Tensor l = bce_with_logits(x, t);
  CHECK(l.item() == doctest::Approx(500));
  l.backward();
  CHECK(x.grad().to_vector() == std::vector<double>{-0.5, 0.5});
}

TEST_CASE("mean squared error value") {
  Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2}), b = Tensor::from_vector({1, 0, 0, 4}, {2, 2});
  CHECK(mse(a, b).item() == doctest::Approx((4.0 + 9.0) / 4));
  CHECK_THROWS_WITH(mse(a, Tensor::zeros({4})), doctest::Contains("mse: operands must have the same shape"));
}
