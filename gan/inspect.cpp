#include "gan/inspect.h"

#include <cmath>
#include <map>

#include <fmt/format.h>

#include "engine/autograd.h"
#include "engine/inspect.h"
#include "gan/loader.h"
#include "nn/inspect.h"
#include "nn/layers.h"
#include "nn/weight_norm.h"

namespace wn::gan {

namespace {
// "G.level1.conv.weight" -> ("G.level1.conv", "weight").
std::pair<std::string, std::string> split_name(const std::string& n) {
  const auto dot = n.rfind('.');
  return {n.substr(0, dot), n.substr(dot + 1)};
}

// The note on a WN layer where eps is not negligible beside ||v_u||.
std::string eps_note(const std::string& step, const nn::WNCosine& c) {
  const std::string where =
      c.eps_inside ? fmt::format("eps {:.0e} inside the root is {:.1e} of the sum under it for its smallest unit "
                                 "(without eps: {:.1e}, ||v_u||^2 times the layer's factor, 1 for linear and conv)",
                                 c.eps, c.max_eps_share, c.min_sq_norm)
                   : fmt::format("eps {:.0e} added to the norm is {:.1e} of ||v_u|| + eps for its smallest unit "
                                 "(||v_u|| = {:.1e})",
                                 c.eps, c.max_eps_share, std::sqrt(c.min_sq_norm));
  return fmt::format("{} step, {}: {}, so w is not quite invariant to the scale of v there and |cos(v_u, dL/dv_u)| "
                     "is of the order of that share ({} here), not ~1e-7",
                     step, c.layer, where, std::isfinite(c.max_abs_cos) ? fmt::format("{:.1e}", c.max_abs_cos) : "-");
}
}  // namespace

struct StepInspector::Impl {
  Gan& gan;
  bool tapes = false, simultaneous = false;
  StepHooks hooks;
  std::vector<StepRow> rows;
  std::vector<StepLayer> layers;
  std::vector<std::string> notes;
  std::string tape_d, tape_g;
  std::unique_ptr<nn::ActivationRecorder> acts_g, acts_d;
  std::unique_ptr<nn::EffectiveWeights> eff_g, eff_d;
  nn::UpdateTracker track_g, track_d;  // parameters before the step, for update ratios

  Impl(Gan& g, bool t) : gan(g), tapes(t) {
    hooks.retain_graphs = true;
    hooks.before_d_update = [this](const std::vector<Tensor>& losses) {
      // The real batch's loss: alternating, the first backward; simultaneous, the second.
      const size_t real = simultaneous ? 1 : 0;
      if (tapes) {  // names for the tape's roots (labels change no number)
        Tensor(losses[real]).set_label("D's loss on the real batch");
        Tensor(losses[1 - real]).set_label("D's loss on the generated batch");
      }
      on_backward("D", *gan.D, losses[real], losses);
      // Alternating: G's forward so far made D's fake batch; the G step's comes next.
      if (!simultaneous) acts_g->clear();
    };
    hooks.before_g_update = [this](const std::vector<Tensor>& roots) {
      if (tapes) {
        Tensor(roots.front()).set_label("G's loss");
        if (roots.size() > 1) Tensor(roots.back()).set_label("G's output (the images' gradient of G's loss)");
      }
      on_backward("G", *gan.G, roots.back(), roots);
      if (simultaneous) {
        // D's step comes next. Its forward so far was the generated batch's (the real
        // batch's is recorded next), and its w's hold G's loss's gradient, which D's
        // zero_grad drops from v: drop it from w too.
        acts_d->clear();
        eff_d->zero_grad();
      }
    };
  }

  // Stops recording (inspection mode off, hooks removed); false when nothing was recording.
  bool release() {
    if (!acts_g) return false;
    set_record_grad_norms(false);
    acts_g.reset();
    acts_d.reset();
    eff_g.reset();
    eff_d.reset();
    return true;
  }

  void add(const std::string& step, const std::string& layer, const std::string& q, double v) {
    if (std::isfinite(v)) rows.push_back({step, layer, q, v});
  }

