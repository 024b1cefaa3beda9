#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "genprm/search/score.hpp"
#include "genprm/search/select.hpp"

using namespace genprm;
using search::Aggregation;
using search::aggregate;
using search::Answer;

TEST_CASE("aggregate: last, min, avg, prod as a table") {
  struct Row {
    std::vector<double> r;
    double last, min, avg, prod;
  };
  const Row rows[] = {
      {{0.5}, 0.5, 0.5, 0.5, 0.5},
      {{0.9, 0.2, 0.7}, 0.7, 0.2, 0.6, 0.9 * 0.2 * 0.7},
      {{1.0, 1.0}, 1.0, 1.0, 1.0, 1.0},
      {{0.25, 0.75}, 0.75, 0.25, 0.5, 0.1875},
  };
  for (const auto& row : rows) {
    CHECK(aggregate(row.r, Aggregation::Last) == doctest::Approx(row.last));
    CHECK(aggregate(row.r, Aggregation::Min) == doctest::Approx(row.min));
    CHECK(aggregate(row.r, Aggregation::Avg) == doctest::Approx(row.avg));
    CHECK(aggregate(row.r, Aggregation::Prod) == doctest::Approx(row.prod));
  }
}

TEST_CASE("aggregate: empty list scores 0 everywhere; NaN propagates through min") {
  for (auto a : search::kAggregations) CHECK(aggregate({}, a) == 0.0);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(std::isnan(aggregate({0.5, nan, 0.9}, Aggregation::Min)));
  CHECK(std::isnan(aggregate({nan, 0.5}, Aggregation::Min)));
}

TEST_CASE("parse_aggregation: names, aliases, unknown name is a ValueError naming it") {
  CHECK(search::parse_aggregation("last") == Aggregation::Last);
  CHECK(search::parse_aggregation("min") == Aggregation::Min);
  CHECK(search::parse_aggregation("avg") == Aggregation::Avg);
  CHECK(search::parse_aggregation("mean") == Aggregation::Avg);
  CHECK(search::parse_aggregation("prod") == Aggregation::Prod);
  for (auto a : search::kAggregations) CHECK(search::parse_aggregation(search::aggregation_name(a)) == a);
  try {
    search::parse_aggregation("median");
    FAIL("no error");
  } catch (const ValueError& e) {
    CHECK(std::string(e.what()).find("'median'") != std::string::npos);
    CHECK(std::string(e.what()).find("last, min, avg, prod") != std::string::npos);
  }
}

TEST_CASE("best_of_n: argmax, lower index on ties, NaN ranks lowest, empty is an error") {
  CHECK(search::best_of_n({0.1, 0.9, 0.3}) == 1);
  CHECK(search::best_of_n({0.4, 0.9, 0.9}) == 1);
  CHECK(search::best_of_n({0.7}) == 0);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(search::best_of_n({nan, 0.2, nan}) == 1);
  CHECK(search::best_of_n({nan, nan}) == 0);
  CHECK_THROWS_AS(search::best_of_n({}), ValueError);
}

TEST_CASE("group_answers: equivalent answers form one group, missing answers none") {
  std::vector<Answer> a = {"1/2", "\\frac{1}{2}", "3", std::nullopt, "0.5", "  ", "\\dfrac12", "3.0", "x"};
  auto g = search::group_answers(a);
  REQUIRE(g.members.size() == 3);
  CHECK(g.members[0] == std::vector<size_t>{0, 1, 4, 6});
  CHECK(g.members[1] == std::vector<size_t>{2, 7});
  CHECK(g.members[2] == std::vector<size_t>{8});
  CHECK(g.group_of == std::vector<int>{0, 0, 1, -1, 0, -1, 0, 1, 2});
  // grouping a prefix = grouping all and keeping the prefix
  std::vector<Answer> head(a.begin(), a.begin() + 5);
  auto gh = search::group_answers(head);
  CHECK(gh.group_of == std::vector<int>(g.group_of.begin(), g.group_of.begin() + 5));
}

TEST_CASE("majority_vote: equivalent answers pool their votes") {
  // "1/2" and "\frac{1}{2}" are 2 votes against 1 + 1 for the exact string "3"
  auto r = search::majority_vote({"3", "1/2", "\\frac{1}{2}", "4"});
  REQUIRE(r.answer);
  CHECK(*r.answer == "1/2");
  CHECK(r.index == 1);
  CHECK(r.weight == 2.0);
  CHECK(r.weights == std::vector<double>{1, 2, 1});
}

TEST_CASE("majority_vote: ties go to the group seen first; missing never wins while an answer exists") {
  auto r = search::majority_vote({"5", "7", "7", "5"});
  CHECK(*r.answer == "5");
  CHECK(r.index == 0);
  auto m = search::majority_vote({std::nullopt, std::nullopt, std::nullopt, "9"});
  REQUIRE(m.answer);
  CHECK(*m.answer == "9");
  CHECK(m.index == 3);
  auto none = search::majority_vote({std::nullopt, std::string("")});
  CHECK(!none.answer);
  CHECK(none.group == -1);
  CHECK_THROWS_AS(search::majority_vote({}), ValueError);
}

TEST_CASE("weighted_vote: summed scores per group decide, not counts") {
  // group "2" = "2", "2", "\frac{4}{2}" = 0.1 + 0.2 + 0.25 = 0.55 beats "7" (0.5) and "8" (0.5);
  // without "\frac{4}{2}" it has 0.3 and "8" (0.9) wins
  auto r = search::weighted_vote({"2", "7", "2", "8", "\\frac{4}{2}"}, {0.1, 0.5, 0.2, 0.5, 0.25});
  CHECK(*r.answer == "2");
  CHECK(r.weight == doctest::Approx(0.55));
  auto s = search::weighted_vote({"2", "7", "2", "8"}, {0.1, 0.5, 0.2, 0.9});
  CHECK(*s.answer == "8");
  CHECK(s.index == 3);
  // a missing answer with a high score still loses
  auto t = search::weighted_vote({std::nullopt, "1"}, {0.99, 0.01});
  CHECK(*t.answer == "1");
  // ties: earlier group
  auto u = search::weighted_vote({"a", "b"}, {0.5, 0.5});
  CHECK(*u.answer == "a");
  CHECK_THROWS_AS(search::weighted_vote({"1", "2"}, {0.5}), ValueError);
  CHECK_THROWS_AS(search::weighted_vote({}, {}), ValueError);
}
