#include "engine/autograd.h"

#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "engine/backend/backend.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/profile.h"

namespace wn {

namespace {
thread_local bool t_grad_enabled = true;
bool g_record_norms = false;
// The node whose backward closure runs, in inspection mode (for node_stat).
thread_local Node* g_current_node = nullptr;

// Adds g into the gradient slot of a leaf or retained tensor (the stored gradient is
// the engine's own buffer, never an alias of g).
void accumulate_grad(TensorImpl& impl, const Tensor& g) {
  if (!impl.grad) {
    impl.grad = g.clone().impl_ptr();
  } else {
    Tensor acc(impl.grad);
    backend_for(acc.device()).binary(BinaryOp::Add, acc, g, acc);
  }
}
}  // namespace

bool grad_enabled() { return t_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = prev_; }
EnableGradGuard::EnableGradGuard() : prev_(t_grad_enabled) { t_grad_enabled = true; }
EnableGradGuard::~EnableGradGuard() { t_grad_enabled = prev_; }
void set_record_grad_norms(bool on) { g_record_norms = on; }
bool record_grad_norms() { return g_record_norms; }

void node_stat(const std::string& name, double value) {
  if (g_current_node) g_current_node->stats.emplace_back(name, value);
}

Tensor record(Tensor out, const char* op, std::vector<Tensor> inputs,
              std::function<std::vector<Tensor>(const Tensor&)> backward_fn, bool double_backward) {
  if (!t_grad_enabled) return out;
  bool any = false;
  for (const Tensor& t : inputs) any = any || (t.defined() && t.requires_grad());
  if (!any) return out;
  auto node = std::make_shared<Node>();
  node->op = op;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward_fn);
  node->double_backward = double_backward;
  node->out_shape = out.shape();
  node->dtype = out.dtype();
  out.impl().requires_grad = true;
  out.impl().grad_fn = std::move(node);
  return out;
}

