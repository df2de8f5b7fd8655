#include "engine/backend/backend.h"
#include "engine/ops/common.h"
#include "helpers.h"
#include "nn/gradcheck_suite.h"
#include "nn/weight_norm.h"

using namespace wn;
using namespace wn::nn;
using wn::test::max_abs_diff;
using wn::test::rnd;

TEST_CASE("every nn module's gradients match central differences (input and all parameters)") {
  int n = 0;
  for (auto& c : nn_gradcheck_cases()) {
    GradcheckResult r = c.run();
    CHECK_MESSAGE(r.passed, c.name << " " << c.shape << " max rel error " << r.max_rel_error << " " << r.worst);
    ++n;
  }
  CHECK(n >= 25);
}

TEST_CASE("the weight_norm op's gradients match central differences") {
  CHECK(wn::test::check_gradcheck_family("weight_norm") == 5);
}

TEST_CASE("the fused CPU weight norm equals the backend's composed reference, forward and backward") {
  Backend& be = backend_for(kCPU);
  struct C {
    Shape s;
    int unit_dim;
    double factor, eps, eps_out;
    bool scale;
  };
  for (const C& c : {C{{6, 5, 4, 4}, 0, 1.0, 1e-6, 0.0, false}, C{{5, 6, 4, 4}, 1, 0.25, 1e-6, 0.0, true},
                     C{{7, 9}, 0, 1.0, 0.5, 0.0, true}, C{{5, 6, 3, 3}, 1, 0.25, 0.0, 0.2, true},
                     C{{7, 9}, 0, 1.0, 0.0, 1e-8, false}}) {
    for (DType dt : {DType::F64, DType::F32}) {
      const double tol = dt == DType::F64 ? 1e-12 : 2e-5;
      WNGeom g;
      g.units = c.s[c.unit_dim];
      for (int i = 0; i < c.unit_dim; ++i) g.outer *= c.s[i];
      for (int i = c.unit_dim + 1; i < c.s.rank(); ++i) g.inner *= c.s[i];
      g.factor = c.factor;
      g.eps = c.eps;
      g.eps_out = c.eps_out;
      Tensor v = rnd(c.s, 1, -1, 1, dt), dw = rnd(c.s, 2, -1, 1, dt);
      Tensor sc = c.scale ? rnd({g.units}, 3, -2, 2, dt) : Tensor();
      Tensor w1 = Tensor::empty(c.s, dt), w2 = Tensor::empty(c.s, dt);
      Tensor n1 = Tensor::empty({g.units}, dt), n2 = Tensor::empty({g.units}, dt);
      be.weight_norm_forward(g, v, sc, w1, n1);
      be.Backend::weight_norm_forward(g, v, sc, w2, n2);
      CHECK(max_abs_diff(w1, w2) < tol);
      CHECK(max_abs_diff(n1, n2) < tol);
      Tensor dv1 = Tensor::empty(c.s, dt), dv2 = Tensor::empty(c.s, dt);
      Tensor dg1 = c.scale ? Tensor::empty({g.units}, dt) : Tensor(), dg2 = c.scale ? Tensor::empty({g.units}, dt) : Tensor();
      be.weight_norm_backward(g, v, sc, n1, dw, dv1, dg1);
      be.Backend::weight_norm_backward(g, v, sc, n2, dw, dv2, dg2);
      CHECK(max_abs_diff(dv1, dv2) < tol);
      if (c.scale) CHECK(max_abs_diff(dg1, dg2) < tol);
    }
  }
  // Hand-computed: v = (3, 4) in one unit, factor 1, eps 0: w = (0.6, 0.8), norm 5.
  Tensor v = Tensor::from_vector({3, 4}, {1, 2}, DType::F64);
  Tensor w = weight_norm(v, Tensor(), 0, 1.0, 0.0);
  CHECK(w.to_vector()[0] == doctest::Approx(0.6).epsilon(1e-15));
  CHECK(w.to_vector()[1] == doctest::Approx(0.8).epsilon(1e-15));
  // The ResNet code's epsilon outside the root: eps_out 1 gives (3, 4) / 6.
  Tensor wo = weight_norm(v, Tensor(), 0, 1.0, 0.0, 1.0);
  CHECK(wo.to_vector()[0] == doctest::Approx(0.5).epsilon(1e-15));
  CHECK(wo.to_vector()[1] == doctest::Approx(4.0 / 6.0).epsilon(1e-15));
}

