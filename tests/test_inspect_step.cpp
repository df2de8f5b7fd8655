// `wngan inspect` and the step inspection behind it (gan/inspect.h): the update shown is
// the real next update of a checkpoint's run (its RMSProp state restored), dL/dw of WN
// layers is the gradient of the step's own losses, the eps note, and the command's
// tables, JSON, CSV and coloured tapes agreeing with each other.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app_helpers.h"
#include "apps/inspect_table.h"
#include "engine/inspect.h"
#include "gan/inspect.h"
#include "gan/run_config.h"
#include "nn/checkpoint.h"
#include "nn/inspect.h"
#include "nn/weight_norm.h"

using namespace wn;
using namespace wn::gan;
namespace fs = std::filesystem;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// What `wngan ARGS...` prints on stdout.
std::string cli_output(const std::vector<std::string>& args) {
  const std::string path = wn::test::temp_dir("inspect_stdout") + "/out.txt";
  std::fflush(stdout);
  const int saved = ::dup(STDOUT_FILENO);
  FILE* f = std::fopen(path.c_str(), "w");
  REQUIRE(f);
  ::dup2(::fileno(f), STDOUT_FILENO);
  std::string error;
  try {
    wn::test::run_cli(args);
  } catch (const std::exception& e) {
    error = e.what();
  }
  std::fflush(stdout);
  ::dup2(saved, STDOUT_FILENO);
  ::close(saved);
  std::fclose(f);
  const std::string text = read_file(path);
  fs::remove_all(fs::path(path).parent_path());
  if (!error.empty()) FAIL("wngan failed: " << error << "\n" << text);
  return text;
}

// A tiny weight-normalized run of `iters` iterations on data, with lr 3e-4 and the LS loss.
TrainConfig tiny_run(const std::string& data, const std::string& out, int64_t iters) {
  TrainConfig c = wn::test::tiny_config(data, out, 4, 8, 4, 10, 5);
  c.model.norm = Norm::Weight;
  c.iters = iters;
  c.lr = 3e-4;
  c.loss = Loss::LS;
  Trainer t(c, false);
  t.log = [](const std::string&) {};
  REQUIRE(t.run());
  return t.config();
}

// ||after - before|| / ||before|| in double.
double ratio(const Tensor& before, const Tensor& after) {
  const std::vector<double> a = before.to_vector(), b = after.to_vector();
  double d = 0, w = 0;
  for (size_t i = 0; i < a.size(); ++i) d += (b[i] - a[i]) * (b[i] - a[i]), w += a[i] * a[i];
  return std::sqrt(d / w);
}

std::string data_set(const std::string& dir) {
  return wn::test::write_mnist(dir, 60, 10, [](uint32_t i, int p) { return (p * 5 + int(i) * 11) % 256; });
}

}  // namespace

