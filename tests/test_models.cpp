#include "gan/models.h"
#include "helpers.h"
#include "nn/layers.h"
#include "nn/weight_norm.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

using namespace wn;
using namespace wn::gan;

namespace {
Shape out_of(nn::Module& m, const Tensor& x) {
  NoGradGuard ng;
  m.eval();
  return m(x).shape();
}
}  // namespace

TEST_CASE("DCGAN parameter counts at 64x64x3, nf 64, code 128 match docs/paper.md") {
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
  // Inner levels whose size is 2 mod 4 pad only their strided block (28 -> 14 -> 8 -> 4).
  Gan odd = resnet(Norm::Weight, 1, 28, 28, {4, 8, 8}, 2, 16, gen);
  CHECK(out_of(*odd.D, Tensor::zeros({2, 1, 28, 28})) == Shape{2});
  CHECK(out_of(*odd.G, Tensor::zeros({2, 16})) == Shape{2, 1, 28, 28});
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

namespace {
// Every leaf module of a network with its hierarchical name.
std::vector<nn::Module*> leaves(nn::Module& net) {
  std::vector<nn::Module*> out;
  net.apply([&](nn::Module& m) {
    if (m.children().empty()) out.push_back(&m);
  });
  return out;
}
double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector()) m = std::max(m, std::fabs(v));
  return m;
}
// The sample of U(-b, b) spans nearly all of it: max |w| within (0.9 b, b].
void check_uniform_bound(const std::string& what, const Tensor& t, double b) {
  const double m = max_abs(t);
  CHECK_MESSAGE(m <= b * (1 + 1e-6), what << ": max |w| " << m << " above the bound " << b);
  if (t.numel() >= 200) CHECK_MESSAGE(m > 0.9 * b, what << ": max |w| " << m << " well below the bound " << b);
}
}  // namespace

TEST_CASE("initial weights follow the authors' frameworks: fan-in of the channels read, BN gamma ~ U(0, 1)") {
  // Torch7 / PyTorch 0.1-0.2: U(+-1/sqrt(f)), f = input channels x kernel for convs and
  // transposed convs alike (weight dim 0 of a transposed conv), in for linear layers.
  int convs = 0, convts = 0, lins = 0, bns = 0;
  for (Norm n : {Norm::None, Norm::Batch}) {
    Generator gen(21);
    Gan g = dcgan(n, 3, 64, 64, 32, 100, 0, gen);
    for (nn::Module* net : {g.G.get(), g.D.get()})
      for (nn::Module* m : leaves(*net)) {
        if (auto* c = dynamic_cast<nn::Conv2d*>(m)) {
          const Shape& s = c->weight.shape();
          const double b = 1 / std::sqrt(double(s[1] * s[2] * s[3]));
          check_uniform_bound(m->name(), c->weight, b);
          check_uniform_bound(m->name() + " bias", c->bias, b);
          ++convs;
        } else if (auto* t = dynamic_cast<nn::ConvTranspose2d*>(m)) {
          const Shape& s = t->weight.shape();
          const double b = 1 / std::sqrt(double(s[0] * s[2] * s[3]));
          check_uniform_bound(m->name(), t->weight, b);
          // Not today's PyTorch rule (weight dim 1, the output channels), which gives a larger bound here.
          if (s[1] < s[0]) CHECK(max_abs(t->weight) < 1 / std::sqrt(double(s[1] * s[2] * s[3])) * 0.9);
          ++convts;
        } else if (auto* l = dynamic_cast<nn::Linear*>(m)) {
          check_uniform_bound(m->name(), l->weight, 1 / std::sqrt(100.0));
          ++lins;
        } else if (auto* bn = dynamic_cast<nn::BatchNorm*>(m)) {
          std::vector<double> gm = bn->weight.to_vector();
          double mean = 0;
          for (double v : gm) {
            CHECK(v >= 0);
            CHECK(v < 1);
            mean += v / double(gm.size());
          }
          if (gm.size() >= 64) CHECK(std::fabs(mean - 0.5) < 0.15);
          CHECK(max_abs(bn->bias) == 0);
          ++bns;
        }
      }
  }
  CHECK(convs == 2 * 5);
  CHECK(convts == 2 * 4);
  CHECK(lins == 2);
  CHECK(bns == 3 + 4);
  // WN models: G's first linear x0.01 (its bias too when affine), every v by the same rule.
  for (Norm n : {Norm::Weight, Norm::WeightAffine}) {
    Generator gen(22);
    Gan g = dcgan(n, 3, 64, 64, 32, 100, 0, gen);
    auto* lin = dynamic_cast<nn::WNLinear*>(leaves(*g.G)[0]);
    REQUIRE(lin);
    check_uniform_bound("G.initial.linear", lin->weight, 0.01 / std::sqrt(100.0));
    if (n == Norm::WeightAffine) check_uniform_bound("G.initial.linear bias", lin->bias, 0.01 / std::sqrt(100.0));
    for (nn::Module* m : leaves(*g.G))
      if (auto* t = dynamic_cast<nn::WNConvTranspose2d*>(m)) {
        const Shape& s = t->weight.shape();
        check_uniform_bound(m->name(), t->weight, 1 / std::sqrt(double(s[0] * s[2] * s[3])));
        if (t->mode() == nn::WNMode::Affine) CHECK(max_abs(t->bias) == 0);
      }
  }
}

