// Every branch of the staged verifier, driven by the scripted generator and the fake executor.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "doubles.hpp"
#include "genprm/prm/verifier.hpp"

using namespace genprm;
using namespace genprm::prm;
using namespace prmtest;

namespace {

const std::string kAnalysis = "The sum formula is applied correctly.\n</analyze>\n";
const std::string kJudgeYes = "</verify>\n<output>\n**Judgement**: $\\boxed{Yes}$\n</output>\n";

bool contains(const std::string& s, const std::string& x) { return s.find(x) != std::string::npos; }

/// A well-behaved model: analysis, one code block, then the judgement.
Continuation good_model(const std::string& prompt, const std::string& code, double p_yes = 0.8) {
  Continuation c;
  c.p_yes = p_yes;
  c.p_no = 1.0 - p_yes;
  if (ends_with(prompt, "step by step: ")) c.text = kAnalysis + "junk after the stop";
  else if (ends_with(prompt, "```python\n")) c.text = code + "\n```\nignored tail";
  else if (ends_with(prompt, "\n```\n")) c.text = kJudgeYes + "ignored";
  else if (ends_with(prompt, "$\\boxed")) c.text = "{Yes}$\n</output>\n";
  else c.text = "<output>\n**Judgement**: $\\boxed{Yes}$\n</output>\n";
  return c;
}

struct Fixture {
  ScriptedGenerator gen;
  FakeExecutor exec;
  VerifierConfig cfg;
  SolutionInput input{"s1", "What is 1+1?", {"1+1 = 2.", "So the answer is 2."}};
};

}  // namespace

TEST_CASE("normal three-stage run: analyze, code with execution, output") {
  Fixture f;
  f.gen.script = [](const std::string& p, int) { return good_model(p, "x = 2\nprint(x)"); };
  Verifier<ScriptedGenerator, FakeExecutor> v(f.gen, f.exec, fake_tokenizer(), f.cfg);
  SolutionResult r = v.verify(f.input);
  REQUIRE(r.value.size() == 2);
  CHECK(r.value[0] == doctest::Approx(0.8));
  CHECK(r.first_wrong_step == -1);
  CHECK(r.error.empty());
  const PathResult& p = r.steps[0].paths[0];
  const std::string expect =
      "<analyze>\nLet's analyze the Paragraph 1 step by step: " + kAnalysis +
      "<verify>\nLet's use python code to find any potential error:\n```python\n"
      "x = 2\nprint(x)\n```\n[Code Output]\n\n```\n2\n```\n" + kJudgeYes;
  CHECK(p.text == expect);
  CHECK(p.judgement_found);
  CHECK(p.judgement == "Yes");
  CHECK(p.rounds == 2);
  CHECK(p.fallbacks == 0);
  REQUIRE(p.code.size() == 1);
  CHECK(p.code[0].code == "x = 2\nprint(x)");
  CHECK(p.code[0].output == "2");
  CHECK(p.code[0].executed);
  // Requests: per step one analyze + 2 stage-2 rounds; prompts re-submitted whole.
  REQUIRE(f.gen.log.size() == 6);
  CHECK(f.gen.log[0].params.stop == std::vector<std::string>{"</analyze>\n"});
  CHECK(f.gen.log[0].params.include_stop_str_in_output);
  CHECK(f.gen.log[0].params.temperature == doctest::Approx(0.6));
  CHECK(f.gen.log[0].params.top_p == doctest::Approx(0.95));
  CHECK(f.gen.log[0].params.top_k == 20);
  CHECK(f.gen.log[0].params.max_tokens == 2048);
  CHECK(f.gen.log[1].params.stop == std::vector<std::string>{"\n```\n", "</output>\n"});
  CHECK(f.gen.log[1].params.tracked_token_ids == std::vector<int32_t>{kYes, kNo});
  CHECK(f.gen.log[1].params.processed_logprobs);
  // Stage 2's budget is max_tokens minus the tokens of the assistant text so far.
  const std::string cur1 = "<analyze>\nLet's analyze the Paragraph 1 step by step: " + kAnalysis +
                           "<verify>\nLet's use python code to find any potential error:\n```python\n";
  CHECK(f.gen.log[1].params.max_tokens == 2048 - static_cast<int>(fake_encode(cur1).size()));
  CHECK(ends_with(f.gen.log[1].prompt_text, cur1));
  CHECK(f.gen.log[1].prompt_ids == fake_encode(f.gen.log[1].prompt_text));
  // Step 2's prompt carries step 1's verification as the assistant turn.
  CHECK(contains(f.gen.log[3].prompt_text, "<｜Assistant｜>" + expect + kEos + "<｜User｜>So the answer is 2."));
  CHECK(ends_with(f.gen.log[3].prompt_text, "Let's analyze the Paragraph 2 step by step: "));
  // JSON-serializable.
  Json j = to_json(r);
  CHECK(j["value"].size() == 2);
  CHECK(j["steps"][0]["paths"][0]["code"][0]["output"] == "2");
  CHECK(Json::parse(j.dump())["first_wrong_step"] == -1);
}

