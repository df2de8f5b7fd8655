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
