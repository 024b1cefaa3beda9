#pragma once
// Best-of-N evaluation: the accuracy curves researchers report for policy test-time scaling.
// Torch-free. May include util, math and the torch-free selection headers of search/
// (score.hpp, select.hpp); never engine, prm or anything below.
//
// Input: per problem, N candidates (final answer, or nullopt when none was found; the step
// rewards a PRM gave it) and the ground truth. For each size n in `sizes`, using the FIRST n
// candidates of every problem:
//   bon_<agg>       BoN: the candidate with the highest aggregate(rewards, agg) (search/score.hpp:
//                   last, min, avg, prod) is correct;
//   majority        the majority-vote answer (equivalent answers grouped by the grader) is correct;
//   weighted_<agg>  the PRM-weighted vote (sum of aggregate scores per answer group) is correct;
//   pass            pass@n (oracle): some candidate among the n is correct.
// A candidate is correct when math::compare(answer, ground_truth) == Equal; a missing answer is
// wrong. The picks per size are search/select.hpp's pick_candidates (Best-of-N over a dataset,
// search/best_of_n.hpp, reports the same picks for all N). A vote is correct when its winning group's representative (first member) is correct.
// Tie-breaking as in search/select.hpp (lower candidate index / earlier group wins). Accuracies
// are in percent over all problems.
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "genprm/search/score.hpp"
#include "genprm/search/select.hpp"
#include "genprm/util/error.hpp"
#include "genprm/util/fields.hpp"

namespace genprm::eval {

struct BonCandidate {
  search::Answer answer;        ///< final answer; nullopt when none was found
  std::vector<double> rewards;  ///< step rewards (may be empty: scores 0, see score.hpp)
};

struct BonProblem {
  std::string id;
  std::string ground_truth;
  std::vector<BonCandidate> candidates;
};

struct BonPoint {
  int n = 0;
  std::map<std::string, double> accuracy;  ///< method -> percent
  std::map<std::string, size_t> hits;      ///< method -> problems solved

  static auto fields() {
    return std::make_tuple(field("n", &BonPoint::n), field("accuracy", &BonPoint::accuracy),
                           field("hits", &BonPoint::hits));
  }
};

struct BonReport {
  std::vector<std::string> methods;  ///< in reporting order
  std::vector<BonPoint> points;      ///< one per size, in the order given
  size_t problems = 0;

  static auto fields() {
    return std::make_tuple(field("methods", &BonReport::methods), field("points", &BonReport::points),
                           field("problems", &BonReport::problems));
  }
};

inline std::vector<std::string> bon_methods() {
  std::vector<std::string> m;
  for (auto a : search::kAggregations) m.push_back(std::string("bon_") + search::aggregation_name(a));
  m.push_back("majority");
  for (auto a : search::kAggregations) m.push_back(std::string("weighted_") + search::aggregation_name(a));
  m.push_back("pass");
  return m;
}

/// BoN accuracy curves (see the header comment). Throws ValueError for no problems, no sizes, a
/// size < 1, or a problem with fewer candidates than a size (naming the problem).
inline BonReport score_best_of_n(const std::vector<BonProblem>& problems, const std::vector<int>& sizes) {
  GENPRM_CHECK_ARG(!problems.empty(), "best_of_n: no problems given");
  GENPRM_CHECK_ARG(!sizes.empty(), "best_of_n: sizes is empty");
  for (int n : sizes) GENPRM_CHECK_ARG(n >= 1, "best_of_n: sizes must be >= 1, got {}", n);
  BonReport rep;
  rep.methods = bon_methods();
  rep.problems = problems.size();
  rep.points.resize(sizes.size());
  for (size_t k = 0; k < sizes.size(); ++k) {
    rep.points[k].n = sizes[k];
    for (const auto& m : rep.methods) rep.points[k].hits[m] = 0;
  }
  for (size_t p = 0; p < problems.size(); ++p) {
    const auto& prob = problems[p];
    const size_t N = prob.candidates.size();
    for (int n : sizes)
      GENPRM_CHECK_ARG(static_cast<size_t>(n) <= N, "best_of_n: problem {} ('{}') has {} candidates, fewer than size {}",
                       p, prob.id, N, n);
    std::vector<search::Answer> answers(N);
    std::vector<std::vector<double>> rewards(N);
    std::vector<char> correct(N, 0);
    for (size_t i = 0; i < N; ++i) {
      answers[i] = prob.candidates[i].answer;
      rewards[i] = prob.candidates[i].rewards;
      correct[i] = search::answer_correct(answers[i], prob.ground_truth);
    }
    const search::AnswerGroups groups = search::group_answers(answers);
    const auto scores = search::aggregation_scores(rewards);
    for (size_t k = 0; k < sizes.size(); ++k) {
      const size_t n = static_cast<size_t>(sizes[k]);
      const search::Picks picks = search::pick_candidates(groups, scores, n);
      auto& hits = rep.points[k].hits;
      auto hit = [&](const std::optional<size_t>& i) { return i && correct[*i]; };
      for (size_t a = 0; a < search::kAggregationCount; ++a) {
        const std::string name = search::aggregation_name(search::kAggregations[a]);
        hits["bon_" + name] += correct[picks.bon[a]];
        hits["weighted_" + name] += hit(picks.weighted[a]);
      }
      hits["majority"] += hit(picks.majority);
      bool any = false;
      for (size_t i = 0; i < n; ++i) any |= correct[i] != 0;
      hits["pass"] += any;
    }
  }
  for (auto& pt : rep.points)
    for (const auto& m : rep.methods) pt.accuracy[m] = 100.0 * static_cast<double>(pt.hits[m]) / problems.size();
  return rep;
}

}  // namespace genprm::eval
