#include "gan/grad_trace.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "nn/checkpoint.h"
#include "nn/inspect.h"
#include "nn/layers.h"
#include "nn/weight_norm.h"

namespace wn::gan {

namespace fs = std::filesystem;

const char* const kTraceHeader = "iteration,step,layer,quantity,value";

namespace {

// "G.level1.conv.weight" -> ("G.level1.conv", "weight").
std::pair<std::string, std::string> split_name(const std::string& n) {
  const auto dot = n.rfind('.');
  return {n.substr(0, dot), n.substr(dot + 1)};
}

double dot_of(const Tensor& a, const Tensor& b) {
  NoGradGuard ng;
  return sum(mul(a.to(DType::F64), b.to(DType::F64))).item();
}

std::optional<TraceRow> parse_row(const std::string& line) {
  std::stringstream ss(line);
  std::string f[5];
  for (auto& s : f)
    if (!std::getline(ss, s, ',')) return std::nullopt;
  try {
    size_t a = 0, b = 0;
    TraceRow r{std::stoll(f[0], &a), f[1], f[2], f[3], std::stod(f[4], &b)};
    if (a != f[0].size() || b != f[4].size()) return std::nullopt;
    return r;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

void trim_trace(const std::string& path, int64_t last_iteration) {
  if (!fs::exists(path)) return;
  std::ifstream in(path);
  std::string line, kept = std::string(kTraceHeader) + "\n";
  std::getline(in, line);
  while (std::getline(in, line))
    if (auto r = parse_row(line); r && r->iteration <= last_iteration) kept += line + "\n";
  nn::write_file_atomic(path, kept);
}

std::vector<TraceRow> read_trace(const std::string& path) {
  std::vector<TraceRow> out;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line))
    if (auto r = parse_row(line)) out.push_back(*r);
  return out;
}

struct GradTrace::Impl {
  std::string path;
  Gan& gan;
  int64_t it = 0;
  bool simultaneous = false;
  StepHooks hooks;
  std::vector<TraceRow> rows;
  std::unique_ptr<nn::ActivationRecorder> acts_g, acts_d;
  nn::UpdateTracker track_g, track_d;  // parameters before the step, for update ratios

  Impl(std::string p, Gan& g) : path(std::move(p)), gan(g) {
    hooks.retain_graphs = true;
    hooks.before_d_update = [this](const std::vector<Tensor>& losses) {
      // The real batch's backward (alternating: first; simultaneous: second).
      on_backward("D", *gan.D, losses[simultaneous ? 1 : 0]);
      // Alternating: G's forward so far made D's fake batch; the G step's comes next.
      if (!simultaneous && acts_g) acts_g->clear();
    };
    hooks.before_g_update = [this](const std::vector<Tensor>& roots) { on_backward("G", *gan.G, roots.back()); };
  }

  void add(const std::string& step, const std::string& layer, const std::string& q, double v) {
    if (std::isfinite(v)) rows.push_back({it, step, layer, q, v});
  }

