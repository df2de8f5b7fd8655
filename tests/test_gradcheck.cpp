// The gradient-check API (engine/gradcheck.h, nn/gradcheck.h) and second-order
// gradients (grad with create_graph): tolerances, the worst element, errors, modules,
// gradgradcheck; each against values computed here by hand.
#include <cmath>
#include <set>

#include <fmt/format.h>

#include "engine/gradcheck_suite.h"
#include "helpers.h"
#include "nn/gradcheck.h"
#include "nn/layers.h"

using namespace wn;
using wn::test::rnd;

namespace {

// y = 2x with a backward off by a relative delta: analytic = (2 + delta) u, numeric = 2 u.
Tensor off_by(const Tensor& x, double delta) {
  Tensor y;
  {
    NoGradGuard ng;
    y = mul(x, 2.0);
  }
  return record(y, "off_by", {x}, [delta](const Tensor& g) -> std::vector<Tensor> { return {mul(g, 2.0 + delta)}; });
}

// The upstream gradient gradcheck uses (documented: randn with the options' seed).
std::vector<double> upstream(const Shape& s, uint64_t seed = 1234) {
  Generator g(seed);
  return randn(s, g, 1.0, DType::F64).to_vector();
}

}  // namespace

TEST_CASE("gradcheck: the element-wise atol/rtol rule and the scaled rule, against hand-computed errors") {
  const double delta = 1e-4;
  Tensor x = rnd({3, 4}, 11).set_requires_grad();
  auto f = [&](const std::vector<Tensor>& in) { return off_by(in[0], delta); };
  const std::vector<double> u = upstream({3, 4});
  // Element i: |a - n| = delta |u_i|, |n| = 2 |u_i|.

  GradcheckOptions o;  // torch's defaults: 1e-5 + 1e-3 * 2|u| > 1e-4 |u| for every u
  GradcheckResult r = gradcheck(f, {x}, o);
  CHECK(r.passed);
  CHECK(r.max_rel_error == doctest::Approx(delta / (2 + delta)).epsilon(1e-5));

  o.atol = 1e-6;
  o.rtol = 0;  // fails exactly where delta |u_i| > 1e-6, and the worst is the largest |u_i|
  r = gradcheck(f, {x}, o);
  bool expect_pass = true;
  size_t argmax = 0;
  for (size_t i = 0; i < u.size(); ++i) {
    expect_pass = expect_pass && delta * std::fabs(u[i]) <= 1e-6;
    if (std::fabs(u[i]) > std::fabs(u[argmax])) argmax = i;
  }
  CHECK(r.passed == expect_pass);
  CHECK_FALSE(r.passed);
  CHECK(r.worst_element.flat == int64_t(argmax));
  CHECK(r.worst_element.index == std::vector<int64_t>{int64_t(argmax) / 4, int64_t(argmax) % 4});
  CHECK(r.worst_element.analytic == doctest::Approx((2 + delta) * u[argmax]).epsilon(1e-12));
  CHECK(r.worst_element.numeric == doctest::Approx(2 * u[argmax]).epsilon(1e-8));
  CHECK(r.worst_element.abs_error == doctest::Approx(delta * std::fabs(u[argmax])).epsilon(1e-4));
  CHECK(r.worst_element.rel_error == doctest::Approx(delta / 2).epsilon(1e-4));
  CHECK(r.worst_element.name == "input 0");
  CHECK(r.worst == r.worst_element.str());
  CHECK(r.worst.find(fmt::format("input 0 element {} [{}, {}]", argmax, argmax / 4, argmax % 4)) == 0);

  // The scaled rule: passes iff delta / (2 + delta) <= tolerance.
  o = GradcheckOptions();
  o.tolerance = 1.01 * delta / (2 + delta);
  CHECK(gradcheck(f, {x}, o).passed);
  o.tolerance = 0.99 * delta / (2 + delta);
  CHECK_FALSE(gradcheck(f, {x}, o).passed);
}

