// Inspection of gradient flow, for teaching how normalization shapes it: per-module
// activation statistics, per-parameter gradient statistics and update ratios, the
// cosine between v and dL/dv in weight-normalized layers, the gradient of their effective
// weight w = scale * v / ||v||, and DOT dumps of the tape.
#pragma once
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/module.h"

namespace wn::nn {

// Per-channel (dim 1) mean and standard deviation of a module's output.
struct ActivationStat {
  std::string module, type;
  Shape shape;
  std::vector<double> mean, std;
};

// Records ActivationStat for every module below root (root included) on each forward
// while alive; removes its hooks when destroyed.
class ActivationRecorder {
 public:
  explicit ActivationRecorder(Module& root);
  ~ActivationRecorder();
  ActivationRecorder(const ActivationRecorder&) = delete;
  ActivationRecorder& operator=(const ActivationRecorder&) = delete;
  const std::vector<ActivationStat>& stats() const { return *stats_; }
  void clear() { stats_->clear(); }

 private:
  Module& root_;
  std::shared_ptr<std::vector<ActivationStat>> stats_;
};

// Gradient statistics of one parameter.
struct ParamStat {
  std::string name;
  double weight_norm = 0, grad_norm = 0, grad_max_abs = 0;
  double cos_grad = NAN;     // cos(p, dL/dp) over the whole tensor; NaN when either is 0
  double update_ratio = -1;  // ||p_after - p_before|| / ||p_before||, -1 until measured, NaN for a zero p_before
};

// Current statistics of every parameter below root (gradient fields 0 without a gradient).
std::vector<ParamStat> param_stats(const Module& root);

// Measures update / weight ratios: snapshot() before an optimizer step, measure() after.
class UpdateTracker {
 public:
  void snapshot(const Module& root);
  std::vector<ParamStat> measure(const Module& root) const;

 private:
  Named before_;
};

// For each weight-normalized layer below root: the largest |cos(v, dL/dv)| over its
// output units (should be ~0: the gradient is orthogonal to v), and how much eps spoils
// that (WNLayer::eps_shares: |cos| is of the order of the share where it is not tiny).
struct WNCosine {
  std::string layer;
  bool strict = true;
  double max_abs_cos = 0;    // NaN when no unit received a gradient
  double eps = 0;            // the layer's epsilon
  bool eps_inside = true;    // inside the root (the DCGAN code) or added to the norm (the ResNet code)
  double min_sq_norm = NAN;  // smallest factor * ||v_u||^2 over units
  double max_eps_share = 0;  // largest WNLayer::eps_shares() over units
  int64_t unit_size = 0;     // elements of v per output unit (1: w_u = +-scale, dL/dv_u is eps's part only)
};
std::vector<WNCosine> wn_cosines(Module& root);

// While alive, keeps the gradient of the effective weight w = scale * v / ||v|| that each
// weight-normalized layer below root computes in its forwards (Tensor::retain_grad on w;
// no number of training changes), so that dL/dw can be read after a backward. Removes
// its hooks when destroyed.
class EffectiveWeights {
 public:
  explicit EffectiveWeights(Module& root);
  ~EffectiveWeights();
  EffectiveWeights(const EffectiveWeights&) = delete;
  EffectiveWeights& operator=(const EffectiveWeights&) = delete;
  // Drops the gradients gathered so far, as an optimizer's zero_grad drops v's; the
  // forwards seen stay, so later backwards through them still count.
  void zero_grad();
  // Forgets the forwards seen so far.
  void clear() { ws_->clear(); }
  // dL/dw of a WN layer: the sum over the forwards seen (several per step: D sees a real
  // and a fake batch); undefined when no gradient reached w.
  Tensor grad(const std::string& layer) const;

 private:
  Module& root_;
  std::shared_ptr<std::map<std::string, std::vector<Tensor>>> ws_;  // layer -> its w's
};

// The gradient of each weight layer's effective weight: dL/dw of w = scale * v / ||v|| in
// weight-normalized layers (from an EffectiveWeights alive during the forwards), and for
// plain Linear / Conv2d / ConvTranspose2d layers dL/dW itself (their weight is the
// effective one), in the order of root's modules.
struct EffectiveGrad {
  std::string layer;
  bool weight_normalized = false;
  Tensor grad;                 // dL/dw (undefined: no gradient reached the layer)
  double weight_norm = 0;      // ||w||
  double grad_norm = 0;        // ||dL/dw|| (0 without a gradient)
  double cos_grad = NAN;       // cos(w, dL/dw) over the whole tensor; NaN when either is 0
};
std::vector<EffectiveGrad> effective_weight_grads(Module& root, const EffectiveWeights& seen);

// Batch norm's projection shares as its backward reported them (Node::stats, inspection
// mode) on the tape behind root, for the BN layers whose names start with prefix ("D."):
// the norms of the mean and xhat terms it removes, relative to |dy| over the layer.
struct BNShares {
  std::string layer;
  double mean_share = NAN, xhat_share = NAN;
};
std::vector<BNShares> bn_shares(const Tensor& root, const std::string& prefix);

// Appends rows "iteration,name,weight_norm,grad_norm,grad_max_abs,update_ratio" to a CSV
// file (writing the header first when the file is new).
void append_param_stats_csv(const std::string& path, int64_t iteration, const std::vector<ParamStat>& stats);
// Writes the tape behind root as Graphviz DOT (atomically).
void write_dot(const Tensor& root, const std::string& path);
// Writes the tape behind several roots as one coloured DOT graph with a title and a
// legend (graph_to_dot), atomically.
void write_dot(const std::vector<Tensor>& roots, const std::string& title, const std::string& path);

}  // namespace wn::nn
