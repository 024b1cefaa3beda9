#pragma once
// Grading a rollout or a solution against the ground truth: the final answer is extracted with
// math::extract_answer (last \boxed{}, answer phrases, last number) and compared with a Grader.
//
// Grader concept: a callable `(std::string_view predicted, std::string_view reference)` returning
// math::Verdict (Equal counts as correct; NotEqual and Unknown do not) or bool. MathGrader, the
// default, is math::compare.
#include <string_view>
#include <type_traits>

#include "genprm/math/extract.hpp"
#include "genprm/math/grade.hpp"

namespace genprm::rpe {

struct MathGrader {
  math::Verdict operator()(std::string_view predicted, std::string_view reference) const {
    return math::compare(predicted, reference);
  }
};

/// Whether `predicted` states `reference` according to `grader` (Verdict::Equal or true).
template <typename Grader>
bool grade_answer(const Grader& grader, std::string_view predicted, std::string_view reference) {
  using R = std::decay_t<decltype(grader(predicted, reference))>;
  if constexpr (std::is_same_v<R, bool>) {
    return grader(predicted, reference);
  } else {
    static_assert(std::is_same_v<R, math::Verdict>, "a Grader returns math::Verdict or bool");
    return grader(predicted, reference) == math::Verdict::Equal;
  }
}

/// Whether the final answer of `solution_text` equals `reference`; false when none is found.
template <typename Grader = MathGrader>
bool solution_correct(std::string_view solution_text, std::string_view reference, const Grader& grader = {}) {
  auto ex = math::extract_answer(solution_text);
  return ex.has_value() && grade_answer(grader, ex->answer, reference);
}

}  // namespace genprm::rpe
