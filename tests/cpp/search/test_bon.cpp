#include <doctest/doctest.h>

#include "genprm/eval/bon.hpp"

using namespace genprm;
using eval::BonCandidate;
using eval::BonProblem;

TEST_CASE("best_of_n metrics on a hand-computed example") {
  // Problem A (ground truth 1/2):
  //   c0 \frac{1}{2} [0.9, 0.2]  last .2  min .2  avg .55   prod .18    correct
  //   c1 1/3         [0.6, 0.6]  last .6  min .6  avg .6    prod .36    wrong
  //   c2 1/2         [0.3, 0.95] last .95 min .3  avg .625  prod .285   correct
  //   c3 (missing)   [0.1]       .1 everywhere                          wrong
  // Problem B (ground truth 3): c0 "4" [.8], c1 "3" [.7], c2 "3.0" [.4], c3 "4" [.2]
  std::vector<BonProblem> probs = {
      {"A", "1/2", {{"\\frac{1}{2}", {0.9, 0.2}}, {"1/3", {0.6, 0.6}}, {"1/2", {0.3, 0.95}}, {std::nullopt, {0.1}}}},
      {"B", "3", {{"4", {0.8}}, {"3", {0.7}}, {"3.0", {0.4}}, {"4", {0.2}}}},
  };
  auto rep = eval::score_best_of_n(probs, {1, 2, 4});
  CHECK(rep.problems == 2);
  CHECK(rep.methods == std::vector<std::string>{"bon_last", "bon_min", "bon_avg", "bon_prod", "majority",
                                                "weighted_last", "weighted_min", "weighted_avg", "weighted_prod",
                                                "pass"});
  REQUIRE(rep.points.size() == 3);
  // n = 1: only c0; A right, B wrong, everywhere
  CHECK(rep.points[0].n == 1);
  for (const auto& m : rep.methods) CHECK_MESSAGE(rep.points[0].accuracy.at(m) == 50.0, m);
  // n = 2: A picks c1 by every score, majority tie -> first group (c0, right), B wrong except pass
  const std::map<std::string, double> n2 = {{"bon_last", 0},      {"bon_min", 0},      {"bon_avg", 0},
                                            {"bon_prod", 0},      {"majority", 50},    {"weighted_last", 0},
                                            {"weighted_min", 0},  {"weighted_avg", 0}, {"weighted_prod", 0},
                                            {"pass", 100}};
  CHECK(rep.points[1].accuracy == n2);
  // n = 4: A: last -> c2, min -> c1, avg -> c2, prod -> c1; majority {c0,c2}; weighted: min .5 < .6.
  //        B: every score picks c0 ("4"); majority 2-2 tie -> "4"; weighted 1.0 vs 1.1 -> "3".
  const std::map<std::string, double> n4 = {{"bon_last", 50},       {"bon_min", 0},        {"bon_avg", 50},
                                            {"bon_prod", 0},        {"majority", 50},      {"weighted_last", 100},
                                            {"weighted_min", 50},   {"weighted_avg", 100}, {"weighted_prod", 100},
                                            {"pass", 100}};
  CHECK(rep.points[2].accuracy == n4);
  CHECK(rep.points[2].hits.at("weighted_min") == 1);
}

TEST_CASE("best_of_n metrics: errors name the problem or the size") {
  std::vector<BonProblem> probs = {{"p0", "1", {{"1", {0.5}}}}, {"short", "2", {}}};
  CHECK_THROWS_WITH_AS(eval::score_best_of_n(probs, {1}), doctest::Contains("'short'"), ValueError);
  CHECK_THROWS_AS(eval::score_best_of_n({}, {1}), ValueError);
  CHECK_THROWS_AS(eval::score_best_of_n({probs[0]}, {}), ValueError);
  CHECK_THROWS_WITH_AS(eval::score_best_of_n({probs[0]}, {0}), doctest::Contains("sizes"), ValueError);
  CHECK_THROWS_WITH_AS(eval::score_best_of_n({probs[0]}, {2}), doctest::Contains("fewer than size 2"), ValueError);
}

// --- search/best_of_n.hpp: Best-of-N over many problems ------------------------------------

