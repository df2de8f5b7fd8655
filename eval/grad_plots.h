// Gradient-flow pictures from the trace of runs (`--trace-grads N`, RUN/grad_trace.csv):
// per-layer gradient norms over iterations (one panel per model), the layer profile at
// chosen iterations (bars, models side by side), |cos(weight, dL/dweight)| over
// iterations with float32's rounding level marked, update / weight ratios over
// iterations, and BN's projection shares; each with a caption saying what a student
// should see and why, and a table of the numbers the pictures are drawn from.
#pragma once
#include <string>
#include <vector>

#include "eval/figures.h"

namespace wn::eval {

// One traced run: its model name (none, batch, weight, ...) and folder.
struct TracedRun {
  std::string model, dir;
};

struct GradFlowReport {
  std::vector<Figure> figures;  // in report order (PNG files exist only when gnuplot ran)
  int64_t table_iteration = -1;  // the traced iteration the table shows
  std::vector<std::string> models;  // the table's columns (model names)
  // The table's rows: layer, quantity, then one value per model (NaN: not traced).
  struct Row {
    std::string layer, quantity;
    std::vector<double> values;
  };
  std::vector<Row> table;
  std::string html, markdown;  // the section ready to embed: figures, captions, table
};

// Writes dir/grad_*.png (and their .dat/.gp) for the runs that have a trace; an empty
// report when none has. Runs are panels in the order given.
GradFlowReport write_grad_flow(const std::string& dir, const std::vector<TracedRun>& runs);

// `wngan inspect --run PATH`: the gradient-flow pictures of a finished run (PATH holds
// grad_trace.csv) or study (PATH/runs/*/grad_trace.csv, the first seed's runs), written
// with a self-contained HTML page into out; returns the page's path. Throws, naming
// PATH, when nothing there was traced.
std::string write_grad_flow_page(const std::string& path, const std::string& out);

// The float32 unit roundoff 2^-24, the level the cosine plot marks.
constexpr double kFloat32Roundoff = 5.9604644775390625e-08;

}  // namespace wn::eval
