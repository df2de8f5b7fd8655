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
    out.push_back(c);
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

}  // namespace wn::nn
