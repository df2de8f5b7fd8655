// The commands end to end on a tiny data set: eval, study (with its report), inspect and bench.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/backend/cpu/sgemm.h"
#include "apps/commands.h"
#include "eval/report.h"
#include "eval/run_eval.h"
#include "gan/split.h"
#include "app_helpers.h"
#include "nn/checkpoint.h"

using namespace wn;
namespace fs = std::filesystem;

namespace {
using wn::test::temp_dir;
using wn::test::run_cli;
// 140 images of horizontal stripes.
std::string make_data(const std::string& dir) {
  return wn::test::write_mnist(dir, 120, 20, [](uint32_t i, int p) { return int(((p / 28 + i) % 7) * 30); });
}
}  // namespace

TEST_CASE("train then eval: the final test writes per-image losses, pairs and a row of eval.csv") {
  std::string d = temp_dir("eval");
  std::string data = make_data(d);
  run_cli({"train", "--data", data, "--nf", "8", "--code", "16", "--batch", "8", "--iters", "20", "--test-every", "10",
           "--final-test", "30", "--no-final-test", "--out", d + "/run"});
  eval::EvalRequest r;
  r.run = d + "/run";
  r.n = 12;
  r.steps = 5;
  r.verbose = false;
  eval::EvalResult e = eval::evaluate_run(r);
  CHECK(e.n == 12);
  CHECK(e.iteration > 0);
  CHECK(std::isfinite(e.test_loss));
  CHECK(std::isfinite(e.train_loss));
  CHECK(fs::exists(e.pairs_png));
  std::ifstream per(e.per_image_csv);
  int lines = 0;
  for (std::string l; std::getline(per, l);) ++lines;
  CHECK(lines == 1 + 12 + 12);
  {
    // The rows are the split's first 12 final-test images and its first 12 training images.
    const gan::Split split = gan::load_split(d + "/run/split.json", 140);
    std::vector<int64_t> test_rows, train_rows;
    std::ifstream rows(e.per_image_csv);
    std::string l;
    std::getline(rows, l);
    while (std::getline(rows, l)) {
      const auto c1 = l.find(','), c2 = l.find(',', c1 + 1);
      (l.substr(c1 + 1, c2 - c1 - 1) == "train" ? train_rows : test_rows).push_back(std::stoll(l.substr(0, c1)));
    }
    CHECK(test_rows == std::vector<int64_t>(split.final_test.begin(), split.final_test.begin() + 12));
    CHECK(train_rows == std::vector<int64_t>(split.train.begin(), split.train.begin() + 12));
  }
  CHECK(eval::read_text(d + "/run/eval.csv").find("final_test_loss") != std::string::npos);
  r.checkpoint = d + "/nope.safetensors";
  CHECK_THROWS_WITH(eval::evaluate_run(r), doctest::Contains("no such checkpoint"));
  fs::remove_all(d);
}

TEST_CASE("the untrained yardstick is the run's own initial generator: at iteration 0 it scores what the run scores") {
  std::string d = temp_dir("untrained");
  std::string data = make_data(d);
  run_cli({"train", "--data", data, "--nf", "8", "--code", "16", "--batch", "8", "--iters", "0", "--seed", "5",
           "--final-test", "30", "--out", d + "/run"});
  eval::EvalRequest r;
  r.run = d + "/run";
  r.checkpoint = "last";
  r.n = 6;
  r.steps = 4;
  r.verbose = false;
  r.yardsticks = true;
  const eval::EvalResult e = eval::evaluate_run(r);
  CHECK(e.iteration == 0);
  CHECK(e.untrained_loss == e.test_loss);  // the same weights, the same images, the same steps
  CHECK(e.test_loss > 0);
  fs::remove_all(d);
}

