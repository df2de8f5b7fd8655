#include "nn/module.h"

#include "engine/autograd.h"

#include <stdexcept>

#include <fmt/format.h>

namespace wn::nn {

namespace {
std::string join(const std::string& a, const std::string& b) { return a.empty() ? b : a + "." + b; }
}  // namespace

Tensor Module::forward(const Tensor&) {
  throw std::logic_error(fmt::format("{} '{}' has no single-input forward", type_name(), name_));
}

Tensor Module::finish(const Tensor& out) {
  Tensor y = out;
  // The innermost module that produced a node names it (a Sequential does not
  // rename its last child's output).
  if (y.defined() && y.grad_fn() && y.grad_fn()->label.empty() && !name_.empty()) y.set_label(name_);
  for (auto& h : hooks_) h(*this, y);
  return y;
}

Tensor Module::register_parameter(const std::string& local, Tensor t) {
  if (t.requires_grad() && !t.is_leaf()) t = t.detach();
  t.set_requires_grad(true);
  t.set_label(join(name_, local));
  params_.emplace_back(local, t);
  return params_.back().second;
}

Tensor Module::register_buffer(const std::string& local, Tensor t) {
  buffers_.emplace_back(local, t);
  return buffers_.back().second;
}

void Module::add_child(const std::string& local, std::shared_ptr<Module> m) {
  for (auto& [n, c] : children_)
    if (n == local) throw std::logic_error(fmt::format("module '{}' already has a child '{}'", name_, local));
  children_.emplace_back(local, m);
  m->set_name(join(name_, local));
}

void Module::set_name(const std::string& name) {
  name_ = name;
  for (auto& [local, p] : params_) p.set_label(join(name_, local));
  for (auto& [local, c] : children_) c->set_name(join(name_, local));
}

void Module::collect(Named& out, bool params, bool buffers) const {
  if (params)
    for (auto& [local, t] : params_) out.emplace_back(join(name_, local), t);
  if (buffers)
    for (auto& [local, t] : buffers_) out.emplace_back(join(name_, local), t);
  for (auto& [local, c] : children_) c->collect(out, params, buffers);
}

Named Module::named_parameters() const {
  Named out;
  collect(out, true, false);
  return out;
}

Named Module::named_buffers() const {
  Named out;
  collect(out, false, true);
  return out;
}

Named Module::state() const {
  Named out;
  collect(out, true, true);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> v;
  for (auto& [n, t] : named_parameters()) v.push_back(t);
  return v;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

namespace {
// Replaces a tensor's storage and dtype with those of `src`, keeping its identity.
void replace_in_place(const Tensor& t, const Tensor& src) {
  t.impl().storage = src.impl().storage;
  t.impl().dtype = src.dtype();
  t.impl().grad.reset();
}
}  // namespace

void Module::to(DType dtype) {
  for (auto& [n, t] : state())
    if (t.dtype() != dtype) replace_in_place(t, t.to(dtype));
}

void Module::to(Device device) {
  for (auto& [n, t] : state())
    if (t.device() != device) replace_in_place(t, t.to(device));
}

void Module::zero_grad() {
  for (auto& [n, t] : named_parameters()) t.zero_grad();
}

void Module::apply(const std::function<void(Module&)>& fn) {
  fn(*this);
  for (auto& [n, c] : children_) c->apply(fn);
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& m : order_) y = (*m)(y);
  return y;
}

}  // namespace wn::nn
