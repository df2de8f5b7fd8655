// The gradient-flow trace (`--trace-grads N`): the same training with and without it, its
// rows at the traced iterations, and quantities that must hold (WN gradients orthogonal
// to v, BN shares in [0, 1], real update ratios).
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>

#include "app_helpers.h"
#include "gan/grad_trace.h"
#include "nn/checkpoint.h"

using namespace wn;
using namespace wn::gan;
namespace fs = std::filesystem;

namespace {

TrainConfig traced_config(const std::string& data, const std::string& out, Norm norm, int64_t trace) {
  TrainConfig c = wn::test::tiny_config(data, out, 4, 8, 4, 10, 5);
  c.model.norm = norm;
  c.iters = 10;
  c.trace_grads = trace;
  return c;
}

void train(const TrainConfig& c, bool resume = false) {
  Trainer t(c, resume);
  t.log = [](const std::string&) {};
  REQUIRE(t.run());
}

// metrics.csv without its seconds column.
std::vector<std::string> losses(const std::string& run) {
  std::vector<std::string> out;
  for (const MetricsRow& r : read_metrics(run + "/metrics.csv"))
    out.push_back(fmt::format("{} {:.9g} {:.9g} {:.9g}", r.iteration, r.d_real, r.d_fake, r.g_loss));
  return out;
}

}  // namespace

TEST_CASE("--trace-grads changes nothing in training and traces iteration 1 and every N, per step and layer") {
  const std::string d = wn::test::temp_dir("trace");
  const std::string data =
      wn::test::write_mnist(d, 60, 10, [](uint32_t i, int p) { return (p * 7 + int(i) * 13) % 256; });
  for (Norm norm : {Norm::Batch, Norm::Weight}) {
    INFO(norm_name(norm));
    const std::string plain = d + "/plain_" + norm_name(norm), traced = d + "/traced_" + norm_name(norm);
    train(traced_config(data, plain, norm, 0));
    train(traced_config(data, traced, norm, 5));
    CHECK(!fs::exists(plain + "/grad_trace.csv"));
    // The same losses and the same weights and optimizer state, bit for bit.
    CHECK(losses(plain) == losses(traced));
    nn::TensorFile a = nn::load_safetensors(plain + "/checkpoints/last.safetensors"),
                   b = nn::load_safetensors(traced + "/checkpoints/last.safetensors");
    REQUIRE(a.tensors.size() == b.tensors.size());
    for (auto& [name, t] : a.tensors) CHECK(t.to_vector() == b.get(name).to_vector());

    const std::vector<TraceRow> rows = read_trace(traced + "/grad_trace.csv");
    std::set<int64_t> its;
    std::map<std::string, std::vector<double>> by;  // "step layer quantity" -> values
    for (const TraceRow& r : rows) {
      its.insert(r.iteration);
      by[r.step + " " + r.layer + " " + r.quantity].push_back(r.value);
    }
    CHECK(its == std::set<int64_t>{1, 5, 10});
    // Both steps, each network's own layers, every kind of quantity.
    REQUIRE(by.count("D D.level0.conv grad_norm:weight"));
    REQUIRE(by.count("G G.level0.conv grad_norm:weight"));
    CHECK(by.count("D G.level0.conv grad_norm:weight") == 0);
    CHECK(by["D D.level0.conv grad_norm:weight"].size() == 3);
    for (double u : by["G G.level1.conv update_ratio:weight"]) CHECK(u > 0);
    CHECK(by.count("G G.level1.act act_std"));
    CHECK(by.count("D D.level0.act mean:slope"));
    if (norm == Norm::Weight) {
      // WN: dL/dv is orthogonal to v (per unit, hence over the whole tensor).
      for (const char* k : {"D D.level0.conv cos_grad:weight", "G G.level1.conv cos_grad:weight",
                            "G G.level1.conv wn_max_abs_cos"})
        for (double c : by.at(k)) CHECK(std::fabs(c) < 1e-3);
      CHECK(by.count("G G.level1.act mean:shift"));
      CHECK(by.count("D D.final.conv mean:scale"));  // the affine last layer
      // dL/dw of the effective weight is traced beside dL/dv and differs from it (w = v / ||v||).
      for (const char* l : {"D D.level0.conv ", "G G.level1.conv ", "G G.initial.linear "}) {
        INFO(l);
        const std::vector<double>& dv = by.at(std::string(l) + "grad_norm:weight");
        const std::vector<double>& dw = by.at(std::string(l) + "grad_norm_effective:weight");
        REQUIRE(dw.size() == 3);
        for (size_t i = 0; i < 3; ++i) CHECK(std::fabs(dw[i] - dv[i]) > 1e-3 * dv[i]);
      }
      // The first layer of G starts at 0.01 of the usual scale: eps counts there, not elsewhere.
      CHECK(by.at("G G.initial.linear wn_eps_share_max")[0] > 1e-3);
      CHECK(by.at("G G.level1.conv wn_eps_share_max")[0] < 1e-4);
    } else {
      for (const char* k : {"D D.level1.bn bn_mean_share", "G G.level1.bn bn_xhat_share"})
        for (double s : by.at(k)) CHECK((s >= 0 && s <= 1));
      // A conv followed by BN is scale-invariant per output channel too, so its gradient
      // is orthogonal to its weight, as WN's; the output layer, without BN, is not.
      double bn_conv = 0, out_conv = 0;
      for (double c : by.at("G G.level1.conv cos_grad:weight")) bn_conv = std::max(bn_conv, std::fabs(c));
      for (double c : by.at("G G.level0.conv cos_grad:weight")) out_conv = std::max(out_conv, std::fabs(c));
      CHECK(bn_conv < 1e-3);
      CHECK(out_conv > 1e-3);
      // Plain layers: the effective weight is the weight, dL/dw is dL/dW (the same number).
      for (const char* l : {"D D.level0.conv ", "G G.level1.conv ", "G G.initial.linear "})
        CHECK(by.at(std::string(l) + "grad_norm_effective:weight") == by.at(std::string(l) + "grad_norm:weight"));
      CHECK(by.count("G G.level1.conv wn_eps_share_max") == 0);
    }
  }
  fs::remove_all(d);
}

TEST_CASE("a resumed traced run keeps the trace of the iterations its checkpoint holds, once") {
  const std::string d = wn::test::temp_dir("trace_resume");
  const std::string data =
      wn::test::write_mnist(d, 60, 10, [](uint32_t i, int p) { return (p * 3 + int(i) * 5) % 256; });
  TrainConfig c = traced_config(data, d + "/run", Norm::Weight, 5);
  c.test_every = 5;
  train(c);
  // Rows of iterations the checkpoint does not hold (a run that died after iteration 10).
  std::ofstream(d + "/run/grad_trace.csv", std::ios::app) << "12,D,D.level0.conv,grad_norm:weight,1\n";
  TrainConfig more = load_train_config(d + "/run");
  more.iters = 15;
  train(more, true);
  std::map<int64_t, int> rows_of;
  for (const TraceRow& r : read_trace(d + "/run/grad_trace.csv"))
    if (r.step == "D" && r.layer == "D.level0.conv" && r.quantity == "grad_norm:weight") ++rows_of[r.iteration];
  CHECK(rows_of == std::map<int64_t, int>{{1, 1}, {5, 1}, {10, 1}, {15, 1}});
  fs::remove_all(d);
}
