#pragma once
// Step forcing and step splitting, as RPE's data generation does it: the policy answers with the
// assistant prefix `Step 1: ` already written, and its solution is split on `\nStep `.
//
// split_steps keeps every byte: step 1 is the text before the first `\nStep `, step k > 1 is
// `Step ...` up to the next `\nStep ` (the `\n` before a step header is the separator). So
//   join_steps(split_steps(s), t) == the original text up to the end of step t, byte for byte,
//   join_steps(split_steps(s)) == s,
// and the rollout prefix of step t is the solution as the policy wrote it, cut there. Text
// between steps (a blank line: `...\n\nStep 2`) stays at the end of the earlier step.
#include <string>
#include <string_view>
#include <vector>

#include "genprm/util/error.hpp"

namespace genprm::rpe {

/// The assistant prefix that forces the step format (written before the policy's first token).
inline constexpr std::string_view kStepForcingPrefix = "Step 1: ";
/// A step starts after this (the separator `\n` followed by the `Step ` header).
inline constexpr std::string_view kStepDelimiter = "\nStep ";
/// What join_steps puts between two steps (the `\n` of kStepDelimiter).
inline constexpr std::string_view kStepSeparator = "\n";

/// Splits a solution into steps on `\nStep ` (see the header comment). Never returns an empty
/// list: a text without the delimiter is one step (possibly empty).
inline std::vector<std::string> split_steps(std::string_view solution) {
  std::vector<std::string> steps;
  size_t start = 0;
  for (;;) {
    const size_t k = solution.find(kStepDelimiter, start);
    if (k == std::string_view::npos) {
      steps.emplace_back(solution.substr(start));
      return steps;
    }
    steps.emplace_back(solution.substr(start, k - start));
    start = k + kStepSeparator.size();  // the next step begins with "Step "
  }
}

/// The first `count` steps joined by `\n` (all of them when count < 0). Inverse of split_steps.
inline std::string join_steps(const std::vector<std::string>& steps, long count = -1) {
  GENPRM_CHECK_ARG(count <= static_cast<long>(steps.size()), "join_steps: count {} > {} steps", count, steps.size());
  const size_t n = count < 0 ? steps.size() : static_cast<size_t>(count);
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += kStepSeparator;
    out += steps[i];
  }
  return out;
}

/// A forced solution: the policy's completion after `prefix` (kStepForcingPrefix), whole.
inline std::string forced_solution(std::string_view completion, std::string_view prefix = kStepForcingPrefix) {
  std::string s(prefix);
  s += completion;
  return s;
}

}  // namespace genprm::rpe
