#pragma once
// Selection among N candidate solutions (docs/design.md "Policy test-time scaling"): Best-of-N by
// score, majority vote over final answers, PRM-weighted majority vote, and all the picks of one
// problem at once (`pick_candidates`: what eval/bon.hpp's curves and search/best_of_n.hpp's
// driver both report). Torch-free; may include util, math and score.hpp.
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
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "genprm/math/grade.hpp"
#include "genprm/search/score.hpp"
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

/// True when `answer` is present and the grader calls it equal to `truth` (math::is_equiv).
inline bool answer_correct(const Answer& answer, const std::string& truth) {
  return !is_missing(answer) && math::is_equiv(*answer, truth);
}

inline constexpr size_t kAggregationCount = std::size(kAggregations);

/// The picks among the first `n` candidates of one problem (indices into the candidates).
struct Picks {
  size_t bon[kAggregationCount] = {};                 ///< per kAggregations: best_of_n of its scores
  std::optional<size_t> majority;                     ///< the majority vote's representative
  std::optional<size_t> weighted[kAggregationCount];  ///< per kAggregations: the weighted vote's
};

/// Per candidate, its score under every aggregation: scores[a][i] = aggregate(rewards[i], a).
inline std::vector<std::vector<double>> aggregation_scores(const std::vector<std::vector<double>>& rewards) {
  std::vector<std::vector<double>> scores(kAggregationCount, std::vector<double>(rewards.size()));
  for (size_t a = 0; a < kAggregationCount; ++a)
    for (size_t i = 0; i < rewards.size(); ++i) scores[a][i] = aggregate(rewards[i], kAggregations[a]);
  return scores;
}

/// Best-of-N under every aggregation, the majority vote and the weighted votes over the first `n`
/// candidates, given `groups` = group_answers of all (grouping the first n alone gives the same
/// groups, see the header comment) and `scores` = aggregation_scores. A vote is nullopt when none
/// of the n has an answer. Ties as everywhere here.
inline Picks pick_candidates(const AnswerGroups& groups, const std::vector<std::vector<double>>& scores, size_t n) {
  GENPRM_CHECK_ARG(n >= 1 && n <= groups.group_of.size(), "pick_candidates: n = {} for {} candidates", n,
                   groups.group_of.size());
  Picks p;
  auto vote = [&](const std::vector<double>* w) -> std::optional<size_t> {
    std::vector<double> weight(groups.members.size(), 0.0);
    std::vector<char> present(groups.members.size(), 0);
    for (size_t i = 0; i < n; ++i) {
      const int g = groups.group_of[i];
      if (g < 0) continue;
      present[static_cast<size_t>(g)] = 1;
      const double v = w ? (*w)[i] : 1.0;
      if (!std::isnan(v)) weight[static_cast<size_t>(g)] += v;
    }
    int best = -1;
    for (size_t g = 0; g < weight.size(); ++g)
      if (present[g] && (best < 0 || weight[g] > weight[static_cast<size_t>(best)])) best = static_cast<int>(g);
    if (best < 0) return std::nullopt;
    return groups.members[static_cast<size_t>(best)].front();
  };
  for (size_t a = 0; a < kAggregationCount; ++a) {
    p.bon[a] = best_of_n(std::vector<double>(scores[a].begin(), scores[a].begin() + static_cast<long>(n)));
    p.weighted[a] = vote(&scores[a]);
  }
  p.majority = vote(nullptr);
  return p;
}

}  // namespace genprm::search
