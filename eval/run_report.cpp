// The one-run report `wngan train` ends with (RUN/report/report.html and results.md): a
// first line a newcomer can read, the final test beside yardsticks measured on the same
// images, what the running and final tests are, the run's curves and images, and where
// the numbers came from (command, options, build, machine, date).
#include <cmath>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "eval/grad_plots.h"
#include "eval/provenance.h"
#include "eval/report.h"
#include "gan/run_config.h"
#include "gan/run_dir.h"
#include "nn/checkpoint.h"

namespace wn::eval {

namespace fs = std::filesystem;

namespace {

// "&", "<", ">" and quotes as HTML entities.
std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

// 2000 -> "2,000".
std::string thousands(int64_t v) {
  std::string d = std::to_string(v < 0 ? -v : v), o;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i && (d.size() - i) % 3 == 0) o += ',';
    o += d[i];
  }
  return v < 0 ? "-" + o : o;
}

// The config as "key: value" rows, nested objects flattened ("model.nf").
void flatten(const nlohmann::json& j, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string k = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (it->is_object())
      flatten(*it, k, out);
    else
      out.emplace_back(k, it->is_string() ? it->get<std::string>() : it->dump());
  }
}

// Markdown and HTML tables of two-column rows.
std::string md_table(const std::string& a, const std::string& b, const std::vector<std::pair<std::string, std::string>>& rows) {
  std::string s = fmt::format("| {} | {} |\n|---|---|\n", a, b);
  for (const auto& [k, v] : rows) s += fmt::format("| {} | {} |\n", k, v);
  return s;
}
std::string html_table(const std::string& a, const std::string& b,
                       const std::vector<std::pair<std::string, std::string>>& rows) {
  std::string s = fmt::format("<table><tr><th>{}</th><th>{}</th></tr>\n", a, b);
  for (const auto& [k, v] : rows) s += fmt::format("<tr><td>{}</td><td>{}</td></tr>\n", html_escape(k), html_escape(v));
  return s + "</table>\n";
}

// An <img ...> of img_html with a CSS class (its display size).
std::string img_class(const std::string& img, const std::string& cls) {
  return img.rfind("<img ", 0) == 0 ? "<img class=\"" + cls + "\" " + img.substr(5) : img;
}

// What the less obvious entries of config.json mean.
constexpr const char* kConfigNote =
    "crop [0,0]: no centre crop; stretch: --image-size HxW (resized to exactly that) rather than S; model.nlayer 0: "
    "the layer count follows the image size; model.features: the ResNet's (empty for a DCGAN); model.version: the "
    "checkpoint layout; samples: images per sample grid. The final test's settings (--final-n, --final-steps) are in "
    "the table above.";

std::string loss4(double v) { return std::isfinite(v) ? fmt::format("{:.4f}", v) : "n/a"; }
std::string loss6(double v) { return std::isfinite(v) ? fmt::format("{:.6f}", v) : "n/a"; }

}  // namespace

std::string data_label(const std::string& spec) {
  if (spec == "fashion-mnist") return "Fashion-MNIST";
  const auto colon = spec.find(':');
  const std::string kind = spec.substr(0, colon), where = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (kind == "mnist") return "MNIST (" + where + ")";
  if (kind == "cifar10") return "CIFAR-10 (" + where + ")";
  if (kind == "lsun") return "LSUN (" + where + ")";
  if (kind == "folder") return "the images in " + where;
  return spec;
}

std::string run_headline(const gan::TrainConfig& c, int64_t iterations, double final_loss, int64_t n) {
  const bool resnet = c.model.arch == gan::Arch::ResNet;
  const std::string model = fmt::format("{} {}", model_label(gan::norm_name(c.model.norm)), resnet ? "ResNet" : "DCGAN");
  const std::string iters =
      resnet ? fmt::format("{} iterations", thousands(iterations))
             : fmt::format("{} of the paper's 100,000 iterations", thousands(iterations));
  return fmt::format("{} on {}, {}, seed {}: reconstruction error {} per pixel value on {} held-out images (lower is "
                     "better)",
                     model, data_label(c.data), iters, c.seed, loss4(final_loss), thousands(n));
}

