// The communicator's collectives over 2 ranks (mpirun -np 2), each against values the
// test computes itself: sums, broadcasts, gathers, split, the differentiable all-reduce,
// batch norm over the global batch against batch norm of the whole batch in one process,
// and the bounded waits (a failure announced by one rank, a rank that never comes).
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend/backend.h"
#include "engine/dist/comm.h"
#include "engine/dist/ops.h"
#include "engine/ops/batch_norm.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/ops/shape.h"
#include "engine/random.h"

using namespace wn;

namespace {

// The world, or a skip message when not started by mpirun with 2 or more ranks.
dist::Comm* two_ranks() {
  dist::Comm& w = dist::world();
  if (w.size() < 2) {
    MESSAGE("skipped: needs mpirun -np 2 (meson test runs it so)");
    return nullptr;
  }
  return &w;
}

// The value rank r puts at element i (exact in float).
float value(int r, int64_t i) { return float((r + 1) * 0.5 + double(i) * 0.25); }

// max |a - b| / max |b|: float32 roundoff stays near 1e-7 of the tensor's scale.
double max_rel(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector(), y = b.to_vector();
  REQUIRE(x.size() == y.size());
  double d = 0, m = 0;
  for (size_t i = 0; i < x.size(); ++i) d = std::max(d, std::fabs(x[i] - y[i])), m = std::max(m, std::fabs(y[i]));
  return d / std::max(m, 1e-30);
}

}  // namespace

TEST_CASE("dist: all_reduce_sum sums a list of tensors over the ranks as one buffer") {
  dist::Comm* c = two_ranks();
  if (!c) return;
  Tensor a = Tensor::empty({3, 4}), b = Tensor::empty({5});
  for (int64_t i = 0; i < 12; ++i) a.data<float>()[i] = value(c->rank(), i);
  for (int64_t i = 0; i < 5; ++i) b.data<float>()[i] = value(c->rank(), 100 + i);
  c->all_reduce_sum(std::vector<Tensor>{a, b});
  for (int64_t i = 0; i < 12; ++i) {
    float want = 0;
    for (int r = 0; r < c->size(); ++r) want += value(r, i);
    CHECK(a.data<float>()[i] == want);
  }
  for (int64_t i = 0; i < 5; ++i) {
    float want = 0;
    for (int r = 0; r < c->size(); ++r) want += value(r, 100 + i);
    CHECK(b.data<float>()[i] == want);
  }
  std::vector<double> v = {double(c->rank()), 1.5};
  c->all_reduce_sum(v);
  CHECK(v[0] == c->size() * (c->size() - 1) / 2);
  CHECK(v[1] == 1.5 * c->size());
  Tensor d = Tensor::full({2}, 0.1 * (c->rank() + 1), DType::F64);
  c->all_reduce_sum(std::vector<Tensor>{d});
  CHECK(d.to_vector()[1] == doctest::Approx(0.1 * c->size() * (c->size() + 1) / 2).epsilon(1e-15));
  CHECK_THROWS_WITH_AS(c->all_reduce_sum(std::vector<Tensor>{a, Tensor::zeros({2}, DType::F64)}),
                       doctest::Contains("one dtype per call"), std::invalid_argument);
}

