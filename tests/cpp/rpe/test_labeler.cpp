// The labeler and the sampler over the scripted generator: exact MC values, dynamic K, one
// request with n = K per step, zero propagation with cancellation, seeds, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "doubles.hpp"
#include "genprm/gen/rng.hpp"
#include "genprm/rpe/rpe.hpp"

using namespace genprm;
using namespace genprm::rpe;
using namespace rpetest;

namespace {

const std::string kProblem = "What is 6 * 7?";
const std::vector<std::string> kSteps = {"Step 1: six times seven", "Step 2: is 6 * 7", "Step 3: hmm, 41?",
                                         "Step 4: recheck", "Step 5: The answer is \\boxed{42}."};

std::string prompt_through(const std::vector<std::string>& steps, long t, const std::string& problem = kProblem) {
  return render(problem) + rollout_prefix(steps, t);
}

/// Correct answers as a function of the prefix: from the prompt alone sample i is right when
/// i % 4 == 0; after step 1 when i % 2 == 0; after step 2 when i % 8 == 0; after step 3 never;
/// after step 4 always (never used: step 3 is a zero).
std::string middle_script(const std::string& prompt, int i, int) {
  const std::string a = prompt.substr(prompt.find(kChatClose) + kChatClose.size());
  bool ok = false;
  if (a == kStepForcingPrefix) ok = i % 4 == 0;
  else if (a == rollout_prefix(kSteps, 1)) ok = i % 2 == 0;
  else if (a == rollout_prefix(kSteps, 2)) ok = i % 8 == 0;
  else if (a == rollout_prefix(kSteps, 3)) ok = false;
  else if (a == rollout_prefix(kSteps, 4)) ok = true;
  else FAIL("unexpected prompt: " << prompt);
  return "\nStep 9: more " + boxed(ok ? "42" : "41");
}

LabelInput input(std::string id = "p1") { return {std::move(id), kProblem, kSteps, "42", ""}; }

}  // namespace

TEST_CASE("labeler: exact MC values, dynamic K with a top-up, one request per step, zero propagation") {
  ScriptedGenerator gen;
  gen.script = middle_script;
  Labeler<ScriptedGenerator> lab(gen, render, LabelerConfig{});
  LabelResult r = lab.label(input());
  CHECK(r.error == "");
  // MC(s_1): first 32 -> 8 right (0.25 -> K = 64 > 32), top-up 32 -> 8 more: 16 / 64.
  CHECK(r.k_first == 64);
  CHECK(r.correct_first == 16);
  CHECK(r.first_requests == 2);
  CHECK(r.mc_first == 0.25);
  CHECK(r.k == 64);
  auto first = gen.requests_for(render(kProblem) + "Step 1: ");
  REQUIRE(first.size() == 2);
  CHECK(first[0].n == 32);
  CHECK(first[1].n == 32);
  // ONE request with n = K per step t < T; none for the last step.
  for (long t = 1; t <= 4; ++t) {
    auto reqs = gen.requests_for(prompt_through(kSteps, t));
    CAPTURE(t);
    REQUIRE(reqs.size() == 1);
    CHECK(reqs[0].n == 64);
  }
  CHECK(gen.requests_for(prompt_through(kSteps, 5)).empty());
  CHECK(gen.log.size() == 6);
  CHECK(r.requests == 6);
  // Step 4 was still queued when step 3 came back with MC = 0: cancelled.
  CHECK(gen.cancelled_ids.size() == 1);

  REQUIRE(r.steps.size() == 5);
  const double mc[] = {0.5, 0.125, 0.0, 0.0, 0.0};
  const int correct[] = {32, 8, 0, 0, 0};
  const int k[] = {64, 64, 64, 0, 0};
  const bool estimated[] = {true, true, true, false, false};
  for (size_t i = 0; i < 5; ++i) {
    CAPTURE(i);
    CHECK(r.steps[i].step == int(i) + 1);
    CHECK(r.steps[i].labels.mc == mc[i]);
    CHECK(r.mc[i] == mc[i]);
    CHECK(r.steps[i].correct == correct[i]);
    CHECK(r.steps[i].k == k[i]);
    CHECK(r.steps[i].estimated == estimated[i]);
  }
  CHECK_FALSE(r.steps[4].rollout);
  CHECK(r.labels == std::vector<int>{1, 0, 0, 0, 0});       // P = 2, 0.25, 0, 0/0, 0/0
  CHECK(r.hard_labels == std::vector<int>{1, 1, 0, 0, 0});
  CHECK(r.steps[0].labels.progress == 2.0);
  CHECK(r.steps[1].labels.progress == 0.25);
  CHECK(r.steps[1].labels.difference == -0.375);
  CHECK(r.steps[3].labels.propagated);
  // Token counters: step t+1's prompt extends step t's, which the imitation cache has seen.
  CHECK(r.steps[0].prompt_tokens == long(prompt_through(kSteps, 1).size()));
  CHECK(r.steps[1].cached_prompt_tokens == long(prompt_through(kSteps, 1).size()));
  CHECK(r.steps[2].cached_prompt_tokens == long(prompt_through(kSteps, 2).size()));
  CHECK(r.cached_prompt_tokens > 0);
  CHECK(r.generated_tokens > 0);

  Json j = to_json(r);
  CHECK(j["labels"] == Json({1, 0, 0, 0, 0}));
  CHECK(j["steps"][1]["mc"] == 0.125);
  CHECK(j["steps"][0]["progress"] == 2.0);
}

