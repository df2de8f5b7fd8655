// The per-kernel profiler behind `wngan bench --profile`.
#include <chrono>

#include "engine/profile.h"
#include "helpers.h"

using namespace wn;
using wn::test::rnd;

namespace {
const profile::Entry* find(const std::vector<profile::Entry>& rows, const std::string& phase,
                           const std::string& kernel) {
  for (const auto& e : rows)
    if (e.phase == phase && e.kernel == kernel) return &e;
  return nullptr;
}
int g_detail_builds = 0;
std::string counted_detail() {
  ++g_detail_builds;
  return "d";
}
double spin(int n) {  // some work that the compiler cannot drop
  volatile double s = 0;
  for (int i = 0; i < n; ++i) s = s + 1.0 / (i + 1);
  return s;
}
}  // namespace

TEST_CASE("the profiler records nothing, and builds no detail string, while off") {
  profile::reset();
  g_detail_builds = 0;
  {
    WN_PROFILE("k", counted_detail(), 1);
  }
  conv2d(rnd({2, 3, 6, 6}, 1), rnd({4, 3, 3, 3}, 2));
  CHECK(profile::entries().empty());
  CHECK(g_detail_builds == 0);
  profile::set_enabled(true);
  {
    WN_PROFILE("k", counted_detail(), 1);
  }
  profile::set_enabled(false);
  CHECK(g_detail_builds == 1);
  profile::reset();
}

TEST_CASE("kernels report their shapes, FLOPs and phase (forward, backward, update)") {
  profile::reset();
  profile::set_enabled(true);
  Tensor x = rnd({2, 3, 6, 6}, 1).set_requires_grad(), w = rnd({4, 3, 3, 3}, 2).set_requires_grad();
  Tensor y = conv2d(x, w, Tensor(), 1, 1);
  y.backward(rnd(y.shape(), 3));
  {
    profile::Phase phase("update");
    WN_PROFILE("my_update", "", 0);
  }
  profile::set_enabled(false);
  auto rows = profile::entries();
  profile::reset();
  // Multiply-adds by hand: 2 images x 4 outputs x 6x6 pixels x 3 channels x 3x3 taps = 7776.
  const profile::Entry* f = find(rows, "forward", "conv2d_forward");
  REQUIRE(f != nullptr);
  CHECK(f->calls == 1);
  CHECK(f->flops == 2 * 7776.0);
  CHECK(f->detail == "N2 3x6x6 -> 4x6x6 k3x3 s1 p1");
  const profile::Entry* bd = find(rows, "backward", "conv2d_backward_data");
  const profile::Entry* bw = find(rows, "backward", "conv2d_backward_weight");
  REQUIRE(bd != nullptr);
  REQUIRE(bw != nullptr);
  CHECK(bw->flops == 2 * 7776.0);
  CHECK(find(rows, "update", "my_update") != nullptr);
  CHECK(find(rows, "forward", "conv2d_backward_data") == nullptr);
}

TEST_CASE("nested scopes count exclusive time: outer + inner never exceed the wall time around them") {
  profile::reset();
  profile::set_enabled(true);
  const auto t0 = std::chrono::steady_clock::now();
  {
    WN_PROFILE("outer", "", 0);
    spin(200000);
    {
      WN_PROFILE("inner", "", 0);
      spin(400000);
    }
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  profile::set_enabled(false);
  auto rows = profile::entries();
  profile::reset();
  const profile::Entry* o = find(rows, "forward", "outer");
  const profile::Entry* i = find(rows, "forward", "inner");
  REQUIRE(o != nullptr);
  REQUIRE(i != nullptr);
  CHECK(i->seconds > 0);
  CHECK(o->seconds >= 0);
  // Inclusive accounting would count the inner time twice and exceed the wall time.
  CHECK(o->seconds + i->seconds <= wall);
  CHECK(rows.front().seconds >= rows.back().seconds);  // longest first
}
