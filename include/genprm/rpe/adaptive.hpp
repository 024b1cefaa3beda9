#pragma once
// Adaptive Monte Carlo (pure math, no generator): the sequential tests that stop an estimate's
// rollouts once the decision it feeds is settled.
//
// An estimate draws its rollouts in rounds and is checked at the end of each round, at rollout
// counts n_1 < n_2 < ... fixed before any rollout is seen. Its true success rate is p; it is
// tested against a threshold c. With s_i right of n_i, the test decides
//   p >= c   at the first check with s_i >= upper_i,
//   p <  c   at the first check with s_i <= lower_i,
// and otherwise leaves it open (the estimate then runs to its fixed budget).
// The boundaries are exact for the whole sequence, not one look at a time: walking the checks in
// order, upper_i is the lowest count such that the probability, at p = c, that the path of
// counts reaches some upper_j (j <= i) stays within delta, computed exactly by propagating the
// distribution of s through the rounds (rounds are binomial, paths that crossed are removed);
// lower_i likewise. Each check spends whatever of delta the earlier ones left; because the looks
// are strongly correlated, that stops much earlier than splitting delta evenly over the checks
// (a union bound): at c = 0.8 all-right rollouts decide after 16 rather than 24.
// Why the bound holds for every p: with s_n built from uniforms (right when u < p), every path
// of counts rises with p, so "reaches an upper boundary" is an increasing event and its
// probability is at most its value at p = c for any p < c (then deciding p >= c is the error);
// symmetrically for the lower boundary and p >= c. Stopping for other reasons only removes
// paths. So a decided estimate is wrong with probability at most delta.
//
// What is decided:
//   a step t < T   its RPE label, p_t >= epsilon * MC(s_t) (MC(s_t): the previous estimate as
//                  reported, MC(s_1) for t = 1; it is final before step t is checked and its
//                  rollouts are independent of step t's). With MC(s_t) = 0 the label is p_t > 0
//                  (the 0/0 and x/0 rule of labels.hpp): one right rollout decides it, failures
//                  never do.
//   MC(s_1)        its bucket of the dynamic-K rule (below low / below high / at least high),
//                  one test per threshold, so the K it sets is decided.
// Every decision lies on the side of c its point estimate s / n lies on (upper_i > c n_i,
// lower_i < c n_i), so labels.hpp's compute_labels over the stopped estimates gives the decided
// label. An estimate that is never decided runs to its fixed budget and is then exactly the
// fixed-K one.
#include <algorithm>
#include <cmath>
#include <vector>

#include "genprm/rpe/labels.hpp"
#include "genprm/util/error.hpp"

namespace genprm::rpe {

/// P(Bin(n, c) = k) for k = 0..n, computed in log space (no overflow at large n).
inline std::vector<double> binomial_pmf(int n, double c) {
  GENPRM_CHECK_ARG(n >= 0, "binomial: n must be >= 0, got {}", n);
  GENPRM_CHECK_ARG(c >= 0.0 && c <= 1.0, "binomial: c must be in [0, 1], got {}", c);
  std::vector<double> pmf(static_cast<size_t>(n) + 1, 0.0);
  if (c == 0.0 || c == 1.0) {
    pmf[c == 0.0 ? 0 : static_cast<size_t>(n)] = 1.0;
    return pmf;
  }
  const double lc = std::log(c), lq = std::log1p(-c);
  double log_choose = 0.0;  // log C(n, k), built up from k = 0
  for (int k = 0; k <= n; ++k) {
    if (k > 0) log_choose += std::log(static_cast<double>(n - k + 1)) - std::log(static_cast<double>(k));
    pmf[static_cast<size_t>(k)] = std::exp(log_choose + k * lc + (n - k) * lq);
  }
  return pmf;
}

/// P(lo <= Bin(n, c) <= hi)
inline double binomial_mass(int n, double c, int lo, int hi) {
  const std::vector<double> pmf = binomial_pmf(n, c);
  double sum = 0.0;
  for (int k = std::max(lo, 0); k <= std::min(hi, n); ++k) sum += pmf[static_cast<size_t>(k)];
  return std::min(sum, 1.0);
}

/// P(Bin(n, c) >= s)
inline double binomial_upper_tail(int n, int s, double c) { return binomial_mass(n, c, s, n); }
/// P(Bin(n, c) <= s)
inline double binomial_lower_tail(int n, int s, double c) { return binomial_mass(n, c, 0, s); }

/// Outcome of one check of p against a threshold.
enum class Decision { Open, Below, AtLeast };

/// The group-sequential test of p against c at fixed check sizes (header comment).
class SequentialTest {
 public:
  SequentialTest() = default;  ///< no check: always open

  /// Boundaries for `checks` (rollout counts, sorted ascending, each >= 1) at error delta.
  /// c <= 0: p >= c is certain (decided at the first check); c > 1: p < c is certain.
  SequentialTest(double c, std::vector<int> checks, double delta) : c_(c), checks_(std::move(checks)) {
    GENPRM_CHECK_ARG(delta > 0.0 && delta < 0.5, "sequential test: delta must be in (0, 0.5), got {}", delta);
    GENPRM_CHECK_ARG(std::is_sorted(checks_.begin(), checks_.end()) &&
                         std::adjacent_find(checks_.begin(), checks_.end()) == checks_.end() &&
                         (checks_.empty() || checks_.front() >= 1),
                     "sequential test: checks must be distinct, ascending and >= 1");
    if (c <= 0.0 || c > 1.0) {
      for (int n : checks_) {
        upper_.push_back(c <= 0.0 ? 0 : n + 1);
        lower_.push_back(c <= 0.0 ? -1 : n);
      }
      return;
    }
    upper_ = boundaries(true, delta);
    lower_ = boundaries(false, delta);
  }

