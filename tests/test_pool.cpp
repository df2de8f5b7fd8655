#include "helpers.h"

using namespace wn;

TEST_CASE("pooling gradients match central differences") { wn::test::check_gradcheck_family("pool"); }

TEST_CASE("pooling and upsampling values, computed by hand") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {1, 1, 2, 4});
  CHECK(avg_pool2x2(x).to_vector() == std::vector<double>{3.5, 5.5});
  Tensor u = upsample_nearest2x(Tensor::from_vector({1, 2}, {1, 1, 1, 2}));
  CHECK(u.to_vector() == std::vector<double>{1, 1, 2, 2, 1, 1, 2, 2});
  CHECK_THROWS_WITH(avg_pool2x2(Tensor::zeros({1, 1, 3, 4})), doctest::Contains("height and width must be even"));
}
