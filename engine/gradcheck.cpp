#include "engine/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/autograd.h"
#include "engine/random.h"

namespace wn {

namespace {
double dot(const std::vector<double>& a, const Tensor& y) {
  std::vector<double> b = y.to_vector();
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
}  // namespace

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs_in, const GradcheckOptions& opt) {
  std::vector<Tensor> inputs;
  for (const Tensor& t : inputs_in) {
    if (!t.defined()) {
      inputs.push_back(t);
      continue;
    }
    Tensor c = t.clone();
    c.set_requires_grad(t.requires_grad());
    inputs.push_back(c);
  }
  return gradcheck_leaves([&] { return f(inputs); }, inputs, opt);
}

GradcheckResult gradcheck_leaves(const std::function<Tensor()>& f0, const std::vector<Tensor>& inputs,
                                 const GradcheckOptions& opt) {
  for (const Tensor& t : inputs) {
    if (!t.defined()) continue;
    if (t.dtype() != DType::F64 || t.device() != kCPU)
      throw std::invalid_argument("gradcheck: inputs must be float64 CPU tensors, got " + t.describe());
    if (t.requires_grad() && !t.is_leaf()) throw std::invalid_argument("gradcheck: checked tensors must be leaves");
    if (t.requires_grad()) Tensor(t).zero_grad();
  }
  auto f = [&](const std::vector<Tensor>&) { return f0(); };
  Tensor y = f(inputs);
  Generator gen(opt.seed);
  Tensor u = randn(y.shape(), gen, 1.0, DType::F64);
  y.backward(u);
  const std::vector<double> uv = u.to_vector();
  std::vector<std::vector<double>> analytic(inputs.size());
  for (size_t k = 0; k < inputs.size(); ++k)
    if (inputs[k].defined() && inputs[k].requires_grad()) {
      if (!inputs[k].grad().defined())
        analytic[k].assign(static_cast<size_t>(inputs[k].numel()), 0.0);
      else
        analytic[k] = inputs[k].grad().to_vector();
    }

  GradcheckResult res;
  res.passed = true;
  {
    NoGradGuard no_grad;
    for (size_t k = 0; k < inputs.size(); ++k) {
      if (analytic[k].empty()) continue;
      double* p = inputs[k].data<double>();
      std::vector<double> numeric(analytic[k].size());
      for (size_t i = 0; i < numeric.size(); ++i) {
        const double keep = p[i];
        p[i] = keep + opt.eps;
        const double lp = dot(uv, f(inputs));
        p[i] = keep - opt.eps;
        const double lm = dot(uv, f(inputs));
        p[i] = keep;
        numeric[i] = (lp - lm) / (2 * opt.eps);
      }
      double scale = 0;
      for (size_t i = 0; i < numeric.size(); ++i)
        scale = std::max({scale, std::fabs(numeric[i]), std::fabs(analytic[k][i])});
      scale = std::max(scale, 1e-6);
      for (size_t i = 0; i < numeric.size(); ++i) {
        const double e = std::fabs(analytic[k][i] - numeric[i]) / scale;
        if (!(e <= res.max_rel_error)) {
          res.max_rel_error = std::isnan(e) ? INFINITY : e;
          res.worst = fmt::format("input {} element {}: analytic {:.10g}, numeric {:.10g}", k, i, analytic[k][i],
                                  numeric[i]);
        }
      }
    }
  }
  res.passed = res.max_rel_error <= opt.tolerance;

  if (opt.check_accumulation) {
    // A second backward must add the same gradient again: grad == 2 * analytic.
    Tensor y2 = f(inputs);
    y2.backward(u);
    for (size_t k = 0; k < inputs.size(); ++k) {
      if (analytic[k].empty()) continue;
      std::vector<double> g2 = inputs[k].grad().to_vector();
      double scale = 1e-12, err = 0;
      for (size_t i = 0; i < g2.size(); ++i) {
        scale = std::max(scale, std::fabs(2 * analytic[k][i]));
        err = std::max(err, std::fabs(g2[i] - 2 * analytic[k][i]));
      }
      if (err / scale > 1e-12) {
        res.passed = false;
        res.worst = fmt::format("input {}: second backward did not accumulate (rel error {:.3g})", k, err / scale);
      }
    }
  }
  return res;
}

}  // namespace wn
