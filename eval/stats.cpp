#include "eval/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace wn::eval {

double t_quantile_975(int64_t df) {
  if (df < 1) throw std::invalid_argument("t_quantile_975: df must be >= 1");
  static const double table[30] = {12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004,
                                   2.262157,  2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905,
                                   2.109816,  2.100922, 2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899,
                                   2.059539,  2.055529, 2.051831, 2.048407, 2.045230, 2.042272};
  if (df <= 30) return table[df - 1];
  const double z = 1.959963984540054, n = double(df);
  return z + (z * z * z + z) / (4 * n) + (5 * std::pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * n * n) +
         (3 * std::pow(z, 7) + 19 * std::pow(z, 5) + 17 * z * z * z - 15 * z) / (384 * n * n * n);
}

Interval t_interval(const std::vector<double>& v) {
  Interval r;
  r.n = int64_t(v.size());
  if (v.empty()) {
    r.mean = r.lower = r.upper = NAN;
    return r;
  }
  r.mean = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
  if (v.size() == 1) {
    r.lower = r.upper = r.mean;
    return r;
  }
  double ss = 0;
  for (double x : v) ss += (x - r.mean) * (x - r.mean);
  const double se = std::sqrt(ss / double(v.size() - 1) / double(v.size()));
  const double h = t_quantile_975(r.n - 1) * se;
  r.lower = r.mean - h;
  r.upper = r.mean + h;
  return r;
}

PairedRatio paired_ratio(const std::vector<uint64_t>& seeds_a, const std::vector<double>& a,
                         const std::vector<uint64_t>& seeds_b, const std::vector<double>& b) {
  PairedRatio r;
  std::vector<double> logs;
  for (size_t i = 0; i < seeds_a.size() && i < a.size(); ++i)
    for (size_t j = 0; j < seeds_b.size() && j < b.size(); ++j)
      if (seeds_a[i] == seeds_b[j] && std::isfinite(a[i]) && std::isfinite(b[j]) && a[i] > 0 && b[j] > 0) {
        r.seeds.push_back(seeds_a[i]);
        r.ratios.push_back(a[i] / b[j]);
        logs.push_back(std::log(a[i] / b[j]));
        r.below_one += a[i] < b[j];
      }
  const Interval l = t_interval(logs);
  r.geo = {std::exp(l.mean), std::exp(l.lower), std::exp(l.upper), l.n};
  return r;
}

std::string verdict_below_one(const PairedRatio& r) {
  if (r.geo.n < 2) return "cannot decide";
  if (r.geo.upper < 1) return "supports";
  if (r.geo.lower > 1) return "contradicts";
  return "cannot decide";
}

namespace {
std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<size_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t i, size_t j) { return v[i] < v[j]; });
  std::vector<double> r(v.size());
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j + 1 < idx.size() && v[idx[j + 1]] == v[idx[i]]) ++j;
    for (size_t k = i; k <= j; ++k) r[idx[k]] = (double(i) + double(j)) / 2 + 1;  // the mean rank of a tie
    i = j + 1;
  }
  return r;
}
}  // namespace

double spearman(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size()) throw std::invalid_argument("spearman: the two sides differ in length");
  if (x.size() < 2) return NAN;
  const std::vector<double> rx = ranks(x), ry = ranks(y);
  const double n = double(x.size()), mx = (n + 1) / 2;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < rx.size(); ++i) {
    sxy += (rx[i] - mx) * (ry[i] - mx);
    sxx += (rx[i] - mx) * (rx[i] - mx);
    syy += (ry[i] - mx) * (ry[i] - mx);
  }
  return sxx == 0 || syy == 0 ? NAN : sxy / std::sqrt(sxx * syy);
}

}  // namespace wn::eval
