#include <cmath>
#include "engine/autograd.h"
#include "eval/reconstruct.h"
#include "gan/models.h"
#include "helpers.h"
#include "nn/layers.h"

using namespace wn;
using namespace wn::eval;
using wn::test::rnd;

TEST_CASE("a generator that can represent the target exactly reconstructs it to near 0") {
  Generator gen(1);
  auto G = std::make_shared<nn::Sequential>();
  G->add("linear", std::make_shared<nn::Linear>(4, 12, gen));
  G->add("reshape", std::make_shared<nn::Unflatten>(3, 2, 2));
  Tensor z_true = rnd({3, 4}, 2, -1, 1, DType::F32);
  Tensor x;
  {
    NoGradGuard ng;
    x = (*G)(z_true);
  }
  ReconstructOptions o;
  o.steps = 1500;
  Reconstruction r = reconstruct(*G, 4, x, o);
  REQUIRE(r.losses.size() == 3);
  for (double l : r.losses) CHECK(l < 1e-4);
  // The starting point z = 0 is far from it.
  ReconstructOptions none;
  none.steps = 0;
  CHECK(reconstruct(*G, 4, x, none).mean_loss > 0.01);
  // G's parameters got no gradient and keep requiring one; G's mode is restored.
  for (auto& [n, p] : G->named_parameters()) {
    CHECK_FALSE(p.grad().defined());
    CHECK(p.requires_grad());
  }
  CHECK(G->is_training());
}

TEST_CASE("reconstructing G's own sample reaches a small loss, and more steps do better") {
  Generator gen(3);
  gan::Gan g = gan::dcgan(gan::Norm::Weight, 1, 28, 28, 8, 16, 0, gen);
  Tensor x;
  {
    NoGradGuard ng;
    g.G->eval();
    x = (*g.G)(randn({4, 16}, gen));
  }
  ReconstructOptions a, b, c;
  a.steps = 0;
  b.steps = 20;
  c.steps = 300;
  const double l0 = reconstruct(*g.G, 16, x, a).mean_loss, l20 = reconstruct(*g.G, 16, x, b).mean_loss,
               l300 = reconstruct(*g.G, 16, x, c).mean_loss;
  CHECK(l20 < l0);
  CHECK(l300 < l20);
  CHECK(l300 < 0.1 * l0);
}

TEST_CASE("an image's result does not depend on the rest of its batch (BN model, evaluation mode)") {
  Generator gen(4);
  gan::Gan g = gan::dcgan(gan::Norm::Batch, 1, 28, 28, 8, 16, 0, gen);
  // Give the BN layers non-trivial running statistics with a few training-mode passes.
  for (int i = 0; i < 3; ++i) {
    NoGradGuard ng;
    (*g.G)(randn({8, 16}, gen));
  }
  Tensor x = rnd({4, 1, 28, 28}, 5, 0, 1, DType::F32);
  ReconstructOptions together, alone;
  together.steps = alone.steps = 30;
  together.batch = 4;
  alone.batch = 1;
  Reconstruction r4 = reconstruct(*g.G, 16, x, together), r1 = reconstruct(*g.G, 16, x, alone);
  for (int i = 0; i < 4; ++i) CHECK(r4.losses[i] == doctest::Approx(r1.losses[i]).epsilon(1e-5));
  CHECK(r4.losses[0] != doctest::Approx(r4.losses[1]));
}

TEST_CASE("images of another size give a clear error") {
  Generator gen(6);
  gan::Gan g = gan::dcgan(gan::Norm::None, 1, 28, 28, 8, 16, 0, gen);
  CHECK_THROWS_WITH(reconstruct(*g.G, 16, Tensor::zeros({2, 1, 32, 32})),
                    doctest::Contains("G makes images (2, 1, 28, 28), the test images are (2, 1, 32, 32)"));
}

TEST_CASE("the measure by hand: z from 0, exactly S RMSProp steps, the loss per C x H x W (1 and 3 channels, non-square)") {
  // G(z) = W z + b as images; the trajectory of each image's code computed here in double,
  // step by step, as docs/paper.md section 5 defines it.
  struct Shape3 {
    int64_t C, H, W;
  };
  for (const Shape3 sh : {Shape3{1, 3, 5}, Shape3{3, 2, 4}}) {
    const int64_t code = 3, per = sh.C * sh.H * sh.W, n = 4;
    Generator gen(7);
    auto lin = std::make_shared<nn::Linear>(code, per, gen);
    {
      NoGradGuard ng;
      lin->bias = rnd({per}, 11, -0.5, 0.5, DType::F32);  // a bias that is not 0
    }
    auto G = std::make_shared<nn::Sequential>();
    G->add("linear", lin);
    G->add("reshape", std::make_shared<nn::Unflatten>(sh.C, sh.H, sh.W));
    const Tensor x = rnd({n, sh.C, sh.H, sh.W}, 5, 0, 1, DType::F32);
    const std::vector<double> Wv = lin->weight.to_vector(), bv = lin->bias.to_vector(), xv = x.to_vector();
    ReconstructOptions o;
    for (int64_t steps : {0, 1, 7}) {
      o.steps = steps;
      const Reconstruction r = reconstruct(*G, code, x, o);
      for (int64_t i = 0; i < n; ++i) {
        std::vector<double> z(code, 0.0), s(code, 0.0), y(per);
        auto forward = [&] {
          for (int64_t k = 0; k < per; ++k) {
            y[k] = bv[k];
            for (int64_t j = 0; j < code; ++j) y[k] += Wv[k * code + j] * z[j];
          }
        };
        for (int64_t t = 0; t < steps; ++t) {
          forward();
          for (int64_t j = 0; j < code; ++j) {
            double g = 0;
            for (int64_t k = 0; k < per; ++k) g += 2.0 / double(per) * (y[k] - xv[i * per + k]) * Wv[k * code + j];
            s[j] = o.alpha * s[j] + (1 - o.alpha) * g * g;
            z[j] -= o.lr * g / (std::sqrt(s[j]) + o.eps);
          }
        }
        forward();
        double loss = 0;
        for (int64_t k = 0; k < per; ++k) loss += (y[k] - xv[i * per + k]) * (y[k] - xv[i * per + k]);
        loss /= double(per);
        INFO(sh.C << "x" << sh.H << "x" << sh.W << " steps " << steps << " image " << i);
        CHECK(r.losses[size_t(i)] == doctest::Approx(loss).epsilon(2e-5));
        for (int64_t j = 0; j < code; ++j) CHECK(r.z.to_vector()[size_t(i * code + j)] == doctest::Approx(z[j]).epsilon(1e-4).scale(1e-6));
      }
    }
  }
}