TEST_CASE("the DCGAN discriminator reads images in [0, 1] as they are, the ResNet's reads x * 2 - 1") {
  Tensor x = wn::test::rnd({2, 3, 16, 16}, 23, 0, 1, DType::F32);
  for (const char* arch : {"dcgan", "resnet"}) {
    Generator gen(24);
    ModelConfig c;
    c.arch = parse_arch(arch);
    c.norm = Norm::None;
    c.channels = 3, c.height = c.width = 16, c.nf = 4, c.code = 8, c.features = {4, 8}, c.blocks = 1;
    Gan g = build_gan(c, gen);
    g.D->eval();
    NoGradGuard ng;
    // D's layers applied one after the other to the input as given, or to 2x - 1.
    Tensor h = std::string(arch) == "dcgan" ? x : wn::add(wn::mul(x, 2.0), -1.0);
    for (auto& [name, child] : g.D->children()) h = (*child)(h);
    CHECK(wn::test::max_abs_diff(reshape(h, {2}), (*g.D)(x)) < 1e-6);
  }
}

TEST_CASE("the ResNet generator's blocks follow the authors' order and widths") {
  // G level L: stride-1 blocks block0..block{B-2} at width f[L], then the strided block;
  // each block's residue: conv1 3x3 stride-1 transposed in -> in, act at in, conv2
  // transposed 4x4 stride 2 in -> out (3x3 stride 1 in the stride-1 blocks).
  Generator gen(25);
  Gan g = resnet(Norm::Weight, 3, 32, 32, {8, 16, 24}, 2, 12, gen);
  std::map<std::string, Shape> p;
  for (auto& [n, t] : g.G->named_parameters()) p[n] = t.shape();
  auto shape = [&](const std::string& n) {
    INFO(n);
    REQUIRE(p.count(n) == 1);
    return p[n];
  };
  CHECK(shape("G.initial.linear.weight") == Shape{24 * 4 * 4, 12});
  CHECK(shape("G.initial.linear.scale") == Shape{24 * 4 * 4});
  CHECK(shape("G.initial.linear.bias") == Shape{24 * 4 * 4});
  CHECK(shape("G.initial.act.weight") == Shape{24});
  CHECK(p.count("G.initial.act.bias") == 0);  // a plain PReLU after the first linear
  const std::vector<int64_t> f = {8, 16, 24};
  for (int L = 2; L >= 0; --L) {
    const int64_t in = f[L], out = L == 0 ? 3 : f[L - 1];
    const std::string b0 = fmt::format("G.level{}.block0.", L), b1 = fmt::format("G.level{}.block1.", L);
    CHECK(shape(b0 + "residue.conv1.weight") == Shape{in, in, 3, 3});
    CHECK(shape(b0 + "residue.act.weight") == Shape{in});
    CHECK(shape(b0 + "residue.conv2.weight") == Shape{in, in, 3, 3});
    CHECK(shape(b1 + "residue.conv1.weight") == Shape{in, in, 3, 3});
    CHECK(shape(b1 + "residue.act.weight") == Shape{in});
    CHECK(shape(b1 + "residue.conv2.weight") == Shape{in, out, 4, 4});
    CHECK(shape(b1 + "shortcut.conv.weight") == Shape{in, out, 1, 1});  // transposed layout (in, out)
    CHECK(shape(b1 + "add.weight") == Shape{2, out});
  }
  CHECK(shape("G.level0.block1.post.weight") == Shape{3});  // the Affine after G's last block
  // The order in which the forward pass meets them (as `wngan summary` lists them).
  std::vector<std::string> order;
  for (auto& r : summarize(*g.G, Tensor::zeros({1, 12})))
    if (r.name.find("residue.conv") != std::string::npos) order.push_back(r.name);
  REQUIRE(order.size() == 12);
  CHECK(order[0] == "G.level2.block0.residue.conv1");
  CHECK(order[3] == "G.level2.block1.residue.conv2");
  CHECK(order[11] == "G.level0.block1.residue.conv2");
  // BN models: BN after each residue conv, at the width that conv writes.
  Generator gen2(26);
  Gan b = resnet(Norm::Batch, 3, 32, 32, {8, 16, 24}, 2, 12, gen2);
  std::map<std::string, Shape> q;
  for (auto& [n, t] : b.G->named_parameters()) q[n] = t.shape();
  CHECK(q.at("G.level1.block1.residue.bn1.weight") == Shape{16});
  CHECK(q.at("G.level1.block1.residue.bn2.weight") == Shape{8});
  CHECK(q.at("G.level1.block1.residue.conv2.bias") == Shape{8});
}

