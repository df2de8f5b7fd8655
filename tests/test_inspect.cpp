#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "helpers.h"
#include "nn/inspect.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "nn/weight_norm.h"

using namespace wn;
using namespace wn::nn;
using wn::test::max_abs_diff;
using wn::test::rnd;

namespace {
std::shared_ptr<Sequential> small_net(Generator& gen) {
  auto s = std::make_shared<Sequential>();
  s->add("conv", std::make_shared<WNConv2d>(2, 3, Hw(3), Hw(1), Hw(1), WNMode::Strict, gen));
  s->add("act", std::make_shared<TPReLU>(3));
  s->add("out", std::make_shared<Conv2d>(3, 1, Hw(3), Hw(1), Hw(1), gen));
  s->set_name("D");
  return s;
}
}  // namespace

TEST_CASE("activation statistics per module and channel") {
  Generator gen(1);
  auto net = small_net(gen);
  Tensor x = rnd({4, 2, 5, 5}, 2, -1, 1, DType::F32);
  ActivationRecorder rec(*net);
  Tensor y = (*net)(x);
  // Children first (their forward finishes first), then the Sequential itself.
  REQUIRE(rec.stats().size() == 4);
  CHECK(rec.stats()[0].module == "D.conv");
  CHECK(rec.stats()[0].type == "WNConv2d");
  CHECK(rec.stats()[3].module == "D");
  // The last record is the network output: compare with a direct computation.
  std::vector<double> v = y.to_vector();
  double m = 0, q = 0;
  for (double e : v) m += e / v.size();
  for (double e : v) q += (e - m) * (e - m) / v.size();
  CHECK(rec.stats()[3].mean[0] == doctest::Approx(m).epsilon(1e-5));
  CHECK(rec.stats()[3].std[0] == doctest::Approx(std::sqrt(q)).epsilon(1e-4));
}

TEST_CASE("gradient norms, update ratios, WN cosines and the DOT dump") {
  Generator gen(3);
  auto net = small_net(gen);
  Tensor x = rnd({2, 2, 4, 4}, 4, -1, 1, DType::F32);
  Tensor y = (*net)(x);
  Tensor loss = mean(square(y));
  loss.backward(Tensor(), /*retain_graph=*/true);
  std::vector<ParamStat> st = param_stats(*net);
  REQUIRE(st.size() == 5);
  CHECK(st[0].name == "D.conv.weight");
  CHECK(st[0].grad_norm == doctest::Approx(std::sqrt(sum_squares(net->named_parameters()[0].second.grad()))));
  CHECK(st[0].grad_max_abs > 0);
  std::vector<WNCosine> cos = wn_cosines(*net);
  REQUIRE(cos.size() == 1);
  CHECK(cos[0].layer == "D.conv");
  CHECK(cos[0].max_abs_cos < 1e-4);  // float32, and eps = 1e-6 inside the root
  // A WN layer no gradient reached: cos is 0/0, reported as NaN (inspect prints "-"), not 0.
  {
    auto fresh = small_net(gen);
    std::vector<WNCosine> none = wn_cosines(*fresh);
    REQUIRE(none.size() == 1);
    CHECK(std::isnan(none[0].max_abs_cos));
  }
  UpdateTracker tr;
  tr.snapshot(*net);
  SGD opt(net->named_parameters(), 0.01);
  opt.step();
  std::vector<ParamStat> after = tr.measure(*net);
  // SGD: |delta p| / |p| = lr |g| / |p|.
  CHECK(after[0].update_ratio == doctest::Approx(0.01 * st[0].grad_norm / st[0].weight_norm).epsilon(1e-4));
  std::string dot = graph_to_dot(loss);
  CHECK(dot.find("conv2d\\nD.out") != std::string::npos);
  CHECK(dot.find("D.conv.weight") != std::string::npos);
  std::string path = (std::filesystem::temp_directory_path() / "wngan_test_stats.csv").string();
  std::filesystem::remove(path);
  append_param_stats_csv(path, 7, after);
  std::ifstream f(path);
  std::string header, row;
  std::getline(f, header);
  std::getline(f, row);
  CHECK(header == "iteration,name,weight_norm,grad_norm,grad_max_abs,update_ratio");
  CHECK(row.rfind("7,D.conv.weight,", 0) == 0);
  std::filesystem::remove(path);
}

