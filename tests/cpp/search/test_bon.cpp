#include <doctest/doctest.h>

#include "genprm/eval/bon.hpp"

using namespace genprm;
using eval::BonCandidate;
using eval::BonProblem;

TEST_CASE("best_of_n metrics on a hand-computed example") {
  // Problem A (ground truth 1/2):
  //   c0 \frac{1}{2} [0.9, 0.2]  last .2  min .2  avg .55   prod .18    correct
  //   c1 1/3         [0.6, 0.6]  last .6  min .6  avg .6    prod .36    wrong
  //   c2 1/2         [0.3, 0.95] last .95 min .3  avg .625  prod .285   correct
  //   c3 (missing)   [0.1]       .1 everywhere                          wrong
  // Problem B (ground truth 3): c0 "4" [.8], c1 "3" [.7], c2 "3.0" [.4], c3 "4" [.2]
  std::vector<BonProblem> probs = {
      {"A", "1/2", {{"\\frac{1}{2}", {0.9, 0.2}}, {"1/3", {0.6, 0.6}}, {"1/2", {0.3, 0.95}}, {std::nullopt, {0.1}}}},
      {"B", "3", {{"4", {0.8}}, {"3", {0.7}}, {"3.0", {0.4}}, {"4", {0.2}}}},
  };
  auto rep = eval::score_best_of_n(probs, {1, 2, 4});
  CHECK(rep.problems == 2);
  CHECK(rep.methods == std::vector<std::string>{"bon_last", "bon_min", "bon_avg", "bon_prod", "majority",
                                                "weighted_last", "weighted_min", "weighted_avg", "weighted_prod",
                                                "pass"});
  REQUIRE(rep.points.size() == 3);
  // n = 1: only c0; A right, B wrong, everywhere
  CHECK(rep.points[0].n == 1);
  for (const auto& m : rep.methods) CHECK_MESSAGE(rep.points[0].accuracy.at(m) == 50.0, m);
  // n = 2: A picks c1 by every score, majority tie -> first group (c0, right), B wrong except pass
  const std::map<std::string, double> n2 = {{"bon_last", 0},      {"bon_min", 0},      {"bon_avg", 0},
                                            {"bon_prod", 0},      {"majority", 50},    {"weighted_last", 0},
                                            {"weighted_min", 0},  {"weighted_avg", 0}, {"weighted_prod", 0},
                                            {"pass", 100}};
  CHECK(rep.points[1].accuracy == n2);
  // n = 4: A: last -> c2, min -> c1, avg -> c2, prod -> c1; majority {c0,c2}; weighted: min .5 < .6.
  //        B: every score picks c0 ("4"); majority 2-2 tie -> "4"; weighted 1.0 vs 1.1 -> "3".
  const std::map<std::string, double> n4 = {{"bon_last", 50},       {"bon_min", 0},        {"bon_avg", 50},
                                            {"bon_prod", 0},        {"majority", 50},      {"weighted_last", 100},
                                            {"weighted_min", 50},   {"weighted_avg", 100}, {"weighted_prod", 100},
                                            {"pass", 100}};
  CHECK(rep.points[2].accuracy == n4);
  CHECK(rep.points[2].hits.at("weighted_min") == 1);
}

TEST_CASE("best_of_n metrics: errors name the problem or the size") {
  std::vector<BonProblem> probs = {{"p0", "1", {{"1", {0.5}}}}, {"short", "2", {}}};
  CHECK_THROWS_WITH_AS(eval::score_best_of_n(probs, {1}), doctest::Contains("'short'"), ValueError);
  CHECK_THROWS_AS(eval::score_best_of_n({}, {1}), ValueError);
  CHECK_THROWS_AS(eval::score_best_of_n({probs[0]}, {}), ValueError);
  CHECK_THROWS_WITH_AS(eval::score_best_of_n({probs[0]}, {0}), doctest::Contains("sizes"), ValueError);
  CHECK_THROWS_WITH_AS(eval::score_best_of_n({probs[0]}, {2}), doctest::Contains("fewer than size 2"), ValueError);
}