TEST_CASE("labeler: the last step is graded from its own answer; without cancellation the result is the same") {
  ScriptedGenerator gen;
  gen.script = middle_script;
  LabelerConfig cfg;
  cfg.cancel_after_zero = false;
  Labeler<ScriptedGenerator> lab(gen, render, cfg);
  LabelResult r = lab.label(input());
  CHECK(gen.cancelled_ids.empty());
  CHECK(r.labels == std::vector<int>{1, 0, 0, 0, 0});
  CHECK(r.steps[3].estimated == false);  // its rollouts ran (all right) but it comes after a zero
  CHECK(r.steps[3].mc_raw == 0.0);
  CHECK(r.first_rollouts.empty());
  CHECK(r.steps[0].rollouts.empty());

  // keep_rollouts: the completions' texts, graded as counted; none for steps after the zero.
  ScriptedGenerator gk;
  gk.script = middle_script;
  LabelerConfig ck;
  ck.keep_rollouts = true;
  Labeler<ScriptedGenerator> lk(gk, render, ck);
  LabelResult rk = lk.label(input());
  CHECK(rk.first_rollouts.size() == 64);
  REQUIRE(rk.steps[0].rollouts.size() == 64);
  CHECK(rk.steps[0].rollouts[0] == "\nStep 9: more " + boxed("42"));
  CHECK(rk.steps[0].rollouts[1] == "\nStep 9: more " + boxed("41"));
  CHECK(rk.steps[3].rollouts.empty());
  CHECK(to_json(rk)["steps"][0]["rollouts"].size() == 64);
  CHECK_FALSE(to_json(r)["steps"][0].contains("rollouts"));

  // A solution whose steps never hit zero: the last step's own answer decides its MC.
  ScriptedGenerator g2;
  g2.script = [](const std::string&, int, int) { return boxed("42"); };
  Labeler<ScriptedGenerator> l2(g2, render, LabelerConfig{});
  LabelResult ok = l2.label(input());
  CHECK(ok.mc_first == 1.0);
  CHECK(ok.k == 32);
  CHECK(ok.first_requests == 1);
  CHECK(ok.mc == std::vector<double>{1, 1, 1, 1, 1});
  CHECK(ok.steps[4].correct == 1);
  CHECK(ok.steps[4].k == 0);
  LabelInput wrong = input();
  wrong.steps.back() = "Step 5: The answer is \\boxed{41}.";
  LabelResult bad = l2.label(wrong);
  CHECK(bad.mc == std::vector<double>{1, 1, 1, 1, 0});
  CHECK(bad.labels == std::vector<int>{1, 1, 1, 1, 0});
  CHECK(bad.hard_labels == std::vector<int>{1, 1, 1, 1, 0});
}

