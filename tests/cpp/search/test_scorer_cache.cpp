// VerifierScorer's prefix cache over the real prm::Verifier (scripted model, fake sandbox):
// hits and misses, only new steps verified, earlier rewards kept, the option to turn it off,
// the LRU bound, and beam search verifying each step of each beam once.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "../prm/doubles.hpp"
#include "doubles.hpp"
#include "genprm/prm/verifier.hpp"
#include "genprm/search/beam_search.hpp"
#include "genprm/search/scorer.hpp"

using namespace genprm;

namespace {

using PrmVerifier = prm::Verifier<prmtest::ScriptedGenerator, prmtest::FakeExecutor>;

/// Analysis, one code block, judgement; p(Yes) changes with every request, so a step that is
/// verified again gets another reward.
struct DriftingModel {
  int calls = 0;
  prmtest::Continuation operator()(const std::string& prompt) {
    prmtest::Continuation c;
    ++calls;
    c.p_yes = 0.05 + 0.1 * static_cast<double>(calls % 9);
    c.p_no = 1.0 - c.p_yes;
    if (prmtest::ends_with(prompt, "step by step: ")) c.text = "fine.\n</analyze>\n";
    else if (prmtest::ends_with(prompt, "```python\n")) c.text = "x = 1\nprint(x)\n```\n";
    else c.text = "</verify>\n<output>\n**Judgement**: $\\boxed{Yes}$\n</output>\n";
    return c;
  }
};

struct Rig {
  DriftingModel model;
  prmtest::ScriptedGenerator gen;
  prmtest::FakeExecutor exec;
  PrmVerifier verifier;
  Rig() : verifier(gen, exec, prmtest::fake_tokenizer(), prm::VerifierConfig{}) {
    gen.script = [this](const std::string& p, int) { return model(p); };
  }
};

std::vector<search::StepScores> score_all(search::VerifierScorer<PrmVerifier>& s, const std::string& problem,
                                          search::Solutions sols) {
  std::vector<search::StepScores> got;
  bool back = false;
  s.score(problem, std::move(sols), [&](std::vector<search::StepScores> r) {
    got = std::move(r);
    back = true;
  });
  while (s.poll()) {
  }
  REQUIRE(back);
  return got;
}

constexpr size_t kRequestsPerStep = 3;  // analyze, code round, output round (majority 1)

}  // namespace

TEST_CASE("VerifierScorer cache: a partial solution's verified prefix is reused, not re-sampled") {
  Rig rig;
  search::VerifierScorer<PrmVerifier> scorer(rig.verifier);
  auto first = score_all(scorer, "P", {{"a"}, {"b"}});
  CHECK(scorer.stats().misses == 2);
  CHECK(scorer.stats().hits == 0);
  CHECK(scorer.stats().cached == 2);
  CHECK(rig.gen.log.size() == 2 * kRequestsPerStep);

  // Next iteration: every candidate extends a scored one.
  auto second = score_all(scorer, "P", {{"a", "c"}, {"a", "d"}, {"b", "e"}});
  auto st = scorer.stats();
  CHECK(st.hits == 3);
  CHECK(st.misses == 2);
  CHECK(st.reused_steps == 3);
  CHECK(st.verified_steps == 2 + 3);
  CHECK(st.cached == 3);      // the longer results replaced "a" and "b"
  CHECK(st.superseded == 2);
  CHECK(rig.gen.log.size() == (2 + 3) * kRequestsPerStep);
  // The earlier step keeps its reward (re-sampling it would give another one).
  CHECK(second[0].rewards[0] == first[0].rewards[0]);
  CHECK(second[1].rewards[0] == first[0].rewards[0]);
  CHECK(second[2].rewards[0] == first[1].rewards[0]);
  CHECK(second[0].critiques.size() == 2);

  // The same partial solution again: nothing to generate.
  const size_t before = rig.gen.log.size();
  auto again = score_all(scorer, "P", {{"a", "c"}});
  CHECK(rig.gen.log.size() == before);
  CHECK(again[0].rewards == second[0].rewards);
  CHECK(scorer.stats().hits == 4);

  // Another problem with the same step texts is not a hit; a trailing empty step is.
  score_all(scorer, "Q", {{"a"}});
  CHECK(scorer.stats().misses == 3);
  const size_t n = rig.gen.log.size();
  auto trailing = score_all(scorer, "P", {{"a", "c", ""}});
  CHECK(rig.gen.log.size() == n);
  CHECK(trailing[0].rewards ==
        std::vector<double>{second[0].rewards[0], second[0].rewards[1], second[0].rewards[1]});
  CHECK(scorer.stats().hits == 5);

  scorer.clear_cache();
  CHECK(scorer.stats().cached == 0);
  score_all(scorer, "P", {{"a", "c"}});
  CHECK(scorer.stats().misses == 4);
}