  // After a network's backward, before its update: gradients (of v and of w), cosines,
  // parameter values, BN shares (real_root's backward), the activations of the forwards
  // recorded so far, and the tape behind roots.
  void on_backward(const char* step, nn::Module& net, const Tensor& real_root, const std::vector<Tensor>& roots) {
    const nn::Named params = net.named_parameters();
    const std::vector<nn::ParamStat> ps = nn::param_stats(net);  // same order as params
    for (size_t i = 0; i < ps.size(); ++i) {
      const auto [layer, what] = split_name(ps[i].name);
      add(step, layer, "grad_norm:" + what, ps[i].grad_norm);
      add(step, layer, "weight_norm:" + what, ps[i].weight_norm);
      if (what == "weight" && params[i].second.rank() >= 2) add(step, layer, "cos_grad:weight", ps[i].cos_grad);
    }
    for (const nn::EffectiveGrad& e : nn::effective_weight_grads(net, &net == gan.G.get() ? *eff_g : *eff_d)) {
      add(step, e.layer, "grad_norm_effective:weight", e.grad_norm);
      add(step, e.layer, "cos_grad_effective:weight", e.cos_grad);
    }
    for (const nn::WNCosine& c : nn::wn_cosines(net)) {
      add(step, c.layer, "wn_max_abs_cos", c.max_abs_cos);
      add(step, c.layer, "wn_eps_share_max", c.max_eps_share);
      if (c.unit_size == 1)
        notes.push_back(fmt::format(
            "{} step, {}: each output unit has a single weight (fan-in 1), so w_u = v_u / ||v_u|| is +-1 (times the "
            "scale) whatever v_u is: dL/dv_u is eps's part alone, parallel to v_u, so |dL/dv| is ~0 and |cos| is 1",
            step, c.layer));
      else if (c.max_eps_share >= kEpsShareNote)
        notes.push_back(eps_note(step, c));
    }
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
    for (const nn::BNShares& b : nn::bn_shares(real_root, net.name() + ".")) {
      add(step, b.layer, "bn_mean_share", b.mean_share);
      add(step, b.layer, "bn_xhat_share", b.xhat_share);
    }
    take_activations(step, net);
    if (tapes)
      (&net == gan.G.get() ? tape_g : tape_d) =
          graph_to_dot(roots, step_description(step, simultaneous ? Protocol::Simultaneous : Protocol::Alternating));
  }

