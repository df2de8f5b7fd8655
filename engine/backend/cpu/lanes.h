// Reductions in double that vectorise without reordering freedom: eight independent
// accumulators (one AVX-512 register of doubles) filled in a fixed order, then added
// in a fixed order. The result depends only on n, never on threads or alignment.
#pragma once
#include <cstdint>

namespace wn {

// The total of eight lanes, added in the fixed order every reduction here uses.
template <class T>
inline T lane_total(const T (&l)[8]) {
  return ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
}

// Sum over i in [0, n) of f(i), accumulated in double.
template <class F>
inline double lane_sum(int64_t n, F&& f) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) lane[l] += double(f(i + l));
  for (int l = 0; i < n; ++i, ++l) lane[l] += double(f(i));
  return lane_total(lane);
}

// The same for two sums at once: (sum of f(i).first, sum of f(i).second) into a, b.
template <class F>
inline void lane_sum2(int64_t n, F&& f, double& a, double& b) {
  double la[8] = {0, 0, 0, 0, 0, 0, 0, 0}, lb[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) {
      double u, v;
      f(i + l, u, v);
      la[l] += u;
      lb[l] += v;
    }
  for (int l = 0; i < n; ++i, ++l) {
    double u, v;
    f(i, u, v);
    la[l] += u;
    lb[l] += v;
  }
  a = lane_total(la);
  b = lane_total(lb);
}

}  // namespace wn