TEST_CASE("labeler: dynamic K for easy, medium and hard problems; iterated top-ups") {
  // easy: everything right -> 32 rollouts, K = 32; hard: nothing right -> top-up to 128.
  for (auto [right, k_first, k, reqs] : {std::tuple{true, 32, 32, 1}, std::tuple{false, 128, 128, 2}}) {
    ScriptedGenerator gen;
    gen.script = [right = right](const std::string&, int, int) { return boxed(right ? "42" : "0"); };
    Labeler<ScriptedGenerator> lab(gen, render, LabelerConfig{});
    LabelResult r = lab.label(input());
    CAPTURE(right);
    CHECK(r.k_first == k_first);
    CHECK(r.k == k);
    CHECK(r.first_requests == reqs);
    for (const auto& q : gen.log)
      if (q.prompt_text != render(kProblem) + "Step 1: ") CHECK(q.n == k);
    if (!right) {
      CHECK(gen.log[1].n == 96);
      CHECK(r.mc_first == 0.0);
      CHECK(r.labels == std::vector<int>{0, 0, 0, 0, 0});
      CHECK(gen.log.size() == 2 + 4);  // 4 step requests submitted, 3 cancelled after step 1's zero
      CHECK(gen.cancelled_ids.size() == 3);
    }
  }
  // 4 / 32 = 0.125 -> K = 64; the top-up finds none: 4 / 64 < 0.1 -> K = 128, top up again.
  ScriptedGenerator gen;
  gen.script = [](const std::string& prompt, int i, int repeat) {
    const bool root = prompt.size() >= 8 && prompt.compare(prompt.size() - 8, 8, "Step 1: ") == 0;
    return boxed(root && repeat == 0 && i < 4 ? "42" : root ? "0" : "42");
  };
  Labeler<ScriptedGenerator> lab(gen, render, LabelerConfig{});
  LabelResult r = lab.label(input());
  CHECK(r.first_requests == 3);
  CHECK(gen.log[0].n == 32);
  CHECK(gen.log[1].n == 32);
  CHECK(gen.log[2].n == 64);
  CHECK(r.k_first == 128);
  CHECK(r.mc_first == 4.0 / 128);
  CHECK(r.k == 128);
  CHECK(std::isinf(r.steps[0].labels.progress) == false);
  CHECK(r.steps[0].labels.progress == doctest::Approx(32.0));
}

