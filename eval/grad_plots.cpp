#include "eval/grad_plots.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>

#include "eval/report.h"
#include "gan/grad_trace.h"
#include "gan/run_dir.h"
#include "gan/trainer.h"
#include "nn/checkpoint.h"

namespace wn::eval {

namespace fs = std::filesystem;

namespace {

// The weight layers (linear and convolution) are those with cos_grad; (T)PReLU slopes and
// BN's gamma are parameters named weight too, and are left out of the weight plots.
constexpr const char* kCos = "cos_grad:weight";
constexpr const char* kGrad = "grad_norm:weight";
constexpr const char* kUpdate = "update_ratio:weight";
constexpr const char* kGradEff = "grad_norm_effective:weight";  // dL/dw of WN's w = scale v / ||v||

// One run's trace, each layer read from its own network's step (G's layers from the G
// step, D's from the D step): (layer, quantity) -> iteration -> value.
struct Trace {
  std::string model;
  std::map<std::pair<std::string, std::string>, std::map<int64_t, double>> q;
  std::vector<std::string> layers;  // every layer, G's then D's, in trace order
  std::set<int64_t> iterations;

  // The value, NaN when not traced.
  double at(const std::string& layer, const std::string& quantity, int64_t it) const {
    auto s = q.find({layer, quantity});
    if (s == q.end()) return NAN;
    auto v = s->second.find(it);
    return v == s->second.end() ? NAN : v->second;
  }
  bool has(const std::string& layer, const std::string& quantity) const { return q.count({layer, quantity}) > 0; }
  // Layers that have `quantity` (and `also`, when given), in order.
  std::vector<std::string> with(const std::string& quantity, const std::string& also = "") const {
    std::vector<std::string> o;
    for (const auto& l : layers)
      if (has(l, quantity) && (also.empty() || has(l, also))) o.push_back(l);
    return o;
  }
};

Trace load(const TracedRun& run) {
  Trace t;
  t.model = run.model;
  std::vector<std::string> g, d;
  std::set<std::string> seen;  // layers met so far (linear in the rows, whatever the layer count)
  for (const gan::TraceRow& r : gan::read_trace(gan::RunDir(run.dir).grad_trace())) {
    if (r.layer.empty() || r.step.empty() || r.layer[0] != r.step[0]) continue;
    auto& series = t.q[{r.layer, r.quantity}];
    series[r.iteration] = r.value;
    t.iterations.insert(r.iteration);
    if (seen.insert(r.layer).second) (r.layer[0] == 'G' ? g : d).push_back(r.layer);
  }
  t.layers = g;
  t.layers.insert(t.layers.end(), d.begin(), d.end());
  return t;
}

std::string q(const std::string& s) { return gnuplot_quote(s); }

std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return o;
}

std::string num(double v) { return std::isfinite(v) ? fmt::format("{:.3g}", v) : "-"; }

// A gnuplot data cell: '-' (missing) for NaN, and for values a log axis cannot show.
std::string cell(double v, bool log) { return std::isfinite(v) && (!log || v > 0) ? fmt::format("{:.9g}", v) : "-"; }


// Writes one data file per run: iteration, then one column per layer of `quantity`;
// returns the plot command of one panel per run (lines per layer).
std::string panels(const std::string& dir, const std::string& stem, const std::vector<Trace>& traces,
                   const std::string& quantity, bool abs_value, const std::string& extra) {
  std::string gp;
  for (const Trace& t : traces) {
    const std::vector<std::string> layers = t.with(quantity, kCos);
    std::string dat = fmt::format("# iteration {}\n", quantity);
    for (int64_t it : t.iterations) {
      dat += std::to_string(it);
      for (const auto& l : layers) {
        double v = t.at(l, quantity, it);
        dat += " " + cell(abs_value ? std::fabs(v) : v, true);
      }
      dat += "\n";
    }
    const std::string file = fs::absolute(fmt::format("{}/{}_{}.dat", dir, stem, t.model)).string();
    nn::write_file_atomic(file, dat);
    gp += fmt::format("set title {}\n", q(model_label(t.model)));
    std::string plot;
    for (size_t i = 0; i < layers.size(); ++i)
      plot += fmt::format("{}{} using 1:{} with linespoints pt 7 ps 0.5 lw 1.5 title {}", i ? ", " : "", q(file), i + 2,
                          q(layers[i]));
    if (layers.empty()) plot = "NaN notitle";
    gp += "plot " + plot + extra + "\n";
  }
  return gp;
}

std::string multiplot_head(const std::string& png, size_t n, const std::string& title, const std::string& ylabel) {
  const size_t cols = std::min<size_t>(n, 3), rows = (n + cols - 1) / cols;
  return fmt::format(
      "set terminal pngcairo size {},{} font 'Sans,9'\nset output {}\nset datafile missing '-'\nset grid\n"
      "set logscale y\nset format y '10^{{%L}}'\nset key below font ',8' maxrows 4\nset xlabel 'iteration'\n"
      "set ylabel {}\nset multiplot layout {},{} title {}\n",
      std::max<size_t>(420 * cols, 900), 430 * rows, q(png), q(ylabel), rows, cols, q(title));
}

// The traced iteration closest to the fraction f of the way through `its`.
int64_t pick(const std::vector<int64_t>& its, double f) { return its[size_t(std::lround(f * double(its.size() - 1)))]; }

// The iterations every trace has.
std::vector<int64_t> common_iterations(const std::vector<Trace>& traces) {
  std::vector<int64_t> its(traces[0].iterations.begin(), traces[0].iterations.end());
  for (const Trace& t : traces)
    its.erase(std::remove_if(its.begin(), its.end(), [&](int64_t i) { return !t.iterations.count(i); }), its.end());
  return its;
}

// The layer and value of the largest (or smallest) |quantity| over a trace's layers at it.
std::pair<std::string, double> extreme(const Trace& t, const std::string& quantity, int64_t it, bool largest) {
  std::pair<std::string, double> best{"", NAN};
  for (const auto& l : t.with(quantity)) {
    const double v = std::fabs(t.at(l, quantity, it));
    if (!std::isfinite(v)) continue;
    if (!std::isfinite(best.second) || (largest ? v > best.second : v < best.second)) best = {l, v};
  }
  return best;
}

const Trace* find(const std::vector<Trace>& traces, const std::string& model) {
  for (const auto& t : traces)
    if (t.model == model) return &t;
  return nullptr;
}

}  // namespace

