// The training protocol, piece by piece (docs/paper.md section 4 and the authors' ResNet code):
// each test fails when its part of gan_step or the trainer is broken.
#include <filesystem>
#include <map>

#include "eval/reconstruct.h"
#include "gan/loader.h"
#include "gan/trainer.h"
#include "app_helpers.h"
#include "nn/layers.h"

using namespace wn;
using namespace wn::gan;
namespace fs = std::filesystem;

namespace {

// An optimizer that records the gradients it is given and changes nothing.
class Recorder : public nn::Optimizer {
 public:
  explicit Recorder(nn::Named params) : Optimizer(std::move(params)) {}
  nn::Named state() const override { return {}; }
  std::string type_name() const override { return "Recorder"; }
  std::map<std::string, std::vector<double>> grads;

 protected:
  void update(size_t i, Tensor&, const Tensor& g) override { grads[params_[i].first] = g.to_vector(); }
};

// A small vanilla or BN DCGAN in float64 (so the references agree to rounding).
Gan small_gan(Norm norm, uint64_t seed) {
  Generator gen(seed);
  Gan g = dcgan(norm, 1, 8, 8, 4, 6, 1, gen);
  g.G->to(DType::F64);
  g.D->to(DType::F64);
  return g;
}

// Gradients of a scalar loss with respect to every parameter of m.
std::map<std::string, std::vector<double>> grads_of(nn::Module& m, const Tensor& loss) {
  for (auto& [n, p] : m.named_parameters()) Tensor(p).zero_grad();
  loss.backward();
  std::map<std::string, std::vector<double>> out;
  for (auto& [n, p] : m.named_parameters()) out[n] = p.grad().defined() ? p.grad().to_vector() : std::vector<double>{};
  return out;
}

double worst(const std::map<std::string, std::vector<double>>& a, const std::map<std::string, std::vector<double>>& b) {
  REQUIRE(a.size() == b.size());
  double w = 0;
  for (auto& [n, v] : a) {
    const auto& u = b.at(n);
    REQUIRE(v.size() == u.size());
    for (size_t i = 0; i < v.size(); ++i) w = std::max(w, std::fabs(v[i] - u[i]) / (1e-12 + std::fabs(u[i])));
  }
  return w;
}

Tensor ones(int64_t n, double v = 1.0) { return Tensor::full({n}, v, DType::F64); }

}  // namespace

TEST_CASE("alternating step: D's gradient is BCE on a real and a separate fake batch, G's the non-saturating one") {
  for (Norm norm : {Norm::None, Norm::Batch}) {
    Gan g = small_gan(norm, 31);
    Tensor real = wn::test::rnd({5, 1, 8, 8}, 32, 0, 1);
    Recorder og(g.G->named_parameters()), od(g.D->named_parameters());
    Generator rng(33), copy = rng;
    gan_step(g, og, od, real, rng);
    // The same codes in the same order: the fake batch for D, then a fresh one for G.
    Tensor z1 = randn({5, 6}, copy, 1.0, DType::F64), z2 = randn({5, 6}, copy, 1.0, DType::F64);
    Tensor fake;
    {
      NoGradGuard ng;
      fake = (*g.G)(z1);
    }
    Tensor ld = add(bce_with_logits((*g.D)(real), ones(5)), bce_with_logits((*g.D)(fake), ones(5, 0.0)));
    CHECK(worst(od.grads, grads_of(*g.D, ld)) < 1e-9);
    // Non-saturating: fake labelled real; only G's parameters change.
    Tensor lg = bce_with_logits((*g.D)((*g.G)(z2)), ones(5));
    CHECK(worst(og.grads, grads_of(*g.G, lg)) < 1e-9);
  }
}

TEST_CASE("alternating step: G's gradient goes through D's updated weights; simultaneous: through D's old ones") {
  Tensor real = wn::test::rnd({4, 1, 8, 8}, 34, 0, 1);
  for (bool simultaneous : {false, true}) {
    Gan g = small_gan(Norm::None, 35);
    Gan ref = small_gan(Norm::None, 35);  // the same weights
    Recorder og(g.G->named_parameters());
    nn::SGD od(g.D->named_parameters(), 0.5);
    Generator rng(36), copy = rng;
    gan_step(g, og, od, real, rng, false, simultaneous);
    Tensor z = randn({4, 6}, copy, 1.0, DType::F64);
    if (!simultaneous) z = randn({4, 6}, copy, 1.0, DType::F64);  // G's code is the second draw
    if (!simultaneous) {
      // Move ref's D by the same SGD step first.
      nn::SGD sd(ref.D->named_parameters(), 0.5);
      Tensor fake;
      {
        NoGradGuard ng;
        Generator c2(36);
        fake = (*ref.G)(randn({4, 6}, c2, 1.0, DType::F64));
      }
      sd.zero_grad();
      add(bce_with_logits((*ref.D)(real), ones(4)), bce_with_logits((*ref.D)(fake), ones(4, 0.0))).backward();
      sd.step();
    }
    Tensor lg = bce_with_logits((*ref.D)((*ref.G)(z)), ones(4));
    CHECK_MESSAGE(worst(og.grads, grads_of(*ref.G, lg)) < 1e-9, (simultaneous ? "simultaneous" : "alternating"));
  }
}

