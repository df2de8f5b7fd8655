// Evaluating a run (SPEC section 5): the final test reconstructs a run's final-test images
// with one of its checkpoints and reports the mean per-image loss, with the same measure
// on as many training images so that over-fitting shows as a gap; and the running test
// the trainer calls every test interval. Used by `wngan train`, `eval` and `study`.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "engine/tensor.h"
#include "nn/module.h"

namespace wn::eval {

// What a final test measures.
struct EvalRequest {
  std::string run, checkpoint = "best", split;  // checkpoint: best | last | a file; split: the run's own if empty
  Device device = kCPU;
  int64_t n = 2000, steps = 1000, batch = 500;
  bool verbose = true;  // progress on stderr
};

struct EvalResult {
  double test_loss = 0, train_loss = 0, seconds = 0;
  int64_t iteration = -1, n = 0;
  std::string per_image_csv, pairs_png;
  std::string first_file;  // safetensors: "targets" and "reconstructions" of the first (up to) 16 images
};

// Reconstructs a run's final-test images (and as many training images) with a
// checkpoint; writes per-image losses, a pairs PNG and a row of RUN/eval.csv.
EvalResult evaluate_run(const EvalRequest& r);
// The checkpoint a finished run's final test uses: "best" where a running test saved
// one, else "last".
std::string final_checkpoint(const std::string& run);
// The running reconstruction test of the trainer (code length, RMSProp steps per image).
std::function<double(nn::Module&, const Tensor&)> running_test_hook(int64_t code, int64_t steps);

}  // namespace wn::eval
