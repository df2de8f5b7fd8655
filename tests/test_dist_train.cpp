// `mpirun -np 2 wngan train|study` against one process (MPI builds; skipped otherwise):
// the same losses and parameters over 20 iterations (vanilla, WN, BN with --sync-bn), BN
// without --sync-bn against a one-process reference written here whose BN sees each half
// batch, a 1-rank run resumed on 2 ranks, a failing rank, and a batch that does not divide.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <filesystem>

#include <fmt/format.h>

#include "app_helpers.h"
#include "engine/autograd.h"
#include "engine/dist/comm.h"
#include "engine/ops/loss.h"
#include "engine/ops/shape.h"
#include "eval/study.h"
#include "gan/loader.h"
#include "gan/run_config.h"
#include "gan/run_dir.h"
#include "gan/split.h"
#include "nn/checkpoint.h"

using namespace wn;
namespace fs = std::filesystem;

namespace {

struct Ran {
  int rc = 0;
  std::string out;
  double seconds = 0;
};

// Runs a shell command line, its stdout and stderr captured.
Ran shell(const std::string& cmd) {
  const std::string log = test::temp_dir("dist_log") + "/out.txt";
  const auto t0 = std::chrono::steady_clock::now();
  const int st = std::system((cmd + " > '" + log + "' 2>&1").c_str());
  Ran r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  std::ifstream f(log);
  std::stringstream ss;
  ss << f.rdbuf();
  r.out = ss.str();
  return r;
}

// Whether this build can start ranks; a message when it cannot.
bool can_mpirun() {
  if (dist::built_with_mpi() && std::string(WNGAN_MPIRUN).size() > 0) return true;
  MESSAGE("skipped: this build has no MPI (-Dmpi=disabled) or no mpirun");
  return false;
}

// `wngan ARGS` on np ranks (np 0: without mpirun), on the default GEMM (the own SGEMM where
// the CPU has AVX2).
Ran wngan(int np, const std::string& args, const std::string& env = "") {
  const std::string bin = WNGAN_BIN;
  if (np == 0) return shell(env + " '" + bin + "' " + args);
  return shell(env + " WNGAN_DIST_TIMEOUT=120 '" + std::string(WNGAN_MPIRUN) +
               "' --allow-run-as-root --oversubscribe -np " + std::to_string(np) + " '" + bin + "' " + args);
}

// A small data set shared by the tests of this file: hashed pixels. (Images made of a linear
// pattern of i and p put exact ties into the convolutions: a sum that is exactly 0 in one
// order of the batch and 1e-9 in another takes the other side of an activation's kink, and
// the runs part by 1e-5 within 5 iterations. With hashed pixels 2 ranks and 1 agree to 1e-7
// over 20 iterations on the own SGEMM and on Eigen's alike.)
const std::string& data() {
  static const std::string d = test::write_mnist(test::temp_dir("dist_data"), 400, 60, [](uint32_t i, int p) {
    uint32_t h = i * 2654435761u + uint32_t(p) * 40503u + uint32_t(p / 28) * 9973u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    return int(h % 256);
  });
  return d;
}

// The run every equivalence compares: a tiny DCGAN, 20 iterations, a running test at 10 and 20.
std::string train_args(const std::string& norm, const std::string& out, int64_t iters = 20, int64_t batch = 16,
                       const std::string& final_test = "--no-final-test") {
  return fmt::format("train --data {} --norm {} --nf 8 --code 16 --batch {} --iters {} --test-every 10 --test-steps 5 "
                     "--final-test 40 --sample-every 0 {} --threads 1 --out {}",
                     data(), norm, batch, iters, final_test, out);
}

// The final test of the equivalence runs: 9 images, so that 2 ranks take 4 and 5, and the
// 9 shown reconstructions come from both.
const char* const kFinalTest = "--final-n 9 --final-steps 5";

// Two runs' final tests (kFinalTest with the best checkpoint) agree: the same images in
// the per-image losses, each loss, both means of eval.csv and the shown reconstructions
// to tol relative (the reconstructions to tol of their largest value).
void check_same_final_test(const std::string& a, const std::string& b, double tol) {
  auto lines = [](const std::string& path) {
    std::vector<std::string> v;
    std::ifstream f(path);
    for (std::string line; std::getline(f, line);) v.push_back(line);
    return v;
  };
  auto rel = [](double x, double y) { return std::fabs(x - y) / std::max(std::fabs(y), 1e-30); };
  const gan::RunDir ra(a), rb(b);
  const auto pa = lines(ra.eval_file("best_9images_5steps", "per_image.csv")), pb = lines(rb.eval_file("best_9images_5steps", "per_image.csv"));
  REQUIRE(pa.size() == 1 + 9 + 9);  // header, 9 final-test and 9 training images
  REQUIRE(pb.size() == pa.size());
  double worst = 0;
  for (size_t i = 1; i < pa.size(); ++i) {
    const size_t ca = pa[i].rfind(','), cb = pb[i].rfind(',');
    REQUIRE(ca != std::string::npos);
    CHECK(pa[i].substr(0, ca) == pb[i].substr(0, cb));  // image index and set
    worst = std::max(worst, rel(std::stod(pa[i].substr(ca + 1)), std::stod(pb[i].substr(cb + 1))));
  }
  MESSAGE("final test " << a << " vs " << b << ": per-image losses, worst relative difference " << worst);
  CHECK(worst <= tol);
  const auto ea = lines(ra.eval_table()), eb = lines(rb.eval_table());
  REQUIRE(ea.size() == 2);
  REQUIRE(eb.size() == 2);
  auto cells = [](const std::string& line) {
    std::vector<std::string> v;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, ',');) v.push_back(c);
    return v;
  };
  const auto header = cells(ea[0]), xa = cells(ea[1]), xb = cells(eb[1]);
  REQUIRE(xa.size() == header.size());
  REQUIRE(xb.size() == header.size());
  int means = 0;
  for (size_t j = 0; j < header.size(); ++j)
    if (header[j] == "final_test_loss" || header[j] == "train_loss") {
      MESSAGE(header[j] << ": " << xa[j] << " vs " << xb[j]);
      CHECK(rel(std::stod(xa[j]), std::stod(xb[j])) <= tol);
      ++means;
    }
  CHECK(means == 2);
  const nn::TensorFile fa = nn::load_safetensors(ra.eval_file("best_9images_5steps", "first.safetensors")),
                       fb = nn::load_safetensors(rb.eval_file("best_9images_5steps", "first.safetensors"));
  for (const char* name : {"targets", "reconstructions"}) {
    const auto x = fa.get(name).to_vector(), y = fb.get(name).to_vector();
    REQUIRE(x.size() == y.size());
    REQUIRE(x.size() == 9 * 28 * 28);
    double d = 0, m = 0;
    for (size_t i = 0; i < x.size(); ++i) d = std::max(d, std::fabs(x[i] - y[i])), m = std::max(m, std::fabs(y[i]));
    MESSAGE(std::string(name) << ": largest difference " << d << " (largest value " << m << ")");
    CHECK(d <= tol * m);
  }
}

