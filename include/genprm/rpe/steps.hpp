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

/// A forced solution: the policy's completion after `prefix` (kStepForcingPrefix), whole.
inline std::string forced_solution(std::string_view completion, std::string_view prefix = kStepForcingPrefix) {
  std::string s(prefix);
  s += completion;
  return s;
}

}  // namespace genprm::rpe