TEST_CASE("the ResNet's WN layers put the epsilon outside the root, and its TPReLU clamps in the forward pass") {
  Generator gen(27);
  Gan g = resnet(Norm::Weight, 1, 8, 8, {4}, 1, 4, gen);
  g.D->to(DType::F64);  // norms in double, so that 1e-8 outside the root shows
  for (nn::Module* m : leaves(*g.D))
    if (auto* w = dynamic_cast<nn::WNLayer*>(m)) {
      CHECK(w->eps_style() == nn::WNEps::Outside);
      // ||v|| = sqrt(sum v^2) + 1e-8, by hand.
      std::vector<double> v = w->weight.to_vector();
      const int64_t units = w->weight.dim(0), per = w->weight.numel() / units;
      for (int64_t u = 0; u < units; ++u) {
        double ss = 0;
        for (int64_t i = 0; i < per; ++i) ss += v[u * per + i] * v[u * per + i];
        CHECK(w->norms()[u] == doctest::Approx(std::sqrt(ss) + 1e-8).epsilon(1e-12));
      }
    }
  nn::TPReLU t(2, 0.25, /*clamp_in_forward=*/true);
  t.weight.copy_from(Tensor::from_vector({1.5, -0.5}, {2}));
  Tensor x = Tensor::from_vector({-2.0, -2.0}, {1, 2});
  NoGradGuard ng;
  std::vector<double> y = t(x).to_vector();
  CHECK(y[0] == doctest::Approx(-2.0));  // slope 1.5 used as 1
  CHECK(y[1] == doctest::Approx(0.0));   // slope -0.5 used as 0
  t.after_update();                      // no clipping of the parameter itself
  CHECK(t.weight.to_vector()[0] == doctest::Approx(1.5));
}

