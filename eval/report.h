// The reports of a study and of one run: results table (Markdown and CSV), gnuplot plots,
// sample strips across iterations, the paper's figures and a self-contained HTML report.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "eval/run_eval.h"
#include "gan/trainer.h"

namespace wn::eval {

// One trained and evaluated model of a study.
struct StudyRun {
  std::string model, dir;
  uint64_t seed = 0;
  double final_test = NAN, final_train = NAN, best_running = NAN, train_seconds = 0;
  int64_t best_iteration = -1;
  bool diverged = false;
  // The final test: the checkpoint's iteration, its RMSProp steps, and the file holding
  // its first targets and reconstructions (EvalResult::first_file).
  int64_t eval_iteration = -1, eval_steps = 0, eval_n = 0;
  std::string eval_first;
  std::string error;  // why the run failed (a rank's error under mpirun); empty: it finished
  // Yardsticks on the same final-test images (EvalResult): the mean training image, the
  // run's untrained generator; NaN where not measured (studies from before they existed).
  double mean_image_loss = NAN, untrained_loss = NAN;
};

struct StudyReport {
  std::string title, device = "cpu";
  std::vector<StudyRun> runs;
  int64_t eval_n = 0, eval_steps = 0;
};

// Writes results.md, results.csv, plots/*.png (gnuplot, when installed), strips/*.png
// and report.html into dir.
void write_study_report(const std::string& dir, const StudyReport& r);
// The one-run report `wngan train` ends with, in RUN/report (eval/run_report.cpp): a first
// line in words, the final test (eval_steps RMSProp steps) beside its yardsticks, the
// running and final tests explained, curves, images, provenance and the options.
void write_run_report(const gan::Trainer& t, const EvalResult& final_test, int64_t eval_steps, double train_seconds);
// "WN DCGAN on Fashion-MNIST, 2,000 of the paper's 100,000 iterations, seed 1:
// reconstruction error 0.0110 per pixel value on 500 held-out images (lower is better)".
std::string run_headline(const gan::TrainConfig& c, int64_t iterations, double final_loss, int64_t n);
// "fashion-mnist" -> "Fashion-MNIST", "cifar10:DIR" -> "CIFAR-10 (DIR)", ...
std::string data_label(const std::string& data_spec);
// The curves of a run's metrics.csv: D's loss (real + fake), G's loss, the running test.
struct Curves {
  std::vector<double> it, d, g, test_it, test;
};
Curves read_curves(const std::string& metrics_csv);
// A trailing moving average of width w.
std::vector<double> smooth(const std::vector<double>& v, size_t w);
// A strip of the first k cells of the top row of up to `rows` sample grids at evenly
// spaced iterations (how a fixed code's images change); returns the rows' iterations
// (none when there are no grids).
std::vector<int64_t> write_strip(const std::string& run_dir, const std::string& out_png, int64_t k, int64_t rows);
// A whole text file.
std::string read_text(const std::string& path);
// Whether gnuplot is installed.
bool have_gnuplot();
// Runs a gnuplot script; false when gnuplot is missing or fails.
bool run_gnuplot(const std::string& script);
// s as a gnuplot string literal ('...', quotes doubled).
std::string gnuplot_quote(const std::string& s);
// An <img> with the PNG inlined (base64), or a note when the file is missing.
std::string img_html(const std::string& png, const std::string& alt);
// "none" -> "vanilla", "batch" -> "BN", "weight" -> "WN", ... (others unchanged).
std::string model_label(const std::string& model);

}  // namespace wn::eval
