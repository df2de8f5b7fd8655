#include "helpers.h"
#include "nn/layers.h"
#include "nn/optim.h"

using namespace wn;
using namespace wn::nn;

namespace {
// A module with one 2-element parameter.
struct One : Module {
  explicit One(std::vector<double> v) { p = register_parameter("p", Tensor::from_vector(v, {2}, DType::F64)); }
  Tensor p;
};
const double grads[3][2] = {{0.5, -2.0}, {1.5, 0.25}, {-0.75, 1.0}};
}  // namespace

TEST_CASE("RMSProp: three steps equal the values computed by hand (PyTorch semantics)") {
  One m({1.0, -1.0});
  RMSProp opt(m.named_parameters(), 0.01, 0.9, 1e-6);
  double p[2] = {1.0, -1.0}, s[2] = {0, 0};
  for (auto& g : grads) {
    m.p.set_grad(Tensor::from_vector({g[0], g[1]}, {2}, DType::F64));
    opt.step();
    for (int i = 0; i < 2; ++i) {
      s[i] = 0.9 * s[i] + 0.1 * g[i] * g[i];
      p[i] -= 0.01 * g[i] / (std::sqrt(s[i]) + 1e-6);
    }
  }
  std::vector<double> got = m.p.to_vector(), st = opt.state()[0].second.to_vector();
  for (int i = 0; i < 2; ++i) {
    CHECK(got[i] == doctest::Approx(p[i]).epsilon(1e-14));
    CHECK(st[i] == doctest::Approx(s[i]).epsilon(1e-14));
  }
  CHECK(opt.state()[0].first == "p.square_avg");
  CHECK(opt.steps() == 3);
}

TEST_CASE("Adam: three steps equal the values computed by hand") {
  One m({0.3, 0.7});
  Adam opt(m.named_parameters(), 0.1, 0.9, 0.999, 1e-8);
  double p[2] = {0.3, 0.7}, mm[2] = {0, 0}, v[2] = {0, 0};
  int t = 0;
  for (auto& g : grads) {
    m.p.set_grad(Tensor::from_vector({g[0], g[1]}, {2}, DType::F64));
    opt.step();
    ++t;
    for (int i = 0; i < 2; ++i) {
      mm[i] = 0.9 * mm[i] + 0.1 * g[i];
      v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
      const double mh = mm[i] / (1 - std::pow(0.9, t)), vh = v[i] / (1 - std::pow(0.999, t));
      p[i] -= 0.1 * mh / (std::sqrt(vh) + 1e-8);
    }
  }
  std::vector<double> got = m.p.to_vector();
  for (int i = 0; i < 2; ++i) CHECK(got[i] == doctest::Approx(p[i]).epsilon(1e-12));
}

TEST_CASE("SGD with momentum: three steps equal the values computed by hand") {
  One m({1.0, 2.0});
  SGD opt(m.named_parameters(), 0.5, 0.9);
  double p[2] = {1.0, 2.0}, b[2] = {0, 0};
  bool first = true;
  for (auto& g : grads) {
    m.p.set_grad(Tensor::from_vector({g[0], g[1]}, {2}, DType::F64));
    opt.step();
    for (int i = 0; i < 2; ++i) {
      b[i] = first ? g[i] : 0.9 * b[i] + g[i];
      p[i] -= 0.5 * b[i];
    }
    first = false;
  }
  std::vector<double> got = m.p.to_vector();
  for (int i = 0; i < 2; ++i) CHECK(got[i] == doctest::Approx(p[i]).epsilon(1e-14));
  // Plain SGD, one step.
  One q({1.0, 1.0});
  SGD plain(q.named_parameters(), 0.1);
  q.p.set_grad(Tensor::from_vector({2.0, -4.0}, {2}, DType::F64));
  plain.step();
  CHECK(q.p.to_vector() == std::vector<double>{0.8, 1.4});
}

TEST_CASE("a step skips parameters without a gradient and runs post-step hooks") {
  One m({1.0, 1.0});
  RMSProp opt(m.named_parameters(), 0.1);
  int hooks = 0;
  opt.add_post_step_hook([&] { ++hooks; });
  opt.step();
  CHECK(m.p.to_vector() == std::vector<double>{1.0, 1.0});
  CHECK(hooks == 1);
}
