// The gradient-flow trace of a run (`wngan train --trace-grads N`): at iteration 1 and
// every N iterations, per layer and per step (D's update, G's update), what shapes the
// gradient flow, read through gan_step's inspection hooks by a StepInspector
// (gan/inspect.h; so the trajectory is the same with and without the trace). Written to
// RUN/grad_trace.csv as tidy rows iteration,step,layer,quantity,value. Each network's
// rows come from its own step: D's from the D step (activations and BN shares of the real
// batch, gradients of the real and fake losses together), G's from the G step. Quantities
// (":" then the parameter, e.g. weight):
//   grad_norm:P, weight_norm:P   norms of a parameter's gradient (v's for WN layers) and
//                                of the parameter before the update
//   grad_norm_effective:weight   ||dL/dw|| of the effective weight w = scale * v / ||v||
//                                of WN layers (eps included, per output unit); for plain
//                                Linear / Conv layers ||dL/dW||, equal to grad_norm:weight
//   update_ratio:P               ||P after - P before|| / ||P before|| of the real update
//   cos_grad:weight              cos(weight, dL/dweight) over the whole tensor: ~0 for WN
//                                layers (v), the baseline for plain layers (W)
//   cos_grad_effective:weight    cos(w, dL/dw) over the whole tensor (plain layers: W)
//   wn_max_abs_cos               WN layers: the largest |cos(v_u, dL/dv_u)| over units
//   wn_eps_share_max             WN layers: the largest eps / (||v_u||^2 + eps) over units
//                                (ResNet WN: eps / (||v_u|| + eps)); wn_max_abs_cos is of
//                                its order where it is not tiny
//   wn_norm_min, wn_norm_max     WN layers: the smallest and largest ||v_u|| (with eps)
//   mean:P, min:P, max:P         slopes and shifts of (T)PReLU, scales and biases of WN
//   act_mean, act_std            the layer's output (channel means, averaged) in the
//                                step's forward (D: the real batch's; G: its loss's)
//   bn_mean_share, bn_xhat_share BN layers: shares of the incoming gradient's norm that
//                                batch norm's backward projects out (its node statistics)
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gan/models.h"
#include "gan/trainer.h"

namespace wn::gan {

// One row of grad_trace.csv.
struct TraceRow {
  int64_t iteration = 0;
  std::string step, layer, quantity;
  double value = 0;
};

// The header of grad_trace.csv.
extern const char* const kTraceHeader;
// Keeps the header and the rows up to last_iteration (a resume continues from there); a
// file that does not read whole is refused (an error naming the line), never cut down.
void trim_trace(const std::string& path, int64_t last_iteration);
// The rows of a grad_trace.csv (none when it does not exist). Regular files only; the
// header is checked, every row must parse (CRLF accepted; a last row cut off without its
// newline is dropped); errors name the file and the line.
std::vector<TraceRow> read_trace(const std::string& path);

class GradTrace {
 public:
  // Appends to path (writing the header first when the file is new).
  GradTrace(std::string path, Gan& gan);
  ~GradTrace();
  // Whether iteration it (1-based, the step that makes it) is traced every `every`.
  static bool traced(int64_t it, int64_t every) { return every > 0 && (it == 1 || it % every == 0); }
  // Before the step of iteration it: snapshots parameters, starts recording activations;
  // returns the hooks to pass to gan_step (valid until end()).
  const StepHooks& begin(int64_t it, bool simultaneous);
  // After the step: update ratios; appends the iteration's rows. Returns false when the
  // file could not be written (the run goes on).
  bool end();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wn::gan