TEST_CASE("labeler: fixed K, custom K rule, first_k, step prefix and epsilon") {
  ScriptedGenerator gen;
  gen.script = middle_script;
  LabelerConfig cfg;
  cfg.fixed_k = 8;
  cfg.labels.epsilon = 0.2;
  Labeler<ScriptedGenerator> lab(gen, render, cfg);
  LabelResult r = lab.label(input());
  CHECK(r.k_first == 8);
  CHECK(r.k == 8);
  for (const auto& q : gen.log) CHECK(q.n == 8);
  CHECK(r.mc_first == 0.25);  // i % 4 == 0 for i < 8
  CHECK(r.mc == std::vector<double>{0.5, 0.125, 0, 0, 0});
  CHECK(r.labels == std::vector<int>{1, 1, 0, 0, 0});  // 0.125 / 0.5 = 0.25 >= 0.2

  ScriptedGenerator g2;
  g2.script = middle_script;
  LabelerConfig c2;
  c2.k_rule = KRule{0.1, 0.9, 12, 6, 3};
  c2.first_k = 4;
  Labeler<ScriptedGenerator> l2(g2, render, c2);
  LabelResult r2 = l2.label(input());
  // 1 / 4 -> K = 6 > 4: top up 2 (sample 0 right): 2 / 6 -> K = 6.
  CHECK(g2.log[0].n == 4);
  CHECK(g2.log[1].n == 2);
  CHECK(r2.k_first == 6);
  CHECK(r2.mc_first == doctest::Approx(2.0 / 6));
  CHECK(r2.k == 6);
  CHECK(r2.mc[0] == doctest::Approx(0.5));  // samples 0, 2, 4 of 6

  // A pre-rendered prompt and another step prefix.
  ScriptedGenerator g3;
  g3.script = [](const std::string&, int, int) { return boxed("42"); };
  LabelerConfig c3;
  c3.fixed_k = 2;
  c3.step_prefix = "";
  Labeler<ScriptedGenerator> l3(g3, PromptRenderer{}, c3);
  LabelInput in = input();
  in.prompt = "PRE:";
  LabelResult r3 = l3.label(in);
  CHECK(r3.error == "");
  CHECK(g3.log[0].prompt_text == "PRE:");
  CHECK(g3.log[1].prompt_text == "PRE:" + kSteps[0] + "\n\nStep 2: ");
}

TEST_CASE("labeler: many problems in flight with a cap; every step of a problem in flight at once") {
  ScriptedGenerator gen;
  gen.script = [](const std::string&, int i, int) { return boxed(i % 2 ? "42" : "1"); };
  LabelerConfig cfg;
  cfg.fixed_k = 4;
  cfg.max_problems_in_flight = 2;
  Labeler<ScriptedGenerator> lab(gen, render, cfg);
  size_t max_live = 0;
  gen.on_poll = [&] { max_live = std::max(max_live, lab.live_problems()); };
  std::vector<LabelInput> ins;
  for (int i = 0; i < 5; ++i) ins.push_back(input("p" + std::to_string(i)));
  std::vector<size_t> order;
  auto rs = lab.label_many(ins, [&](size_t i, const LabelResult&) { order.push_back(i); });
  REQUIRE(rs.size() == 5);
  CHECK(max_live == 2);
  CHECK(order.size() == 5);
  for (size_t i = 0; i < 5; ++i) {
    CHECK(rs[i].id == "p" + std::to_string(i));
    CHECK(rs[i].mc == std::vector<double>{0.5, 0.5, 0.5, 0.5, 1.0});
    CHECK(rs[i].labels == std::vector<int>{1, 1, 1, 1, 1});
  }
  // 2 problems x 4 step requests queued at once (FIFO double: problem 0's steps after its MC(s_1)).
  CHECK(gen.max_pending >= 4);
  CHECK(lab.idle());
}

TEST_CASE("labeler: seeds are per problem id, step and batch, independent of what else runs") {
  auto seeds = [](std::vector<std::string> ids, std::optional<uint64_t> seed) {
    ScriptedGenerator gen;
    gen.script = middle_script;
    LabelerConfig cfg;
    cfg.seed = seed;
    Labeler<ScriptedGenerator> lab(gen, render, cfg);
    std::vector<LabelInput> ins;
    for (auto& id : ids) ins.push_back(input(id));
    lab.label_many(ins);
    std::map<std::string, std::vector<std::optional<uint64_t>>> by_prompt;  // in submission order
    for (const auto& q : gen.log) by_prompt[q.prompt_text].push_back(q.params.seed);
    return std::make_pair(gen.log, by_prompt);
  };
  auto [log_a, a] = seeds({"x"}, 7);
  auto [log_b, b] = seeds({"other", "x"}, 7);
  auto [log_c, c] = seeds({"x"}, 8);
  auto [log_n, n] = seeds({"x"}, std::nullopt);
  std::set<uint64_t> distinct;
  for (const auto& q : log_a) {
    REQUIRE(q.params.seed.has_value());
    distinct.insert(*q.params.seed);
  }
  CHECK(distinct.size() == log_a.size());  // every request (steps, top-up batches) its own seed
  // The same id gets the same seeds when labelled next to another problem.
  std::vector<uint64_t> xa, xb, xc;
  for (const auto& q : log_a) xa.push_back(*q.params.seed);
  for (const auto& q : log_b) {
    // problem "x" and "other" have the same prompts: compare seeds as sets
    xb.push_back(*q.params.seed);
  }
  for (const auto& q : log_c) xc.push_back(*q.params.seed);
  for (uint64_t s : xa) CHECK(std::find(xb.begin(), xb.end(), s) != xb.end());
  for (uint64_t s : xa) CHECK(std::find(xc.begin(), xc.end(), s) == xc.end());
  for (const auto& q : log_n) CHECK_FALSE(q.params.seed.has_value());
  CHECK(log_a[0].params.temperature == doctest::Approx(0.7f));
  CHECK(log_a[0].params.max_tokens == 2048);
}

