// Evaluating a run (docs/paper.md section 5): the final test reconstructs a run's final-test images
// with one of its checkpoints and reports the mean per-image loss, with the same measure
// on as many training images so that over-fitting shows as a gap; and the running test
// the trainer calls every test interval. Used by `wngan train`, `eval` and `study`.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>

#include "engine/dist/comm.h"
#include "engine/tensor.h"
#include "nn/module.h"

namespace wn::eval {

// What a final test measures.
struct EvalRequest {
  std::string run, checkpoint = "best", split;  // checkpoint: best | last | a file; split: the run's own if empty
  Device device = kCPU;
  int64_t n = 2000, steps = 1000, batch = 500;
  bool verbose = true;  // progress on stderr (rank 0's)
  // Also measure the yardsticks on the same final-test images with the same measure: the
  // mean training image (no model) and the run's untrained generator (its initial weights,
  // the same reconstruction), so that a loss can be read against them.
  bool yardsticks = false;
  // The ranks that share the images (mpirun; none: this process alone). Rank 0 reads the
  // run folder and sends the model and the images' indices to the others; each rank
  // reconstructs its part; rank 0 gathers the per-image losses and writes every output.
  dist::Comm* comm = nullptr;
};

struct EvalResult {
  double test_loss = 0, train_loss = 0, seconds = 0;
  int64_t iteration = -1, n = 0;
  std::string per_image_csv, pairs_png;
  std::string first_file;  // safetensors: "targets" and "reconstructions" of the first (up to) 16 images
  // With EvalRequest::yardsticks (else NaN): the loss of the mean of the first
  // mean_image_n training images, and of the untrained generator; its seconds.
  double mean_image_loss = NAN, untrained_loss = NAN, untrained_seconds = 0;
  int64_t mean_image_n = 0;
};

// Reconstructs a run's final-test images (and as many training images) with a
// checkpoint; writes per-image losses, a pairs PNG and a row of RUN/eval.csv. With
// r.comm, every rank of it calls this and gets the same losses; only rank 0 writes.
EvalResult evaluate_run(const EvalRequest& r);
// The checkpoint a finished run's final test uses: "best" where a running test saved
// one, else "last".
std::string final_checkpoint(const std::string& run);
// The running reconstruction test of the trainer (code length, RMSProp steps per image).
std::function<double(nn::Module&, const Tensor&)> running_test_hook(int64_t code, int64_t steps);

}  // namespace wn::eval
