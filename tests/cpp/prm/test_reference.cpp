// Reference-exact verification: reward = reference (the reference's get_reward_score, every
// branch against hand-computed values) and sequential_paths (the reference's Maj@N loop over one
// namespace). Expected rewards are CPython's
//   p_yes, p_no = math.exp(y), math.exp(n); p_yes / (p_yes + p_no)
// of the float32 log-probabilities (numpy.float32 for the rounding), printed with repr().
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "doubles.hpp"
#include "genprm/prm/result.hpp"
#include "genprm/prm/reward.hpp"
#include "genprm/prm/verifier.hpp"

using namespace genprm;
using namespace genprm::prm;
using namespace prmtest;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
using Top = std::vector<std::pair<int32_t, float>>;

bool contains(const std::string& s, const std::string& x) { return s.find(x) != std::string::npos; }

/// A final generation of `text` (fake tokenizer). Every position carries a decoy distribution
/// (sampled token -2.0; Yes -3.0, No -0.5 in its top list), so reading at the wrong position shows;
/// the LAST occurrence of `at_token` gets `own` as the sampled token's value and `top` as its list.
SampleOutput final_generation(const std::string& text, int32_t at_token, float own, Top top) {
  SampleOutput g;
  g.text = text;
  g.token_ids = fake_encode(text);
  for (int32_t id : g.token_ids) {
    TokenLogprobs lp;
    lp.token = id;
    lp.logprob = -2.0f;
    lp.top = {{id, -2.0f}, {kYes, -3.0f}, {kNo, -0.5f}};
    lp.tracked = {std::log(0.5f), std::log(0.5f)};
    g.logprobs.push_back(lp);
  }
  for (size_t i = g.token_ids.size(); i-- > 0;) {
    if (g.token_ids[i] != at_token) continue;
    g.logprobs[i].logprob = own;
    g.logprobs[i].top = std::move(top);
    break;
  }
  return g;
}

/// Twenty entries best first, none of them `Yes` or `No`, the smallest -5.4375.
Top twenty_without_yes_no(int32_t first, float first_lp) {
  Top t{{first, first_lp}};
  for (int k = 1; k < 19; ++k) t.emplace_back(100 + k, -1.0f - 0.2f * static_cast<float>(k));
  t.emplace_back(120, -5.4375f);
  return t;
}

const std::string kOpen = "<analyze>\nLet's analyze the Paragraph 1 step by step: ok\n</analyze>\n<output>\n";

}  // namespace