TEST_CASE("code that errors and code that times out are reported in-band") {
  for (std::string code : {std::string("raise ValueError('bad value')"), std::string("sleep")}) {
    Fixture f;
    f.gen.script = [&](const std::string& p, int) { return good_model(p, code); };
    Verifier<ScriptedGenerator, FakeExecutor> v(f.gen, f.exec, fake_tokenizer(), f.cfg);
    SolutionResult r = v.verify(f.input);
    const PathResult& p = r.steps[0].paths[0];
    REQUIRE(p.code.size() == 1);
    CHECK_FALSE(p.code[0].ok);
    if (code == "sleep") {
      CHECK(p.code[0].timed_out);
      CHECK(contains(p.text, "[Code Output]\n\n```\nCode execute time out: Code execution timed out\n```\n"));
    } else {
      CHECK(contains(p.text, "[Code Output]\n\n```\nCode execute Error: ValueError: bad value\n```\n"));
    }
    CHECK(r.value[0] == doctest::Approx(0.8));  // the run goes on to the judgement
  }
}

TEST_CASE("more code rounds than allowed fall back to the analysis and the output template") {
  Fixture f;
  f.input.steps = {"only step"};
  f.gen.script = [](const std::string& p, int) {
    Continuation c;
    if (ends_with(p, "step by step: ")) c.text = kAnalysis;
    else if (ends_with(p, "$\\boxed")) { c.text = "{No}$\n</output>\n"; c.p_yes = 0.1; c.p_no = 0.9; }
    else c.text = "print(\"again\")\n```\n";  // always another code block, never an output
    return c;
  };
  Verifier<ScriptedGenerator, FakeExecutor> v(f.gen, f.exec, fake_tokenizer(), f.cfg);
  SolutionResult r = v.verify(f.input);
  const PathResult& p = r.steps[0].paths[0];
  CHECK(p.code.size() == 3);   // round_limit = 3 code rounds
  CHECK(p.rounds == 4);        // + the fallback
  CHECK(p.fallbacks == 1);
  CHECK(p.text == "<analyze>\nLet's analyze the Paragraph 1 step by step: The sum formula is applied "
                  "correctly.\n</analyze>\n<output>\n**Judgement**: $\\boxed{No}$\n</output>\n");
  CHECK(f.gen.log.back().params.max_tokens == 20);
  CHECK(f.gen.log.back().params.stop == std::vector<std::string>{"</output>\n"});
  CHECK(p.reward == doctest::Approx(0.1));
  CHECK(p.judgement == "No");
  CHECK(r.first_wrong_step == 0);
}