TEST_CASE("gradcheck: the worst element names the tensor, with the names given, across several inputs") {
  // d/da (a * b) = b, d/db = a; only b's gradient is wrong (scaled by 1.5 in the backward).
  auto f = [](const std::vector<Tensor>& in) {
    Tensor a = in[0], b = in[1], y;
    {
      NoGradGuard ng;
      y = mul(a, b);
    }
    return record(y, "bad_mul", {a, b},
                  [a, b](const Tensor& g) -> std::vector<Tensor> { return {mul(g, b), mul(mul(g, a), 1.5)}; });
  };
  GradcheckOptions o;
  o.names = {"a", "b"};
  Tensor a = rnd({2, 2, 2}, 3, 0.5, 1.0).set_requires_grad(), b = rnd({2, 2, 2}, 4).set_requires_grad();
  GradcheckResult r = gradcheck(f, {a, b}, o);
  CHECK_FALSE(r.passed);
  CHECK(r.worst_element.input == 1);
  CHECK(r.worst_element.name == "b");
  CHECK(r.worst_element.index.size() == 3);
  // The worst of b: largest |0.5 u a| / (1e-5 + 1e-3 |u a|), i.e. the largest |u a|.
  const std::vector<double> u = upstream({2, 2, 2}), av = a.to_vector();
  size_t best = 0;
  for (size_t i = 0; i < u.size(); ++i)
    if (std::fabs(u[i] * av[i]) > std::fabs(u[best] * av[best])) best = i;
  CHECK(r.worst_element.flat == int64_t(best));
  CHECK(r.worst_element.analytic == doctest::Approx(1.5 * u[best] * av[best]).epsilon(1e-12));
  // The caller's tensors are untouched: no gradient, same values.
  CHECK_FALSE(a.grad().defined());
}

