#include "eval/report.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "engine/tensor.h"
#include "eval/figures.h"
#include "eval/grad_plots.h"
#include "eval/provenance.h"
#include "eval/stats.h"
#include "gan/image_grid.h"
#include "gan/run_dir.h"
#include "gan/trainer.h"
#include "nn/checkpoint.h"

namespace wn::eval {

namespace fs = std::filesystem;

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::string model_label(const std::string& m) {
  // A study's model names: a normalization ("weight") or "resnet-" and one.
  const bool resnet = m.rfind("resnet-", 0) == 0;
  try {
    const std::string label = gan::norm_label(gan::parse_norm(resnet ? m.substr(7) : m));
    return resnet ? "ResNet " + label : label;
  } catch (const std::invalid_argument&) {
    return m;
  }
}

namespace {

struct Row {
  std::string model;
  std::vector<double> test, train, best, best_iter, secs, untrained, mean_image;
  int diverged = 0;
};

std::string pm(const std::vector<double>& v, int prec = 6) {
  std::vector<double> f;
  for (double x : v)
    if (std::isfinite(x)) f.push_back(x);
  if (f.empty()) return "n/a";
  double m = 0;
  for (double x : f) m += x;
  m /= double(f.size());
  if (f.size() < 2) return fmt::format("{:.{}f}", m, prec);
  double s = 0;
  for (double x : f) s += (x - m) * (x - m);
  return fmt::format("{:.{}f} ± {:.{}f}", m, prec, std::sqrt(s / double(f.size() - 1)), prec);
}

double mean(const std::vector<double>& v) {
  double s = 0;
  int n = 0;
  for (double x : v)
    if (std::isfinite(x)) s += x, ++n;
  return n ? s / n : NAN;
}

std::string label(const std::string& m) { return model_label(m); }

std::string base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string o;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    o += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], t[v & 63]};
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    o += {t[v >> 18], t[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    o += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], '='};
  }
  return o;
}

// How 'best' was chosen, and what that means for the final test.
std::string selection_note(const StudyReport& rep) {
  bool from_train = false, from_test = false;
  int64_t n = 0;
  for (const auto& r : rep.runs) {
    try {
      gan::TrainConfig c = gan::load_train_config(r.dir);
      (c.select_on == "train" ? from_train : from_test) = true;
      n = c.running_test;
    } catch (const std::exception&) {
    }
  }
  if (from_train && !from_test)
    return fmt::format("Model selection: the running test (every test interval, {} images drawn from the training "
                       "set) picks the 'best' checkpoint; the final-test images took no part in training or selection.",
                       n);
  return fmt::format("Model selection (the paper's protocol): the running test uses the first {} final-test images "
                     "and picks the 'best' checkpoint, so the final test is not untouched by model selection "
                     "(--select-on train draws the running test from the training images instead).",
                     n);
}

}  // namespace

// The curves of a run's metrics.csv: D's loss (real + fake), G's loss, the running test.
Curves read_curves(const std::string& path) {
  Curves m;
  for (const gan::MetricsRow& r : gan::read_metrics(path)) {
    m.it.push_back(double(r.iteration));
    m.d.push_back(r.d_real + r.d_fake);
    m.g.push_back(r.g_loss);
    if (r.running_test >= 0) {
      m.test_it.push_back(double(r.iteration));
      m.test.push_back(r.running_test);
    }
  }
  return m;
}

std::vector<double> smooth(const std::vector<double>& v, size_t w) {
  std::vector<double> o(v.size());
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    s += v[i];
    if (i >= w) s -= v[i - w];
    o[i] = s / double(std::min(i + 1, w));
  }
  return o;
}