TEST_CASE("inspect_step from a checkpoint with its RMSProp state restored: the update is the run's real next "
          "update, unlike a fresh optimizer's") {
  const std::string d = wn::test::temp_dir("inspect_resume");
  const std::string data = data_set(d);
  const TrainConfig cfg = tiny_run(data, d + "/run", 4);
  const nn::TensorFile f = nn::load_safetensors(d + "/run/checkpoints/last.safetensors");
  REQUIRE(has_optimizer_state(f));
  auto ds = open_dataset(data, cfg.model.height, cfg.model.width, cfg.model.channels);
  const Tensor real = inspect_batch(*ds, 4, 3);
  InspectSettings st;
  st.lr = cfg.lr;
  st.loss = Loss::LS;
  st.seed = 3;

  Gan g = gan_from_checkpoint(f);
  GanOptimizers opt = make_optimizers(g, st.lr, st.rms_eps);
  restore_optimizers(f, *opt.g, *opt.d);
  CHECK(opt.g->steps() == 4);
  const Inspection ins = inspect_step(g, opt, real, st);

  // The reference: the same checkpoint, the optimizer state copied by hand from the file,
  // one plain gan_step (no hooks) on the same batch and codes.
  Gan ref = gan_from_checkpoint(f);
  GanOptimizers ropt = make_optimizers(ref, st.lr, st.rms_eps);
  for (auto [prefix, o] : {std::pair{"optim.G.", ropt.g.get()}, std::pair{"optim.D.", ropt.d.get()}})
    for (auto& [name, t] : o->state()) Tensor(t).copy_from(f.get(prefix + name));
  ropt.g->set_steps(std::stoll(f.metadata.at("optim_G_steps")));
  ropt.d->set_steps(std::stoll(f.metadata.at("optim_D_steps")));
  nn::Named before;
  for (auto* net : {ref.G.get(), ref.D.get()})
    for (auto& [n, p] : net->named_parameters()) before.emplace_back(n, p.clone());
  Generator rng(st.seed);
  const StepLosses l = gan_step(ref, *ropt.g, *ropt.d, real, rng, true, false);
  CHECK(l.d_real == ins.losses.d_real);
  CHECK(l.g == ins.losses.g);

  // A fresh optimizer on the same checkpoint: the first step's size, not the run's.
  Gan fresh_gan = gan_from_checkpoint(f);
  GanOptimizers fresh_opt = make_optimizers(fresh_gan, st.lr, st.rms_eps);
  const Inspection fresh = inspect_step(fresh_gan, fresh_opt, real, st);

  nn::Named after = ref.G->named_parameters(), inspected = g.G->named_parameters();
  for (auto& e : ref.D->named_parameters()) after.push_back(e);
  for (auto& e : g.D->named_parameters()) inspected.push_back(e);
  int weights = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    const std::string& name = before[i].first;
    INFO(name);
    // The inspected step is the real step, bit for bit.
    CHECK(after[i].second.to_vector() == inspected[i].second.to_vector());
    const auto dot = name.rfind('.');
    if (name.substr(dot + 1) != "weight") continue;
    const std::string layer = name.substr(0, dot), step = name.substr(0, 1);
    const double shown = ins.value(step, layer, "update_ratio:weight");
    CHECK(shown == doctest::Approx(ratio(before[i].second, after[i].second)).epsilon(1e-5));  // float32 differences
    const double first = fresh.value(step, layer, "update_ratio:weight");
    CHECK(std::fabs(first - shown) > 0.1 * shown);
    ++weights;
  }
  CHECK(weights >= 8);
  fs::remove_all(d);
}

