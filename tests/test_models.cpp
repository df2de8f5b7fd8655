#include "gan/models.h"
#include "helpers.h"

using namespace wn;
using namespace wn::gan;

namespace {
Shape out_of(nn::Module& m, const Tensor& x) {
  NoGradGuard ng;
  m.eval();
  return m(x).shape();
}
}  // namespace

TEST_CASE("DCGAN parameter counts at 64x64x3, nf 64, code 128 match the SPEC") {
  Generator gen(1);
  Gan v = dcgan(Norm::None, 3, 64, 64, 64, 128, 0, gen);
  CHECK(v.G->num_parameters() == 3813763);
  CHECK(v.D->num_parameters() == 2765697);
  Gan b = dcgan(Norm::Batch, 3, 64, 64, 64, 128, 0, gen);
  CHECK(b.G->num_parameters() == 3815683);
  CHECK(b.D->num_parameters() == 2767489);
}

TEST_CASE("the layer-count rule") {
  CHECK(dcgan_layers(64, 64) == 4);
  CHECK(dcgan_layers(32, 32) == 3);
  CHECK(dcgan_layers(28, 28) == 2);
  CHECK(dcgan_layers(128, 128) == 5);
  CHECK(dcgan_layers(160, 160) == 5);
  CHECK(dcgan_layers(96, 64) == 4);
}

TEST_CASE("DCGANs map codes to images of exactly the requested size, and images to one logit") {
  struct S {
    int64_t c, h, w;
  };
  for (S s : {S{1, 28, 28}, S{3, 32, 32}, S{3, 64, 64}, S{3, 96, 96}, S{1, 160, 160}, S{3, 48, 80}, S{1, 22, 30}}) {
    for (Norm n : {Norm::None, Norm::Batch, Norm::Weight, Norm::WeightAffine}) {
      Generator gen(2);
      Gan g = dcgan(n, s.c, s.h, s.w, 8, 16, 0, gen);
      CHECK(out_of(*g.G, Tensor::zeros({2, 16})) == Shape{2, s.c, s.h, s.w});
      CHECK(out_of(*g.D, Tensor::zeros({2, s.c, s.h, s.w})) == Shape{2});
    }
  }
  Generator gen(3);
  CHECK_THROWS_WITH(dcgan(Norm::None, 1, 27, 28, 8, 16, 0, gen), doctest::Contains("must be even"));
}

TEST_CASE("parameter names follow the authors' modules") {
  Generator gen(4);
  Gan g = dcgan(Norm::Batch, 3, 64, 64, 8, 16, 0, gen);
  std::vector<std::string> names;
  for (auto& [n, t] : g.G->state()) names.push_back(n);
  for (auto& [n, t] : g.D->state()) names.push_back(n);
  auto has = [&](const std::string& s) { return std::find(names.begin(), names.end(), s) != names.end(); };
  for (const char* s : {"G.initial.linear.weight", "G.initial.bn.running_var", "G.initial.act.weight",
                        "G.level3.conv.weight", "G.level1.bn.weight", "G.level0.conv.bias", "D.level0.conv.weight",
                        "D.level1.bn.running_mean", "D.level3.act.weight", "D.final.conv.weight"})
    CHECK_MESSAGE(has(s), s);
  CHECK_FALSE(has("D.level0.bn.weight"));  // no BN on D's first layer
  CHECK_FALSE(has("G.level0.bn.weight"));  // nor on G's output layer
  Gan w = dcgan(Norm::Weight, 3, 64, 64, 8, 16, 0, gen);
  names.clear();
  for (auto& [n, t] : w.G->state()) names.push_back(n);
  for (auto& [n, t] : w.D->state()) names.push_back(n);
  for (const char* s : {"G.initial.act.bias", "G.level0.conv.scale", "D.final.conv.scale", "D.level2.act.bias"})
    CHECK_MESSAGE(has(s), s);
  CHECK_FALSE(has("D.level1.conv.bias"));  // strict WN layers have no bias
}

TEST_CASE("the ResNet discriminator has 21 layers and the generator mirrors it") {
  for (Norm n : {Norm::None, Norm::Batch, Norm::Weight}) {
    Generator gen(5);
    Gan g = resnet(n, 3, 64, 64, {8, 8, 16, 16, 16}, 2, 16, gen);
    int convs = 0;
    for (auto& [name, t] : g.D->named_parameters())
      if (name.find(".weight") != std::string::npos &&
          (name.find("conv1.") != std::string::npos || name.find("conv2.") != std::string::npos ||
           name.find("final.conv.") != std::string::npos))
        ++convs;
    CHECK(convs == 21);
    CHECK(out_of(*g.G, Tensor::zeros({2, 16})) == Shape{2, 3, 64, 64});
    CHECK(out_of(*g.D, Tensor::zeros({2, 3, 64, 64})) == Shape{2});
  }
  Generator gen(6);
  Gan g = resnet(Norm::Weight, 1, 28, 28, {8, 16}, 2, 16, gen);
  CHECK(out_of(*g.G, Tensor::zeros({1, 16})) == Shape{1, 1, 28, 28});
  std::vector<std::string> names;
  for (auto& [n, t] : g.D->state()) names.push_back(n);
  auto has = [&](const std::string& s) { return std::find(names.begin(), names.end(), s) != names.end(); };
  CHECK(has("D.level0.block0.residue.conv1.weight"));
  CHECK(has("D.level0.block0.shortcut.conv.weight"));
  CHECK(has("D.level0.block0.add.weight"));
  CHECK(has("D.level1.block1.post.bias"));
}

TEST_CASE("a fresh WN ResNet block is the identity on its shortcut plus the post activation") {
  // With add weights (0, 1) the residual branch is ignored at first.
  Generator gen(7);
  Gan g = resnet(Norm::Weight, 1, 8, 8, {4}, 1, 4, gen);
  auto& level = *g.D->children()[0].second;
  auto& block = *level.children()[0].second;
  Tensor x = wn::test::rnd({2, 1, 8, 8}, 8, 0.2, 1.0, DType::F32);
  // Shortcut: avg pool then a 1x1 conv (1 -> 4 channels); post: TPReLU, slope 0.25.
  auto& shortcut = *block.children()[1].second;
  NoGradGuard ng;
  std::vector<double> s = shortcut(x).to_vector(), y = block(x).to_vector();
  for (size_t i = 0; i < s.size(); ++i) CHECK(y[i] == doctest::Approx(s[i] > 0 ? s[i] : 0.25 * s[i]).epsilon(1e-5));
}