TEST_CASE("reward = reference: every branch of get_reward_score against hand-computed values") {
  struct Row {
    const char* what;
    std::string context;  // assistant text before the final generation
    std::string gen;      // the final generation
    int32_t at;           // token whose last occurrence carries `own` and `top`
    float own;
    Top top;
    double reward;
    bool found;
    const char* note;     // substring of Judgement::note ("" : no note)
    const char* word;     // the matched word ("" : no match)
  };
  const float lm5 = -9.999999747378752e-06f;  // float32(-1e-5)
  const std::vector<Row> rows = {
      {"Yes: No's value from the top list", kOpen, "**Judgement**: $\\boxed{Yes}$\n</output>\n", kYes,
       -0.25f, {{kYes, -0.25f}, {kNo, -1.5f}, {65, -4.0f}}, 0.7772998611746912, true, "", "Yes"},
      {"No: Yes's value from the top list", kOpen, "**Judgement**: $\\boxed{No}$\n</output>\n", kNo,
       -0.25f, {{kNo, -0.25f}, {kYes, -1.5f}}, 0.22270013882530884, true, "", "No"},
      {"Yes: No not among the top 20 -> the smallest top-20 value (exact would say 0.99999)", kOpen,
       "$\\boxed{Yes}$\n</output>\n", kYes, lm5, twenty_without_yes_no(kYes, lm5), 0.9956684548518223,
       true, "", "Yes"},
      {"No: Yes not in the list -> its smallest value", kOpen, "$\\boxed{No}$\n</output>\n", kNo, -0.125f,
       {{kNo, -0.125f}, {66, -3.0f}, {67, -7.0f}}, 0.0010322310367548194, true, "", "No"},
      {"the sampled token outside the top list is part of vLLM's dict (and its minimum)", kOpen,
       "$\\boxed{Yes}$\n</output>\n", kYes, -9.0f, {{66, -0.5f}, {67, -1.0f}}, 0.5, true, "", "Yes"},
      {"-inf in the processed top 20 (fewer tokens kept than 20): p(other) = 0", kOpen,
       "$\\boxed{Yes}$\n</output>\n", kYes, -0.125f, {{kYes, -0.125f}, {66, -2.25f}, {67, -kInf}}, 1.0,
       true, "", "Yes"},
      {"both probabilities 0 -> 0.5 (division guard)", kOpen, "$\\boxed{Yes}$\n</output>\n", kYes, -kInf,
       {{66, 0.0f}, {67, -kInf}}, 0.5, true, "", "Yes"},
      {"the FIRST match of the whole step text decides, case-insensitively ('no}' in the analysis)",
       "<analyze>\nThe paragraph is marked no} by the author.\n</analyze>\n<output>\n",
       "Note: $\\boxed{Yes}$\n</output>\n", kNo, -3.0f, {{kYes, -0.5f}, {kNo, -3.0f}},
       0.9241418199787564, true, "", "no"},
      {"the LAST occurrence of the token in the final generation is read", kOpen,
       "Yes, Yes: $\\boxed{Yes}$\n</output>\n", kYes, -0.25f, {{kYes, -0.25f}, {kNo, -1.5f}},
       0.7772998611746912, true, "", "Yes"},
      {"upper case is a match and capitalizes to 'Yes'", kOpen, "$\\boxed{YES}$ then Yes\n", kYes, -0.25f,
       {{kYes, -0.25f}, {kNo, -1.5f}}, 0.7772998611746912, true, "", "YES"},
      {"no (Yes|No)} match -> 0.5, nothing found, no note", kOpen,
       "$\\boxed{ Yes }$ or \\boxed{Maybe}\n</output>\n", kYes, -0.25f, {}, 0.5, false, "", ""},
      {"the decision never occurs as its token in the final generation: the reference raises", 
       "<analyze>\nok\n</analyze>\n<verify>\nthe answer is \\boxed{Yes}\n</verify>\n<output>\n",
       "**Judgement**: $\\boxed{yes}$\n</output>\n", kYes, -0.25f, {}, 0.5, false,
       "never occurs in the final generation", "Yes"},
      {"U+017F matches `s` case-insensitively but capitalizes to neither word: the reference raises",
       kOpen, "$\\boxed{ye\xC5\xBF}$ $\\boxed{Yes}$\n", kYes, -0.25f, {}, 0.5, false, "TypeError",
       "ye\xC5\xBF"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.what);
    const SampleOutput g = final_generation(row.gen, row.at, row.own, row.top);
    const Judgement j = read_reference_judgement(row.context + row.gen, g, kYes, kNo);
    CHECK(j.reward == row.reward);  // bit for bit
    CHECK(j.found == row.found);
    CHECK(j.sampled == row.word);
    if (*row.note == '\0') {
      CHECK(j.note.empty());
    } else {
      CHECK(contains(j.note, row.note));
    }
    if (j.found) CHECK(g.token_ids[static_cast<size_t>(j.position)] == row.at);
  }
}

TEST_CASE("reward = reference: missing log-probabilities and the exact read-out on the same output") {
  // The reference indexes logprobs[index]: without them it raises IndexError.
  SampleOutput bare;
  bare.text = "$\\boxed{Yes}$\n";
  bare.token_ids = fake_encode(bare.text);
  const Judgement j = read_reference_judgement(kOpen + bare.text, bare, kYes, kNo);
  CHECK(j.reward == 0.5);
  CHECK_FALSE(j.found);
  CHECK(contains(j.note, "IndexError"));
  // The example: exact p(No) = 1e-5, absent from the top 20. Exact 0.99999, reference 0.99567.
  const float lm5 = -9.999999747378752e-06f;
  SampleOutput g = final_generation("$\\boxed{Yes}$\n</output>\n", kYes, lm5, twenty_without_yes_no(kYes, lm5));
  const size_t at = static_cast<size_t>(read_reference_judgement(kOpen + g.text, g, kYes, kNo).position);
  g.logprobs[at].tracked = {lm5, static_cast<float>(std::log(1e-5))};
  CHECK(read_reference_judgement(kOpen + g.text, g, kYes, kNo).reward == 0.9956684548518223);
  CHECK(read_judgement(kOpen, g, fake_decode).reward == doctest::Approx(0.99999).epsilon(1e-9));
}

TEST_CASE("first_decision_match: the reference's re.search(r'(Yes|No)\\}', text, re.IGNORECASE)") {
  const std::vector<std::pair<std::string, std::optional<std::string>>> rows = {
      {"\\boxed{Yes}", "Yes"},     {"\\boxed{no}", "no"},        {"nO} Yes}", "nO"},
      {"YeS}", "YeS"},             {"Yes }", std::nullopt},      {"Ye}s}", std::nullopt},
      {"No}Yes}", "No"},           {"NNo}", "No"},               {"yyes}", "yes"},
      {"ye\xC5\xBF}", "ye\xC5\xBF"}, {"Y\xC3\xA9s}", std::nullopt}, {"", std::nullopt},
      {"Yes", std::nullopt},       {"None}", std::nullopt},
  };
  for (const auto& [text, expected] : rows) {
    CAPTURE(text);
    CHECK(first_decision_match(text) == expected);
  }
  CHECK(capitalize_decision("yES") == "Yes");
  CHECK(capitalize_decision("NO") == "No");
  CHECK(capitalize_decision("ye\xC5\xBF") == "Ye\xC5\xBF");
}