TEST_CASE("dL/dw of the step's WN layers is the gradient of that step's losses only (both protocols)") {
  const std::string d = wn::test::temp_dir("inspect_dw");
  const std::string data = data_set(d);
  auto ds = open_dataset(data);
  for (Protocol protocol : {Protocol::Alternating, Protocol::Simultaneous}) {
    INFO(std::string(protocol_name(protocol)));
    ModelConfig m;
    m.norm = Norm::Weight;
    m.channels = 1;
    m.height = m.width = 28;
    m.nf = 4;
    m.code = 8;
    Generator init(2);
    Gan g = build_gan(m, init);
    g.G->to(DType::F64);
    g.D->to(DType::F64);
    GanOptimizers opt = make_optimizers(g, 1e-4, 1e-6);
    StepInspector insp(g);
    StepHooks hooks = insp.begin(protocol);
    // After the inspector's hook: v's gradient must be dL/dw pulled back through
    // w = v / ||v|| (per unit u: (dL/dw_u - v_u (v_u . dL/dw_u) / n_u^2) / n_u), which
    // fails if w also held another loss's gradient (simultaneous: G's loss through D).
    int checked = 0;
    auto pullback_check = [&](nn::Module& net, const std::string& step) {
      for (const nn::EffectiveGrad& e : nn::effective_weight_grads(net, insp.effective_weights(step))) {
        if (!e.weight_normalized) continue;
        nn::WNLayer* wl = nullptr;
        net.apply([&](nn::Module& mod) {
          if (mod.name() == e.layer) wl = dynamic_cast<nn::WNLayer*>(&mod);
        });
        REQUIRE(wl);
        INFO(e.layer);
        REQUIRE(e.grad.defined());
        const std::vector<double> v = wl->weight.to_vector(), dv = wl->weight.grad().to_vector(),
                                  dw = e.grad.to_vector(), n = wl->norms(), sq = wl->squared_norms();
        const std::vector<double> gain = wl->scale.defined() ? wl->scale.to_vector() : std::vector<double>(n.size(), 1.0);
        const int64_t units = int64_t(n.size()), per = int64_t(v.size()) / units;
        // Output units are dim 0 (Linear, Conv2d) or dim 1 (ConvTranspose2d's (in, out, kh, kw)).
        const bool transposed = wl->type_name().rfind("WNConvTranspose2d", 0) == 0;
        const int64_t inner = transposed ? per / wl->weight.dim(0) : per;
        auto unit_of = [&](int64_t k) { return transposed ? (k / inner) % units : k / per; };
        std::vector<double> v_dw(units, 0), vv(units, 0);
        for (int64_t k = 0; k < int64_t(v.size()); ++k) v_dw[unit_of(k)] += v[k] * dw[k], vv[unit_of(k)] += v[k] * v[k];
        double err = 0, scale = 0;
        for (int64_t k = 0; k < int64_t(v.size()); ++k) {
          const int64_t u = unit_of(k);
          const double factor = sq[u] / vv[u];  // 1, or 1 / (stride_h stride_w) in transposed convolutions
          const double want = gain[u] * (dw[k] - factor * v[k] * v_dw[u] / (n[u] * n[u])) / n[u];
          err = std::max(err, std::fabs(want - dv[k]));
          scale = std::max(scale, std::fabs(dv[k]));
        }
        CHECK(err <= 1e-9 * scale);
        // The row is the norm of that gradient.
        double row = NAN;
        for (const StepRow& r : insp.rows())
          if (r.step == step && r.layer == e.layer && r.quantity == "grad_norm_effective:weight") row = r.value;
        CHECK(row == doctest::Approx(e.grad_norm).epsilon(1e-12));
        ++checked;
      }
    };
    StepHooks wrapped = hooks;
    wrapped.before_d_update = [&](const std::vector<Tensor>& losses) {
      hooks.before_d_update(losses);
      pullback_check(*g.D, "D");
    };
    wrapped.before_g_update = [&](const std::vector<Tensor>& roots) {
      hooks.before_g_update(roots);
      pullback_check(*g.G, "G");
    };
    Tensor real = inspect_batch(*ds, 3, 4).to(DType::F64);
    Generator rng(5);
    gan_step(g, *opt.g, *opt.d, real, rng, false, protocol == Protocol::Simultaneous, &wrapped);
    insp.end();
    CHECK(checked >= 5);
  }
  fs::remove_all(d);
}

TEST_CASE("the eps note: G.initial.linear of the WN DCGAN starts with ||v_u||^2 ~ 3e-5, where eps 1e-6 counts") {
  const std::string d = wn::test::temp_dir("inspect_eps");
  auto ds = open_dataset(data_set(d));
  for (Norm norm : {Norm::Weight, Norm::Batch}) {
    INFO(norm_name(norm));
    ModelConfig m;
    m.norm = norm;
    m.channels = 1;
    m.height = m.width = 28;
    m.nf = 4;
    m.code = 8;
    Generator init(2);
    Gan g = build_gan(m, init);
    GanOptimizers opt = make_optimizers(g, 1e-4, 1e-6);
    // eps / (||v_u||^2 + eps) by hand, from the weights the step starts from.
    double share = 0;
    if (norm == Norm::Weight) {
      Tensor v;
      for (auto& [n, p] : g.G->named_parameters())
        if (n == "G.initial.linear.weight") v = p.clone();
      REQUIRE(v.defined());
      const std::vector<double> x = v.to_vector();
      const int64_t in = v.dim(1);
      for (int64_t u = 0; u < v.dim(0); ++u) {
        double s = 0;
        for (int64_t i = 0; i < in; ++i) s += x[u * in + i] * x[u * in + i];
        share = std::max(share, 1e-6 / (s + 1e-6));
      }
    }
    const Inspection ins = inspect_step(g, opt, inspect_batch(*ds, 4, 1), InspectSettings{});
    if (norm == Norm::Weight) {
      CHECK(ins.value("G", "G.initial.linear", "wn_eps_share_max") == doctest::Approx(share).epsilon(1e-5));
      CHECK(share > kEpsShareNote);
      REQUIRE(ins.notes.size() == 1);
      CHECK(ins.notes[0].find("G step, G.initial.linear: eps 1e-06 inside the root is " +
                              fmt::format("{:.1e}", ins.value("G", "G.initial.linear", "wn_eps_share_max"))) == 0);
      // The other WN layers start at ||v_u||^2 ~ 1/3: no note, |cos| tiny.
      CHECK(ins.value("G", "G.level1.conv", "wn_eps_share_max") < 1e-4);
      CHECK(ins.value("G", "G.level1.conv", "wn_max_abs_cos") < 1e-4);
      CHECK(ins.value("G", "G.initial.linear", "wn_max_abs_cos") > 1e-3);
    } else {
      CHECK(ins.notes.empty());
      CHECK(std::isnan(ins.value("G", "G.initial.linear", "wn_eps_share_max")));
    }
  }
  fs::remove_all(d);
}

