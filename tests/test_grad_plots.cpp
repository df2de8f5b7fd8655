// The gradient-flow pictures (eval/grad_plots): drawn from the runs' traces, their table
// and captions carry the trace's own numbers, and `inspect --run` finds a run's or a
// study's traces (or says that nothing was traced).
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include <fmt/format.h>

#include "app_helpers.h"
#include "eval/grad_plots.h"
#include "eval/report.h"
#include "gan/grad_trace.h"

using namespace wn;
using namespace wn::gan;
namespace fs = std::filesystem;

namespace {

// Trains a tiny traced run (10 iterations, traced at 1, 5 and 10).
void traced_run(const std::string& data, const std::string& out, Norm norm) {
  TrainConfig c = wn::test::tiny_config(data, out, 4, 8, 4, 10, 5);
  c.model.norm = norm;
  c.iters = 10;
  c.trace_grads = 5;
  Trainer t(c, false);
  t.log = [](const std::string&) {};
  REQUIRE(t.run());
}

// The trace's value of (layer, quantity) at iteration it, read from the layer's own step.
double trace_value(const std::string& run, const std::string& layer, const std::string& quantity, int64_t it) {
  for (const TraceRow& r : read_trace(run + "/grad_trace.csv"))
    if (r.iteration == it && r.layer == layer && r.quantity == quantity && r.step[0] == layer[0]) return r.value;
  return NAN;
}

bool is_png(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char m[8] = {};
  f.read(m, 8);
  return f.gcount() == 8 && std::string(m + 1, 3) == "PNG" && fs::file_size(path) > 2000;
}

}  // namespace

