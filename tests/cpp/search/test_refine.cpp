#include <doctest/doctest.h>

#include "doubles.hpp"
#include "genprm/search/refine.hpp"

using namespace genprm;
using namespace search_test;

namespace {
/// Step reward 0.2 when the step says "wrong", else 0.9; critiques name the step.
search::FunctionScorer wrong_scorer(int* calls) {
  return search::FunctionScorer{[calls](const std::string& problem, const search::Solutions& sols) {
    ++*calls;
    CHECK(problem == "2+2?");
    std::vector<search::StepScores> out;
    for (const auto& s : sols) {
      search::StepScores sc;
      for (const auto& step : s) {
        const bool wrong = step.find("wrong") != std::string::npos;
        sc.rewards.push_back(wrong ? 0.2 : 0.9);
        sc.critiques.push_back(wrong ? "'" + step + "' miscounts" : "fine");
      }
      out.push_back(sc);
    }
    return out;
  }};
}
}  // namespace

TEST_CASE("refine: feedback of incorrect steps goes back; stops once all steps are correct") {
  ScriptedGenerator gen;
  gen.script = [](const std::string& prompt, int) {
    Written w;
    if (prompt.find("Paragraph 2:") != std::string::npos)
      w.text = "2 and 2\n\nmake \\boxed{4}";
    else
      w.text = "2 and 2\n\nwrong: make 5\n\n\\boxed{5}";
    return w;
  };
  int calls = 0;
  auto scorer = wrong_scorer(&calls);
  search::RefineOptions o;
  o.max_turns = 3;
  o.render = [](const std::string& user) { return "<user>" + user + "<assistant>"; };
  auto res = search::refine(gen, scorer, "2+2?", "Q", o);
  REQUIRE(res.turns.size() == 2);
  CHECK(res.all_correct);
  CHECK(calls == 2);
  CHECK(res.requests == 2);
  const auto& t0 = res.turns[0];
  CHECK(t0.prompt == "Q");
  CHECK(t0.steps == std::vector<std::string>{"2 and 2", "wrong: make 5", "\\boxed{5}"});
  CHECK(t0.incorrect == std::vector<int>{1});
  CHECK(*t0.answer == "5");
  CHECK(t0.feedback == "Paragraph 2: 'wrong: make 5' miscounts");
  const auto& t1 = res.turns[1];
  CHECK(t1.prompt.rfind("<user>2+2?\n\n", 0) == 0);
  CHECK(t1.prompt.find("2 and 2\n\nwrong: make 5\n\n\\boxed{5}") != std::string::npos);
  CHECK(t1.prompt.find("Paragraph 2: 'wrong: make 5' miscounts") != std::string::npos);
  CHECK(t1.incorrect.empty());
  CHECK(t1.feedback.empty());
  CHECK(*res.final_turn().answer == "4");
  CHECK(res.final_turn().score == doctest::Approx(0.9));
  REQUIRE(gen.log.size() == 2);
  CHECK(gen.log[1].prompt_text == t1.prompt);
}

TEST_CASE("refine: at most max_turns revisions; an initial solution skips turn-0 generation") {
  ScriptedGenerator gen;
  gen.script = [](const std::string&, int) { return Written{"still wrong"}; };
  int calls = 0;
  auto scorer = wrong_scorer(&calls);
  search::RefineOptions o;
  o.max_turns = 2;
  auto res = search::refine(gen, scorer, "2+2?", "Q", o, std::string("wrong start"));
  CHECK(res.turns.size() == 3);
  CHECK(!res.all_correct);
  CHECK(res.requests == 2);  // turn 0 was given
  CHECK(res.turns[0].finish_reason == "given");
  CHECK(res.turns[2].feedback.empty());  // no turn follows the last
  CHECK(calls == 3);
  o.max_turns = 0;
  auto one = search::refine(gen, scorer, "2+2?", "Q", o);
  CHECK(one.turns.size() == 1);
}

