// The program behind docs/gradcheck.md: checks the example op and layer of softsign.h
// (correct, wrong backward, second order, module) and prints what the doc shows.
#include <fmt/format.h>

#include "apps/examples/softsign.h"
#include "nn/gradcheck.h"

using namespace wn;

int main() {
  const Tensor x = example::example_input();
  auto op = [](const std::vector<Tensor>& in) { return example::softsign(in[0]); };
  auto wrong = [](const std::vector<Tensor>& in) { return example::softsign_wrong(in[0]); };
  auto composed = [](const std::vector<Tensor>& in) { return example::softsign_composed(in[0]); };
  GradcheckOptions opt;
  opt.names = {"x"};

  // 1. The op with its correct backward passes.
  GradcheckResult ok = gradcheck(op, {x}, opt);
  fmt::print("softsign: {} (max rel error {:.2e})\n", ok.passed ? "passed" : "FAILED", ok.max_rel_error);

  // 2. The wrong backward fails, and the report says where.
  GradcheckResult bad = gradcheck(wrong, {x}, opt);
  fmt::print("softsign_wrong: {} (max rel error {:.2e})\n", bad.passed ? "passed" : "FAILED", bad.max_rel_error);
  fmt::print("  worst: {}\n", bad.worst);
  const GradcheckElement& w = bad.worst_element;
  fmt::print("  tensor {} ({}), element {} = [{}], analytic {:.6f}, numeric {:.6f}\n", w.input, w.name, w.flat,
             fmt::join(w.index, ", "), w.analytic, w.numeric);

  // 3. Second order: the hand-written op has no double backward; the composed one has.
  GradcheckResult gg = gradgradcheck(op, {x}, opt);
  fmt::print("gradgradcheck softsign: {}\n", gg.supported ? (gg.passed ? "passed" : "FAILED") : "not supported");
  if (!gg.supported) fmt::print("  {}\n", gg.worst);
  GradcheckResult gc = gradgradcheck(composed, {x}, opt);
  fmt::print("gradgradcheck softsign_composed: {} (max rel error {:.2e})\n", gc.passed ? "passed" : "FAILED",
             gc.max_rel_error);

  // 4. A module: its input and its parameter, in float32 (converted for the check and back).
  example::ScaledSoftsign layer(3);
  layer.scale.copy_from(Tensor::from_vector({0.5, 2.0, -1.0}, {3}));
  GradcheckResult m = nn::gradcheck_module(layer, {x.detach().to(DType::F32)});
  fmt::print("ScaledSoftsign (input and scale): {} (max rel error {:.2e}); scale is still {}\n",
             m.passed ? "passed" : "FAILED", m.max_rel_error, layer.scale.describe());
  return ok.passed && !bad.passed && !gg.supported && gc.passed && m.passed ? 0 : 1;
}
