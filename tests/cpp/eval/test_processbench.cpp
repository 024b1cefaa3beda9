#include <doctest/doctest.h>

#include "genprm/eval/processbench.hpp"

using genprm::eval::ProcessBenchRow;
using genprm::eval::first_step_below;
using genprm::eval::score_processbench;

TEST_CASE("first_step_below: table of rewards, thresholds and predictions") {
  struct Case {
    std::vector<double> rewards;
    double threshold;
    int expected;
  };
  const Case cases[] = {
      {{0.9, 0.8, 0.7}, 0.5, -1}, {{0.9, 0.4, 0.1}, 0.5, 1}, {{0.2}, 0.5, 0},
      {{0.5, 0.5}, 0.5, -1},      {{0.5, 0.49}, 0.5, 1},     {{}, 0.5, -1},
      {{0.9, 0.8, 0.7}, 0.75, 2},
  };
  for (const auto& c : cases) CHECK(first_step_below(c.rewards, c.threshold) == c.expected);
}

TEST_CASE("score_processbench: accuracies, F1 as a harmonic mean, per subset and averaged") {
  std::vector<ProcessBenchRow> rows = {
      // gsm8k: 2 erroneous rows (1 hit: predicted 1 == label 1; miss: predicted -1 != 0),
      //        2 correct rows (both predicted -1) -> acc_error 50, acc_correct 100, F1 66.67
      {"gsm8k", 1, {0.9, 0.2, 0.1}},
      {"gsm8k", 0, {0.9, 0.9}},
      {"gsm8k", -1, {0.8, 0.7}},
      {"gsm8k", -1, {0.6}},
      // math: 1 erroneous row predicted too early, 1 correct row predicted wrong -> F1 0
      {"math", 2, {0.1, 0.9, 0.9}},
      {"math", -1, {0.9, 0.3}},
      // omnimath: only erroneous rows -> acc_correct and F1 undefined, not averaged
      {"omnimath", 0, {0.1}},
  };
  auto report = score_processbench(rows, 0.5);
  REQUIRE(report.subsets.size() == 3);
  const auto& g = report.subsets[0];
  CHECK(g.subset == "gsm8k");
  CHECK(g.error_rows == 2);
  CHECK(g.error_hits == 1);
  CHECK(*g.acc_error == doctest::Approx(50.0));
  CHECK(*g.acc_correct == doctest::Approx(100.0));
  CHECK(*g.f1 == doctest::Approx(2.0 * 50 * 100 / 150));
  const auto& m = report.subsets[1];
  CHECK(*m.acc_error == doctest::Approx(0.0));
  CHECK(*m.acc_correct == doctest::Approx(0.0));
  CHECK(*m.f1 == doctest::Approx(0.0));
  const auto& o = report.subsets[2];
  CHECK(*o.acc_error == doctest::Approx(100.0));
  CHECK_FALSE(o.acc_correct.has_value());
  CHECK_FALSE(o.f1.has_value());
  REQUIRE(report.average_f1.has_value());
  CHECK(*report.average_f1 == doctest::Approx((2.0 * 50 * 100 / 150 + 0.0) / 2));
  // A higher threshold turns the second gsm8k correct row (0.6) into a prediction of step 0.
  auto strict = score_processbench(rows, 0.65);
  CHECK(*strict.subsets[0].acc_correct == doctest::Approx(50.0));
}

TEST_CASE("score_processbench rejects a label outside the steps, naming the row") {
  std::vector<ProcessBenchRow> rows = {{"gsm8k", 3, {0.9, 0.9}}};
  CHECK_THROWS_WITH_AS(score_processbench(rows), doctest::Contains("processbench row 0"),
                       genprm::ValueError);
  CHECK_FALSE(score_processbench({}).average_f1.has_value());
}