TEST_CASE("gradcheck: bad inputs and options are refused with errors naming the problem") {
  auto sq = [](const std::vector<Tensor>& in) { return square(in[0]); };
  CHECK_THROWS_WITH_AS(gradcheck(sq, {rnd({3}, 1, -1, 1, DType::F32).set_requires_grad()}),
                       doctest::Contains("inputs must be float64 CPU tensors"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(gradcheck(sq, {rnd({3}, 1)}), doctest::Contains("no input requires a gradient"),
                       std::invalid_argument);
  Tensor leaf = rnd({3}, 1).set_requires_grad();
  Tensor made = mul(leaf, 2.0);
  CHECK_THROWS_WITH_AS(gradcheck_leaves([&] { return square(made); }, {made}),
                       doctest::Contains("input 0 is not a leaf (it was computed by 'scale')"), std::invalid_argument);
  GradcheckOptions o;
  o.eps = 0;
  CHECK_THROWS_WITH_AS(gradcheck(sq, {leaf}, o), doctest::Contains("eps must be a finite number > 0"),
                       std::invalid_argument);
  o = GradcheckOptions();
  o.rtol = -1;
  CHECK_THROWS_WITH_AS(gradcheck(sq, {leaf}, o), doctest::Contains("atol and rtol must be >= 0"),
                       std::invalid_argument);
  o = GradcheckOptions();
  o.names = {"a", "b"};
  CHECK_THROWS_WITH_AS(gradcheck(sq, {leaf}, o), doctest::Contains("2 names given for 1 tensors"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(gradcheck([](const std::vector<Tensor>& in) { return in[0].to(DType::F32); }, {leaf}),
                       doctest::Contains("f must return a float64 CPU tensor"), std::invalid_argument);
}

TEST_CASE("gradcheck: an op that forgot record() fails with analytic 0 and a hint") {
  auto f = [](const std::vector<Tensor>& in) {
    NoGradGuard ng;  // the forward runs, but no node is recorded
    return mul(in[0], 3.0);
  };
  GradcheckResult r = gradcheck(f, {rnd({4}, 5).set_requires_grad()});
  CHECK_FALSE(r.passed);
  CHECK(r.worst_element.analytic == 0.0);
  CHECK(std::fabs(r.worst_element.numeric) > 0.1);
  CHECK(r.worst.find("does the op call record()?") != std::string::npos);
}

TEST_CASE("grad: first and second derivatives of x^3 against hand values, without touching grad()") {
  Tensor x = Tensor::from_vector({0.5, -1.5, 2.0}, {3}, DType::F64).set_requires_grad();
  Tensor u = Tensor::from_vector({0.3, -0.7, 1.1}, {3}, DType::F64);
  Tensor y = mul(mul(x, x), x);
  std::vector<Tensor> g = grad(y, u, {x}, /*create_graph=*/true);
  REQUIRE(g.size() == 1);
  const std::vector<double> xv = x.to_vector(), uv = u.to_vector();
  std::vector<double> g1 = g[0].to_vector();
  for (size_t i = 0; i < 3; ++i) CHECK(g1[i] == doctest::Approx(3 * xv[i] * xv[i] * uv[i]).epsilon(1e-14));
  CHECK_FALSE(x.grad().defined());
  // d/dx <v, 3 x^2 u> = 6 x u v.
  Tensor v = Tensor::from_vector({-0.4, 0.9, 0.25}, {3}, DType::F64);
  std::vector<Tensor> h = grad(sum(mul(g[0], v)), Tensor(), {x});
  const std::vector<double> hv = h[0].to_vector(), vv = v.to_vector();
  for (size_t i = 0; i < 3; ++i) CHECK(hv[i] == doctest::Approx(6 * xv[i] * uv[i] * vv[i]).epsilon(1e-14));
  CHECK_FALSE(x.grad().defined());
  // Sigmoid's second derivative s (1 - s) (1 - 2 s).
  Tensor z = Tensor::from_vector({-1.0, 0.3, 2.5}, {3}, DType::F64).set_requires_grad();
  Tensor gz = grad(sum(sigmoid(z)), Tensor(), {z}, true)[0];
  Tensor hz = grad(sum(gz), Tensor(), {z})[0];
  const std::vector<double> zv = z.to_vector(), hzv = hz.to_vector();
  for (size_t i = 0; i < 3; ++i) {
    const double s = 1 / (1 + std::exp(-zv[i]));
    CHECK(hzv[i] == doctest::Approx(s * (1 - s) * (1 - 2 * s)).epsilon(1e-12));
  }
  // An input the output does not depend on gets zeros; an input without requires_grad is refused.
  Tensor w = rnd({2}, 9).set_requires_grad();
  CHECK(grad(sum(square(x)), Tensor(), {w})[0].to_vector() == std::vector<double>{0, 0});
  CHECK_THROWS_WITH_AS(grad(sum(square(x)), Tensor(), {rnd({2}, 9)}), doctest::Contains("does not require a gradient"),
                       std::invalid_argument);
}

TEST_CASE("grad with create_graph refuses an op without a double backward, naming it") {
  Tensor x = rnd({1, 2, 4, 4}, 1).set_requires_grad(), w = rnd({3, 2, 3, 3}, 2).set_requires_grad();
  Tensor y = sum(square(conv2d(x, w, Tensor(), 1, 1)));
  try {
    grad(y, Tensor(), {x}, true);
    FAIL("no error");
  } catch (const DoubleBackwardError& e) {
    CHECK(e.op == "conv2d");
    CHECK(std::string(e.what()).find("op 'conv2d' has no double backward") != std::string::npos);
  }
  // Without create_graph the same graph differentiates once as always.
  Tensor y2 = sum(square(conv2d(x, w, Tensor(), 1, 1)));
  CHECK(grad(y2, Tensor(), {x})[0].shape() == x.shape());
}

TEST_CASE("gradgradcheck: passes composed ops, catches a backward that cuts the second-order path") {
  GradcheckOptions o;
  o.tolerance = 1e-6;
  auto f = [](const std::vector<Tensor>& in) { return div(mul(exp(in[0]), in[1]), add(square(in[1]), 1.0)); };
  GradcheckResult r = gradgradcheck(f, {rnd({2, 3}, 1).set_requires_grad(), rnd({3}, 2).set_requires_grad()}, o);
  CHECK(r.supported);
  CHECK_MESSAGE(r.passed, r.worst);
  // cube(x) = x^3 whose backward claims a double backward but detaches x: first order
  // right, second order missing the 6 x term.
  auto cube = [](const std::vector<Tensor>& in) {
    Tensor x = in[0], y;
    {
      NoGradGuard ng;
      y = mul(square(x), x);
    }
    return record(
        y, "cube", {x},
        [x](const Tensor& g) -> std::vector<Tensor> { return {mul(g, mul(square(x.detach()), 3.0))}; },
        /*double_backward=*/true);
  };
  Tensor x = rnd({4}, 3, 0.5, 1.5).set_requires_grad();
  CHECK(gradcheck(cube, {x}, o).passed);
  GradcheckResult bad = gradgradcheck(cube, {x}, o);
  CHECK(bad.supported);
  CHECK_FALSE(bad.passed);
  CHECK(bad.worst_element.name == "input 0");  // the upstream's part is right, x's is not
  // The same op without the claim is reported unsupported, not failed.
  auto cube0 = [](const std::vector<Tensor>& in) {
    Tensor x = in[0], y;
    {
      NoGradGuard ng;
      y = mul(square(x), x);
    }
    return record(y, "cube", {x}, [x](const Tensor& g) -> std::vector<Tensor> { return {mul(g, mul(square(x), 3.0))}; });
  };
  GradcheckResult na = gradgradcheck(cube0, {x}, o);
  CHECK_FALSE(na.supported);
  CHECK_FALSE(na.passed);
  CHECK(na.unsupported_op == "cube");
}

TEST_CASE("gradgradcheck over the built-in cases: which families have a double backward, and all of those pass") {
  std::set<std::string> supported, unsupported;
  for (const GradcheckCase& c : engine_gradcheck_cases()) {
    GradcheckResult r = c.run_second_order(c.options);
    if (r.supported) {
      CHECK_MESSAGE(r.passed, c.name << " " << c.shape << ": " << r.worst);
      supported.insert(c.name);
    } else {
      CHECK(!r.unsupported_op.empty());
      unsupported.insert(c.name);
    }
  }
  CHECK(supported == std::set<std::string>{"add", "sub", "mul", "div", "neg", "square", "sqrt", "exp", "log",
                                           "add_scalar", "scale", "sigmoid", "relu", "clamp", "sum", "mean",
                                           "reshape", "flatten", "mse"});
  for (const char* op : {"conv2d", "conv_transpose2d", "batch_norm", "weight_norm", "linear", "matmul", "prelu",
                         "tprelu", "bce_with_logits", "avg_pool2x2", "pad2d", "select"})
    CHECK_MESSAGE(unsupported.count(op) == 1, op);
}

TEST_CASE("gradcheck_module: input and parameters, chosen by name; state given back bit for bit") {
  Generator gen(3);
  nn::Linear lin(4, 3, gen);  // float32
  const std::vector<double> w0 = lin.weight.to_vector(), b0 = lin.bias.to_vector();
  Tensor gw = Tensor::full({3, 4}, 0.25);
  lin.weight.set_grad(gw);
  Tensor x = rnd({2, 4}, 4, -1, 1, DType::F32);
  GradcheckResult r = nn::gradcheck_module(lin, {x});
  CHECK_MESSAGE(r.passed, r.worst);
  CHECK(lin.weight.dtype() == DType::F32);
  CHECK(lin.weight.to_vector() == w0);
  CHECK(lin.bias.to_vector() == b0);
  CHECK(lin.weight.grad().to_vector() == gw.to_vector());
  CHECK_FALSE(lin.bias.grad().defined());
  CHECK_FALSE(x.requires_grad());

  // Only the named parameter is checked: with an impossible tolerance the worst is in it.
  GradcheckOptions strict;
  strict.tolerance = 1e-300;
  nn::ModuleCheck only_bias{.inputs = false, .params = {"bias"}};
  GradcheckResult rb = nn::gradcheck_module(lin, {x}, strict, only_bias);
  CHECK(rb.worst_element.name == "bias");
  CHECK(rb.worst_element.index.size() == 1);
  only_bias.params = {"weight"};
  CHECK(nn::gradcheck_module(lin, {x}, strict, only_bias).worst_element.name == "weight");
  nn::ModuleCheck inputs_only;
  inputs_only.parameters = false;
  CHECK(nn::gradcheck_module(lin, {x}, strict, inputs_only).worst_element.name == "input 0");

  // Errors.
  nn::ModuleCheck bad;
  bad.params = {"wieght"};
  CHECK_THROWS_WITH_AS(nn::gradcheck_module(lin, {x}, {}, bad),
                       doctest::Contains("no parameter 'wieght'; the module's parameters are: weight, bias"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(nn::gradcheck_module(lin, {x, x}), doctest::Contains("2 inputs given"), std::invalid_argument);
  nn::ModuleCheck nothing;
  nothing.inputs = false;
  nothing.parameters = false;
  CHECK_THROWS_WITH_AS(nn::gradcheck_module(lin, {x}, {}, nothing), doctest::Contains("nothing to check"),
                       std::invalid_argument);
}

TEST_CASE("gradcheck_module: batch norm in training gets its running statistics back") {
  nn::BatchNorm bn(3);
  bn.to(DType::F64);
  const std::vector<double> rm = bn.running_mean.to_vector(), rv = bn.running_var.to_vector();
  GradcheckOptions o;
  o.tolerance = 1e-6;
  GradcheckResult r = nn::gradcheck_module(bn, {rnd({4, 3, 2, 2}, 6)}, o);
  CHECK_MESSAGE(r.passed, r.worst);
  CHECK(bn.running_mean.to_vector() == rm);
  CHECK(bn.running_var.to_vector() == rv);
}
