// What a user meets first, through the built program itself: the command list, the
// suggestions for a mistyped command or option, exit codes (2: usage, 1: failure), the
// presets, --version's fields, summary's default model, and a short run's report
// (headline, yardsticks, provenance, the running-test count, no .lock left behind).
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "app_helpers.h"
#include "engine/switches.h"
#include "eval/report.h"
#include "gan/data.h"
#include "gan/loader.h"
#include "gan/presets.h"
#include "gan/run_dir.h"
#include "gan/split.h"

namespace fs = std::filesystem;

namespace {

// The program under test: the build's, or WNGAN_TEST_BIN (to run these cases against
// another build, e.g. an older one, and see which fail there).
std::string bin() {
  const char* e = std::getenv("WNGAN_TEST_BIN");
  return e && *e ? e : WNGAN_BIN;
}

// `wngan ARGS` (a shell line); its exit code and its stdout and stderr together.
std::pair<int, std::string> wngan(const std::string& args) {
  static int count = 0;
  const std::string out = wn::test::temp_dir("cli") + "/out" + std::to_string(count++) + ".txt";
  const int rc = std::system((bin() + " " + args + " > '" + out + "' 2>&1 < /dev/null").c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc), wn::eval::read_text(out)};
}

// The same with an environment assignment before it ("NAME=value").
std::pair<int, std::string> wngan_env(const std::string& env, const std::string& args) {
  static int count = 0;
  const std::string out = wn::test::temp_dir("cli") + "/env" + std::to_string(count++) + ".txt";
  const int rc =
      std::system((env + " " + bin() + " " + args + " > '" + out + "' 2>&1 < /dev/null").c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc), wn::eval::read_text(out)};
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

