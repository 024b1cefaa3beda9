// Incremental verification (SolutionInput::prior): only the new steps are generated, the next
// step's prompt is byte-identical to a full run's, the namespace is replayed in order, the
// prior's steps are copied unchanged, bad priors are rejected.
#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <set>
#include <string>

#include "doubles.hpp"
#include "genprm/prm/verifier.hpp"

using namespace genprm;
using namespace genprm::prm;
using namespace prmtest;

namespace {

using V = Verifier<ScriptedGenerator, FakeExecutor>;

const std::string kProblem = "What is 1+1+1?";
const std::vector<std::string> kSteps = {"1+1 = 2.", "2+1 = 3.", "So the answer is 3."};

/// The paragraph number of the step being verified (the last "Paragraph N" of the prompt).
int paragraph_of(const std::string& prompt) {
  const std::string key = "Let's analyze the Paragraph ";
  size_t k = prompt.rfind(key);
  REQUIRE(k != std::string::npos);
  return std::stoi(prompt.substr(k + key.size()));
}

/// Per paragraph t: an analysis naming t, code that writes variable v (steps 1, 2) or prints
/// it (step 3), a judgement with p(Yes) = `p_yes`.
Continuation stepwise(const std::string& prompt, double p_yes) {
  const int t = paragraph_of(prompt);
  Continuation c;
  c.p_yes = p_yes;
  c.p_no = 1.0 - p_yes;
  const std::string code = t == 1 ? "v = one\nprint(v)" : t == 2 ? "v = two\nw = v\nprint(v)" : "print(v)";
  if (ends_with(prompt, "step by step: ")) c.text = "paragraph " + std::to_string(t) + " looks fine.\n</analyze>\n";
  else if (ends_with(prompt, "```python\n")) c.text = code + "\n```\n";
  else c.text = "</verify>\n<output>\n**Judgement**: $\\boxed{Yes}$\n</output>\n";
  return c;
}

SolutionInput input_of(size_t n, std::shared_ptr<const SolutionResult> prior = nullptr, std::string id = "s") {
  SolutionInput in{std::move(id), kProblem, std::vector<std::string>(kSteps.begin(), kSteps.begin() + static_cast<long>(n)),
                   std::move(prior)};
  return in;
}

/// Index of the first logged request whose prompt is step t's first (analysis) prompt.
size_t first_request_of_step(const ScriptedGenerator& g, int t) {
  for (size_t i = 0; i < g.log.size(); ++i) {
    const auto& p = g.log[i].prompt_text;
    if (ends_with(p, "step by step: ") && paragraph_of(p) == t) return i;
  }
  FAIL("no request for step " << t);
  return 0;
}

}  // namespace