TEST_CASE("the fan-in-1 note: the ResNet D's first shortcut conv maps 1 channel to many, one weight per unit") {
  const std::string d = wn::test::temp_dir("inspect_fanin");
  auto ds = open_dataset(data_set(d));
  ModelConfig m = ModelConfig::of(Arch::ResNet, Norm::Weight, 1, 28, 28, 8);
  m.features = {4, 8};
  m.blocks = 1;
  Generator init(3);
  Gan g = build_gan(m, init);
  GanOptimizers opt = make_optimizers(g, 2e-5, 1e-8);
  InspectSettings st;
  st.protocol = Protocol::Simultaneous;
  const Inspection ins = inspect_step(g, opt, inspect_batch(*ds, 2, 1), st);
  const std::string layer = "D.level0.block0.shortcut.conv";
  CHECK(ins.value("D", layer, "wn_max_abs_cos") == doctest::Approx(1.0).epsilon(1e-5));
  bool noted = false;
  for (const std::string& n : ins.notes) noted = noted || n.rfind("D step, " + layer + ": each output unit has a single weight", 0) == 0;
  CHECK(noted);
  // Its |dL/dv| is ~0 beside |dL/dw|: only eps's part reaches v.
  CHECK(ins.value("D", layer, "grad_norm:weight") < 1e-5 * ins.value("D", layer, "grad_norm_effective:weight"));
  fs::remove_all(d);
}

namespace {
// The cells of the table line of a layer in inspect's output.
std::vector<std::string> table_cells(const std::string& out, const std::string& layer) {
  const auto at = out.find("\n  " + layer + " ");
  REQUIRE(at != std::string::npos);
  std::istringstream line(out.substr(at + 1, out.find('\n', at + 1) - at - 1));
  std::vector<std::string> cells;
  for (std::string c; line >> c;) cells.push_back(c);
  return cells;
}
}  // namespace

