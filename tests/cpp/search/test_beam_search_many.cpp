// Many problems' beam searches over one generator: same results as one by one, the in-flight
// cap, per-problem results in completion order, errors kept to their problem.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <set>

#include "doubles.hpp"
#include "genprm/search/beam_search.hpp"

using namespace genprm;
using namespace search_test;

namespace {

/// Prompt "<key>#" + steps joined by "\n\n" (+ "\n\n"): sample i of a beam whose last step is
/// named X writes X + ('a' + i); problem key k writes a boxed answer at names in boxed[k] and
/// ends with EOS at names in eos[k]. A step of problem "gen-fail" fails at generation.
struct Tree {
  std::map<std::string, std::set<std::string>> boxed, eos;
};

std::pair<std::string, std::vector<std::string>> parse(const std::string& prompt) {
  const size_t hash = prompt.find('#');
  REQUIRE(hash != std::string::npos);
  std::vector<std::string> steps;
  size_t pos = hash + 1;
  while (pos < prompt.size()) {
    size_t k = prompt.find("\n\n", pos);
    if (k == std::string::npos) k = prompt.size();
    if (k > pos) steps.push_back(prompt.substr(pos, k - pos));
    pos = k + 2;
  }
  return {prompt.substr(0, hash), steps};
}

/// ScriptedGenerator plus: outputs of prompts of problem `fail_key` carry an error, and the
/// problem of every submitted request is recorded.
struct MultiGen : ScriptedGenerator {
  std::string fail_key = "gen-fail";
  std::vector<std::string> submitted_keys;
  uint64_t submit(GenerationRequest req, GenerationCallback cb) {
    const std::string key = parse(req.prompt_text).first;
    submitted_keys.push_back(key);
    if (key == fail_key) {
      auto inner = std::move(cb);
      cb = [inner](GenerationOutput out) {
        out.error = "kv cache exhausted";
        inner(std::move(out));
      };
    }
    return ScriptedGenerator::submit(std::move(req), std::move(cb));
  }
};

MultiGen multi_generator(Tree tree) {
  MultiGen g;
  g.script = [tree](const std::string& prompt, int i) {
    auto [key, steps] = parse(prompt);
    std::string name = (steps.empty() ? "" : TableScorer::name(steps.back())) + std::string(1, char('a' + i));
    Written w;
    const bool boxed = tree.boxed.count(key) && tree.boxed.at(key).count(name);
    const bool eos = tree.eos.count(key) && tree.eos.at(key).count(name);
    w.text = boxed ? name + " so \\boxed{" + key + "}" : name;
    w.stop_reason = eos ? "" : "\n\n";
    return w;
  };
  return g;
}

TableScorer tree_scores() {
  TableScorer s;
  s.table = {{"a", .3},  {"b", .9},   {"c", .5},   {"d", .5},   {"ba", .2},  {"bb", .8},  {"ca", .7},
             {"cb", .6}, {"caa", .95}, {"cab", .4}, {"cba", .3}, {"cbb", .5}, {"cbba", .99}};
  return s;
}

/// Problems p0..p(n-1) with different shapes: p0 answers at iteration 1 (every first step is
/// boxed), p1 at iteration 2, p2 runs to max_steps, p3 ends with EOS at "caa"; the rest cycle.
Tree shapes(int n) {
  Tree t;
  for (int k = 0; k < n; ++k) {
    const std::string key = "p" + std::to_string(k);
    switch (k % 4) {
      case 0: t.boxed[key] = {"a", "b", "c", "d"}; break;
      case 1: t.boxed[key] = {"ba", "bb", "ca", "cb"}; break;
      case 2: break;
      case 3: t.eos[key] = {"caa"}; break;
    }
  }
  return t;
}

std::vector<search::BeamProblem> problems(int n) {
  std::vector<search::BeamProblem> ps;
  for (int k = 0; k < n; ++k) ps.push_back({"problem " + std::to_string(k), "p" + std::to_string(k) + "#", {}});
  return ps;
}

search::BeamSearchOptions options(int in_flight) {
  search::BeamSearchOptions o;
  o.beams = 4;
  o.width = 2;
  o.max_steps = 4;
  o.seed = 42;
  o.max_problems_in_flight = in_flight;
  return o;
}

void check_same(const search::BeamSearchResult& a, const search::BeamSearchResult& b) {
  CHECK(a.best.steps == b.best.steps);
  CHECK(a.best.score == b.best.score);
  CHECK(a.best.answer == b.best.answer);
  CHECK(a.best.finish_reason == b.best.finish_reason);
  CHECK(a.requests == b.requests);
  CHECK(a.generated_tokens == b.generated_tokens);
  CHECK(a.prompt_tokens == b.prompt_tokens);
  REQUIRE(a.iterations.size() == b.iterations.size());
  for (size_t i = 0; i < a.iterations.size(); ++i) {
    CHECK(a.iterations[i].status == b.iterations[i].status);
    REQUIRE(a.iterations[i].candidates.size() == b.iterations[i].candidates.size());
    for (size_t j = 0; j < a.iterations[i].candidates.size(); ++j) {
      CHECK(a.iterations[i].candidates[j].steps == b.iterations[i].candidates[j].steps);
      CHECK(a.iterations[i].candidates[j].rewards == b.iterations[i].candidates[j].rewards);
      CHECK(a.iterations[i].candidates[j].critiques == b.iterations[i].candidates[j].critiques);
    }
  }
  REQUIRE(a.finished.size() == b.finished.size());
  for (size_t i = 0; i < a.finished.size(); ++i) CHECK(a.finished[i].steps == b.finished[i].steps);
}

/// Seeds of the requests, per problem key, in submission order.
std::map<std::string, std::vector<uint64_t>> seeds_by_problem(const MultiGen& g) {
  std::map<std::string, std::vector<uint64_t>> out;
  for (const auto& r : g.log) out[parse(r.prompt_text).first].push_back(*r.params.seed);
  return out;
}

}  // namespace

