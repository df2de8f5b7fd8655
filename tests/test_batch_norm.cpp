#include <map>

#include "engine/autograd.h"
#include "engine/inspect.h"
#include "helpers.h"

using namespace wn;
using wn::test::max_abs_diff;
using wn::test::rnd;

TEST_CASE("batch norm gradients match central differences") { wn::test::check_gradcheck_family("batch_norm"); }

namespace {
// Batch norm composed from primitives (training mode).
Tensor composed_bn(const Tensor& x, const Tensor& g, const Tensor& b) {
  std::vector<int> axes = x.rank() == 4 ? std::vector<int>{0, 2, 3} : std::vector<int>{0};
  Tensor mu = mean(x, axes, true);
  Tensor xc = sub(x, mu);
  Tensor var = mean(square(xc), axes, true);
  Tensor xhat = div(xc, sqrt(add(var, 1e-5)));
  return add(mul(xhat, g), b);
}
}  // namespace

TEST_CASE("the fused batch norm equals batch norm composed from primitives, forward and backward") {
  for (Shape s : {Shape{5, 4, 3, 3}, Shape{7, 3}}) {
    const int64_t c = s[1];
    Tensor x1 = rnd(s, 1, -2, 3).set_requires_grad(), g1 = rnd({c}, 2, 0.5, 1.5).set_requires_grad(),
           b1 = rnd({c}, 3).set_requires_grad();
    Tensor x2 = x1.clone().set_requires_grad(), g2 = g1.clone().set_requires_grad(), b2 = b1.clone().set_requires_grad();
    Tensor u = rnd(s, 4);
    Tensor y1 = batch_norm(x1, g1, b1, Tensor(), Tensor(), true);
    Tensor y2 = composed_bn(x2, g2, b2);
    CHECK(max_abs_diff(y1, y2) < 1e-12);
    y1.backward(u);
    y2.backward(u);
    CHECK(max_abs_diff(x1.grad(), x2.grad()) < 1e-12);
    CHECK(max_abs_diff(g1.grad(), g2.grad()) < 1e-12);
    CHECK(max_abs_diff(b1.grad(), b2.grad()) < 1e-12);
    // The weight gradient is far from zero with a random upstream gradient.
    CHECK(std::sqrt(sum_squares(g1.grad())) > 0.1);
  }
}

TEST_CASE("training output has per-channel mean 0 and biased variance 1 before gamma and beta") {
  Tensor x = rnd({8, 3, 4, 4}, 5, -3, 7);
  Tensor y = batch_norm(x, Tensor::ones({3}, DType::F64), Tensor::zeros({3}, DType::F64), Tensor(), Tensor(), true);
  Tensor m = mean(y, {0, 2, 3}), v = mean(square(y), {0, 2, 3});
  for (double e : m.to_vector()) CHECK(std::fabs(e) < 1e-12);
  for (double e : v.to_vector()) CHECK(e == doctest::Approx(1.0).epsilon(1e-4));  // eps = 1e-5 shrinks it slightly
}

TEST_CASE("running statistics follow the exponential average, with the unbiased variance") {
  Tensor rm = Tensor::zeros({2}, DType::F64), rv = Tensor::ones({2}, DType::F64);
  Tensor g = Tensor::ones({2}, DType::F64), b = Tensor::zeros({2}, DType::F64);
  double em[2] = {0, 0}, ev[2] = {1, 1};
  for (int step = 0; step < 3; ++step) {
    Tensor x = rnd({4, 2}, 10 + step, -1 + step, 2 + step);
    batch_norm(x, g, b, rm, rv, true, 0.1);
    auto xv = x.to_vector();
    for (int c = 0; c < 2; ++c) {
      double mu = 0, q = 0;
      for (int n = 0; n < 4; ++n) mu += xv[n * 2 + c] / 4;
      for (int n = 0; n < 4; ++n) q += (xv[n * 2 + c] - mu) * (xv[n * 2 + c] - mu);
      em[c] = 0.9 * em[c] + 0.1 * mu;
      ev[c] = 0.9 * ev[c] + 0.1 * q / 3;
    }
  }
  CHECK(rm.to_vector()[0] == doctest::Approx(em[0]));
  CHECK(rm.to_vector()[1] == doctest::Approx(em[1]));
  CHECK(rv.to_vector()[0] == doctest::Approx(ev[0]));
  CHECK(rv.to_vector()[1] == doctest::Approx(ev[1]));
}

