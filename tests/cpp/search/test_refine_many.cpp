#include <doctest/doctest.h>

#include <set>
#include <stdexcept>

#include "doubles.hpp"
#include "genprm/search/refine.hpp"

using namespace genprm;
using namespace search_test;

namespace {
/// The policy: problem k ("pk") needs k revisions: its solution is wrong until revision k. A
/// solution ends in \boxed{its revision number}, which the next revision prompt quotes. Writes
/// the request's seed into the text so seeds are checked too.
Written policy(const GenerationRequest& req) {
  const std::string& p = req.prompt_text;
  const int need = p[p.find('p') + 1] - '0';
  int revisions = 0;
  if (p.find("REVISE") != std::string::npos) {
    const size_t b = p.find("\\boxed{");
    revisions = b == std::string::npos ? 1 : p[b + 7] - '0' + 1;
  }
  Written w;
  w.text = (revisions >= need ? std::string("good step") : std::string("wrong step")) + "\n\nseed " +
           std::to_string(req.params.seed.value_or(0)) + "\n\n\\boxed{" + std::to_string(revisions) + "}";
  return w;
}

/// A generator that writes by request (for seeds); one request answered per poll().
struct SeedGenerator : ScriptedGenerator {
  bool poll() {
    if (pending.empty()) return false;
    Pending p = std::move(pending.front());
    pending.pop_front();
    GenerationOutput out;
    out.request_id = p.id;
    if (p.req.prompt_text.find("FAILGEN") != std::string::npos) {
      out.error = "out of KV blocks";
    } else {
      Written w = policy(p.req);
      SampleOutput s;
      s.text = w.text;
      s.finish_reason = "stop";
      s.token_ids.assign(w.text.size(), 7);
      out.samples.push_back(s);
    }
    p.cb(std::move(out));
    return true;
  }
};

search::FunctionScorer wrong_scorer(std::vector<std::string>* seen) {
  return search::FunctionScorer{[seen](const std::string& problem, const search::Solutions& sols) {
    if (seen) seen->push_back(problem);
    if (problem.find("THROW") != std::string::npos) throw std::runtime_error("scorer exploded");
    std::vector<search::StepScores> out;
    for (const auto& s : sols) {
      search::StepScores sc;
      for (const auto& step : s) {
        const bool wrong = step.find("wrong") != std::string::npos;
        sc.rewards.push_back(wrong ? 0.1 : 0.8);
        sc.critiques.push_back(wrong ? "bad" : "fine");
      }
      out.push_back(sc);
    }
    return out;
  }};
}

search::RefineOptions options(int cap) {
  search::RefineOptions o;
  o.max_turns = 3;
  o.seed = 11;
  o.max_problems_in_flight = cap;
  o.refine_template = "REVISE {problem}\n{solution}\n{feedback}";
  return o;
}

void check_same(const search::RefineResult& a, const search::RefineResult& b) {
  REQUIRE(a.turns.size() == b.turns.size());
  CHECK(a.all_correct == b.all_correct);
  CHECK(a.requests == b.requests);
  CHECK(a.generated_tokens == b.generated_tokens);
  for (size_t i = 0; i < a.turns.size(); ++i) {
    CHECK(a.turns[i].prompt == b.turns[i].prompt);
    CHECK(a.turns[i].text == b.turns[i].text);
    CHECK(a.turns[i].rewards == b.turns[i].rewards);
    CHECK(a.turns[i].incorrect == b.turns[i].incorrect);
    CHECK(a.turns[i].feedback == b.turns[i].feedback);
    CHECK(a.turns[i].answer == b.turns[i].answer);
  }
}
}  // namespace

TEST_CASE("refine run_many: per problem exactly the one-problem refinement, all in flight together") {
  std::vector<search::RefineProblem> in;
  for (int k : {2, 0, 3, 1, 5}) {
    const std::string p = "p" + std::to_string(k);
    in.push_back({p, "Q " + p, std::nullopt, std::nullopt});
  }
  in[3].seed = 99;                    // a per-problem seed
  in[1].initial = "given\n\nwrong";  // starts from a given solution
  SeedGenerator gen;
  auto scorer = wrong_scorer(nullptr);
  search::Refiner<SeedGenerator, search::FunctionScorer> r(gen, scorer, options(8));
  std::vector<size_t> order;
  auto many = r.run_many(in, [&](const search::RefineProblemResult& x) { order.push_back(x.index); });
  CHECK(gen.max_pending == 5);  // every problem's request in the generator at once
  REQUIRE(many.size() == 5);
  CHECK(std::set<size_t>(order.begin(), order.end()).size() == 5);
  CHECK(order != std::vector<size_t>{0, 1, 2, 3, 4});  // completion order: fewer turns finish first
  for (size_t i = 0; i < in.size(); ++i) {
    CHECK(many[i].index == i);
    REQUIRE(many[i].ok());
    SeedGenerator g1;
    auto s1 = wrong_scorer(nullptr);
    auto o = options(1);
    if (in[i].seed) o.seed = in[i].seed;
    auto one = search::refine(g1, s1, in[i].problem, in[i].prompt, o, in[i].initial);
    check_same(many[i].result, one);
  }
  // p3: wrong at turns 0..2, right at turn 3 = max_turns; p5 never right within 3 revisions
  CHECK(many[2].result.turns.size() == 4);
  CHECK(many[2].result.all_correct);
  CHECK(many[4].result.turns.size() == 4);
  CHECK(!many[4].result.all_correct);
  CHECK(many[1].result.turns[0].finish_reason == "given");
  CHECK(many[1].result.turns.size() == 2);
  CHECK(many[3].result.turns[0].text.find("seed " + std::to_string(search::detail::request_seed(99, 0, 0))) !=
        std::string::npos);
  CHECK(many[0].result.turns[1].text.find("seed " + std::to_string(search::detail::request_seed(11, 1, 0))) !=
        std::string::npos);
}

