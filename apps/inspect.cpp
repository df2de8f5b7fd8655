// `wngan inspect`: one training step on one batch, shown layer by layer, for teaching
// how normalization shapes gradient flow: activation mean and std, each parameter's
// gradient norm and update / weight ratio, the largest |cos(v, dL/dv)| of every WN
// layer (~0), and for BN layers the share of the incoming gradient removed by each of
// its backward's two projections. Writes the G step's tape as DOT (and SVG with graphviz).
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "apps/commands.h"
#include "engine/autograd.h"
#include "engine/inspect.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/loss.h"
#include "engine/ops/reduce.h"
#include "gan/data.h"
#include "gan/loader.h"
#include "gan/run_config.h"
#include "gan/trainer.h"
#include "nn/inspect.h"
#include "nn/layers.h"
#include "nn/optim.h"

namespace wn::app {

namespace fs = std::filesystem;

namespace {

struct LayerView {
  double act_mean = NAN, act_std = NAN, grad = NAN, grad_b = NAN, ratio = NAN, wn_cos = NAN, bn_mean = NAN, bn_xhat = NAN;
  std::string type;
};

// The training settings the inspected step uses (a run's, or the architecture's defaults).
struct StepSettings {
  double lr = 1e-4, rms_eps = 1e-6;
  bool ls = false, simultaneous = false;
};

// Everything inspect reports for one model, keyed by module name.
struct Inspection {
  std::string variant;
  std::map<std::string, LayerView> layers;  // module name -> view
  std::vector<std::string> order;
  double d_real = 0, d_fake = 0, g = 0;
};

// BN layers' projection shares as their backward reported them (Node::stats) on the tape
// behind root: dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)); the norms of the
// two removed terms relative to |dy| over the layer.
// Only the network's own layers (prefix "D." or "G."): G's backward also runs through D.
void take_bn_shares(const Tensor& root, const char* prefix, Inspection& ins) {
  for (const nn::BNShares& b : nn::bn_shares(root, prefix)) {
    ins.layers[b.layer].bn_mean = b.mean_share;
    ins.layers[b.layer].bn_xhat = b.xhat_share;
  }
}

// The training step itself (gan::gan_step, with the run's optimizers, loss and protocol),
// read through its hooks: gradients, WN cosines and BN shares after each backward and
// before each update; update / weight ratios after the step.
Inspection inspect_one(const gan::Gan& g0, const std::string& variant, const Tensor& real, uint64_t seed,
                       const StepSettings& st, const std::string& dot_path) {
  gan::Gan g = g0;
  Inspection ins;
  ins.variant = variant;
  Generator rng(seed);
  gan::GanOptimizers opt = gan::make_optimizers(g, st.lr, st.rms_eps);
  nn::ActivationRecorder rg(*g.G), rd(*g.D);
  nn::UpdateTracker tg, td;
  tg.snapshot(*g.G);
  td.snapshot(*g.D);
  std::vector<nn::WNCosine> cos_d, cos_g;
  std::vector<nn::ParamStat> grads_d, grads_g;
  gan::StepHooks hooks;
  hooks.retain_graphs = true;
  hooks.before_d_update = [&](const std::vector<Tensor>& losses) {
    cos_d = nn::wn_cosines(*g.D);
    grads_d = nn::param_stats(*g.D);
    take_bn_shares(losses[st.simultaneous ? 1 : 0], "D.", ins);  // the real batch's backward
  };
  hooks.before_g_update = [&](const std::vector<Tensor>& roots) {
    cos_g = nn::wn_cosines(*g.G);
    grads_g = nn::param_stats(*g.G);
    take_bn_shares(roots.back(), "G.", ins);  // G's tape (simultaneous: through its output)
    if (!dot_path.empty()) nn::write_dot(roots.back(), dot_path);
  };
  set_record_grad_norms(true);
  gan::StepLosses losses;
  try {
    losses = gan::gan_step(g, *opt.g, *opt.d, real, rng, st.ls, st.simultaneous, &hooks);
  } catch (...) {
    set_record_grad_norms(false);
    throw;
  }
  set_record_grad_norms(false);
  ins.d_real = losses.d_real, ins.d_fake = losses.d_fake, ins.g = losses.g;
  // Activations from the first forward of each network (D: the real batch).
  auto take_acts = [&](const std::vector<nn::ActivationStat>& stats, size_t limit) {
    std::map<std::string, bool> seen;
    for (size_t i = 0; i < stats.size() && i < limit; ++i) {
      auto& s = stats[i];
      if (seen[s.module] || s.mean.empty()) continue;
      seen[s.module] = true;
      double m = 0, v = 0;
      for (size_t c = 0; c < s.mean.size(); ++c) m += s.mean[c] / s.mean.size();
      for (size_t c = 0; c < s.std.size(); ++c) v += s.std[c] / s.std.size();
      auto& lv = ins.layers[s.module];
      lv.act_mean = m, lv.act_std = v, lv.type = s.type;
      ins.order.push_back(s.module);
    }
  };
  take_acts(rg.stats(), rg.stats().size());
  take_acts(rd.stats(), rd.stats().size());
  auto take_grads = [&](const std::vector<nn::ParamStat>& grads, const std::vector<nn::ParamStat>& after) {
    for (size_t i = 0; i < grads.size(); ++i) {
      const std::string& n = grads[i].name;
      const auto dot = n.rfind('.');
      const std::string layer = n.substr(0, dot), what = n.substr(dot + 1);
      auto& lv = ins.layers[layer];
      if (what == "weight") {
        lv.grad = grads[i].grad_norm;
        lv.ratio = after[i].update_ratio;
      } else if (what == "bias") {
        lv.grad_b = grads[i].grad_norm;
      }
    }
  };
  take_grads(grads_d, td.measure(*g.D));
  take_grads(grads_g, tg.measure(*g.G));
  for (auto* cs : {&cos_d, &cos_g})
    for (auto& c : *cs) ins.layers[c.layer].wn_cos = c.max_abs_cos;
  return ins;
}

std::string num(double v, const char* f = "{:.3g}") { return std::isfinite(v) ? fmt::format(fmt::runtime(f), v) : "-"; }

void print_one(const Inspection& ins) {
  fmt::print("\n{}: D loss real {:.4f} fake {:.4f}, G loss {:.4f}\n", ins.variant, ins.d_real, ins.d_fake, ins.g);
  // One table per step: G's layers as the G step saw them, D's as the D step did.
  for (const char* net : {"G", "D"}) {
    fmt::print("  {}\n", net[0] == 'G' ? "G step (G's layers: its forward, its gradients before G's update)"
                                        : "D step (D's layers: the real batch's forward, the gradients of the real "
                                          "and fake losses before D's update)");
    fmt::print("  {:<28} {:<20} {:>9} {:>9} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9}\n", "layer", "type", "act mean",
               "act std", "|grad W|", "upd/weight", "|grad b|", "WN|cos|", "BN mean", "BN xhat");
    for (auto& name : ins.order) {
      const LayerView& v = ins.layers.at(name);
      if (name.rfind(std::string(net) + ".", 0) != 0) continue;
      if (v.type == "Sequential" || v.type.rfind("DCGAN", 0) == 0 || v.type.rfind("ResNet", 0) == 0) continue;
      fmt::print("  {:<28} {:<20} {:>9} {:>9} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9}\n", name, v.type,
                 num(v.act_mean), num(v.act_std), num(v.grad), num(v.ratio), num(v.grad_b), num(v.wn_cos, "{:.1e}"),
                 num(v.bn_mean, "{:.2f}"), num(v.bn_xhat, "{:.2f}"));
    }
  }
}

void print_compare(const std::vector<Inspection>& all) {
  // The layers every variant shares: the linear / conv layers.
  fmt::print("\nside by side: gradient norm of each weight layer (and, after /, the std of that level's activation)\n");
  fmt::print("  {:<22}", "layer");
  for (auto& a : all) fmt::print(" {:>22}", a.variant);
  fmt::print("\n");
  for (auto& name : all[0].order) {
    if (name.find(".conv") == std::string::npos && name.find(".linear") == std::string::npos) continue;
    fmt::print("  {:<22}", name);
    for (auto& a : all) {
      auto it = a.layers.find(name);
      const std::string level = name.substr(0, name.rfind('.'));
      auto act = a.layers.find(level + ".act");
      std::string cell = it == a.layers.end() ? "-" : num(it->second.grad);
      cell += " / " + (act == a.layers.end() ? std::string("-") : num(act->second.act_std));
      fmt::print(" {:>22}", cell);
    }
    fmt::print("\n");
  }
}

}  // namespace

void add_inspect(CLI::App& app) {
  struct Opts {
    ModelOptions model;
    std::string data = "fashion-mnist", checkpoint, compare, out = "inspect", device = "cpu";
    std::string loss = "bce", protocol = "alternating";
    double lr = 1e-4, rms_eps = nn::kPaperRMSPropEps;
    int64_t batch = 32;
    uint64_t seed = 1;
  };
  auto o = std::make_shared<Opts>();
  o->model.image_size = "";
  o->model.channels = 0;
  CLI::App* cmd = app.add_subcommand("inspect", "One training step shown layer by layer: activations, gradients, WN and BN");
  add_model_options(cmd, o->model);
  cmd->add_option("--data", o->data, "Data set for the real batch")->capture_default_str();
  cmd->add_option("--checkpoint", o->checkpoint, "Inspect this checkpoint's model instead of a fresh one");
  cmd->add_option("--compare", o->compare, "Several variants side by side, e.g. none,batch,weight");
  cmd->add_option("--batch", o->batch, "Batch size")->capture_default_str()
      ->check(in_range(1, 4096));
  cmd->add_option("--seed", o->seed, "Seed")->capture_default_str();
  cmd->add_option("--out", o->out, "Folder for the tape (DOT, and SVG with graphviz)")->capture_default_str()
      ->check(non_empty());
  cmd->add_option("--device", o->device, "cpu | cuda | cuda:N")->capture_default_str();
  cmd->add_option("--lr", o->lr, "Learning rate of the step's RMSProp (the ResNet: 2e-5)")->capture_default_str()
      ->check(above(0, 1e6));
  cmd->add_option("--rms-eps", o->rms_eps, "RMSProp epsilon (the ResNet: 1e-8)")->capture_default_str()
      ->check(above(0, 1));
  cmd->add_option("--loss", o->loss, "bce | ls")->capture_default_str()->check(CLI::IsMember({"bce", "ls"}));
  cmd->add_option("--protocol", o->protocol, "alternating | simultaneous (the ResNet's default)")
      ->capture_default_str()
      ->check(CLI::IsMember({"alternating", "simultaneous"}));
  cmd->callback([o, cmd]() {
    const Device device = Device::parse(o->device);
    std::vector<std::string> variants =
        o->compare.empty() ? std::vector<std::string>{o->model.norm} : gan::split_list(o->compare);
    if (!o->checkpoint.empty() && variants.size() > 1)
      throw std::invalid_argument("--compare builds fresh models; it cannot be combined with --checkpoint");
    gan::Gan from_checkpoint;
    if (!o->checkpoint.empty()) from_checkpoint = gan::load_gan_from_checkpoint(o->checkpoint);
    // The step trains as `wngan train` would: options not given take the architecture's defaults.
    apply_arch_defaults(cmd, o->checkpoint.empty() ? o->model.arch : gan::arch_name(from_checkpoint.config.arch));
    const StepSettings st{o->lr, o->rms_eps, o->loss == "ls", gan::parse_protocol(o->protocol) == gan::Protocol::Simultaneous};
    fs::create_directories(o->out);
    std::vector<Inspection> all;
    for (auto& v : variants) {
      gan::Gan g;
      if (!o->checkpoint.empty()) {
        g = from_checkpoint;
      } else {
        ModelOptions m = o->model;
        m.norm = v;
        if (m.image_size.empty() || m.channels == 0) {
          auto d = gan::open_dataset(o->data);
          if (m.image_size.empty()) m.image_size = std::to_string(d->height);
          if (m.channels == 0) m.channels = d->channels;
        }
        Generator init(o->seed);
        g = gan::build_gan(m.config(), init);
      }
      auto data = gan::open_dataset(o->data, g.config.height, g.config.width, g.config.channels);
      std::vector<int64_t> idx;
      Generator pick(o->seed);
      for (int64_t i = 0; i < o->batch; ++i) idx.push_back(static_cast<int64_t>(pick.below(uint64_t(data->size()))));
      g.G->to(device);
      g.D->to(device);
      Tensor real = gan::Loader::load(*data, idx).to(device);
      const std::string dot = fmt::format("{}/tape_{}.dot", o->out, std::string(gan::arch_name(g.config.arch)) + "_" + gan::norm_name(g.config.norm));
      all.push_back(inspect_one(g, gan::norm_name(g.config.norm), real, o->seed, st, dot));
      print_one(all.back());
      const std::string svg = dot.substr(0, dot.size() - 4) + ".svg";
      if (std::system("command -v dot >/dev/null 2>&1") == 0 &&
          std::system(fmt::format("dot -Tsvg '{}' -o '{}'", dot, svg).c_str()) == 0)
        fmt::print("  tape of the G step: {} and {}\n", dot, svg);
      else
        fmt::print("  tape of the G step: {} (install graphviz for an SVG)\n", dot);
    }
    if (all.size() > 1) print_compare(all);
    fmt::print("\n|grad W| / |grad b|: gradient norms of the layer's weight (v in WN layers, the slope in (T)PReLU) and bias. "
               "WN|cos|: largest |cos(v, dL/dv)| over output units (~0: the gradient is orthogonal to v; \"-\": no "
               "gradient reached the layer, 0/0). BN mean / "
               "BN xhat: share of the incoming gradient's norm removed by the mean and by the xhat projection, as BN's "
               "backward reports it (D's layers: the real batch's backward of the D step; G's: the G step).\n");
    fmt::print("The step: gan_step as in training ({} protocol, {} loss, RMSProp lr {:g} eps {:g}); gradients are "
               "read after each network's backward, before its update.\n",
               o->protocol, o->loss, o->lr, o->rms_eps);
  });
}

}  // namespace wn::app