// |a - b| <= tol |b| for every loss and running test of two metrics.csv, from iteration `from`.
void check_same_losses(const std::string& a, const std::string& b, double tol, int64_t from = 1) {
  const auto ra = gan::read_metrics(a + "/metrics.csv"), rb = gan::read_metrics(b + "/metrics.csv");
  REQUIRE(ra.size() == rb.size());
  REQUIRE(ra.size() > 0);
  double worst = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    if (ra[i].iteration < from) continue;
    for (auto [x, y] : {std::pair{ra[i].d_real, rb[i].d_real}, {ra[i].d_fake, rb[i].d_fake}, {ra[i].g_loss, rb[i].g_loss},
                        {ra[i].running_test, rb[i].running_test}})
      worst = std::max(worst, std::fabs(x - y) / std::max(std::fabs(y), 1e-30));
  }
  INFO(a << " vs " << b << ": worst relative loss difference " << worst);
  CHECK(worst <= tol);
  MESSAGE("losses " << a << " vs " << b << ": worst relative difference " << worst);
}

// Whether a tensor is the bias of a layer that batch norm follows (G.level1.conv.bias
// beside G.level1.bn): BN removes it, so its exact gradient is 0 and what it gets is
// roundoff, which RMSProp scales up to steps of about lr whatever their size. Such a bias
// wanders by up to lr per iteration in any run; two runs that sum in another order can
// only agree on it to iterations x lr.
bool bias_before_bn(const nn::TensorFile& f, const std::string& name) {
  const std::string suffix = ".bias";
  if (name.size() < suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
  const std::string layer = name.substr(0, name.size() - suffix.size());
  const size_t dot = layer.rfind('.');
  return dot != std::string::npos && layer.substr(dot + 1) != "bn" && f.has(layer.substr(0, dot) + ".bn.weight");
}

// The relative difference ||a - b|| / ||b|| of a parameter, worst over every parameter
// of G and D (with only, those it names) of two checkpoints. Batch norm's running
// statistics are buffers, not parameters: they follow the biases before them (below).
// Biases before batch norm are held to 2 x 20 x lr instead (bias_before_bn).
double param_difference(const std::string& ca, const std::string& cb, const nn::Named* only = nullptr) {
  const nn::TensorFile fa = nn::load_safetensors(ca), fb = nn::load_safetensors(cb);
  double worst = 0;
  int n = 0;
  std::string worst_name;
  for (const auto& [name, t] : fa.tensors) {
    if (name.rfind("G.", 0) != 0 && name.rfind("D.", 0) != 0) continue;
    if (name.find(".running_") != std::string::npos) continue;
    if (only && std::none_of(only->begin(), only->end(), [&](const auto& p) { return p.first == name; })) continue;
    const auto x = t.to_vector(), y = fb.get(name).to_vector();
    REQUIRE(x.size() == y.size());
    double d = 0, m = 0, d2 = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      d = std::max(d, std::fabs(x[i] - y[i]));
      d2 += (x[i] - y[i]) * (x[i] - y[i]);
      m += y[i] * y[i];
    }
    if (bias_before_bn(fa, name)) {
      MESSAGE(name << " (a bias before batch norm; roundoff drives it): largest difference " << d);
      CHECK(d <= 2 * 20 * 1e-4);
      continue;
    }
    const double rel = std::sqrt(d2 / std::max(m, 1e-60));
    if (rel > worst) worst = rel, worst_name = name;
    ++n;
  }
  MESSAGE("worst tensor " << worst_name << ": " << worst);
  CHECK(n > 4);
  return worst;
}

