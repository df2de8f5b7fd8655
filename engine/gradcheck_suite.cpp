#include "engine/gradcheck_suite.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "engine/engine.h"

namespace wn {

namespace {

using Inputs = std::vector<Tensor>;
using Fn = std::function<Tensor(const Inputs&)>;

// A float64 leaf with values uniform in [lo, hi), requiring a gradient.
Tensor leaf(const Shape& s, uint64_t seed, double lo = -1, double hi = 1) {
  Generator g(seed);
  Tensor t = rand_uniform(s, g, lo, hi, DType::F64);
  t.set_requires_grad(true);
  return t;
}

Tensor leaf_off_zero(const Shape& s, uint64_t seed) { return off_zero_leaf(s, seed); }

Tensor constant(const Shape& s, uint64_t seed, double lo, double hi) {
  Generator g(seed);
  return rand_uniform(s, g, lo, hi, DType::F64);
}

std::string shapes(const Inputs& in) {
  std::string s;
  for (const Tensor& t : in) {
    if (!t.defined()) continue;
    if (!s.empty()) s += " ";
    s += t.shape().str();
  }
  return s;
}

struct Suite {
  std::vector<GradcheckCase> cases;
  void add(const std::string& fam, const std::string& name, Inputs in, Fn f, const std::string& extra = "",
           double tol = 1e-6) {
    std::string shape = shapes(in) + (extra.empty() ? "" : " " + extra);
    GradcheckCase c{fam, name, shape, [in, f](const GradcheckOptions& o) { return gradcheck(f, in, o); }, f, in};
    c.options.tolerance = tol;
    cases.push_back(std::move(c));
  }
};

void elementwise_cases(Suite& s) {
  struct B {
    const char* name;
    Tensor (*f)(const Tensor&, const Tensor&);
  };
  const B ops[] = {{"add", add}, {"sub", sub}, {"mul", mul}, {"div", div}};
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {{2, 3, 4, 5}, {2, 3, 4, 5}}, {{1, 3, 5}, {1, 3, 5}},  {{2, 3}, {}},           {{2, 3, 4, 5}, {3}},
      {{2, 3, 4, 5}, {1, 3, 1, 1}}, {{4, 3}, {3}},           {{1, 3, 1, 1}, {2, 3, 2, 3}}, {{3, 1}, {1, 4}}};
  uint64_t seed = 10;
  for (const B& op : ops)
    for (const auto& [sa, sb] : pairs) {
      Tensor a = leaf(sa, seed++);
      Tensor b = std::string(op.name) == "div" ? leaf(sb, seed++, 0.5, 2.0) : leaf(sb, seed++);
      auto f = op.f;
      s.add("elementwise", op.name, {a, b}, [f](const Inputs& in) { return f(in[0], in[1]); });
    }
  s.add("elementwise", "neg", {leaf({2, 3, 4}, 40)}, [](const Inputs& in) { return neg(in[0]); });
  s.add("elementwise", "square", {leaf({2, 3, 4}, 41)}, [](const Inputs& in) { return square(in[0]); });
  s.add("elementwise", "sqrt", {leaf({2, 5}, 42, 0.5, 2.0)}, [](const Inputs& in) { return sqrt(in[0]); });
  s.add("elementwise", "exp", {leaf({1, 3, 2, 2}, 43)}, [](const Inputs& in) { return exp(in[0]); });
  s.add("elementwise", "log", {leaf({7}, 44, 0.5, 2.0)}, [](const Inputs& in) { return log(in[0]); });
  s.add("elementwise", "add_scalar", {leaf({3, 2}, 45)}, [](const Inputs& in) { return add(in[0], 0.7); });
  s.add("elementwise", "scale", {leaf({3, 2}, 46)}, [](const Inputs& in) { return mul(in[0], -1.3); });
}

void activation_cases(Suite& s) {
  s.add("activation", "sigmoid", {leaf({2, 3, 4}, 50, -6, 6)}, [](const Inputs& in) { return sigmoid(in[0]); });
  s.add("activation", "relu", {leaf_off_zero({2, 3, 5}, 51)}, [](const Inputs& in) { return relu(in[0]); });
  s.add("activation", "prelu", {leaf_off_zero({2, 3, 4, 5}, 52), leaf({3}, 53, 0, 1)},
        [](const Inputs& in) { return prelu(in[0], in[1]); });
  s.add("activation", "prelu", {leaf_off_zero({1, 4, 3, 3}, 54), leaf({4}, 55, 0, 1)},
        [](const Inputs& in) { return prelu(in[0], in[1]); }, "batch 1");
  s.add("activation", "prelu", {leaf_off_zero({5, 3}, 56), leaf({3}, 57, 0, 1)},
        [](const Inputs& in) { return prelu(in[0], in[1]); });
  s.add("activation", "prelu", {leaf_off_zero({2, 3, 2, 2}, 58), leaf({1}, 59, 0, 1)},
        [](const Inputs& in) { return prelu(in[0], in[1]); }, "shared slope");
  s.add("activation", "tprelu", {leaf_off_zero({2, 3, 4, 5}, 60), leaf({3}, 61, 0, 1), constant({3}, 62, -0.05, 0.05)},
        [](const Inputs& in) { return tprelu(in[0], in[1], in[2]); }, "fixed shift");
  s.add("activation", "tprelu", {leaf_off_zero({3, 4}, 63), leaf({4}, 64, 0, 1), leaf({4}, 65, -0.05, 0.05)},
        [](const Inputs& in) { return tprelu(in[0], in[1], in[2]); }, "(N, C), shift learned");
  // Values away from the bounds -0.5 and 0.5.
  Tensor c = leaf_off_zero({3, 7}, 60);
  {
    NoGradGuard ng;
    double* p = c.data<double>();
    for (int64_t i = 0; i < c.numel(); ++i)
      if (std::fabs(std::fabs(p[i]) - 0.5) < 0.05) p[i] *= 1.3;
  }
  s.add("activation", "clamp", {c}, [](const Inputs& in) { return clamp(in[0], -0.5, 0.5); }, "[-0.5, 0.5]");
}

void reduce_cases(Suite& s) {
  s.add("reduce", "sum", {leaf({2, 3, 4, 5}, 70)}, [](const Inputs& in) { return sum(in[0]); }, "all");
  s.add("reduce", "mean", {leaf({3, 5}, 71)}, [](const Inputs& in) { return mean(in[0]); }, "all");
  s.add("reduce", "sum", {leaf({2, 3, 4, 5}, 72)}, [](const Inputs& in) { return sum(in[0], {0, 2, 3}, true); },
        "axes 0,2,3 keepdim");
  s.add("reduce", "mean", {leaf({2, 3, 4, 5}, 73)}, [](const Inputs& in) { return mean(in[0], {1}); }, "axis 1");
  s.add("reduce", "sum", {leaf({3, 4, 5}, 74)}, [](const Inputs& in) { return sum(in[0], {-1}); }, "axis -1");
  s.add("reduce", "mean", {leaf({1, 2, 3, 3}, 75)}, [](const Inputs& in) { return mean(in[0], {0, 3}, false); },
        "axes 0,3");
}

void shape_cases(Suite& s) {
  s.add("shape", "reshape", {leaf({2, 3, 4}, 80)},
        [](const Inputs& in) { return mul(reshape(in[0], {4, 6}), reshape(in[0], {4, 6})); });
  s.add("shape", "flatten", {leaf({2, 3, 2, 2}, 81)}, [](const Inputs& in) { return square(flatten(in[0])); });
  s.add("shape", "select", {leaf({3, 2, 4}, 84)},
        [](const Inputs& in) { return mul(select(in[0], 1), select(in[0], 2)); }, "rows 1, 2");
  s.add("shape", "slice", {leaf({4, 3, 2}, 85)},
        [](const Inputs& in) { return mul(slice(in[0], 1, 3), slice(in[0], 2, 4)); }, "rows [1, 3), [2, 4)");
  s.add("shape", "pad2d", {leaf({2, 3, 3, 4}, 82)}, [](const Inputs& in) { return pad2d(in[0], 1, 2, 0, 3); },
        "pad 1,2,0,3");
  s.add("shape", "crop2d", {leaf({1, 2, 6, 5}, 83)}, [](const Inputs& in) { return crop2d(in[0], 1, 2, 2, 0); },
        "crop 1,2,2,0");
}

void linear_cases(Suite& s) {
  s.add("linear", "matmul", {leaf({3, 4}, 90), leaf({4, 5}, 91)},
        [](const Inputs& in) { return matmul(in[0], in[1]); });
  s.add("linear", "linear", {leaf({3, 4}, 92), leaf({5, 4}, 93), leaf({5}, 94)},
        [](const Inputs& in) { return linear(in[0], in[1], in[2]); }, "bias");
  s.add("linear", "linear", {leaf({1, 6}, 95), leaf({2, 6}, 96)},
        [](const Inputs& in) { return linear(in[0], in[1]); }, "batch 1, no bias");
}

void conv_cases(Suite& s) {
  struct C {
    Shape x, w;
    bool bias;
    Hw stride, pad;
  };
  const C convs[] = {
      {{1, 2, 5, 5}, {3, 2, 3, 3}, false, 1, 0},
      {{2, 3, 7, 6}, {4, 3, 3, 3}, true, 1, 1},
      {{2, 2, 8, 8}, {3, 2, 4, 4}, true, 2, 1},
      {{2, 2, 9, 7}, {2, 2, 4, 4}, false, 2, 2},
      {{1, 3, 6, 10}, {2, 3, 1, 1}, true, 1, 0},
      {{2, 2, 5, 6}, {2, 2, 3, 2}, true, Hw(2, 1), Hw(1, 0)},
      {{2, 2, 16, 16}, {2, 2, 3, 3}, true, 1, 1},
      {{2, 2, 8, 10}, {3, 2, 3, 3}, true, 3, 1},
      {{3, 4, 3, 2}, {2, 4, 3, 2}, true, 1, 0},
  };
  const C tconvs[] = {
      {{2, 3, 4, 4}, {3, 2, 4, 4}, true, 2, 1},
      {{1, 2, 5, 3}, {2, 3, 3, 3}, false, 1, 0},
      {{2, 2, 3, 5}, {2, 2, 4, 4}, true, 2, 2},
      {{1, 2, 16, 16}, {2, 2, 3, 3}, false, 1, 1},
      {{2, 3, 3, 2}, {3, 2, 3, 2}, true, Hw(1, 2), Hw(0, 1)},
      {{2, 2, 3, 3}, {2, 3, 3, 3}, true, 3, 1},
      {{3, 4, 1, 1}, {4, 2, 3, 2}, true, 1, 0},
  };
  uint64_t seed = 100;
  // One case per geometry: input, weight and, with bias, a bias of size w[bias_dim].
  using ConvFn = Tensor (*)(const Tensor&, const Tensor&, const Tensor&, Hw, Hw);
  auto add_all = [&](const char* name, const auto& cases, int bias_dim, ConvFn conv) {
    for (const C& c : cases) {
      Inputs in = {leaf(c.x, seed++), leaf(c.w, seed++)};
      if (c.bias) in.push_back(leaf({c.w[bias_dim]}, seed++));
      Hw st = c.stride, pd = c.pad;
      s.add("conv", name, in,
            [conv, st, pd](const Inputs& v) { return conv(v[0], v[1], v.size() > 2 ? v[2] : Tensor(), st, pd); },
            fmt::format("stride {}x{} pad {}x{}", st.h, st.w, pd.h, pd.w));
    }
  };
  add_all("conv2d", convs, 0, conv2d);
  add_all("conv_transpose2d", tconvs, 1, conv_transpose2d);
}

void pool_cases(Suite& s) {
  s.add("pool", "avg_pool2x2", {leaf({2, 3, 6, 4}, 130)}, [](const Inputs& in) { return avg_pool2x2(in[0]); });
  s.add("pool", "upsample_nearest2x", {leaf({1, 2, 3, 5}, 131)},
        [](const Inputs& in) { return upsample_nearest2x(in[0]); });
}

void batch_norm_cases(Suite& s) {
  s.add("batch_norm", "batch_norm", {leaf({4, 3, 3, 2}, 140), leaf({3}, 141, 0.5, 1.5), leaf({3}, 142)},
        [](const Inputs& in) { return batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), true); }, "train");
  s.add("batch_norm", "batch_norm", {leaf({6, 4}, 143), leaf({4}, 144, 0.5, 1.5), leaf({4}, 145)},
        [](const Inputs& in) { return batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), true); }, "train 1d");
  // Running statistics are constants: inputs without requires_grad.
  s.add("batch_norm", "batch_norm",
        {leaf({2, 3, 2, 3}, 148), leaf({3}, 149, 0.5, 1.5), leaf({3}, 150), constant({3}, 146, -0.5, 0.5),
         constant({3}, 147, 0.5, 2.0)},
        [](const Inputs& in) { return batch_norm(in[0], in[1], in[2], in[3], in[4], false); }, "eval");
}

