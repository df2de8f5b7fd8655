#include "engine/inspect.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>

#include "engine/autograd.h"
#include "engine/ops/reduce.h"

namespace wn {

// Viridis in nine steps (dark to light; readable in grey and by colour-blind readers).
const std::vector<std::string> kDotPalette = {"#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c",
                                              "#28ae80", "#5ec962", "#addc30", "#fde725"};

namespace {
std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o;
}

// One tensor of the drawn graph: its node (undefined for a leaf), the gradient norm that
// reached it (-1: none recorded) and the ids of the tensors it was computed from.
struct DrawnTensor {
  std::shared_ptr<TensorImpl> impl;
  double grad_norm = -1;
  std::vector<int> inputs;
};

// Every tensor behind roots, each once (ids in the order met, roots first).
std::vector<DrawnTensor> walk(const std::vector<Tensor>& roots) {
  std::vector<DrawnTensor> out;
  std::unordered_map<const TensorImpl*, int> ids;
  std::vector<int> stack;
  auto id_of = [&](const Tensor& t) {
    auto [it, fresh] = ids.emplace(&t.impl(), static_cast<int>(out.size()));
    if (fresh) {
      out.push_back({t.impl_ptr(), -1, {}});
      stack.push_back(it->second);
    }
    return it->second;
  };
  for (const Tensor& r : roots)
    if (r.defined()) id_of(r);
  while (!stack.empty()) {
    const int id = stack.back();
    stack.pop_back();
    const std::shared_ptr<TensorImpl> impl = out[id].impl;
    if (const Node* node = impl->grad_fn.get()) {
      out[id].grad_norm = node->grad_norm;
      std::vector<int> ins;
      for (const Tensor& in : node->inputs)
        if (in.defined() && in.requires_grad()) ins.push_back(id_of(in));
      out[id].inputs = ins;
    } else if (impl->grad) {
      out[id].grad_norm = std::sqrt(sum_squares(Tensor(impl->grad)));
    }
  }
  return out;
}

// The colour scale's range in decades: [floor(log10 min), ceil(log10 max)] over the
// positive finite norms (lo == hi: none).
std::pair<int, int> decades(const std::vector<DrawnTensor>& ts) {
  double lo = INFINITY, hi = -INFINITY;
  for (const DrawnTensor& t : ts)
    if (t.grad_norm > 0 && std::isfinite(t.grad_norm)) lo = std::min(lo, t.grad_norm), hi = std::max(hi, t.grad_norm);
  if (!std::isfinite(lo)) return {0, 0};
  int a = static_cast<int>(std::floor(std::log10(lo))), b = static_cast<int>(std::ceil(std::log10(hi)));
  return {a, std::max(b, a + 1)};
}

// Index in kDotPalette of a positive norm on the scale [10^lo, 10^hi].
size_t colour_index(double norm, std::pair<int, int> range) {
  const double t = (std::log10(norm) - range.first) / double(range.second - range.first);
  const auto n = static_cast<double>(kDotPalette.size());
  return static_cast<size_t>(std::clamp(std::floor(t * n), 0.0, n - 1));
}

// Node attributes filling it with its norm's colour (white text on the dark half).
std::string fill(double norm, std::pair<int, int> range) {
  if (norm < 0 || !std::isfinite(norm)) return fmt::format("style=filled, fillcolor=\"{}\"", kDotNoGrad);
  if (norm == 0 || range.first == range.second) return fmt::format("style=filled, fillcolor=\"{}\"", kDotZeroGrad);
  const size_t i = colour_index(norm, range);
  return fmt::format("style=filled, fillcolor=\"{}\"{}", kDotPalette[i],
                     i < kDotPalette.size() / 2 ? ", fontcolor=\"white\"" : "");
}

// The legend: not recorded, zero, then one box per colour with its range of norms.
std::string legend(std::pair<int, int> range) {
  std::string out =
      "  subgraph cluster_legend {\n    label=\"colour: |dL/d(output)| of the node (leaves: |dL/dleaf|)\";\n"
      "    fontname=\"monospace\"; fontsize=10; style=rounded;\n";
  // Chained bottom to top (rankdir=BT): no gradient, 0, then the colours from low to high.
  out += fmt::format("    legend_none [shape=box, style=filled, fillcolor=\"{}\", label=\"no gradient recorded\"];\n",
                     kDotNoGrad);
  out += fmt::format("    legend_zero [shape=box, style=filled, fillcolor=\"{}\", label=\"0\"];\n", kDotZeroGrad);
  std::vector<std::string> ids{"legend_none", "legend_zero"};
  const double n = static_cast<double>(kDotPalette.size());
  for (size_t i = 0; range.first != range.second && i < kDotPalette.size(); ++i) {
    const double step = (range.second - range.first) / n;
    const double a = std::pow(10.0, range.first + step * double(i)), b = std::pow(10.0, range.first + step * double(i + 1));
    ids.push_back(fmt::format("legend{}", i));
    out += fmt::format("    {} [shape=box, style=filled, fillcolor=\"{}\"{}, label=\"{:.1e} .. {:.1e}\"];\n", ids.back(),
                       kDotPalette[i], i < kDotPalette.size() / 2 ? ", fontcolor=\"white\"" : "", a, b);
  }
  for (size_t i = 1; i < ids.size(); ++i) out += fmt::format("    {} -> {} [style=invis];\n", ids[i - 1], ids[i]);
  return out + "  }\n";
}
}  // namespace

std::string graph_to_dot(const Tensor& root) { return graph_to_dot(std::vector<Tensor>{root}, ""); }

std::string graph_to_dot(const std::vector<Tensor>& roots, const std::string& title) {
  const std::vector<DrawnTensor> ts = walk(roots);
  const std::pair<int, int> range = decades(ts);
  std::string out = "digraph tape {\n  rankdir=BT;\n  node [fontname=\"monospace\", fontsize=10];\n";
  if (!title.empty()) out += fmt::format("  labelloc=\"t\";\n  label=\"{}\";\n  fontname=\"monospace\";\n", escape(title));
  for (size_t id = 0; id < ts.size(); ++id) {
    const TensorImpl& impl = *ts[id].impl;
    const Node* node = impl.grad_fn.get();
    std::string text = node ? node->op + (node->label.empty() ? "" : "\\n" + escape(node->label))
                            : (impl.label.empty() ? std::string("leaf") : escape(impl.label));
    text += "\\n" + impl.shape.str();
    if (ts[id].grad_norm >= 0) text += fmt::format("\\n|grad| {:.3e}", ts[id].grad_norm);
    out += fmt::format("  n{} [shape={}, {}, label=\"{}\"];\n", id, node ? "box" : "ellipse", fill(ts[id].grad_norm, range),
                       text);
    for (int in : ts[id].inputs) out += fmt::format("  n{} -> n{};\n", in, id);
  }
  return out + legend(range) + "}\n";
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