TEST_CASE("wngan inspect --checkpoint: the run's settings and RMSProp state; tables, JSON, CSV and tapes agree") {
  const std::string d = wn::test::temp_dir("inspect_cli");
  const std::string data = data_set(d);
  const TrainConfig cfg = tiny_run(data, d + "/run", 4);
  const std::string ckpt = d + "/run/checkpoints/last.safetensors";
  const std::string out = cli_output({"inspect", "--checkpoint", ckpt, "--batch", "4", "--seed", "3", "--out",
                                      d + "/insp", "--json", d + "/i.json", "--csv", d + "/i.csv"});
  CHECK(out.find("RMSProp state restored from the checkpoint (G: 4 steps, D: 4 steps)") != std::string::npos);
  CHECK(out.find("lr 0.0003, eps 1e-06, ls loss, alternating protocol (from " + d + "/run/config.json)") !=
        std::string::npos);
  CHECK(out.find("D step (first): a real batch") != std::string::npos);
  CHECK(out.find("G step (after D's): a fresh code batch") != std::string::npos);

  // The same step in the library, on the batch the command drew.
  const nn::TensorFile f = nn::load_safetensors(ckpt);
  Gan g = gan_from_checkpoint(f);
  GanOptimizers opt = make_optimizers(g, 3e-4, 1e-6);
  restore_optimizers(f, *opt.g, *opt.d);
  auto ds = open_dataset(data, cfg.model.height, cfg.model.width, cfg.model.channels);
  InspectSettings st;
  st.lr = 3e-4;
  st.loss = Loss::LS;
  st.seed = 3;
  const Inspection ins = inspect_step(g, opt, inspect_batch(*ds, 4, 3), st);

  const nlohmann::json j = nlohmann::json::parse(read_file(d + "/i.json"));
  CHECK(j["settings"]["lr"].get<double>() == 3e-4);
  CHECK(j["settings"]["loss"] == "ls");
  CHECK(j["settings"]["sources"]["lr"] == d + "/run/config.json");
  REQUIRE(j["variants"].size() == 1);
  const nlohmann::json& v = j["variants"][0];
  CHECK(v["losses"]["d_real"].get<double>() == ins.losses.d_real);
  std::map<std::string, nlohmann::json> layer_of;  // "step layer" -> its JSON
  for (const char* step : {"D", "G"})
    for (const auto& l : v["steps"][step]["layers"]) layer_of[std::string(step) + " " + l["layer"].get<std::string>()] = l;
  size_t rows = 0;
  for (const StepRow& r : ins.rows) {
    INFO(r.step << " " << r.layer << " " << r.quantity);
    const nlohmann::json& q = layer_of.at(r.step + " " + r.layer)["quantities"];
    REQUIRE(q.contains(r.quantity));
    CHECK(q[r.quantity].get<double>() == r.value);  // the same step: the same numbers, bit for bit
    ++rows;
  }
  CHECK(rows > 100);

  // The CSV: a header, then exactly those rows.
  std::istringstream csv(read_file(d + "/i.csv"));
  std::string line;
  std::getline(csv, line);
  CHECK(line == kInspectCsvHeader);
  size_t i = 0;
  for (; std::getline(csv, line); ++i) {
    REQUIRE(i < ins.rows.size());
    const StepRow& r = ins.rows[i];
    const std::vector<std::string> c = split_list(line, ',', true);
    REQUIRE(c.size() == 5);
    CHECK(c[0] == "weight");
    CHECK(c[1] + " " + c[2] + " " + c[3] == r.step + " " + r.layer + " " + r.quantity);
    CHECK(std::stod(c[4]) == r.value);
  }
  CHECK(i == ins.rows.size());

  // The tables show the same numbers, rounded.
  int lines = 0;
  for (const StepLayer& l : ins.layers) {
    INFO(l.layer);
    const std::vector<std::string> cells = table_cells(out, l.layer);
    REQUIRE(cells.size() == app::kInspectColumns.size());
    CHECK(cells[1] == l.type);
    const nlohmann::json& q = layer_of.at(l.step + " " + l.layer)["quantities"];
    for (size_t c = 2; c < cells.size(); ++c) {
      std::string name = app::kInspectColumns[c].quantity;
      if (name == "grad_norm:bias" && !q.contains(name)) name = "grad_norm:shift";  // TPReLU
      CHECK(cells[c] == app::inspect_cell(q.contains(name) ? q[name].get<double>() : NAN, app::kInspectColumns[c].quantity));
    }
    ++lines;
  }
  CHECK(lines >= 10);
  // Plain and WN layers side by side: D.level0.conv is WN (|dL/dv| != |dL/dw|).
  CHECK(ins.value("D", "D.level0.conv", "grad_norm:weight") != ins.value("D", "D.level0.conv", "grad_norm_effective:weight"));

  // Both tapes, coloured, with the legend; SVG where graphviz is installed.
  const bool graphviz = std::system("command -v dot >/dev/null 2>&1") == 0;
  for (const char* step : {"D", "G"}) {
    INFO(step);
    const std::string dot = read_file(fmt::format("{}/insp/tape_dcgan_weight_{}.dot", d, step));
    CHECK(dot.find("cluster_legend") != std::string::npos);
    CHECK(dot.find(step_description(step, Protocol::Alternating).substr(0, 12)) != std::string::npos);
    std::set<std::string> colours;
    for (const std::string& c : kDotPalette) {
      const std::string fill = "fillcolor=\"" + c + "\"";
      // Used by a node besides its legend entry.
      size_t n = 0;
      for (size_t p = dot.find(fill); p != std::string::npos; p = dot.find(fill, p + 1)) ++n;
      if (n > 1) colours.insert(c);
    }
    CHECK(colours.size() >= 3);
    if (graphviz) CHECK(fs::file_size(fmt::format("{}/insp/tape_dcgan_weight_{}.svg", d, step)) > 1000);
  }
  // The D step's tape holds both of D's losses: two BCE/MSE roots.
  const std::string dot_d = read_file(d + "/insp/tape_dcgan_weight_D.dot");
  size_t d_outs = 0;
  for (size_t p = dot_d.find("\\nD.final.conv"); p != std::string::npos; p = dot_d.find("\\nD.final.conv", p + 1)) ++d_outs;
  CHECK(d_outs == 2);
  fs::remove_all(d);
}

