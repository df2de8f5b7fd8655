// Define-by-run reverse mode. Every op that sees an input requiring a gradient (and
// grad mode on) records a Node holding its inputs and a backward closure written next
// to its forward. backward() walks the nodes in reverse topological order; gradients
// reaching a leaf (or a tensor with retain_grad) are ADDED to its grad.
//
// Second order: grad(..., create_graph = true) runs the backward closures with grad mode
// on, so that gradients built from recorded ops are themselves differentiable. Only
// nodes marked double_backward promise that (the element-wise ops, sigmoid/relu/clamp,
// sum/mean, reshape); reaching any other node throws DoubleBackwardError naming it,
// rather than returning a gradient that silently misses second-order terms.
#pragma once
#include <functional>
#include <stdexcept>
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
  // inputs[i] needs no gradient). Runs with grad mode off, except under
  // grad(..., create_graph = true), where only nodes with double_backward run.
  std::function<std::vector<Tensor>(const Tensor& grad_out)> backward;
  // Whether backward, run with grad mode on, builds its result from recorded ops only
  // (so the gradient is differentiable again: second-order gradients).
  bool double_backward = false;
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

// Turns graph recording back on for its lifetime, also inside a NoGradGuard (for code
// that needs gradients of its own there, such as gradgradcheck's function).
class EnableGradGuard {
 public:
  EnableGradGuard();
  ~EnableGradGuard();
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool prev_;
};

// Attaches a node to `out` if grad mode is on and any input requires a gradient;
// returns out. Ops call this once, after computing the forward. This is also how a user
// defines an op of their own (docs/gradcheck.md). Pass double_backward = true only when
// the backward, run with grad mode on, uses recorded ops for everything that depends on
// grad_out or on the inputs (then grad(..., create_graph = true) can differentiate it).
Tensor record(Tensor out, const char* op, std::vector<Tensor> inputs,
              std::function<std::vector<Tensor>(const Tensor& grad_out)> backward, bool double_backward = false);

// Runs reverse mode from root with the given upstream gradient (ones for a
// one-element root when grad is undefined). Frees the graph unless retain_graph.
void backward(const Tensor& root, const Tensor& grad = Tensor(), bool retain_graph = false);

// Thrown by grad(..., create_graph = true) on reaching an op without a double backward.
struct DoubleBackwardError : std::runtime_error {
  DoubleBackwardError(const std::string& op, const std::string& msg) : std::runtime_error(msg), op(op) {}
  std::string op;  // the op whose backward cannot be differentiated
};

// The gradients of root with respect to each of `inputs` (given the upstream gradient
// grad_out; undefined means ones for a one-element root), returned instead of added to
// anyone's grad(): no tensor's grad() changes. An input the root does not depend on gets
// zeros. With create_graph the results are differentiable (their graph goes through the
// ops' backward), so a second grad or backward gives second-order gradients; the graph
// is then kept. The graph is freed otherwise unless retain_graph.
std::vector<Tensor> grad(const Tensor& root, const Tensor& grad_out, const std::vector<Tensor>& inputs,
                         bool create_graph = false, bool retain_graph = false);

// When on, backward stores each node's incoming gradient norm in Node::grad_norm, and
// backward closures may report statistics with node_stat.
void set_record_grad_norms(bool on);
// Whether backward is recording norms and statistics (inspection mode).
bool record_grad_norms();
// From inside a backward closure in inspection mode: appends a named statistic to the
// node whose backward is running (e.g. batch norm's projection shares). A no-op otherwise.
void node_stat(const std::string& name, double value);

}  // namespace wn
