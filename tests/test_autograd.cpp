#include "helpers.h"

using namespace wn;
using wn::test::rnd;

TEST_CASE("backward accumulates into existing gradients") {
  Tensor x = rnd({3}, 1).set_requires_grad();
  Tensor u = rnd({3}, 2);
  mul(x, x).backward(u);
  std::vector<double> g1 = x.grad().to_vector(), xv = x.to_vector(), uv = u.to_vector();
  for (int i = 0; i < 3; ++i) CHECK(g1[i] == doctest::Approx(2 * xv[i] * uv[i]));
  mul(x, x).backward(u);
  std::vector<double> g2 = x.grad().to_vector();
  for (int i = 0; i < 3; ++i) CHECK(g2[i] == doctest::Approx(4 * xv[i] * uv[i]));
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("a tensor used twice gets the sum of both paths") {
  Tensor x = Tensor::from_vector({2.0}, {1}, DType::F64).set_requires_grad();
  // y = x^2 + 3x: dy/dx = 2x + 3 = 7.
  Tensor y = add(square(x), mul(x, 3.0));
  sum(y).backward();
  CHECK(x.grad().item() == doctest::Approx(7.0));
}

TEST_CASE("retain_grad keeps a non-leaf gradient; hooks see and may replace gradients") {
  Tensor x = Tensor::from_vector({1.0, -2.0}, {2}, DType::F64).set_requires_grad();
  Tensor h = mul(x, 3.0);
  h.retain_grad();
  std::vector<double> seen;
  h.register_hook([&](const Tensor& g) -> std::optional<Tensor> {
    seen = g.to_vector();
    return mul(g, 10.0);  // scale the gradient flowing further down
  });
  Tensor u = Tensor::from_vector({0.5, -1.5}, {2}, DType::F64);
  mul(h, h).backward(u);
  // d(h^2)/dh = 2h u = (3, 18).
  CHECK(seen == std::vector<double>{3.0, 18.0});
  CHECK(h.grad().to_vector() == std::vector<double>{30.0, 180.0});
  // x gets the replaced gradient: 10 * 2h u * 3.
  CHECK(x.grad().to_vector() == std::vector<double>{90.0, 540.0});
}

TEST_CASE("no-grad guard records nothing") {
  Tensor x = rnd({2}, 3).set_requires_grad();
  {
    NoGradGuard ng;
    Tensor y = mul(x, x);
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
  }
  CHECK(mul(x, x).requires_grad());
}

TEST_CASE("the graph is freed after backward unless retained") {
  Tensor x = rnd({2}, 4).set_requires_grad();
  Tensor y = sum(square(x));
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();  // allowed: the first call kept the graph
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("already freed"), std::runtime_error);
}

TEST_CASE("backward argument errors are clear") {
  Tensor x = rnd({2}, 5).set_requires_grad();
  CHECK_THROWS_WITH(square(x).backward(), doctest::Contains("a gradient must be given for the non-scalar tensor"));
  CHECK_THROWS_WITH(Tensor::zeros({2}).backward(), doctest::Contains("does not require a gradient"));
  CHECK_THROWS_WITH(square(x).backward(Tensor::zeros({3}, DType::F64)), doctest::Contains("does not match"));
}

TEST_CASE("nodes carry their op name and label; the DOT dump shows them") {
  Tensor x = rnd({2, 3}, 6).set_requires_grad().set_label("x");
  Tensor y = relu(x).set_label("hidden");
  Tensor z = sum(y);
  REQUIRE(y.grad_fn() != nullptr);
  CHECK(y.grad_fn()->op == "relu");
  CHECK(y.grad_fn()->label == "hidden");
  std::string dot = graph_to_dot(z);
  CHECK(dot.find("relu\\nhidden") != std::string::npos);
  CHECK(dot.find("sum") != std::string::npos);
  CHECK(dot.find("x\\n(2, 3)") != std::string::npos);
  set_record_grad_norms(true);
  z.backward(Tensor(), true);
  set_record_grad_norms(false);
  CHECK(y.grad_fn()->grad_norm == doctest::Approx(std::sqrt(6.0)));
  CHECK(graph_to_dot(z).find("|grad|") != std::string::npos);
}

TEST_CASE("gradcheck catches a wrong backward") {
  // An op whose backward is off by a factor of 2: the checker must fail it.
  auto wrong = [](const std::vector<Tensor>& in) {
    Tensor x = in[0];
    Tensor y = x.detach().clone();
    {
      NoGradGuard ng;
      y = square(x.detach());
    }
    return record(y, "bad_square", {x}, [x](const Tensor& g) -> std::vector<Tensor> { return {mul(g, x)}; });
  };
  GradcheckResult r = gradcheck(wrong, {rnd({4}, 7).set_requires_grad()});
  CHECK_FALSE(r.passed);
  CHECK(r.max_rel_error > 0.1);
  // And passes the correct one.
  GradcheckResult ok = gradcheck([](const std::vector<Tensor>& in) { return square(in[0]); },
                                 {rnd({4}, 7).set_requires_grad()});
  CHECK(ok.passed);
}

TEST_CASE("gradcheck catches a backward that overwrites instead of accumulating") {
  // Writes the leaf's gradient directly, so a second backward does not add up.
  auto overwrite = [](const std::vector<Tensor>& in) {
    Tensor x = in[0];
    Tensor y;
    {
      NoGradGuard ng;
      y = mul(x.detach(), 2.0);
    }
    return record(y, "overwrite", {x}, [x](const Tensor& g) -> std::vector<Tensor> {
      Tensor gx = mul(g, 2.0);
      Tensor(x).set_grad(Tensor());  // wipes what was accumulated before
      return {gx};
    });
  };
  GradcheckResult r = gradcheck(overwrite, {rnd({3}, 8).set_requires_grad()});
  CHECK_FALSE(r.passed);
  CHECK(r.worst.find("accumulate") != std::string::npos);
}