  // After a network's backward, before its update: gradients, cosines, parameter values,
  // BN shares, and the activations of the forwards so far.
  void on_backward(const char* step, nn::Module& net, const Tensor& root) {
    const nn::Named params = net.named_parameters();
    const std::vector<nn::ParamStat> ps = nn::param_stats(net);  // same order as params
    for (size_t i = 0; i < ps.size(); ++i) {
      const auto [layer, what] = split_name(ps[i].name);
      const double pn = ps[i].weight_norm, gn = ps[i].grad_norm;
      add(step, layer, "grad_norm:" + what, gn);
      add(step, layer, "weight_norm:" + what, pn);
      const Tensor& p = params[i].second;
      if (what == "weight" && pn > 0 && gn > 0 && p.rank() >= 2)
        add(step, layer, "cos_grad:weight", dot_of(p, p.grad()) / (pn * gn));
    }
    for (const nn::WNCosine& c : nn::wn_cosines(net)) add(step, c.layer, "wn_max_abs_cos", c.max_abs_cos);
    net.apply([&](nn::Module& m) {
      auto stats = [&](const char* what, const Tensor& t) {
        if (!t.defined()) return;
        const std::vector<double> v = t.to_vector();
        double s = 0, lo = INFINITY, hi = -INFINITY;
        for (double x : v) s += x, lo = std::min(lo, x), hi = std::max(hi, x);
        add(step, m.name(), fmt::format("mean:{}", what), s / double(v.size()));
        add(step, m.name(), fmt::format("min:{}", what), lo);
        add(step, m.name(), fmt::format("max:{}", what), hi);
      };
      if (auto* w = dynamic_cast<nn::WNLayer*>(&m)) {
        const std::vector<double> n = w->norms();
        if (!n.empty()) {
          add(step, m.name(), "wn_norm_min", *std::min_element(n.begin(), n.end()));
          add(step, m.name(), "wn_norm_max", *std::max_element(n.begin(), n.end()));
        }
        stats("scale", w->scale);
        stats("bias", w->bias);
      } else if (auto* t = dynamic_cast<nn::TPReLU*>(&m)) {
        stats("slope", t->weight);
        stats("shift", t->bias);
      } else if (auto* pr = dynamic_cast<nn::PReLU*>(&m)) {
        stats("slope", pr->weight);
      }
    });
    for (const nn::BNShares& b : nn::bn_shares(root, net.name() + ".")) {
      add(step, b.layer, "bn_mean_share", b.mean_share);
      add(step, b.layer, "bn_xhat_share", b.xhat_share);
    }
    take_activations(step, net);
  }

  // The first forward of each of net's modules recorded so far (this step's), then a
  // fresh record for the next step.
  void take_activations(const char* step, nn::Module& net) {
    auto& rec = &net == gan.G.get() ? acts_g : acts_d;
    if (!rec) return;
    std::map<std::string, bool> seen;
    for (const nn::ActivationStat& s : rec->stats()) {
      if (seen[s.module] || s.mean.empty() || s.module == net.name() || s.type == "Sequential") continue;
      seen[s.module] = true;
      double m = 0, sd = 0;
      for (double x : s.mean) m += x / double(s.mean.size());
      for (double x : s.std) sd += x / double(s.std.size());
      add(step, s.module, "act_mean", m);
      add(step, s.module, "act_std", sd);
    }
    rec->clear();
  }
};

GradTrace::GradTrace(std::string path, Gan& gan) : impl_(std::make_unique<Impl>(std::move(path), gan)) {
  if (!fs::exists(impl_->path)) nn::write_file_atomic(impl_->path, std::string(kTraceHeader) + "\n");
}

GradTrace::~GradTrace() = default;

const StepHooks& GradTrace::begin(int64_t it, bool simultaneous) {
  Impl& s = *impl_;
  s.it = it;
  s.simultaneous = simultaneous;
  s.rows.clear();
  s.track_g.snapshot(*s.gan.G);
  s.track_d.snapshot(*s.gan.D);
  s.acts_g = std::make_unique<nn::ActivationRecorder>(*s.gan.G);
  s.acts_d = std::make_unique<nn::ActivationRecorder>(*s.gan.D);
  set_record_grad_norms(true);
  return s.hooks;
}

bool GradTrace::end() {
  Impl& s = *impl_;
  set_record_grad_norms(false);
  s.acts_g.reset();
  s.acts_d.reset();
  for (auto [step, net, tracker] : {std::tuple{"D", s.gan.D.get(), &s.track_d}, std::tuple{"G", s.gan.G.get(), &s.track_g}})
    for (const nn::ParamStat& p : tracker->measure(*net)) {
      const auto [layer, what] = split_name(p.name);
      s.add(step, layer, "update_ratio:" + what, p.update_ratio);  // NaN (a zero weight): no row
    }
  std::string text;
  for (const TraceRow& r : s.rows) text += fmt::format("{},{},{},{},{:.9g}\n", r.iteration, r.step, r.layer, r.quantity, r.value);
  std::ofstream f(s.path, std::ios::app);
  f << text;
  return static_cast<bool>(f.flush());
}

}  // namespace wn::gan
