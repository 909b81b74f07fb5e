// Small-sample statistics for ablation tables (`attnlab summarize`): a handful of seeds per
// configuration is the usual case, so intervals and tests use Student's t distribution, not the
// normal approximation. Everything is in double precision and checked in the tests against
// scipy.stats.
//   * mean_and_std: the mean and the sample standard deviation (n - 1; 0 for one value).
//   * student_t_cdf / student_t_quantile: the t distribution with `df` (> 0, not necessarily
//     whole) degrees of freedom, through the regularised incomplete beta function.
//   * confidence_half_width: t_{1-(1-level)/2, n-1} * std / sqrt(n) (NaN for n < 2).
//   * welch_t_test: two groups with possibly different variances (Welch 1947): t, the
//     Welch-Satterthwaite degrees of freedom and the two-sided p-value (NaN when either group has
//     fewer than 2 values or both have zero variance).
#pragma once

#include <vector>

namespace attnlab {

struct MeanStd {
  double mean = 0.0;
  double std = 0.0;  // sample standard deviation
  size_t n = 0;
};
MeanStd mean_and_std(const std::vector<double>& values);

// I_x(a, b), the regularised incomplete beta function, for a, b > 0 and x in [0, 1].
double regularized_incomplete_beta(double a, double b, double x);

double student_t_cdf(double t, double df);
double student_t_quantile(double p, double df);  // p in (0, 1)

double confidence_half_width(const MeanStd& sample, double level = 0.95);

struct WelchTest {
  double t = 0.0;
  double df = 0.0;
  double p_value = 0.0;  // two-sided
};
WelchTest welch_t_test(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace attnlab
