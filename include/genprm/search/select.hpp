#pragma once
// Selection among N candidate solutions (docs/design.md "Policy test-time scaling"): Best-of-N by
// score, majority vote over final answers, PRM-weighted majority vote. Torch-free; may include
// util and math.
//
// Answer groups: candidates are taken in index order; a candidate joins the first existing group
// whose representative (its first member) the project's grader calls equivalent in either
// direction (math::compare(a, rep) or compare(rep, a) == Equal: "1/2", "\frac{1}{2}", "0.5" form
// one group), else it opens a new group. So grouping the first n candidates gives the same groups
// as grouping all of them and keeping the first n (what BoN curves rely on). A missing answer
// (nullopt, or only whitespace) joins no group.
//
// Tie-breaking, everywhere: the higher score / vote weight wins; on a tie the lower candidate
// index (for groups: the group whose first member has the lower index) wins. NaN scores rank
// below every number in best_of_n and add nothing to a weighted vote. A missing answer never wins
// a vote while any candidate has an answer; when none has one, the vote returns answer = nullopt.
#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "genprm/math/grade.hpp"
#include "genprm/util/error.hpp"

namespace genprm::search {

using Answer = std::optional<std::string>;

inline bool is_missing(const Answer& a) {
  if (!a) return true;
  for (char c : *a)
    if (!(c == ' ' || c == '\t' || c == '\n' || c == '\r')) return false;
  return true;
}

/// True when the grader calls `a` and `b` the same answer (in either direction).
inline bool same_answer(const std::string& a, const std::string& b) {
  if (a == b) return true;
  return math::compare(a, b) == math::Verdict::Equal || math::compare(b, a) == math::Verdict::Equal;
}

struct AnswerGroups {
  std::vector<int> group_of;                 ///< per candidate: its group, -1 for a missing answer
  std::vector<std::vector<size_t>> members;  ///< per group: candidate indices, ascending
};

/// Groups answers by equivalence (see the header comment). O(candidates x groups) comparisons.
inline AnswerGroups group_answers(const std::vector<Answer>& answers) {
  AnswerGroups g;
  g.group_of.assign(answers.size(), -1);
  for (size_t i = 0; i < answers.size(); ++i) {
    if (is_missing(answers[i])) continue;
    const std::string& a = *answers[i];
    int found = -1;
    for (size_t k = 0; k < g.members.size() && found < 0; ++k)
      if (a == *answers[g.members[k].front()]) found = static_cast<int>(k);  // cheap exact pass
    for (size_t k = 0; k < g.members.size() && found < 0; ++k)
      if (same_answer(a, *answers[g.members[k].front()])) found = static_cast<int>(k);
    if (found < 0) {
      found = static_cast<int>(g.members.size());
      g.members.emplace_back();
    }
    g.group_of[i] = found;
    g.members[static_cast<size_t>(found)].push_back(i);
  }
  return g;
}

/// Index of the highest score (lowest index on ties; NaN ranks lowest). Throws ValueError for an
/// empty list.
inline size_t best_of_n(const std::vector<double>& scores) {
  GENPRM_CHECK_ARG(!scores.empty(), "best_of_n: scores is empty (need at least one candidate)");
  size_t best = 0;
  for (size_t i = 1; i < scores.size(); ++i) {
    const double s = scores[i], b = scores[best];
    if (!std::isnan(s) && (std::isnan(b) || s > b)) best = i;
  }
  return best;
}

struct VoteResult {
  Answer answer;               ///< the winning group's representative; nullopt when no answer exists
  size_t index = 0;            ///< candidate index of that representative (0 when no answer exists)
  int group = -1;              ///< winning group, -1 when no candidate has an answer
  double weight = 0.0;         ///< its votes (majority) or summed scores (weighted)
  AnswerGroups groups;         ///< all groups
  std::vector<double> weights; ///< per group
};

namespace detail {
inline VoteResult vote(const std::vector<Answer>& answers, const std::vector<double>* scores) {
  VoteResult r;
  r.groups = group_answers(answers);
  r.weights.assign(r.groups.members.size(), 0.0);
  for (size_t i = 0; i < answers.size(); ++i) {
    const int g = r.groups.group_of[i];
    if (g < 0) continue;
    const double w = scores ? (*scores)[i] : 1.0;
    if (!std::isnan(w)) r.weights[static_cast<size_t>(g)] += w;
  }
  for (size_t k = 0; k < r.weights.size(); ++k) {
    if (r.group < 0 || r.weights[k] > r.weight) {  // strict: earlier group wins ties
      r.group = static_cast<int>(k);
      r.weight = r.weights[k];
    }
  }
  if (r.group >= 0) {
    r.index = r.groups.members[static_cast<size_t>(r.group)].front();
    r.answer = answers[r.index];
  }
  return r;
}
}  // namespace detail

/// Majority vote over final answers (equivalent answers grouped). Throws ValueError when empty.
inline VoteResult majority_vote(const std::vector<Answer>& answers) {
  GENPRM_CHECK_ARG(!answers.empty(), "majority_vote: answers is empty (need at least one candidate)");
  return detail::vote(answers, nullptr);
}

/// PRM-weighted majority vote: the group with the largest sum of scores wins. Throws ValueError
/// when empty or when answers and scores differ in length.
inline VoteResult weighted_vote(const std::vector<Answer>& answers, const std::vector<double>& scores) {
  GENPRM_CHECK_ARG(!answers.empty(), "weighted_vote: answers is empty (need at least one candidate)");
  GENPRM_CHECK_ARG(answers.size() == scores.size(), "weighted_vote: {} answers but {} scores", answers.size(),
                   scores.size());
  return detail::vote(answers, &scores);
}

}  // namespace genprm::search