#include <algorithm>
#include <set>
#include <stdexcept>

#include "doubles.hpp"
#include "genprm/search/batch_scorer.hpp"
#include "genprm/search/best_of_n.hpp"

namespace {
using search_test::ScriptedGenerator;
using search_test::Written;

/// Prompt "P<k>": sample i writes "first <k><i>\n\nso \boxed{<answer>}" where the answer is
/// k + (i % 2) (sample 2 writes no box, so its answer is the last number); prompt "FAIL" comes
/// back with an error.
struct BonGen : ScriptedGenerator {
  bool lifo = false;  ///< answer the newest request first (completion order != input order)
  BonGen() {
    script = [](const std::string& prompt, int i) {
      const int k = prompt[1] - '0';
      Written w;
      w.text = "first " + std::to_string(k) + std::to_string(i) + "\n\nStep 2: so " +
               (i == 2 ? std::string("it is 7") : "\\boxed{" + std::to_string(k + i % 2) + "}");
      return w;
    };
  }
  bool poll() {
    if (pending.empty()) return false;
    if (lifo) std::rotate(pending.begin(), pending.end() - 1, pending.end());
    if (pending.front().req.prompt_text == "FAIL") {
      Pending p = std::move(pending.front());
      pending.pop_front();
      GenerationOutput out;
      out.error = "out of KV blocks";
      p.cb(std::move(out));
      return true;
    }
    return ScriptedGenerator::poll();
  }
};

/// Reward of a step: 0.9 when its first line ends in an even digit, 0.2 otherwise; problems whose
/// text contains "THROW" make the scorer throw.
std::vector<search::StepScores> parity_scores(const std::string& problem, const search::Solutions& sols) {
  if (problem.find("THROW") != std::string::npos) throw std::runtime_error("scorer exploded");
  std::vector<search::StepScores> out;
  for (const auto& s : sols) {
    search::StepScores sc;
    for (const auto& step : s) {
      const std::string head = step.substr(0, step.find('\n'));
      sc.rewards.push_back((head.back() - '0') % 2 == 0 ? 0.9 : 0.2);
    }
    out.push_back(sc);
  }
  return out;
}

std::vector<search::BestOfNProblem> bon_problems(int count) {
  std::vector<search::BestOfNProblem> ps;
  for (int k = 0; k < count; ++k)
    ps.push_back({"q" + std::to_string(k), "problem " + std::to_string(k), "P" + std::to_string(k),
                  k % 2 ? std::optional<std::string>() : std::optional<std::string>(std::to_string(k + 1))});
  return ps;
}

search::BestOfNOptions bon_options(int cap, int n = 3) {
  search::BestOfNOptions o;
  o.n = n;
  o.max_problems_in_flight = cap;
  o.sampling.seed = 11;
  o.aggregation = search::Aggregation::Min;
  return o;
}

/// A synchronous verifier double: rewards as parity_scores; records the ids of every batch.
struct FakeVerifier {
  std::vector<std::vector<std::string>> batches;
  std::vector<prm::SolutionResult> verify_many(std::vector<prm::SolutionInput> in) {
    batches.emplace_back();
    std::vector<prm::SolutionResult> out;
    for (auto& x : in) {
      batches.back().push_back(x.id);
      prm::SolutionResult r;
      r.id = x.id;
      r.problem = x.problem;
      if (x.problem.find("BADVERIFY") != std::string::npos) r.error = "sandbox lost";
      r.value = parity_scores(x.problem, {x.steps})[0].rewards;
      out.push_back(std::move(r));
    }
    return out;
  }
};
}  // namespace

