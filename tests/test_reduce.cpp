#include "helpers.h"

using namespace wn;

TEST_CASE("reduction gradients match central differences") { wn::test::check_gradcheck_family("reduce"); }

TEST_CASE("reduction values, computed by hand") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, DType::F64);
  CHECK(sum(x).item() == 21);
  CHECK(mean(x).item() == 3.5);
  CHECK(sum(x, {0}).to_vector() == std::vector<double>{5, 7, 9});
  CHECK(sum(x, {1}, true).shape() == Shape{2, 1});
  CHECK(mean(x, {-1}).to_vector() == std::vector<double>{2, 5});
  CHECK(sum_squares(x) == 91);
  CHECK_THROWS_WITH(sum(x, {2}), doctest::Contains("sum: axis 2 out of range"));
}

TEST_CASE("a large float sum is accurate (accumulated in double)") {
  Tensor x = Tensor::full({1000, 1000}, 0.1);
  CHECK(sum(x).item() == doctest::Approx(100000.0).epsilon(1e-6));
}
