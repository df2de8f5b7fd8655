// Graph inspection: a DOT dump of the tape behind a tensor, with each node's op,
// label, output shape and (after a backward with recorded norms) gradient norm.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace wn {

// Graphviz DOT text of the graph that produced root (walks grad_fn links; call it
// before backward, or after a backward with retain_graph).
std::string graph_to_dot(const Tensor& root);

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
