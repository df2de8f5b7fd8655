#include "helpers.h"

using namespace wn;

TEST_CASE("activation gradients match central differences") { wn::test::check_gradcheck_family("activation"); }

TEST_CASE("activation values, computed by hand") {
  Tensor x = Tensor::from_vector({-2, -0.5, 0.5, 2, -4, 3}, {1, 2, 3}, DType::F64);
  Tensor a = Tensor::from_vector({0.25, 0.5}, {2}, DType::F64);
  CHECK(prelu(x, a).to_vector() == std::vector<double>{-0.5, -0.125, 0.5, 2, -2, 3});
  CHECK(relu(x).to_vector() == std::vector<double>{0, 0, 0.5, 2, 0, 3});
  CHECK(clamp(x, -1, 1).to_vector() == std::vector<double>{-1, -0.5, 0.5, 1, -1, 1});
  std::vector<double> s = sigmoid(Tensor::from_vector({-1000, 0, 1000}, {3})).to_vector();
  CHECK(s == std::vector<double>{0, 0.5, 1});
}

TEST_CASE("prelu argument errors") {
  CHECK_THROWS_WITH(prelu(Tensor::zeros({2, 3, 4, 4}), Tensor::zeros({4})),
                    doctest::Contains("prelu: slope must have shape (C) or (1)"));
  CHECK_THROWS_WITH(clamp(Tensor::zeros({2}), 1, 0), doctest::Contains("clamp: lower bound 1 exceeds upper bound 0"));
}
