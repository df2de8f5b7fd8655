// Inspection of gradient flow, for teaching how normalization shapes it: per-module
// activation statistics, per-parameter gradient statistics and update ratios, the
// cosine between v and dL/dv in weight-normalized layers, and DOT dumps of the tape.
#pragma once
#include <cmath>
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
// output units (should be ~0: the gradient is orthogonal to v).
struct WNCosine {
  std::string layer;
  bool strict = true;
  double max_abs_cos = 0;  // NaN when no unit received a gradient
};
std::vector<WNCosine> wn_cosines(Module& root);

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

}  // namespace wn::nn