TEST_CASE("token budget exhausted: a stage cut by length falls back to output") {
  Fixture f;
  f.cfg.max_tokens = 200;
  f.input.steps = {"only step"};
  f.gen.script = [](const std::string& p, int) {
    Continuation c;
    if (ends_with(p, "step by step: ")) c.text = kAnalysis;
    else if (ends_with(p, "$\\boxed")) c.text = "{Yes}$\n</output>\n";
    else c.text = std::string(1000, 'a');  // rambling code, never stops
    return c;
  };
  Verifier<ScriptedGenerator, FakeExecutor> v(f.gen, f.exec, fake_tokenizer(), f.cfg);
  SolutionResult r = v.verify(f.input);
  const PathResult& p = r.steps[0].paths[0];
  CHECK(p.fallbacks == 1);
  CHECK(p.rounds == 2);
  CHECK(f.gen.log[1].params.max_tokens > 0);
  CHECK(f.gen.log[1].params.max_tokens < 200);
  REQUIRE(p.code.size() == 1);  // the cut block has no closing fence: no code found
  CHECK_FALSE(p.code[0].executed);
  CHECK(p.code[0].output == "Code format error: No code found.");
  CHECK(ends_with(p.text, "</analyze>\n<output>\n**Judgement**: $\\boxed{Yes}$\n</output>\n"));
  CHECK(p.reward == doctest::Approx(0.8));
}

TEST_CASE("no judgement found gives 0.5; the fallback is bounded") {
  Fixture f;
  f.input.steps = {"only step"};
  f.gen.script = [](const std::string& p, int) {
    Continuation c;
    c.p_yes = 0.99; c.p_no = 0.01;
    if (ends_with(p, "step by step: ")) c.text = kAnalysis;
    else if (ends_with(p, "```python\n")) c.text = "print(\"1\")\n```\n";
    else c.text = "I cannot decide.\n</output>\n";  // ends the stage, no \boxed{
    if (ends_with(p, "$\\boxed")) c.text = " maybe";  // never closes the output
    return c;
  };
  Verifier<ScriptedGenerator, FakeExecutor> v(f.gen, f.exec, fake_tokenizer(), f.cfg);
  SolutionResult r = v.verify(f.input);
  const PathResult& p = r.steps[0].paths[0];
  CHECK_FALSE(p.judgement_found);
  CHECK(p.reward == 0.5);
  CHECK(p.fallbacks == 0);

  Fixture g;
  g.input.steps = {"only step"};
  g.cfg.round_limit = 0;  // straight to the fallback, which never ends with </output>
  g.gen.script = f.gen.script;
  Verifier<ScriptedGenerator, FakeExecutor> w(g.gen, g.exec, fake_tokenizer(), g.cfg);
  SolutionResult r2 = w.verify(g.input);
  CHECK(r2.steps[0].paths[0].fallbacks == g.cfg.max_fallbacks);
  CHECK(r2.value[0] == 0.5);
}

TEST_CASE("judgement position is the token after \\boxed{, not a regex over the text") {
  // A sampled "Yes" elsewhere does not matter; the probabilities at the judgement position do.
  SampleOutput s;
  s.text = "Yes it is.\n<output>\n**Judgement**: $\\boxed{No}$\n</output>\n";
  s.token_ids = fake_encode(s.text);
  for (size_t i = 0; i < s.token_ids.size(); ++i) {
    TokenLogprobs lp;
    bool at = i > 0 && s.token_ids[i - 1] == '{';
    lp.tracked = {static_cast<float>(std::log(at ? 0.3 : 0.9)), static_cast<float>(std::log(at ? 0.6 : 0.1))};
    s.logprobs.push_back(lp);
  }
  Judgement j = read_judgement("", s, fake_decode);
  CHECK(j.found);
  CHECK(j.sampled == "No");
  CHECK(s.token_ids[static_cast<size_t>(j.position)] == kNo);
  CHECK(j.reward == doctest::Approx(1.0 / 3.0));
  // The `{` generated right after a prompt that ends with `$\boxed` (the fallback).
  SampleOutput f;
  f.text = "{Yes}$\n</output>\n";
  f.token_ids = fake_encode(f.text);
  for (size_t i = 0; i < f.token_ids.size(); ++i) {
    TokenLogprobs lp;
    lp.tracked = {static_cast<float>(std::log(i == 1 ? 0.75 : 0.5)), static_cast<float>(std::log(0.25))};
    f.logprobs.push_back(lp);
  }
  Judgement k = read_judgement("**Judgement**: $\\boxed", f, fake_decode);
  CHECK(k.found);
  CHECK(k.position == 1);
  CHECK(k.reward == doctest::Approx(0.75));
  // Both probabilities zero (outside top-k after processing) -> 0.5, as the reference.
  CHECK(yes_no_reward(-INFINITY, -INFINITY) == 0.5);
  CHECK(yes_no_reward(0.0, -INFINITY) == 1.0);
  CHECK(yes_no_reward(std::log(0.2), std::log(0.6)) == doctest::Approx(0.25));
  // Judgement inside the prompt (no generated position) -> not found.
  SampleOutput e;
  e.text = "}$\n";
  e.token_ids = fake_encode(e.text);
  e.logprobs.resize(e.token_ids.size());
  CHECK_FALSE(read_judgement("$\\boxed{Yes", e, fake_decode).found);
}

