#include "engine/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/random.h"

namespace wn {

namespace {

double dot(const std::vector<double>& a, const Tensor& y) {
  std::vector<double> b = y.to_vector();
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

std::vector<int64_t> multi_index(int64_t flat, const Shape& s) {
  std::vector<int64_t> idx(static_cast<size_t>(s.rank()));
  for (int d = s.rank() - 1; d >= 0; --d) {
    idx[static_cast<size_t>(d)] = s[d] ? flat % s[d] : 0;
    flat = s[d] ? flat / s[d] : 0;
  }
  return idx;
}

void check_options(const GradcheckOptions& o, size_t n_tensors) {
  if (!(o.eps > 0) || std::isinf(o.eps))
    throw std::invalid_argument(fmt::format("gradcheck: eps must be a finite number > 0, got {}", o.eps));
  if (!(o.atol >= 0) || !(o.rtol >= 0))
    throw std::invalid_argument(fmt::format("gradcheck: atol and rtol must be >= 0, got {} and {}", o.atol, o.rtol));
  if (!o.names.empty() && o.names.size() != n_tensors)
    throw std::invalid_argument(
        fmt::format("gradcheck: {} names given for {} tensors (give one per tensor, or none)", o.names.size(), n_tensors));
}

// Float64 CPU copies keeping requires_grad, so the check never touches the caller's tensors.
std::vector<Tensor> copies(const std::vector<Tensor>& in) {
  std::vector<Tensor> out;
  for (const Tensor& t : in) {
    if (!t.defined()) {
      out.push_back(t);
      continue;
    }
    Tensor c = t.clone();
    c.set_requires_grad(t.requires_grad());
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string GradcheckElement::str() const {
  if (input < 0) return "no element was checked";
  return fmt::format("{} element {} [{}]: analytic {:.10g}, numeric {:.10g} (abs error {:.3g}, rel error {:.3g})", name,
                     flat, fmt::join(index, ", "), analytic, numeric, abs_error, rel_error);
}

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs_in, const GradcheckOptions& opt) {
  std::vector<Tensor> inputs = copies(inputs_in);
  return gradcheck_leaves([&] { return f(inputs); }, inputs, opt);
}

GradcheckResult gradcheck_leaves(const std::function<Tensor()>& f, const std::vector<Tensor>& inputs,
                                 const GradcheckOptions& opt) {
  check_options(opt, inputs.size());
  bool any = false;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& t = inputs[k];
    if (!t.defined()) continue;
    if (t.dtype() != DType::F64 || t.device() != kCPU)
      throw std::invalid_argument(fmt::format(
          "gradcheck: inputs must be float64 CPU tensors (finite differences need double precision), input {} is {}",
          k, t.describe()));
    if (t.requires_grad() && !t.is_leaf())
      throw std::invalid_argument(fmt::format("gradcheck: input {} is not a leaf (it was computed by '{}'); pass "
                                              "the tensor it was computed from, or a detached copy",
                                              k, t.grad_fn()->op));
    if (t.requires_grad()) Tensor(t).zero_grad();
    any = any || t.requires_grad();
  }
  if (!any)
    throw std::invalid_argument("gradcheck: no input requires a gradient; mark the tensors to check with "
                                "set_requires_grad()");
  auto name_of = [&](size_t k) { return opt.names.empty() ? fmt::format("input {}", k) : opt.names[k]; };

  Tensor y = f();
  if (!y.defined() || y.dtype() != DType::F64 || y.device() != kCPU)
    throw std::invalid_argument("gradcheck: f must return a float64 CPU tensor, got " +
                                (y.defined() ? y.describe() : std::string("an undefined tensor")));
  // An output that no checked tensor reaches has zero analytic gradients (an op that forgot
  // record() looks like this); the finite differences then tell whether that is right.
  const bool connected = y.requires_grad();
  Generator gen(opt.seed);
  Tensor u = randn(y.shape(), gen, 1.0, DType::F64);
  if (connected) y.backward(u);
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
  const bool scaled_rule = opt.tolerance >= 0;
  bool all_close = true;
  double worst_score = -1;  // of the rule in force
  {
    NoGradGuard no_grad;
    for (size_t k = 0; k < inputs.size(); ++k) {
      if (!inputs[k].defined() || !inputs[k].requires_grad()) continue;
      double* p = inputs[k].data<double>();
      std::vector<double> numeric(analytic[k].size());
      for (size_t i = 0; i < numeric.size(); ++i) {
        const double keep = p[i];
        p[i] = keep + opt.eps;
        const double lp = dot(uv, f());
        p[i] = keep - opt.eps;
        const double lm = dot(uv, f());
        p[i] = keep;
        numeric[i] = (lp - lm) / (2 * opt.eps);
      }
      double scale = 0;
      for (size_t i = 0; i < numeric.size(); ++i)
        scale = std::max({scale, std::fabs(numeric[i]), std::fabs(analytic[k][i])});
      scale = std::max(scale, 1e-6);
      for (size_t i = 0; i < numeric.size(); ++i) {
        const double a = analytic[k][i], n = numeric[i], d = std::fabs(a - n);
        const double bound = opt.atol + opt.rtol * std::fabs(n);
        const bool close = d <= bound;  // false for NaN
        all_close = all_close && close;
        double e = d / scale;
        if (std::isnan(e)) e = INFINITY;
        res.max_rel_error = std::max(res.max_rel_error, e);
        double score = scaled_rule ? e : (bound > 0 ? d / bound : (d > 0 ? INFINITY : 0.0));
        if (std::isnan(score)) score = INFINITY;
        if (score > worst_score) {
          worst_score = score;
          GradcheckElement& w = res.worst_element;
          w.input = static_cast<int>(k);
          w.name = name_of(k);
          w.flat = static_cast<int64_t>(i);
          w.index = multi_index(w.flat, inputs[k].shape());
          w.analytic = a;
          w.numeric = n;
          w.abs_error = d;
          w.rel_error = n != 0 ? d / std::fabs(n) : (d == 0 ? 0.0 : INFINITY);
        }
      }
    }
  }
  res.passed = scaled_rule ? res.max_rel_error <= opt.tolerance : all_close;
  res.worst = res.worst_element.str();
  if (!res.passed && !connected)
    res.worst += " (the output is not connected to the checked tensors: does the op call record()?)";

  if (opt.check_accumulation && connected) {
    // A second backward must add the same gradient again: grad == 2 * analytic.
    Tensor y2 = f();
    y2.backward(u);
    for (size_t k = 0; k < inputs.size(); ++k) {
      if (analytic[k].empty()) continue;
      const Tensor g = inputs[k].grad();
      std::vector<double> g2 = g.defined() ? g.to_vector() : std::vector<double>(analytic[k].size(), 0.0);
      double scale = 1e-12, err = 0;
      for (size_t i = 0; i < g2.size(); ++i) {
        scale = std::max(scale, std::fabs(2 * analytic[k][i]));
        err = std::max(err, std::fabs(g2[i] - 2 * analytic[k][i]));
      }
      if (!(err / scale <= 1e-12)) {
        res.passed = false;
        res.accumulates = false;
        res.worst = fmt::format("{}: second backward did not accumulate (rel error {:.3g})", name_of(k), err / scale);
      }
    }
  }
  return res;
}

GradcheckResult gradgradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                              const std::vector<Tensor>& inputs_in, const GradcheckOptions& opt) {
  check_options(opt, inputs_in.size());
  std::vector<Tensor> inputs = copies(inputs_in);
  std::vector<Tensor> checked;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) checked.push_back(t);
  if (checked.empty())
    throw std::invalid_argument("gradgradcheck: no input requires a gradient; mark the tensors to check with "
                                "set_requires_grad()");
  Shape out_shape;
  {
    NoGradGuard no_grad;
    out_shape = f(inputs).shape();
  }
  // The upstream gradient is a checked tensor too; the v_k are constants.
  Generator gen(opt.seed + 1);
  Tensor u = randn(out_shape, gen, 1.0, DType::F64);
  u.set_requires_grad(true);
  std::vector<Tensor> v;
  for (const Tensor& t : checked) v.push_back(randn(t.shape(), gen, 1.0, DType::F64));
  auto s = [&]() {
    EnableGradGuard grad_on;  // gradcheck evaluates it for the finite differences with grad mode off
    Tensor y = f(inputs);
    if (!y.requires_grad()) return Tensor::scalar(0.0, DType::F64);
    std::vector<Tensor> g = grad(y, u, checked, /*create_graph=*/true);
    Tensor total;
    for (size_t k = 0; k < g.size(); ++k) {
      Tensor t = sum(mul(g[k], v[k]));
      total = total.defined() ? add(total, t) : t;
    }
    return total;
  };
  std::vector<Tensor> leaves = inputs;
  leaves.push_back(u);
  GradcheckOptions o = opt;
  o.names.clear();
  for (size_t k = 0; k < inputs.size(); ++k) o.names.push_back(opt.names.empty() ? fmt::format("input {}", k) : opt.names[k]);
  o.names.push_back("upstream");
  try {
    return gradcheck_leaves(s, leaves, o);
  } catch (const DoubleBackwardError& e) {
    GradcheckResult r;
    r.supported = false;
    r.unsupported_op = e.op;
    r.worst = e.what();
    return r;
  }
}

}  // namespace wn