TEST_CASE("reward = reference through the verifier: top-20 requested, read as the reference, note kept") {
  ScriptedGenerator gen;
  FakeExecutor exec;
  VerifierConfig cfg;
  cfg.reward = RewardMode::reference;
  const float ly = static_cast<float>(std::log(0.8)), l5 = static_cast<float>(std::log(0.05));
  gen.script = [&](const std::string& p, int) {
    Continuation c;
    c.p_yes = 0.8;
    c.p_no = 0.2;
    c.top = {{kYes, ly}, {66, static_cast<float>(std::log(0.1))}, {67, l5}};  // No outside the list
    const bool step2 = contains(p, "Paragraph 2 step by step");
    if (ends_with(p, "step by step: ")) {
      // Step 2's analysis writes `No}` first: the decision is No, which the final generation never
      // samples as a token -> the reference would raise.
      c.text = step2 ? "claims {No} here\n</analyze>\n" : "fine\n</analyze>\n";
    } else if (ends_with(p, "```python\n")) {
      c.text = "print(\"1\")\n```\n";
    } else {
      c.text = "</verify>\n<output>\n**Judgement**: $\\boxed{Yes}$\n</output>\n";
    }
    return c;
  };
  SolutionInput in{"r", "What is 1+1?", {"1+1 = 2.", "So 2."}};
  Verifier<ScriptedGenerator, FakeExecutor> v(gen, exec, fake_tokenizer(), cfg);
  const SolutionResult r = v.verify(in);
  REQUIRE(r.steps.size() == 2);
  for (const auto& req : gen.log) {
    const bool stage2 = !req.params.tracked_token_ids.empty();
    CHECK(req.params.logprobs == (stage2 ? 20 : -1));
  }
  const PathResult& p1 = r.steps[0].paths[0];
  CHECK(p1.reward == 0.9411764726599828);  // exp(f32 log .8) / (exp(f32 log .8) + exp(f32 log .05))
  CHECK(p1.judgement == "Yes");
  CHECK(p1.reward_note.empty());
  CHECK(r.steps[0].reward_note.empty());
  const PathResult& p2 = r.steps[1].paths[0];
  CHECK(p2.reward == 0.5);
  CHECK(p2.judgement == "No");
  CHECK_FALSE(p2.judgement_found);
  CHECK(contains(p2.reward_note, "ValueError"));
  CHECK(r.steps[1].reward_note == "path 0: " + p2.reward_note);
  CHECK(r.value == std::vector<double>{0.9411764726599828, 0.5});
  // The note survives JSON both ways (results are handed back as priors).
  const SolutionResult back = solution_result_from_json(Json::parse(to_json(r).dump()));
  CHECK(back.steps[1].reward_note == r.steps[1].reward_note);
  CHECK(back.steps[1].paths[0].reward_note == p2.reward_note);
  // The default read-out on the same outputs: exact p(Yes) / (p(Yes) + p(No)) at the judgement.
  ScriptedGenerator gen2;
  gen2.script = gen.script;
  FakeExecutor exec2;
  Verifier<ScriptedGenerator, FakeExecutor> w(gen2, exec2, fake_tokenizer(), VerifierConfig{});
  const SolutionResult e = w.verify(in);
  CHECK(e.value[0] == doctest::Approx(0.8));
  CHECK(e.value[1] == doctest::Approx(0.8));
  CHECK(e.steps[1].reward_note.empty());
  for (const auto& req : gen2.log) CHECK(req.params.logprobs <= 0);
}

