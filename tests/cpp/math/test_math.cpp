// genprm::math: the labelled corpus (tests/data/math_equiv_cases.tsv), extraction rules,
// normalisation, exact rationals, and hostile inputs (deep nesting, huge numbers, 1 MB).
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "genprm/math/math.hpp"

using namespace genprm::math;

namespace {

struct Case {
  int line;
  std::string expected, prediction, reference;
};

/// Rows `expected <TAB> prediction <TAB> reference` of a file in tests/data ('#' lines are comments).
std::vector<Case> load_cases(const std::string& file) {
  std::ifstream in(std::string(GENPRM_TEST_DATA) + "/" + file);
  REQUIRE_MESSAGE(in.good(), "cannot open tests/data/" << file);
  std::vector<Case> cases;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cols;
    std::stringstream ss(line);
    std::string col;
    while (std::getline(ss, col, '\t')) cols.push_back(col);
    while (cols.size() < 3) cols.emplace_back();
    REQUIRE_MESSAGE(cols.size() == 3, "line " << n << " has " << cols.size() << " columns");
    cases.push_back({n, cols[0], cols[1], cols[2]});
  }
  return cases;
}

std::vector<Case> load_corpus() { return load_cases("math_equiv_cases.tsv"); }

}  // namespace

TEST_CASE("corpus: every labelled pair gets its verdict") {
  auto cases = load_corpus();
  CHECK(cases.size() >= 300);
  int equal = 0, not_equal = 0, unknown = 0, wrong = 0;
  for (const Case& c : cases) {
    REQUIRE((c.expected == "equal" || c.expected == "not_equal" || c.expected == "unknown"));
    std::string got = to_string(compare(c.prediction, c.reference));
    (c.expected == "equal" ? equal : c.expected == "not_equal" ? not_equal : unknown)++;
    if (got != c.expected) ++wrong;
    CHECK_MESSAGE(got == c.expected, "line " << c.line << ": compare(\"" << c.prediction << "\", \"" << c.reference
                                              << "\") = " << got << ", expected " << c.expected);
    CHECK(is_equiv(c.prediction, c.reference) == (c.expected == "equal"));
  }
  MESSAGE("corpus: " << cases.size() << " cases (" << equal << " equal, " << not_equal << " not_equal, " << unknown
                     << " unknown), " << wrong << " wrong");
  CHECK(equal >= 100);
  CHECK(not_equal >= 80);
}

TEST_CASE("corpus: equal pairs are symmetric (except one-sided rules)") {
  for (const Case& c : load_corpus()) {
    if (c.expected != "equal") continue;
    if (c.reference.empty() || c.prediction.empty()) continue;
    // Multiple-choice predictions may carry option text; a bare list against a tuple is lenient.
    Verdict back = compare(c.reference, c.prediction);
    if (back != Verdict::Equal) {
      bool one_sided = c.prediction.find('(') == 0 && c.prediction.size() > 3 && c.reference.size() <= 3;
      CHECK_MESSAGE((one_sided || back == Verdict::Equal),
                    "line " << c.line << ": reversed pair is " << std::string(to_string(back)));
    }
  }
}

TEST_CASE("extract_answer: rules and which fired") {
  struct Row {
    std::string text, answer, rule;
  };
  const std::vector<Row> rows = {
      {"so the answer is $\\boxed{5}$.", "5", "boxed"},
      {"first \\boxed{1} then \\boxed{2}", "2", "boxed"},
      {"\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", "boxed"},
      {"nested \\boxed{\\{1, \\{2\\}\\}} ok", "\\{1, \\{2\\}\\}", "boxed"},
      {"deep \\boxed{a^{b^{c}}}", "a^{b^{c}}", "boxed"},
      {"brace \\boxed{\\frac{1}{2}+{3}}.", "\\frac{1}{2}+{3}", "boxed"},
      {"$\\boxed 5$", "5", "boxed"},
      {"\\boxed 42.", "42", "boxed"},
      {"\\fbox{7}", "7", "fbox"},
      {"\\boxed{3} and later \\fbox{4}", "4", "fbox"},
      {"\\boxed{3} then cut \\boxed{\\frac{1}{", "3", "boxed"},
      {"empty \\boxed{} but \\boxed{9} earlier? no: \\boxed{}", "9", "boxed"},
      {"Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", "\\frac{3}{4}", "final answer"},
      {"Final Answer: 12", "12", "final answer"},
      {"Thus, the answer is 17.", "17", "the answer is"},
      {"The answer is: \\(x+1\\)", "x+1", "the answer is"},
      {"So The Answer Is $-3$ indeed", "-3", "the answer is"},
      {"Natalia sold 48 clips.\n#### 72", "72", "####"},
      {"#### 1,000", "1,000", "####"},
      {"I computed 3 then 4.5 apples", "4.5", "last number"},
      {"total is -12", "-12", "last number"},
      {"ratio 3/4 it is", "3/4", "last number"},
      {"sum 1,234,567 people", "1234567", "last number"},
      {"the answer is 5 but wait, the final answer is 6", "6", "final answer"},
  };
  for (const auto& r : rows) {
    auto e = extract_answer(r.text);
    REQUIRE_MESSAGE(e.has_value(), r.text);
    CHECK_MESSAGE(e->answer == r.answer, r.text << " -> " << e->answer);
    CHECK_MESSAGE(e->rule == r.rule, r.text << " -> rule " << e->rule);
  }
  CHECK_FALSE(extract_answer("no digits at all").has_value());
  CHECK_FALSE(extract_answer("").has_value());
  CHECK_FALSE(extract_answer("\\boxed{").has_value());
}

