// The communicator in one process (every build): a world of one rank whose collectives
// leave values as they are and still check their arguments, and batch norm over the
// "global" batch of one rank against the fused batch norm.
#include <doctest/doctest.h>

#include "engine/autograd.h"
#include "engine/dist/comm.h"
#include "engine/dist/ops.h"
#include "engine/ops/batch_norm.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "gan/data_parallel.h"
#include "helpers.h"

using namespace wn;
using wn::test::max_abs_diff;
using wn::test::rnd;

TEST_CASE("dist: a communicator of one process: identities that still check their arguments") {
  auto c = dist::Comm::self();
  CHECK(c->size() == 1);
  CHECK(c->rank() == 0);
  CHECK(c->is_root());
  Tensor t = Tensor::from_vector({1.5, -2, 3}, {3});
  c->all_reduce_sum(std::vector<Tensor>{t});
  CHECK(t.to_vector() == std::vector<double>{1.5, -2, 3});
  std::vector<double> v = {4, 5};
  c->all_reduce_sum(v);
  CHECK(v == std::vector<double>{4, 5});
  std::string s = "x";
  c->broadcast(s);
  CHECK(s == "x");
  CHECK(c->gather("y") == std::vector<std::string>{"y"});
  CHECK_THROWS_WITH_AS(c->all_reduce_sum(std::vector<Tensor>{Tensor()}), doctest::Contains("undefined"),
                       std::invalid_argument);
  CHECK(c->split(3)->size() == 1);
  if (!dist::built_with_mpi()) MESSAGE("this build has no MPI (-Dmpi=disabled): the multi-rank tests are skipped");
}

TEST_CASE("dist: batch norm over the batch of one rank equals the fused batch norm, forward and backward") {
  auto c = dist::Comm::self();
  for (Shape s : {Shape{6, 3, 2, 2}, Shape{5, 4}}) {
    const int64_t ch = s[1];
    Tensor x1 = rnd(s, 1, -2, 3).set_requires_grad(), g1 = rnd({ch}, 2, 0.5, 1.5).set_requires_grad(),
           b1 = rnd({ch}, 3).set_requires_grad();
    Tensor x2 = x1.detach().clone().set_requires_grad(), g2 = g1.detach().clone().set_requires_grad(),
           b2 = b1.detach().clone().set_requires_grad();
    Tensor rm1 = Tensor::zeros({ch}, DType::F64), rv1 = Tensor::ones({ch}, DType::F64);
    Tensor rm2 = rm1.clone(), rv2 = rv1.clone();
    Tensor u = rnd(s, 4);
    Tensor y1 = batch_norm(x1, g1, b1, rm1, rv1, true);
    Tensor y2 = dist::sync_batch_norm(x2, g2, b2, rm2, rv2, *c);
    CHECK(max_abs_diff(y1, y2) < 1e-12);
    backward(sum(mul(y1, u)));
    backward(sum(mul(y2, u)));
    CHECK(max_abs_diff(x1.grad(), x2.grad()) < 1e-12);
    CHECK(max_abs_diff(g1.grad(), g2.grad()) < 1e-12);
    CHECK(max_abs_diff(b1.grad(), b2.grad()) < 1e-12);
    CHECK(max_abs_diff(rm1, rm2) < 1e-12);
    CHECK(max_abs_diff(rv1, rv2) < 1e-12);
    CHECK(max_abs_diff(rv1, Tensor::ones({ch}, DType::F64)) > 1e-3);  // the running statistics moved
  }
}

TEST_CASE("dist: data parallelism over one rank takes the whole batch; parts of n items cover them") {
  auto c = dist::Comm::self();
  gan::DataParallel dp(*c, 12);
  CHECK(dp.single());
  CHECK(dp.begin() == 0);
  CHECK(dp.end() == 12);
  CHECK(dp.part(7) == std::pair<int64_t, int64_t>{0, 7});
}
