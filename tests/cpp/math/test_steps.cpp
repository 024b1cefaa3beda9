// genprm::math step splitting (math/steps.hpp): the three delimiter rules, Python's whitespace.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "genprm/math/steps.hpp"

using namespace genprm::math;
using Steps = std::vector<std::string>;

TEST_CASE("StepHeaders: cut before every \\nStep, byte-preserving") {
  const Steps texts = {
      "Step 1: a = 2.\nStep 2: b = a + 1 = 3.\nStep 3: The answer is \\boxed{3}.",
      "Step 1: a\nb\nStep 2: c\n\nStep 3: d\n",
      "",
      "\nStep 1: starts with the delimiter",
      "Step 1: x\nStep \nStep 3: y",
      "Step 1: x\nStep2 is not a header\nstep 3 neither",
  };
  for (const auto& s : texts) {
    CAPTURE(s);
    const Steps steps = split_step_headers(s);
    REQUIRE_FALSE(steps.empty());
    CHECK(join_step_headers(steps) == s);
    CHECK(split_steps(s, StepRule::StepHeaders) == steps);
  }
  CHECK(split_step_headers(texts[1]) == Steps{"Step 1: a\nb", "Step 2: c\n", "Step 3: d\n"});
  CHECK(split_step_headers("") == Steps{""});
  CHECK(split_step_headers(texts[3]) == Steps{"", "Step 1: starts with the delimiter"});
  CHECK(split_step_headers(texts[4]) == Steps{"Step 1: x", "Step ", "Step 3: y"});
  CHECK(split_step_headers(texts[5]).size() == 1);
  CHECK(join_step_headers(split_step_headers(texts[1]), 2) == "Step 1: a\nb\nStep 2: c\n");
  CHECK_THROWS_AS(join_step_headers({"a"}, 2), genprm::ValueError);
  CHECK_THROWS_AS(split_steps("x", StepRule::StepHeaders, Steps{"\n"}), genprm::ValueError);
}

TEST_CASE("Paragraphs: cut at \\n\\n, blank pieces dropped, pieces kept as written") {
  CHECK(split_paragraphs("a\n\nb\n\n\n\n c \n\n") == Steps{"a", "b", " c "});
  CHECK(split_paragraphs("a\n\n\nb") == Steps{"a", "\nb"});
  CHECK(split_paragraphs("") == Steps{});
  CHECK(split_paragraphs(" \t\r\n\n\n\xc2\xa0") == Steps{});
  CHECK(split_paragraphs("Step 1: a\nStep 2: b") == Steps{"Step 1: a\nStep 2: b"});
  CHECK(split_paragraphs("a--b----c", "--") == Steps{"a", "b", "c"});
  CHECK(split_steps("a\n\nb", StepRule::Paragraphs) == Steps{"a", "b"});
  CHECK(split_steps("a;b", StepRule::Paragraphs, Steps{";"}) == Steps{"a", "b"});
  CHECK_THROWS_AS(split_paragraphs("a", ""), genprm::ValueError);
  CHECK_THROWS_AS(split_steps("a", StepRule::Paragraphs, Steps{";", ","}), genprm::ValueError);
}

TEST_CASE("Delimiters: beam-search steps of a whole solution") {
  CHECK(default_step_delimiters() == Steps{"\n\n", "\nStep "});
  CHECK(split_at_delimiters("a\n\nb\nStep 2: c\n\n\n") == Steps{"a", "b", "Step 2: c"});
  CHECK(split_at_delimiters("Step 1: x\nStep 2: y\n\nz") == Steps{"Step 1: x", "Step 2: y", "z"});
  CHECK(split_at_delimiters("") == Steps{""});
  CHECK(split_at_delimiters(" \n\n \n") == Steps{""});
  CHECK(split_at_delimiters("  a  \n\n\tb\xe3\x80\x80") == Steps{"a", "b"});
  // a delimiter's text after its leading newlines starts the next step, unless it is blank
  CHECK(split_at_delimiters("x the y the z", {" the"}) == Steps{"x", "the y", "the z"});
  CHECK(split_at_delimiters("x\n \ny", {"\n \n"}) == Steps{"x", "y"});
  CHECK(split_at_delimiters("a\n\nb", {}) == Steps{"a\n\nb"});
  CHECK(split_steps("a\n\nb", StepRule::Delimiters, Steps{}) == Steps{"a\n\nb"});
  CHECK(split_steps("a\n\nb\nStep 2", StepRule::Delimiters) == Steps{"a", "b", "Step 2"});
  CHECK_THROWS_AS(split_at_delimiters("a", {"\n\n", ""}), genprm::ValueError);
}

TEST_CASE("whitespace is Python's str.isspace()") {
  CHECK(strip_space(" \t\n\v\f\r\x1c\x1d\x1e\x1f" "a b" "\xc2\x85\xc2\xa0\xe1\x9a\x80\xe2\x80\x80\xe2\x80\x8a") == "a b");
  CHECK(strip_space("\xe2\x80\xa8\xe2\x80\xa9\xe2\x80\xaf\xe2\x81\x9f\xe3\x80\x80x") == "x");
  CHECK(strip_space("\xe2\x80\x8b" "x") == "\xe2\x80\x8b" "x");  // U+200B ZERO WIDTH SPACE is not
  CHECK(strip_space("x\xc2") == "x\xc2");                        // a cut UTF-8 sequence is not
  CHECK(is_blank(""));
  CHECK(is_blank("\xc2\xa0\n"));
  CHECK_FALSE(is_blank("\xc2\xa1"));
  CHECK(parse_step_rule("step_headers") == StepRule::StepHeaders);
  CHECK(parse_step_rule(step_rule_name(StepRule::Paragraphs)) == StepRule::Paragraphs);
  CHECK(parse_step_rule("delimiters") == StepRule::Delimiters);
  CHECK_THROWS_AS(parse_step_rule("lines"), genprm::ValueError);
}