TEST_CASE("normalize_answer: the reference normalisation rules") {
  const std::vector<std::pair<std::string, std::string>> rows = {
      {" \\dfrac{1}{2} ", "\\frac{1}{2}"},
      {"\\tfrac12", "\\frac{1}{2}"},
      {"\\frac12", "\\frac{1}{2}"},
      {"\\sqrt2", "\\sqrt{2}"},
      {"\\left( 1, 2 \\right)", "(1,2)"},
      {"90^\\circ", "90"},
      {"50\\%", "50"},
      {"\\$5.00", "5"},
      {"10 \\text{ cm}", "10"},
      {"\\text{(A)}", "(A)"},
      {"x = 3", "3"},
      {"y = 2x + 1", "y=2x+1"},
      {"3/4", "\\frac{3}{4}"},
      {"1,000,000", "1000000"},
      {".5", "0.5"},
      {"7.", "7"},
      {"\\!\\,5", "5"},
      {"\\pi r^2", "\\pi r^2"},
      {"\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"},
  };
  for (const auto& [in, out] : rows) CHECK_MESSAGE(normalize_answer(in) == out, in << " -> " << normalize_answer(in));
}

TEST_CASE("Rational: exact arithmetic and overflow reporting") {
  auto half = *Rational::make(1, 2), third = *Rational::make(1, 3);
  CHECK(*(half + third) == *Rational::make(5, 6));
  CHECK(*(half - third) == *Rational::make(1, 6));
  CHECK(*(half * third) == *Rational::make(1, 6));
  CHECK(*(half / third) == *Rational::make(3, 2));
  CHECK(*pow_int(half, 99) != *pow_int(half, 98));
  CHECK(pow_int(half, 126).has_value());
  CHECK_FALSE(pow_int(Rational::integer(2), 128).has_value());
  CHECK_FALSE(reciprocal(Rational::integer(0)).has_value());
  CHECK(*exact_sqrt(*Rational::make(9, 4)) == *Rational::make(3, 2));
  CHECK_FALSE(exact_sqrt(Rational::integer(2)).has_value());
  CHECK(*parse_decimal("0.125") == *Rational::make(1, 8));
  CHECK_FALSE(parse_decimal(std::string(60, '9')).has_value());
}

TEST_CASE("hostile inputs: no crash, no hang, bounded work") {
  std::string deep(5000, '(');
  deep += "1";
  deep += std::string(5000, ')');
  CHECK(compare(deep, "1") != Verdict::Equal);  // too deep for the parser: not equal or unknown
  std::string braces;
  for (int k = 0; k < 3000; ++k) braces += "\\frac{";
  CHECK(compare(braces, "1") == Verdict::Unknown);
  std::string boxes;
  for (int k = 0; k < 100000; ++k) boxes += "\\boxed{";
  CHECK_FALSE(extract_answer(boxes).has_value());
  std::string big(1 << 20, '7');
  CHECK(compare(big, big) == Verdict::Equal);
  CHECK(compare(big, "7") != Verdict::Equal);
  auto e = extract_answer(std::string(1 << 20, 'a') + " the answer is 5");
  REQUIRE(e.has_value());
  CHECK(e->answer == "5");
  CHECK(compare("10^{10^{10}}", "10^{10^{10}}+1") != Verdict::Equal);
  CHECK(compare("2^{2^{2^{2^{2^{2}}}}}", "3") != Verdict::Equal);
  CHECK(compare(std::string(3000, '9'), std::string(2999, '9')) != Verdict::Equal);
  CHECK(compare("1000!", "999!") != Verdict::Equal);
  std::string wide;
  for (int k = 0; k < 500; ++k) wide += "x+";
  wide += "x";
  CHECK(compare(wide, "501x") == Verdict::Equal);
  std::string set = "\\{";
  for (int k = 0; k < 200; ++k) set += std::to_string(k) + ",";
  set += "0\\}";
  CHECK(compare(set, set + " ") == Verdict::Equal);
  CHECK(compare("\\frac{}{}", "1") == Verdict::Unknown);
  CHECK(compare(std::string("\0\xff\xfe", 3), "1") != Verdict::Equal);
}

TEST_CASE("exact big numbers and the issue-17 answer forms (tests/data/math_equiv_exact_forms.tsv)") {
  auto cases = load_cases("math_equiv_exact_forms.tsv");
  CHECK(cases.size() >= 90);
  for (const Case& c : cases) {
    std::string got = to_string(compare(c.prediction, c.reference));
    CHECK_MESSAGE(got == c.expected, "line " << c.line << ": compare(\"" << c.prediction << "\", \"" << c.reference
                                              << "\") = " << got << ", expected " << c.expected);
    // Both directions: none of these rules is one-sided.
    std::string back = to_string(compare(c.reference, c.prediction));
    CHECK_MESSAGE(back == c.expected, "line " << c.line << ": reversed pair is " << back);
  }
}