  // The first forward of each of net's modules recorded so far (this step's), then a
  // fresh record for the next step.
  void take_activations(const char* step, nn::Module& net) {
    auto& rec = &net == gan.G.get() ? acts_g : acts_d;
    std::map<std::string, bool> seen;
    for (const nn::ActivationStat& s : rec->stats()) {
      if (seen[s.module] || s.mean.empty() || s.module == net.name() || s.type == "Sequential") continue;
      seen[s.module] = true;
      layers.push_back({step, s.module, s.type});
      double m = 0, sd = 0;
      for (double x : s.mean) m += x / double(s.mean.size());
      for (double x : s.std) sd += x / double(s.std.size());
      add(step, s.module, "act_mean", m);
      add(step, s.module, "act_std", sd);
    }
    rec->clear();
  }
};

StepInspector::StepInspector(Gan& gan, bool tapes) : impl_(std::make_unique<Impl>(gan, tapes)) {}
StepInspector::~StepInspector() { impl_->release(); }

const StepHooks& StepInspector::begin(Protocol protocol) {
  Impl& s = *impl_;
  s.release();  // a begin() without end(): drop its hooks before installing new ones
  s.simultaneous = protocol == Protocol::Simultaneous;
  s.rows.clear();
  s.layers.clear();
  s.notes.clear();
  s.tape_d.clear();
  s.tape_g.clear();
  s.track_g.snapshot(*s.gan.G);
  s.track_d.snapshot(*s.gan.D);
  s.acts_g = std::make_unique<nn::ActivationRecorder>(*s.gan.G);
  s.acts_d = std::make_unique<nn::ActivationRecorder>(*s.gan.D);
  s.eff_g = std::make_unique<nn::EffectiveWeights>(*s.gan.G);
  s.eff_d = std::make_unique<nn::EffectiveWeights>(*s.gan.D);
  set_record_grad_norms(true);
  return s.hooks;
}

void StepInspector::end() {
  Impl& s = *impl_;
  if (!s.release()) return;  // not begun, or ended
  for (auto [step, net, tracker] : {std::tuple{"D", s.gan.D.get(), &s.track_d}, std::tuple{"G", s.gan.G.get(), &s.track_g}})
    for (const nn::ParamStat& p : tracker->measure(*net)) {
      const auto [layer, what] = split_name(p.name);
      s.add(step, layer, "update_ratio:" + what, p.update_ratio);  // NaN (a zero weight): no row
    }
}

const std::vector<StepRow>& StepInspector::rows() const { return impl_->rows; }
const std::vector<StepLayer>& StepInspector::layers() const { return impl_->layers; }
const std::vector<std::string>& StepInspector::notes() const { return impl_->notes; }
const nn::EffectiveWeights& StepInspector::effective_weights(const std::string& step) const {
  const auto& e = step == "G" ? impl_->eff_g : impl_->eff_d;
  if (!e) throw std::logic_error("StepInspector::effective_weights: called outside begin() .. end()");
  return *e;
}

const std::string& StepInspector::tape(const std::string& step) const {
  return step == "G" ? impl_->tape_g : impl_->tape_d;
}

std::string step_description(const std::string& step, Protocol protocol) {
  const bool sim = protocol == Protocol::Simultaneous;
  if (step == "D")
    return sim ? "D step (after G's): D's fake loss on the batch G's step generated, then a real batch; D's layers: "
                 "activations and BN shares of the real batch's forward and backward, gradients of both losses "
                 "together (what D's update uses), the update of D's RMSProp step"
               : "D step (first): a real batch, and a batch G generates without gradients; D's layers: activations "
                 "and BN shares of the real batch's forward and backward, gradients of the real and the fake loss "
                 "together (what D's update uses), the update of D's RMSProp step";
  return sim ? "G step (first): one generated batch through G and D (D frozen), G's non-saturating loss; G's layers: "
               "activations of that forward, gradients of G's loss, BN shares of its backward, the update of G's "
               "RMSProp step"
             : "G step (after D's): a fresh code batch through G and the updated D (frozen), G's non-saturating loss; "
               "G's layers: activations of that forward, gradients of G's loss, BN shares of its backward, the "
               "update of G's RMSProp step";
}

double Inspection::value(const std::string& step, const std::string& layer, const std::string& quantity) const {
  for (const StepRow& r : rows)
    if (r.step == step && r.layer == layer && r.quantity == quantity) return r.value;
  return NAN;
}

Inspection inspect_step(Gan& gan, GanOptimizers& opt, const Tensor& real, const InspectSettings& st) {
  StepInspector insp(gan, /*tapes=*/true);
  Generator rng(st.seed);
  const StepHooks& hooks = insp.begin(st.protocol);
  StepLosses l;
  try {
    l = gan_step(gan, *opt.g, *opt.d, real, rng, st.loss == Loss::LS, st.protocol == Protocol::Simultaneous, &hooks);
  } catch (...) {
    insp.end();
    throw;
  }
  insp.end();
  Inspection ins;
  ins.variant = norm_name(gan.config.norm);
  ins.protocol = st.protocol;
  ins.losses = l;
  ins.rows = insp.rows();
  ins.rows.push_back({"D", "D", "loss_real", l.d_real});
  ins.rows.push_back({"D", "D", "loss_fake", l.d_fake});
  ins.rows.push_back({"G", "G", "loss", l.g});
  ins.layers = insp.layers();
  ins.notes = insp.notes();
  ins.tape_d = insp.tape("D");
  ins.tape_g = insp.tape("G");
  return ins;
}

Tensor inspect_batch(const Dataset& data, int64_t batch, uint64_t seed) {
  if (batch < 1) throw std::invalid_argument(fmt::format("inspect: batch {} (expected >= 1)", batch));
  if (data.size() < 1) throw std::invalid_argument(fmt::format("inspect: the data set {} is empty", data.describe()));
  std::vector<int64_t> idx;
  Generator pick(seed);
  for (int64_t i = 0; i < batch; ++i) idx.push_back(static_cast<int64_t>(pick.below(uint64_t(data.size()))));
  return Loader::load(data, idx);
}

nlohmann::json inspection_json(const std::vector<Inspection>& all, const nlohmann::json& settings) {
  nlohmann::json out;
  out["settings"] = settings;
  out["variants"] = nlohmann::json::array();
  for (const Inspection& ins : all) {
    nlohmann::json v;
    v["variant"] = ins.variant;
    v["losses"] = {{"d_real", ins.losses.d_real}, {"d_fake", ins.losses.d_fake}, {"g", ins.losses.g}};
    v["notes"] = ins.notes;
    for (const char* step : {"D", "G"}) {
      nlohmann::json s;
      s["description"] = step_description(step, ins.protocol);
      // Layers in the order of the forward, then any other layer of a row (the losses).
      std::vector<std::string> order;
      std::map<std::string, std::string> type;
      for (const StepLayer& l : ins.layers)
        if (l.step == step) order.push_back(l.layer), type[l.layer] = l.type;
      std::map<std::string, nlohmann::json> q;
      for (const StepRow& r : ins.rows) {
        if (r.step != step) continue;
        if (!q.count(r.layer) && !type.count(r.layer)) order.push_back(r.layer), type[r.layer] = "";
        q[r.layer][r.quantity] = r.value;
      }
      s["layers"] = nlohmann::json::array();
      for (const std::string& layer : order)
        s["layers"].push_back({{"layer", layer},
                               {"type", type[layer]},
                               {"quantities", q.count(layer) ? q[layer] : nlohmann::json::object()}});
      v["steps"][step] = s;
    }
    out["variants"].push_back(v);
  }
  return out;
}

const char* const kInspectCsvHeader = "variant,step,layer,quantity,value";

std::string inspection_csv(const std::vector<Inspection>& all) {
  std::string out = std::string(kInspectCsvHeader) + "\n";
  for (const Inspection& ins : all)
    for (const StepRow& r : ins.rows)
      out += fmt::format("{},{},{},{},{:.17g}\n", ins.variant, r.step, r.layer, r.quantity, r.value);
  return out;
}

}  // namespace wn::gan