TEST_CASE("prior: only the new step is generated; its prompt is byte-identical to a full run's") {
  VerifierConfig cfg;
  cfg.majority = 2;

  // Full run over 3 steps.
  ScriptedGenerator g_full;
  FakeExecutor e_full;
  g_full.script = [](const std::string& p, int) { return stepwise(p, 0.8); };
  V full(g_full, e_full, fake_tokenizer(), cfg);
  const SolutionResult all = full.verify(input_of(3));
  REQUIRE(all.error.empty());
  REQUIRE(all.value.size() == 3);

  // The prior: the same (deterministic) model over steps 1..2.
  ScriptedGenerator g_pre;
  FakeExecutor e_pre;
  g_pre.script = g_full.script;
  V pre(g_pre, e_pre, fake_tokenizer(), cfg);
  auto prior = std::make_shared<const SolutionResult>(pre.verify(input_of(2)));
  REQUIRE(prior->problem == kProblem);
  REQUIRE(prior->steps[1].paragraph == kSteps[1]);
  const size_t pre_requests = g_pre.log.size();

  // Incremental: prior + step 3.
  ScriptedGenerator g_inc;
  FakeExecutor e_inc;
  g_inc.script = [](const std::string& p, int) { return stepwise(p, 0.3); };  // would change old rewards
  V inc(g_inc, e_inc, fake_tokenizer(), cfg);
  const SolutionResult r = inc.verify(input_of(3, prior, "grown"));
  REQUIRE(r.error.empty());
  CHECK(r.id == "grown");
  CHECK(r.reused_steps == 2);

  // Only step 3 was generated: every request is step 3's, and as many as one step costs.
  for (const auto& req : g_inc.log) CHECK(paragraph_of(req.prompt_text) == 3);
  CHECK(g_inc.log.size() == g_full.log.size() - pre_requests);
  CHECK(g_inc.log.size() == 2 * 3);  // 2 paths x (analyze + code round + output round)

  // Step 3's first prompt equals the full run's, byte for byte (the same prior texts).
  const size_t k_full = first_request_of_step(g_full, 3);
  const size_t k_inc = first_request_of_step(g_inc, 3);
  CHECK(g_inc.log[k_inc].prompt_text == g_full.log[k_full].prompt_text);
  CHECK(g_inc.log[k_inc].prompt_ids == g_full.log[k_full].prompt_ids);
  // ... and equals the prompt built from the prior's first-path texts.
  std::vector<std::string> texts = {prior->steps[0].paths[0].text, prior->steps[1].paths[0].text};
  CHECK(g_inc.log[k_inc].prompt_text ==
        step_prompt(render_r1, kEos, cfg, kProblem, input_of(3).steps, texts, 3));

  // The prior's steps and rewards are copied unchanged; step 3 is new (p_yes 0.3).
  REQUIRE(r.value.size() == 3);
  CHECK(r.value[0] == prior->value[0]);
  CHECK(r.value[1] == prior->value[1]);
  CHECK(r.value[0] == doctest::Approx(0.8));
  CHECK(r.value[2] == doctest::Approx(0.3));
  CHECK(r.first_wrong_step == 2);
  for (size_t k = 0; k < 2; ++k) {
    REQUIRE(r.steps[k].paths.size() == prior->steps[k].paths.size());
    CHECK(r.steps[k].paths[0].text == prior->steps[k].paths[0].text);
    CHECK(r.steps[k].paths[1].generated_tokens == prior->steps[k].paths[1].generated_tokens);
    CHECK(r.steps[k].seconds == prior->steps[k].seconds);
  }
  CHECK(r.steps[2].step == 3);
  CHECK(r.steps[2].paragraph == kSteps[2]);

  // Totals count only this call's work: step 3's paths.
  long gen = 0;
  for (const auto& p : r.steps[2].paths) gen += p.generated_tokens;
  CHECK(r.generated_tokens == gen);
  CHECK(r.generated_tokens < all.generated_tokens);
}

TEST_CASE("prior: the namespace is rebuilt by replaying the prior's blocks in their original order") {
  VerifierConfig cfg;
  cfg.majority = 2;
  ScriptedGenerator g_pre;
  FakeExecutor e_pre;
  g_pre.script = [](const std::string& p, int) { return stepwise(p, 0.8); };
  V pre(g_pre, e_pre, fake_tokenizer(), cfg);
  auto prior = std::make_shared<const SolutionResult>(pre.verify(input_of(2)));
  // The prior's blocks: 4 (2 steps x 2 paths), numbered 0..3 in the order they ran.
  std::vector<std::string> ran_pre;
  for (const auto& [session, code] : e_pre.runs) ran_pre.push_back(code);
  REQUIRE(ran_pre.size() == 4);
  const auto order = replay_order(prior->steps);
  REQUIRE(order.size() == 4);
  for (size_t k = 0; k < order.size(); ++k) {
    CHECK(order[k]->order == static_cast<long>(k));
    CHECK(order[k]->code == ran_pre[k]);
  }

  ScriptedGenerator g;
  FakeExecutor e;
  g.script = g_pre.script;
  V inc(g, e, fake_tokenizer(), cfg);
  const SolutionResult r = inc.verify(input_of(3, prior));
  REQUIRE(r.error.empty());
  // One fresh session: the 4 prior blocks in their order, then step 3's two blocks.
  CHECK(e.opened == 1);
  CHECK(e.closed == 1);
  REQUIRE(e.runs.size() == 6);
  for (size_t k = 0; k < 4; ++k) CHECK(e.runs[k].second == ran_pre[k]);
  CHECK(e.runs[4].second == "print(v)");
  CHECK(r.replayed_code_blocks == 4);
  // print(v) sees step 2's assignment (replayed after step 1's), as in a full run.
  for (const auto& p : r.steps[2].paths) {
    REQUIRE(p.code.size() == 1);
    CHECK(p.code[0].output == "two");
    CHECK(p.code[0].order >= 4);  // numbered after the prior's blocks
  }
  // Replay outputs are discarded: the prior steps keep their own code runs.
  CHECK(r.steps[0].paths[0].code[0].output == "one");

  // Without a prior, step 3's code alone fails: the replay is what defines v.
  ScriptedGenerator g3;
  FakeExecutor e3;
  g3.script = [](const std::string& p, int) {
    Continuation c = stepwise(p, 0.8);
    return c;
  };
  V lone(g3, e3, fake_tokenizer(), cfg);
  SolutionInput only3{"x", kProblem, {kSteps[0], kSteps[1], kSteps[2]}, nullptr};
  // A prior whose code list is empty (e.g. cot mode) replays nothing.
  auto no_code = std::make_shared<SolutionResult>(*prior);
  for (auto& st : no_code->steps)
    for (auto& p : st.paths) p.code.clear();
  only3.prior = no_code;
  const SolutionResult r3 = lone.verify(only3);
  CHECK(r3.replayed_code_blocks == 0);
  CHECK(r3.steps[2].paths[0].code[0].output == "Code execute Error: NameError: name 'v' is not defined");
}

