// The worked example of docs/gradcheck.md (apps/examples/softsign.h): the right backward
// passes, the wrong one fails at the element computed here by hand, the doc's code is the
// compiled code and its pasted report is the real one.
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "apps/examples/softsign.h"
#include "helpers.h"
#include "nn/gradcheck.h"

using namespace wn;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot read " << path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<Tensor> one(const Tensor& x) { return {x}; }

}  // namespace

TEST_CASE("gradcheck example: softsign's right backward passes, the wrong one fails where x < 0, worst as computed") {
  const Tensor x = example::example_input();
  GradcheckOptions opt;
  opt.names = {"x"};
  GradcheckResult ok = gradcheck([](const std::vector<Tensor>& in) { return example::softsign(in[0]); }, one(x), opt);
  CHECK_MESSAGE(ok.passed, ok.worst);
  GradcheckOptions strict = opt;
  strict.tolerance = 1e-8;
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return example::softsign(in[0]); }, one(x), strict).passed);

  GradcheckResult bad =
      gradcheck([](const std::vector<Tensor>& in) { return example::softsign_wrong(in[0]); }, one(x), opt);
  CHECK_FALSE(bad.passed);
  // By hand: the upstream u is randn(seed 1234); the wrong analytic u / (1 + x)^2 against
  // the true derivative u / (1 + |x|)^2; the worst is the largest |a - n| / (atol + rtol |n|).
  Generator g(opt.seed);
  const std::vector<double> u = randn({2, 3}, g, 1.0, DType::F64).to_vector(), xv = x.to_vector();
  size_t worst = 0;
  double worst_score = -1;
  for (size_t i = 0; i < xv.size(); ++i) {
    const double a = u[i] / ((1 + xv[i]) * (1 + xv[i])), n = u[i] / ((1 + std::fabs(xv[i])) * (1 + std::fabs(xv[i])));
    const double score = std::fabs(a - n) / (opt.atol + opt.rtol * std::fabs(n));
    if (xv[i] > 0) CHECK(score == 0);  // right where x > 0
    if (score > worst_score) worst_score = score, worst = i;
  }
  const GradcheckElement& w = bad.worst_element;
  CHECK(w.input == 0);
  CHECK(w.name == "x");
  CHECK(w.flat == int64_t(worst));
  CHECK(w.index == std::vector<int64_t>{int64_t(worst) / 3, int64_t(worst) % 3});
  CHECK(xv[worst] < 0);
  CHECK(w.analytic == doctest::Approx(u[worst] / ((1 + xv[worst]) * (1 + xv[worst]))).epsilon(1e-14));
  const double d = 1 + std::fabs(xv[worst]);
  CHECK(w.numeric == doctest::Approx(u[worst] / (d * d)).epsilon(1e-8));
  CHECK(w.abs_error == doctest::Approx(std::fabs(w.analytic - w.numeric)));
}

TEST_CASE("gradcheck example: second order is unsupported for the hand-written op and passes for the composed one") {
  const Tensor x = example::example_input();
  GradcheckResult gg = gradgradcheck([](const std::vector<Tensor>& in) { return example::softsign(in[0]); }, one(x));
  CHECK_FALSE(gg.supported);
  CHECK(gg.unsupported_op == "softsign");
  CHECK(gg.worst.find("op 'softsign' has no double backward") != std::string::npos);
  GradcheckOptions o;
  o.tolerance = 1e-6;
  GradcheckResult gc =
      gradgradcheck([](const std::vector<Tensor>& in) { return example::softsign_composed(in[0]); }, one(x), o);
  CHECK(gc.supported);
  CHECK_MESSAGE(gc.passed, gc.worst);
  // The composed op's second derivative against the hand formula -2 sign(x) / (1 + |x|)^3.
  Tensor xc = x.detach().clone().set_requires_grad();
  Tensor g1 = grad(sum(example::softsign_composed(xc)), Tensor(), {xc}, true)[0];
  const std::vector<double> h = grad(sum(g1), Tensor(), {xc})[0].to_vector(), xv = xc.to_vector();
  for (size_t i = 0; i < xv.size(); ++i) {
    const double d = 1 + std::fabs(xv[i]);
    CHECK(h[i] == doctest::Approx(-2 * (xv[i] > 0 ? 1 : -1) / (d * d * d)).epsilon(1e-12));
  }
}

TEST_CASE("gradcheck example: the ScaledSoftsign module, with the wrong op inside, blames its input, not its scale") {
  example::ScaledSoftsign layer(3);
  layer.scale.copy_from(Tensor::from_vector({0.5, 2.0, -1.0}, {3}));
  const Tensor x = example::example_input().detach().to(DType::F32);
  GradcheckResult m = nn::gradcheck_module(layer, {x});
  CHECK_MESSAGE(m.passed, m.worst);
  CHECK(layer.scale.dtype() == DType::F32);
  CHECK(layer.scale.to_vector() == std::vector<double>{0.5, 2.0, -1.0});
  // The same layer calling softsign_wrong: d/dscale is still right, d/dx is not.
  nn::ModuleCheck call_wrong;
  call_wrong.forward = [](nn::Module& mod, const std::vector<Tensor>& in) {
    return mul(example::softsign_wrong(in[0]), static_cast<example::ScaledSoftsign&>(mod).scale);
  };
  GradcheckResult bad = nn::gradcheck_module(layer, {x}, {}, call_wrong);
  CHECK_FALSE(bad.passed);
  CHECK(bad.worst_element.name == "input 0");
  call_wrong.inputs = false;
  CHECK(nn::gradcheck_module(layer, {x}, {}, call_wrong).passed);
}

TEST_CASE("gradcheck example: docs/gradcheck.md shows the compiled code and the real failure report") {
  const std::string doc = read_text(std::string(WNGAN_SOURCE_DIR) + "/docs/gradcheck.md");
  // Every ```cpp block after a "<!-- from FILE -->" line is in FILE verbatim.
  const std::string marker = "<!-- from ";
  int blocks = 0;
  for (size_t at = doc.find(marker); at != std::string::npos; at = doc.find(marker, at + 1)) {
    const size_t name_end = doc.find(" -->\n```cpp\n", at);
    REQUIRE(name_end != std::string::npos);
    const std::string file = doc.substr(at + marker.size(), name_end - at - marker.size());
    const std::string code = read_text(std::string(WNGAN_SOURCE_DIR) + "/" + file);
    const size_t begin = name_end + std::string(" -->\n```cpp\n").size(), end = doc.find("```", begin);
    REQUIRE(end != std::string::npos);
    const std::string block = doc.substr(begin, end - begin);
    CHECK_MESSAGE(code.find(block) != std::string::npos, "the doc's block is not in " << file << ":\n" << block);
    ++blocks;
  }
  CHECK(blocks >= 4);
  // The report pasted in the doc names the element the check finds today.
  GradcheckOptions opt;
  opt.names = {"x"};
  GradcheckResult bad = gradcheck([](const std::vector<Tensor>& in) { return example::softsign_wrong(in[0]); },
                                  one(example::example_input()), opt);
  const GradcheckElement& w = bad.worst_element;
  const std::string where = fmt::format("worst: x element {} [{}]: analytic {:.10g}, numeric ", w.flat,
                                        fmt::join(w.index, ", "), w.analytic);
  CHECK_MESSAGE(doc.find(where) != std::string::npos, "the doc does not show: " << where);
}
