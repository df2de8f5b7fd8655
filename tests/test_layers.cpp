#include "helpers.h"
#include "nn/layers.h"
#include "nn/optim.h"

using namespace wn;
using namespace wn::nn;
using wn::test::rnd;

TEST_CASE("TPReLU equals PReLU(x - b) + b, computed by hand") {
  TPReLU t(2);
  t.weight.copy_from(Tensor::from_vector({0.25, 0.5}, {2}));
  t.bias.copy_from(Tensor::from_vector({1.0, -1.0}, {2}));
  Tensor x = Tensor::from_vector({0, 3, -2, 0}, {1, 2, 2, 1});
  // channel 0, b = 1: x - b = (-1, 2) -> (-0.25, 2) + 1 = (0.75, 3)
  // channel 1, b = -1: x - b = (-1, 1) -> (-0.5, 1) - 1 = (-1.5, 0)
  CHECK(t(x).to_vector() == std::vector<double>{0.75, 3, -1.5, 0});
}

TEST_CASE("PReLU and TPReLU slopes stay in [0, 1] after every update") {
  auto seq = std::make_shared<Sequential>();
  auto p = seq->add("p", std::make_shared<PReLU>(2));
  auto t = seq->add("t", std::make_shared<TPReLU>(2));
  SGD opt(seq->named_parameters(), 1.0);
  opt.add_post_step_hook([&] { after_update_all(*seq); });
  // Gradients that push one slope below 0 and the other above 1.
  for (Tensor w : {p->weight, t->weight}) w.set_grad(Tensor::from_vector({5.0, -5.0}, {2}));
  opt.step();
  CHECK(p->weight.to_vector() == std::vector<double>{0, 1});
  CHECK(t->weight.to_vector() == std::vector<double>{0, 1});
}

TEST_CASE("layers use PyTorch's default initialisation bounds and weight layouts") {
  Generator gen(3);
  Linear l(5, 3, gen);
  CHECK(l.weight.shape() == Shape{3, 5});
  ConvTranspose2d ct(4, 3, Hw(4), Hw(2), Hw(1), gen);
  CHECK(ct.weight.shape() == Shape{4, 3, 4, 4});
  Conv2d c(4, 3, Hw(4), Hw(2), Hw(1), gen);
  CHECK(c.weight.shape() == Shape{3, 4, 4, 4});
  auto within = [](const Tensor& t, double bound) {
    double m = 0;
    for (double v : t.to_vector()) m = std::max(m, std::fabs(v));
    return m <= bound && m > 0.5 * bound;
  };
  CHECK(within(l.weight, 1 / std::sqrt(5.0)));
  CHECK(within(c.weight, 1 / std::sqrt(64.0)));
  CHECK(within(ct.weight, 1 / std::sqrt(48.0)));  // fan_in = weight dim 1 (out) * 16
  CHECK(within(ct.bias, 1 / std::sqrt(48.0)));
}

TEST_CASE("modules name parameters hierarchically, count them, and switch mode recursively") {
  Generator gen(4);
  auto g = std::make_shared<Sequential>();
  auto level = std::make_shared<Sequential>();
  level->add("conv", std::make_shared<Conv2d>(2, 3, Hw(3), Hw(1), Hw(1), gen));
  level->add("bn", std::make_shared<BatchNorm>(3));
  g->add("level1", level);
  g->set_name("G");
  std::vector<std::string> names;
  for (auto& [n, t] : g->state()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"G.level1.conv.weight", "G.level1.conv.bias", "G.level1.bn.weight",
                                          "G.level1.bn.bias", "G.level1.bn.running_mean", "G.level1.bn.running_var"});
  CHECK(g->num_parameters() == 3 * 2 * 9 + 3 + 3 + 3);
  g->eval();
  CHECK_FALSE(level->children()[1].second->is_training());
  g->train();
  CHECK(level->children()[1].second->is_training());
}

TEST_CASE("BatchNorm module: training statistics, running statistics, evaluation mode") {
  BatchNorm bn(2);
  Tensor x = rnd({6, 2, 3, 3}, 5, -2, 4, DType::F32);
  Tensor y = bn(x);
  std::vector<double> m = mean(y, {0, 2, 3}).to_vector();
  CHECK(std::fabs(m[0]) < 1e-5);
  // After one step: running_mean = 0.1 * batch mean.
  std::vector<double> bm = mean(x, {0, 2, 3}).to_vector();
  CHECK(bn.running_mean.to_vector()[0] == doctest::Approx(0.1 * bm[0]).epsilon(1e-5));
  bn.eval();
  Tensor single = reshape(select(x, 0), {1, 2, 3, 3});
  std::vector<double> alone = bn(single).to_vector(), batch = bn(x).to_vector();
  for (size_t i = 0; i < alone.size(); ++i) CHECK(alone[i] == batch[i]);
}