std::string last(const std::string& run) { return gan::RunDir(run).checkpoint("last"); }

}  // namespace

TEST_CASE("dist train: 2 ranks give 1 process's losses and parameters (vanilla, WN, BN with --sync-bn)") {
  if (!can_mpirun()) return;
  const std::string d = test::temp_dir("dist_equal");
  for (const std::string norm : {"none", "weight", "batch --sync-bn"}) {
    const std::string tag = norm.substr(0, norm.find(' '));
    // The WN runs end with the final test, its images split over the ranks.
    const std::string final_test = tag == "weight" ? kFinalTest : "--no-final-test";
    const Ran one = wngan(0, train_args(norm, d + "/one_" + tag, 20, 16, final_test));
    REQUIRE_MESSAGE(one.rc == 0, one.out);
    const Ran two = wngan(2, train_args(norm, d + "/two_" + tag, 20, 16, final_test));
    REQUIRE_MESSAGE(two.rc == 0, two.out);
    CHECK(two.out.find("data-parallel over 2 ranks") != std::string::npos);
    check_same_losses(d + "/two_" + tag, d + "/one_" + tag, 1e-5);
    const double p = param_difference(last(d + "/two_" + tag), last(d + "/one_" + tag));
    MESSAGE(norm << ": parameters after 20 iterations, worst relative difference " << p);
    CHECK(p <= 1e-5);
    if (tag == "weight") {
      CHECK(two.out.find("(rank 0's part; 2 ranks)") != std::string::npos);  // the final test was split
      CHECK(fs::exists(d + "/two_weight/report/report.html"));
      // The split final test against one process on the same checkpoint (a copy of the run
      // tested by `wngan eval`): only the order of sums differs.
      fs::copy(d + "/two_weight", d + "/two_weight_eval", fs::copy_options::recursive);
      fs::remove_all(d + "/two_weight_eval/eval");
      fs::remove(d + "/two_weight_eval/eval.csv");
      const Ran ev = wngan(0, "eval " + d + "/two_weight_eval --checkpoint best --n 9 --steps 5");
      REQUIRE_MESSAGE(ev.rc == 0, ev.out);
      check_same_final_test(d + "/two_weight", d + "/two_weight_eval", 1e-6);
      // And against the one-process run, whose weights differ by the training's roundoff.
      check_same_final_test(d + "/two_weight", d + "/one_weight", 1e-5);
    }
  }
  // The same comparison tells batch statistics apart: BN on each rank's half is another run.
  const Ran split_bn = wngan(2, train_args("batch", d + "/two_batch_local"));
  REQUIRE_MESSAGE(split_bn.rc == 0, split_bn.out);
  CHECK(param_difference(last(d + "/two_batch_local"), last(d + "/one_batch")) > 1e-3);
}

