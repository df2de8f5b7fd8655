#include "nn/gradcheck_suite.h"

#include <fmt/format.h>

#include "engine/engine.h"
#include "engine/gradcheck_backends.h"
#include "nn/gradcheck.h"
#include "nn/layers.h"
#include "nn/weight_norm.h"

namespace wn::nn {

namespace {

Tensor input_off_zero(const Shape& s, uint64_t seed) { return off_zero_leaf(s, seed); }

// Overwrites a parameter with values uniform in [lo, hi).
void set_uniform(Tensor p, uint64_t seed, double lo, double hi) {
  Generator g(seed);
  p.copy_from(rand_uniform(p.shape(), g, lo, hi, p.dtype()));
}

// The module's forward and backward with its state and inputs converted to (dev, dt):
// output, then the inputs' and the parameters' gradients. The module gets its float64
// CPU state back (saved values, not a round trip through float32).
CaseRun run_module_on(Module& m, const std::vector<Tensor>& xs,
                      const std::function<Tensor(Module&, const std::vector<Tensor>&)>& call, Device dev, DType dt) {
  std::vector<std::pair<Tensor, std::vector<double>>> saved;
  for (auto& [n, t] : m.named_parameters()) saved.push_back({t, t.to_vector()});
  for (auto& [n, t] : m.named_buffers()) saved.push_back({t, t.to_vector()});
  m.to(dt);
  m.to(dev);
  m.zero_grad();
  std::vector<Tensor> in;
  for (const Tensor& x : xs) {
    Tensor c = x.to(dt).to(dev).clone();
    c.set_requires_grad(true);
    in.push_back(c);
  }
  Tensor y = call ? call(m, in) : m(in[0]);
  y.backward(case_upstream(y.shape(), dt, dev));
  CaseRun r{y.to_vector(), {}};
  auto grad_of = [](const Tensor& t) {
    return t.grad().defined() ? t.grad().to_vector() : std::vector<double>(size_t(t.numel()), 0.0);
  };
  for (const Tensor& x : in) r.grads.push_back(grad_of(x));
  for (auto& [n, p] : m.named_parameters()) r.grads.push_back(grad_of(p));
  m.zero_grad();
  m.to(kCPU);
  m.to(DType::F64);
  // Handles see the module's conversions (Module::to converts in place).
  for (auto& [t, v] : saved) t.copy_from(Tensor::from_vector(v, t.shape(), DType::F64));
  return r;
}

struct Suite {
  std::vector<GradcheckCase> cases;
  void add(const std::string& name, std::shared_ptr<Module> m, std::vector<Tensor> xs, const std::string& extra = "",
           std::function<Tensor(Module&, const std::vector<Tensor>&)> call = nullptr) {
    std::string shape;
    for (auto& x : xs) shape += (shape.empty() ? "" : " ") + x.shape().str();
    shape += fmt::format(" +{} params", m->named_parameters().size());
    if (!extra.empty()) shape += " " + extra;
    GradcheckCase c{"nn", name, shape,
                    [m, xs, call](const GradcheckOptions& o) {
                      ModuleCheck what;
                      what.forward = call;
                      return gradcheck_module(*m, xs, o, what);
                    },
                    nullptr, {},
                    [m, xs, call](Device dev, DType dt) { return run_module_on(*m, xs, call, dev, dt); }};
    c.options.tolerance = 1e-6;
    cases.push_back(std::move(c));
  }
};

template <class M, class... A>
std::shared_ptr<M> f64(A&&... args) {
  auto m = std::make_shared<M>(std::forward<A>(args)...);
  m->to(DType::F64);
  return m;
}

}  // namespace

std::vector<GradcheckCase> nn_gradcheck_cases() {
  Suite s;
  Generator gen(7);
  s.add("Linear", f64<Linear>(5, 3, gen), {input_off_zero({4, 5}, 1)});
  s.add("Linear", f64<Linear>(5, 3, gen, false), {input_off_zero({1, 5}, 2)}, "no bias, batch 1");
  s.add("Conv2d", f64<Conv2d>(2, 3, Hw(4), Hw(2), Hw(1), gen), {input_off_zero({2, 2, 6, 6}, 3)}, "k4 s2 p1");
  s.add("Conv2d", f64<Conv2d>(2, 2, Hw(3, 2), Hw(1), Hw(2, 0), gen, false), {input_off_zero({1, 2, 5, 4}, 4)},
        "k3x2 p2x0");
  s.add("ConvTranspose2d", f64<ConvTranspose2d>(3, 2, Hw(4), Hw(2), Hw(1), gen), {input_off_zero({2, 3, 3, 4}, 5)},
        "k4 s2 p1");
  {
    auto bn = f64<BatchNorm>(3);
    set_uniform(bn->weight, 8, 0.5, 1.5);
    set_uniform(bn->bias, 9, -0.5, 0.5);
    s.add("BatchNorm", bn, {input_off_zero({4, 3, 2, 3}, 6)}, "train");
    auto bn1 = f64<BatchNorm>(4);
    set_uniform(bn1->weight, 10, 0.5, 1.5);
    s.add("BatchNorm", bn1, {input_off_zero({5, 4}, 7)}, "train 1d");
    auto bne = f64<BatchNorm>(2);
    set_uniform(bne->running_mean, 11, -0.5, 0.5);
    set_uniform(bne->running_var, 12, 0.5, 2.0);
    set_uniform(bne->weight, 13, 0.5, 1.5);
    bne->eval();
    s.add("BatchNorm", bne, {input_off_zero({2, 2, 3, 2}, 14)}, "eval");
  }
  {
    auto p = f64<PReLU>(3);
    set_uniform(p->weight, 15, 0.1, 0.9);
    s.add("PReLU", p, {input_off_zero({2, 3, 2, 2}, 16)});
    auto t = f64<TPReLU>(3);
    set_uniform(t->weight, 17, 0.1, 0.9);
    set_uniform(t->bias, 18, -0.05, 0.05);
    s.add("TPReLU", t, {input_off_zero({2, 3, 2, 2}, 19)});
    auto t1 = f64<TPReLU>(4);
    set_uniform(t1->weight, 20, 0.1, 0.9);
    set_uniform(t1->bias, 21, -0.05, 0.05);
    s.add("TPReLU", t1, {input_off_zero({3, 4}, 22)}, "after a linear layer");
    auto a = f64<Affine>(3);
    set_uniform(a->weight, 23, 0.5, 1.5);
    set_uniform(a->bias, 24, -1, 1);
    s.add("Affine", a, {input_off_zero({2, 3, 2, 2}, 25)});
  }
  for (WNMode mode : {WNMode::Strict, WNMode::Affine}) {
    const std::string tag = mode == WNMode::Strict ? "strict" : "affine";
    auto setup = [&](std::shared_ptr<WNLayer> m, uint64_t seed) {
      if (mode == WNMode::Affine) {
        set_uniform(m->scale, seed, 0.5, 1.5);
        set_uniform(m->bias, seed + 1, -0.5, 0.5);
      }
      return m;
    };
    s.add("WNLinear", setup(f64<WNLinear>(4, 3, mode, gen), 30), {input_off_zero({3, 4}, 31)}, tag);
    s.add("WNConv2d", setup(f64<WNConv2d>(2, 3, Hw(4), Hw(2), Hw(1), mode, gen), 32),
          {input_off_zero({2, 2, 6, 6}, 33)}, tag + " k4 s2 p1");
    s.add("WNConvTranspose2d", setup(f64<WNConvTranspose2d>(3, 2, Hw(4), Hw(2), Hw(1), mode, gen), 34),
          {input_off_zero({2, 3, 3, 3}, 35)}, tag + " k4 s2 p1");
    s.add("WNConvTranspose2d", setup(f64<WNConvTranspose2d>(2, 2, Hw(3), Hw(1), Hw(1), mode, gen), 36),
          {input_off_zero({1, 2, 4, 5}, 37)}, tag + " k3 s1 p1");
  }
  {
    auto add = f64<WNAdd>(3, std::vector<double>{0.0, 1.0});
    set_uniform(add->weight, 40, -1, 1);
    s.add("WNAdd", add, {input_off_zero({2, 3, 2, 2}, 41), input_off_zero({2, 3, 2, 2}, 42)}, "2 branches",
          [](Module& m, const std::vector<Tensor>& xs) { return static_cast<WNAdd&>(m).forward_many(xs); });
  }
  s.add("Sigmoid", f64<Sigmoid>(), {input_off_zero({2, 3}, 43)});
  s.add("Upsample2x", f64<Upsample2x>(), {input_off_zero({1, 2, 2, 3}, 44)});
  s.add("AvgPool2x2", f64<AvgPool2x2>(), {input_off_zero({2, 1, 4, 2}, 45)});
  s.add("Pad2d", f64<Pad2d>(1, 0, 2, 1), {input_off_zero({1, 2, 2, 2}, 46)});
  s.add("Crop2d", f64<Pad2d>(1, 0, 0, 1, true), {input_off_zero({1, 2, 3, 3}, 47)});
  s.add("Unflatten", f64<Unflatten>(2, 1, 3), {input_off_zero({2, 6}, 48)});
  {
    auto seq = std::make_shared<Sequential>();
    seq->add("linear", std::make_shared<WNLinear>(4, 6, WNMode::Strict, gen));
    seq->add("act", std::make_shared<TPReLU>(6));
    seq->add("reshape", std::make_shared<Unflatten>(6, 1, 1));
    seq->add("conv", std::make_shared<WNConvTranspose2d>(6, 2, Hw(4), Hw(2), Hw(1), WNMode::Affine, gen));
    seq->add("out", std::make_shared<Sigmoid>());
    seq->to(DType::F64);
    set_uniform(static_cast<TPReLU&>(*seq->children()[1].second).bias, 49, -0.05, 0.05);
    s.add("Sequential", seq, {input_off_zero({2, 4}, 50)}, "WN linear, TPReLU, WN convT, sigmoid");
  }
  return std::move(s.cases);
}

}  // namespace wn::nn