TEST_CASE("labeler: errors") {
  ScriptedGenerator gen;
  gen.script = middle_script;
  Labeler<ScriptedGenerator> lab(gen, render, LabelerConfig{});
  auto msg = [](auto f) {
    try {
      f();
    } catch (const ValueError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(msg([&] { lab.submit({"a", kProblem, {}, "42", ""}, {}); }).find("steps") != std::string::npos);
  CHECK(msg([&] { lab.submit({"a", kProblem, kSteps, "", ""}, {}); }).find("answer") != std::string::npos);
  CHECK(msg([&] { lab.submit({"a", "", kSteps, "42", ""}, {}); }).find("problem") != std::string::npos);
  CHECK(lab.idle());
  auto make = [&](LabelerConfig c) { Labeler<ScriptedGenerator> l(gen, render, c); };
  LabelerConfig c;
  c.labels.epsilon = 0.0;
  CHECK(msg([&] { make(c); }).find("epsilon") != std::string::npos);
  c = {};
  c.fixed_k = -1;
  CHECK(msg([&] { make(c); }).find("k must") != std::string::npos);
  c = {};
  c.rollout.max_tokens = 0;
  CHECK(msg([&] { make(c); }).find("max_tokens") != std::string::npos);
  c = {};
  c.max_problems_in_flight = 0;
  CHECK(msg([&] { make(c); }).find("max_problems_in_flight") != std::string::npos);

  // A failing request finishes its problem with an error and no labels; others are unaffected.
  gen.fail_prompt_containing = "Step 2: is";
  auto rs = lab.label_many({input("a"), {"b", "Other problem", {"Step 1: \\boxed{42}"}, "42", ""}});
  CHECK(rs[0].error.find("step 2 request: scripted failure") != std::string::npos);
  CHECK(rs[0].labels.empty());
  CHECK(rs[1].error == "");
  CHECK(rs[1].labels == std::vector<int>{1});
  CHECK(lab.idle());
  CHECK(to_json(rs[0])["error"] != "");
}

TEST_CASE("labeler: an unsolved problem whose first step makes it solvable: P_1 = inf, label 1") {
  ScriptedGenerator gen;
  gen.script = [](const std::string& prompt, int, int) {
    const bool root = prompt.compare(prompt.size() - 8, 8, "Step 1: ") == 0;
    return boxed(root ? "0" : "42");
  };
  LabelerConfig cfg;
  cfg.fixed_k = 4;
  Labeler<ScriptedGenerator> lab(gen, render, cfg);
  LabelResult r = lab.label(input());
  CHECK(r.mc_first == 0.0);
  CHECK(std::isinf(r.steps[0].labels.progress));
  CHECK(r.labels[0] == 1);
  Json j = to_json(r);
  CHECK(j["steps"][0]["progress"].is_null());
  CHECK(j["steps"][1]["progress"] == 1.0);
}

TEST_CASE("sampler: one request with n samples per problem, step-forced solutions, graded") {
  ScriptedGenerator gen;
  gen.script = [](const std::string&, int i, int) {
    return i % 2 == 0 ? std::string("a = 6 * 7.\nStep 2: ") + boxed("42") : std::string("I think 41.");
  };
  SamplerConfig cfg;
  cfg.n = 4;
  cfg.seed = 3;
  SolutionSampler<ScriptedGenerator> s(gen, render, cfg);
  auto rs = s.sample_many({{"q1", kProblem, "42", ""}, {"q2", "Other", "", ""}});
  REQUIRE(gen.log.size() == 2);
  CHECK(gen.log[0].n == 4);
  CHECK(gen.log[0].prompt_text == render(kProblem) + "Step 1: ");
  CHECK(gen.log[0].params.seed.has_value());
  REQUIRE(rs[0].solutions.size() == 4);
  const auto& s0 = rs[0].solutions[0];
  CHECK(s0.text == "Step 1: a = 6 * 7.\nStep 2: " + boxed("42"));
  CHECK(s0.steps == std::vector<std::string>{"Step 1: a = 6 * 7.", "Step 2: " + boxed("42")});
  CHECK(s0.answer == "42");
  CHECK(s0.correct);
  CHECK(rs[0].solutions[1].answer == "41");  // last number
  CHECK_FALSE(rs[0].solutions[1].correct);
  CHECK(rs[0].solutions[1].steps.size() == 1);
  CHECK(rs[0].pass_rate == 0.5);           // 2 of 4 right: a row's given mc_first
  CHECK_FALSE(rs[1].pass_rate.has_value());  // no ground truth
  CHECK_FALSE(rs[1].solutions[0].correct);  // no ground truth: not graded
  CHECK(to_json(rs[0])["solutions"][0]["steps"].size() == 2);

  // Sampled solutions go straight into the labeler.
  Labeler<ScriptedGenerator> lab(gen, render, LabelerConfig{});
  gen.script = [](const std::string&, int, int) { return boxed("42"); };
  LabelResult r = lab.label({"q1", kProblem, s0.steps, "42", ""});
  CHECK(r.labels == std::vector<int>{1, 1});
  CHECK(gen.requests_for(render(kProblem) + rollout_prefix(s0.steps, 1)).size() == 1);
}

TEST_CASE("labeler: share_first estimates MC(s_1) once per problem") {
  const std::string other = "What is 5 * 8?";
  auto rows = [&] {
    std::vector<LabelInput> in;
    in.push_back({"a1", kProblem, kSteps, "42", ""});
    in.push_back({"b1", other, kSteps, "42", ""});
    in.push_back({"a2", kProblem, kSteps, "42", ""});
    in.push_back({"a3", kProblem, kSteps, "42", ""});
    return in;
  };
  // Right with probability 1/2 per rollout from every prefix, from the request seed: the
  // estimate depends on the seeds, so sharing shows in equal estimates.
  auto script = [](const GenerationRequest& req, int i) {
    return boxed(counter_uniform(*req.params.seed, uint64_t(i), 0) < 0.5 ? "42" : "41");
  };
  std::vector<LabelResult> runs[2];
  for (int cap : {1, 16}) {
    ScriptedGenerator gen;
    gen.request_script = script;
    LabelerConfig cfg;
    cfg.seed = 3;
    cfg.share_first = true;
    cfg.max_problems_in_flight = cap;
    Labeler<ScriptedGenerator> lab(gen, render, cfg);
    auto rs = lab.label_many(rows());
    CAPTURE(cap);
    for (const auto& r : rs) REQUIRE(r.error == "");
    // The rows of one problem share the first row's estimate; its requests are made once.
    CHECK(rs[0].first_shared == "");
    CHECK(rs[1].first_shared == "");
    CHECK(rs[2].first_shared == "a1");
    CHECK(rs[3].first_shared == "a1");
    for (int i : {2, 3}) {
      CHECK(rs[i].mc_first == rs[0].mc_first);
      CHECK(rs[i].k_first == rs[0].k_first);
      CHECK(rs[i].k == rs[0].k);
      CHECK(rs[i].first_requests == 0);
    }
    CHECK(gen.requests_for(render(kProblem) + "Step 1: ").size() == size_t(rs[0].first_requests));
    CHECK(gen.requests_for(render(other) + "Step 1: ").size() == size_t(rs[1].first_requests));
    runs[cap == 16] = rs;
  }
  // What is in flight does not change any result.
  for (size_t i = 0; i < runs[0].size(); ++i) {
    CHECK(to_json(runs[0][i])["labels"] == to_json(runs[1][i])["labels"]);
    CHECK(runs[0][i].mc_first == runs[1][i].mc_first);
    CHECK(runs[0][i].rollouts == runs[1][i].rollouts);
  }

  // Off (the default): every row estimates its own MC(s_1), from seeds of its own id.
  ScriptedGenerator g2;
  g2.request_script = script;
  LabelerConfig own;
  own.seed = 3;
  Labeler<ScriptedGenerator> l2(g2, render, own);
  auto rs = l2.label_many(rows());
  CHECK(rs[2].first_shared == "");
  CHECK(g2.requests_for(render(kProblem) + "Step 1: ").size() ==
        size_t(rs[0].first_requests + rs[2].first_requests + rs[3].first_requests));
  long shared = 0, separate = 0;
  for (size_t i = 0; i < rs.size(); ++i) {
    shared += runs[0][i].rollouts;
    separate += rs[i].rollouts;
  }
  CHECK(shared < separate);

  // A row whose MC(s_1) fails takes the rows waiting for it along, naming it.
  ScriptedGenerator g3;
  g3.request_script = script;
  g3.fail_prompt_containing = "6 * 7?" + std::string(kChatClose);
  LabelerConfig c3 = LabelerConfig{};
  c3.seed = 3;
  c3.share_first = true;
  Labeler<ScriptedGenerator> l3(g3, render, c3);
  auto failed = l3.label_many(rows());
  CHECK(failed[0].error.find("MC(s_1) request") != std::string::npos);
  CHECK(failed[1].error == "");
  CHECK(failed[2].error.find("estimated by row 'a1'") != std::string::npos);
  CHECK(failed[3].error.find("estimated by row 'a1'") != std::string::npos);
  CHECK(l3.idle());
}

TEST_CASE("labeler: a given MC(s_1) draws no rollouts from the prompt alone") {
  ScriptedGenerator gen;
  gen.script = middle_script;
  Labeler<ScriptedGenerator> lab(gen, render, LabelerConfig{});
  LabelInput in = input();
  in.mc_first = 0.95;  // >= 0.9: K = 32
  LabelResult r = lab.label(in);
  REQUIRE(r.error == "");
  CHECK(r.first_given);
  CHECK(r.mc_first == 0.95);
  CHECK(r.k == 32);
  CHECK(r.k_first == 0);
  CHECK(r.first_requests == 0);
  CHECK(gen.requests_for(render(kProblem) + "Step 1: ").empty());
  // Step 1 (16 of 32 right) is measured against the given MC(s_1): 0.5 / 0.95 < 0.8.
  CHECK(r.steps[0].k == 32);
  CHECK(r.labels[0] == 0);
  CHECK(r.steps[0].labels.mc_prev == 0.95);
  CHECK(to_json(r)["first_given"] == true);

  LabelInput bad = input("bad");
  bad.mc_first = 1.5;
  try {
    lab.submit(bad, [](LabelResult) {});
    FAIL("no error");
  } catch (const ValueError& e) {
    CHECK(std::string(e.what()).find("mc_first: 'bad' gives 1.5") != std::string::npos);
  }
}
