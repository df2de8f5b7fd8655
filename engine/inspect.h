// Graph inspection: a DOT dump of the tape behind a tensor, with each node's op,
// label, output shape and (after a backward with recorded norms) gradient norm, coloured
// by that norm; and the nodes of a tape with their per-node gradient statistics.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace wn {

// Graphviz DOT text of the graph that produced root (walks grad_fn links; call it
// before backward, or after a backward with retain_graph).
std::string graph_to_dot(const Tensor& root);
// The same for the graphs behind several roots (one step's tape may have several, e.g.
// a real and a fake loss), drawn as one graph: each node is filled with the colour of
// log10 of the gradient norm that reached it (nodes: recorded in inspection mode; leaves:
// their .grad), a legend cluster shows the colour scale, and title (if any) goes on top.
std::string graph_to_dot(const std::vector<Tensor>& roots, const std::string& title);

// The colour scale of graph_to_dot: kDotPalette[i] fills norms whose log10 lies in the
// i-th of kDotPalette.size() equal parts of [floor(log10 min), ceil(log10 max)].
extern const std::vector<std::string> kDotPalette;
// Fill of a node whose gradient norm is 0, and of one without a recorded norm.
constexpr const char* kDotZeroGrad = "#d9d9d9";
constexpr const char* kDotNoGrad = "#ffffff";

// One node of a tape, for inspection tables: its op, its label (the module whose output
// it made), output shape, incoming gradient norm (-1: not recorded) and the statistics
// its backward reported (Node::stats).
struct NodeInfo {
  std::string op, label;
  Shape shape;
  double grad_norm = -1;
  std::vector<std::pair<std::string, double>> stats;
};
// Every node of the graph behind root, from root down (call it after a backward in
// inspection mode with retain_graph, or before backward).
std::vector<NodeInfo> tape_nodes(const Tensor& root);

}  // namespace wn
