// Presets and architecture defaults: what `--preset NAME` and `--arch resnet` set, that
// explicit options win, and that the README's table is the code's.
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "gan/presets.h"
#include "app_helpers.h"

using namespace wn;
namespace fs = std::filesystem;

namespace {
using wn::test::run_cli;
std::string make_data(const std::string& dir) {
  return wn::test::write_mnist(dir, 60, 20, [](uint32_t i, int p) { return int(((p / 28 + i) % 7) * 30); });
}
nlohmann::json config(const std::string& run) {
  std::ifstream f(run + "/config.json");
  return nlohmann::json::parse(f);
}
}  // namespace

TEST_CASE("a preset sets its options, and an explicit option overrides it") {
  const std::string d = wn::test::temp_dir("preset");
  const std::string data = make_data(d);
  run_cli({"train", "--preset", "fashion-mnist", "--data", data, "--iters", "2", "--final-test", "20", "--nf", "4",
           "--code", "8", "--no-final-test", "--out", d + "/run"});
  nlohmann::json c = config(d + "/run");
  CHECK(c["iters"] == 2);          // explicit
  CHECK(c["final_test"] == 20);    // explicit
  CHECK(c["model"]["nf"] == 4);    // explicit
  CHECK(c["test_every"] == 200);   // from the preset (as train without one: --iters 2000 / 10)
  CHECK(c["lr"].get<double>() == doctest::Approx(1e-4));
  CHECK(c["rms_eps"].get<double>() == doctest::Approx(1e-6));
  CHECK(c["protocol"] == "alternating");
  // Every option the preset names is one train or study has (none is silently lost).
  for (const auto& p : gan::presets())
    for (const auto& o : p.options) {
      CLI::App app;
      app::add_train(app);
      app::add_study(app);
      const bool known = app.get_subcommand("train")->get_option_no_throw("--" + o.option) ||
                         app.get_subcommand("study")->get_option_no_throw("--" + o.option);
      CHECK_MESSAGE(known, p.name << ": --" << o.option);
    }
  CHECK_THROWS_WITH(gan::find_preset("celeba"), doctest::Contains("celeba-dcgan, celeba-dcgan-code256"));
  fs::remove_all(d);
}

TEST_CASE("--arch resnet implies the authors' ResNet training unless told otherwise") {
  const std::string d = wn::test::temp_dir("archdef");
  const std::string data = make_data(d);
  const std::vector<std::string> base = {"train",      "--data",   data, "--arch", "resnet", "--features", "4,8",
                                         "--blocks",   "1",        "--code", "8", "--iters", "1", "--final-test",
                                         "20",         "--no-final-test"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = base;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  run_cli(with({"--out", d + "/a"}));
  nlohmann::json a = config(d + "/a");
  CHECK(a["lr"].get<double>() == doctest::Approx(2e-5));
  CHECK(a["rms_eps"].get<double>() == doctest::Approx(1e-8));
  CHECK(a["protocol"] == "simultaneous");
  run_cli(with({"--lr", "1e-3", "--protocol", "alternating", "--out", d + "/b"}));
  nlohmann::json b = config(d + "/b");
  CHECK(b["lr"].get<double>() == doctest::Approx(1e-3));
  CHECK(b["rms_eps"].get<double>() == doctest::Approx(1e-8));
  CHECK(b["protocol"] == "alternating");
  fs::remove_all(d);
}

TEST_CASE("docs/fidelity.md's preset table is the one the code applies") {
  std::ifstream f(std::string(WNGAN_SOURCE_DIR) + "/docs/fidelity.md");
  REQUIRE(f);
  const std::string readme((std::istreambuf_iterator<char>(f)), {});
  CHECK_MESSAGE(readme.find(gan::presets_markdown()) != std::string::npos,
                "docs/fidelity.md must hold the presets' table verbatim:\n"
                    << gan::presets_markdown());
}