namespace {
// loss = sum(y * r) for a fixed random r: a random upstream gradient, never all ones.
Tensor projected(const Tensor& y, uint64_t seed) { return sum(mul(y, rnd(y.shape(), seed))); }

// The same layer as a plain op on a given weight (the reference of dL/dw).
Tensor plain_forward(Module& m, const Tensor& x, const Tensor& w) {
  if (auto* l = dynamic_cast<WNLinear*>(&m)) return linear(x, w, l->bias);
  if (auto* c = dynamic_cast<WNConv2d*>(&m)) return conv2d(x, w, c->bias, c->stride, c->padding);
  auto* t = dynamic_cast<WNConvTranspose2d*>(&m);
  REQUIRE(t);
  return conv_transpose2d(x, w, t->bias, t->stride, t->padding);
}
}  // namespace

TEST_CASE("dL/dw of WN layers equals the gradient of the plain op on the same effective weight") {
  Generator gen(5);
  struct Case {
    std::shared_ptr<WNLayer> layer;
    Shape x;
  };
  std::vector<Case> cases{
      {std::make_shared<WNLinear>(5, 3, WNMode::Strict, gen), {4, 5}},
      {std::make_shared<WNLinear>(5, 3, WNMode::Affine, gen, WNEps::Outside, 0.01), {2, 5}},
      {std::make_shared<WNConv2d>(2, 3, Hw(3), Hw(2), Hw(1), WNMode::Affine, gen), {2, 2, 5, 5}},
      {std::make_shared<WNConvTranspose2d>(3, 2, Hw(4), Hw(2), Hw(1), WNMode::Strict, gen), {2, 3, 3, 3}},
  };
  uint64_t seed = 10;
  for (Case& c : cases) {
    WNLayer& m = *c.layer;
    m.set_name("L");
    m.to(DType::F64);
    INFO(m.type_name());
    if (m.mode() == WNMode::Affine) m.scale.copy_from(rnd(m.scale.shape(), ++seed, 0.5, 2));
    const Tensor x1 = rnd(c.x, ++seed), x2 = rnd(c.x, ++seed);
    // Without a recorder: v's gradient of two forwards (the D step sees two batches).
    Tensor v_grad_plain;
    {
      projected(m(x1), 1).backward();
      projected(m(x2), 2).backward();
      v_grad_plain = m.weight.grad().clone();
      m.zero_grad();
    }
    EffectiveWeights rec(m);
    projected(m(x1), 1).backward();
    projected(m(x2), 2).backward();
    // Reading w's gradient changes nothing for v's.
    CHECK(m.weight.grad().to_vector() == v_grad_plain.to_vector());
    // The reference: the plain op on a leaf holding w = scale * v / ||v||.
    Tensor w;
    {
      NoGradGuard ng;
      w = m.normalized_weight().clone();
    }
    w.set_requires_grad(true);
    projected(plain_forward(m, x1, w), 1).backward();
    projected(plain_forward(m, x2, w), 2).backward();
    const Tensor dw = rec.grad("L");
    REQUIRE(dw.defined());
    CHECK(max_abs_diff(dw, w.grad()) < 1e-12 * (1 + std::sqrt(sum_squares(w.grad()))));
    // effective_weight_grads reports it, with ||w|| and cos(w, dL/dw).
    std::vector<EffectiveGrad> eg = effective_weight_grads(m, rec);
    REQUIRE(eg.size() == 1);
    CHECK(eg[0].weight_normalized);
    CHECK(eg[0].grad_norm == doctest::Approx(std::sqrt(sum_squares(w.grad()))).epsilon(1e-12));
    CHECK(eg[0].weight_norm == doctest::Approx(std::sqrt(sum_squares(w))).epsilon(1e-12));
    const double dot = sum(mul(w, w.grad())).item();
    CHECK(eg[0].cos_grad == doctest::Approx(dot / (eg[0].weight_norm * eg[0].grad_norm)).epsilon(1e-9));
    // zero_grad drops what was gathered; a later backward through a seen forward counts.
    Tensor y3 = m(x1);
    rec.zero_grad();
    CHECK(!rec.grad("L").defined());
    projected(y3, 1).backward();
    w.zero_grad();
    projected(plain_forward(m, x1, w), 1).backward();
    CHECK(max_abs_diff(rec.grad("L"), w.grad()) < 1e-12 * (1 + std::sqrt(sum_squares(w.grad()))));
  }
}