TEST_CASE("CoT mode: analyze then output, no code; direct mode: output only with its system prompt") {
  {
    Fixture f;
    f.cfg.mode = VerifyMode::cot;
    f.gen.script = [](const std::string& p, int) { return good_model(p, "unused"); };
    Verifier<ScriptedGenerator, FakeExecutor> v(f.gen, f.exec, fake_tokenizer(), f.cfg);
    SolutionResult r = v.verify(f.input);
    const PathResult& p = r.steps[0].paths[0];
    CHECK(p.text == "<analyze>\nLet's analyze the Paragraph 1 step by step: " + kAnalysis +
                        "<output>\n**Judgement**: $\\boxed{Yes}$\n</output>\n");
    CHECK(f.exec.runs.empty());
    CHECK(f.exec.opened == 0);
    CHECK(f.gen.log[1].params.stop == std::vector<std::string>{"</output>\n"});
    CHECK(r.value[0] == doctest::Approx(0.8));
  }
  {
    Fixture f;
    f.cfg.mode = VerifyMode::direct;
    f.cfg.majority = 3;
    f.gen.script = [](const std::string& p, int) { return good_model(p, "unused", 0.6); };
    Verifier<ScriptedGenerator, FakeExecutor> v(f.gen, f.exec, fake_tokenizer(), f.cfg);
    SolutionResult r = v.verify(f.input);
    REQUIRE(f.gen.log.size() == 6);  // three requests of one prompt per step
    CHECK(f.gen.log[0].n == 1);
    CHECK(f.gen.log[1].prompt_text == f.gen.log[0].prompt_text);
    CHECK(contains(f.gen.log[0].prompt_text, "solution directly. Output your judgement in the format of"));
    CHECK(ends_with(f.gen.log[0].prompt_text, "1+1 = 2.<output>\n**Judgement**: $\\boxed"));
    CHECK(r.steps[0].paths[1].text == "<output>\n**Judgement**: $\\boxed{Yes}$\n</output>\n");
    CHECK(r.value[1] == doctest::Approx(0.6));
    CHECK(f.exec.runs.empty());
  }
}

TEST_CASE("code without execution appends an open code-output fence and continues") {
  Fixture f;
  f.cfg.mode = VerifyMode::code_no_exec;
  f.input.steps = {"only step"};
  f.gen.script = [](const std::string& p, int) {
    Continuation c;
    if (ends_with(p, "step by step: ")) c.text = kAnalysis;
    else if (ends_with(p, "```python\n")) c.text = "print(\"1\")\n```\n[Code Output]\n\n```\n1\n";  // no </output>: cut by length
    else c.text = "```\n" + kJudgeYes;
    return c;
  };
  f.cfg.max_tokens = 2048;
  Verifier<ScriptedGenerator, FakeExecutor> v(f.gen, f.exec, fake_tokenizer(), f.cfg);
  SolutionResult r = v.verify(f.input);
  const PathResult& p = r.steps[0].paths[0];
  CHECK(f.exec.runs.empty());
  CHECK(f.gen.log[1].params.stop == std::vector<std::string>{"</output>\n"});
  CHECK(contains(p.text, "print(\"1\")\n```\n[Code Output]\n\n```\n1\n[Code Output]\n\n```\n```\n</verify>"));
  CHECK(p.reward == doctest::Approx(0.8));
}

