#pragma once
// Pure RPE label math (no generator, no torch): the dynamic-K rule and the step labels computed
// from Monte Carlo estimates.
//
//   MC(s_1)        estimated Pass@1 of the problem (rollouts from the prompt alone)
//   MC(s_t, a_t)   fraction of K rollouts from the prefix through step t that reach the answer
//                  (the last step: 1 or 0 from its own answer)
//   zero propagation: after the first step with MC = 0, every later step gets MC = 0
//   MC(s_t)        MC(s_{t-1}, a_{t-1}) for t > 1, MC(s_1) for t = 1
//   RPE            P_t = MC(s_t, a_t) / MC(s_t), label = P_t >= epsilon (0.8)
//   hard label     MC(s_t, a_t) > 0
//   difference     D_t = MC(s_t, a_t) - MC(s_t), label = D_t >= difference_epsilon (0)
//
// The 0/0 case. MC(s_t) = 0 happens when the problem was never solved from the prompt (t = 1,
// MC(s_1) = 0) or after a zero step (then MC(s_t, a_t) = 0 too, by propagation):
//   MC(s_t) = 0 and MC(s_t, a_t) = 0  ->  P_t = 0, label 0 (no progress from a hopeless state;
//                                          agrees with the hard label and with propagation)
//   MC(s_t) = 0 and MC(s_t, a_t) > 0  ->  P_t = +infinity, label 1 (the step made a hopeless
//                                          problem solvable; only possible at t = 1)
// (JSON has no infinity: results write P_t = null there, Python reads it back as inf.)
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "genprm/util/error.hpp"
#include "genprm/util/fields.hpp"

namespace genprm::rpe {

/// Dynamic K from MC(s_1): k_low if MC(s_1) < low, k_mid if < high, else k_high
/// (defaults 128 / 64 / 32 at 0.1 / 0.9: hard problems get more rollouts).
struct KRule {
  double low = 0.1;
  double high = 0.9;
  int k_low = 128;
  int k_mid = 64;
  int k_high = 32;

  void validate() const {
    GENPRM_CHECK_ARG(low >= 0.0 && low <= high && high <= 1.0,
                     "KRule: thresholds must satisfy 0 <= low ({}) <= high ({}) <= 1", low, high);
    GENPRM_CHECK_ARG(k_low >= 1 && k_mid >= 1 && k_high >= 1,
                     "KRule: k_low ({}), k_mid ({}) and k_high ({}) must be >= 1", k_low, k_mid, k_high);
  }
  int k_for(double mc_first) const {
    GENPRM_CHECK_ARG(mc_first >= 0.0 && mc_first <= 1.0, "KRule: mc_first {} is outside [0, 1]", mc_first);
    return mc_first < low ? k_low : mc_first < high ? k_mid : k_high;
  }
  int k_max() const { return std::max(k_low, std::max(k_mid, k_high)); }
  int k_min() const { return std::min(k_low, std::min(k_mid, k_high)); }

  static auto fields() {
    using K = KRule;
    return std::make_tuple(field("low", &K::low), field("high", &K::high), field("k_low", &K::k_low),
                           field("k_mid", &K::k_mid), field("k_high", &K::k_high));
  }
};

struct LabelConfig {
  double epsilon = 0.8;             ///< RPE threshold on P_t, in (0, 1]
  double difference_epsilon = 0.0;  ///< threshold of the difference variant, in [-1, 1]

  void validate() const {
    GENPRM_CHECK_ARG(epsilon > 0.0 && epsilon <= 1.0, "epsilon must be in (0, 1], got {}", epsilon);
    GENPRM_CHECK_ARG(difference_epsilon >= -1.0 && difference_epsilon <= 1.0,
                     "difference_epsilon must be in [-1, 1], got {}", difference_epsilon);
  }

  static auto fields() {
    using L = LabelConfig;
    return std::make_tuple(field("epsilon", &L::epsilon), field("difference_epsilon", &L::difference_epsilon));
  }
};

/// The labels of one step.
struct StepLabels {
  double mc = 0.0;          ///< MC(s_t, a_t) after zero propagation
  double mc_prev = 0.0;     ///< MC(s_t): the previous step's mc, MC(s_1) for t = 1
  bool propagated = false;  ///< set to 0 by the rule (an earlier step had MC = 0), not estimated
  double progress = 0.0;    ///< P_t = mc / mc_prev (0/0 -> 0, x/0 -> +inf)
  bool label = false;       ///< RPE label: progress >= epsilon
  bool hard_label = false;  ///< mc > 0
  double difference = 0.0;  ///< mc - mc_prev
  bool difference_label = false;  ///< difference >= difference_epsilon

  static auto fields() {
    using S = StepLabels;
    return std::make_tuple(field("mc", &S::mc), field("mc_prev", &S::mc_prev), field("propagated", &S::propagated),
                           field("progress", &S::progress), field("label", &S::label, "", kBoolAsInt),
                           field("hard_label", &S::hard_label, "", kBoolAsInt),
                           field("difference", &S::difference),
                           field("difference_label", &S::difference_label, "", kBoolAsInt));
  }
};

/// P_t with the 0/0 rule of the header comment.
inline double progress_ratio(double mc, double mc_prev) {
  if (mc_prev > 0.0) return mc / mc_prev;
  return mc > 0.0 ? std::numeric_limits<double>::infinity() : 0.0;
}

/// Labels of every step from the raw estimates `mc` (MC(s_t, a_t), t = 1..T) and `mc_first`
/// (MC(s_1)). Throws ValueError for an empty list, a value outside [0, 1] (NaN included) or a
/// bad config.
inline std::vector<StepLabels> compute_labels(const std::vector<double>& mc, double mc_first,
                                              const LabelConfig& cfg = {}) {
  cfg.validate();
  GENPRM_CHECK_ARG(!mc.empty(), "mc: at least one step is needed");
  GENPRM_CHECK_ARG(mc_first >= 0.0 && mc_first <= 1.0, "mc_first must be in [0, 1], got {}", mc_first);
  for (size_t i = 0; i < mc.size(); ++i)
    GENPRM_CHECK_ARG(mc[i] >= 0.0 && mc[i] <= 1.0, "mc[{}] must be in [0, 1], got {}", i, mc[i]);
  std::vector<StepLabels> out(mc.size());
  bool zero_seen = false;
  double prev = mc_first;
  for (size_t i = 0; i < mc.size(); ++i) {
    StepLabels& s = out[i];
    s.propagated = zero_seen;
    s.mc = zero_seen ? 0.0 : mc[i];
    s.mc_prev = prev;
    s.progress = progress_ratio(s.mc, prev);
    s.label = s.progress >= cfg.epsilon;
    s.hard_label = s.mc > 0.0;
    s.difference = s.mc - prev;
    s.difference_label = s.difference >= cfg.difference_epsilon;
    if (s.mc == 0.0) zero_seen = true;
    prev = s.mc;
  }
  return out;
}

}  // namespace genprm::rpe