TEST_CASE("wngan inspect: a checkpoint without optimizer state says so; bad options are named") {
  const std::string d = wn::test::temp_dir("inspect_bare");
  const std::string data = data_set(d);
  tiny_run(data, d + "/run", 2);
  const nn::TensorFile f = nn::load_safetensors(d + "/run/checkpoints/last.safetensors");
  // G and D only (as a checkpoint exported for sampling would be).
  nn::Named gd;
  for (const auto& [n, t] : f.tensors)
    if (n.rfind("G.", 0) == 0 || n.rfind("D.", 0) == 0) gd.emplace_back(n, t);
  fs::create_directories(d + "/bare");
  nn::save_safetensors(d + "/bare/gd.safetensors", gd, {{"model", f.metadata.at("model")}});
  const std::string out =
      cli_output({"inspect", "--checkpoint", d + "/bare/gd.safetensors", "--data", data, "--batch", "2", "--out", d + "/o"});
  CHECK(out.find("fresh RMSProp: the checkpoint holds no optimizer state") != std::string::npos);
  CHECK(out.find("(from the dcgan default)") != std::string::npos);
  CHECK(out.find("images from " + data + " (from --data, seed 1)") != std::string::npos);

  // Optimizer tensors without their step counts: an error naming the file and the field.
  nn::Named partial = gd;
  for (const auto& [n, t] : f.tensors)
    if (n.rfind("optim.", 0) == 0) partial.emplace_back(n, t);
  nn::save_safetensors(d + "/bare/partial.safetensors", partial, {{"model", f.metadata.at("model")}});
  std::string e = wn::test::cli_error({"inspect", "--checkpoint", d + "/bare/partial.safetensors", "--data", data,
                                       "--batch", "2", "--out", d + "/o"});
  CHECK(e.find("partial.safetensors: metadata 'optim_G_steps' missing") != std::string::npos);

  // Missing folders on the way are created (as every output option does); a file on the way is refused.
  std::ofstream(d + "/plain") << "x";
  e = wn::test::cli_error({"inspect", "--data", data, "--json", d + "/plain/x.json"});
  CHECK(e.find("'" + d + "/plain' is not a folder") != std::string::npos);
  e = wn::test::cli_error({"inspect", "--data", data, "--csv", d});
  CHECK(e.find("is a folder, not a file") != std::string::npos);
  e = wn::test::cli_error({"inspect", "--data", data, "--json", ""});
  CHECK(e.find("must not be empty") != std::string::npos);
  e = wn::test::cli_error({"inspect", "--checkpoint", d + "/none.safetensors"});
  CHECK(e.find(d + "/none.safetensors") != std::string::npos);
  fs::remove_all(d);
}