TEST_CASE("beam_search_many: the same results, requests and seeds as one problem at a time") {
  const int n = 8;
  auto gen = multi_generator(shapes(n));
  TableScorer scorer = tree_scores();
  std::vector<size_t> order;
  auto many = search::beam_search_many(gen, scorer, problems(n), options(8),
                                       [&](const search::BeamProblemResult& r) { order.push_back(r.index); });
  REQUIRE(many.size() == n);

  auto gen1 = multi_generator(shapes(n));
  TableScorer scorer1 = tree_scores();
  for (int k = 0; k < n; ++k) {
    CAPTURE(k);
    CHECK(many[k].ok());
    CHECK(many[k].index == static_cast<size_t>(k));
    auto one = search::beam_search(gen1, scorer1, "problem " + std::to_string(k), "p" + std::to_string(k) + "#",
                                   options(1));
    check_same(many[k].result, one);
  }
  CHECK(seeds_by_problem(gen) == seeds_by_problem(gen1));
  CHECK(gen.log.size() == gen1.log.size());
  // the shapes differ, so the results came in completion order: p0 and p4 (one iteration)
  // before p1 (two), before p2 (four)
  REQUIRE(order.size() == n);
  CHECK(std::set<size_t>(order.begin(), order.end()).size() == n);
  CHECK(order != std::vector<size_t>{0, 1, 2, 3, 4, 5, 6, 7});
  auto pos = [&](size_t i) { return std::find(order.begin(), order.end(), i) - order.begin(); };
  CHECK(pos(0) < pos(1));
  CHECK(pos(4) < pos(1));
  CHECK(pos(1) < pos(2));
  CHECK(many[0].result.iterations.size() == 1);
  CHECK(many[1].result.iterations.size() == 2);
  CHECK(many[2].result.iterations.size() == 4);
  // each problem's own answers: p0 "b so \boxed{p0}" (.9), p1 "b", "bb so \boxed{p1}" (.8)
  CHECK(many[0].result.best.steps == std::vector<std::string>{"b so \\boxed{p0}"});
  CHECK(many[0].result.best.answer.value_or("") == "p0");
  CHECK(many[1].result.best.steps == std::vector<std::string>{"b", "bb so \\boxed{p1}"});
  CHECK(many[5].result.best.answer.value_or("") == "p5");
  // concurrency: requests of different problems were pending in the generator together
  CHECK(gen.max_pending >= n);
  CHECK(gen1.max_pending <= 2);
}