TEST_CASE("replay_order: original order, from the last state reset, without timed-out blocks") {
  auto run = [](std::string code, long order, bool timed_out = false, bool reset = false, bool executed = true) {
    CodeRun c;
    c.code = std::move(code);
    c.order = order;
    c.timed_out = timed_out;
    c.state_reset = reset;
    c.executed = executed;
    return c;
  };
  std::vector<StepResult> steps(2);
  steps[0].paths.resize(2);
  steps[1].paths.resize(1);
  // Step 2's block ran before step 1 path 1's (start_next_step_early).
  steps[0].paths[0].code = {run("a", 0), run("b", 1, true)};
  steps[0].paths[1].code = {run("d", 3), run("none", -1, false, false, false)};
  steps[1].paths[0].code = {run("c", 2), run("late", -1)};
  auto names = [](const std::vector<const CodeRun*>& v) {
    std::vector<std::string> out;
    for (const auto* c : v) out.push_back(c->code);
    return out;
  };
  CHECK(names(replay_order(steps)) == std::vector<std::string>{"a", "c", "d", "late"});
  steps[1].paths[0].code[0].state_reset = true;  // "c" ran in a fresh worker: a and b were lost
  CHECK(names(replay_order(steps)) == std::vector<std::string>{"c", "d", "late"});
}

TEST_CASE("prior: bad priors are rejected naming the id; a full prior generates nothing") {
  VerifierConfig cfg;
  ScriptedGenerator g;
  FakeExecutor e;
  g.script = [](const std::string& p, int) { return stepwise(p, 0.8); };
  V v(g, e, fake_tokenizer(), cfg);
  auto prior = std::make_shared<const SolutionResult>(v.verify(input_of(2)));
  const size_t before = g.log.size();

  auto other_problem = std::make_shared<SolutionResult>(*prior);
  other_problem->problem = "What is 2+2?";
  auto not_prefix = std::make_shared<SolutionResult>(*prior);
  not_prefix->steps[1].paragraph = "2+1 = 4.";
  auto failed = std::make_shared<SolutionResult>(*prior);
  failed->error = "step 1 path 0: boom";

  CHECK_THROWS_WITH_AS(v.verify(input_of(3, other_problem, "row7")),
                       doctest::Contains("'row7': the prior result is of another problem"), ValueError);
  CHECK_THROWS_WITH_AS(v.verify(input_of(3, not_prefix, "row8")), doctest::Contains("prefix"), ValueError);
  CHECK_THROWS_WITH_AS(v.verify(input_of(3, failed, "row9")), doctest::Contains("row9"), ValueError);
  CHECK_THROWS_WITH_AS(v.verify(input_of(1, prior, "short")), doctest::Contains("more than the solution's 1"),
                       ValueError);
  // verify_many checks every row before submitting any.
  std::vector<SolutionInput> rows = {input_of(3, prior, "ok"), input_of(3, not_prefix, "bad")};
  CHECK_THROWS_WITH_AS(v.verify_many(rows), doctest::Contains("'bad'"), ValueError);
  CHECK(g.log.size() == before);
  CHECK(v.live_solutions() == 0);

  // A prior that covers every step (a trailing empty step is not verified): nothing to generate.
  std::vector<std::string> same = {kSteps[0], kSteps[1], ""};
  const SolutionResult r = v.verify({"same", kProblem, same, prior});
  CHECK(g.log.size() == before);
  CHECK(r.value == prior->value);
  CHECK(r.reused_steps == 2);
  CHECK(r.generated_tokens == 0);
  CHECK(e.opened == 1);  // only the prior's own session
}

