#include <doctest/doctest.h>

#include <set>

#include "doubles.hpp"
#include "genprm/search/beam_search.hpp"

using namespace genprm;
using namespace search_test;

namespace {

std::vector<std::string> split(const std::string& s, const std::string& sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t k = s.find(sep, pos);
    if (k == std::string::npos) k = s.size();
    if (k > pos) out.push_back(s.substr(pos, k - pos));
    pos = k + sep.size();
  }
  return out;
}

/// Prompt "P" + steps: sample i of a beam whose last step is named X writes step X + ('a' + i).
/// Names in `boxed` write a final answer, names in `eos` end with EOS.
ScriptedGenerator tree_generator(std::set<std::string> boxed, std::set<std::string> eos) {
  ScriptedGenerator g;
  g.script = [boxed, eos](const std::string& prompt, int i) {
    REQUIRE(prompt.rfind("P", 0) == 0);
    auto steps = split(prompt.substr(1), "\n\n");
    std::string name = (steps.empty() ? "" : TableScorer::name(steps.back())) + std::string(1, char('a' + i));
    Written w;
    w.text = boxed.count(name) ? name + " so \\boxed{7}" : name;
    w.stop_reason = eos.count(name) ? "" : "\n\n";
    return w;
  };
  return g;
}

std::vector<std::string> names(const search::BeamIteration& it) {
  std::vector<std::string> out;
  for (const auto& c : it.candidates) out.push_back(TableScorer::name(c.steps.back()));
  return out;
}

TableScorer tree_scores() {
  TableScorer s;
  s.table = {{"a", .3},  {"b", .9},   {"c", .5},   {"d", .5},   {"ba", .2},  {"bb", .8},  {"ca", .7},
             {"cb", .6}, {"caa", .95}, {"cab", .4}, {"cba", .3}, {"cbb", .5}, {"cbba", .99}};
  return s;
}

}  // namespace

TEST_CASE("beam_search: exact beams, pruning order, one request of n = M per kept beam") {
  auto gen = tree_generator({"bb"}, {"caa"});
  TableScorer scorer = tree_scores();
  search::BeamSearchOptions o;
  o.beams = 4;
  o.width = 2;
  o.max_steps = 4;
  auto res = search::beam_search(gen, scorer, "the problem", "P", o);

  REQUIRE(res.iterations.size() == 4);
  // iteration 1: the prompt alone, one request of n = N
  CHECK(names(res.iterations[0]) == std::vector<std::string>{"a", "b", "c", "d"});
  CHECK(res.iterations[0].status == std::vector<std::string>{"pruned", "kept", "kept", "pruned"});  // c/d tie: c
  // iteration 2: b then c (rank order), each with M = 2
  CHECK(names(res.iterations[1]) == std::vector<std::string>{"ba", "bb", "ca", "cb"});
  CHECK(res.iterations[1].status == std::vector<std::string>{"pruned", "finished", "kept", "kept"});
  CHECK(names(res.iterations[2]) == std::vector<std::string>{"caa", "cab", "cba", "cbb"});
  CHECK(res.iterations[2].status == std::vector<std::string>{"finished", "kept", "pruned", "kept"});
  // iteration 3 kept cbb (.5) before cab (.4): expanded in that order
  CHECK(names(res.iterations[3]) == std::vector<std::string>{"cbba", "cbbb", "caba", "cabb"});
  CHECK(res.iterations[3].status == std::vector<std::string>(4, "finished"));

  // requests: 1 + 2 + 2 + 2, prompts = "P" + steps joined and ended by the separator
  REQUIRE(gen.log.size() == 7);
  CHECK(res.requests == 7);
  const std::vector<std::pair<std::string, int>> expected = {
      {"P", 4},           {"Pb\n\n", 2},           {"Pc\n\n", 2},          {"Pc\n\nca\n\n", 2},
      {"Pc\n\ncb\n\n", 2}, {"Pc\n\ncb\n\ncbb\n\n", 2}, {"Pc\n\nca\n\ncab\n\n", 2}};
  for (size_t i = 0; i < expected.size(); ++i) {
    CHECK(gen.log[i].prompt_text == expected[i].first);
    CHECK(gen.log[i].n == expected[i].second);
    CHECK(gen.log[i].params.stop == std::vector<std::string>{"\n\n", "\nStep "});
    CHECK(gen.log[i].params.max_tokens == 512);
    CHECK(!gen.log[i].params.seed);
  }
  CHECK(gen.max_pending == 2);  // both beams of an iteration were in flight together

  // one scorer batch per iteration with every candidate's full partial solution
  REQUIRE(scorer.batches.size() == 4);
  CHECK(scorer.batches[1][1] == std::vector<std::string>{"b", "bb so \\boxed{7}"});
  CHECK(scorer.batches[3][0] == std::vector<std::string>{"c", "cb", "cbb", "cbba"});

  // finished beams set aside, in order, with their reasons
  std::vector<std::string> fin, why;
  for (const auto& b : res.finished) {
    fin.push_back(TableScorer::name(b.steps.back()));
    why.push_back(b.finish_reason);
  }
  CHECK(fin == std::vector<std::string>{"bb", "caa", "cbba", "cbbb", "caba", "cabb"});
  CHECK(why == std::vector<std::string>{"answer", "eos", "max_steps", "max_steps", "max_steps", "max_steps"});
  REQUIRE(res.finished[0].answer);
  CHECK(*res.finished[0].answer == "7");
  CHECK(res.finished[0].rewards == std::vector<double>{.9, .8});
  CHECK(res.finished[0].critiques == std::vector<std::string>{"critique of b", "critique of bb"});

  // the best finished beam by last-step score: cbba (.99)
  CHECK(res.best.steps == std::vector<std::string>{"c", "cb", "cbb", "cbba"});
  CHECK(res.best.score == doctest::Approx(.99));
  CHECK(res.best.iteration == 4);
  CHECK(res.best.parent == 0);
  CHECK(res.best.tokens == 1 + 1 + 2 + 1 + 3 + 1 + 4 + 1);
}