// Rows of the first `k` cells of the top row of sample grids taken at evenly spaced
// iterations: how the images of a fixed code change over training.
std::vector<int64_t> write_strip(const std::string& run_dir, const std::string& out, int64_t k, int64_t rows) {
  std::vector<std::pair<int64_t, std::string>> grids;
  for (const auto& [it, file] : gan::RunDir(run_dir).sample_grids()) grids.emplace_back(it, file);
  if (grids.empty()) return {};
  gan::TrainConfig c = gan::load_train_config(run_dir);
  const int64_t C = c.model.channels, H = c.model.height, W = c.model.width;
  std::vector<Tensor> strip;
  std::vector<int64_t> iterations;
  const int64_t take = std::min<int64_t>(rows, grids.size());
  for (int64_t r = 0; r < take; ++r) {
    const auto& [it, file] = grids[take == 1 ? 0 : r * (grids.size() - 1) / (take - 1)];
    Tensor cells = gan::read_grid_cells(file, C, H, W, k);
    if (!cells.defined() || (!strip.empty() && strip[0].dim(0) != cells.dim(0))) continue;
    strip.push_back(cells);
    iterations.push_back(it);
  }
  if (strip.empty()) return {};
  gan::write_png_rows(out, strip);
  return iterations;
}

bool have_gnuplot() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

bool run_gnuplot(const std::string& script) {
  if (!have_gnuplot()) return false;
  std::string sh = "'";  // the script's path as one shell word
  for (char c : script) sh += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return std::system(fmt::format("gnuplot {}' 2>/dev/null", sh).c_str()) == 0;
}

std::string gnuplot_quote(const std::string& s) {
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("''") : std::string(1, c);
  return o + "'";
}

std::string img_html(const std::string& path, const std::string& alt) {
  if (!fs::exists(path)) return fmt::format("<p><em>{} not available</em></p>", alt);
  return fmt::format("<img alt=\"{}\" src=\"data:image/png;base64,{}\">", alt, base64(read_text(path)));
}

// The paper's comparisons paired by seed (eval/stats.h): a table of per-seed ratios, then
// one sentence per claim saying whether this study supports it. Markdown; empty without WN
// and another model.
std::string paired_claims(const StudyReport& rep) {
  auto side = [&](const std::string& m) {
    std::pair<std::vector<uint64_t>, std::vector<double>> s;
    for (const auto& r : rep.runs)
      if (r.model == m && r.error.empty()) s.first.push_back(r.seed), s.second.push_back(r.final_test);
    return s;
  };
  const auto wn = side("weight"), bn = side("batch"), va = side("none");
  struct Claim {
    std::string against, text;
    PairedRatio r;
  };
  std::vector<Claim> claims;
  if (!bn.first.empty())
    claims.push_back({"BN", "WN's reconstruction loss is lower than BN's (the paper: about 10% lower, WN / BN about 0.9)",
                      paired_ratio(wn.first, wn.second, bn.first, bn.second)});
  if (!va.first.empty())
    claims.push_back({"vanilla", "WN's reconstruction loss is lower than the vanilla DCGAN's",
                      paired_ratio(wn.first, wn.second, va.first, va.second)});
  if (wn.first.empty() || claims.empty()) return "";
  std::map<uint64_t, std::vector<std::string>> by_seed;
  for (size_t c = 0; c < claims.size(); ++c)
    for (size_t i = 0; i < claims[c].r.seeds.size(); ++i) {
      auto& row = by_seed[claims[c].r.seeds[i]];
      row.resize(claims.size(), "n/a");
      row[c] = fmt::format("{:.3f}", claims[c].r.ratios[i]);
    }
  std::string md = "\n## The claims, paired by seed\n\nEach seed's models share its split and its fixed codes, so their "
                   "final test losses are compared seed by seed: a ratio below 1 means WN reconstructs better. Over "
                   "seeds: the geometric mean of the ratios with a 95% Student t interval (taken on the log ratios), "
                   "and how many seeds agree.\n\n| seed |";
  for (const auto& c : claims) md += " WN / " + c.against + " |";
  md += "\n|---|";
  for (size_t c = 0; c < claims.size(); ++c) md += "---|";
  md += "\n";
  for (const auto& [seed, row] : by_seed) {
    md += fmt::format("| {} |", seed);
    for (const std::string& v : row) md += " " + v + " |";
    md += "\n";
  }
  md += "\n";
  for (const auto& c : claims) {
    const Interval& g = c.r.geo;
    const std::string v = verdict_below_one(c.r);
    md += fmt::format("- **{}**: WN / {} = {:.3f}", c.text, c.against, g.mean);
    if (g.n >= 2) md += fmt::format(" (95% interval {:.3f} to {:.3f} over {} seeds)", g.lower, g.upper, g.n);
    md += fmt::format("; {} of {} seeds below 1. ", c.r.below_one, g.n);
    if (v == "supports")
      md += "This study **supports** it: the interval lies below 1.";
    else if (v == "contradicts")
      md += "This study **contradicts** it: the interval lies above 1.";
    else
      md += g.n < 2 ? std::string("This study **cannot decide** it with one seed (`--seeds 5` gives an interval).")
                    : fmt::format("This study **cannot decide** it at {} seeds: the interval holds 1.", g.n);
    if (c.against == "BN" && g.n >= 2)
      md += g.lower <= 0.9 && 0.9 <= g.upper
                ? std::string(" The paper's 0.9 lies inside the interval.")
                : fmt::format(" The paper's 0.9 lies {} the interval.", 0.9 < g.lower ? "below" : "above");
    md += "\n";
  }
  return md;
}