TEST_CASE("train ends with the final test and a report; sample and split work from the command line") {
  std::string d = temp_dir("sample");
  std::string data = make_data(d);
  run_cli({"train", "--data", data, "--nf", "8", "--code", "16", "--batch", "8", "--iters", "10", "--test-every", "10",
           "--final-test", "30", "--final-n", "6", "--final-steps", "3", "--out", d + "/run"});
  CHECK(fs::exists(d + "/run/report/report.html"));
  CHECK(eval::read_text(d + "/run/report/results.md").find("# WN DCGAN on MNIST") != std::string::npos);
  CHECK(eval::read_text(d + "/run/eval.csv").find("best.safetensors,10,6,3,") != std::string::npos);
  // Raw generator output for given codes.
  Generator g(1);
  nn::save_safetensors(d + "/z.safetensors", {{"z", randn({3, 16}, g)}});
  run_cli({"sample", "--checkpoint", d + "/run/checkpoints/last.safetensors", "--z", d + "/z.safetensors", "--out",
           d + "/x.safetensors"});
  nn::TensorFile x = nn::load_safetensors(d + "/x.safetensors");
  CHECK(x.get("x").shape() == Shape{3, 1, 28, 28});
  run_cli({"sample", "--checkpoint", d + "/run/checkpoints/last.safetensors", "--n", "4", "--out", d + "/grid.png"});
  CHECK(fs::exists(d + "/grid.png"));
  // A run folder for --checkpoint (its best), and a JPEG by the extension.
  run_cli({"sample", "--checkpoint", d + "/run", "--n", "4", "--out", d + "/grid.jpg"});
  CHECK(eval::read_text(d + "/grid.jpg").substr(0, 2) == "\xff\xd8");
  nn::save_safetensors(d + "/empty_z.safetensors", {{"z", Tensor::zeros({0, 16})}});
  CHECK_THROWS_WITH(run_cli({"sample", "--checkpoint", d + "/run", "--z", d + "/empty_z.safetensors", "--out",
                             d + "/x3.safetensors"}),
                    doctest::Contains("with N >= 1"));
  nn::save_safetensors(d + "/bad_z.safetensors", {{"z", randn({3, 5}, g)}});
  CHECK_THROWS_WITH(run_cli({"sample", "--checkpoint", d + "/run/checkpoints/last.safetensors", "--z",
                             d + "/bad_z.safetensors", "--out", d + "/x2.safetensors"}),
                    doctest::Contains("'z' must be (N, 16)"));
  run_cli({"split", "--data", data, "--final-test", "40", "--running-test", "10", "--out", d + "/split.json"});
  std::string sp = eval::read_text(d + "/split.json");
  CHECK(sp.find("\"final_test\"") != std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("study: three variants on the same split, a results table, plots and a self-contained report") {
  std::string d = temp_dir("study");
  std::string data = make_data(d);
  run_cli({"study", "--data", data, "--nf", "8", "--code", "16", "--batch", "8", "--iters", "20", "--test-every", "10",
           "--sample-every", "5", "--final-test", "30", "--eval-n", "10", "--eval-steps", "3", "--seeds", "2",
           "--save-every", "10", "--out", d + "/study"});
  // --save-every keeps each run's numbered checkpoints (for evals after the study).
  for (const char* it : {"iter_0000010", "iter_0000020"})
    CHECK_MESSAGE(fs::exists(d + "/study/runs/batch_seed2/checkpoints/" + std::string(it) + ".safetensors"), it);
  std::string md = eval::read_text(d + "/study/results.md");
  CHECK(md.find("| vanilla |") != std::string::npos);
  CHECK(md.find("| BN |") != std::string::npos);
  CHECK(md.find("| WN |") != std::string::npos);
  CHECK(md.find(" ± ") != std::string::npos);  // two seeds: mean and spread
  CHECK(md.find("WN / BN = ") != std::string::npos);
  CHECK(md.find("0.005524") == std::string::npos);  // no per-model figures of the paper's (no source here has them)
  CHECK(md.find("WN's reconstruction loss is about 10% lower than BN's") != std::string::npos);  // the claim under test
  std::string csv = eval::read_text(d + "/study/results.csv");
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 1 + 6);
  std::string html = eval::read_text(d + "/study/report.html");
  CHECK(html.find("<table>") != std::string::npos);
  CHECK(html.find("data:image/png;base64,") != std::string::npos);
  CHECK(fs::exists(d + "/study/strips/weight_seed1.png"));
  if (std::system("command -v gnuplot >/dev/null 2>&1") == 0) CHECK(fs::exists(d + "/study/plots/running_test.png"));
  // Every model of a seed used that seed's split.
  CHECK(eval::read_text(d + "/study/runs/none_seed2/split.json") == eval::read_text(d + "/study/runs/weight_seed2/split.json"));
  // The paper's figures, with captions naming checkpoints and images.
  for (const char* f : {"reconstructions_seed1.png", "fixed_code_seed2.png", "early_training_seed1.png"})
    CHECK_MESSAGE(fs::exists(d + "/study/figures/" + f), f);
  CHECK(html.find("no running test ran: vanilla at iteration") != std::string::npos);
  CHECK(md.find("first 30 final-test images") != std::string::npos);  // 200 asked, capped by the 30 there are
  // The first line names the best model; yardsticks on the same images; provenance.
  CHECK(md.find(": lowest reconstruction error ") != std::string::npos);
  {
    // The model it names has the lowest mean final test loss of results.csv.
    std::map<std::string, std::pair<double, int>> sums;
    std::istringstream rows(eval::read_text(d + "/study/results.csv"));
    std::string row;
    std::getline(rows, row);
    while (std::getline(rows, row)) {
      const auto c1 = row.find(','), c2 = row.find(',', c1 + 1), c3 = row.find(',', c2 + 1);
      auto& [sum, n] = sums[row.substr(0, c1)];
      sum += std::stod(row.substr(c2 + 1, c3 - c2 - 1));
      ++n;
    }
    std::string best;
    for (const auto& [m, v] : sums)
      if (best.empty() || v.first / v.second < sums[best].first / sums[best].second) best = m;
    CHECK(md.find(": lowest reconstruction error " + best + " (") != std::string::npos);
    // The claims paired by seed: each seed's ratios from results.csv's rows of that seed.
    std::map<std::string, double> loss;  // "model seed" -> final test loss
    std::istringstream again(eval::read_text(d + "/study/results.csv"));
    std::getline(again, row);
    while (std::getline(again, row)) {
      const auto c1 = row.find(','), c2 = row.find(',', c1 + 1), c3 = row.find(',', c2 + 1);
      loss[row.substr(0, c1) + " " + row.substr(c1 + 1, c2 - c1 - 1)] = std::stod(row.substr(c2 + 1, c3 - c2 - 1));
    }
    CHECK(md.find("## The claims, paired by seed") != std::string::npos);
    CHECK(md.find("| seed | WN / BN | WN / vanilla |") != std::string::npos);
    for (const char* seed : {"1", "2"})
      CHECK_MESSAGE(md.find(fmt::format("| {} | {:.3f} | {:.3f} |", seed, loss[fmt::format("WN {}", seed)] / loss[fmt::format("BN {}", seed)],
                                        loss[fmt::format("WN {}", seed)] / loss[fmt::format("vanilla {}", seed)])) != std::string::npos,
                    seed);
    const double geo = std::sqrt(loss["WN 1"] / loss["BN 1"] * (loss["WN 2"] / loss["BN 2"]));
    CHECK(md.find(fmt::format("WN / BN = {:.3f} (95% interval ", geo)) != std::string::npos);
    CHECK((md.find("This study **supports** it") != std::string::npos || md.find("This study **contradicts** it") != std::string::npos ||
           md.find("This study **cannot decide** it at 2 seeds") != std::string::npos));
    CHECK(html.find("<h2>The claims, paired by seed</h2>") != std::string::npos);
  }
  CHECK(md.find("the mean training image (no model) scores 0.") != std::string::npos);
  CHECK(md.find("untrained generator (same measure)") != std::string::npos);
  CHECK(md.find("| CPU GEMM kernel |") != std::string::npos);
  CHECK(md.find("| command |") != std::string::npos);
  CHECK(html.find("Where these numbers came from") != std::string::npos);
  CHECK(html.find("`") == std::string::npos);  // no Markdown inside the HTML
  CHECK(nlohmann::json::parse(eval::read_text(d + "/study/study.json"))["weight_seed1"]["untrained_loss"].is_number());
  // The same study again is refused; --resume keeps every finished run (nothing retrained).
  const std::vector<std::string> again = {"study", "--data", data, "--nf", "8", "--code", "16", "--batch", "8",
                                          "--iters", "20", "--test-every", "10", "--sample-every", "5", "--final-test",
                                          "30", "--eval-n", "10", "--eval-steps", "3", "--seeds", "2",
                                          "--save-every", "10", "--out", d + "/study"};
  CHECK_THROWS_WITH(run_cli(again), doctest::Contains("holds a study already"));
  const std::string before = eval::read_text(d + "/study/runs/batch_seed1/checkpoints/last.safetensors");
  std::vector<std::string> resume = again;
  resume.push_back("--resume");
  run_cli(resume);
  CHECK(eval::read_text(d + "/study/runs/batch_seed1/checkpoints/last.safetensors") == before);
  CHECK(eval::read_text(d + "/study/results.csv") == csv);
  // An interrupted run (dropped from study.json, its checkpoint at iteration 10) resumes to 20.
  nlohmann::json state = nlohmann::json::parse(eval::read_text(d + "/study/study.json"));
  state.erase("weight_seed2");
  std::ofstream(d + "/study/study.json") << state.dump();
  // The folder form, as train takes it: --resume STUDY (here without --out).
  std::vector<std::string> longer(resume.begin(), resume.end() - 3);
  longer[10] = "30";  // --iters 30
  *(std::find(longer.begin(), longer.end(), std::string("--save-every")) + 1) = "25";  // may change on resume
  longer.push_back("--resume");
  longer.push_back(d + "/study");
  run_cli(longer);
  nn::TensorFile f = nn::load_safetensors(d + "/study/runs/weight_seed2/checkpoints/last.safetensors");
  CHECK(f.metadata.at("iteration") == "30");
  // Resumed with the study's new --save-every 25, not the run's 10.
  CHECK(fs::exists(d + "/study/runs/weight_seed2/checkpoints/iter_0000025.safetensors"));
  CHECK(!fs::exists(d + "/study/runs/weight_seed2/checkpoints/iter_0000030.safetensors"));
  CHECK(nlohmann::json::parse(eval::read_text(d + "/study/study.json")).contains("weight_seed2"));
  fs::remove_all(d);
}

TEST_CASE("inspect: one step per variant, the tapes of both steps as DOT") {
  std::string d = temp_dir("inspect");
  std::string data = make_data(d);
  run_cli({"inspect", "--data", data, "--nf", "8", "--code", "16", "--batch", "4", "--compare", "none,batch,weight",
           "--out", d + "/insp"});
  std::string dot = eval::read_text(d + "/insp/tape_dcgan_weight_G.dot");
  CHECK(dot.find("conv_transpose2d\\nG.level1.conv") != std::string::npos);
  CHECK(dot.find("|grad|") != std::string::npos);
  for (const char* norm : {"none", "batch", "weight"})
    for (const char* step : {"D", "G"}) CHECK(fs::exists(fmt::format("{}/insp/tape_dcgan_{}_{}.dot", d, norm, step)));
  fs::remove_all(d);
}

TEST_CASE("bench: iterations with their FLOPs and profile, reconstruction steps and scaling, as JSON") {
  std::string d = temp_dir("bench");
  run_cli({"bench", "--what", "iteration", "--profile", "--norms", "none,weight", "--image-size", "28", "--channels",
           "1", "--nf", "8", "--batch", "4", "--repeat", "1", "--json", d + "/it.json"});
  nlohmann::json it = nlohmann::json::parse(eval::read_text(d + "/it.json"));
  REQUIRE(it["iterations"].size() == 2);
  for (auto& r : it["iterations"]) {
    CHECK(r["seconds"].get<double>() > 0);
    // D 1->8->16 convs, the final conv and G's linear and transposed convs: FLOPs > 0.
    CHECK(r["gflop"].get<double>() > 0);
    CHECK(r["profile"].size() > 5);
  }
  // Both variants do the same convolutions and products.
  CHECK(it["iterations"][0]["gflop"].get<double>() == doctest::Approx(it["iterations"][1]["gflop"].get<double>()));
  run_cli({"bench", "--what", "recon", "--norms", "batch", "--image-size", "28", "--channels", "1", "--nf", "8",
           "--batch", "3", "--repeat", "1", "--recon-steps", "2", "--conv-paths", "--sgemm-kernels", "--json",
           d + "/recon.json"});
  nlohmann::json rc = nlohmann::json::parse(eval::read_text(d + "/recon.json"));
  REQUIRE(rc["recon"].size() == 1);
  // --conv-paths: the 8 DCGAN convolutions' 3 kernels on both paths (where the own SGEMM runs).
  CHECK(rc["conv_paths"].size() == (own_sgemm_supported() ? 24u : 0u));
  for (auto& r : rc["conv_paths"]) {
    CHECK(r["im2col_s"].get<double>() > 0);
    CHECK(r["implicit_s"].get<double>() > 0);
  }
  // --sgemm-kernels: the same on the AVX2 and AVX-512 kernels (where the CPU has AVX-512F).
  const bool avx512 = own_sgemm_supported() && sgemm_kernel_supported(SgemmKernel::Avx512);
  CHECK(rc["sgemm_kernels"].size() == (avx512 ? 24u : 0u));
  for (auto& r : rc["sgemm_kernels"]) {
    CHECK(r["avx2_s"].get<double>() > 0);
    CHECK(r["avx512_s"].get<double>() > 0);
  }
  CHECK(rc["recon"][0]["gflop"].get<double>() > 0);
  // Per image, a reconstruction step (G forward and data gradient, no weight gradients,
  // no D) is less than a third of a training iteration's work.
  CHECK(rc["recon"][0]["gflop"].get<double>() / 3 < it["iterations"][0]["gflop"].get<double>() / 4 / 3);
  run_cli({"bench", "--what", "scaling", "--norms", "none", "--image-size", "16", "--channels", "1", "--nf", "4",
           "--batch", "2", "--repeat", "1", "--json", d + "/scaling.json"});
  nlohmann::json sc = nlohmann::json::parse(eval::read_text(d + "/scaling.json"));
  CHECK(sc["scaling"].size() == 1 + 5 + 2);  // the SGEMM ceiling, 5 batch sizes, 2 image sizes
  CHECK_THROWS(run_cli({"bench", "--what", "everything"}));
}
