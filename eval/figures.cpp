#include "eval/figures.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>

#include "engine/tensor.h"
#include "gan/image_grid.h"
#include "gan/run_dir.h"
#include "gan/trainer.h"
#include "nn/checkpoint.h"

namespace wn::eval {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kPad = 2;

// The sample grids of a run: iteration -> file.
std::map<int64_t, std::string> sample_grids(const std::string& run_dir) { return gan::RunDir(run_dir).sample_grids(); }

// Concatenates (n_i, C, H, W) tensors along the first dimension.
Tensor cat(const std::vector<Tensor>& parts) {
  std::vector<double> v;
  int64_t n = 0;
  for (const auto& p : parts) {
    std::vector<double> x = p.to_vector();
    v.insert(v.end(), x.begin(), x.end());
    n += p.dim(0);
  }
  const Shape& s = parts[0].shape();
  return Tensor::from_vector(v, {n, s[1], s[2], s[3]});
}

// Draws raw (a PNG of rows x cols cells of h x w pixels) with a title, labels above the
// column groups and beside the rows, into out. Without gnuplot, out is the raw image.
void label_png(const std::string& raw, const std::string& out, const std::string& title,
               const std::vector<std::pair<double, std::string>>& top,
               const std::vector<std::pair<double, std::string>>& left, int64_t img_w, int64_t img_h) {
  const int64_t scale = std::clamp<int64_t>(900 / std::max<int64_t>(img_w, 1), 1, 4);
  std::string gp = fmt::format(
      "set terminal pngcairo size {},{} font 'Sans,10'\nset output {}\nset title {}\nunset key\nset border 0\n"
      "set size ratio -1\nset lmargin 15\nset rmargin 2\nset tmargin 5\nset bmargin 1\nset xrange [0:{}]\n"
      "set yrange [{}:0]\nunset xtics\nset x2range [0:{}]\n",
      std::max<int64_t>(img_w * scale + 150, 8 * int64_t(title.size()) + 60), img_h * scale + 110,
      gnuplot_quote(fs::absolute(out).string()), gnuplot_quote(title), img_w, img_h, img_w);
  std::string xt, yt;
  for (const auto& [x, l] : top) xt += fmt::format("{}{} {}", xt.empty() ? "" : ", ", gnuplot_quote(l), x);
  for (const auto& [y, l] : left) yt += fmt::format("{}{} {}", yt.empty() ? "" : ", ", gnuplot_quote(l), y);
  gp += fmt::format("set x2tics ({}) scale 0\nset ytics ({}) scale 0\n", xt, yt);
  gp += fmt::format("plot {} binary filetype=png flipy with rgbimage\n", gnuplot_quote(fs::absolute(raw).string()));
  const std::string script = out + ".gp";
  nn::write_file_atomic(script, gp);
  const bool ok = run_gnuplot(script);
  if (!ok) fs::copy_file(raw, out, fs::copy_options::overwrite_existing);
}

// Centre of cell i along one axis.
double centre(int64_t i, int64_t size) { return double(kPad + i * (size + kPad)) + double(size) / 2; }

// Runs of one seed, in the study's model order.
std::map<uint64_t, std::vector<const StudyRun*>> by_seed(const std::vector<StudyRun>& runs) {
  std::map<uint64_t, std::vector<const StudyRun*>> m;
  for (const auto& r : runs) m[r.seed].push_back(&r);
  return m;
}

// Samples of the first k fixed codes, models side by side, one row per iteration.
bool samples_figure(const std::vector<const StudyRun*>& runs, const std::vector<int64_t>& iters, int64_t k,
                    const std::string& out, const std::string& title) {
  gan::TrainConfig c = gan::load_train_config(runs[0]->dir);
  const int64_t C = c.model.channels, H = c.model.height, W = c.model.width;
  std::vector<Tensor> rows;
  std::vector<std::pair<double, std::string>> left, top;
  for (int64_t it : iters) {
    std::vector<Tensor> parts;
    for (const StudyRun* r : runs) {
      Tensor t = gan::read_grid_cells(sample_grids(r->dir).at(it), C, H, W, k, kPad);
      if (!t.defined() || t.dim(0) < k) return false;
      parts.push_back(t);
    }
    left.emplace_back(centre(int64_t(rows.size()), H), fmt::format("iteration {}", it));
    rows.push_back(cat(parts));
  }
  for (size_t m = 0; m < runs.size(); ++m)
    top.emplace_back((centre(int64_t(m) * k, W) + centre(int64_t(m + 1) * k - 1, W)) / 2, model_label(runs[m]->model));
  const std::string raw = out + ".raw.png";
  gan::write_png_rows(raw, rows, kPad);
  label_png(raw, out, title, top, left, int64_t(runs.size()) * k * (W + kPad) + kPad,
            int64_t(rows.size()) * (H + kPad) + kPad);
  fs::remove(raw);
  return true;
}

}  // namespace