TEST_CASE("prior: a result read back from JSON serves as a prior (the Python path)") {
  VerifierConfig cfg;
  ScriptedGenerator g;
  FakeExecutor e;
  g.script = [](const std::string& p, int) { return stepwise(p, 0.8); };
  V v(g, e, fake_tokenizer(), cfg);
  const SolutionResult pre = v.verify(input_of(2));
  const SolutionResult back = solution_result_from_json(to_json(pre));
  CHECK(to_json(back) == to_json(pre));
  const size_t before = g.log.size();
  const SolutionResult r = v.verify(input_of(3, std::make_shared<const SolutionResult>(back)));
  CHECK(r.reused_steps == 2);
  CHECK(g.log.size() - before == 3);
  CHECK(r.steps[2].paths[0].code[0].output == "two");
  Json j = to_json(pre);
  j.erase("problem");
  CHECK_THROWS_WITH_AS(solution_result_from_json(j), doctest::Contains("missing 'problem'"), ValueError);
}

TEST_CASE("seeds follow the content verified, not the submission order or a prior") {
  VerifierConfig cfg;
  cfg.majority = 2;
  cfg.seed = 11;
  auto script = [](const std::string& p, int) { return stepwise(p, 0.8); };
  // The seeds of every request of a run, by (paragraph, prompt): what a request is for.
  auto seeds_of = [](const ScriptedGenerator& g) {
    std::map<std::pair<int, std::string>, std::vector<uint64_t>> out;
    for (const auto& r : g.log) {
      REQUIRE(r.params.seed.has_value());
      out[{paragraph_of(r.prompt_text), r.prompt_text}].push_back(*r.params.seed);
    }
    return out;
  };

  ScriptedGenerator g_alone;
  FakeExecutor e_alone;
  g_alone.script = script;
  V alone(g_alone, e_alone, fake_tokenizer(), cfg);
  REQUIRE(alone.verify(input_of(3)).error.empty());

  // The same solution submitted after another one (which takes the first submission slot).
  ScriptedGenerator g_batch;
  FakeExecutor e_batch;
  g_batch.script = script;
  V batch(g_batch, e_batch, fake_tokenizer(), cfg);
  SolutionInput other{"other", "What is 2+2?", {"2+2 = 4."}, nullptr};
  const auto rs = batch.verify_many({other, input_of(3)});
  REQUIRE(rs.size() == 2);
  auto in_batch = seeds_of(g_batch);
  for (const auto& [what, seeds] : seeds_of(g_alone)) {
    REQUIRE(in_batch.count(what) == 1);
    CHECK(in_batch[what] == seeds);
  }

  // Another solution's steps get other seeds (same paragraph number, different content).
  std::set<uint64_t> ours, theirs;
  for (const auto& r : g_alone.log) ours.insert(*r.params.seed);
  for (const auto& r : g_batch.log)
    if (r.prompt_text.find("What is 2+2?") != std::string::npos) theirs.insert(*r.params.seed);
  REQUIRE(!theirs.empty());
  for (uint64_t s : theirs) CHECK(ours.count(s) == 0);

  // Continued from a prior, step 3 draws exactly the full run's seeds.
  ScriptedGenerator g_pre;
  FakeExecutor e_pre;
  g_pre.script = script;
  V pre(g_pre, e_pre, fake_tokenizer(), cfg);
  auto prior = std::make_shared<const SolutionResult>(pre.verify(input_of(2)));
  ScriptedGenerator g_inc;
  FakeExecutor e_inc;
  g_inc.script = script;
  V inc(g_inc, e_inc, fake_tokenizer(), cfg);
  REQUIRE(inc.verify(input_of(3, prior, "grown")).error.empty());
  auto full = seeds_of(g_alone);
  for (const auto& [what, seeds] : seeds_of(g_inc)) {
    REQUIRE(full.count(what) == 1);
    CHECK(full[what] == seeds);
  }
}