void weight_norm_cases(Suite& s) {
  s.add("weight_norm", "weight_norm", {leaf({4, 3, 2, 2}, 170)},
        [](const Inputs& in) { return weight_norm(in[0], Tensor(), 0, 1.0, 1e-6); }, "strict, unit dim 0");
  s.add("weight_norm", "weight_norm", {leaf({3, 4, 2, 3}, 171)},
        [](const Inputs& in) { return weight_norm(in[0], Tensor(), 1, 0.25, 1e-6); }, "strict, unit dim 1, factor 1/4");
  s.add("weight_norm", "weight_norm", {leaf({5, 7}, 172), leaf({5}, 173, 0.5, 2.0)},
        [](const Inputs& in) { return weight_norm(in[0], in[1], 0, 1.0, 1e-6); }, "affine (scale), linear weight");
  s.add("weight_norm", "weight_norm", {leaf({2, 3, 4, 4}, 174), leaf({3}, 175, -2.0, 2.0)},
        [](const Inputs& in) { return weight_norm(in[0], in[1], 1, 0.25, 0.1); }, "affine, unit dim 1, eps 0.1");
  s.add("weight_norm", "weight_norm", {leaf({3, 4, 2, 2}, 176), leaf({4}, 177, 0.5, 2.0)},
        [](const Inputs& in) { return weight_norm(in[0], in[1], 1, 0.25, 0.0, 0.3); },
        "affine, unit dim 1, eps 0.3 outside the root");
}

