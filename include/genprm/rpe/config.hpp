#pragma once
// Configuration of the RPE labeler and of the step-forced solution sampler.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "genprm/gen/rng.hpp"
#include "genprm/rpe/labels.hpp"
#include "genprm/rpe/steps.hpp"
#include "genprm/util/error.hpp"

namespace genprm::rpe {

/// How rollouts are sampled (policy side). Defaults: Qwen2.5-Math sampling at temperature 0.7.
struct RolloutParams {
  float temperature = 0.7f;
  float top_p = 1.0f;
  int top_k = 0;
  int max_tokens = 2048;          ///< new tokens per rollout
  std::vector<std::string> stop;  ///< extra stop strings (EOS always stops)

  void validate(const char* what) const {
    GENPRM_CHECK_ARG(temperature >= 0.0f, "{}: temperature must be >= 0, got {}", what, temperature);
    GENPRM_CHECK_ARG(top_p > 0.0f && top_p <= 1.0f, "{}: top_p must be in (0, 1], got {}", what, top_p);
    GENPRM_CHECK_ARG(max_tokens >= 1, "{}: max_tokens must be >= 1, got {}", what, max_tokens);
  }

  static auto fields() {
    using R = RolloutParams;
    return std::make_tuple(field("temperature", &R::temperature), field("top_p", &R::top_p),
                           field("top_k", &R::top_k), field("max_tokens", &R::max_tokens), field("stop", &R::stop));
  }
};

/// Adaptive Monte Carlo (rpe/adaptive.hpp; off by default, so labels are the fixed-K ones): an
/// estimate draws its rollouts in rounds and stops as soon as an exact sequential binomial test
/// decides what it feeds (a step: its RPE label against epsilon * MC(s_t); MC(s_1): its bucket of
/// the K rule), each decided estimate wrong with probability at most `delta` (exact over all its
/// checks together). Rounds are pieces of the fixed scheme's own requests (same seeds, consecutive
/// samples: SamplingParams::first_sample), so an estimate that is never decided is exactly the
/// fixed-K one, and a decided one uses its first rollouts.
struct AdaptiveMC {
  // Defaults measured on the trained arithmetic policy (benchmarks/bench_rpe_adaptive.py --sweep,
  // 96 and 192 solutions): round 8, delta 0.2 save 2.3x rollouts and 2.2x generated tokens, and
  // 2.1 % / 4.0 % of the step labels differ from the fixed scheme's, no more than the fixed
  // scheme's own labels change under another seed (3.4 % / 5.9 %). delta bounds the worst case,
  // a rate right at its threshold; delta 0.05 saves 1.5x with 1.7 % / 2.3 % differing.
  bool enabled = false;
  int round = 8;       ///< rollouts per round (one request each)
  double delta = 0.2;  ///< error bound of each decided estimate, in (0, 0.5)

  void validate() const {
    GENPRM_CHECK_ARG(round >= 1, "adaptive.round must be >= 1, got {}", round);
    GENPRM_CHECK_ARG(delta > 0.0 && delta < 0.5, "adaptive.delta must be in (0, 0.5), got {}", delta);
  }