TEST_CASE("refine run_many: the cap bounds problems in flight; a finished one makes room") {
  std::vector<search::RefineProblem> in;
  for (int k : {1, 1, 0, 2, 0, 1}) in.push_back({"p" + std::to_string(k), "Q p" + std::to_string(k), {}, {}});
  SeedGenerator gen;
  std::vector<std::string> seen;
  auto scorer = wrong_scorer(&seen);
  auto res = search::refine_many(gen, scorer, in, options(2));
  CHECK(gen.max_pending == 2);
  int requests = 0;
  for (const auto& x : res) {
    REQUIRE(x.ok());
    CHECK(x.result.all_correct);
    requests += x.result.requests;
  }
  CHECK(requests == 1 + 1 + 0 + 2 + 0 + 1 + 6);
  CHECK(static_cast<int>(gen.log.size()) == requests);
  CHECK(seen.size() == gen.log.size());  // one scorer call per turn
  CHECK_THROWS_WITH_AS(search::refine_many(gen, scorer, in, options(0)), doctest::Contains("max_problems_in_flight"),
                       ValueError);
  CHECK(search::refine_many(gen, scorer, {}, options(2)).empty());
}

TEST_CASE("refine run_many: a failing problem reports its error, the others go on") {
  std::vector<search::RefineProblem> in = {{"p1", "Q p1", {}, {}},
                                           {"p2 THROW", "Q p2", {}, {}},
                                           {"p1", "Q p1 FAILGEN", {}, {}},
                                           {"p0", "Q p0", {}, {}}};
  SeedGenerator gen;
  auto scorer = wrong_scorer(nullptr);
  auto res = search::refine_many(gen, scorer, in, options(4));
  REQUIRE(res.size() == 4);
  CHECK(res[0].ok());
  CHECK(res[0].result.all_correct);
  CHECK(res[3].ok());
  CHECK(!res[1].ok());
  CHECK(res[1].error.find("scorer exploded") != std::string::npos);
  CHECK(res[1].result.requests == 1);  // partial result
  CHECK(!res[2].ok());
  CHECK(res[2].error.find("refine: generation failed at turn 0: out of KV blocks") != std::string::npos);
  CHECK_THROWS_AS(std::rethrow_exception(res[2].exception), Error);
  // run() throws the failure itself
  SeedGenerator g1;
  CHECK_THROWS_WITH_AS(search::refine(g1, scorer, "p2 THROW", "Q p2", options(1)),
                       doctest::Contains("scorer exploded"), std::runtime_error);
}

TEST_CASE("refine run_many: an asynchronous scorer gets the batches of several problems at once") {
  struct Async {
    search::FunctionScorer inner = wrong_scorer(nullptr);
    std::deque<std::tuple<std::string, search::Solutions, search::ScoreCallback>> queue;
    size_t max_queued = 0;
    int polls = 0;
    void score(const std::string& problem, search::Solutions sols, search::ScoreCallback done) {
      queue.emplace_back(problem, std::move(sols), std::move(done));
      max_queued = std::max(max_queued, queue.size());
    }
    bool poll() {
      if (queue.empty()) return false;
      if (++polls % 3) return true;  // slow: batches pile up
      auto [p, sols, done] = std::move(queue.back());  // out of order
      queue.pop_back();
      inner.score(p, std::move(sols), std::move(done));
      return true;
    }
  };
  std::vector<search::RefineProblem> in;
  for (int k : {1, 2, 0, 1}) in.push_back({"p" + std::to_string(k), "Q p" + std::to_string(k), {}, {}});
  SeedGenerator gen;
  Async scorer;
  auto res = search::refine_many(gen, scorer, in, options(4));
  CHECK(scorer.max_queued >= 2);
  for (size_t i = 0; i < in.size(); ++i) {
    REQUIRE(res[i].ok());
    SeedGenerator g1;
    auto s1 = wrong_scorer(nullptr);
    check_same(res[i].result, search::refine(g1, s1, in[i].problem, in[i].prompt, options(1)));
  }
}
