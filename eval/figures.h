// The paper's figures from a study's runs, as PNG files (labelled with gnuplot when it
// is installed) with captions saying which checkpoints and which images they show:
// reconstructions of the same final-test images by each model, samples of one fixed
// code across training with the models side by side, and early-training samples of
// the models at the same iterations (the paper's training-speed figure).
#pragma once
#include <string>
#include <vector>

#include "eval/report.h"

namespace wn::eval {

struct Figure {
  std::string png, caption;
};

// Writes dir/figures/*.png for each seed of the runs; returns them in report order.
std::vector<Figure> write_study_figures(const std::string& dir, const std::vector<StudyRun>& runs);

}  // namespace wn::eval
