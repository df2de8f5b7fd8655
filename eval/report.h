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
  int64_t eval_iteration = -1, eval_steps = 0;
  std::string eval_first;
  std::string error;  // why the run failed (a rank's error under mpirun); empty: it finished
};

struct StudyReport {
  std::string title;
  std::vector<StudyRun> runs;
  int64_t eval_n = 0, eval_steps = 0;
};

// Writes results.md, results.csv, plots/*.png (gnuplot, when installed), strips/*.png
// and report.html into dir.
void write_study_report(const std::string& dir, const StudyReport& r);
// The one-run report `wngan train` ends with, in RUN/report: the finished run and its
// final test (eval_steps RMSProp steps) as a study of one.
void write_run_report(const gan::Trainer& t, const EvalResult& final_test, int64_t eval_steps, double train_seconds);
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