TEST_CASE("best_of_n_many: one request of n per problem, split, extracted, scored and picked once") {
  BonGen gen;
  search::FunctionScorer scorer{parity_scores};
  auto res = search::best_of_n_many(gen, scorer, bon_problems(2), bon_options(2));
  REQUIRE(res.size() == 2);
  REQUIRE(gen.log.size() == 2);
  for (const auto& req : gen.log) {
    CHECK(req.n == 3);
    CHECK(req.params.seed == 11u);  // the sampling parameters as given
  }
  const auto& r0 = res[0];
  REQUIRE(r0.ok());
  REQUIRE(r0.result.candidates.size() == 3);
  const auto& c1 = r0.result.candidates[1];
  CHECK(c1.text == "first 01\n\nStep 2: so \\boxed{1}");
  CHECK(c1.steps == std::vector<std::string>{"first 01", "Step 2: so \\boxed{1}"});  // the delimiters rule
  CHECK(c1.answer == search::Answer("1"));
  CHECK(r0.result.candidates[2].answer == search::Answer("7"));  // no box: the last number
  CHECK(c1.tokens == static_cast<long>(c1.text.size()));
  CHECK(c1.rewards == std::vector<double>{0.2, 0.2});
  CHECK(r0.result.candidates[0].rewards == std::vector<double>{0.9, 0.2});
  CHECK(r0.result.candidates[2].rewards == std::vector<double>{0.9, 0.2});
  // the picks: bon by each aggregation, votes, graded against "1"
  std::vector<std::string> methods;
  for (const auto& p : r0.result.picks) methods.push_back(p.method);
  CHECK(methods == std::vector<std::string>{"bon_last", "weighted_last", "bon_min", "weighted_min", "bon_avg",
                                            "weighted_avg", "bon_prod", "weighted_prod", "majority"});
  CHECK(r0.result.pick("bon_last").index == size_t(0));  // 0.2 each: the lowest index
  CHECK(r0.result.pick("bon_last").answer == search::Answer("0"));
  CHECK(r0.result.pick("bon_last").correct == false);
  CHECK(r0.result.pick("majority").index == size_t(0));  // "0", "1", "7": one vote each, first group
  CHECK(r0.result.pick("weighted_avg").index == size_t(0));  // 0.55 (c0) = 0.55 (c2) > 0.2: earlier group
  CHECK(r0.result.pass == true);                              // c1 says 1
  // no ground truth: nothing graded
  const auto& r1 = res[1];
  REQUIRE(r1.ok());
  CHECK_FALSE(r1.result.pass.has_value());
  for (const auto& p : r1.result.picks) CHECK_FALSE(p.correct.has_value());
  // the same picks as eval/bon.hpp's curves over all N (one pick function)
  eval::BonProblem bp{"q0", "1", {}};
  for (const auto& c : r0.result.candidates) bp.candidates.push_back({c.answer, c.rewards});
  auto rep = eval::score_best_of_n({bp}, {3});
  for (const auto& p : r0.result.picks) CHECK_MESSAGE(rep.points[0].hits.at(p.method) == (p.correct == true), p.method);
  CHECK(rep.points[0].hits.at("pass") == 1);
}

TEST_CASE("best_of_n_many: the cap bounds problems decoding; a generated problem frees its slot before scoring") {
  for (int cap : {1, 2}) {
    CAPTURE(cap);
    search_test::AsyncTableScorer scorer;  // answers one batch per poll, after generation
    size_t most = 0;
    struct Counting : BonGen {
      size_t* most;
      uint64_t submit(GenerationRequest req, GenerationCallback cb) {
        const uint64_t id = BonGen::submit(std::move(req), std::move(cb));
        *most = std::max(*most, pending.size());
        return id;
      }
    } counting;
    counting.most = &most;
    std::vector<size_t> order;
    auto res = search::best_of_n_many(counting, scorer, bon_problems(5), bon_options(cap),
                                      [&](const search::BestOfNProblemResult& r) { order.push_back(r.index); });
    CHECK(most == static_cast<size_t>(cap));
    CHECK(res.size() == 5);
    for (const auto& r : res) CHECK(r.ok());
    // admitted in input order
    std::vector<std::string> prompts;
    for (const auto& q : counting.log) prompts.push_back(q.prompt_text);
    CHECK(prompts == std::vector<std::string>{"P0", "P1", "P2", "P3", "P4"});
    if (cap == 1) CHECK(order == std::vector<size_t>{0, 1, 2, 3, 4});
  }
}