int64_t count_of(const std::string& text, const std::string& part) {
  int64_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("wngan alone lists every command with one line each and exits 2") {
  REQUIRE_MESSAGE(fs::exists(WNGAN_BIN), "the wngan program is not built: " << WNGAN_BIN);
  const auto [rc, out] = wngan("");
  CHECK(rc == 2);
  for (const char* cmd : {"train", "study", "eval", "sample", "split", "summary", "presets", "inspect", "gradcheck", "bench"})
    CHECK_MESSAGE(has(out, std::string("\n  ") + cmd + " "), cmd);
  CHECK(has(out, "wngan help COMMAND"));
  const auto [rc_help, help] = wngan("help");
  CHECK(rc_help == 0);
  CHECK(has(help, "\n  train "));
}

TEST_CASE("usage errors exit 2 with the nearest name; failures exit 1") {
  const auto [rc1, o1] = wngan("help trian");
  CHECK(rc1 == 2);
  CHECK(has(o1, "unknown command 'trian' (did you mean 'train'?)"));
  const auto [rc2, o2] = wngan("train --iter 10");
  CHECK(rc2 == 2);
  CHECK(has(o2, "unknown option '--iter' (did you mean '--iters'?)"));
  CHECK(has(o2, "wngan help train"));
  const auto [rc3, o3] = wngan("study --seedz 3");
  CHECK(rc3 == 2);
  CHECK(has(o3, "did you mean '--seeds'?"));
  // A bad value (CLI11's check), a bad value found later (the option's parser), a bad combination.
  CHECK(wngan("train --batch 0").first == 2);
  const auto [rc4, o4] = wngan("train --crop 12y4 --iters 1");
  CHECK(rc4 == 2);
  CHECK(has(o4, "--crop '12y4'"));
  CHECK(wngan("train --resume somewhere --force").first == 2);
  CHECK(wngan("presets no-such-preset").first == 2);
  // A runtime failure: the run folder does not exist.
  const auto [rc5, o5] = wngan("eval " + wn::test::temp_dir("cli") + "/no-such-run");
  CHECK(rc5 == 1);
  CHECK(has(o5, "error"));
}

TEST_CASE("presets: one line each; presets NAME shows its options and their sources") {
  const auto [rc, out] = wngan("presets");
  CHECK(rc == 0);
  for (const auto& p : wn::gan::presets()) CHECK(count_of("\n" + out, "\n  " + p.name + " ") == 1);
  CHECK(count_of(out, "\n") <= int64_t(wn::gan::presets().size()) + 3);
  const auto [rc2, one] = wngan("presets celeba-dcgan");
  CHECK(rc2 == 0);
  for (const auto& o : wn::gan::find_preset("celeba-dcgan").options) CHECK(has(one, "--" + o.option));
  CHECK(has(one, "authors' README"));
  CHECK(has(one, "paper"));
}

TEST_CASE("--version names the commit, build, compiler, backends and the CPU GEMM kernel") {
  const auto [rc, out] = wngan("--version");
  CHECK(rc == 0);
  for (const char* field : {"wngan 0.", "commit: ", "build: ", "CUDA backend: ", "MPI: ", "NCCL: ", "CPU GEMM kernel: ",
                            "processor: "})
    CHECK_MESSAGE(has(out, field), field);
  CHECK(!has(out, "commit: unknown"));  // the build ran inside the git checkout
  CHECK((has(out, "GCC ") || has(out, "Clang ")));
}

TEST_CASE("summary with no options describes the model train trains with no options") {
  const auto [rc, out] = wngan("summary");
  CHECK(rc == 0);
  // train's defaults: the WN DCGAN on Fashion-MNIST's 1x28x28 images, two levels.
  CHECK(has(out, "WN DCGAN (--norm weight), 1x28x28 images, code 128, nf 64, 2 up/down-sampling layers"));
}

TEST_CASE("the running test's default interval gives a short run ten points and a long one every 1000") {
  CHECK(wn::gan::auto_test_every(2000) == 200);  // the main job: 10 running tests
  CHECK(wn::gan::auto_test_every(20) == 2);
  CHECK(wn::gan::auto_test_every(5) == 1);
  CHECK(wn::gan::auto_test_every(0) == 1);
  CHECK(wn::gan::auto_test_every(100000) == 1000);  // the paper's schedule
}

TEST_CASE("train --help groups its options and writes ranges legibly") {
  const auto [rc, out] = wngan("help train");
  CHECK(rc == 0);
  for (const char* g : {"Data:", "Model:", "Training:", "Evaluation:", "Output:", "Performance:"}) CHECK_MESSAGE(has(out, g), g);
  CHECK(!has(out, "1000000000000"));
  CHECK(has(out, "0: the data set's own"));
  CHECK(has(out, "--test-every INT:>= 0=auto"));
  CHECK(has(out, "vanilla, bn, wn and wn-affine are accepted too"));  // the aliases are listed
}

TEST_CASE("a short run: headline, yardsticks, provenance, 10 running tests, no .lock") {
  const std::string d = wn::test::temp_dir("cli_run");
  const std::string data = wn::test::write_mnist(d, 64, 24, [](uint32_t i, int p) { return (i * 37 + p * 11) % 256; });
  const std::string run = d + "/runs/new/run";  // its parents do not exist yet
  const auto [rc, out] = wngan(fmt::format(
      "train --data {} --nf 4 --code 4 --batch 8 --iters 20 --final-test 12 --final-n 12 --final-steps 4 --test-steps 2 "
      "--sample-every 10 --threads 1 --out '{}'",
      data, run));
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(!fs::exists(run + "/.lock"));
  // --test-every left out: --iters / 10, so ten points on the running test's curve.
  int64_t tests = 0;
  for (const auto& r : wn::gan::read_metrics(run + "/metrics.csv")) tests += r.running_test >= 0;
  CHECK(tests == 10);
  CHECK(has(out, "running test of 12 images every 2 iterations"));
  CHECK(has(out, "batch size 8"));
  const std::string html = wn::eval::read_text(run + "/report/report.html"), md = wn::eval::read_text(run + "/report/results.md");
  for (const std::string* page : {&html, &md}) {
    CHECK(has(*page, "WN DCGAN on MNIST"));
    CHECK(has(*page, "20 of the paper's 100,000 iterations, seed 1: reconstruction error "));
    CHECK(has(*page, "per pixel value on 12 held-out images (lower is better)"));
    CHECK(has(*page, "the untrained generator (this run's initial weights, the same reconstruction)"));
    CHECK(has(*page, "the mean training image as the guess for every image"));
    CHECK(has(*page, "Running test vs final test"));
    CHECK(has(*page, "--iters 20"));  // the command line
    CHECK(has(*page, "commit "));
    CHECK(has(*page, "CPU GEMM kernel"));
    CHECK(has(*page, "training time"));
    CHECK(has(*page, "model.nf"));  // the options in effect
    CHECK(!has(*page, "over seeds"));
    CHECK(!has(*page, "Table 2"));
  }
  CHECK(!has(html, "`"));  // no Markdown inside the HTML
  // The mean-image yardstick, computed here: the mean of the split's training images
  // against each of the first 12 final-test images, per value.
  auto ds = wn::gan::open_dataset(data);
  const wn::gan::Split split = wn::gan::load_split(run + "/split.json", ds->size());
  const std::vector<double> train = wn::gan::Loader::load(*ds, split.train).to_vector();
  std::vector<double> mean(784, 0.0);
  for (size_t i = 0; i < train.size(); ++i) mean[i % 784] += train[i] / double(split.train.size());
  const std::vector<int64_t> first(split.final_test.begin(), split.final_test.begin() + 12);
  const std::vector<double> test = wn::gan::Loader::load(*ds, first).to_vector();
  double loss = 0;
  for (size_t i = 0; i < test.size(); ++i) loss += (test[i] - mean[i % 784]) * (test[i] - mean[i % 784]) / (784.0 * 12);
  CHECK_MESSAGE(has(md, fmt::format("| {:.6f} |", loss)), loss);
  CHECK(has(md, run + "/split.json"));
  fs::remove_all(d);
}

TEST_CASE("environment switches: a bad value is a usage error naming it, before any work; docs/cli.md lists each") {
  const auto [rc, out] = wngan_env("WNGAN_DIST_TIMEOUT=x", "train --iters 1 --out " + wn::test::temp_dir("cli_sw") + "/r");
  CHECK(rc == 2);  // not SIGABRT (134)
  CHECK(has(out, "WNGAN_DIST_TIMEOUT='x': expected a number of seconds > 0"));
  CHECK(!fs::exists(wn::test::temp_dir("cli_sw") + "/r"));  // nothing was started
  for (const char* bad : {"WNGAN_CPU_GEMM=avx3", "WNGAN_CPU_CONV=fft", "WNGAN_CUDNN=yes", "WNGAN_NCCL=2",
                          "WNGAN_FAIL_AT=1", "WNGAN_DIST_TIMEOUT=-5"}) {
    const auto [rc2, out2] = wngan_env(bad, "summary");
    CHECK_MESSAGE(rc2 == 2, bad);
    CHECK_MESSAGE(has(out2, std::string(bad).substr(0, std::string(bad).find('=')) + "='"), bad);
  }
  CHECK(wngan_env("WNGAN_CPU_CONV=im2col", "summary").first == 0);
  const auto [rc3, ver] = wngan_env("WNGAN_CPU_CONV=im2col", "--version");
  CHECK(rc3 == 0);
  CHECK(has(ver, "environment switches set: WNGAN_CPU_CONV=im2col"));
  const std::string doc = wn::eval::read_text(std::string(WNGAN_SOURCE_DIR) + "/docs/cli.md");
  for (const auto& s : wn::switches()) CHECK_MESSAGE(has(doc, "| `" + s.name + "` |"), s.name);
}
