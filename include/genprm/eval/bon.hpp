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
// wrong. A vote is correct when its winning group's representative (first member) is correct.
// Tie-breaking as in search/select.hpp (lower candidate index / earlier group wins). Accuracies
// are in percent over all problems.
#include <cmath>
#include <cstddef>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "genprm/math/grade.hpp"
#include "genprm/search/score.hpp"
#include "genprm/search/select.hpp"
#include "genprm/util/error.hpp"

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
};

struct BonReport {
  std::vector<std::string> methods;  ///< in reporting order
  std::vector<BonPoint> points;      ///< one per size, in the order given
  size_t problems = 0;
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
    std::vector<char> correct(N, 0);
    std::vector<std::vector<double>> scores(std::size(search::kAggregations), std::vector<double>(N));
    for (size_t i = 0; i < N; ++i) {
      const auto& c = prob.candidates[i];
      answers[i] = c.answer;
      correct[i] = !search::is_missing(c.answer) &&
                   math::compare(*c.answer, prob.ground_truth) == math::Verdict::Equal;
      for (size_t a = 0; a < std::size(search::kAggregations); ++a)
        scores[a][i] = search::aggregate(c.rewards, search::kAggregations[a]);
    }
    // Groups of the first n candidates are those of all N restricted to them (select.hpp).
    const search::AnswerGroups groups = search::group_answers(answers);
    for (size_t k = 0; k < sizes.size(); ++k) {
      const size_t n = static_cast<size_t>(sizes[k]);
      auto& hits = rep.points[k].hits;
      for (size_t a = 0; a < std::size(search::kAggregations); ++a) {
        std::vector<double> head(scores[a].begin(), scores[a].begin() + static_cast<long>(n));
        hits[std::string("bon_") + search::aggregation_name(search::kAggregations[a])] +=
            correct[search::best_of_n(head)];
      }
      // votes over the first n: weight per group, winner = max weight, earliest group on ties
      auto vote_correct = [&](const std::vector<double>* w) {
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
        return best >= 0 && correct[groups.members[static_cast<size_t>(best)].front()];
      };
      hits["majority"] += vote_correct(nullptr);
      for (size_t a = 0; a < std::size(search::kAggregations); ++a)
        hits[std::string("weighted_") + search::aggregation_name(search::kAggregations[a])] +=
            vote_correct(&scores[a]);
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
