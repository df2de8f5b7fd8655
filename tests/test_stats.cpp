// The study's statistics against hand computations and an independent integration of
// Student's t density.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "eval/stats.h"

using namespace wn::eval;

namespace {
// P(T <= t) for Student's t with df degrees of freedom: Simpson's rule on the density
// from 0 to t, plus one half.
double t_cdf(double t, int df) {
  const double n = df;
  const double c = std::exp(std::lgamma((n + 1) / 2) - std::lgamma(n / 2)) / std::sqrt(n * M_PI);
  auto f = [&](double x) { return c * std::pow(1 + x * x / n, -(n + 1) / 2); };
  const int steps = 20000;
  const double h = t / steps;
  double s = f(0) + f(t);
  for (int i = 1; i < steps; ++i) s += f(i * h) * (i % 2 ? 4 : 2);
  return 0.5 + s * h / 3;
}
}  // namespace

TEST_CASE("t quantiles: P(T <= t_{0.975, df}) = 0.975 for the table and the expansion beyond it") {
  for (int df : {1, 2, 3, 4, 5, 7, 10, 19, 30, 31, 45, 100, 1000}) {
    INFO("df " << df);
    CHECK(t_cdf(t_quantile_975(df), df) == doctest::Approx(0.975).epsilon(2e-6));
  }
  CHECK(t_quantile_975(4) == doctest::Approx(2.776445).epsilon(1e-6));
  CHECK_THROWS(t_quantile_975(0));
}

TEST_CASE("t interval of 1, 2, 3, 4, 5: mean 3, half-width 2.776445 x sqrt(2.5 / 5)") {
  const Interval r = t_interval({1, 2, 3, 4, 5});
  CHECK(r.n == 5);
  CHECK(r.mean == doctest::Approx(3));
  CHECK(r.lower == doctest::Approx(3 - 2.776445 * std::sqrt(0.5)).epsilon(1e-6));
  CHECK(r.upper == doctest::Approx(3 + 2.776445 * std::sqrt(0.5)).epsilon(1e-6));
  const Interval one = t_interval({0.7});
  CHECK(one.lower == 0.7);
  CHECK(one.upper == 0.7);
  CHECK(std::isnan(t_interval({}).mean));
}

TEST_CASE("paired ratios: matched by seed, geometric mean with its interval on log ratios, seeds below 1") {
  // WN at seeds 1, 2, 3, 5; BN at seeds 3, 2, 1, 4 (4 and 5 unpaired).
  const PairedRatio r = paired_ratio({1, 2, 3, 5}, {0.9, 0.8, 1.1, 0.5}, {3, 2, 1, 4}, {1.0, 1.0, 1.0, 1.0});
  CHECK(r.seeds == std::vector<uint64_t>{1, 2, 3});
  REQUIRE(r.ratios.size() == 3);
  CHECK(r.ratios[0] == doctest::Approx(0.9));
  CHECK(r.ratios[1] == doctest::Approx(0.8));
  CHECK(r.ratios[2] == doctest::Approx(1.1));
  CHECK(r.below_one == 2);
  // By hand: logs -0.1053605, -0.2231436, 0.0953102; mean -0.0777313; sd 0.1610147.
  const double m = (std::log(0.9) + std::log(0.8) + std::log(1.1)) / 3;
  CHECK(r.geo.mean == doctest::Approx(std::exp(m)));
  CHECK(std::log(r.geo.mean) == doctest::Approx(-0.0777313).epsilon(1e-6));
  const double sd = std::sqrt((std::pow(std::log(0.9) - m, 2) + std::pow(std::log(0.8) - m, 2) + std::pow(std::log(1.1) - m, 2)) / 2);
  CHECK(sd == doctest::Approx(0.1610147).epsilon(1e-6));
  CHECK(r.geo.upper == doctest::Approx(std::exp(m + 4.302653 * sd / std::sqrt(3.0))).epsilon(1e-6));
  CHECK(verdict_below_one(r) == "cannot decide");  // the interval holds 1
  CHECK(verdict_below_one(paired_ratio({1, 2, 3}, {0.90, 0.91, 0.89}, {1, 2, 3}, {1, 1, 1})) == "supports");
  CHECK(verdict_below_one(paired_ratio({1, 2, 3}, {1.10, 1.12, 1.09}, {1, 2, 3}, {1, 1, 1})) == "contradicts");
  CHECK(verdict_below_one(paired_ratio({1}, {0.5}, {1}, {1})) == "cannot decide");  // one seed
}

TEST_CASE("Spearman: hand cases with ties, perfect orders and constant sides") {
  CHECK(spearman({1, 2, 3, 4}, {10, 20, 30, 40}) == doctest::Approx(1));
  CHECK(spearman({1, 2, 3, 4}, {4, 3, 2, 1}) == doctest::Approx(-1));
  // x ranks 1, 2, 3, 4, 5; y = 2, 1, 4, 3, 5: sum d^2 = 4, rho = 1 - 6 * 4 / (5 * 24) = 0.8.
  CHECK(spearman({1, 2, 3, 4, 5}, {2, 1, 4, 3, 5}) == doctest::Approx(0.8));
  // Ties: y = 1, 1, 2 has ranks 1.5, 1.5, 3; Pearson of (1, 2, 3) with them is sqrt(3) / 2.
  CHECK(spearman({1, 2, 3}, {1, 1, 2}) == doctest::Approx(std::sqrt(3.0) / 2));
  CHECK(std::isnan(spearman({1, 2, 3}, {5, 5, 5})));
  CHECK(std::isnan(spearman({1}, {2})));
  CHECK_THROWS(spearman({1, 2}, {1}));
}