TEST_CASE("every parameter of every variant takes part: changing it alone changes G's images or D's logits") {
  // Evaluation mode: batch norm then uses its running statistics, so a bias before it still
  // shows (in training mode the batch mean cancels it exactly, as in the authors' models).
  std::vector<ModelConfig> variants;
  for (Norm n : {Norm::None, Norm::Batch, Norm::Weight, Norm::WeightAffine})
    variants.push_back(ModelConfig::of(Arch::DCGAN, n, 3, 16, 12, 8));
  for (Norm n : {Norm::None, Norm::Batch, Norm::Weight}) {
    ModelConfig c = ModelConfig::of(Arch::ResNet, n, 1, 16, 16, 8);
    c.features = {4, 8};
    c.blocks = 2;
    variants.push_back(c);
  }
  for (ModelConfig c : variants) {
    if (c.arch == Arch::DCGAN) c.nf = 4;
    Generator gen(21);
    Gan g = build_gan(c, gen);
    g.G->eval();
    g.D->eval();
    const Tensor z = wn::test::rnd({8, c.code}, 1, -1, 1, DType::F32);
    const Tensor x = wn::test::rnd({8, c.channels, c.height, c.width}, 2, -1, 2, DType::F32);
    int checked = 0;
    for (auto* net : {g.G.get(), g.D.get()}) {
      const Tensor& input = net == g.G.get() ? z : x;
      // First every parameter at a random non-zero value: a part that starts at 0 (a
      // residual scale, a bias) would otherwise hide the parameters behind it.
      uint64_t init = 500;
      for (auto& [name, p] : net->named_parameters()) {
        std::vector<double> v = wn::test::rnd(p.shape(), init++, 0.2, 0.8, DType::F64).to_vector();
        const std::vector<double> sign = wn::test::rnd(p.shape(), init++, -1, 1, DType::F64).to_vector();
        for (size_t i = 0; i < v.size(); ++i) v[i] *= sign[i] < 0 ? -1 : 1;
        if (name.find("act.weight") != std::string::npos)  // PReLU / TPReLU slopes live in [0, 1]
          for (double& e : v) e = std::abs(e);
        Tensor(p).copy_from(Tensor::from_vector(v, p.shape()).to(p.dtype()));
      }
      std::vector<double> base;
      {
        NoGradGuard ng;
        base = (*net)(input).to_vector();
      }
      uint64_t seed = 100;
      for (auto& [name, p] : net->named_parameters()) {
        const std::vector<double> was = p.to_vector();
        // Another random value of either sign (a weight-normalized unit of one element is
        // its sign alone); a few tries, in case this input leaves a slope's region unused.
        double diff = 0, mag = 1e-12;
        for (int attempt = 0; attempt < 3 && !(diff > 1e-6 * mag && diff > 1e-7); ++attempt) {
          std::vector<double> changed = wn::test::rnd(p.shape(), seed++, 0.2, 1.0, DType::F64).to_vector();
          const std::vector<double> sign = wn::test::rnd(p.shape(), seed++, -1, 1, DType::F64).to_vector();
          for (size_t i = 0; i < changed.size(); ++i) changed[i] *= sign[i] < 0 ? -1 : 1;
          Tensor(p).copy_from(Tensor::from_vector(changed, p.shape()).to(p.dtype()));
          std::vector<double> now;
          {
            NoGradGuard ng;
            now = (*net)(input).to_vector();
          }
          Tensor(p).copy_from(Tensor::from_vector(was, p.shape()).to(p.dtype()));
          for (size_t i = 0; i < now.size(); ++i)
            diff = std::max(diff, std::abs(now[i] - base[i])), mag = std::max(mag, std::abs(base[i]));
        }
        INFO(c.describe() << ": " << name);
        CHECK(diff > 1e-6 * mag);
        CHECK(diff > 1e-7);
        ++checked;
      }
    }
    CHECK(checked > 4);
  }
}