TEST_CASE("beam_search: the aggregation drives pruning and the winner") {
  auto gen = tree_generator({}, {});
  TableScorer scorer = tree_scores();
  search::BeamSearchOptions o;
  o.beams = 4;
  o.width = 2;
  o.max_steps = 2;
  o.aggregation = search::Aggregation::Min;
  auto res = search::beam_search(gen, scorer, "q", "P", o);
  REQUIRE(res.iterations.size() == 2);
  // min over [b, ba] = .2, [b, bb] = .8, [c, ca] = .5, [c, cb] = .5 -> bb wins
  CHECK(res.best.steps == std::vector<std::string>{"b", "bb"});
  CHECK(res.best.score == doctest::Approx(.8));
  o.aggregation = search::Aggregation::Avg;  // [c, ca] = .6, [b, ba] = .55, [b, bb] = .85
  auto gen2 = tree_generator({}, {});
  auto res2 = search::beam_search(gen2, scorer, "q", "P", o);
  CHECK(res2.best.score == doctest::Approx(.85));
}

TEST_CASE("beam_search: ties for the winner go to the beam finished first") {
  auto gen = tree_generator({"a", "b", "c", "d"}, {});
  TableScorer scorer;
  scorer.fallback = 0.5;
  search::BeamSearchOptions o;
  o.beams = 4;
  o.width = 2;
  auto res = search::beam_search(gen, scorer, "q", "P", o);
  CHECK(res.iterations.size() == 1);
  CHECK(res.finished.size() == 4);
  CHECK(res.best.steps == std::vector<std::string>{"a so \\boxed{7}"});
  CHECK(res.best.order == 0);
}

TEST_CASE("beam_search: token budget finishes beams; width = beams keeps one beam") {
  auto gen = tree_generator({}, {});
  TableScorer scorer = tree_scores();
  search::BeamSearchOptions o;
  o.beams = 2;
  o.width = 2;
  o.max_total_tokens = 5;  // a: 2 tokens, ab: +3 = 5 -> budget at step 2
  auto res = search::beam_search(gen, scorer, "q", "P", o);
  REQUIRE(res.iterations.size() == 2);
  CHECK(res.iterations[0].status == std::vector<std::string>{"pruned", "kept"});  // b (.9) over a (.3)
  CHECK(res.iterations[1].status == std::vector<std::string>{"finished", "finished"});
  CHECK(res.finished[0].finish_reason == "budget");
  CHECK(res.best.steps == std::vector<std::string>{"b", "bb"});
  CHECK(gen.log.size() == 2);
  CHECK(gen.log[1].n == 2);
}

TEST_CASE("beam_search: an asynchronous scorer is driven with the generator") {
  auto gen = tree_generator({"bb"}, {"caa"});
  AsyncTableScorer scorer;
  scorer.inner = tree_scores();
  search::BeamSearchOptions o;
  o.max_steps = 4;
  auto res = search::beam_search(gen, scorer, "q", "P", o);
  CHECK(res.best.steps == std::vector<std::string>{"c", "cb", "cbb", "cbba"});
  CHECK(scorer.inner.batches.size() == 4);
  CHECK(scorer.polls > 0);
}

TEST_CASE("beam_search: seeds are per request, distinct, and reproducible") {
  auto run = [](uint64_t seed) {
    auto gen = tree_generator({}, {});
    TableScorer scorer = tree_scores();
    search::BeamSearchOptions o;
    o.max_steps = 3;
    o.seed = seed;
    search::beam_search(gen, scorer, "q", "P", o);
    std::vector<uint64_t> s;
    for (const auto& r : gen.log) s.push_back(*r.params.seed);
    return s;
  };
  auto a = run(11), b = run(11), c = run(12);
  CHECK(a == b);
  CHECK(a != c);
  CHECK(std::set<uint64_t>(a.begin(), a.end()).size() == a.size());
}

TEST_CASE("beam_search: errors") {
  auto gen = tree_generator({}, {});
  TableScorer scorer;
  search::BeamSearchOptions o;
  o.beams = 6;
  o.width = 4;
  CHECK_THROWS_WITH_AS(search::beam_search(gen, scorer, "q", "P", o),
                       doctest::Contains("beams (6) must be divisible by width (4)"), ValueError);
  o = {};
  o.max_steps = 0;
  CHECK_THROWS_AS(search::beam_search(gen, scorer, "q", "P", o), ValueError);
  o = {};
  o.step_delimiters = {};
  CHECK_THROWS_AS(search::beam_search(gen, scorer, "q", "P", o), ValueError);

  search::FunctionScorer bad{[](const std::string&, const search::Solutions& s) {
    return std::vector<search::StepScores>(s.size() - 1);
  }};
  CHECK_THROWS_WITH_AS(search::beam_search(gen, bad, "q", "P", {}), doctest::Contains("3 results for 4 solutions"),
                       Error);

  ScriptedGenerator failing;
  failing.script = [](const std::string&, int) { return Written{"x"}; };
  struct FailingGen : ScriptedGenerator {
    bool poll() {
      if (pending.empty()) return false;
      auto p = std::move(pending.front());
      pending.pop_front();
      GenerationOutput out;
      out.error = "kv cache exhausted";
      p.cb(out);
      return true;
    }
  } fg;
  TableScorer sc;
  CHECK_THROWS_WITH_AS(search::beam_search(fg, sc, "q", "P", {}), doctest::Contains("kv cache exhausted"), Error);
}
