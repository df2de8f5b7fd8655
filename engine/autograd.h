// Define-by-run reverse mode. Every op that sees an input requiring a gradient (and
// grad mode on) records a Node holding its inputs and a backward closure written next
// to its forward. backward() walks the nodes in reverse topological order; gradients
// reaching a leaf (or a tensor with retain_grad) are ADDED to its grad.
#pragma once
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace wn {

struct Node {
  std::string op;     // the op that made the tensor ("conv2d", "add", ...)
  std::string label;  // optional, set by the caller for graph dumps
  std::vector<Tensor> inputs;
  // Given dL/d(output), returns dL/d(input i) for each input (undefined where
  // inputs[i] needs no gradient). Runs with grad mode off.
  std::function<std::vector<Tensor>(const Tensor& grad_out)> backward;
  Shape out_shape;
  DType dtype = DType::F32;
  bool freed = false;      // saved tensors released by a backward without retain_graph
  double grad_norm = -1;   // L2 norm of the gradient that reached it (inspection mode)
  // Named intermediates an op chooses to expose to inspection (e.g. BN's projections).
  std::vector<std::pair<std::string, double>> stats;
  // Whether input i wants a gradient.
  bool needs(size_t i) const { return i < inputs.size() && inputs[i].defined() && inputs[i].requires_grad(); }
};

// Whether ops record nodes (true unless a NoGradGuard is alive on this thread).
bool grad_enabled();

// Turns graph recording off for its lifetime (used for evaluation and optimizer steps).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// Attaches a node to `out` if grad mode is on and any input requires a gradient;
// returns out. Ops call this once, after computing the forward.
Tensor record(Tensor out, const char* op, std::vector<Tensor> inputs,
              std::function<std::vector<Tensor>(const Tensor& grad_out)> backward);

// Runs reverse mode from root with the given upstream gradient (ones for a
// one-element root when grad is undefined). Frees the graph unless retain_graph.
void backward(const Tensor& root, const Tensor& grad = Tensor(), bool retain_graph = false);

// When on, backward stores each node's incoming gradient norm in Node::grad_norm, and
// backward closures may report statistics with node_stat.
void set_record_grad_norms(bool on);
// Whether backward is recording norms and statistics (inspection mode).
bool record_grad_norms();
// From inside a backward closure in inspection mode: appends a named statistic to the
// node whose backward is running (e.g. batch norm's projection shares). A no-op otherwise.
void node_stat(const std::string& name, double value);

}  // namespace wn