TEST_CASE("dist train: BN without --sync-bn equals one process whose BN sees each half batch") {
  if (!can_mpirun()) return;
  const std::string d = test::temp_dir("dist_bn_local");
  const Ran two = wngan(2, train_args("batch", d + "/two"));
  REQUIRE_MESSAGE(two.rc == 0, two.out);
  // The reference: the alternating step written out with each half batch through G and D
  // separately, the halves' gradients averaged (the seeds and streams of gan/trainer.cpp).
  const gan::TrainConfig c = gan::load_train_config(d + "/two");
  auto data_set = gan::open_dataset(c.data);
  const gan::Split split = gan::load_split(d + "/two/split.json", data_set->size());
  Generator init(c.seed), rng(c.seed * 7919 + 11);
  gan::Gan g = gan::build_gan(c.model, init);
  gan::GanOptimizers opt = gan::make_optimizers(g, c.lr, c.rms_eps);
  gan::Loader loader(*data_set, split.train, c.batch, c.seed);
  const int64_t half = c.batch / 2, code = c.model.code;
  auto bce = [](const Tensor& logits, double target) {
    return bce_with_logits(logits, Tensor::full(logits.shape(), target, logits.dtype()));
  };
  auto trainable = [](nn::Module& m, bool on) {
    for (auto& [n, p] : m.named_parameters()) Tensor(p).set_requires_grad(on);
  };
  std::vector<gan::StepLosses> ref;
  for (int it = 0; it < 20; ++it) {
    Tensor real = loader.next();
    gan::StepLosses l;
    opt.d->zero_grad();
    Tensor z = randn({c.batch, code}, rng, 1.0);
    for (int h = 0; h < 2; ++h) {
      Tensor fake;
      {
        NoGradGuard ng;
        fake = (*g.G)(slice(z, h * half, (h + 1) * half));
      }
      Tensor lr = bce((*g.D)(slice(real, h * half, (h + 1) * half)), 1.0);
      backward(lr * 0.5);
      Tensor lf = bce((*g.D)(fake), 0.0);
      backward(lf * 0.5);
      l.d_real += lr.item() / 2;
      l.d_fake += lf.item() / 2;
    }
    opt.d->step();
    opt.g->zero_grad();
    trainable(*g.D, false);
    Tensor z2 = randn({c.batch, code}, rng, 1.0);
    for (int h = 0; h < 2; ++h) {
      Tensor lg = bce((*g.D)((*g.G)(slice(z2, h * half, (h + 1) * half))), 1.0);
      backward(lg * 0.5);
      l.g += lg.item() / 2;
    }
    trainable(*g.D, true);
    opt.g->step();
    ref.push_back(l);
  }
  const auto rows = gan::read_metrics(d + "/two/metrics.csv");
  REQUIRE(rows.size() == 20);
  double worst = 0;
  for (size_t i = 0; i < 20; ++i)
    for (auto [x, y] : {std::pair{rows[i].d_real, ref[i].d_real}, {rows[i].d_fake, ref[i].d_fake}, {rows[i].g_loss, ref[i].g}})
      worst = std::max(worst, std::fabs(x - y) / std::fabs(y));
  MESSAGE("BN per rank vs the half-batch reference: worst relative loss difference " << worst);
  CHECK(worst <= 1e-5);
  const std::string ref_ckpt = d + "/reference.safetensors";
  nn::Named state = g.G->named_parameters();
  for (auto& e : g.D->named_parameters()) state.push_back(e);
  nn::save_safetensors(ref_ckpt, state, {});
  const double p = param_difference(last(d + "/two"), ref_ckpt, &state);
  MESSAGE("BN per rank vs the half-batch reference: parameters' worst relative difference " << p);
  CHECK(p <= 1e-5);
}

TEST_CASE("dist train: a 1-rank run resumed on 2 ranks continues its trajectory") {
  if (!can_mpirun()) return;
  const std::string d = test::temp_dir("dist_resume");
  REQUIRE(wngan(0, train_args("weight", d + "/straight")).rc == 0);
  REQUIRE(wngan(0, train_args("weight", d + "/resumed", 10)).rc == 0);
  const Ran r = wngan(2, "train --resume " + d + "/resumed --iters 20 --no-final-test --threads 1");
  REQUIRE_MESSAGE(r.rc == 0, r.out);
  check_same_losses(d + "/resumed", d + "/straight", 1e-5);
  const double p = param_difference(last(d + "/resumed"), last(d + "/straight"));
  MESSAGE("resumed on 2 ranks: parameters' worst relative difference " << p);
  CHECK(p <= 1e-5);
}

