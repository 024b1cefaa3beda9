// Pure RPE label math and step splitting: tables of expected values.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "genprm/rpe/labels.hpp"
#include "genprm/rpe/steps.hpp"

using namespace genprm;
using namespace genprm::rpe;

TEST_CASE("KRule: 128 below 0.1, 64 below 0.9, else 32; configurable") {
  KRule r;
  struct Row { double mc; int k; };
  for (Row row : {Row{0.0, 128}, Row{0.09375, 128}, Row{0.1, 64}, Row{0.5, 64}, Row{0.89, 64}, Row{0.9, 32},
                  Row{1.0, 32}}) {
    CAPTURE(row.mc);
    CHECK(r.k_for(row.mc) == row.k);
  }
  KRule c{0.25, 0.5, 16, 8, 4};
  CHECK(c.k_for(0.2) == 16);
  CHECK(c.k_for(0.25) == 8);
  CHECK(c.k_for(0.5) == 4);
  CHECK(c.k_max() == 16);
  CHECK(c.k_min() == 4);
  CHECK_THROWS_AS(r.k_for(1.5), ValueError);
  CHECK_THROWS_AS(r.k_for(-0.1), ValueError);
  CHECK_THROWS_AS((KRule{0.9, 0.1, 1, 1, 1}.validate()), ValueError);
  CHECK_THROWS_AS((KRule{0.1, 0.9, 0, 1, 1}.validate()), ValueError);
}

TEST_CASE("compute_labels: ratio, hard, difference labels and zero propagation") {
  // MC(s_1) = 0.5; the third step drops to zero, later raw estimates are ignored.
  auto l = compute_labels({0.5, 0.25, 0.0, 0.75, 1.0}, 0.5);
  REQUIRE(l.size() == 5);
  struct Row { double mc, prev, progress; int label, hard; double diff; int diff_label; bool propagated; };
  const Row expect[] = {
      {0.5, 0.5, 1.0, 1, 1, 0.0, 1, false},
      {0.25, 0.5, 0.5, 0, 1, -0.25, 0, false},
      {0.0, 0.25, 0.0, 0, 0, -0.25, 0, false},
      {0.0, 0.0, 0.0, 0, 0, 0.0, 1, true},  // 0/0 -> 0
      {0.0, 0.0, 0.0, 0, 0, 0.0, 1, true},
  };
  for (size_t i = 0; i < 5; ++i) {
    CAPTURE(i);
    CHECK(l[i].mc == expect[i].mc);
    CHECK(l[i].mc_prev == expect[i].prev);
    CHECK(l[i].progress == doctest::Approx(expect[i].progress));
    CHECK(int(l[i].label) == expect[i].label);
    CHECK(int(l[i].hard_label) == expect[i].hard);
    CHECK(l[i].difference == doctest::Approx(expect[i].diff));
    CHECK(int(l[i].difference_label) == expect[i].diff_label);
    CHECK(l[i].propagated == expect[i].propagated);
  }
}

TEST_CASE("compute_labels: epsilon is inclusive and configurable; progress above 1") {
  // 0.5 / 0.625 = 0.8 exactly as a double.
  CHECK(compute_labels({0.5}, 0.625)[0].label);
  CHECK_FALSE(compute_labels({0.5}, 0.625, LabelConfig{0.85, 0.0})[0].label);
  CHECK(compute_labels({0.5}, 0.625, LabelConfig{0.5, 0.0})[0].label);
  auto up = compute_labels({0.75, 1.0}, 0.25);
  CHECK(up[0].progress == doctest::Approx(3.0));
  CHECK(up[1].progress == doctest::Approx(4.0 / 3.0));
  CHECK(up[0].label);
  // difference_epsilon
  CHECK_FALSE(compute_labels({0.25}, 0.5)[0].difference_label);
  CHECK(compute_labels({0.25}, 0.5, LabelConfig{0.8, -0.25})[0].difference_label);
}

TEST_CASE("compute_labels: the 0/0 and x/0 cases") {
  auto a = compute_labels({0.0, 0.5}, 0.0);  // unsolved problem, first step fails
  CHECK(a[0].progress == 0.0);
  CHECK_FALSE(a[0].label);
  CHECK(a[1].mc == 0.0);  // propagated
  CHECK(a[1].propagated);
  CHECK_FALSE(a[1].label);
  auto b = compute_labels({0.25, 0.5}, 0.0);  // the first step makes it solvable
  CHECK(std::isinf(b[0].progress));
  CHECK(b[0].progress > 0);
  CHECK(b[0].label);
  CHECK(b[0].hard_label);
  CHECK(b[0].difference == 0.25);
  CHECK(b[1].progress == doctest::Approx(2.0));
  CHECK(progress_ratio(0.0, 0.0) == 0.0);
  CHECK(progress_ratio(0.5, 0.0) == std::numeric_limits<double>::infinity());
}