TEST_CASE("beam_search_many: at most max_problems_in_flight problems are live") {
  for (int cap : {1, 3}) {
    CAPTURE(cap);
    const int n = 7;
    auto gen = multi_generator(shapes(n));
    TableScorer scorer = tree_scores();
    std::set<std::string> live, done;
    size_t most = 0;
    auto o = options(cap);
    // live problems = those with a submitted request and no result yet
    search::BeamSearch<MultiGen, TableScorer> bs(gen, scorer, o);
    size_t seen = 0;
    auto track = [&] {
      for (; seen < gen.submitted_keys.size(); ++seen)
        if (!done.count(gen.submitted_keys[seen])) live.insert(gen.submitted_keys[seen]);
      most = std::max(most, live.size());
    };
    std::vector<size_t> order;
    bs.run_many_async(problems(n), [&](search::BeamProblemResult r) {
      track();
      const std::string key = "p" + std::to_string(r.index);
      live.erase(key);
      done.insert(key);
      order.push_back(r.index);
      CHECK(r.ok());
    });
    track();
    CHECK(most == static_cast<size_t>(cap));
    CHECK(order.size() == n);
    if (cap == 1) CHECK(order == std::vector<size_t>{0, 1, 2, 3, 4, 5, 6});  // one at a time: input order
    // problems are admitted in input order
    std::vector<std::string> first_seen;
    for (const auto& k : gen.submitted_keys)
      if (std::find(first_seen.begin(), first_seen.end(), k) == first_seen.end()) first_seen.push_back(k);
    CHECK(first_seen == std::vector<std::string>{"p0", "p1", "p2", "p3", "p4", "p5", "p6"});
  }
  search::BeamSearchOptions bad;
  bad.max_problems_in_flight = 0;
  auto gen = multi_generator({});
  TableScorer scorer;
  CHECK_THROWS_WITH_AS(search::beam_search_many(gen, scorer, problems(1), bad),
                       doctest::Contains("max_problems_in_flight must be positive"), ValueError);
}

TEST_CASE("beam_search_many: a failing problem reports its error, the others finish") {
  const int n = 5;
  Tree tree = shapes(n);
  auto gen = multi_generator(tree);
  // p1's scorer answers without rewards, "gen-fail" fails at generation, p3's scorer throws
  struct Picky {
    TableScorer inner;
    void score(const std::string& problem, search::Solutions sols, search::ScoreCallback done) {
      if (problem == "problem 1") return done(std::vector<search::StepScores>(sols.size()));  // no rewards
      if (problem == "problem 3") throw ValueError("scorer: problem 3 is unreadable");
      inner.score(problem, std::move(sols), std::move(done));
    }
  } scorer{tree_scores()};
  auto ps = problems(n);
  ps.insert(ps.begin() + 2, search::BeamProblem{"problem x", "gen-fail#", {}});
  std::vector<size_t> seen;
  auto res = search::beam_search_many(gen, scorer, ps, options(4),
                                      [&](const search::BeamProblemResult& r) { seen.push_back(r.index); });
  REQUIRE(res.size() == 6);
  CHECK(seen.size() == 6);
  CHECK(res[0].ok());
  CHECK_FALSE(res[1].ok());
  CHECK(res[1].error.find("rewards for solution 0") != std::string::npos);
  CHECK_FALSE(res[2].ok());
  CHECK(res[2].error.find("kv cache exhausted") != std::string::npos);
  CHECK(res[2].error.find("iteration 1") != std::string::npos);
  CHECK(res[3].ok());  // problem 2
  CHECK_FALSE(res[4].ok());  // problem 3
  CHECK(res[4].error == "scorer: problem 3 is unreadable");
  CHECK_THROWS_AS(std::rethrow_exception(res[4].exception), ValueError);  // the type is kept
  CHECK(res[5].ok());  // problem 4
  CHECK(res[5].result.best.answer.value_or("") == "p4");
  auto gen2 = multi_generator(tree);
  check_same(res[3].result, search::beam_search(gen2, scorer, "problem 2", "p2#", options(1)));

  // one problem alone: the failure is thrown, with its type
  auto gen1 = multi_generator(tree);
  CHECK_THROWS_WITH_AS(search::beam_search(gen1, scorer, "problem 3", "p3#", options(1)),
                       doctest::Contains("unreadable"), ValueError);
}

