// Graph inspection: a DOT dump of the tape behind a tensor, with each node's op,
// label, output shape and (after a backward with recorded norms) gradient norm.
#pragma once
#include <string>

#include "engine/tensor.h"

namespace wn {

// Graphviz DOT text of the graph that produced root (walks grad_fn links; call it
// before backward, or after a backward with retain_graph).
std::string graph_to_dot(const Tensor& root);

}  // namespace wn