// paired_claims' Markdown as HTML: its heading, paragraphs, table and bullets, with **bold**
// and `code` (the only Markdown it writes).
std::string claims_html(const std::string& md) {
  auto inline_html = [](std::string t) {
    for (const char* mark : {"**", "`"}) {
      const std::string m = mark, open = m == "**" ? "<b>" : "<code>", close = m == "**" ? "</b>" : "</code>";
      for (bool first = true;; first = !first) {
        const auto at = t.find(m);
        if (at == std::string::npos) break;
        t.replace(at, m.size(), first ? open : close);
      }
    }
    return t;
  };
  std::string html, line;
  std::istringstream in(md);
  bool table = false, list = false;
  while (std::getline(in, line)) {
    const bool row = line.rfind("|", 0) == 0, item = line.rfind("- ", 0) == 0;
    if (table && !row) html += "</table>\n", table = false;
    if (list && !item) html += "</ul>\n", list = false;
    if (line.empty()) continue;
    if (line.rfind("## ", 0) == 0) {
      html += "<h2>" + line.substr(3) + "</h2>\n";
    } else if (row) {
      if (line.rfind("|---", 0) == 0) continue;
      const bool head = !table;
      if (head) html += "<table>", table = true;
      html += "<tr>";
      std::istringstream cells(line.substr(1));
      for (std::string cell; std::getline(cells, cell, '|');)
        html += fmt::format("<{0}>{1}</{0}>", head ? "th" : "td", inline_html(cell.substr(cell.find_first_not_of(' ') == std::string::npos ? 0 : cell.find_first_not_of(' '))));
      html += "</tr>\n";
    } else if (item) {
      if (!list) html += "<ul>\n", list = true;
      html += "<li>" + inline_html(line.substr(2)) + "</li>\n";
    } else {
      html += "<p>" + inline_html(line) + "</p>\n";
    }
  }
  if (table) html += "</table>\n";
  if (list) html += "</ul>\n";
  return html;
}

