// The worked example of docs/gradcheck.md: an op and a layer of one's own, written as a
// user writes them (public headers only, no change to the engine), with a correct and a
// deliberately wrong backward. apps/examples/gradcheck_example.cpp checks them and
// prints the reports the doc shows; tests/test_gradcheck_example.cpp asserts them.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "nn/module.h"

namespace example {

using wn::Tensor;

// softsign(x) = x / (1 + |x|), computed by hand on the host; its derivative is
// 1 / (1 + |x|)^2. wn::record attaches the backward so that the engine can use the op.
inline Tensor softsign(const Tensor& x) {
  std::vector<double> xv = x.to_vector(), yv(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) yv[i] = xv[i] / (1 + std::fabs(xv[i]));
  Tensor y = Tensor::from_vector(yv, x.shape(), x.dtype(), x.device());
  return wn::record(y, "softsign", {x}, [x](const Tensor& g) -> std::vector<Tensor> {
    std::vector<double> xv = x.to_vector(), gv = g.to_vector(), dx(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) {
      const double d = 1 + std::fabs(xv[i]);
      dx[i] = gv[i] / (d * d);  // dL/dx = dL/dy * dy/dx
    }
    return {Tensor::from_vector(dx, x.shape(), x.dtype(), x.device())};
  });
}

// The same op with a bug in its backward: the |x| of the forward was forgotten, so the
// derivative is wrong wherever x < 0.
inline Tensor softsign_wrong(const Tensor& x) {
  std::vector<double> xv = x.to_vector(), yv(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) yv[i] = xv[i] / (1 + std::fabs(xv[i]));
  Tensor y = Tensor::from_vector(yv, x.shape(), x.dtype(), x.device());
  return wn::record(y, "softsign_wrong", {x}, [x](const Tensor& g) -> std::vector<Tensor> {
    std::vector<double> xv = x.to_vector(), gv = g.to_vector(), dx(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) {
      const double d = 1 + xv[i];  // BUG: should be 1 + |x|
      dx[i] = gv[i] / (d * d);
    }
    return {Tensor::from_vector(dx, x.shape(), x.dtype(), x.device())};
  });
}

// softsign composed from engine ops (|x| = sqrt(x^2), so x must stay away from 0): no
// backward to write, and a second-order gradient for free, because every op it uses
// has a double backward.
inline Tensor softsign_composed(const Tensor& x) { return wn::div(x, wn::add(wn::sqrt(wn::square(x)), 1.0)); }

// A layer of one's own: y = scale * softsign(x) for x of shape (N, C), one learned scale
// per channel.
class ScaledSoftsign : public wn::nn::Module {
 public:
  explicit ScaledSoftsign(int64_t channels) { scale = register_parameter("scale", Tensor::full({channels}, 1.0)); }
  Tensor forward(const Tensor& x) override { return wn::mul(softsign(x), scale); }
  std::string type_name() const override { return "ScaledSoftsign"; }
  Tensor scale;
};

// The input the example checks: six values of both signs, away from 0 (where sqrt(x^2)
// has no derivative) and from -1 (where the wrong backward divides by zero).
inline Tensor example_input() {
  return Tensor::from_vector({0.5, -0.3, 1.2, -0.8, 0.1, -2.0}, {2, 3}, wn::DType::F64).set_requires_grad();
}

}  // namespace example