TEST_CASE("effective weight gradients of plain layers are their weight's gradient; no hook outlives its recorder") {
  Generator gen(7);
  auto net = small_net(gen);
  net->to(DType::F64);
  Tensor x = rnd({2, 2, 4, 4}, 8);
  {
    EffectiveWeights rec(*net);
    projected((*net)(x), 9).backward();
    std::vector<EffectiveGrad> eg = effective_weight_grads(*net, rec);
    REQUIRE(eg.size() == 2);
    CHECK(eg[0].layer == "D.conv");
    CHECK(eg[1].layer == "D.out");
    CHECK(!eg[1].weight_normalized);
    auto* out = dynamic_cast<Conv2d*>(net->children()[2].second.get());
    REQUIRE(out);
    CHECK(eg[1].grad.to_vector() == out->weight.grad().to_vector());
    CHECK(eg[1].grad_norm == doctest::Approx(std::sqrt(sum_squares(out->weight.grad()))).epsilon(1e-12));
    CHECK(eg[0].grad_norm > 0);
  }
  // The recorder is gone: a forward keeps nothing (and a new recorder starts empty).
  (*net)(x);
  EffectiveWeights later(*net);
  CHECK(!later.grad("D.conv").defined());
}

TEST_CASE("eps shares: where eps is not negligible beside ||v_u||^2, cos(v_u, dL/dv_u) is that share times the "
          "radial part of dL/dw") {
  Generator gen(11);
  for (double init : {0.01, 1.0}) {
    INFO("init factor " << init);
    WNLinear m(64, 6, WNMode::Strict, gen, WNEps::Inside, init);
    m.set_name("G.initial.linear");
    m.to(DType::F64);
    EffectiveWeights rec(m);
    projected(m(rnd({3, 64}, 12)), 13).backward();
    const std::vector<double> v = m.weight.to_vector(), dv = m.weight.grad().to_vector(),
                              dw = rec.grad("G.initial.linear").to_vector();
    const std::vector<double> share = m.eps_shares(), norm = m.norms();
    double max_share = 0;
    for (int u = 0; u < 6; ++u) {
      double vv = 0, v_dv = 0, v_dw = 0;
      for (int i = 0; i < 64; ++i) {
        const size_t k = size_t(u * 64 + i);
        vv += v[k] * v[k], v_dv += v[k] * dv[k], v_dw += v[k] * dw[k];
      }
      CHECK(share[u] == doctest::Approx(1e-6 / (vv + 1e-6)).epsilon(1e-12));  // by hand
      CHECK(norm[u] == doctest::Approx(std::sqrt(vv + 1e-6)).epsilon(1e-12));
      // v . dL/dv = (v . dL/dw) / ||v|| * share (the chain rule through ||v||).
      CHECK(v_dv == doctest::Approx(v_dw / norm[u] * share[u]).epsilon(1e-9));
      max_share = std::max(max_share, share[u]);
    }
    std::vector<WNCosine> c = wn_cosines(m);
    REQUIRE(c.size() == 1);
    CHECK(c[0].max_eps_share == doctest::Approx(max_share).epsilon(1e-12));
    CHECK(c[0].eps == 1e-6);
    // The paper's WN generator starts its first layer at 0.01: ||v_u||^2 ~ 3e-5, share ~3e-2.
    if (init == 0.01) {
      CHECK(max_share > 1e-2);
      CHECK(c[0].max_abs_cos > 1e-3);
    } else {
      CHECK(max_share < 1e-4);
      CHECK(c[0].max_abs_cos < 1e-4);
    }
  }
}

namespace {
// The fill colour and gradient norm of every node line of a DOT text that has both.
std::vector<std::pair<double, std::string>> coloured_nodes(const std::string& dot) {
  std::vector<std::pair<double, std::string>> out;
  std::istringstream in(dot);
  std::string line;
  while (std::getline(in, line)) {
    const auto f = line.find("fillcolor=\""), g = line.find("|grad| ");
    if (f == std::string::npos || g == std::string::npos || line.find("legend") != std::string::npos) continue;
    out.emplace_back(std::stod(line.substr(g + 7)), line.substr(f + 11, 7));
  }
  return out;
}
}  // namespace