TEST_CASE("VerifierScorer cache: off re-verifies everything; max_cached bounds it (LRU)") {
  Rig rig;
  search::VerifierScorerOptions off;
  off.reuse_prefixes = false;
  search::VerifierScorer<PrmVerifier> scorer(rig.verifier, off);
  auto first = score_all(scorer, "P", {{"a"}});
  auto second = score_all(scorer, "P", {{"a", "c"}});
  CHECK(scorer.stats().hits == 0);
  CHECK(scorer.stats().misses == 2);
  CHECK(scorer.stats().cached == 0);
  CHECK(rig.gen.log.size() == 3 * kRequestsPerStep);
  CHECK(second[0].rewards[0] != first[0].rewards[0]);  // re-sampled

  Rig rig2;
  search::VerifierScorerOptions small;
  small.max_cached = 2;
  small.drop_superseded = false;
  search::VerifierScorer<PrmVerifier> lru(rig2.verifier, small);
  score_all(lru, "P", {{"a"}});
  score_all(lru, "P", {{"b"}});
  score_all(lru, "P", {{"a", "x"}});  // hit on "a" (now recent), then evicts "b"
  CHECK(lru.stats().evictions == 1);
  CHECK(lru.stats().cached == 2);
  score_all(lru, "P", {{"b", "y"}});  // "b" is gone: verified from scratch
  CHECK(lru.stats().hits == 1);
  CHECK(lru.stats().misses == 3);
}

TEST_CASE("beam search with a GenPRM verifier scorer verifies each step of each beam once") {
  auto policy_script = [](const std::string& prompt, int sample) {
    search_test::Written w;
    w.text = "step" + std::to_string(prompt.size() % 97) + "-" + std::to_string(sample);
    w.stop_reason = "\n\n";
    return w;
  };
  search::BeamSearchOptions o;
  o.beams = 4;
  o.width = 2;
  o.max_steps = 3;

  auto run = [&](bool reuse, long& verified, long& hits, size_t& prm_requests, long& candidate_steps,
                 long& candidates) {
    Rig rig;
    search_test::ScriptedGenerator policy;
    policy.script = policy_script;
    search::VerifierScorerOptions so;
    so.reuse_prefixes = reuse;
    search::VerifierScorer<PrmVerifier> scorer(rig.verifier, so);
    auto res = search::beam_search(policy, scorer, "P", "Q: P\n", o);
    verified = scorer.stats().verified_steps;
    hits = scorer.stats().hits;
    prm_requests = rig.gen.log.size();
    candidate_steps = 0;
    candidates = 0;
    for (const auto& it : res.iterations) {
      for (const auto& c : it.candidates) {
        candidate_steps += static_cast<long>(c.steps.size());
        candidates += 1;
        CHECK(c.rewards.size() == c.steps.size());
      }
    }
    return res;
  };
  long v_on = 0, h_on = 0, cs_on = 0, n_on = 0, v_off = 0, h_off = 0, cs_off = 0, n_off = 0;
  size_t r_on = 0, r_off = 0;
  auto on = run(true, v_on, h_on, r_on, cs_on, n_on);
  auto off = run(false, v_off, h_off, r_off, cs_off, n_off);
  REQUIRE(on.iterations.size() == 3);
  REQUIRE(n_on == 12);
  // With the cache each candidate costs one new step; without, its whole partial solution.
  CHECK(v_on == n_on);
  CHECK(h_on == n_on - 4);  // every candidate after iteration 1 extends a scored beam
  CHECK(r_on == static_cast<size_t>(v_on) * kRequestsPerStep);
  CHECK(v_off == cs_off);
  CHECK(h_off == 0);
  CHECK(r_off == static_cast<size_t>(v_off) * kRequestsPerStep);
  CHECK(v_off == 4 + 8 + 12);
  // A kept beam's earlier rewards do not change from one iteration to the next.
  for (size_t k = 1; k < on.iterations.size(); ++k) {
    const auto& prev = on.iterations[k - 1];
    for (const auto& c : on.iterations[k].candidates) {
      const search::Beam* parent = nullptr;
      std::vector<std::string> prefix(c.steps.begin(), c.steps.end() - 1);
      for (size_t j = 0; j < prev.candidates.size(); ++j) {
        if (prev.status[j] == "kept" && prev.candidates[j].steps == prefix) parent = &prev.candidates[j];
      }
      REQUIRE(parent != nullptr);
      for (size_t s = 0; s < parent->rewards.size(); ++s) CHECK(c.rewards[s] == parent->rewards[s]);
    }
  }
}