std::vector<Figure> write_study_figures(const std::string& dir, const std::vector<StudyRun>& runs) {
  std::vector<Figure> figs;
  fs::create_directories(dir + "/figures");
  for (const auto& [seed, rs] : by_seed(runs)) {
    // (b) Reconstructions of the same final-test images by each model.
    std::vector<nn::TensorFile> first;
    for (const StudyRun* r : rs)
      if (!r->eval_first.empty() && fs::exists(r->eval_first)) first.push_back(nn::load_safetensors(r->eval_first));
    if (first.size() == rs.size() && !rs.empty()) {
      Tensor targets = first[0].get("targets");
      bool same = true;
      for (auto& f : first) same = same && f.get("targets").shape() == targets.shape() &&
                                   f.get("targets").to_vector() == targets.to_vector();
      if (same) {
        const int64_t n = std::min<int64_t>(targets.dim(0), 8), C = targets.dim(1), H = targets.dim(2),
                      W = targets.dim(3), per = C * H * W;
        std::vector<Tensor> rows;
        std::vector<std::pair<double, std::string>> top{{centre(0, W), "test image"}}, left;
        std::vector<std::vector<double>> recs;
        for (auto& f : first) recs.push_back(f.get("reconstructions").to_vector());
        const std::vector<double> tv = targets.to_vector();
        for (int64_t i = 0; i < n; ++i) {
          std::vector<double> row(tv.begin() + i * per, tv.begin() + (i + 1) * per);
          for (auto& r : recs) row.insert(row.end(), r.begin() + i * per, r.begin() + (i + 1) * per);
          rows.push_back(Tensor::from_vector(row, {int64_t(1 + recs.size()), C, H, W}));
          left.emplace_back(centre(i, H), fmt::format("test image {}", i + 1));
        }
        std::string which;
        for (size_t m = 0; m < rs.size(); ++m) {
          top.emplace_back(centre(int64_t(m) + 1, W), model_label(rs[m]->model));
          which += fmt::format("{}{} at iteration {}", m ? ", " : "", model_label(rs[m]->model), rs[m]->eval_iteration);
        }
        const std::string out = fmt::format("{}/figures/reconstructions_seed{}.png", dir, seed);
        const std::string raw = out + ".raw.png";
        gan::write_png_rows(raw, rows, kPad);
        label_png(raw, out, fmt::format("Final-test images and their reconstructions (seed {})", seed), top, left,
                  int64_t(1 + rs.size()) * (W + kPad) + kPad, n * (H + kPad) + kPad);
        fs::remove(raw);
        figs.push_back({out, fmt::format("The first {} final-test images of seed {} (split_seed{}.json; the same images "
                                         "for every model) and their reconstructions G(z*) by each model's tested "
                                         "checkpoint (the best, or the last where no running test ran: {}), {} RMSProp "
                                         "steps on z from z = 0.",
                                         n, seed, seed, which, rs[0]->eval_steps)});
      }
    }
    // Sample grids every model of this seed has.
    std::set<int64_t> common;
    bool firstrun = true;
    for (const StudyRun* r : rs) {
      std::set<int64_t> its;
      for (auto& [it, p] : sample_grids(r->dir)) its.insert(it);
      if (firstrun) {
        common = its;
      } else {
        std::set<int64_t> both;
        std::set_intersection(common.begin(), common.end(), its.begin(), its.end(), std::inserter(both, both.end()));
        common = both;
      }
      firstrun = false;
    }
    const std::vector<int64_t> all(common.begin(), common.end());
    if (all.size() < 2) continue;
    // (c) One fixed code across training: up to 8 evenly spaced iterations.
    std::vector<int64_t> spread;
    const size_t rows = std::min<size_t>(8, all.size());
    for (size_t r = 0; r < rows; ++r) spread.push_back(all[r * (all.size() - 1) / (rows - 1)]);
    spread.erase(std::unique(spread.begin(), spread.end()), spread.end());
    const std::string across = fmt::format("{}/figures/fixed_code_seed{}.png", dir, seed);
    if (samples_figure(rs, spread, 4, across, fmt::format("The same 4 codes across training (seed {})", seed)))
      figs.push_back({across, fmt::format("Samples G(z) of the first 4 fixed codes (drawn from seed {}, the same codes "
                                          "for every model) at iterations {} to {}, from the sample grids of training "
                                          "(G in evaluation mode). Stable training changes a column slowly and "
                                          "steadily.",
                                          seed, spread.front(), spread.back())});
    // (d) Early training: the first 6 sampled iterations after the start.
    std::vector<int64_t> early;
    for (int64_t it : all)
      if (it > 0 && early.size() < 6) early.push_back(it);
    const std::string speed = fmt::format("{}/figures/early_training_seed{}.png", dir, seed);
    if (early.size() >= 2 &&
        samples_figure(rs, early, 4, speed, fmt::format("Early training, the same iterations (seed {})", seed)))
      figs.push_back({speed, fmt::format("Samples of the same 4 fixed codes at the first sampled iterations ({} to {}) "
                                         "of each model, seed {}: how fast each normalization starts to produce "
                                         "images.",
                                         early.front(), early.back(), seed)});
  }
  return figs;
}

}  // namespace wn::eval