TEST_CASE("dist: all_reduce_sum of CUDA tensors (NCCL where it loads, else through the host) gives the sums") {
  dist::Comm* c = two_ranks();
  if (!c) return;
  // Every rank needs its GPU (cuda:local_rank); the ranks agree before any CUDA collective.
  const Device dev{DeviceType::CUDA, c->local_rank()};
  std::vector<double> missing = {0};
  std::string why;
  try {
    if (!device_available(DeviceType::CUDA)) throw std::runtime_error("no CUDA device");
    backend_for(dev);
  } catch (const std::exception& e) {
    missing[0] = 1;
    why = e.what();
  }
  c->all_reduce_sum(missing);
  if (missing[0] > 0) {
    MESSAGE("skipped: a rank has no GPU of its own (" << (why.empty() ? "another rank" : why) << ")");
    return;
  }
  MESSAGE("CUDA sums carried by " << c->reduce_path(dev));
  // Two calls, the second larger (the flattened buffer grows), then float64.
  for (int64_t n : {int64_t(7), int64_t(100003)}) {
    Tensor a = Tensor::empty({n}), b = Tensor::empty({3, 5});
    for (int64_t i = 0; i < n; ++i) a.data<float>()[i] = value(c->rank(), i % 1000);
    for (int64_t i = 0; i < 15; ++i) b.data<float>()[i] = value(c->rank(), 5000 + i);
    Tensor ga = a.to(dev), gb = b.to(dev);
    c->all_reduce_sum(std::vector<Tensor>{ga, gb});
    const auto ra = ga.to(kCPU).to_vector(), rb = gb.to(kCPU).to_vector();
    int wrong = 0;
    for (int64_t i = 0; i < n; ++i) {
      float want = 0;
      for (int r = 0; r < c->size(); ++r) want += value(r, i % 1000);
      wrong += ra[size_t(i)] != want;
    }
    for (int64_t i = 0; i < 15; ++i) {
      float want = 0;
      for (int r = 0; r < c->size(); ++r) want += value(r, 5000 + i);
      wrong += rb[size_t(i)] != want;
    }
    CHECK(wrong == 0);
  }
  Tensor d = Tensor::full({3}, 0.1 * (c->rank() + 1), DType::F64, dev);
  c->all_reduce_sum(std::vector<Tensor>{d});
  CHECK(d.to(kCPU).to_vector()[2] == doctest::Approx(0.1 * c->size() * (c->size() + 1) / 2).epsilon(1e-15));
}

TEST_CASE("dist: broadcast copies the root's tensors and strings; gather collects strings in rank order") {
  dist::Comm* c = two_ranks();
  if (!c) return;
  Tensor t = Tensor::full({2, 3}, 7.0 + c->rank());
  c->broadcast(std::vector<Tensor>{t}, 1);
  for (double x : t.to_vector()) CHECK(x == 8.0);
  const std::string sent("from rank 0, with\0 a zero", 25);
  std::string s = c->rank() == 0 ? sent : "";
  c->broadcast(s, 0);
  CHECK(s == sent);
  const std::vector<std::string> all = c->gather(std::string(size_t(c->rank() + 1), char('a' + c->rank())), 0);
  if (c->rank() == 0) {
    REQUIRE(all.size() == size_t(c->size()));
    for (int r = 0; r < c->size(); ++r) CHECK(all[size_t(r)] == std::string(size_t(r + 1), char('a' + r)));
  } else {
    CHECK(all.empty());
  }
  c->barrier();
}

TEST_CASE("dist: split makes groups by color; dup copies a communicator") {
  dist::Comm* c = two_ranks();
  if (!c) return;
  auto alone = c->split(c->rank());
  CHECK(alone->size() == 1);
  CHECK(alone->rank() == 0);
  CHECK(alone->world_rank() == c->rank());
  auto all = c->split(0);
  CHECK(all->size() == c->size());
  CHECK(all->rank() == c->rank());
  auto copy = all->dup();
  std::vector<double> v = {1};
  copy->all_reduce_sum(v);
  CHECK(v[0] == c->size());
}

TEST_CASE("dist: the all-reduce op's gradient sums the upstream gradients of every rank") {
  dist::Comm* c = two_ranks();
  if (!c) return;
  Tensor x = Tensor::full({4}, 1.0 + c->rank()).set_requires_grad();
  Tensor w = Tensor::empty({4});
  for (int64_t i = 0; i < 4; ++i) w.data<float>()[i] = value(c->rank(), i);
  Tensor y = dist::all_reduce(x, *c);
  for (double v : y.to_vector()) CHECK(v == c->size() * (c->size() + 1) / 2);
  backward(sum(mul(y, w)));
  for (int64_t i = 0; i < 4; ++i) {
    float want = 0;
    for (int r = 0; r < c->size(); ++r) want += value(r, i);
    CHECK(x.grad().data<float>()[i] == want);
  }
}

