#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "gan/trainer.h"
#include "app_helpers.h"
#include "nn/checkpoint.h"

using namespace wn;
using namespace wn::gan;
namespace fs = std::filesystem;

namespace {
using wn::test::temp_dir;
// A small IDX data set: blobs at varying places.
std::string make_data(const std::string& dir, uint32_t n_train, uint32_t n_test) {
  auto blob = [](uint32_t i, int p) {
    const int x = p % 28, y = p / 28, cx = 6 + int(i * 7 % 16), cy = 6 + int(i * 11 % 16);
    return (x - cx) * (x - cx) + (y - cy) * (y - cy) < 30 ? 220 : 10;
  };
  wn::test::write_idx(dir + "/train-images-idx3-ubyte", n_train, blob);
  wn::test::write_idx(dir + "/t10k-images-idx3-ubyte", n_test, blob);
  return "mnist:" + dir;
}
TrainConfig tiny(const std::string& data, const std::string& out, Norm norm = Norm::Batch) {
  TrainConfig c = wn::test::tiny_config(data, out, 8, 16, 8, 20, 10);
  c.model.norm = norm;
  c.sample_every = 50;
  c.test_every = 50;
  c.samples = 4;
  return c;
}
// Trains a new run of c without progress lines; returns what Trainer::run returns.
bool train_quietly(const TrainConfig& c) {
  Trainer t(c, false);
  t.log = [](const std::string&) {};
  return t.run();
}
std::string read_bytes(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
}  // namespace

TEST_CASE("100 iterations + resume + 100 iterations equal 200 straight iterations, bit for bit") {
  std::string d = temp_dir("resume");
  std::string data = make_data(d, 200, 20);
  for (Norm norm : {Norm::Batch, Norm::Weight}) {
    TrainConfig straight = tiny(data, d + "/straight"), split = tiny(data, d + "/split");
    straight.model.norm = split.model.norm = norm;
    straight.iters = 200;
    split.iters = 100;
    auto quiet = [](const std::string&) {};
    {
      Trainer t(straight, false);
      t.log = quiet;
      CHECK(t.run());
    }
    {
      Trainer t(split, false);
      t.log = quiet;
      CHECK(t.run());
    }
    TrainConfig more = load_train_config(d + "/split");
    more.iters = 200;
    {
      Trainer t(more, true);
      t.log = quiet;
      CHECK(t.iteration() == 100);
      CHECK(t.run());
    }
    nn::TensorFile a = nn::load_safetensors(d + "/straight/checkpoints/last.safetensors");
    nn::TensorFile b = nn::load_safetensors(d + "/split/checkpoints/last.safetensors");
    REQUIRE(a.tensors.size() == b.tensors.size());
    size_t differing = 0;
    for (size_t i = 0; i < a.tensors.size(); ++i) {
      CHECK(a.tensors[i].first == b.tensors[i].first);
      if (std::memcmp(a.tensors[i].second.raw(), b.tensors[i].second.raw(), a.tensors[i].second.nbytes()) != 0)
        ++differing;
    }
    CHECK(differing == 0);
    CHECK(a.metadata.at("iteration") == "200");
    CHECK(a.metadata.at("rng") == b.metadata.at("rng"));
    // The metrics of both runs agree row by row too (but for the timing column).
    std::ifstream ma(d + "/straight/metrics.csv"), mb(d + "/split/metrics.csv");
    std::string la, lb;
    int rows = 0;
    while (std::getline(ma, la) && std::getline(mb, lb)) {
      auto strip = [](const std::string& s) {
        auto a = s.find(',', s.find(',', s.find(',', s.find(',') + 1) + 1) + 1);
        return s.substr(0, a);
      };
      CHECK(strip(la) == strip(lb));
      ++rows;
    }
    CHECK(rows == 201);
    fs::remove_all(d + "/straight");
    fs::remove_all(d + "/split");
  }
  fs::remove_all(d);
}

TEST_CASE("the run folder holds config, split, metrics, samples and checkpoints") {
  std::string d = temp_dir("folder");
  TrainConfig c = tiny(make_data(d, 100, 20), d + "/run", Norm::Weight);
  c.iters = 50;
  Trainer t(c, false);
  t.log = [](const std::string&) {};
  int tests = 0;
  t.running_test = [&](nn::Module&, const Tensor& imgs) {
    ++tests;
    CHECK(imgs.shape() == Shape{10, 1, 28, 28});
    return 0.5;
  };
  CHECK(t.run());
  CHECK(tests == 1);
  for (const char* f : {"config.json", "split.json", "metrics.csv", "samples/iter_0000000.png", "samples/iter_0000050.png",
                        "checkpoints/last.safetensors", "checkpoints/best.safetensors"})
    CHECK_MESSAGE(fs::exists(d + "/run/" + f), f);
  std::string m = read_bytes(d + "/run/metrics.csv");
  CHECK(m.rfind("iteration,d_real,d_fake,g_loss,seconds,running_test\n1,", 0) == 0);
  CHECK(m.find("\n50,") != std::string::npos);
  CHECK(m.find(",0.5\n") != std::string::npos);
  Gan g = load_gan_from_checkpoint(d + "/run/checkpoints/best.safetensors");
  CHECK(g.config.describe() == t.config().model.describe());
  fs::remove_all(d);
}

TEST_CASE("a NaN loss stops training naming the iteration, and the last good checkpoint stays intact") {
  std::string d = temp_dir("nan");
  TrainConfig c = tiny(make_data(d, 100, 20), d + "/run");
  c.iters = 50;
  CHECK(train_quietly(c));
  const std::string last = d + "/run/checkpoints/last.safetensors", before = read_bytes(last);
  TrainConfig more = load_train_config(d + "/run");
  more.iters = 100;
  Trainer t(more, true);
  t.log = [](const std::string&) {};
  // Poison one of G's weights.
  Tensor w = t.gan().G->named_parameters()[0].second;
  w.data<float>()[0] = NAN;
  CHECK_THROWS_WITH_AS(t.run(), doctest::Contains("training diverged at iteration 51"), DivergedError);
  CHECK(read_bytes(last) == before);
  fs::remove_all(d);
}

TEST_CASE("SIGINT saves 'last' and stops cleanly") {
  std::string d = temp_dir("sigint");
  TrainConfig c = tiny(make_data(d, 100, 20), d + "/run");
  c.iters = 1000;
  c.log_every = 1;
  Trainer t(c, false);
  int lines = 0;
  t.log = [&](const std::string&) {
    if (++lines == 7) std::raise(SIGINT);
  };
  CHECK_FALSE(t.run());
  nn::TensorFile f = nn::load_safetensors(d + "/run/checkpoints/last.safetensors");
  CHECK(f.metadata.at("iteration") == "7");
  fs::remove_all(d);
}

TEST_CASE("bad runs fail before training") {
  std::string d = temp_dir("bad");
  std::string data = make_data(d, 100, 20);
  CHECK_THROWS_WITH(Trainer(tiny(data, "/proc/wngan_run"), false), doctest::Contains("cannot write the run folder /proc/wngan_run"));
  CHECK_THROWS_WITH(Trainer(tiny("mnist:" + d + "/missing", d + "/run"), false), doctest::Contains("not a folder"));
  CHECK_THROWS_WITH(parse_loss("hinge"), doctest::Contains("unknown loss 'hinge'"));
  CHECK_THROWS_WITH(load_train_config(d + "/nothing"), doctest::Contains("cannot open"));
  fs::remove_all(d);
}

TEST_CASE("a checkpoint of another architecture or image size is refused with a clear error") {
  std::string d = temp_dir("arch");
  TrainConfig c = tiny(make_data(d, 100, 20), d + "/run");
  c.iters = 2;
  CHECK(train_quietly(c));
  TrainConfig other = tiny(make_data(d, 100, 20), d + "/other");
  other.model.nf = 16;
  Trainer t(other, false);
  CHECK_THROWS_WITH_AS(t.load_checkpoint(d + "/run/checkpoints/last.safetensors"),
                       doctest::Contains("the checkpoint holds BN DCGAN (--norm batch), 1x28x28 images, code 16, nf 8,"), nn::CheckpointError);
  Generator gen(1);
  Gan small = dcgan(Norm::Batch, 1, 32, 32, 8, 16, 0, gen);
  CHECK_THROWS_WITH_AS(nn::assign_named(small.G->state(), nn::load_safetensors(d + "/run/checkpoints/last.safetensors"), "", "G."),
                       doctest::Contains("mismatch"), nn::CheckpointError);
  fs::remove_all(d);
}

TEST_CASE("the seed reaches the initial weights, the split and the data order; the same seed repeats them") {
  const std::string d = temp_dir("seeds");
  const std::string data = make_data(d, 60, 20);
  auto first_state = [&](uint64_t seed, const std::string& name, bool select_on_train) {
    TrainConfig c = wn::test::tiny_config(data, d + "/" + name, 4, 8, 4, 10, 5);
    c.seed = seed;
    if (select_on_train) c.select_on = "train";
    c.iters = 1;
    Trainer t(c, false);
    std::vector<double> w;
    for (auto& [n, p] : t.gan().G->named_parameters()) {
      const auto v = p.to_vector();
      w.insert(w.end(), v.begin(), v.end());
    }
    const Split s = t.split();
    // The data order: the run's first batches are those of a loader seeded with the run's seed.
    std::vector<double> batches;
    Loader own(t.data(), s.train, c.batch, seed);
    for (int i = 0; i < 3; ++i) {
      const std::vector<double> b = t.loader().next().to_vector();
      CHECK(b == own.next().to_vector());
      batches.insert(batches.end(), b.begin(), b.end());
    }
    return std::make_tuple(w, s.final_test, s.running_test, s.train, batches);
  };
  const auto [w2, f2, r2, t2, b2] = first_state(2, "a", false);
  const auto [w2b, f2b, r2b, t2b, b2b] = first_state(2, "b", false);
  const auto [w3, f3, r3, t3, b3] = first_state(3, "c", false);
  CHECK(w2 == w2b);  // the same seed repeats the initial weights, the split and the data order
  CHECK(f2 == f2b);
  CHECK(b2 == b2b);
  CHECK(w2 != w3);  // another seed changes them
  CHECK(f2 != f3);
  CHECK(b2 != b3);
  // --select-on train: the running test is drawn from the training images, disjoint from the final test.
  const auto [wt, ft, rt, tt, bt] = first_state(2, "d", true);
  for (int64_t i : rt) CHECK(std::find(ft.begin(), ft.end(), i) == ft.end());
  fs::remove_all(d);
}

TEST_CASE("--lr, --rms-eps, --batch, --loss and --protocol reach the trainer's step: it equals gan_step called with the values the test names") {
  const std::string d = temp_dir("step_options");
  const std::string data = make_data(d, 60, 20);
  struct Variant {
    const char* name;
    double lr, eps;
    int64_t batch;
    Loss loss;
    Protocol protocol;
  };
  const Variant base{"default", 1e-4, 1e-6, 8, Loss::BCE, Protocol::Alternating};
  std::vector<Variant> variants = {base};
  for (Variant v : {Variant{"lr", 3e-3, 1e-6, 8, Loss::BCE, Protocol::Alternating},
                    Variant{"rms-eps", 1e-4, 0.5, 8, Loss::BCE, Protocol::Alternating},
                    Variant{"batch", 1e-4, 1e-6, 5, Loss::BCE, Protocol::Alternating},
                    Variant{"loss", 1e-4, 1e-6, 8, Loss::LS, Protocol::Alternating},
                    Variant{"protocol", 1e-4, 1e-6, 8, Loss::BCE, Protocol::Simultaneous}})
    variants.push_back(v);
  std::vector<std::vector<double>> after;
  for (const Variant& v : variants) {
    INFO(v.name);
    TrainConfig c = tiny(data, d + "/" + v.name, Norm::Weight);
    c.lr = v.lr;
    c.rms_eps = v.eps;
    c.batch = v.batch;
    c.loss = v.loss;
    c.protocol = v.protocol;
    Trainer t(c, false);
    t.log = [](const std::string&) {};
    // The reference: the run's starting point (weights and random state, from a checkpoint)
    // stepped by gan_step with this variant's numbers, not the run's config.
    t.save_checkpoint(d + "/start.safetensors");
    const nn::TensorFile start = nn::load_safetensors(d + "/start.safetensors");
    Gan ref = gan_from_checkpoint(start);
    GanOptimizers opt = make_optimizers(ref, v.lr, v.eps);
    Generator rng;
    rng.set_state(start.metadata.at("rng"));
    const Tensor real = t.loader().next();
    CHECK(real.dim(0) == v.batch);
    t.step(real);
    gan_step(ref, *opt.g, *opt.d, real, rng, v.loss == Loss::LS, v.protocol == Protocol::Simultaneous);
    std::vector<double> mine, want;
    for (auto* pair : {&t.gan(), &ref})
      for (nn::Module* m : {pair->G.get(), pair->D.get()})
        for (auto& [n, p] : m->named_parameters()) {
          const auto x = p.to_vector();
          (pair == &ref ? want : mine).insert((pair == &ref ? want : mine).end(), x.begin(), x.end());
        }
    CHECK(mine == want);
    after.push_back(mine);
  }
  // Each option changed the step (against the defaults).
  for (size_t i = 1; i < variants.size(); ++i) CHECK_MESSAGE(after[i] != after[0], variants[i].name);
  fs::remove_all(d);
}