TEST_CASE("compute_labels: invalid input names the argument") {
  auto msg = [](auto f) {
    try {
      f();
    } catch (const ValueError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(msg([] { compute_labels({}, 0.5); }).find("mc") != std::string::npos);
  CHECK(msg([] { compute_labels({1.5}, 0.5); }).find("mc[0]") != std::string::npos);
  CHECK(msg([] { compute_labels({0.5, std::nan("")}, 0.5); }).find("mc[1]") != std::string::npos);
  CHECK(msg([] { compute_labels({0.5}, -0.1); }).find("mc_first") != std::string::npos);
  CHECK(msg([] { compute_labels({0.5}, 0.5, LabelConfig{0.0, 0.0}); }).find("epsilon") != std::string::npos);
  CHECK(msg([] { compute_labels({0.5}, 0.5, LabelConfig{1.5, 0.0}); }).find("epsilon") != std::string::npos);
  CHECK(msg([] { compute_labels({0.5}, 0.5, LabelConfig{0.8, 2.0}); }).find("difference_epsilon") != std::string::npos);
  CHECK_NOTHROW(compute_labels({0.5}, 0.5, LabelConfig{1.0, 0.0}));
}

TEST_CASE("split_steps / join_steps: byte-identical prefixes") {
  const std::vector<std::string> texts = {
      "Step 1: a = 2.\nStep 2: b = a + 1 = 3.\nStep 3: The answer is \\boxed{3}.",
      "Step 1: a\nb\nStep 2: c\n\nStep 3: d\n",
      "Step 1: no delimiter here",
      "",
      "\nStep 1: starts with the delimiter",
      "Step 1: x\nStep 2: \nStep 3: y",  // an (almost) empty step
      "Step 1: x\nStep2 is not a header\nstep 3 neither",
  };
  for (const auto& s : texts) {
    CAPTURE(s);
    auto steps = split_steps(s);
    REQUIRE_FALSE(steps.empty());
    CHECK(join_steps(steps) == s);
    size_t end = 0;
    for (size_t t = 1; t <= steps.size(); ++t) {
      // the prefix through step t is the original up to the next "\nStep " (or the end)
      const size_t next = t < steps.size() ? s.find("\nStep ", end) : s.size();
      CHECK(join_steps(steps, long(t)) == s.substr(0, next));
      end = next + 1;
    }
  }
  auto st = split_steps(texts[1]);
  REQUIRE(st.size() == 3);
  CHECK(st[0] == "Step 1: a\nb");
  CHECK(st[1] == "Step 2: c\n");
  CHECK(st[2] == "Step 3: d\n");
  CHECK(split_steps(texts[6]).size() == 1);
  CHECK(join_steps(st, 0) == "");
  CHECK_THROWS_AS(join_steps(st, 4), ValueError);
  CHECK(forced_solution("a\nStep 2: b") == "Step 1: a\nStep 2: b");
}

TEST_CASE("rollout_prefix: the reference's form of a step's rollout prompt") {
  // A solution as the policy writes it: the prefix of step t is its own text through the header
  // of step t+1, and step t's prefix is a prefix of step t+1's (their KV is shared).
  const std::string s = "Step 1: 17 + 25 = 42\n\nStep 2: 42 * 3 = 126\n\nStep 3: 126 - 8 = 118. \\boxed{118}";
  const auto steps = split_steps(s);
  REQUIRE(steps.size() == 3);
  CHECK(rollout_prefix(steps, 1) == "Step 1: 17 + 25 = 42\n\nStep 2: ");
  CHECK(rollout_prefix(steps, 2) == "Step 1: 17 + 25 = 42\n\nStep 2: 42 * 3 = 126\n\nStep 3: ");
  CHECK(s.rfind(rollout_prefix(steps, 2), 0) == 0);
  // Other layouts are normalised as the reference does: steps trimmed, joined by a blank line,
  // one space after a later step's header colon; the next header is numbered by position.
  const std::vector<std::string> odd = {"  Step 1: a \n", "Step 2:b\n\n\n", "Step 7:   c  "};
  CHECK(rollout_prefix(odd, 1) == "Step 1: a\n\nStep 2: ");
  CHECK(rollout_prefix(odd, 2) == "Step 1: a\n\nStep 2: b\n\nStep 3: ");
  CHECK(rollout_prefix(odd, 3) == "Step 1: a\n\nStep 2: b\n\nStep 7: c\n\nStep 4: ");
  CHECK(rollout_prefix({"Step 1: x", "no header here "}, 2) == "Step 1: x\n\nno header here\n\nStep 3: ");
  CHECK_THROWS_AS(rollout_prefix(odd, 0), ValueError);
  CHECK_THROWS_AS(rollout_prefix(odd, 4), ValueError);
}