TEST_CASE("simultaneous step: one fake batch; D's fake loss reuses G's, then the real loss; G updated first") {
  for (Norm norm : {Norm::None, Norm::Batch}) {
    Gan g = small_gan(norm, 37);
    Gan ref = small_gan(norm, 37);
    Tensor real = wn::test::rnd({4, 1, 8, 8}, 38, 0, 1);
    nn::SGD og(g.G->named_parameters(), 0.5);  // G moves before D's losses are taken
    Recorder od(g.D->named_parameters());
    Generator rng(39), copy = rng;
    StepLosses l = gan_step(g, og, od, real, rng, false, true);
    Tensor z = randn({4, 6}, copy, 1.0, DType::F64);
    // By hand with the weights before the step: one fake batch from the old G.
    Tensor fake = (*ref.G)(z);
    Tensor out = (*ref.D)(fake.detach());
    const double lg = bce_with_logits(out, ones(4)).item();
    Tensor ld = add(bce_with_logits(out, ones(4, 0.0)), bce_with_logits((*ref.D)(real), ones(4)));
    CHECK(worst(od.grads, grads_of(*ref.D, ld)) < 1e-9);
    CHECK(l.g == doctest::Approx(lg).epsilon(1e-12));
    CHECK(l.d_fake == doctest::Approx(bce_with_logits(out, ones(4, 0.0)).item()).epsilon(1e-12));
    // And G did move (by SGD on the non-saturating gradient).
    CHECK(wn::test::max_abs_diff(g.G->named_parameters()[0].second, ref.G->named_parameters()[0].second) > 0);
  }
}

TEST_CASE("--loss ls: least squares on the sigmoid of D's logit, against 1 and 0") {
  Gan g = small_gan(Norm::None, 40);
  Gan ref = small_gan(Norm::None, 40);
  Tensor real = wn::test::rnd({3, 1, 8, 8}, 41, 0, 1);
  Recorder og(g.G->named_parameters()), od(g.D->named_parameters());
  Generator rng(42), copy = rng;
  StepLosses l = gan_step(g, og, od, real, rng, /*ls=*/true);
  // By hand: mean over the batch of (sigmoid(logit) - 1)^2 for the real batch.
  std::vector<double> logits = (*ref.D)(real).to_vector();
  double hand = 0;
  for (double v : logits) hand += std::pow(1 / (1 + std::exp(-v)) - 1, 2) / 3;
  CHECK(l.d_real == doctest::Approx(hand).epsilon(1e-12));
  Tensor z1 = randn({3, 6}, copy, 1.0, DType::F64);
  std::vector<double> lf = (*ref.D)((*ref.G)(z1)).to_vector();
  double hf = 0;
  for (double v : lf) hf += std::pow(1 / (1 + std::exp(-v)), 2) / 3;
  CHECK(l.d_fake == doctest::Approx(hf).epsilon(1e-12));
}

TEST_CASE("the trainer clips every PReLU and TPReLU slope of G and D to [0, 1] after each update") {
  const std::string d = wn::test::temp_dir("clip");
  const std::string data =
      wn::test::write_mnist(d, 60, 10, [](uint32_t i, int p) { return (p * 7 + int(i) * 13) % 256; });
  for (Norm norm : {Norm::None, Norm::Weight}) {
    TrainConfig c = wn::test::tiny_config(data, d + "/run_" + norm_name(norm), 4, 8, 4, 10, 5);
    c.model.norm = norm;
    c.lr = 0.2;  // RMSProp moves each slope by ~0.3 in the first step: they leave [0, 1] unless clipped
    Trainer t(c, false);
    t.log = [](const std::string&) {};
    const Tensor real = Loader::load(t.data(), {0, 1, 2, 3});
    int slopes = 0, at_bound = 0;
    for (int step = 0; step < 4; ++step) {
      t.step(real);  // the trainer's own step, with its optimizers and their post-step hooks
      for (nn::Module* net : {t.gan().G.get(), t.gan().D.get()})
        net->apply([&](nn::Module& m) {
          Tensor w;
          if (auto* p = dynamic_cast<nn::PReLU*>(&m)) w = p->weight;
          if (auto* p = dynamic_cast<nn::TPReLU*>(&m)) w = p->weight;
          if (!w.defined()) return;
          for (double v : w.to_vector()) {
            ++slopes;
            CHECK(v >= 0);
            CHECK(v <= 1);
            at_bound += v == 0 || v == 1;
          }
        });
    }
    CHECK(slopes > 0);
    CHECK(at_bound > 0);  // the clip did act: the test can fail
  }
  fs::remove_all(d);
}

