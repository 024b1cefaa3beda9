#pragma once
// Adaptive Monte Carlo (pure math, no generator): the sequential tests that stop an estimate's
// rollouts once the decision it feeds is settled.
//
// An estimate draws its rollouts in rounds and is checked after each. Its true success rate is p;
// after n rollouts with s right, the one-sided exact binomial (Clopper-Pearson) test at level
// alpha decides
//   p >= c   when P(Bin(n, c) >= s) <= alpha,
//   p <  c   when P(Bin(n, c) <= s) <= alpha,
// and otherwise leaves it open. For any p on the other side of c, each check errs with
// probability at most alpha (the tails are monotone in p); an estimate is checked at most
// `checks` times, and every check uses alpha = delta / checks, so by the union bound the
// probability that an estimate ever decides against its true rate is at most delta.
//
// What is decided:
//   a step t < T   its RPE label, p_t >= epsilon * MC(s_t) (MC(s_t): the previous estimate as
//                  reported, MC(s_1) for t = 1). With MC(s_t) = 0 the label is p_t > 0 (the 0/0
//                  and x/0 rule of labels.hpp): one right rollout decides it, failures never do.
//   MC(s_1)        its bucket of the dynamic-K rule (below low / below high / at least high),
//                  so the K it sets is decided.
// A decision is consistent with the point estimate s / n (for alpha < 1/2 the rejected side of
// the median), so labels.hpp's compute_labels over the stopped estimates gives the decided label.
// An estimate that is never decided runs to its fixed budget and then is exactly the fixed-K one.
#include <algorithm>
#include <cmath>
#include <vector>

#include "genprm/rpe/labels.hpp"
#include "genprm/util/error.hpp"

namespace genprm::rpe {

/// log P(Bin(n, c) = k) summed in log space over k in [lo, hi]; returns the probability.
inline double binomial_mass(int n, double c, int lo, int hi) {
  GENPRM_CHECK_ARG(n >= 0, "binomial: n must be >= 0, got {}", n);
  GENPRM_CHECK_ARG(c >= 0.0 && c <= 1.0, "binomial: c must be in [0, 1], got {}", c);
  lo = std::max(lo, 0);
  hi = std::min(hi, n);
  if (lo > hi) return 0.0;
  if (c == 0.0) return lo == 0 ? 1.0 : 0.0;
  if (c == 1.0) return hi == n ? 1.0 : 0.0;
  const double lc = std::log(c), lq = std::log1p(-c);
  double log_choose = 0.0;  // log C(n, k), built up from k = 0
  double sum = 0.0;
  for (int k = 0; k <= hi; ++k) {
    if (k > 0) log_choose += std::log(static_cast<double>(n - k + 1)) - std::log(static_cast<double>(k));
    if (k >= lo) sum += std::exp(log_choose + k * lc + (n - k) * lq);
  }
  return std::min(sum, 1.0);
}

/// P(Bin(n, c) >= s)
inline double binomial_upper_tail(int n, int s, double c) { return binomial_mass(n, c, s, n); }
/// P(Bin(n, c) <= s)
inline double binomial_lower_tail(int n, int s, double c) { return binomial_mass(n, c, 0, s); }

/// Outcome of one check of p against a threshold.
enum class Decision { Open, Below, AtLeast };

/// The one-sided exact test of p against c from s right of n at level alpha (header comment).
/// c <= 0: p >= c is certain; c > 1: p < c is certain.
inline Decision test_threshold(int n, int s, double c, double alpha) {
  GENPRM_CHECK_ARG(s >= 0 && s <= n, "test_threshold: s ({}) must be in [0, n = {}]", s, n);
  if (c <= 0.0) return Decision::AtLeast;
  if (c > 1.0) return Decision::Below;
  if (n == 0) return Decision::Open;
  if (binomial_upper_tail(n, s, c) <= alpha) return Decision::AtLeast;
  if (binomial_lower_tail(n, s, c) <= alpha) return Decision::Below;
  return Decision::Open;
}

/// Per-check level of an estimate checked at most `checks` times: delta / checks.
inline double check_level(double delta, int checks) { return delta / std::max(checks, 1); }

/// The RPE label of a step decided from s right of n (mc_prev = MC(s_t), epsilon of the labels):
/// Open, Below (label 0) or AtLeast (label 1). mc_prev = 0: the label is p > 0, decided by one
/// right rollout.
inline Decision decide_label(int n, int s, double mc_prev, double epsilon, double alpha) {
  if (mc_prev <= 0.0) return s > 0 ? Decision::AtLeast : Decision::Open;
  return test_threshold(n, s, epsilon * mc_prev, alpha);
}

/// The K of the dynamic rule when MC(s_1)'s bucket is decided from s right of n, else 0.
inline int decide_k(const KRule& rule, int n, int s, double alpha) {
  const Decision lo = test_threshold(n, s, rule.low, alpha);
  if (lo == Decision::Below) return rule.k_low;
  const Decision hi = test_threshold(n, s, rule.high, alpha);
  if (hi == Decision::AtLeast) return rule.k_high;
  if (lo == Decision::AtLeast && hi == Decision::Below) return rule.k_mid;
  return 0;
}

/// Most checks of an estimate drawn in rounds of `round` that restart at each of the sorted
/// `boundaries` (where one request of the fixed scheme ends): the rounds of every stretch between
/// two boundaries, summed (a path that skips a boundary checks no more often).
inline int max_checks(std::vector<int> boundaries, int round) {
  GENPRM_CHECK_ARG(round >= 1, "round must be >= 1, got {}", round);
  std::sort(boundaries.begin(), boundaries.end());
  int checks = 0, prev = 0;
  for (int b : boundaries) {
    if (b <= prev) continue;
    checks += (b - prev + round - 1) / round;
    prev = b;
  }
  return checks;
}

}  // namespace genprm::rpe
