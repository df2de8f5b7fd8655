// The statistics a study reports (docs/results.md): per-seed paired ratios of two models'
// final test losses, a 95% interval over seeds, how many seeds agree, a verdict in words,
// and Spearman's rank correlation.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace wn::eval {

// Student's t quantile t_{p, df} (p in (0.5, 1), df >= 1): exact tables to df 30 at
// p = 0.975, else the Cornish-Fisher expansion around the normal quantile.
double t_quantile_975(int64_t df);

// Mean of values with a two-sided 95% t interval (lower = upper = mean for one value;
// NaN for none).
struct Interval {
  double mean = 0, lower = 0, upper = 0;
  int64_t n = 0;
};
Interval t_interval(const std::vector<double>& values);

// Ratios a / b paired by seed: the geometric mean over seeds with its 95% t interval
// (taken on log ratios, then exponentiated), and how many seeds have a ratio below 1.
struct PairedRatio {
  std::vector<uint64_t> seeds;
  std::vector<double> ratios;
  Interval geo;  // exp of the t interval of log(ratio)
  int64_t below_one = 0;
};
PairedRatio paired_ratio(const std::vector<uint64_t>& seeds_a, const std::vector<double>& a,
                         const std::vector<uint64_t>& seeds_b, const std::vector<double>& b);

// "supports" (the interval lies below 1), "contradicts" (above 1) or "cannot decide"
// (it holds 1, or fewer than 2 seeds) for a claim that a / b < 1.
std::string verdict_below_one(const PairedRatio& r);

// Spearman's rank correlation (ties get their mean rank); NaN for fewer than 2 pairs or a
// constant side.
double spearman(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace wn::eval