TEST_CASE("DOT of several roots: nodes coloured by their gradient norm on a log scale, with a legend") {
  Generator gen(13);
  auto net = small_net(gen);
  Tensor a = rnd({2, 2, 4, 4}, 14, -1, 1, DType::F32), b = rnd({2, 2, 4, 4}, 15, -3, 3, DType::F32);
  set_record_grad_norms(true);
  Tensor la = mean(square((*net)(a))), lb = mul(sum(square((*net)(b))), 1e3);
  backward(la, Tensor(), true);
  backward(lb, Tensor(), true);
  set_record_grad_norms(false);
  const std::string dot = graph_to_dot({la, lb}, "two \"losses\"");
  CHECK(dot.find("label=\"two \\\"losses\\\"\"") != std::string::npos);
  CHECK(dot.find("subgraph cluster_legend") != std::string::npos);
  // Both tapes are drawn: each network layer's output twice (one per root).
  size_t outs = 0;
  for (size_t p = dot.find("conv2d\\nD.out"); p != std::string::npos; p = dot.find("conv2d\\nD.out", p + 1)) ++outs;
  CHECK(outs == 2);
  // The colour grows with the norm (palette index non-decreasing), and varies.
  std::vector<std::pair<double, std::string>> nodes = coloured_nodes(dot);
  REQUIRE(nodes.size() > 8);
  std::sort(nodes.begin(), nodes.end());
  auto index = [](const std::string& c) {
    if (c == kDotZeroGrad) return -1;
    return int(std::find(kDotPalette.begin(), kDotPalette.end(), c) - kDotPalette.begin());
  };
  std::set<int> used;
  for (size_t i = 0; i < nodes.size(); ++i) {
    INFO(nodes[i].first << " " << nodes[i].second);
    CHECK(index(nodes[i].second) < int(kDotPalette.size()));
    if (i > 0 && nodes[i].first > 0) CHECK(index(nodes[i].second) >= index(nodes[i - 1].second));
    used.insert(index(nodes[i].second));
  }
  CHECK(used.size() >= 3);
  // The legend names every colour of the palette.
  for (const std::string& c : kDotPalette) CHECK(dot.find("fillcolor=\"" + c + "\"") != std::string::npos);
  if (std::system("command -v dot >/dev/null 2>&1") == 0) {
    const std::string dir = wn::test::temp_dir("dot_colours");
    write_dot({la, lb}, "title", dir + "/t.dot");
    CHECK(std::system(("dot -Tsvg " + dir + "/t.dot -o " + dir + "/t.svg").c_str()) == 0);
    CHECK(std::filesystem::file_size(dir + "/t.svg") > 1000);
    std::filesystem::remove_all(dir);
  }
}

TEST_CASE("a WN unit with a single weight: w_u is +-1 whatever v_u is, so dL/dv_u is eps's part, parallel to v_u") {
  Generator gen(17);
  WNConv2d m(1, 4, Hw(1), Hw(1), Hw(0), WNMode::Strict, gen, WNEps::Outside);  // the ResNet D's first 1x1 shortcut
  m.set_name("D.shortcut");
  m.to(DType::F64);
  EffectiveWeights rec(m);
  projected(m(rnd({2, 1, 3, 3}, 18)), 19).backward();
  std::vector<WNCosine> c = wn_cosines(m);
  REQUIRE(c.size() == 1);
  CHECK(c[0].unit_size == 1);
  CHECK(c[0].max_abs_cos == doctest::Approx(1.0).epsilon(1e-12));
  // By hand: n = |v| + eps, w = v / n, dL/dv = dL/dw (1/n - |v| / n^2) = dL/dw eps / n^2.
  const std::vector<double> v = m.weight.to_vector(), dv = m.weight.grad().to_vector(),
                            dw = rec.grad("D.shortcut").to_vector();
  for (size_t u = 0; u < 4; ++u) {
    const double n = std::fabs(v[u]) + 1e-8;
    CHECK(dv[u] == doctest::Approx(dw[u] * 1e-8 / (n * n)).epsilon(1e-6));
  }
  // A unit with more weights has its ~0 cosine back.
  WNConv2d wide(2, 4, Hw(1), Hw(1), Hw(0), WNMode::Strict, gen, WNEps::Outside);
  wide.to(DType::F64);
  projected(wide(rnd({2, 2, 3, 3}, 20)), 21).backward();
  CHECK(wn_cosines(wide)[0].unit_size == 2);
  CHECK(wn_cosines(wide)[0].max_abs_cos < 1e-6);
}