void write_study_report(const std::string& dir, const StudyReport& rep) {
  fs::create_directories(dir);
  // Aggregate per model, in the order models first appear.
  std::vector<Row> rows;
  for (auto& r : rep.runs) {
    auto it = std::find_if(rows.begin(), rows.end(), [&](const Row& x) { return x.model == r.model; });
    if (it == rows.end()) {
      rows.push_back({r.model, {}, {}, {}, {}, {}, {}, {}, 0});
      it = rows.end() - 1;
    }
    it->test.push_back(r.final_test);
    it->train.push_back(r.final_train);
    it->best.push_back(r.best_running);
    it->best_iter.push_back(r.best_iteration >= 0 ? double(r.best_iteration) : NAN);
    it->secs.push_back(r.train_seconds);
    it->untrained.push_back(r.untrained_loss);
    it->mean_image.push_back(r.mean_image_loss);
    it->diverged += r.diverged;
  }
  auto find = [&](const std::string& m) -> const Row* {
    for (auto& r : rows)
      if (r.model == m) return &r;
    return nullptr;
  };
  const Row *wn = find("weight"), *bn = find("batch"), *va = find("none");
  auto ratio = [&](const Row* a, const Row* b) {
    return (a && b) ? fmt::format("{:.3f}", mean(a->test) / mean(b->test)) : std::string("n/a");
  };

  // The first line in words: the best model and how far below the yardsticks it is.
  const Row* best = nullptr;
  for (const auto& r : rows)
    if (std::isfinite(mean(r.test)) && (!best || mean(r.test) < mean(best->test))) best = &r;
  std::vector<double> mean_images;
  for (const auto& r : rows)
    for (double v : r.mean_image) mean_images.push_back(v);
  const double mean_image = mean(mean_images);
  std::string headline = rep.title;
  std::string yardsticks;
  if (best) {
    headline = fmt::format("{}: lowest reconstruction error {} ({:.4f} per pixel value on {} held-out images, lower is "
                           "better)",
                           rep.title, label(best->model), mean(best->test), rep.eval_n);
    yardsticks = fmt::format("Yardsticks on the same images with the same measure: the mean training image (no model) "
                             "scores {}; the best model, {}, scores {}{}; each model's untrained generator (its run's "
                             "initial weights, the same reconstruction) is in the table.",
                             std::isfinite(mean_image) ? fmt::format("{:.6f}", mean_image) : std::string("n/a"),
                             label(best->model), fmt::format("{:.6f}", mean(best->test)),
                             std::isfinite(mean_image) && mean(best->test) > 0
                                 ? fmt::format(" ({:.1f} times lower)", mean_image / mean(best->test))
                                 : std::string());
  }
  std::vector<std::pair<std::string, std::string>> prov = provenance_rows(rep.device);
  double total_train = 0;
  for (const auto& r : rep.runs) total_train += r.train_seconds;
  prov.push_back({"training time", fmt::format("{:.0f} s over {} runs", total_train, rep.runs.size())});
  std::string md = "# " + headline + "\n\n";
  md += fmt::format("Final test: mean per-image reconstruction loss ||G(z*) - x||^2 / (C H W) of {} final-test images, "
                    "{} RMSProp steps on z, with the best checkpoint (lowest running test). Mean ± sample standard "
                    "deviation over seeds.\n\n",
                    rep.eval_n, rep.eval_steps);
  md += "| model | final test loss | training images (same measure) | untrained generator (same measure) | best running test | at iteration | train time (s) | diverged runs |\n";
  md += "|---|---|---|---|---|---|---|---|\n";
  std::string csv = "model,seed,final_test_loss,train_images_loss,best_running_test,best_iteration,train_seconds,diverged,failed\n";
  for (auto& r : rows)
    md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n", label(r.model), pm(r.test), pm(r.train),
                      pm(r.untrained), pm(r.best), pm(r.best_iter, 0), pm(r.secs, 0), r.diverged);
  if (!yardsticks.empty()) md += "\n" + yardsticks + "\n";
  for (auto& r : rep.runs)
    csv += fmt::format("{},{},{:.9g},{:.9g},{:.9g},{},{:.1f},{},{}\n", label(r.model), r.seed, r.final_test, r.final_train,
                       r.best_running, r.best_iteration, r.train_seconds, r.diverged ? 1 : 0, r.error.empty() ? 0 : 1);
  for (auto& r : rep.runs)
    if (!r.error.empty()) md += fmt::format("\nFailed: {} seed {}: {}\n", label(r.model), r.seed, r.error);
  if (wn && (bn || va))
    md += fmt::format("\nRatios of final test loss: WN / BN = {}, WN / vanilla = {} (below 1: WN reconstructs better).\n",
                      ratio(wn, bn), ratio(wn, va));
  md += "\n" + selection_note(rep) + "\n";
  const std::string claims_md = paired_claims(rep);
  md += claims_md;
  md += "\nThe claim under test (the paper's abstract): WN's reconstruction loss is about 10% lower than BN's "
        "(WN / BN about 0.9). A short study with few seeds cannot decide it on its own: compare at the paper's "
        "length, over several seeds (docs/results.md).\n";
  md += "\n## Where these numbers came from\n\n| | |\n|---|---|\n";
  for (const auto& [k, v] : prov) md += fmt::format("| {} | {} |\n", k, v);
  nn::write_file_atomic(dir + "/results.md", md);
  nn::write_file_atomic(dir + "/results.csv", csv);

  // Plots.
  fs::create_directories(dir + "/plots");
  std::string test_plot, d_plot, g_plot;
  for (size_t i = 0; i < rep.runs.size(); ++i) {
    const auto& r = rep.runs[i];
    Curves m = read_curves(gan::RunDir(r.dir).metrics());
    const std::string dat = fmt::format("{}/plots/{}_seed{}.dat", dir, r.model, r.seed);
    std::string s, t;
    std::vector<double> d = smooth(m.d, 50), g = smooth(m.g, 50);
    for (size_t k = 0; k < m.it.size(); ++k) s += fmt::format("{} {:.6g} {:.6g}\n", m.it[k], d[k], g[k]);
    for (size_t k = 0; k < m.test.size(); ++k) t += fmt::format("{} {:.8g}\n", m.test_it[k], m.test[k]);
    nn::write_file_atomic(dat, s);
    nn::write_file_atomic(dat + ".test", t);
    const std::string title = fmt::format("{} seed {}", label(r.model), r.seed);
    const std::string sep = i ? ", " : "";
    test_plot += fmt::format("{}'{}' using 1:2 with linespoints lw 2 title '{}'", sep, fs::absolute(dat + ".test").string(), title);
    d_plot += fmt::format("{}'{}' using 1:2 with lines lw 1.5 title '{}'", sep, fs::absolute(dat).string(), title);
    g_plot += fmt::format("{}'{}' using 1:3 with lines lw 1.5 title '{}'", sep, fs::absolute(dat).string(), title);
  }
  const std::string pdir = fs::absolute(dir + "/plots").string();
  std::string gp = "set terminal pngcairo size 900,500 font 'Sans,10'\nset grid\nset key outside right\n";
  gp += fmt::format("set output '{}/running_test.png'\nset title 'Running reconstruction test (lower is better)'\n"
                    "set xlabel 'iteration'\nset ylabel 'reconstruction error per pixel value'\nplot {}\n",
                    pdir, test_plot);
  gp += fmt::format("set output '{}/d_loss.png'\nset title 'D loss (real + fake), moving average of 50'\nset ylabel 'loss'\nplot {}\n",
                    pdir, d_plot);
  gp += fmt::format("set output '{}/g_loss.png'\nset title 'G loss, moving average of 50'\nplot {}\n", pdir, g_plot);
  nn::write_file_atomic(dir + "/plots/plots.gp", gp);
  const bool plotted = run_gnuplot(dir + "/plots/plots.gp");

  fs::create_directories(dir + "/strips");
  std::string strips_html;
  for (auto& r : rep.runs) {
    const std::string p = fmt::format("{}/strips/{}_seed{}.png", dir, r.model, r.seed);
    if (!write_strip(r.dir, p, 8, 10).empty())
      strips_html += fmt::format("<figure><figcaption>{} seed {}</figcaption>{}</figure>\n", label(r.model), r.seed,
                                 img_html(p, "samples of " + r.model));
  }

  // The HTML report: the table, the plots and the strips in one file.
  std::string table = "<table><tr><th>model</th><th>final test loss</th><th>training images</th><th>untrained "
                      "generator</th><th>best running test</th><th>at iteration</th><th>train time (s)</th><th>diverged "
                      "runs</th></tr>\n";
  for (auto& r : rows)
    table += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        label(r.model), pm(r.test), pm(r.train), pm(r.untrained), pm(r.best), pm(r.best_iter, 0), pm(r.secs, 0),
        r.diverged);
  table += "</table>\n";
  std::string html = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + rep.title +
                     "</title>\n<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
                     "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:4px 10px;text-align:right}"
                     "th{background:#eef}td:first-child{text-align:left}img{max-width:100%;image-rendering:pixelated}"
                     "figure{margin:1em 0;display:inline-block;vertical-align:top}figcaption{font-weight:bold}"
                     "figure img{width:360px}figure.wide{display:block}figure.wide img{width:auto;max-width:100%}"
                     "figure.wide figcaption{font-weight:normal;max-width:900px}table.gradflow td:nth-child(2){text-align:left}</style></head><body>\n";
  html += "<h1>" + headline + "</h1>\n";
  html += fmt::format("<p>Final test: mean per-image reconstruction loss of {} final-test images ({} RMSProp steps on z, "
                      "best checkpoint).{}</p>\n",
                      rep.eval_n, rep.eval_steps,
                      (wn && (bn || va)) ? fmt::format(" Ratios: WN / BN = {}, WN / vanilla = {}.", ratio(wn, bn), ratio(wn, va))
                                         : std::string());
  html += table;
  if (!yardsticks.empty()) html += "<p>" + yardsticks + "</p>\n";
  html += "<p>" + selection_note(rep) + "</p>\n";
  html += claims_html(claims_md);
  html += "<p>The claim under test (the paper's abstract): WN's reconstruction loss is about 10% lower than BN's (WN / "
          "BN about 0.9). A short study with few seeds cannot decide it on its own: compare at the paper's length, "
          "over several seeds.</p>\n";
  html += "<h2>Running reconstruction test</h2>\n" +
          (plotted ? img_html(dir + "/plots/running_test.png", "running test") : "<p><em>gnuplot not installed</em></p>");
  html += "<h2>Discriminator and generator losses</h2>\n" + img_html(dir + "/plots/d_loss.png", "D loss") +
          img_html(dir + "/plots/g_loss.png", "G loss");
  const std::vector<Figure> figs = write_study_figures(dir, rep.runs);
  if (!figs.empty()) {
    html += "<h2>The paper's figures</h2>\n";
    md += "\n## Figures\n\n";
    for (const auto& f : figs) {
      html += fmt::format("<figure class=\"wide\">{}<figcaption>{}</figcaption></figure>\n",
                          img_html(f.png, fs::path(f.png).filename().string()), f.caption);
      md += fmt::format("- `{}`: {}\n", fs::relative(f.png, dir).string(), f.caption);
    }
  }
  // Gradient flow, from the traces of the first seed's runs (`--trace-grads`).
  std::vector<TracedRun> traced;
  for (const auto& r : rep.runs)
    if (r.seed == rep.runs.front().seed) traced.push_back({r.model, r.dir});
  const GradFlowReport flow = rep.runs.empty() ? GradFlowReport{} : write_grad_flow(dir + "/plots/grad", traced);
  if (!flow.figures.empty()) {
    html += flow.html;
    md += flow.markdown;
  }
  if (!figs.empty() || !flow.figures.empty()) nn::write_file_atomic(dir + "/results.md", md);  // with the figures
  html += "<h2>Samples from one fixed code across iterations</h2>\n<p>Each row is a later point of training (top: "
          "start), each column one fixed code. Stable training changes a column slowly and steadily.</p>\n" +
          strips_html;
  html += "<h2>Where these numbers came from</h2>\n<table>\n";
  for (const auto& [k, v] : prov) html += fmt::format("<tr><td>{}</td><td>{}</td></tr>\n", k, v);
  html += "</table>\n</body></html>\n";
  nn::write_file_atomic(dir + "/report.html", html);
}

}  // namespace wn::eval