void write_run_report(const gan::Trainer& t, const EvalResult& r, int64_t eval_steps, double train_seconds) {
  const gan::TrainConfig& c = t.config();
  const std::string dir = gan::RunDir(c.out).report();
  fs::create_directories(dir);
  const std::string headline = run_headline(c, t.iteration(), r.test_loss, r.n);
  const std::string label = model_label(gan::norm_name(c.model.norm));

  // Yardsticks: the same images, the same measure.
  std::vector<std::pair<std::string, std::string>> yard = {
      {fmt::format("{}, {} checkpoint (iteration {})", label, r.iteration == t.best_iteration() ? "best" : "last",
                   r.iteration),
       loss6(r.test_loss)}};
  if (std::isfinite(r.untrained_loss))
    yard.push_back({"the untrained generator (this run's initial weights, the same reconstruction)", loss6(r.untrained_loss)});
  if (std::isfinite(r.mean_image_loss))
    yard.push_back({fmt::format("the mean training image as the guess for every image (no model; the mean of the first "
                                "{} training images, the split's order being random)",
                                thousands(r.mean_image_n)),
                    loss6(r.mean_image_loss)});
  yard.push_back({fmt::format("{} training images, the same model and reconstruction (clearly lower than the first "
                              "row would mean over-fitting)",
                              r.n),
                  loss6(r.train_loss)});

  const std::string measure = fmt::format(
      "The measure (docs/paper.md section 5): for each image x, a code z starts at 0 and {} RMSProp steps minimise "
      "||G(z) - x||^2; the image's error is the final ||G(z) - x||^2 divided by its number of values (C x H x W = "
      "{}), pixel values in [0, 1]. The table gives the mean over {} final-test images, held out from training.",
      eval_steps, c.model.channels * c.model.height * c.model.width, r.n);
  const int64_t tests = c.test_every > 0 ? t.iteration() / c.test_every : 0;
  const std::string running_from = c.select_on == "train" ? "training images" : "final-test images";
  const std::string tests_note =
      c.test_every > 0 && c.running_test > 0
          ? fmt::format(
                "Running test vs final test: during training, every {} iterations ({} times), the first {} {} were "
                "reconstructed with {} steps (the running test, plotted below); its lowest value ({} at iteration {}) "
                "chose the 'best' checkpoint. The final test then reconstructed {} final-test images with {} steps "
                "using that checkpoint. {}{}",
                c.test_every, tests, c.running_test, running_from, c.test_steps, loss6(t.best_loss()),
                t.best_iteration(), r.n, eval_steps,
                c.select_on != "train" && c.test_steps == eval_steps && c.running_test == r.n
                    ? "Here both use the same images and steps, so the final test repeats the best running test."
                    : "They differ in images or steps, so their values are not comparable with each other.",
                c.select_on == "train" ? " The final-test images took no part in training or in the choice."
                                       : " The running test's images are final-test images (the paper's protocol), "
                                         "so the final test is not untouched by the choice (--select-on train avoids it).")
          : fmt::format("No running test was made (--test-every 0), so the final test used the last checkpoint "
                        "(iteration {}) on {} final-test images with {} steps.",
                        r.iteration, r.n, eval_steps);

  const std::string loss_note =
      c.loss == gan::Loss::LS
          ? "D's loss is the least-squares loss on its sigmoid output for real and generated batches, G's the same "
            "on generated ones (the authors' --ls)."
          : "D's loss is the binary cross-entropy on real plus generated batches (2 ln 2 = 1.39 where D cannot tell "
            "them apart), G's the non-saturating loss -log D(G(z)) (ln 2 = 0.69 there). The first 50 points average "
            "fewer iterations.";
  const std::string rough =
      c.model.arch == gan::Arch::DCGAN && t.iteration() < 100000
          ? fmt::format(" At {} of the paper's 100,000 iterations the samples are still rough; compare models at the "
                        "same length.",
                        thousands(t.iteration()))
          : std::string();
  std::vector<std::pair<std::string, std::string>> prov = provenance_rows(c.device.str());
  prov.push_back({"final test", fmt::format("{} final-test images x {} RMSProp steps, the checkpoint of iteration {}",
                                            r.n, eval_steps, r.iteration)});
  prov.push_back({"training time", fmt::format("{:.0f} s ({} iterations)", train_seconds, t.iteration())});
  prov.push_back({"final test time", fmt::format("{:.0f} s", r.seconds)});
  if (std::isfinite(r.untrained_loss)) prov.push_back({"yardstick time", fmt::format("{:.0f} s", r.untrained_seconds)});
  std::vector<std::pair<std::string, std::string>> config;
  flatten(gan::train_to_json(c), "", config);

  // Curves.
  const Curves m = read_curves(gan::RunDir(c.out).metrics());
  std::string dat, tdat;
  const std::vector<double> d = smooth(m.d, 50), g = smooth(m.g, 50);
  for (size_t k = 0; k < m.it.size(); ++k) dat += fmt::format("{} {:.6g} {:.6g}\n", m.it[k], d[k], g[k]);
  for (size_t k = 0; k < m.test.size(); ++k) tdat += fmt::format("{} {:.8g}\n", m.test_it[k], m.test[k]);
  const std::string pdir = fs::absolute(dir + "/plots").string();
  fs::create_directories(pdir);
  nn::write_file_atomic(pdir + "/losses.dat", dat);
  nn::write_file_atomic(pdir + "/running_test.dat", tdat);
  std::string gp = "set terminal pngcairo size 900,450 font 'Sans,10'\nset grid\nset xlabel 'iteration'\n";
  gp += fmt::format("set output {}\nset title {}\nset ylabel 'error per pixel value'\nset key off\n"
                    "plot {} using 1:2 with linespoints lw 2 pt 7\n",
                    gnuplot_quote(pdir + "/running_test.png"),
                    gnuplot_quote(fmt::format("Running test: {} {} x {} steps (lower is better)", c.running_test,
                                              running_from, c.test_steps)),
                    gnuplot_quote(pdir + "/running_test.dat"));
  gp += fmt::format("set output {}\nset title 'Losses, moving average of 50 iterations'\nset ylabel 'loss'\nset key on\n"
                    "plot {} using 1:2 with lines lw 1.5 title 'D (real + fake)', '' using 1:3 with lines lw 1.5 title 'G'\n",
                    gnuplot_quote(pdir + "/losses.png"), gnuplot_quote(pdir + "/losses.dat"));
  nn::write_file_atomic(pdir + "/plots.gp", gp);
  const bool plotted = !m.it.empty() && run_gnuplot(pdir + "/plots.gp");
  const std::string strip = dir + "/samples_strip.png";
  const std::vector<int64_t> strip_iters = write_strip(c.out, strip, 8, 10);
  const bool have_strip = !strip_iters.empty();
  std::string strip_rows;
  for (int64_t it : strip_iters) strip_rows += (strip_rows.empty() ? "" : ", ") + std::to_string(it);

  // results.md
  std::string md = "# " + headline + "\n\n" + measure + "\n\n" + md_table("reconstruction error of the same images", "mean", yard);
  md += "\n" + tests_note + rough + "\n\n## Where these numbers came from\n\n" + md_table("what", "value", prov);
  md += "\n## Options in effect (config.json)\n\n" + md_table("option", "value", config) + "\n" + kConfigNote + "\n";
  md += "\n## Pictures\n\nIn report.html; as files: plots/running_test.png, plots/losses.png, samples_strip.png, " +
        (r.pairs_png.empty() ? std::string() : r.pairs_png + " (targets above reconstructions), ") + c.out +
        "/samples/ (a grid of the fixed codes every --sample-every iterations).\n";
  md += fmt::format("\nThe split is {}/split.json; per-image errors are in {}.\n", c.out, r.per_image_csv);

  // report.html
  std::string html = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html_escape(headline) +
                     "</title>\n<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
                     "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #bbb;padding:4px 10px;"
                     "text-align:left}th{background:#eef}img{max-width:100%;image-rendering:pixelated}"
                     "figure{margin:1em 0}figcaption{max-width:900px}img.pairs{width:900px}img.strip{width:420px}"
                     "</style></head><body>\n";
  html += "<h1>" + html_escape(headline) + "</h1>\n<p>" + html_escape(measure) + "</p>\n";
  html += html_table("reconstruction error of the same images", "mean", yard);
  html += "<p>" + html_escape(tests_note + rough) + "</p>\n";
  html += "<h2>Running test</h2>\n" +
          (plotted && !m.test.empty() ? img_html(pdir + "/running_test.png", "running test")
                                      : std::string("<p><em>no running test, or gnuplot not installed</em></p>"));
  html += "<h2>Losses</h2>\n" +
          (plotted ? img_html(pdir + "/losses.png", "losses") : std::string("<p><em>gnuplot not installed</em></p>")) +
          "<p>" + html_escape(loss_note) + "</p>\n";
  if (!r.pairs_png.empty())
    html += fmt::format("<h2>Reconstructions</h2>\n<figure>{}<figcaption>Top: the first {} final-test images; bottom: "
                        "their reconstructions by the checkpoint of iteration {} ({} steps).</figcaption></figure>\n",
                        img_class(img_html(r.pairs_png, "reconstructions"), "pairs"), std::min<int64_t>(r.n, 16),
                        r.iteration, eval_steps);
  if (have_strip)
    html += fmt::format("<h2>Samples of one fixed code over training</h2>\n<figure>{}<figcaption>Each row is a later "
                        "point of training, at iterations {} (top to bottom); each column one of the first 8 of the "
                        "{} fixed codes of the sample grids (samples/). Stable training changes a column slowly and "
                        "steadily.</figcaption></figure>\n",
                        img_class(img_html(strip, "fixed-code samples"), "strip"), strip_rows, c.samples);
  if (fs::exists(gan::RunDir(c.out).grad_trace())) {
    const GradFlowReport flow = write_grad_flow(dir + "/plots/grad", {{gan::norm_name(c.model.norm), c.out}});
    if (!flow.figures.empty()) {
      html += flow.html;
      md += flow.markdown;
    }
  }
  html += "<h2>Where these numbers came from</h2>\n" + html_table("what", "value", prov);
  html += "<h2>Options in effect</h2>\n" + html_table("option", "value", config) + "<p>" + html_escape(kConfigNote) +
          "</p>\n";
  html += "</body></html>\n";
  nn::write_file_atomic(dir + "/results.md", md);
  nn::write_file_atomic(dir + "/report.html", html);
}

}  // namespace wn::eval