TEST_CASE("beam_search_many: an asynchronous scorer gets the batches of several problems at once") {
  const int n = 6;
  auto gen = multi_generator(shapes(n));
  struct Counting {  // answers a batch only every 4th poll: a slow remote PRM
    AsyncTableScorer inner;
    size_t most_queued = 0;
    int ticks = 0;
    void score(const std::string& p, search::Solutions sols, search::ScoreCallback done) {
      inner.score(p, std::move(sols), std::move(done));
      most_queued = std::max(most_queued, inner.queue.size());
    }
    bool poll() {
      if (inner.queue.empty()) return false;
      if (++ticks % 4) return true;
      return inner.poll();
    }
  } scorer;
  scorer.inner.inner = tree_scores();
  auto res = search::beam_search_many(gen, scorer, problems(n), options(6));
  CHECK(scorer.most_queued >= 2);  // batches of different problems waited together

  auto gen1 = multi_generator(shapes(n));
  TableScorer sync = tree_scores();
  auto ref = search::beam_search_many(gen1, sync, problems(n), options(1));
  for (int k = 0; k < n; ++k) {
    CAPTURE(k);
    REQUIRE(res[k].ok());
    check_same(res[k].result, ref[k].result);
  }
  // one batch per problem and iteration either way
  CHECK(scorer.inner.inner.batches.size() == sync.batches.size());
}

TEST_CASE("beam_search_many: no problems, no requests") {
  auto gen = multi_generator({});
  TableScorer scorer;
  CHECK(search::beam_search_many(gen, scorer, {}, options(2)).empty());
  CHECK(gen.log.empty());
}

TEST_CASE("beam_search_many: an exception from on_result ends the run; late callbacks stay safe") {
  const int n = 4;
  auto gen = multi_generator(shapes(n));
  TableScorer scorer = tree_scores();
  {
    search::BeamSearch<MultiGen, TableScorer> bs(gen, scorer, options(4));
    CHECK_THROWS_WITH_AS(bs.run_many_async(problems(n), [](search::BeamProblemResult) { throw Error("disk full"); }),
                         "disk full", Error);
  }  // the search object is gone while requests of the other problems are still in the generator
  CHECK(!gen.pending.empty());
  gen.run_until_idle();  // their callbacks only touch state they own
  CHECK(gen.pending.empty());
  // the generator serves a new search as before
  auto again = search::beam_search(gen, scorer, "problem 0", "p0#", options(1));
  CHECK(again.best.answer.value_or("") == "p0");
}

TEST_CASE("beam_search_many: an asynchronous scorer fails one problem through score(..., fail)") {
  const int n = 4;
  auto gen = multi_generator(shapes(n));
  struct Failing {  // asynchronous; the batches of "problem 2" fail when answered
    TableScorer inner = tree_scores();
    struct Item {
      std::string problem;
      search::Solutions sols;
      search::ScoreCallback done;
      search::detail::ScoreFailCallback fail;
    };
    std::deque<Item> queue;
    void score(const std::string& p, search::Solutions sols, search::ScoreCallback done,
               search::detail::ScoreFailCallback fail) {
      queue.push_back({p, std::move(sols), std::move(done), std::move(fail)});
    }
    bool poll() {
      if (queue.empty()) return false;
      Item it = std::move(queue.front());
      queue.pop_front();
      if (it.problem == "problem 2")
        it.fail(std::make_exception_ptr(Error("scorer: verification of problem 2 failed: prompt too long")));
      else
        inner.score(it.problem, std::move(it.sols), std::move(it.done));
      return true;
    }
  } scorer;
  static_assert(search::detail::has_score_or_fail<Failing>::value);
  static_assert(!search::detail::has_score_or_fail<TableScorer>::value);
  auto res = search::beam_search_many(gen, scorer, problems(n), options(4));
  CHECK(res[0].ok());
  CHECK(res[1].ok());
  CHECK(res[3].ok());
  REQUIRE_FALSE(res[2].ok());
  CHECK(res[2].error == "scorer: verification of problem 2 failed: prompt too long");
  CHECK(res[2].result.requests == 1);  // it failed at iteration 1
  auto gen1 = multi_generator(shapes(n));
  TableScorer ref = tree_scores();
  check_same(res[3].result, search::beam_search(gen1, ref, "problem 3", "p3#", options(1)));
}
