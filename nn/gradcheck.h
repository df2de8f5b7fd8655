// Gradient checks of a Module with respect to its inputs and its parameters (all, or
// chosen by name): the module counterpart of engine/gradcheck.h, for people checking
// their own layers. docs/gradcheck.md shows both.
//
//   nn::Linear lin(5, 3, gen);
//   GradcheckResult r = nn::gradcheck_module(lin, {x});  // x: any dtype and device
//   GradcheckResult w = nn::gradcheck_module(lin, {x}, {}, {.inputs = false, .params = {"weight"}});
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/gradcheck.h"
#include "nn/module.h"

namespace wn::nn {

// What gradcheck_module checks, and how it calls the module.
struct ModuleCheck {
  bool inputs = true;               // check the gradient w.r.t. every input
  std::vector<std::string> params;  // full names as named_parameters() gives them; empty: every parameter
  bool parameters = true;           // false: no parameter at all
  // How to call the module on its inputs; default m(inputs[0]) (one input).
  std::function<Tensor(Module&, const std::vector<Tensor>&)> forward = nullptr;
};

// Checks m's backward by central differences. The module is converted to float64 on the
// CPU for the check (the finite differences need double precision) and then given back
// its dtype, device, parameter and buffer values (bit for bit: float32 values survive the
// round trip) and gradients; the inputs are float64 copies, the caller's are untouched.
// Reports name tensors "input k" and parameters by their names (opt.names is ignored).
// Mode (train/eval) is the module's own: set it before the check.
GradcheckResult gradcheck_module(Module& m, const std::vector<Tensor>& inputs, const GradcheckOptions& opt = {},
                                 const ModuleCheck& what = {});

}  // namespace wn::nn