TEST_CASE("dist: batch norm over the global batch equals batch norm of the whole batch in one process") {
  dist::Comm* c = two_ranks();
  if (!c) return;
  for (Shape s : {Shape{8, 3, 4, 4}, Shape{6, 5}}) {
    const int64_t n = s[0], ch = s[1], per = n / c->size();
    Generator gen(42);  // the same global batch and upstream gradient on every rank
    Tensor x = randn(s, gen, 1.0).set_requires_grad();
    Tensor up = randn(s, gen, 1.0);
    Tensor gamma = rand_uniform({ch}, gen, 0.5, 1.5).set_requires_grad(), beta = randn({ch}, gen, 1.0).set_requires_grad();
    Tensor rm = Tensor::zeros({ch}), rv = Tensor::ones({ch});
    // The reference: the whole batch in this process.
    Tensor y = batch_norm(x, gamma, beta, rm, rv, true, 0.1, 1e-5);
    backward(sum(mul(y, up)));
    // This rank's slice through the synchronised op.
    Tensor xs = slice(x.detach(), per * c->rank(), per * (c->rank() + 1)).clone().set_requires_grad();
    Tensor g2 = gamma.detach().clone().set_requires_grad(), b2 = beta.detach().clone().set_requires_grad();
    Tensor rm2 = Tensor::zeros({ch}), rv2 = Tensor::ones({ch});
    Tensor ys = dist::sync_batch_norm(xs, g2, b2, rm2, rv2, *c, 0.1, 1e-5);
    backward(sum(mul(ys, slice(up, per * c->rank(), per * (c->rank() + 1)))));
    CHECK(max_rel(ys, slice(y.detach(), per * c->rank(), per * (c->rank() + 1))) < 1e-5);
    CHECK(max_rel(xs.grad(), slice(x.grad(), per * c->rank(), per * (c->rank() + 1))) < 1e-4);
    // Parameter gradients: each rank holds its part; their sum is the whole batch's.
    Tensor gg = g2.grad().clone(), bg = b2.grad().clone();
    c->all_reduce_sum(std::vector<Tensor>{gg, bg});
    CHECK(max_rel(gg, gamma.grad()) < 1e-4);
    CHECK(max_rel(bg, beta.grad()) < 1e-4);
    CHECK(max_rel(rm2, rm) < 1e-5);
    CHECK(max_rel(rv2, rv) < 1e-5);
    // And not a check that cannot fail: each rank's own statistics differ.
    Tensor local = batch_norm(xs.detach(), gamma.detach(), beta.detach(), Tensor(), Tensor(), true);
    CHECK(max_rel(local, ys.detach()) > 1e-3);
  }
}

TEST_CASE("dist: a failure announced by one rank ends the others' wait, naming it") {
  dist::Comm* c = two_ranks();
  if (!c) return;
  auto sub = c->split(0);
  if (sub->rank() == 1) {
    sub->announce_failure("rank 1 failed: boom");  // returns once rank 0 acknowledged
  } else {
    const auto t0 = std::chrono::steady_clock::now();
    bool caught = false;
    try {
      sub->barrier();
    } catch (const dist::RankFailed& e) {
      caught = true;
      CHECK(e.failed_rank == 1);
      CHECK(std::string(e.what()).find("rank 1 failed: boom") != std::string::npos);
      sub->acknowledge_failure();
    }
    CHECK(caught);
    CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 30);
    // The broken communicator refuses further collectives, saying why.
    CHECK_THROWS_WITH_AS(sub->barrier(), doctest::Contains("unusable"), dist::DistError);
  }
  c->barrier();
}

TEST_CASE("dist: a collective that the other ranks never join fails after the timeout") {
  dist::Comm* c = two_ranks();
  if (!c) return;
  auto sub = c->split(0);
  if (sub->rank() == 0) {
    sub->timeout_s = 1;
    const auto t0 = std::chrono::steady_clock::now();
    CHECK_THROWS_WITH_AS(sub->barrier(), doctest::Contains("without an answer"), dist::DistError);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK(s >= 1);
    CHECK(s < 10);
  }
  c->barrier();
}

TEST_CASE("dist: gather_within names the ranks that did not report within its limit, and takes late ones later") {
  dist::Comm* c = two_ranks();
  if (!c) return;
  auto sub = c->split(0);
  if (sub->rank() == 1) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    CHECK(sub->gather_within("late", 30, "test gather").empty());
  } else {
    const auto t0 = std::chrono::steady_clock::now();
    CHECK_THROWS_WITH_AS(sub->gather_within("first", 0.3, "test gather"),
                         doctest::Contains("test gather: rank 1 did not report within 0.3 s"), dist::DistError);
    CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 1.4);
    // The communicator stays usable: the late string arrives in the next gather.
    const std::vector<std::string> all = sub->gather_within("second", 30, "test gather");
    REQUIRE(all.size() == 2);
    CHECK(all[0] == "second");
    CHECK(all[1] == "late");
  }
  c->barrier();
}