void loss_cases(Suite& s) {
  Tensor big = leaf({2, 4}, 160, -5, 5);
  {
    double* p = big.data<double>();
    p[0] = 30;
    p[1] = -40;  // far out on both sides: the stable form must keep the gradient exact
  }
  s.add("loss", "bce_with_logits", {big, constant({2, 4}, 161, 0, 1)},
        [](const Inputs& in) { return bce_with_logits(in[0], in[1]); }, "large logits");
  s.add("loss", "bce_with_logits", {leaf({5, 1}, 162, -3, 3), leaf({5, 1}, 163, 0, 1)},
        [](const Inputs& in) { return bce_with_logits(in[0], in[1]); }, "soft targets");
  s.add("loss", "mse", {leaf({2, 3, 2, 2}, 164), leaf({2, 3, 2, 2}, 165)},
        [](const Inputs& in) { return mse(in[0], in[1]); });
}

}  // namespace

GradcheckResult GradcheckCase::run_second_order(const GradcheckOptions& opt) const {
  if (!fn) {
    GradcheckResult r;
    r.supported = false;
    r.unsupported_op = name;
    r.worst = "second-order checks cover functions of tensors (gradgradcheck), not modules";
    return r;
  }
  return gradgradcheck(fn, inputs, opt);
}

std::vector<std::string> case_families(const std::vector<GradcheckCase>& cases) {
  std::set<std::string> s;
  for (const GradcheckCase& c : cases) s.insert(c.family);
  return {s.begin(), s.end()};
}