TEST_CASE("refine: a scorer without critiques still names the incorrect steps; bad options") {
  ScriptedGenerator gen;
  gen.script = [](const std::string& prompt, int) {
    return Written{prompt.find("Paragraph 1: judged incorrect.") != std::string::npos ? "ok" : "bad"};
  };
  search::FunctionScorer scorer{[](const std::string&, const search::Solutions& sols) {
    std::vector<search::StepScores> out;
    for (const auto& s : sols) out.push_back({std::vector<double>(s.size(), s[0] == "ok" ? 1.0 : 0.0), {}});
    return out;
  }};
  auto res = search::refine(gen, scorer, "p", "Q", {});
  CHECK(res.turns.size() == 2);
  CHECK(res.all_correct);
  search::RefineOptions o;
  o.refine_template = "{problem} {solution}";
  CHECK_THROWS_WITH_AS(search::refine(gen, scorer, "p", "Q", o), doctest::Contains("{feedback}"), ValueError);
}

TEST_CASE("VerifierScorer: GenPRM-like results become rewards and <analyze> critiques") {
  struct SyncVerifier {
    std::vector<prm::SolutionInput> seen;
    std::vector<prm::SolutionResult> verify_many(std::vector<prm::SolutionInput> in) {
      std::vector<prm::SolutionResult> out;
      for (auto& s : in) {
        seen.push_back(s);
        prm::SolutionResult r;
        r.id = s.id;
        for (size_t k = 0; k < prm::effective_steps(s.steps).size(); ++k) {
          r.value.push_back(0.1 * static_cast<double>(k + 1));
          prm::StepResult st;
          prm::PathResult p;
          p.text = "<analyze>\nLet's analyze the Paragraph " + std::to_string(k + 1) +
                   " step by step: ok</analyze>\n<verify>code</verify>";
          st.paths.push_back(p);
          r.steps.push_back(st);
        }
        out.push_back(r);
      }
      return out;
    }
  } v;
  search::VerifierScorer<SyncVerifier> scorer(v);
  std::vector<search::StepScores> got;
  scorer.score("prob", {{"s1"}, {"s1", "s2"}}, [&](std::vector<search::StepScores> s) { got = s; });
  REQUIRE(got.size() == 2);
  CHECK(got[1].rewards == std::vector<double>{0.1, 0.2});
  CHECK(got[1].critiques[1] == "Let's analyze the Paragraph 2 step by step: ok");
  CHECK(v.seen[1].problem == "prob");
  CHECK(v.seen[1].steps == std::vector<std::string>{"s1", "s2"});
  CHECK(search::analyze_text("no markers \n") == "no markers");
  // a trailing empty step (which GenPRM does not verify) takes the previous step's reward
  got.clear();
  scorer.score("prob", {{"s1", ""}, {""}}, [&](std::vector<search::StepScores> s) { got = s; });
  REQUIRE(got.size() == 2);
  CHECK(got[0].rewards == std::vector<double>{0.1, 0.1});
  CHECK(got[0].critiques.size() == 2);
  CHECK(got[1].rewards == std::vector<double>{0.5});

  struct AsyncVerifier {
    std::deque<std::pair<prm::SolutionInput, std::function<void(prm::SolutionResult)>>> q;
    void submit(prm::SolutionInput in, std::function<void(prm::SolutionResult)> cb) {
      q.emplace_back(std::move(in), std::move(cb));
    }
    bool poll() {
      if (q.empty()) return false;
      auto [in, cb] = std::move(q.back());  // answers out of order
      q.pop_back();
      prm::SolutionResult r;
      r.id = in.id;
      r.value.assign(in.steps.size(), in.steps.size() == 1 ? 0.7 : 0.3);
      if (in.steps.size() == 3) r.error = "engine failure";
      cb(r);
      return true;
    }
  } av;
  search::VerifierScorer<AsyncVerifier> as(av);
  got.clear();
  bool back = false;
  as.score("p", {{"a"}, {"a", "b"}}, [&](std::vector<search::StepScores> s) {
    got = s;
    back = true;
  });
  CHECK(!back);
  while (as.poll()) {
  }
  REQUIRE(back);
  CHECK(got[0].rewards == std::vector<double>{0.7});
  CHECK(got[1].rewards == std::vector<double>{0.3, 0.3});
  as.score("p", {{"a", "b", "c"}}, [&](std::vector<search::StepScores>) {});
  CHECK_THROWS_WITH_AS(as.poll(), doctest::Contains("engine failure"), Error);
}