  /// The label test of a step: p >= epsilon * mc_prev; with mc_prev = 0, p > 0 (one right
  /// rollout decides it, failures never do).
  static SequentialTest label(double mc_prev, double epsilon, std::vector<int> checks, double delta) {
    if (mc_prev > 0.0) return SequentialTest(epsilon * mc_prev, std::move(checks), delta);
    SequentialTest t;
    t.checks_ = std::move(checks);
    t.upper_.assign(t.checks_.size(), 1);
    t.lower_.assign(t.checks_.size(), -1);
    return t;
  }

  /// The decision after `n` rollouts with `s` right; n must be one of the checks.
  Decision decide(int n, int s) const {
    GENPRM_CHECK_ARG(s >= 0 && s <= n, "sequential test: s ({}) must be in [0, n = {}]", s, n);
    const auto it = std::lower_bound(checks_.begin(), checks_.end(), n);
    GENPRM_CHECK(it != checks_.end() && *it == n, "sequential test: {} rollouts is not one of its checks", n);
    const size_t i = static_cast<size_t>(it - checks_.begin());
    if (s >= upper_[i]) return Decision::AtLeast;
    if (s <= lower_[i]) return Decision::Below;
    return Decision::Open;
  }

  double threshold() const { return c_; }
  const std::vector<int>& checks() const { return checks_; }
  const std::vector<int>& upper() const { return upper_; }  ///< n + 1: cannot decide p >= c there
  const std::vector<int>& lower() const { return lower_; }  ///< -1: cannot decide p < c there

 private:
  /// Greedy exact spending of delta on one side (upper: large counts decide p >= c).
  std::vector<int> boundaries(bool upper, double delta) const {
    std::vector<double> dist{1.0};  // P(s = k, no crossing so far) at p = c
    std::vector<int> out;
    double spent = 0.0;
    int prev = 0;
    for (int n : checks_) {
      const std::vector<double> round = binomial_pmf(n - prev, c_);
      std::vector<double> next(static_cast<size_t>(n) + 1, 0.0);
      for (size_t a = 0; a < dist.size(); ++a)
        if (dist[a] != 0.0)
          for (size_t b = 0; b < round.size(); ++b) next[a + b] += dist[a] * round[b];
      dist = std::move(next);
      prev = n;
      const double centre = c_ * n;  // a decision must lie on its point estimate's side of c
      double taken = 0.0;
      int bound = upper ? n + 1 : -1;
      for (int s = upper ? n : 0; upper ? s > centre : s < centre; s += upper ? -1 : 1) {
        const double m = dist[static_cast<size_t>(s)];
        if (spent + taken + m > delta) break;
        taken += m;
        bound = s;
      }
      spent += taken;
      for (int s = 0; s <= n; ++s)
        if (upper ? s >= bound : s <= bound) dist[static_cast<size_t>(s)] = 0.0;
      out.push_back(bound);
    }
    return out;
  }

  double c_ = 0.0;
  std::vector<int> checks_;
  std::vector<int> upper_, lower_;
};

/// Every rollout count at which an estimate drawn in rounds of `round` can be checked. It starts
/// with a first request of `first` rollouts and may be topped up to any of `later` (ascending
/// subsets: the fixed scheme's further requests); rounds restart where each request ends. The
/// largest possible count is left out: there the fixed scheme always stops. Checking at a subset
/// of these counts only removes chances to cross, so one test serves every path.
inline std::vector<int> check_points(int first, std::vector<int> later, int round) {
  GENPRM_CHECK_ARG(round >= 1, "round must be >= 1, got {}", round);
  GENPRM_CHECK_ARG(first >= 1, "check points: the first request must have >= 1 rollouts, got {}", first);
  std::sort(later.begin(), later.end());
  later.erase(std::unique(later.begin(), later.end()), later.end());
  later.erase(later.begin(), std::upper_bound(later.begin(), later.end(), first));
  std::vector<int> points;
  const size_t m = later.size();
  for (size_t mask = 0; mask < (size_t(1) << m); ++mask) {
    int prev = 0;
    std::vector<int> ends{first};
    for (size_t j = 0; j < m; ++j)
      if (mask & (size_t(1) << j)) ends.push_back(later[j]);
    for (int end : ends) {
      for (int n = prev + round; n < end; n += round) points.push_back(n);
      points.push_back(end);
      prev = end;
    }
  }
  std::sort(points.begin(), points.end());
  points.erase(std::unique(points.begin(), points.end()), points.end());
  points.pop_back();  // the largest count: the fixed scheme's last stop
  return points;
}

/// MC(s_1)'s bucket of the dynamic-K rule, one sequential test per threshold of the rule.
class KBucketTest {
 public:
  KBucketTest() = default;
  KBucketTest(const KRule& rule, std::vector<int> checks, double delta)
      : rule_(rule), low_(rule.low, checks, delta), high_(rule.high, std::move(checks), delta) {}

  /// The K of the decided bucket after `n` rollouts with `s` right, else 0.
  int decide(int n, int s) const {
    const Decision lo = low_.decide(n, s);
    if (lo == Decision::Below) return rule_.k_low;
    const Decision hi = high_.decide(n, s);
    if (hi == Decision::AtLeast) return rule_.k_high;
    if (lo == Decision::AtLeast && hi == Decision::Below) return rule_.k_mid;
    return 0;
  }

 private:
  KRule rule_;
  SequentialTest low_, high_;
};

}  // namespace genprm::rpe