  static auto fields() {
    using A = AdaptiveMC;
    return std::make_tuple(field("enabled", &A::enabled), field("round", &A::round), field("delta", &A::delta));
  }
};

struct LabelerConfig {
  LabelConfig labels;  ///< epsilon, difference_epsilon
  KRule k_rule;        ///< dynamic K from MC(s_1)
  /// > 0: every estimate (MC(s_1) and each step) uses exactly this many rollouts, no dynamic K.
  int fixed_k = 0;
  /// MC(s_1) is estimated from a first batch of first_k rollouts, then topped up (one more
  /// request of the same prompt, whose KV is cached) while the rule asks for more rollouts than
  /// were taken: K(MC over all taken) > taken. 0: k_rule.k_min() (32).
  int first_k = 0;
  /// Assistant text written before the MC(s_1) rollouts (step forcing). The step prefixes are
  /// the solution's own text, which starts with it when the solution was sampled with it.
  std::string step_prefix = std::string(kStepForcingPrefix);
  RolloutParams rollout;
  std::optional<uint64_t> seed;  ///< seeds every request (per problem id, step and batch)
  int max_problems_in_flight = 16;
  /// Cancel the rollouts of later steps once a step comes back with MC = 0 (their MC is 0 by
  /// propagation whatever they would estimate).
  bool cancel_after_zero = true;
  /// Keep every rollout's text in the result (StepResult::rollouts, LabelResult::first_rollouts).
  bool keep_rollouts = false;
  AdaptiveMC adaptive;  ///< rollouts in rounds with early stopping (off by default)
  /// MC(s_1) once per problem: rows with the same chat prompt share one estimate, made by the
  /// first of them (its requests seeded from the prompt, not the row id, so the estimate does not
  /// depend on which row makes it); the others wait for it. MC(s_1) is the problem's Pass@1, as
  /// the reference computes it per problem. Off by default (each row estimates its own).
  bool share_first = false;

  void validate() const {
    labels.validate();
    adaptive.validate();
    k_rule.validate();
    rollout.validate("LabelerConfig");
    GENPRM_CHECK_ARG(fixed_k >= 0, "k must be >= 1 (or 0 for the dynamic rule), got {}", fixed_k);
    GENPRM_CHECK_ARG(first_k >= 0, "first_k must be >= 1 (or 0 for k_rule's smallest K), got {}", first_k);
    GENPRM_CHECK_ARG(max_problems_in_flight >= 1, "max_problems_in_flight must be >= 1, got {}",
                     max_problems_in_flight);
  }
  int first_batch() const { return fixed_k > 0 ? fixed_k : first_k > 0 ? first_k : k_rule.k_min(); }

  static auto fields() {
    using L = LabelerConfig;
    return std::make_tuple(field("labels", &L::labels), field("k_rule", &L::k_rule), field("fixed_k", &L::fixed_k),
                           field("first_k", &L::first_k), field("step_prefix", &L::step_prefix),
                           field("rollout", &L::rollout), field("seed", &L::seed),
                           field("max_problems_in_flight", &L::max_problems_in_flight),
                           field("cancel_after_zero", &L::cancel_after_zero),
                           field("keep_rollouts", &L::keep_rollouts), field("adaptive", &L::adaptive),
                           field("share_first", &L::share_first));
  }
};

struct SamplerConfig {
  int n = 8;  ///< solutions per problem (one request with n samples: the prompt is computed once)
  std::string step_prefix = std::string(kStepForcingPrefix);
  RolloutParams rollout;
  std::optional<uint64_t> seed;
  int max_problems_in_flight = 16;

  void validate() const {
    rollout.validate("SamplerConfig");
    GENPRM_CHECK_ARG(n >= 1, "n must be >= 1, got {}", n);
    GENPRM_CHECK_ARG(max_problems_in_flight >= 1, "max_problems_in_flight must be >= 1, got {}",
                     max_problems_in_flight);
  }

  static auto fields() {
    using S = SamplerConfig;
    return std::make_tuple(field("n", &S::n), field("step_prefix", &S::step_prefix), field("rollout", &S::rollout),
                           field("seed", &S::seed), field("max_problems_in_flight", &S::max_problems_in_flight));
  }
};

/// Seed of one request: splitmix64 over (seed, problem key, step, batch).
inline uint64_t request_seed(uint64_t seed, uint64_t problem_key, int step, int batch) {
  return splitmix64(seed ^ (problem_key * 0x9E3779B97F4A7C15ull) ^ (uint64_t(uint32_t(step)) << 32) ^
                    uint64_t(uint32_t(batch)));
}

/// FNV-1a of a problem id: the problem's key in request seeds, so a row keeps its seeds whatever
/// else is labelled with it (a resumed run samples the same rollouts).
inline uint64_t problem_key(const std::string& id) { return fnv1a64(id); }

}  // namespace genprm::rpe