GradFlowReport write_grad_flow(const std::string& dir, const std::vector<TracedRun>& runs) {
  GradFlowReport rep;
  std::vector<Trace> traces;
  for (const auto& r : runs) {
    Trace t = load(r);
    if (!t.iterations.empty() && std::none_of(traces.begin(), traces.end(), [&](const Trace& x) { return x.model == t.model; }))
      traces.push_back(std::move(t));
  }
  if (traces.empty()) return rep;
  const std::vector<int64_t> its = common_iterations(traces);
  if (its.empty()) return rep;
  fs::create_directories(dir);
  const std::string adir = fs::absolute(dir).string();
  const int64_t last = its.back();
  const Trace* wn = find(traces, "weight");
  const Trace* va = find(traces, "none");
  const Trace* bn = find(traces, "batch");

  std::string gp;
  // 1. Gradient norms over iterations.
  gp += multiplot_head(adir + "/grad_norm.png", traces.size(),
                       "Gradient norm of each layer's weight parameter (v in WN layers), at the step that updates it",
                       "||dL/dweight||");
  gp += panels(adir, "grad_norm", traces, kGrad, false, "");
  gp += "unset multiplot\n";
  rep.figures.push_back(
      {adir + "/grad_norm.png",
       "Gradient norm of each weight layer over training, one panel per model (log scale; G's layers from the G step, "
       "D's from the D step, as the optimizer saw them). In WN layers the parameter is v, and dL/dv = (scale/||v||) "
       "times the part of dL/dw orthogonal to v: as ||v|| grows during training the same dL/dw gives a smaller dL/dv, "
       "so WN layers slow themselves down. Compare curves within a panel, not across: v's gradient is not W's."});

  // 2. The layer profile at chosen iterations (bars, models side by side).
  std::vector<int64_t> chosen;
  for (double f : {0.0, 0.5, 1.0}) {
    const int64_t it = pick(its, f);
    if (std::find(chosen.begin(), chosen.end(), it) == chosen.end()) chosen.push_back(it);
  }
  std::vector<std::string> layers;  // the weight layers of every model, in the first model's order
  for (const auto& l : traces[0].with(kGrad, kCos))
    if (std::all_of(traces.begin(), traces.end(), [&](const Trace& t) { return t.has(l, kGrad); })) layers.push_back(l);
  // The bars compare models, so they show dL/dw of the weight each layer computes with (WN's
  // effective w; the same as dL/dW for plain layers) when the traces have it.
  const bool effective = std::all_of(traces.begin(), traces.end(), [&](const Trace& t) {
    return std::all_of(layers.begin(), layers.end(), [&](const std::string& l) { return t.has(l, kGradEff); });
  });
  const char* bar_q = effective ? kGradEff : kGrad;
  gp += fmt::format(
      "set terminal pngcairo size {},{} font 'Sans,9'\nset output {}\nset datafile missing '-'\nset grid ytics\n"
      "set style data histograms\nset style histogram clustered gap 1\nset style fill solid 0.85 border -1\n"
      "set boxwidth 0.9\nset logscale y\nset format y '10^{{%L}}'\nset key top right font ',8'\nset xtics rotate by -30 "
      "font ',8'\nunset xlabel\nset ylabel {}\nset multiplot layout {},1 title {}\n",
      std::max<size_t>(900, 60 * layers.size() * traces.size()), 330 * chosen.size(), q(adir + "/grad_profile.png"),
      q(effective ? "||dL/dw||" : "||dL/dweight||"), chosen.size(),
      q(effective ? "Layer profile of ||dL/dw|| (w: the weight the layer computes with), models side by side"
                  : "Layer profile of the gradient norm, models side by side"));
  for (int64_t it : chosen) {
    std::string dat = "# layer";
    for (const auto& t : traces) dat += " " + t.model;
    dat += "\n";
    for (const auto& l : layers) {
      dat += l;
      for (const auto& t : traces) dat += " " + cell(t.at(l, bar_q, it), true);
      dat += "\n";
    }
    const std::string file = fmt::format("{}/grad_profile_{}.dat", adir, it);
    nn::write_file_atomic(file, dat);
    std::string plot;
    for (size_t m = 0; m < traces.size(); ++m)
      plot += fmt::format("{}{} using {}{} title {}", m ? ", " : "", q(file), m + 2, m ? "" : ":xtic(1)",
                          q(model_label(traces[m].model)));
    gp += fmt::format("set title {}\nplot {}\n", q(fmt::format("iteration {}", it)), plot);
  }
  gp += "unset multiplot\nset style data lines\nset xtics norotate font ',9'\nset grid xtics ytics\n";
  rep.figures.push_back(
      {adir + "/grad_profile.png",
       fmt::format("The gradient norm layer by layer (G's layers, then D's) at iterations {}, the models side by side. {} "
                   "Without normalization the profile shows how the gradient grows or shrinks as it flows back "
                   "through the layers; BN rescales each layer's gradient by the inverse batch standard deviation.",
                   [&] {
                     std::string s;
                     for (size_t i = 0; i < chosen.size(); ++i)
                       s += (i ? (i + 1 == chosen.size() ? " and " : ", ") : "") + std::to_string(chosen[i]);
                     return s;
                   }(),
                   effective ? "The bars are ||dL/dw|| for the weight each layer computes with: W itself in plain "
                               "layers, w = scale v / ||v|| in WN layers, so the models compare (dL/dv of WN's v is "
                               "smaller by scale / ||v|| and loses the part along v)."
                             : "WN's bars are dL/dv, not comparable with the plain layers' dL/dW (this trace predates "
                               "the effective-weight gradient).")});

  // 3. |cos(weight, dL/dweight)| with float32's rounding level.
  gp += multiplot_head(adir + "/cos.png", traces.size(),
                       "|cos(weight, dL/dweight)| over the whole tensor (dashed: float32 unit roundoff 2^{-24})",
                       "|cos|");
  double lowest = kFloat32Roundoff;  // one y range for every panel, so the models compare
  for (const Trace& t : traces)
    for (const auto& l : t.with(kCos))
      for (const auto& [it, v] : t.q.at({l, kCos}))
        if (std::fabs(v) > 0) lowest = std::min(lowest, std::fabs(v));
  gp += fmt::format("set yrange [{:g}:1]\n", std::pow(10.0, std::floor(std::log10(lowest))));
  gp += panels(adir, "cos", traces, kCos, true,
               fmt::format(", {:.9g} with lines dt 2 lw 2 lc 'black' title 'float32 roundoff 2^{{-24}}'", kFloat32Roundoff));
  gp += "unset multiplot\nset autoscale y\n";
  std::string cos_numbers;
  if (wn) {
    auto [l, v] = extreme(*wn, kCos, last, true);
    cos_numbers += fmt::format(" At iteration {}, WN's largest |cos| is {} ({})", last, num(v), l);
    if (va) {
      auto [l2, v2] = extreme(*va, kCos, last, false);
      cos_numbers += fmt::format(", vanilla's smallest {} ({})", num(v2), l2);
    }
    cos_numbers += ".";
  }
  rep.figures.push_back(
      {adir + "/cos.png",
       "The cosine between each layer's weight and its gradient, over training (log scale). Weight normalization makes "
       "the loss independent of ||v||, so dL/dv is orthogonal to v: WN's cosines sit within a few decades of float32's "
       "rounding level (the dashed line; a dot product of n terms rounds to about sqrt(n) roundoffs), while plain layers' "
       "are 1e-3 and far above (up to order 1). A convolution followed by BN is scale-invariant too (BN divides by the batch standard "
       "deviation and removes the bias), so its cosine is also small, though not at rounding level: BN's eps breaks "
       "the invariance slightly. BN's first linear layer keeps a per-position bias that BN does not remove, so only "
       "its weight and bias scaled together leave the output unchanged, and its cosine is not small. Where a WN layer's ||v|| is tiny (the 0.01 initial "
       "scale of G's first layer) the eps inside the norm is not negligible and the cosine is larger." +
           cos_numbers});

  // 4. Update / weight ratios of the real optimizer steps.
  gp += multiplot_head(adir + "/update_ratio.png", traces.size(),
                       "Update / weight: ||weight after - before|| / ||before|| of each RMSProp step", "update / weight");
  gp += panels(adir, "update_ratio", traces, kUpdate, false, "");
  gp += "unset multiplot\n";
  std::string upd_numbers;
  if (wn) {
    const std::string l = wn->with(kUpdate, kCos).empty() ? "" : wn->with(kUpdate, kCos).front();
    if (!l.empty())
      upd_numbers = fmt::format(" WN's {}: {} at iteration {}, {} at iteration {}.", l, num(wn->at(l, kUpdate, its.front())),
                                its.front(), num(wn->at(l, kUpdate, last)), last);
  }
  rep.figures.push_back(
      {adir + "/update_ratio.png",
       "The relative size of each real update (the run's own RMSProp steps), over training (log scale). RMSProp "
       "divides by the running root mean square of the gradient, so a step moves each element by about the learning "
       "rate whatever the gradient's size; the ratio then falls as the weight grows. WN's v only grows (each update is "
       "orthogonal to v, so ||v|| increases), which slowly lowers its effective learning rate: the paper's argument "
       "for WN's stability." +
           upd_numbers});

  // 5. BN's projection shares.
  std::vector<Trace> with_bn;
  for (const auto& t : traces)
    if (!t.with("bn_mean_share").empty()) with_bn.push_back(t);
  if (!with_bn.empty()) {
    gp += multiplot_head(adir + "/bn_shares.png", with_bn.size(),
                         "Share of the incoming gradient's norm that BN's backward removes", "share of ||dL/dy||");
    gp += "unset logscale y\nset format y '%g'\nset yrange [0:1]\n";
    for (const Trace& t : with_bn) {
      const std::vector<std::string> bl = t.with("bn_mean_share");
      std::string dat = "# iteration, then per layer mean share and xhat share\n";
      for (int64_t it : t.iterations) {
        dat += std::to_string(it);
        for (const auto& l : bl) dat += " " + cell(t.at(l, "bn_mean_share", it), false) + " " + cell(t.at(l, "bn_xhat_share", it), false);
        dat += "\n";
      }
      const std::string file = fmt::format("{}/bn_shares_{}.dat", adir, t.model);
      nn::write_file_atomic(file, dat);
      std::string plot;
      for (size_t i = 0; i < bl.size(); ++i)
        plot += fmt::format("{}{} using 1:{} with linespoints pt 7 ps 0.5 lc {} title {}, {} using 1:{} with linespoints "
                            "dt 2 pt 6 ps 0.5 lc {} title {}",
                            i ? ", " : "", q(file), 2 * i + 2, i + 1, q(bl[i] + " mean"), q(file), 2 * i + 3, i + 1,
                            q(bl[i] + " xhat"));
      gp += fmt::format("set title {}\nplot {}\n", q(model_label(t.model)), plot);
    }
    gp += "unset multiplot\nset autoscale y\n";
    std::string bn_numbers;
    if (bn) {
      const auto bl = bn->with("bn_mean_share");
      if (!bl.empty())
        bn_numbers = fmt::format(" {} at iteration {}: mean share {}, xhat share {}.", bl.front(), last,
                                 num(bn->at(bl.front(), "bn_mean_share", last)), num(bn->at(bl.front(), "bn_xhat_share", last)));
    }
    rep.figures.push_back(
        {adir + "/bn_shares.png",
         "Batch norm's backward, dx = gamma/sigma (dy - mean(dy) - xhat mean(dy xhat)), removes two parts of the "
         "incoming gradient: its mean over the batch (solid) and its projection on the normalized activations (dashed). "
         "These are the gradient directions that would only shift or rescale the batch, which BN undoes; the larger the "
         "shares, the less of D's or G's signal reaches the layer below." +
             bn_numbers});
  }
  nn::write_file_atomic(adir + "/grad_plots.gp", gp);
  const bool plotted = run_gnuplot(adir + "/grad_plots.gp");

  // The numbers behind the pictures at the last common iteration.
  rep.table_iteration = last;
  for (const auto& t : traces) rep.models.push_back(t.model);
  const std::vector<std::pair<std::string, std::string>> quantities = {
      {kGrad, "||dL/dweight|| (v in WN layers)"}, {kGradEff, "||dL/dw|| (w the layer computes with)"},
      {kUpdate, "update / weight"}, {kCos, "cos(weight, dL/dweight)"},
      {"wn_max_abs_cos", "max over units |cos(v_u, dL/dv_u)|"},
      {"wn_eps_share_max", "largest eps / (||v_u||^2 + eps)"}};
  for (const auto& l : layers)
    for (const auto& [qn, _] : quantities) {
      GradFlowReport::Row row{l, qn, {}};
      bool any = false;
      for (const auto& t : traces) {
        row.values.push_back(t.at(l, qn, last));
        any |= std::isfinite(row.values.back());
      }
      if (any) rep.table.push_back(row);
    }

  // The section, ready to embed.
  std::string& h = rep.html;
  std::string& md = rep.markdown;
  h += "<h2>Gradient flow</h2>\n<p>From each run's grad_trace.csv (<code>--trace-grads</code>): per layer and per step, "
       "read during training without changing it.</p>\n";
  md += "\n## Gradient flow\n\n";
  for (const Figure& f : rep.figures) {
    const std::string name = fs::path(f.png).filename().string();
    h += fmt::format("<figure class=\"wide\">{}<figcaption>{}</figcaption></figure>\n",
                     plotted && fs::exists(f.png) ? img_html(f.png, name)
                     : have_gnuplot() ? "<p><em>gnuplot failed on " + name + " (grad_plots.gp is beside the data)</em></p>"
                                    : "<p><em>gnuplot not installed</em></p>",
                     escape(f.caption));  // plain text that quotes layer names read from a file
    md += fmt::format("- `{}`: {}\n", name, f.caption);
  }
  h += fmt::format("<h3>The numbers at iteration {}</h3>\n<table class=\"gradflow\"><tr><th>layer</th><th>quantity</th>", last);
  md += fmt::format("\n| layer | quantity (iteration {}) |", last);
  for (const auto& m : rep.models) {
    h += "<th>" + escape(model_label(m)) + "</th>";
    md += " " + model_label(m) + " |";
  }
  h += "</tr>\n";
  md += "\n|---|---|" + [&] {
    std::string s;
    for (size_t i = 0; i < rep.models.size(); ++i) s += "---|";
    return s;
  }() + "\n";
  for (const auto& r : rep.table) {
    std::string label;
    for (const auto& [qn, l] : quantities)
      if (qn == r.quantity) label = l;
    h += fmt::format("<tr><td>{}</td><td>{}</td>", escape(r.layer), label);  // names come from a file
    md += fmt::format("| {} | {} |", r.layer, label);
    for (double v : r.values) {
      h += "<td>" + num(v) + "</td>";
      md += " " + num(v) + " |";
    }
    h += "</tr>\n";
    md += "\n";
  }
  h += "</table>\n";
  return rep;
}

