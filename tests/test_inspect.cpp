#include <filesystem>
#include <fstream>

#include "helpers.h"
#include "nn/inspect.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "nn/weight_norm.h"

using namespace wn;
using namespace wn::nn;
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