TEST_CASE("evaluation mode uses the running statistics, so an image's output ignores its batch") {
  Tensor rm = Tensor::from_vector({0.5, -1}, {2}, DType::F64), rv = Tensor::from_vector({4, 0.25}, {2}, DType::F64);
  Tensor g = Tensor::from_vector({2, 1}, {2}, DType::F64), b = Tensor::from_vector({0, 3}, {2}, DType::F64);
  Tensor x = Tensor::from_vector({2.5, 0, 1, -2}, {2, 2, 1, 1}, DType::F64);
  std::vector<double> y = batch_norm(x, g, b, rm, rv, false).to_vector();
  CHECK(y[0] == doctest::Approx(2 * (2.5 - 0.5) / std::sqrt(4 + 1e-5)));
  CHECK(y[1] == doctest::Approx((0 + 1) / std::sqrt(0.25 + 1e-5) + 3));
  // The first image alone gives the same output as within the batch.
  Tensor first = Tensor::from_vector({2.5, 0}, {1, 2, 1, 1}, DType::F64);
  std::vector<double> y1 = batch_norm(first, g, b, rm, rv, false).to_vector();
  CHECK(y1[0] == y[0]);
  CHECK(y1[1] == y[1]);
  CHECK_THROWS_WITH(batch_norm(x, g, b, Tensor(), Tensor(), false), doctest::Contains("needs running statistics"));
}

TEST_CASE("batch norm argument errors") {
  CHECK_THROWS_WITH(batch_norm(Tensor::zeros({2, 3}), Tensor::ones({2}), Tensor::zeros({2}), Tensor(), Tensor(), true),
                    doctest::Contains("gamma and beta must have one value per channel"));
  CHECK_THROWS_WITH(batch_norm(Tensor::zeros({1, 3}), Tensor::ones({3}), Tensor::zeros({3}), Tensor(), Tensor(), true),
                    doctest::Contains("more than one value per channel"));
}

TEST_CASE("in inspection mode batch norm's backward reports its two projection shares, computed here by hand") {
  const int64_t n = 5, c = 3;
  Tensor x = rnd({n, c}, 21, -2, 2).set_requires_grad(), g = rnd({c}, 22, 0.5, 1.5).set_requires_grad(),
         b = rnd({c}, 23).set_requires_grad();
  Tensor u = rnd({n, c}, 24);
  // By hand: xhat from the batch mean and biased variance; m1_c = mean_n dy;
  // m2 = xhat mean_n(dy xhat); each term's norm over the layer relative to |dy|.
  const std::vector<double> xv = x.to_vector(), uv = u.to_vector();
  double m1sq = 0, m2sq = 0, dysq = 0;
  for (int64_t j = 0; j < c; ++j) {
    double mu = 0, var = 0, mdy = 0, mdyx = 0;
    for (int64_t i = 0; i < n; ++i) mu += xv[i * c + j] / n;
    for (int64_t i = 0; i < n; ++i) var += (xv[i * c + j] - mu) * (xv[i * c + j] - mu) / n;
    const double inv = 1 / std::sqrt(var + 1e-5);
    for (int64_t i = 0; i < n; ++i) {
      mdy += uv[i * c + j] / n;
      mdyx += uv[i * c + j] * (xv[i * c + j] - mu) * inv / n;
      dysq += uv[i * c + j] * uv[i * c + j];
    }
    for (int64_t i = 0; i < n; ++i) {
      m1sq += mdy * mdy;
      m2sq += std::pow((xv[i * c + j] - mu) * inv * mdyx, 2);
    }
  }
  Tensor y = batch_norm(x, g, b, Tensor(), Tensor(), true);
  set_record_grad_norms(true);
  backward(y, u, /*retain_graph=*/true);
  set_record_grad_norms(false);
  std::map<std::string, double> stats;
  for (const NodeInfo& node : tape_nodes(y))
    if (node.op == "batch_norm")
      for (auto& [k, v] : node.stats) stats[k] = v;
  REQUIRE(stats.size() == 2);
  CHECK(stats["mean share"] == doctest::Approx(std::sqrt(m1sq / dysq)).epsilon(1e-12));
  CHECK(stats["xhat share"] == doctest::Approx(std::sqrt(m2sq / dysq)).epsilon(1e-12));
  CHECK(stats["mean share"] > 0.01);
  // Outside inspection mode the node holds no statistics, and the gradient is the same.
  const std::vector<double> dx = x.grad().to_vector();
  Tensor x2 = x.detach().clone().set_requires_grad();
  Tensor y2 = batch_norm(x2, g, b, Tensor(), Tensor(), true);
  backward(y2, u, true);
  CHECK(x2.grad().to_vector() == dx);
  for (const NodeInfo& node : tape_nodes(y2)) CHECK(node.stats.empty());
}
