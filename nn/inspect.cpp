#include "nn/inspect.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "engine/autograd.h"
#include "engine/inspect.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "nn/weight_norm.h"

namespace wn::nn {

namespace {
ActivationStat channel_stats(Module& m, const Tensor& y) {
  ActivationStat s{m.name(), m.type_name(), y.shape(), {}, {}};
  if (y.rank() < 2) return s;
  NoGradGuard ng;
  std::vector<int> axes{0};
  for (int i = 2; i < y.rank(); ++i) axes.push_back(i);
  Tensor x = y.to(DType::F64);
  s.mean = mean(x, axes).to_vector();
  std::vector<double> sq = mean(square(x), axes).to_vector();
  for (size_t c = 0; c < sq.size(); ++c) s.std.push_back(std::sqrt(std::max(0.0, sq[c] - s.mean[c] * s.mean[c])));
  return s;
}

// cos(a, b) over the whole tensors, in double (NaN when a norm is 0).
double cosine(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to_vector(), y = b.to_vector();
  double xx = 0, yy = 0, xy = 0;
  for (size_t i = 0; i < x.size(); ++i) xx += x[i] * x[i], yy += y[i] * y[i], xy += x[i] * y[i];
  return xx > 0 && yy > 0 ? xy / (std::sqrt(xx) * std::sqrt(yy)) : NAN;
}
}  // namespace

ActivationRecorder::ActivationRecorder(Module& root)
    : root_(root), stats_(std::make_shared<std::vector<ActivationStat>>()) {
  auto stats = stats_;
  root_.apply([stats](Module& m) {
    m.register_forward_hook([stats](Module& mod, const Tensor& y) { stats->push_back(channel_stats(mod, y)); });
  });
}

ActivationRecorder::~ActivationRecorder() {
  root_.apply([](Module& m) { m.clear_forward_hooks(); });
}

std::vector<ParamStat> param_stats(const Module& root) {
  std::vector<ParamStat> out;
  for (auto& [name, p] : root.named_parameters()) {
    ParamStat s;
    s.name = name;
    s.weight_norm = std::sqrt(sum_squares(p));
    Tensor g = p.grad();
    if (g.defined()) {
      s.grad_norm = std::sqrt(sum_squares(g));
      for (double v : g.to_vector()) s.grad_max_abs = std::max(s.grad_max_abs, std::fabs(v));
      s.cos_grad = cosine(p, g);
    }
    out.push_back(s);
  }
  return out;
}

void UpdateTracker::snapshot(const Module& root) {
  before_.clear();
  for (auto& [name, p] : root.named_parameters()) before_.emplace_back(name, p.clone());
}

std::vector<ParamStat> UpdateTracker::measure(const Module& root) const {
  std::vector<ParamStat> out = param_stats(root);
  Named now = root.named_parameters();
  NoGradGuard ng;
  for (size_t i = 0; i < out.size() && i < before_.size(); ++i) {
    const double w = std::sqrt(sum_squares(before_[i].second));
    const double d = std::sqrt(sum_squares(sub(now[i].second, before_[i].second)));
    out[i].update_ratio = w > 0 ? d / w : NAN;
  }
  return out;
}

std::vector<WNCosine> wn_cosines(Module& root) {
  std::vector<WNCosine> out;
  root.apply([&](Module& m) {
    auto* wn = dynamic_cast<WNLayer*>(&m);
    if (!wn) return;
    WNCosine c{m.name(), wn->mode() == WNMode::Strict, 0.0};
    // Units without a gradient (0/0) do not count; none with one: NaN, shown as "-".
    c.max_abs_cos = NAN;
    for (double v : wn->v_grad_cosines())
      if (std::isfinite(v)) c.max_abs_cos = std::isnan(c.max_abs_cos) ? std::fabs(v) : std::max(c.max_abs_cos, std::fabs(v));
    c.eps = wn->eps();
    c.eps_inside = wn->eps_style() == WNEps::Inside;
    const int64_t units = static_cast<int64_t>(wn->norms().size());
    c.unit_size = units > 0 ? wn->weight.numel() / units : 0;
    for (double s : wn->squared_norms()) c.min_sq_norm = std::isnan(c.min_sq_norm) ? s : std::min(c.min_sq_norm, s);
    for (double s : wn->eps_shares()) c.max_eps_share = std::max(c.max_eps_share, s);
    out.push_back(c);
  });
  return out;
}

EffectiveWeights::EffectiveWeights(Module& root)
    : root_(root), ws_(std::make_shared<std::map<std::string, std::vector<Tensor>>>()) {
  auto ws = ws_;
  root_.apply([ws](Module& m) {
    auto* wn = dynamic_cast<WNLayer*>(&m);
    if (!wn) return;
    const std::string name = m.name();
    // Only a w on the tape (not one computed without gradients, or from a frozen v).
    wn->set_weight_hook([ws, name](const Tensor& w) {
      if (!w.requires_grad()) return;
      Tensor kept = w;
      kept.retain_grad();
      (*ws)[name].push_back(kept);
    });
  });
}

EffectiveWeights::~EffectiveWeights() {
  root_.apply([](Module& m) {
    if (auto* wn = dynamic_cast<WNLayer*>(&m)) wn->set_weight_hook(nullptr);
  });
}

void EffectiveWeights::zero_grad() {
  for (auto& [layer, ws] : *ws_)
    for (Tensor& w : ws) w.zero_grad();
}

Tensor EffectiveWeights::grad(const std::string& layer) const {
  auto it = ws_->find(layer);
  if (it == ws_->end()) return Tensor();
  NoGradGuard ng;
  Tensor total;
  for (const Tensor& w : it->second) {
    const Tensor g = w.grad();
    if (g.defined()) total = total.defined() ? add(total, g) : g.clone();
  }
  return total;
}

std::vector<EffectiveGrad> effective_weight_grads(Module& root, const EffectiveWeights& seen) {
  std::vector<EffectiveGrad> out;
  root.apply([&](Module& m) {
    EffectiveGrad e;
    e.layer = m.name();
    Tensor w;
    if (auto* wn = dynamic_cast<WNLayer*>(&m)) {
      NoGradGuard ng;
      e.weight_normalized = true;
      w = wn->normalized_weight();
      e.grad = seen.grad(m.name());
    } else if (auto* l = dynamic_cast<Linear*>(&m)) {
      w = l->weight;
    } else if (auto* c = dynamic_cast<Conv2d*>(&m)) {
      w = c->weight;
    } else if (auto* t = dynamic_cast<ConvTranspose2d*>(&m)) {
      w = t->weight;
    } else {
      return;
    }
    if (!e.weight_normalized) e.grad = w.grad();
    e.weight_norm = std::sqrt(sum_squares(w));
    if (e.grad.defined()) {
      e.grad_norm = std::sqrt(sum_squares(e.grad));  // as param_stats: plain layers give the same number
      e.cos_grad = cosine(w, e.grad);
    }
    out.push_back(e);
  });
  return out;
}

std::vector<BNShares> bn_shares(const Tensor& root, const std::string& prefix) {
  std::vector<BNShares> out;
  for (const NodeInfo& n : tape_nodes(root)) {
    if (n.op != "batch_norm" || n.label.rfind(prefix, 0) != 0) continue;
    BNShares s{n.label};
    for (const auto& [k, v] : n.stats) (k == "mean share" ? s.mean_share : s.xhat_share) = v;
    out.push_back(s);
  }
  return out;
}

void append_param_stats_csv(const std::string& path, int64_t iteration, const std::vector<ParamStat>& stats) {
  const bool fresh = !std::filesystem::exists(path);
  std::ofstream f(path, std::ios::app);
  if (!f) throw std::runtime_error("cannot open " + path + " for writing");
  if (fresh) f << "iteration,name,weight_norm,grad_norm,grad_max_abs,update_ratio\n";
  for (auto& s : stats)
    f << fmt::format("{},{},{:.9g},{:.9g},{:.9g},{:.9g}\n", iteration, s.name, s.weight_norm, s.grad_norm,
                     s.grad_max_abs, s.update_ratio);
  if (!f) throw std::runtime_error("cannot write " + path);
}

void write_dot(const Tensor& root, const std::string& path) { write_file_atomic(path, graph_to_dot(root)); }

void write_dot(const std::vector<Tensor>& roots, const std::string& title, const std::string& path) {
  write_file_atomic(path, graph_to_dot(roots, title));
}

}  // namespace wn::nn