TEST_CASE("Maj@N: one prompt computation, paths advance independently, rewards averaged") {
 for (bool one_request : {true, false}) {
  CAPTURE(one_request);
  Fixture f;
  f.cfg.first_stage_as_one_request = one_request;
  f.cfg.majority = 4;
  f.cfg.round_limit = 10;
  int analyze_calls = 0;  // with N separate requests, the k-th analyze request is path k's
  f.gen.script = [&analyze_calls, one_request](const std::string& p, int sample) {
    // Path k writes k+1 code blocks before its judgement, so paths finish at different times.
    static const double rewards[4] = {0.9, 0.7, 0.4, 0.2};
    Continuation c;
    if (ends_with(p, "step by step: ")) {
      c.text = "analysis " + std::to_string(one_request ? sample : analyze_calls++) + "\n</analyze>\n";
      return c;
    }
    int path = p[p.rfind("analysis ") + 9] - '0';
    c.p_yes = rewards[path];
    c.p_no = 1.0 - rewards[path];
    if (ends_with(p, "```python\n")) {
      c.text = "x = 1\nprint(x)\n```\n";
      return c;
    }
    int rounds = 0;
    for (size_t k = p.find("[Code Output]"); k != std::string::npos; k = p.find("[Code Output]", k + 1)) ++rounds;
    c.text = rounds >= path + 1 ? kJudgeYes : "more\n```python\nprint(x)\n```\n";
    return c;
  };
  f.input.steps = {"only step"};
  Verifier<ScriptedGenerator, FakeExecutor> v(f.gen, f.exec, fake_tokenizer(), f.cfg);
  SolutionResult r = v.verify(f.input);
  const size_t first = one_request ? 1 : 4;  // requests of the shared step prompt
  CHECK(f.gen.log[0].n == (one_request ? 4 : 1));
  for (size_t i = 1; i < f.gen.log.size(); ++i) CHECK(f.gen.log[i].n == 1);
  for (size_t i = 1; i < first; ++i) CHECK(f.gen.log[i].prompt_text == f.gen.log[0].prompt_text);
  REQUIRE(r.steps[0].paths.size() == 4);
  CHECK(r.value[0] == doctest::Approx((0.9 + 0.7 + 0.4 + 0.2) / 4));
  for (int k = 0; k < 4; ++k) {
    CHECK(r.steps[0].paths[static_cast<size_t>(k)].code.size() == static_cast<size_t>(k + 1));
    CHECK(contains(r.steps[0].paths[static_cast<size_t>(k)].text, "analysis " + std::to_string(k) + "\n"));
  }
  // The shared prompt is counted once (on path 0), continuations per path.
  for (int k = 0; k < 4; ++k) CHECK(r.steps[0].paths[static_cast<size_t>(k)].requests == 1 + k + 2);
  if (one_request) {
    // The shared prompt is counted once, on path 0.
    CHECK(r.steps[0].paths[1].prompt_tokens <
          r.steps[0].paths[1].requests * static_cast<long>(f.gen.log.back().prompt_ids.size()));
  }
  CHECK(r.steps[0].prompt_tokens == static_cast<long>(f.gen.log[0].prompt_ids.size()));
  // Paths did not wait for each other: path 0 finished (3 requests) while path 3 still had
  // stage-2 rounds to go, so requests of different paths interleave.
  CHECK(f.gen.max_pending >= 4);
  CHECK(f.gen.log.size() == first + 2 + 3 + 4 + 5);
  CHECK(contains(f.gen.log.back().prompt_text, "analysis 3"));
  CHECK(contains(f.gen.log[f.gen.log.size() - 2].prompt_text, "analysis 3"));
 }
}

TEST_CASE("namespace kept across the steps of one solution; one session per solution") {
  Fixture f;
  f.gen.script = [](const std::string& p, int) {
    bool step2 = ends_with(p, "```python\n") && contains(p, "Paragraph 2 step by step");
    return good_model(p, step2 ? "print(total)" : "total = 42\nprint(\"set\")");
  };
  SolutionInput b{"s2", "Another problem", {"a", "b"}};
  Verifier<ScriptedGenerator, FakeExecutor> v(f.gen, f.exec, fake_tokenizer(), f.cfg);
  auto results = v.verify_many({f.input, b});
  REQUIRE(results.size() == 2);
  for (const auto& r : results) {
    REQUIRE(r.steps.size() == 2);
    CHECK(r.steps[1].paths[0].code[0].output == "42");
  }
  CHECK(f.exec.opened == 2);
  CHECK(f.exec.closed == 2);
  CHECK(f.exec.runs[0].first != f.exec.runs[1].first);  // two solutions: two namespaces
  CHECK(results[0].id == "s1");
  CHECK(results[1].id == "s2");
}