TEST_CASE("best_of_n_many: a failing problem reports its error, the others go on") {
  BonGen gen;
  search::FunctionScorer scorer{parity_scores};
  auto ps = bon_problems(4);
  ps[1].prompt = "FAIL";
  ps[2].problem = "problem THROW";
  auto res = search::best_of_n_many(gen, scorer, ps, bon_options(2));
  REQUIRE(res.size() == 4);
  CHECK(res[0].ok());
  CHECK_FALSE(res[1].ok());
  CHECK(res[1].error.find("generation failed: out of KV blocks") != std::string::npos);
  CHECK(res[1].result.candidates.empty());
  CHECK_FALSE(res[2].ok());
  CHECK(res[2].error == "scorer exploded");
  CHECK(res[2].result.picks.empty());
  CHECK(res[3].ok());
  // one problem alone: the failure is thrown
  BonGen one;
  using Runner = search::BestOfN<BonGen, search::FunctionScorer>;
  Runner runner(one, scorer, bon_options(1));
  CHECK_THROWS_WITH(runner.run(ps[2]), "scorer exploded");
  search::BestOfNOptions bad = bon_options(1);
  bad.n = 0;
  CHECK_THROWS_AS(search::best_of_n_many(one, scorer, ps, bad), ValueError);
}

TEST_CASE("best_of_n_many: a batched verifier verifies the waiting problems together, same rows") {
  // the reference: one problem at a time with a synchronous scorer
  BonGen ref_gen;
  search::FunctionScorer sync{parity_scores};
  auto ref = search::best_of_n_many(ref_gen, sync, bon_problems(4), bon_options(1, 2));
  for (size_t max_waiting : {size_t(0), size_t(4)}) {
    CAPTURE(max_waiting);
    BonGen inner;
    inner.lifo = true;  // generations come back newest first
    TrackedGenerator<BonGen> gen{inner};
    FakeVerifier v;
    search::VerifierScorerOptions whole;
    whole.reuse_prefixes = false;
    search::BatchVerifierScorer<FakeVerifier> scorer(v, [&] { return gen.busy; }, whole, max_waiting);
    auto res = search::best_of_n_many(gen, scorer, bon_problems(4), bon_options(2, 2));
    REQUIRE(res.size() == 4);
    for (size_t k = 0; k < 4; ++k) {
      REQUIRE(res[k].ok());
      REQUIRE(res[k].result.candidates.size() == ref[k].result.candidates.size());
      for (size_t j = 0; j < res[k].result.candidates.size(); ++j) {
        CHECK(res[k].result.candidates[j].text == ref[k].result.candidates[j].text);
        CHECK(res[k].result.candidates[j].rewards == ref[k].result.candidates[j].rewards);
      }
      CHECK(res[k].result.pick("bon_min").index == ref[k].result.pick("bon_min").index);
    }
    std::vector<std::string> all;
    for (const auto& b : v.batches) {
      // within a batch, problems in input order; solutions named "<id>:<j>"
      CHECK(std::is_sorted(b.begin(), b.end()));
      all.insert(all.end(), b.begin(), b.end());
    }
    std::sort(all.begin(), all.end());
    CHECK(all == std::vector<std::string>{"q0:0", "q0:1", "q1:0", "q1:1", "q2:0", "q2:1", "q3:0", "q3:1"});
    if (max_waiting == 0) CHECK(v.batches.size() == 1);  // only when the policy is idle: all at once
    if (max_waiting == 4) {
      CHECK(v.batches.size() >= 2);  // no generate-then-score barrier
      for (const auto& b : v.batches) CHECK(b.size() <= 4 + 2);
    }
  }
  // a failed verification fails only its problem
  BonGen inner;
  TrackedGenerator<BonGen> gen{inner};
  FakeVerifier v;
  search::BatchVerifierScorer<FakeVerifier> scorer(v, [&] { return gen.busy; });
  auto ps = bon_problems(3);
  ps[1].problem = "problem BADVERIFY";
  auto res = search::best_of_n_many(gen, scorer, ps, bon_options(3, 2));
  CHECK(res[0].ok());
  CHECK_FALSE(res[1].ok());
  CHECK(res[1].error.find("sandbox lost") != std::string::npos);
  CHECK(res[2].ok());
  CHECK(v.batches.size() == 1);
}