TEST_CASE("dist train: a rank that fails stops the others within 60 s, naming it; rank 0's last checkpoint loads") {
  if (!can_mpirun()) return;
  const std::string d = test::temp_dir("dist_fail");
  const Ran r = wngan(2, train_args("weight", d + "/run"), "WNGAN_FAIL_AT=1:15");
  INFO(r.out);
  CHECK(r.rc != 0);
  CHECK(r.out.find("rank 1 failed: failure injected at iteration 15") != std::string::npos);
  CHECK(r.seconds < 60);
  std::map<std::string, std::string> meta;
  gan::Gan g = gan::load_gan_from_checkpoint(last(d + "/run"), &meta);
  CHECK(meta.at("iteration") == "10");
  CHECK(g.G->num_parameters() > 0);
}

TEST_CASE("dist train: the global batch must divide over the ranks, and the error says so") {
  if (!can_mpirun()) return;
  const std::string d = test::temp_dir("dist_batch");
  const Ran r = wngan(2, train_args("weight", d + "/run", 20, 15));
  CHECK(r.rc != 0);
  CHECK_MESSAGE(r.out.find("--batch 15 is not divisible by the 2 ranks") != std::string::npos, r.out);
  CHECK(r.seconds < 60);
}

namespace {

// `wngan study` of a vanilla and a WN DCGAN, 20 iterations each, into out.
std::string study_args(const std::string& out) {
  return fmt::format("study --data {} --models none,weight --nf 8 --code 16 --batch 16 --iters 20 --test-every 10 "
                     "--test-steps 5 --final-test 40 --final-n 8 --final-steps 5 --sample-every 0 --threads 1 --out {}",
                     data(), out);
}

// results.csv as rows of cells (the header first).
std::vector<std::vector<std::string>> csv_rows(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

// Two results.csv agree: the same rows, text cells equal, numbers to tol relative (the
// training time, column train_seconds, aside).
void check_same_results(const std::string& a, const std::string& b, double tol) {
  const auto ra = csv_rows(a), rb = csv_rows(b);
  REQUIRE(ra.size() == rb.size());
  REQUIRE(ra.size() >= 3);
  REQUIRE(ra[0] == rb[0]);
  double worst = 0;
  for (size_t i = 1; i < ra.size(); ++i) {
    REQUIRE(ra[i].size() == ra[0].size());
    REQUIRE(rb[i].size() == ra[0].size());
    for (size_t j = 0; j < ra[0].size(); ++j) {
      if (ra[0][j] == "train_seconds") continue;
      char* end = nullptr;
      const double x = std::strtod(ra[i][j].c_str(), &end);
      if (*end != '\0' || ra[i][j].empty()) {
        CHECK(ra[i][j] == rb[i][j]);
        continue;
      }
      const double y = std::strtod(rb[i][j].c_str(), nullptr);
      worst = std::max(worst, std::fabs(x - y) / std::max(std::fabs(y), 1e-30));
    }
  }
  MESSAGE(a << " vs " << b << ": worst relative difference " << worst);
  CHECK(worst <= tol);
}

}  // namespace

TEST_CASE("dist study: 2 ranks (a run each, or both on every run) write 1 process's results.csv") {
  if (!can_mpirun()) return;
  const std::string d = test::temp_dir("dist_study");
  const Ran one = wngan(0, study_args(d + "/one"));
  REQUIRE_MESSAGE(one.rc == 0, one.out);
  const Ran two = wngan(2, study_args(d + "/two"));
  REQUIRE_MESSAGE(two.rc == 0, two.out);
  check_same_results(d + "/two/results.csv", d + "/one/results.csv", 1e-5);
  const Ran pair = wngan(2, study_args(d + "/pair") + " --ranks-per-run 2");
  REQUIRE_MESSAGE(pair.rc == 0, pair.out);
  check_same_results(d + "/pair/results.csv", d + "/one/results.csv", 1e-5);
}

TEST_CASE("dist study: a run that fails on one rank is reported as failed and the others finish") {
  if (!can_mpirun()) return;
  const std::string d = test::temp_dir("dist_study_fail");
  const Ran r = wngan(2, study_args(d + "/s"), "WNGAN_FAIL_AT=1:15");
  REQUIRE_MESSAGE(r.rc == 1, r.out);  // the study finishes, then says that a run failed
  CHECK(r.seconds < 120);
  const auto rows = csv_rows(d + "/s/results.csv");
  REQUIRE(rows.size() == 3);
  REQUIRE(rows[0].back() == "failed");
  CHECK(rows[1][0] == "vanilla");
  CHECK(rows[1].back() == "0");
  CHECK(rows[2][0] == "WN");  // rank 1's run
  CHECK(rows[2].back() == "1");
  CHECK(eval::read_text(d + "/s/results.md").find("rank 1 failed: failure injected at iteration 15") != std::string::npos);
}
