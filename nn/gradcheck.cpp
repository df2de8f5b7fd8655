#include "nn/gradcheck.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace wn::nn {

namespace {

// The module's state as it was, put back when the check ends (also when it throws).
class StateGuard {
 public:
  explicit StateGuard(Module& m) : m_(m) {
    for (auto& [n, t] : m.state()) {
      saved_.push_back({t, t.to_vector(), t.grad()});
      if (t.dtype() != saved_[0].t.dtype() || t.device() != saved_[0].t.device())
        throw std::invalid_argument(fmt::format("gradcheck_module: {} is {} but {} is {}; put the module on one "
                                                "device and dtype first",
                                                n, t.describe(), m.state()[0].first, saved_[0].t.describe()));
    }
    if (!saved_.empty()) dtype_ = saved_[0].t.dtype(), device_ = saved_[0].t.device();
    m.zero_grad();  // the saved gradients are no longer the ones a backward adds to
  }
  ~StateGuard() {
    if (saved_.empty()) return;
    try {
      m_.to(dtype_);
      m_.to(device_);
      for (Saved& s : saved_) {
        s.t.copy_from(Tensor::from_vector(s.values, s.t.shape(), dtype_));
        if (s.grad.defined())
          s.t.set_grad(s.grad);
        else
          s.t.zero_grad();
      }
    } catch (...) {  // a destructor must not throw; the state stays float64 then
    }
  }
  StateGuard(const StateGuard&) = delete;
  StateGuard& operator=(const StateGuard&) = delete;

 private:
  struct Saved {
    Tensor t;
    std::vector<double> values;
    Tensor grad;
  };
  Module& m_;
  std::vector<Saved> saved_;
  DType dtype_ = DType::F32;
  Device device_ = kCPU;
};

}  // namespace

GradcheckResult gradcheck_module(Module& m, const std::vector<Tensor>& inputs, const GradcheckOptions& opt,
                                 const ModuleCheck& what) {
  const Named all = m.named_parameters();
  Named chosen;
  if (what.parameters && what.params.empty()) chosen = all;
  if (what.parameters)
    for (const std::string& want : what.params) {
      auto it = std::find_if(all.begin(), all.end(), [&](const auto& p) { return p.first == want; });
      if (it == all.end()) {
        std::vector<std::string> names;
        for (auto& [n, t] : all) names.push_back(n);
        throw std::invalid_argument(
            names.empty() ? fmt::format("gradcheck_module: no parameter '{}': the module has no parameters", want)
                          : fmt::format("gradcheck_module: no parameter '{}'; the module's parameters are: {}", want,
                                        fmt::join(names, ", ")));
      }
      if (!it->second.requires_grad())
        throw std::invalid_argument(fmt::format("gradcheck_module: parameter '{}' does not require a gradient", want));
      chosen.push_back(*it);
    }
  if (!what.forward && inputs.size() != 1)
    throw std::invalid_argument(fmt::format("gradcheck_module: {} inputs given, but the module is called as m(x) on "
                                            "one; set ModuleCheck::forward to call it on several",
                                            inputs.size()));
  if (!(what.inputs && !inputs.empty()) && chosen.empty())
    throw std::invalid_argument(fmt::format(
        "gradcheck_module: nothing to check (inputs {}, no parameter chosen of the module's {})",
        what.inputs ? "none given" : "not checked", all.size()));
  for (size_t k = 0; k < inputs.size(); ++k)
    if (!inputs[k].defined()) throw std::invalid_argument(fmt::format("gradcheck_module: input {} is undefined", k));

  StateGuard guard(m);
  m.to(DType::F64);
  m.to(kCPU);
  std::vector<Tensor> xs, leaves;
  GradcheckOptions o = opt;
  o.names.clear();
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor x = inputs[k].to(kCPU).to(DType::F64).clone();
    x.set_requires_grad(what.inputs);
    xs.push_back(x);
    if (what.inputs) {
      leaves.push_back(x);
      o.names.push_back(fmt::format("input {}", k));
    }
  }
  for (auto& [n, p] : chosen) {
    leaves.push_back(p);
    o.names.push_back(n);
  }
  auto f = [&]() { return what.forward ? what.forward(m, xs) : m(xs[0]); };
  return gradcheck_leaves(f, leaves, o);
}

}  // namespace wn::nn