std::vector<std::string> case_names(const std::vector<GradcheckCase>& cases, const std::string& family) {
  std::set<std::string> s;
  for (const GradcheckCase& c : cases)
    if (family.empty() || c.family == family) s.insert(c.name);
  return {s.begin(), s.end()};
}

std::vector<GradcheckCase> select_cases(std::vector<GradcheckCase> cases, const std::string& family,
                                        const std::string& op) {
  const std::vector<std::string> families = case_families(cases);
  if (!family.empty() && std::find(families.begin(), families.end(), family) == families.end())
    throw std::invalid_argument(
        fmt::format("unknown gradient-check family '{}'; the families are: {}", family, fmt::join(families, ", ")));
  const std::vector<std::string> names = case_names(cases, family);
  if (!op.empty() && std::find(names.begin(), names.end(), op) == names.end())
    throw std::invalid_argument(fmt::format("unknown op '{}'{}; the ops{} are: {}", op,
                                            family.empty() ? "" : " in family " + family,
                                            family.empty() ? "" : " of " + family, fmt::join(names, ", ")));
  std::vector<GradcheckCase> out;
  for (GradcheckCase& c : cases)
    if ((family.empty() || c.family == family) && (op.empty() || c.name == op)) out.push_back(std::move(c));
  return out;
}

Tensor off_zero_leaf(const Shape& s, uint64_t seed) {
  Generator g(seed);
  std::vector<double> v(static_cast<size_t>(s.numel()));
  for (double& x : v) x = (g.uniform() < 0.5 ? -1 : 1) * (0.1 + 1.4 * g.uniform());
  Tensor t = Tensor::from_vector(v, s, DType::F64);
  t.set_requires_grad(true);
  return t;
}

std::vector<GradcheckCase> engine_gradcheck_cases() {
  Suite s;
  elementwise_cases(s);
  activation_cases(s);
  reduce_cases(s);
  shape_cases(s);
  linear_cases(s);
  conv_cases(s);
  pool_cases(s);
  batch_norm_cases(s);
  weight_norm_cases(s);
  loss_cases(s);
  return std::move(s.cases);
}

}  // namespace wn