TEST_CASE("reconstruction starts from z = 0: zero steps give G(0)") {
  Generator gen(43);
  Gan g = dcgan(Norm::Batch, 1, 8, 8, 4, 6, 1, gen);
  g.G->eval();
  Tensor x = wn::test::rnd({3, 1, 8, 8}, 44, 0, 1, DType::F32);
  eval::ReconstructOptions o;
  o.steps = 0;
  eval::Reconstruction r = eval::reconstruct(*g.G, 6, x, o);
  NoGradGuard ng;
  std::vector<double> g0 = (*g.G)(Tensor::zeros({3, 6})).to_vector(), xv = x.to_vector();
  for (int i = 0; i < 3; ++i) {
    double e = 0;
    for (int k = 0; k < 64; ++k) e += std::pow(g0[i * 64 + k] - xv[i * 64 + k], 2) / 64;
    CHECK(r.losses[i] == doctest::Approx(e).epsilon(1e-6));
  }
}

TEST_CASE("the order of the training images depends on the seed, and only on it") {
  const std::string d = wn::test::temp_dir("order");
  auto blob = [](uint32_t i, int) { return int(i % 256); };  // image i is filled with i
  wn::test::write_idx(d + "/train-images-idx3-ubyte", 40, blob);
  wn::test::write_idx(d + "/t10k-images-idx3-ubyte", 10, blob);
  auto data = open_dataset("mnist:" + d);
  std::vector<int64_t> idx(50);
  for (int64_t i = 0; i < 50; ++i) idx[i] = i;
  auto first = [&](uint64_t seed) {
    Loader l(*data, idx, 10, seed);
    std::vector<double> v;
    for (int b = 0; b < 3; ++b) {
      std::vector<double> x = l.next().to_vector();
      for (int i = 0; i < 10; ++i) v.push_back(std::round(x[i * 784] * 255));
    }
    return v;
  };
  CHECK(first(1) == first(1));
  CHECK(first(1) != first(2));
  fs::remove_all(d);
}

TEST_CASE("gan_step's inspection hooks see each network's gradients before its update and change nothing") {
  for (bool simultaneous : {false, true}) {
    INFO((simultaneous ? "simultaneous" : "alternating"));
    Gan a = small_gan(Norm::Batch, 5), b = small_gan(Norm::Batch, 5);
    GanOptimizers oa = make_optimizers(a, 1e-3, 1e-6), ob = make_optimizers(b, 1e-3, 1e-6);
    Tensor real = wn::test::rnd({4, 1, 8, 8}, 7, 0, 1);
    Generator ra(3), rb(3);
    int d_calls = 0, g_calls = 0;
    std::map<std::string, std::vector<double>> seen_d, seen_g;
    StepHooks h;
    h.retain_graphs = true;
    h.before_d_update = [&](const std::vector<Tensor>& losses) {
      ++d_calls;
      CHECK(losses.size() == 2);
      for (auto& [n, p] : b.D->named_parameters()) seen_d[n] = p.grad().to_vector();
    };
    h.before_g_update = [&](const std::vector<Tensor>& roots) {
      ++g_calls;
      CHECK(roots.size() == (simultaneous ? 2u : 1u));
      for (auto& [n, p] : b.G->named_parameters()) seen_g[n] = p.grad().to_vector();
    };
    for (int it = 0; it < 2; ++it) {
      const StepLosses la = gan_step(a, *oa.g, *oa.d, real, ra, false, simultaneous);
      const StepLosses lb = gan_step(b, *ob.g, *ob.d, real, rb, false, simultaneous, &h);
      CHECK(la.d_real == lb.d_real);
      CHECK(la.d_fake == lb.d_fake);
      CHECK(la.g == lb.g);
    }
    CHECK(d_calls == 2);
    CHECK(g_calls == 2);
    // The same trajectory, bit for bit, and the hooks saw the gradients the updates used
    // (each network's gradients stay in place after its update until the next step).
    for (auto net : {&Gan::G, &Gan::D}) {
      nn::Named pa = (a.*net)->named_parameters(), pb = (b.*net)->named_parameters();
      for (size_t i = 0; i < pa.size(); ++i) {
        CHECK(pa[i].second.to_vector() == pb[i].second.to_vector());
        const auto& seen = net == &Gan::G ? seen_g : seen_d;
        CHECK(seen.at(pb[i].first) == pb[i].second.grad().to_vector());
      }
    }
  }
}