namespace {

// Gradients wanted by grad(): keyed by the tensors' impls, filled instead of grad().
using Capture = std::unordered_map<TensorImpl*, Tensor>;

// backward() and grad(): with capture, the gradients reaching its tensors go there and
// no tensor's grad() is touched; with create_graph, closures run with grad mode on.
void run_backward(const Tensor& root, const Tensor& grad_in, bool retain_graph, bool create_graph,
                  Capture* capture) {
  if (!root.defined()) throw std::invalid_argument("backward: undefined tensor");
  if (!root.requires_grad())
    throw std::invalid_argument(
        fmt::format("backward: tensor {} does not require a gradient (no input of its graph requires one)",
                    root.describe()));
  Tensor grad = grad_in;
  if (!grad.defined()) {
    if (root.numel() != 1)
      throw std::invalid_argument(fmt::format(
          "backward: a gradient must be given for the non-scalar tensor {}", root.describe()));
    grad = Tensor::ones(root.shape(), root.dtype(), root.device());
  } else if (grad.shape() != root.shape() || grad.dtype() != root.dtype() || grad.device() != root.device()) {
    throw std::invalid_argument(
        fmt::format("backward: gradient {} does not match tensor {}", grad.describe(), root.describe()));
  }

  // Reverse topological order by an iterative depth-first search.
  std::vector<TensorImpl*> order;
  std::unordered_set<TensorImpl*> seen;
  std::unordered_map<TensorImpl*, std::shared_ptr<TensorImpl>> keep;  // keeps impls alive
  std::vector<std::pair<TensorImpl*, size_t>> stack{{&root.impl(), 0}};
  seen.insert(&root.impl());
  while (!stack.empty()) {
    auto& [impl, next] = stack.back();
    Node* node = impl->grad_fn.get();
    if (node && next < node->inputs.size()) {
      const Tensor& in = node->inputs[next++];
      if (in.defined() && in.requires_grad() && seen.insert(&in.impl()).second) {
        keep[&in.impl()] = in.impl_ptr();
        stack.push_back({&in.impl(), 0});
      }
      continue;
    }
    order.push_back(impl);
    stack.pop_back();
  }

  std::optional<NoGradGuard> no_grad;
  if (!create_graph) no_grad.emplace();
  profile::Phase phase("backward");
  std::unordered_map<TensorImpl*, Tensor> grads;
  grads[&root.impl()] = grad;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    TensorImpl* impl = *it;
    auto gi = grads.find(impl);
    if (gi == grads.end()) continue;
    Tensor g = std::move(gi->second);
    grads.erase(gi);
    for (auto& hook : impl->hooks)
      if (auto r = hook(g)) g = *r;
    Node* node = impl->grad_fn.get();
    if (capture) {
      auto c = capture->find(impl);
      if (c != capture->end()) c->second = g;  // each tensor is reached once, its gradient summed
    } else if (!node || impl->retains_grad) {
      accumulate_grad(*impl, g);
    }
    if (!node) continue;
    if (node->freed)
      throw std::runtime_error(fmt::format(
          "backward: the graph through op '{}' was already freed by an earlier backward; pass retain_graph=true "
          "to the first backward to run it twice",
          node->op));
    if (create_graph && !node->double_backward)
      throw DoubleBackwardError(
          node->op, fmt::format("grad with create_graph: op '{}' has no double backward (its backward is not built "
                                "from recorded ops); second-order gradients exist for the element-wise ops, "
                                "sigmoid, relu, clamp, sum, mean and reshape",
                                node->op));
    if (g_record_norms) node->grad_norm = std::sqrt(sum_squares(g));
    std::vector<Tensor> in_grads;
    {
      struct Current {  // the node node_stat reports to, reset even when backward throws
        explicit Current(Node* n) { g_current_node = n; }
        ~Current() { g_current_node = nullptr; }
      } current(g_record_norms ? node : nullptr);
      in_grads = node->backward(g);
    }
    for (size_t i = 0; i < node->inputs.size(); ++i) {
      if (!node->needs(i) || i >= in_grads.size() || !in_grads[i].defined()) continue;
      const Tensor& in = node->inputs[i];
      if (in_grads[i].shape() != in.shape())
        throw std::logic_error(fmt::format("backward of '{}' produced gradient {} for input {}", node->op,
                                           in_grads[i].shape().str(), in.shape().str()));
      auto& slot = grads[&in.impl()];
      slot = slot.defined() ? add(slot, in_grads[i]) : in_grads[i];
    }
  }
  if (!retain_graph && !create_graph) {
    for (TensorImpl* impl : order)
      if (Node* node = impl->grad_fn.get()) {
        node->backward = nullptr;
        node->inputs.clear();
        node->freed = true;
      }
  }
}

}  // namespace

void backward(const Tensor& root, const Tensor& grad_in, bool retain_graph) {
  run_backward(root, grad_in, retain_graph, false, nullptr);
}

std::vector<Tensor> grad(const Tensor& root, const Tensor& grad_out, const std::vector<Tensor>& inputs,
                         bool create_graph, bool retain_graph) {
  Capture capture;
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (!inputs[k].defined()) throw std::invalid_argument(fmt::format("grad: input {} is undefined", k));
    if (!inputs[k].requires_grad())
      throw std::invalid_argument(
          fmt::format("grad: input {} ({}) does not require a gradient", k, inputs[k].describe()));
    capture[&inputs[k].impl()];
  }
  run_backward(root, grad_out, retain_graph, create_graph, &capture);
  std::vector<Tensor> out;
  for (const Tensor& t : inputs) {
    const Tensor& g = capture[&t.impl()];
    if (!g.defined())
      out.push_back(Tensor::zeros(t.shape(), t.dtype(), t.device()));
    else  // a copy unless it carries a graph: g may be the caller's grad_out or another's buffer
      out.push_back(create_graph ? g : g.clone());
  }
  return out;
}

}  // namespace wn
