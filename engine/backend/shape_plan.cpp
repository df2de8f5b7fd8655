#include "engine/backend/shape_plan.h"

#include <array>
#include <vector>

namespace wn {

BroadcastPlan plan_broadcast(const Shape& out, const Shape& a, const Shape& b) {
  const Shape* ops[2] = {&a, &b};
  // Left-pad everything to rank 4.
  int64_t on[4];
  int pad = 4 - out.rank();
  for (int i = 0; i < 4; ++i) on[i] = i < pad ? 1 : out[i - pad];
  std::array<std::array<bool, 4>, 2> bc{};
  for (int k = 0; k < 2; ++k) {
    int p = 4 - ops[k]->rank();
    for (int i = 0; i < 4; ++i) {
      int64_t d = i < p ? 1 : (*ops[k])[i - p];
      bc[k][i] = (d == 1 && on[i] != 1);
    }
  }
  // Merge dims, dropping size-1 dims entirely.
  std::vector<int64_t> dn;
  std::vector<bool> dbc[2];
  for (int i = 0; i < 4; ++i) {
    if (on[i] == 1) continue;
    if (!dn.empty() && dbc[0].back() == bc[0][i] && dbc[1].back() == bc[1][i]) {
      dn.back() *= on[i];
    } else {
      dn.push_back(on[i]);
      for (int k = 0; k < 2; ++k) dbc[k].push_back(bc[k][i]);
    }
  }
  if (dn.empty()) {
    dn.push_back(1);
    for (int k = 0; k < 2; ++k) dbc[k].push_back(false);
  }
  BroadcastPlan c;
  c.rank = static_cast<int>(dn.size());
  for (int i = 0; i < c.rank; ++i) c.n[i] = dn[i];
  for (int k = 0; k < 2; ++k) {
    int64_t s = 1;
    for (int i = c.rank - 1; i >= 0; --i) {
      c.st[k][i] = dbc[k][i] ? 0 : s;
      if (!dbc[k][i]) s *= c.n[i];
    }
  }
  return c;
}

ReducePlan plan_sum_to(const Shape& x, const Shape& out) {
  // x as the "output" of a broadcast with out as an operand: out's strides are 0 on the
  // reduced dims, and x's own strides are those of its merged dims.
  const BroadcastPlan c = plan_broadcast(x, out, x);
  ReducePlan r;
  r.rank = c.rank;
  for (int i = 0; i < c.rank; ++i) {
    r.n[i] = c.n[i];
    r.os[i] = c.st[0][i];
    r.xs[i] = c.st[1][i];
    if (r.reduced(i)) {
      r.red[r.nr++] = i;
      r.n_red *= c.n[i];
    } else {
      r.kept[r.nk++] = i;
      r.n_out *= c.n[i];
    }
  }
  return r;
}

NCR ncr_of(const Shape& s) {
  NCR r{s[0], s.rank() > 1 ? s[1] : 1, 1};
  for (int i = 2; i < s.rank(); ++i) r.r *= s[i];
  return r;
}

}  // namespace wn
