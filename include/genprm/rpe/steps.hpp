#pragma once
// Step forcing and step splitting, as RPE's data generation does it: the policy answers with the
// assistant prefix `Step 1: ` already written, and its solution is split on `\nStep ` by the
// project's one splitter, math/steps.hpp (StepRule::StepHeaders, byte-preserving):
//   join_steps(split_steps(s), t) == the original text up to the end of step t, byte for byte,
//   join_steps(split_steps(s)) == s,
// so the rollout prefix of step t is the solution as the policy wrote it, cut there.
#include <string>
#include <string_view>
#include <vector>

#include "genprm/math/steps.hpp"

namespace genprm::rpe {

/// The assistant prefix that forces the step format (written before the policy's first token).
inline constexpr std::string_view kStepForcingPrefix = "Step 1: ";
/// A step starts after this (the separator `\n` followed by the `Step ` header).
inline constexpr std::string_view kStepDelimiter = math::kStepHeader;
/// What join_steps puts between two steps (the `\n` of kStepDelimiter).
inline constexpr std::string_view kStepSeparator = math::kStepHeaderSeparator;

/// math::split_step_headers: never returns an empty list (a text without the delimiter is one step).
inline std::vector<std::string> split_steps(std::string_view solution) { return math::split_step_headers(solution); }

/// math::join_step_headers: the first `count` steps joined by `\n` (all when count < 0).
inline std::string join_steps(const std::vector<std::string>& steps, long count = -1) {
  return math::join_step_headers(steps, count);
}

/// The assistant text the rollouts of step t continue from (1 <= t <= steps.size()), in the form
/// the reference's RPE data generation builds it: steps 1..t, each trimmed (a later step's
/// `Step k:` header followed by exactly one space), joined by a blank line, then the next step's
/// header `Step t+1: `. The policy resumes right after a header, as in every solution it writes;
/// cutting the solution after the `\n` that ends step t would leave it continuing from a lone
/// newline, a token boundary its own solutions never have (`\n\n` is one token). For a
/// solution written with blank lines between steps and numbered headers this is its own text up
/// to and including the header of step t+1, so the prompt of step t is a prefix of step t+1's.
inline std::string rollout_prefix(const std::vector<std::string>& steps, long t) {
  GENPRM_CHECK_ARG(t >= 1 && t <= static_cast<long>(steps.size()), "rollout_prefix: step {} is not in [1, {}]", t,
                   steps.size());
  std::string out;
  for (size_t i = 0; i < static_cast<size_t>(t); ++i) {
    std::string_view s = math::strip_space(steps[i]);
    if (i > 0) {
      out += "\n\n";
      if (const size_t colon = s.find(':'); colon != std::string_view::npos) {
        out += s.substr(0, colon + 1);
        out += ' ';
        out += math::strip_space(s.substr(colon + 1));
        continue;
      }
    }
    out += s;
  }
  out += fmt::format("\n\nStep {}: ", t + 1);
  return out;
}

/// A forced solution: the policy's completion after `prefix` (kStepForcingPrefix), whole.
inline std::string forced_solution(std::string_view completion, std::string_view prefix = kStepForcingPrefix) {
  std::string s(prefix);
  s += completion;
  return s;
}

}  // namespace genprm::rpe