namespace {

/// Path k of a step (k: how often the model has seen this exact analysis prompt) writes two
/// blocks, "print(last)" then "last = k\nprint(last)", then judges.
struct TwoBlockModel {
  std::map<std::string, int> analyses;
  Continuation operator()(const std::string& p, int) {
    Continuation c;
    if (ends_with(p, "step by step: ")) {
      c.text = "analysis " + std::to_string(analyses[p]++) + "\n</analyze>\n";
      return c;
    }
    const char path = p[p.rfind("analysis ") + 9];
    int blocks = 0;
    for (size_t k = p.find("[Code Output]"); k != std::string::npos; k = p.find("[Code Output]", k + 1)) ++blocks;
    if (ends_with(p, "```python\n")) c.text = "print(last)\n```\n";
    else if (blocks % 2 == 1) c.text = std::string("again\n```python\nlast = ") + path + "\nprint(last)\n```\n";
    else c.text = "</verify>\n<output>\n**Judgement**: $\\boxed{Yes}$\n</output>\n";
    return c;
  }
};

/// (step, path) of each request of the solution whose problem is `problem`; path -1 for an
/// analysis request (it carries no path text yet).
std::vector<std::pair<int, int>> request_order(const ScriptedGenerator& gen, const std::string& problem) {
  std::vector<std::pair<int, int>> order;
  for (const auto& req : gen.log) {
    const std::string& t = req.prompt_text;
    if (!contains(t, problem)) continue;
    const size_t an = t.find("analysis ", t.rfind("step by step: "));
    order.emplace_back(contains(t, "Paragraph 2 step by step") ? 2 : 1, an == std::string::npos ? -1 : t[an + 9] - '0');
  }
  return order;
}

/// Every request of step t before any of step t+1, and within a step path k's before path k+1's.
bool steps_and_paths_in_order(const std::vector<std::pair<int, int>>& order) {
  int last_step = 0, last_path = -1;
  for (const auto& [step, path] : order) {
    if (step < last_step) return false;
    if (step > last_step) {
      last_step = step;
      last_path = -1;
    }
    if (path < 0) continue;
    if (path < last_path) return false;
    last_path = path;
  }
  return true;
}

}  // namespace

TEST_CASE("sequential_paths: the reference's Maj@N order over one namespace; concurrent is the default") {
  const std::string undefined = "Code execute Error: NameError: name 'last' is not defined";
  for (bool sequential : {false, true}) {
    CAPTURE(sequential);
    ScriptedGenerator gen;
    FakeExecutor exec;
    VerifierConfig cfg;
    cfg.majority = 3;
    cfg.sequential_paths = sequential;
    TwoBlockModel model;
    gen.script = [&model](const std::string& p, int i) { return model(p, i); };
    std::vector<SolutionInput> rows = {{"a", "Problem A", {"step 1", "step 2"}},
                                       {"b", "Problem B", {"step 1", "step 2"}}};
    Verifier<ScriptedGenerator, FakeExecutor> v(gen, exec, fake_tokenizer(), cfg);
    const auto results = v.verify_many(rows);
    REQUIRE(results.size() == 2);
    for (const auto& r : results) {
      CAPTURE(r.id);
      REQUIRE(r.steps.size() == 2);
      const auto& paths = r.steps[0].paths;
      REQUIRE(paths.size() == 3);
      std::vector<std::string> outs;
      for (const auto& path : paths) {
        REQUIRE(path.code.size() == 2);
        for (const auto& c : path.code) outs.push_back(c.output);
        CHECK(path.reward == doctest::Approx(0.8));
      }
      if (sequential) {
        // Path k's first block sees path k-1's `last`, as in the reference's loop.
        CHECK(outs == std::vector<std::string>{undefined, "0", "0", "1", "1", "2"});
        CHECK(r.steps[1].paths[0].code[0].output == "2");  // step 2 after all of step 1
      } else {
        // Concurrent: every path's first block ran before any path defined `last`.
        CHECK(outs == std::vector<std::string>{undefined, "0", undefined, "1", undefined, "2"});
      }
    }
    CHECK(steps_and_paths_in_order(request_order(gen, "Problem A")) == sequential);
    CHECK(steps_and_paths_in_order(request_order(gen, "Problem B")) == sequential);
    // Solutions are still batched together; sequentially, one path of each at a time.
    if (sequential) CHECK(gen.max_pending == 2);
    else CHECK(gen.max_pending >= 6);
  }
}

TEST_CASE("reward and sequential_paths options parse and validate") {
  CHECK(parse_reward_mode("exact") == RewardMode::exact);
  CHECK(parse_reward_mode("reference") == RewardMode::reference);
  CHECK(std::string(reward_mode_name(RewardMode::reference)) == "reference");
  CHECK_THROWS_WITH_AS(parse_reward_mode("top20"), "reward 'top20' is not one of exact, reference", ValueError);
  CHECK_THROWS_WITH_AS(parse_mode("fast"), "mode 'fast' is not one of full, cot, code-no-exec, direct", ValueError);
  CHECK(parse_mode("code_no_exec") == VerifyMode::code_no_exec);
  CHECK(std::string(mode_name(VerifyMode::code_no_exec)) == "code-no-exec");
  VerifierConfig c;
  CHECK(c.reward == RewardMode::exact);
  CHECK_FALSE(c.sequential_paths);
  c.reference_top_logprobs = 0;
  CHECK_THROWS_AS(c.validate(), ValueError);
  c.reference_top_logprobs = 20;
  c.sequential_paths = true;
  c.validate();
  CHECK_FALSE(c.next_step_starts_early());
  c.first_stage_as_one_request = true;
  CHECK_THROWS_AS(c.validate(), ValueError);
}
