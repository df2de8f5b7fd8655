// Module: a layer or a network with hierarchically named parameters
// (`G.level1.conv.weight`), buffers (batch norm running statistics), children, an
// explicit train/eval mode that propagates to the children, and forward hooks.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace wn::nn {

using Named = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;
  // The layer's computation on one input (modules with several inputs add their own).
  virtual Tensor forward(const Tensor& x);
  // forward, then finish().
  Tensor operator()(const Tensor& x) { return finish(forward(x)); }
  // Labels an output with the module's name and runs the forward hooks on it (modules
  // with several inputs call it at the end of their own forward).
  Tensor finish(const Tensor& y);
  // A short type name for summaries ("Conv2d", "TPReLU", ...).
  virtual std::string type_name() const { return "Module"; }

  // Parameters and buffers of this module and its children, with full names.
  Named named_parameters() const;
  Named named_buffers() const;
  // Parameters and buffers together: what a checkpoint stores.
  Named state() const;
  std::vector<Tensor> parameters() const;
  // Number of learned scalars.
  int64_t num_parameters() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }
  // This module's full name ("G.level1.conv"), set when it is registered in a parent.
  const std::string& name() const { return name_; }
  // Renames this module and, below it, every child (used for the root: "G", "D").
  void set_name(const std::string& name);

  // Training or evaluation mode, for this module and all below it.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Converts every parameter and buffer in place (float64 for gradient checks, or
  // another device); handles held by layers stay valid.
  void to(DType dtype);
  void to(Device device);
  // Drops every parameter's gradient.
  void zero_grad();
  // Calls fn on this module and every descendant, depth first.
  void apply(const std::function<void(Module&)>& fn);

  // A hook called after forward with the module and its output.
  using ForwardHook = std::function<void(Module&, const Tensor& out)>;
  void register_forward_hook(ForwardHook hook) { hooks_.push_back(std::move(hook)); }
  void clear_forward_hooks() { hooks_.clear(); }
  // Hook called after each optimizer update (e.g. to clip PReLU slopes); default none.
  virtual void after_update() {}

 protected:
  // Registers a learned tensor (made a leaf requiring a gradient) under a local name;
  // returns a handle sharing it (conversions by to() are seen through every handle).
  Tensor register_parameter(const std::string& local, Tensor t);
  Tensor register_buffer(const std::string& local, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& local, std::shared_ptr<M> m) {
    add_child(local, m);
    return m;
  }

 private:
  void add_child(const std::string& local, std::shared_ptr<Module> m);
  void collect(Named& out, bool params, bool buffers) const;
  std::string name_;
  Named params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  std::vector<ForwardHook> hooks_;
  bool training_ = true;
};

using ModulePtr = std::shared_ptr<Module>;

// Runs its children in order.
class Sequential : public Module {
 public:
  // Appends a child under the given local name; returns it.
  template <class M>
  std::shared_ptr<M> add(const std::string& local, std::shared_ptr<M> m) {
    order_.push_back(m);
    return register_module(local, m);
  }
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Sequential"; }
  size_t size() const { return order_.size(); }

 private:
  std::vector<ModulePtr> order_;
};

}  // namespace wn::nn