TEST_CASE("gradient-flow pictures: figures, captions and table drawn from the traces' own numbers") {
  const std::string d = wn::test::temp_dir("gradplots");
  const std::string data =
      wn::test::write_mnist(d, 60, 10, [](uint32_t i, int p) { return (p * 5 + int(i) * 11) % 256; });
  std::vector<eval::TracedRun> runs;
  for (Norm n : {Norm::None, Norm::Batch, Norm::Weight}) {
    const std::string run = d + "/runs/" + norm_name(n);
    traced_run(data, run, n);
    runs.push_back({norm_name(n), run});
  }
  const eval::GradFlowReport rep = eval::write_grad_flow(d + "/out", runs);
  // Gradient norms, the layer profile, cosines, update ratios and (a BN run is there) BN's shares.
  REQUIRE(rep.figures.size() == 5);
  const std::vector<std::string> names = {"grad_norm.png", "grad_profile.png", "cos.png", "update_ratio.png",
                                          "bn_shares.png"};
  for (size_t i = 0; i < names.size(); ++i) {
    CHECK(fs::path(rep.figures[i].png).filename() == names[i]);
    CHECK(rep.figures[i].caption.size() > 200);
    if (eval::have_gnuplot()) CHECK(is_png(rep.figures[i].png));
  }
  CHECK(rep.figures[1].caption.find("iterations 1, 5 and 10") != std::string::npos);

  // The table: the last common iteration, one column per model, each value the trace's.
  CHECK(rep.table_iteration == 10);
  CHECK(rep.models == std::vector<std::string>{"none", "batch", "weight"});
  REQUIRE(rep.table.size() >= 10);
  int compared = 0;
  for (const auto& row : rep.table) {
    REQUIRE(row.values.size() == 3);
    for (size_t m = 0; m < 3; ++m) {
      const double want = trace_value(runs[m].dir, row.layer, row.quantity, 10);
      INFO(row.layer << " " << row.quantity << " " << runs[m].model);
      if (std::isnan(want)) {
        CHECK(std::isnan(row.values[m]));
        continue;
      }
      CHECK(row.values[m] == want);
      // ...and the HTML shows it as printed.
      CHECK(rep.html.find(fmt::format("<td>{:.3g}</td>", want)) != std::string::npos);
      ++compared;
    }
  }
  CHECK(compared > 20);
  // Only linear and convolution layers (those with a cosine), G's before D's.
  CHECK(rep.table.front().layer.rfind("G.", 0) == 0);
  CHECK(rep.table.back().layer.rfind("D.", 0) == 0);
  for (const auto& row : rep.table) CHECK(row.layer.find(".act") == std::string::npos);

  // The cosine caption's figures: WN's largest |cos| and vanilla's smallest at iteration 10.
  double wn_max = 0, va_min = INFINITY;
  std::string wn_layer, va_layer;
  for (const TraceRow& r : read_trace(runs[2].dir + "/grad_trace.csv"))
    if (r.iteration == 10 && r.quantity == "cos_grad:weight" && r.step[0] == r.layer[0] && std::fabs(r.value) > wn_max)
      wn_max = std::fabs(r.value), wn_layer = r.layer;
  for (const TraceRow& r : read_trace(runs[0].dir + "/grad_trace.csv"))
    if (r.iteration == 10 && r.quantity == "cos_grad:weight" && r.step[0] == r.layer[0] && std::fabs(r.value) < va_min)
      va_min = std::fabs(r.value), va_layer = r.layer;
  CHECK(rep.figures[2].caption.find(fmt::format("WN's largest |cos| is {:.3g} ({})", wn_max, wn_layer)) !=
        std::string::npos);
  CHECK(rep.figures[2].caption.find(fmt::format("vanilla's smallest {:.3g} ({})", va_min, va_layer)) !=
        std::string::npos);
  // WN's gradients are orthogonal to v, plain layers' are not: the point of the picture (D's
  // layers; G's first WN layer starts with ||v|| small enough for eps to matter).
  for (const char* layer : {"D.level0.conv", "D.level1.conv", "D.final.conv"}) {
    INFO(layer);
    const double w = std::fabs(trace_value(runs[2].dir, layer, "cos_grad:weight", 10));
    CHECK(w < 1e-4);
    CHECK(std::fabs(trace_value(runs[0].dir, layer, "cos_grad:weight", 10)) > 100 * w);
  }

  // The data files gnuplot reads hold the same numbers: grad_norm_weight.dat, iteration 10.
  {
    std::ifstream f(d + "/out/grad_norm_weight.dat");
    std::string header, line, last;
    std::getline(f, header);
    while (std::getline(f, line)) last = line;
    std::istringstream ss(last);
    int64_t it = 0;
    double first_layer = 0;
    ss >> it >> first_layer;
    CHECK(it == 10);
    CHECK(first_layer == doctest::Approx(trace_value(runs[2].dir, "G.initial.linear", "grad_norm:weight", 10)).epsilon(1e-8));
  }

  SUBCASE("inspect --run renders a run's or a study's traces; nothing traced is an error naming the folder") {
    const std::string page = eval::write_grad_flow_page(runs[2].dir, d + "/one");
    CHECK(page == d + "/one/grad_flow.html");
    const std::string html = eval::read_text(page);
    CHECK(html.find("Gradient flow") != std::string::npos);
    CHECK(html.find("cos.png") != std::string::npos);
    CHECK(html.find("bn_shares.png") == std::string::npos);  // a WN run alone: no BN
    // A study folder: runs/*.
    const std::string all = eval::read_text(eval::write_grad_flow_page(d, d + "/all"));
    CHECK(all.find("bn_shares.png") != std::string::npos);
    // Not traced, not there.
    TrainConfig c = wn::test::tiny_config(data, d + "/plain", 4, 8, 4, 10, 5);
    c.iters = 2;
    Trainer t(c, false);
    t.log = [](const std::string&) {};
    REQUIRE(t.run());
    try {
      eval::write_grad_flow_page(d + "/plain", d + "/x");
      FAIL("expected an error");
    } catch (const std::runtime_error& e) {
      CHECK(std::string(e.what()).find("--trace-grads") != std::string::npos);
      CHECK(std::string(e.what()).find(d + "/plain") != std::string::npos);
    }
    CHECK_THROWS_WITH_AS(eval::write_grad_flow_page(d + "/nowhere", d + "/x"),
                         doctest::Contains("no such folder"), std::runtime_error);
    // Through the command: `wngan inspect --run` (default output RUN/grad_flow), and the
    // options of a step refused beside it.
    wn::test::run_cli({"inspect", "--run", runs[1].dir});
    CHECK(eval::read_text(runs[1].dir + "/grad_flow/grad_flow.html").find("bn_shares.png") != std::string::npos);
    CHECK(wn::test::cli_error({"inspect", "--run", runs[1].dir, "--compare", "none,weight"}).find("--compare belongs to "
                                                                                                  "inspecting a step") !=
          std::string::npos);
    CHECK(wn::test::cli_error({"inspect", "--run", d + "/plain"}).find("--trace-grads") != std::string::npos);
    CHECK(wn::test::cli_error({"inspect", "--run", runs[1].dir, "--seed", "3"}) ==
          "--run draws a recorded trace; --seed belongs to inspecting a step");
  }
}

TEST_CASE("the run report of `train --trace-grads` shows the gradient-flow section") {
  const std::string d = wn::test::temp_dir("gradreport");
  const std::string data =
      wn::test::write_mnist(d, 60, 10, [](uint32_t i, int p) { return (p * 3 + int(i) * 7) % 256; });
  wn::test::run_cli({"train", "--data", data, "--out", d + "/run", "--nf", "4",
                     "--code", "8", "--batch", "4", "--iters", "6", "--trace-grads", "3", "--test-every", "3",
                     "--test-steps", "2", "--final-test", "4", "--final-n", "4", "--final-steps",
                     "2", "--norm", "weight"});
  const std::string html = eval::read_text(d + "/run/report/report.html");
  CHECK(html.find("<h2>Gradient flow</h2>") != std::string::npos);
  CHECK(html.find(fmt::format("<td>{:.3g}</td>", trace_value(d + "/run", "D.final.conv", "grad_norm:weight", 6))) !=
        std::string::npos);
  CHECK(eval::read_text(d + "/run/report/results.md").find("## Gradient flow") != std::string::npos);
  // Without a trace the report has no such section.
  wn::test::run_cli({"train", "--data", data, "--out", d + "/plain", "--nf",
                     "4", "--code", "8", "--batch", "4", "--iters", "2", "--test-every", "2",
                     "--test-steps", "2", "--final-test", "4", "--final-n", "4", "--final-steps", "2"});
  CHECK(eval::read_text(d + "/plain/report/report.html").find("Gradient flow") == std::string::npos);
}