std::string write_grad_flow_page(const std::string& path, const std::string& out) {
  std::vector<TracedRun> runs;
  auto model_of = [](const std::string& run) {
    try {
      const gan::TrainConfig c = gan::load_train_config(run);
      return (c.model.arch == gan::Arch::ResNet ? std::string("resnet-") : std::string()) + gan::norm_name(c.model.norm);
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("{}: cannot read the run's config.json ({})", run, e.what()));
    }
  };
  if (fs::exists(gan::RunDir(path).grad_trace())) {
    runs.push_back({model_of(path), path});
  } else if (fs::is_directory(path + "/runs")) {
    std::vector<std::string> dirs;
    for (const auto& e : fs::directory_iterator(path + "/runs"))
      if (fs::exists(gan::RunDir(e.path().string()).grad_trace())) dirs.push_back(e.path().string());
    std::sort(dirs.begin(), dirs.end());
    for (const auto& d : dirs) runs.push_back({model_of(d), d});
    // The study's order: vanilla, BN, WN (then the ResNets), whatever the folder names.
    static const std::vector<std::string> order = {"none", "batch", "weight", "weight-affine", "resnet-none",
                                                  "resnet-batch", "resnet-weight"};
    auto rank = [&](const TracedRun& r) {
      return size_t(std::find(order.begin(), order.end(), r.model) - order.begin());
    };
    std::stable_sort(runs.begin(), runs.end(), [&](const TracedRun& a, const TracedRun& b) { return rank(a) < rank(b); });
  } else if (!fs::exists(path)) {
    throw std::runtime_error(fmt::format("--run {}: no such folder", path));
  }
  if (runs.empty())
    throw std::runtime_error(fmt::format("--run {}: no grad_trace.csv there (nor in {}/runs/*); train with --trace-grads N "
                                         "to record the gradient flow",
                                         path, path));
  const GradFlowReport rep = write_grad_flow(out, runs);
  if (rep.figures.empty())
    throw std::runtime_error(fmt::format("--run {}: the trace holds no rows every run shares", path));
  const std::string page = out + "/grad_flow.html";
  nn::write_file_atomic(
      page, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Gradient flow of " + escape(path) +
                "</title>\n<style>body{font-family:sans-serif;max-width:1300px;margin:2em auto;color:#222}table{border-"
                "collapse:collapse}td,th{border:1px solid #bbb;padding:4px 10px;text-align:right}th{background:#eef}"
                "td:first-child,td:nth-child(2){text-align:left}img{max-width:100%}figure{margin:1em 0}figcaption{max-"
                "width:900px}</style></head><body>\n<h1>Gradient flow of " +
                escape(path) + "</h1>\n" + rep.html + "</body></html>\n");
  return page;
}

}  // namespace wn::eval