TEST_CASE("weight_norm argument errors name the problem") {
  Tensor v = Tensor::zeros({3, 2});
  CHECK_THROWS_WITH_AS(weight_norm(v, Tensor(), 2, 1.0, 1e-6), doctest::Contains("unit dimension 2"), OpError);
  CHECK_THROWS_WITH_AS(weight_norm(v, Tensor::ones({2}), 0, 1.0, 1e-6), doctest::Contains("one value per unit"),
                       OpError);
}

namespace {
template <class M>
std::shared_ptr<M> make64(std::shared_ptr<M> m) {
  m->to(DType::F64);
  return m;
}
Tensor scaled(const Tensor& v, double c) { return mul(v.detach(), c); }
}  // namespace

TEST_CASE("a WN layer's output does not change when v is scaled by c > 0") {
  Generator gen(1);
  std::vector<std::shared_ptr<WNLayer>> layers = {
      make64(std::make_shared<WNLinear>(6, 4, WNMode::Strict, gen)),
      make64(std::make_shared<WNConv2d>(3, 4, Hw(4), Hw(2), Hw(1), WNMode::Strict, gen)),
      make64(std::make_shared<WNConvTranspose2d>(3, 2, Hw(4), Hw(2), Hw(1), WNMode::Affine, gen))};
  std::vector<Tensor> xs = {rnd({2, 6}, 2), rnd({2, 3, 8, 8}, 3), rnd({2, 3, 4, 4}, 4)};
  for (size_t i = 0; i < layers.size(); ++i) {
    auto& m = *layers[i];
    {
      NoGradGuard ng;
      m.weight.copy_from(mul(m.weight, 1e4));  // |v| large, so eps = 1e-6 is negligible
    }
    Tensor y0 = m(xs[i]);
    for (double c : {3.7, 0.25}) {
      Tensor keep = m.weight.clone();
      m.weight.copy_from(scaled(keep, c));
      CHECK(max_abs_diff(m(xs[i]), y0) < 1e-10);
      m.weight.copy_from(keep);
    }
  }
}

TEST_CASE("the gradient with respect to v is orthogonal to v, per output unit") {
  Generator gen(5);
  auto conv = make64(std::make_shared<WNConv2d>(3, 5, Hw(4), Hw(2), Hw(1), WNMode::Strict, gen));
  auto convt = make64(std::make_shared<WNConvTranspose2d>(5, 3, Hw(4), Hw(2), Hw(1), WNMode::Strict, gen));
  auto lin = make64(std::make_shared<WNLinear>(7, 4, WNMode::Affine, gen));
  // With |v|^2 around 3e7, eps / |v|^2 ~ 3e-14 bounds v . dL/dv / (|v| |dL/dv|).
  for (WNLayer* m : std::vector<WNLayer*>{conv.get(), convt.get(), lin.get()}) {
    NoGradGuard ng;
    m->weight.copy_from(mul(m->weight, 1e4));
  }
  Tensor x = rnd({2, 3, 8, 8}, 6);
  Tensor y = (*convt)((*conv)(x));
  y.backward(rnd(y.shape(), 7));
  Tensor z = (*lin)(rnd({3, 7}, 8));
  z.backward(rnd(z.shape(), 9));
  for (WNLayer* m : std::vector<WNLayer*>{conv.get(), convt.get(), lin.get()}) {
    std::vector<double> cos = m->v_grad_cosines();
    REQUIRE(!cos.empty());
    for (double c : cos) CHECK(std::fabs(c) < 1e-10);
  }
  // At PyTorch's default initial scale (|v|^2 ~ 1/3) the epsilon inside the root
  // leaves a residue of order eps / |v|^2 ~ 1e-6, and no more.
  auto small = make64(std::make_shared<WNConv2d>(3, 4, Hw(3), Hw(1), Hw(1), WNMode::Strict, gen));
  Tensor ys = (*small)(x);
  ys.backward(rnd(ys.shape(), 10));
  for (double c : small->v_grad_cosines()) CHECK(std::fabs(c) < 1e-4);
}

