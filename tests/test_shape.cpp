#include "helpers.h"

using namespace wn;
using wn::test::rnd;

TEST_CASE("shape op gradients match central differences") { wn::test::check_gradcheck_family("shape"); }

TEST_CASE("pad places the image with zeros around it; crop undoes it") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4}, {1, 1, 2, 2});
  Tensor p = pad2d(x, 1, 0, 0, 1);
  CHECK(p.shape() == Shape{1, 1, 3, 3});
  CHECK(p.to_vector() == std::vector<double>{0, 0, 0, 1, 2, 0, 3, 4, 0});
  CHECK(crop2d(p, 1, 0, 0, 1).to_vector() == x.to_vector());
  Tensor y = rnd({2, 3, 5, 4}, 1);
  CHECK(wn::test::max_abs_diff(crop2d(pad2d(y, 2, 1, 0, 3), 2, 1, 0, 3), y) == 0);
}

TEST_CASE("slice takes rows [begin, end) of dim 0; its gradient fills those rows only") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {4, 2});
  x.set_requires_grad(true);
  Tensor s = slice(x, 1, 3);
  CHECK(s.shape() == Shape{2, 2});
  CHECK(s.to_vector() == std::vector<double>{3, 4, 5, 6});
  CHECK(slice(x, 2, 2).shape() == Shape{0, 2});
  sum(mul(s, 2.0)).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 0, 2, 2, 2, 2, 0, 0});
}

TEST_CASE("shape op errors") {
  CHECK_THROWS_WITH(slice(Tensor::zeros({3, 2}), 2, 4), doctest::Contains("slice: rows [2, 4) out of range"));
  CHECK_THROWS_WITH(slice(Tensor::zeros({3, 2}), 2, 1), doctest::Contains("f32(3, 2)"));
  CHECK_THROWS_WITH(reshape(Tensor::zeros({2, 3}), {4}), doctest::Contains("cannot reshape f32(2, 3) on cpu"));
  CHECK_THROWS_WITH(pad2d(Tensor::zeros({2, 3}), 1, 1, 1, 1), doctest::Contains("pad2d: expects a tensor of rank 4"));
  CHECK_THROWS_WITH(crop2d(Tensor::zeros({1, 1, 2, 2}), 1, 1, 0, 0), doctest::Contains("empty 0x2 plane"));
  CHECK_THROWS_WITH(pad2d(Tensor::zeros({1, 1, 2, 2}), -1, 0, 0, 0), doctest::Contains("margins must be >= 0"));
}
