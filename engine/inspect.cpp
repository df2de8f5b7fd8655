#include "engine/inspect.h"

#include <cmath>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>

#include "engine/autograd.h"
#include "engine/ops/reduce.h"

namespace wn {

namespace {
std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o;
}
}  // namespace

std::string graph_to_dot(const Tensor& root) {
  std::string out = "digraph tape {\n  rankdir=BT;\n  node [fontname=\"monospace\", fontsize=10];\n";
  std::unordered_map<const TensorImpl*, int> ids;
  std::vector<std::shared_ptr<TensorImpl>> stack{root.impl_ptr()};
  ids[&root.impl()] = 0;
  while (!stack.empty()) {
    auto impl = stack.back();
    stack.pop_back();
    const int id = ids[impl.get()];
    const Node* node = impl->grad_fn.get();
    std::string text;
    if (node) {
      text = node->op + (node->label.empty() ? "" : "\\n" + escape(node->label)) + "\\n" + impl->shape.str();
      if (node->grad_norm >= 0) text += fmt::format("\\n|grad| {:.3e}", node->grad_norm);
      out += fmt::format("  n{} [shape=box, label=\"{}\"];\n", id, text);
    } else {
      text = (impl->label.empty() ? std::string("leaf") : escape(impl->label)) + "\\n" + impl->shape.str();
      if (impl->grad) text += fmt::format("\\n|grad| {:.3e}", std::sqrt(sum_squares(Tensor(impl->grad))));
      out += fmt::format("  n{} [shape=ellipse, style=filled, fillcolor=\"#e8f0ff\", label=\"{}\"];\n", id, text);
      continue;
    }
    for (const Tensor& in : node->inputs) {
      if (!in.defined() || !in.requires_grad()) continue;
      auto it = ids.find(&in.impl());
      int cid;
      if (it == ids.end()) {
        cid = static_cast<int>(ids.size());
        ids[&in.impl()] = cid;
        stack.push_back(in.impl_ptr());
      } else {
        cid = it->second;
      }
      out += fmt::format("  n{} -> n{};\n", cid, id);
    }
  }
  return out + "}\n";
}

std::vector<NodeInfo> tape_nodes(const Tensor& root) {
  std::vector<NodeInfo> out;
  std::unordered_set<const TensorImpl*> seen{&root.impl()};
  std::vector<std::shared_ptr<TensorImpl>> stack{root.impl_ptr()};
  while (!stack.empty()) {
    auto impl = stack.back();
    stack.pop_back();
    const Node* node = impl->grad_fn.get();
    if (!node) continue;
    out.push_back({node->op, node->label, impl->shape, node->grad_norm, node->stats});
    for (const Tensor& in : node->inputs)
      if (in.defined() && in.requires_grad() && seen.insert(&in.impl()).second) stack.push_back(in.impl_ptr());
  }
  return out;
}

}  // namespace wn