TEST_CASE("transposed WN: the norm uses the factor 1 / (stride_h * stride_w)") {
  Generator gen(11);
  auto m = make64(std::make_shared<WNConvTranspose2d>(3, 2, Hw(4), Hw(2), Hw(1), WNMode::Strict, gen));
  // Norm per output channel (dim 1 of (in, out, kh, kw)), computed by hand.
  std::vector<double> v = m->weight.to_vector(), hand(2, 0.0);
  for (int i = 0; i < 3; ++i)
    for (int o = 0; o < 2; ++o)
      for (int k = 0; k < 16; ++k) hand[o] += v[(i * 2 + o) * 16 + k] * v[(i * 2 + o) * 16 + k];
  for (double& h : hand) h = std::sqrt(h / 4.0 + 1e-6);
  std::vector<double> got = m->norms();
  CHECK(got[0] == doctest::Approx(hand[0]).epsilon(1e-14));
  CHECK(got[1] == doctest::Approx(hand[1]).epsilon(1e-14));
  // And the output equals the plain transposed conv with v divided by those norms.
  std::vector<double> w = v;
  for (int i = 0; i < 3; ++i)
    for (int o = 0; o < 2; ++o)
      for (int k = 0; k < 16; ++k) w[(i * 2 + o) * 16 + k] /= hand[o];
  Tensor x = rnd({2, 3, 4, 4}, 12);
  Tensor ref = conv_transpose2d(x, Tensor::from_vector(w, {3, 2, 4, 4}, DType::F64), Tensor(), 2, 1);
  CHECK(max_abs_diff((*m)(x), ref) < 1e-12);
}

TEST_CASE("affine WN = strict WN, then scale and bias per output unit") {
  Generator g1(13), g2(13);
  auto strict = make64(std::make_shared<WNConv2d>(2, 3, Hw(3), Hw(1), Hw(1), WNMode::Strict, g1));
  auto affine = make64(std::make_shared<WNConv2d>(2, 3, Hw(3), Hw(1), Hw(1), WNMode::Affine, g2));
  REQUIRE(max_abs_diff(strict->weight, affine->weight) == 0);
  affine->scale.copy_from(Tensor::from_vector({0.5, 2.0, -1.0}, {3}, DType::F64));
  affine->bias.copy_from(Tensor::from_vector({1.0, 0.0, -3.0}, {3}, DType::F64));
  Tensor x = rnd({2, 2, 5, 5}, 14);
  std::vector<double> s = (*strict)(x).to_vector(), a = (*affine)(x).to_vector();
  const double sc[3] = {0.5, 2.0, -1.0}, bi[3] = {1.0, 0.0, -3.0};
  double err = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const int c = static_cast<int>((i / 25) % 3);
    err = std::max(err, std::fabs(a[i] - (sc[c] * s[i] + bi[c])));
  }
  CHECK(err < 1e-12);
  CHECK(affine->named_parameters().size() == 3);
  CHECK(strict->named_parameters().size() == 1);
}

TEST_CASE("weight-normalized addition starts as the identity on the shortcut") {
  WNAdd add(3, {0.0, 1.0});
  Tensor res = rnd({2, 3, 2, 2}, 15, -1, 1, DType::F32), sc = rnd({2, 3, 2, 2}, 16, -1, 1, DType::F32);
  CHECK(max_abs_diff(add.forward_many({res, sc}), sc) < 1e-6);
  CHECK_THROWS_WITH(add.forward_many({res}), doctest::Contains("1 branches given, 2 expected"));
}