TEST_CASE("many solutions in flight at once, limited by max_solutions_in_flight") {
  Fixture f;
  f.cfg.max_solutions_in_flight = 3;
  f.gen.script = [](const std::string& p, int) { return good_model(p, "print(\"1\")"); };
  std::vector<SolutionInput> rows;
  for (int i = 0; i < 7; ++i) rows.push_back({"r" + std::to_string(i), "p", {"a", "b", "c"}});
  Verifier<ScriptedGenerator, FakeExecutor> v(f.gen, f.exec, fake_tokenizer(), f.cfg);
  std::vector<size_t> order;
  auto results = v.verify_many(rows, [&](size_t i, const SolutionResult& r) {
    order.push_back(i);
    CHECK(r.value.size() == 3);
  });
  CHECK(order.size() == 7);
  CHECK(f.gen.max_pending == 3);  // three solutions' requests pending together, never more
  CHECK(results[6].id == "r6");
  CHECK(v.live_solutions() == 0);
}

TEST_CASE("first wrong step uses the threshold; empty trailing step dropped; errors reported") {
  Fixture f;
  f.input.steps = {"good", "bad", "good again", ""};
  f.gen.script = [](const std::string& p, int) {
    bool bad = contains(p.substr(p.rfind("<｜User｜>")), "bad");
    return good_model(p, "print(\"1\")", bad ? 0.3 : 0.7);
  };
  Verifier<ScriptedGenerator, FakeExecutor> v(f.gen, f.exec, fake_tokenizer(), f.cfg);
  SolutionResult r = v.verify(f.input);
  REQUIRE(r.value.size() == 3);
  CHECK(r.first_wrong_step == 1);
  CHECK(first_below({0.6, 0.5, 0.49}, 0.5) == 2);
  CHECK(first_below({0.6, 0.5}, 0.5) == -1);

  struct FailingGen : ScriptedGenerator {
    bool poll() {
      if (pending.empty()) return false;
      auto p = std::move(pending.front());
      pending.pop_front();
      GenerationOutput out;
      out.error = "out of memory";
      p.cb(std::move(out));
      return true;
    }
  } bad;
  FakeExecutor ex;
  Verifier<FailingGen, FakeExecutor> w(bad, ex, fake_tokenizer(), f.cfg);
  SolutionResult e = w.verify(f.input);
  CHECK(contains(e.error, "out of memory"));
  CHECK(e.value == std::vector<double>{0.5, 0.5, 0.5});
}

TEST_CASE("code blocks are found as the reference's regex finds them") {
  CHECK(extract_last_python_block("```python\nprint(1)\n```\n").value() == "print(1)");
  CHECK(extract_last_python_block("a```python\nx=1\n```\n[Code Output]\n\n```\n1\n```\n```python\n  y=2  \n```\n").value() == "y=2");
  // An unclosed last block: the regex's last match is the earlier closed block.
  CHECK(extract_last_python_block("```python\nx=1\n```\n```python\ny=2\n").value() == "x=1");
  CHECK_FALSE(extract_last_python_block("no code here").has_value());
  CHECK_FALSE(extract_last_python_block("```python\nx=1").has_value());
  CHECK(extract_last_python_block("```python```").value().empty());
}

TEST_CASE("configuration is validated and modes parse") {
  CHECK(parse_mode("code-no-exec") == VerifyMode::code_no_exec);
  CHECK_THROWS_AS(parse_mode("fast"), ValueError);
  VerifierConfig c;
  c.majority = 0;
  CHECK_THROWS_AS(c.validate(), ValueError);
  CHECK(VerifierConfig{}.analyze_start(7) == "<analyze>\nLet's analyze the Paragraph 7 step by step: ");
}
