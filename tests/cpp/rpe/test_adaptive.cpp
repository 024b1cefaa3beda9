// Adaptive Monte Carlo: the exact binomial tests, their error bound on simulated Bernoulli
// rollouts with known rates (many seeds), decided estimates stopping, undecided ones equal to the
// fixed-K estimate, results independent of scheduling.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <map>
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

std::string assistant_text(const std::string& prompt) {
  return prompt.substr(prompt.find(kChatClose) + kChatClose.size());
}

/// Rollouts that are right with a known rate per assistant prefix: sample j of a request (j =
/// first_sample + its index) is right when counter_uniform(seed, j, 0) < rate, so a request cut
/// into rounds draws the rollouts of the one whole request.
ScriptedGenerator bernoulli(std::function<double(const std::string& assistant)> rate) {
  ScriptedGenerator gen;
  gen.imitate_cache = false;
  gen.request_script = [rate](const GenerationRequest& req, int i) {
    if (!req.params.seed) FAIL("the Bernoulli double needs seeded requests");
    const double u = counter_uniform(*req.params.seed, uint64_t(req.params.first_sample + i), 0);
    return boxed(u < rate(assistant_text(req.prompt_text)) ? "42" : "41");
  };
  return gen;
}

/// Steps "Step 1: a" ... with the last one right; rates[t] is the rate after step t+1 (t < T - 1),
/// `first` the rate from the prompt alone.
std::vector<std::string> make_steps(size_t T) {
  std::vector<std::string> steps;
  for (size_t t = 1; t < T; ++t) steps.push_back("Step " + std::to_string(t) + ": part " + std::to_string(t));
  steps.push_back("Step " + std::to_string(T) + ": " + boxed("42"));
  return steps;
}

std::function<double(const std::string&)> rates_of(double first, std::vector<double> rates, std::vector<std::string> steps) {
  return [=](const std::string& a) {
    if (a == kStepForcingPrefix) return first;
    for (size_t t = 0; t < rates.size(); ++t)
      if (a == join_steps(steps, static_cast<long>(t + 1))) return rates[t];
    FAIL("unexpected assistant text: " << a);
    return 0.0;
  };
}

LabelerConfig adaptive_config(int fixed_k = 0, double delta = 0.05, int round = 8) {
  LabelerConfig cfg;
  cfg.seed = 1;
  cfg.fixed_k = fixed_k;
  cfg.adaptive.enabled = true;
  cfg.adaptive.delta = delta;
  cfg.adaptive.round = round;
  return cfg;
}

std::vector<LabelInput> inputs(int count, const std::vector<std::string>& steps) {
  std::vector<LabelInput> in;
  for (int i = 0; i < count; ++i) in.push_back({"row" + std::to_string(i), kProblem, steps, "42", ""});
  return in;
}

/// The smallest multiple of `round` at which all-right rollouts decide p >= c at level alpha.
int all_right_stop(double c, double alpha, int round) {
  int n = round;
  while (std::pow(c, n) > alpha) n += round;
  return n;
}

}  // namespace

TEST_CASE("adaptive: binomial tails and the one-sided exact tests") {
  CHECK(binomial_upper_tail(8, 8, 0.5) == doctest::Approx(1.0 / 256));
  CHECK(binomial_lower_tail(10, 2, 0.3) == doctest::Approx(0.3827827864));
  CHECK(binomial_upper_tail(10, 0, 0.3) == doctest::Approx(1.0));
  for (int s = 1; s <= 20; ++s)
    CHECK(binomial_upper_tail(20, s, 0.37) + binomial_lower_tail(20, s - 1, 0.37) == doctest::Approx(1.0));
  CHECK(binomial_upper_tail(500, 250, 0.5) == doctest::Approx(0.5178).epsilon(1e-3));  // no overflow at large n
  CHECK(binomial_lower_tail(5, 0, 0.0) == 1.0);
  CHECK(binomial_upper_tail(5, 1, 0.0) == 0.0);
  CHECK(binomial_upper_tail(5, 5, 1.0) == 1.0);
  CHECK(binomial_lower_tail(5, 4, 1.0) == 0.0);

  CHECK(test_threshold(24, 24, 0.8, 0.05 / 7) == Decision::AtLeast);  // 0.8^24 = 0.0047
  CHECK(test_threshold(16, 16, 0.8, 0.05 / 7) == Decision::Open);     // 0.8^16 = 0.028
  CHECK(test_threshold(8, 0, 0.8, 0.01) == Decision::Below);          // 0.2^8
  CHECK(test_threshold(0, 0, 0.5, 0.01) == Decision::Open);
  CHECK(test_threshold(3, 0, 0.0, 0.01) == Decision::AtLeast);  // p >= 0 is certain
  CHECK(test_threshold(3, 3, 1.5, 0.01) == Decision::Below);
  CHECK(test_threshold(30, 29, 1.0, 0.01) == Decision::Below);  // one wrong rollout: p < 1
  CHECK(test_threshold(30, 30, 1.0, 0.01) == Decision::Open);
  // MC(s_t) = 0: the label is p > 0, decided by one right rollout, never by failures.
  CHECK(decide_label(8, 1, 0.0, 0.8, 0.01) == Decision::AtLeast);
  CHECK(decide_label(128, 0, 0.0, 0.8, 0.01) == Decision::Open);

  // A decision is always on the side of c its point estimate is on (so compute_labels agrees).
  for (int n = 1; n <= 64; ++n)
    for (int s = 0; s <= n; ++s)
      for (double c : {0.05, 0.1, 0.25, 0.4, 0.5, 0.64, 0.72, 0.8, 0.9, 0.99}) {
        const Decision d = test_threshold(n, s, c, 0.05);
        if (d == Decision::AtLeast) CHECK(double(s) / n > c);
        if (d == Decision::Below) CHECK(double(s) / n < c);
      }

  // The dynamic rule's bucket of MC(s_1).
  const KRule rule;
  CHECK(decide_k(rule, 56, 0, 0.05 / 15) == 128);  // 0.9^56 = 0.0027
  CHECK(decide_k(rule, 48, 0, 0.05 / 15) == 0);    // 0.9^48 = 0.0063
  CHECK(decide_k(rule, 64, 32, 0.05 / 15) == 64);
  CHECK(decide_k(rule, 8, 4, 0.05 / 15) == 0);
  CHECK(decide_k(rule, 128, 128, 0.05 / 15) == 32);

  CHECK(max_checks({64}, 8) == 8);
  CHECK(max_checks({30}, 8) == 4);
  CHECK(max_checks({32, 128, 64, 32}, 8) == 16);
  CHECK(max_checks({32, 20}, 8) == 5);  // [0, 20): 3 rounds, [20, 32): 2
}

TEST_CASE("adaptive: off by default; with one round per estimate it is the fixed scheme") {
  CHECK_FALSE(LabelerConfig{}.adaptive.enabled);
  const auto steps = make_steps(4);
  auto rates = rates_of(0.6, {0.7, 0.5, 0.6}, steps);
  ScriptedGenerator g_fixed = bernoulli(rates), g_one = bernoulli(rates);
  LabelerConfig fixed;
  fixed.seed = 1;
  fixed.fixed_k = 16;
  LabelerConfig one = adaptive_config(16, 0.05, 16);
  Labeler<ScriptedGenerator> lf(g_fixed, render, fixed), lo(g_one, render, one);
  auto a = lf.label_many(inputs(20, steps));
  auto b = lo.label_many(inputs(20, steps));
  CHECK(g_fixed.log.size() == g_one.log.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    CHECK(a[i].labels == b[i].labels);
    CHECK(a[i].mc == b[i].mc);
    CHECK(a[i].mc_first == b[i].mc_first);
    for (size_t t = 0; t < a[i].steps.size(); ++t) CHECK(a[i].steps[t].k == b[i].steps[t].k);
  }
}

TEST_CASE("adaptive: a decided step stops; a zero stops the steps after it") {
  const auto steps = make_steps(4);
  // Every rollout right: MC(s_1) = 1 (fixed K 64), so step 1 is tested against 0.8.
  ScriptedGenerator gen = bernoulli(rates_of(1.0, {1.0, 1.0, 0.0}, steps));
  LabelerConfig cfg = adaptive_config(64);
  Labeler<ScriptedGenerator> lab(gen, render, cfg);
  LabelResult r = lab.label({"p", kProblem, steps, "42", ""});
  REQUIRE(r.error == "");
  const int stop = all_right_stop(0.8, 0.05 / 7, 8);  // 7 checks before the 8th and last round
  CHECK(stop == 24);
  CHECK(r.k == 64);
  CHECK(r.k_first == 64);
  CHECK(r.first_requests == 1);
  CHECK_FALSE(r.first_early);
  for (int t = 0; t < 2; ++t) {
    CAPTURE(t);
    CHECK(r.steps[t].k == stop);
    CHECK(r.steps[t].rounds == stop / 8);
    CHECK(r.steps[t].early);
    CHECK(r.steps[t].mc_raw == 1.0);
    auto reqs = gen.requests_for(render(kProblem) + join_steps(steps, t + 1));
    REQUIRE(reqs.size() == size_t(stop / 8));  // no round after the decision
    for (size_t q = 0; q < reqs.size(); ++q) {
      CHECK(reqs[q].n == 8);
      CHECK(reqs[q].params.first_sample == int(q) * 8);
      CHECK(reqs[q].params.seed == reqs[0].params.seed);  // pieces of one request
    }
  }
  // Step 3: never right against 0.8: one round decides it, and it is a zero.
  CHECK(r.steps[2].k == 8);
  CHECK(r.steps[2].rounds == 1);
  CHECK(r.steps[2].early);
  CHECK(r.labels == std::vector<int>{1, 1, 0, 0});
  CHECK(r.mc == std::vector<double>{1.0, 1.0, 0.0, 0.0});
  CHECK(r.rollouts == 64 + 24 + 24 + 8);
  Json j = to_json(r);
  CHECK(j["steps"][0]["rounds"] == 3);
  CHECK(j["steps"][0]["early"] == true);
  CHECK(j["rollouts"] == 120);

  // A zero step cancels the later steps' outstanding rounds; they are not estimated.
  const auto six = make_steps(6);
  ScriptedGenerator g2 = bernoulli(rates_of(1.0, {0.0, 1.0, 1.0, 1.0, 1.0}, six));
  Labeler<ScriptedGenerator> l2(g2, render, adaptive_config(64));
  LabelResult z = l2.label({"z", kProblem, six, "42", ""});
  CHECK(z.labels == std::vector<int>{0, 0, 0, 0, 0, 0});
  CHECK(z.steps[0].k == 8);
  for (int t = 1; t < 6; ++t) {
    CHECK_FALSE(z.steps[t].estimated);
    CHECK(z.steps[t].k == 0);
    CHECK(z.steps[t].rounds == 0);
  }
  CHECK(g2.cancelled_ids.size() == 4);  // the first rounds of steps 2..5
  CHECK(lab.idle());
  CHECK(l2.idle());
}

TEST_CASE("adaptive: MC(s_1) stops once its K bucket is decided, or where the fixed scheme stops") {
  const auto steps = make_steps(3);
  // Never right from the prompt: the fixed scheme takes 32, then tops up to 128; adaptive stops
  // once p < 0.1 is decided (0.9^n <= 0.05 / 15).
  ScriptedGenerator gen = bernoulli(rates_of(0.0, {0.0, 0.0}, steps));
  Labeler<ScriptedGenerator> lab(gen, render, adaptive_config());
  LabelResult r = lab.label({"h", kProblem, steps, "42", ""});
  CHECK(r.k_first == 56);
  CHECK(r.first_requests == 7);
  CHECK(r.first_early);
  CHECK(r.k == 128);
  CHECK(r.mc_first == 0.0);
  // The rounds after the first 32 are pieces of the fixed scheme's top-up (its own seed).
  auto first = gen.requests_for(render(kProblem) + std::string(kStepForcingPrefix));
  REQUIRE(first.size() == 7);
  CHECK(first[3].params.first_sample == 24);
  CHECK(first[4].params.first_sample == 0);
  CHECK(first[4].params.seed != first[3].params.seed);
  CHECK(first[6].params.first_sample == 16);

  // Always right: the fixed scheme stops at 32 (K = 32), so does adaptive (p >= 0.9 needs more).
  ScriptedGenerator g2 = bernoulli(rates_of(1.0, {1.0, 1.0}, steps));
  Labeler<ScriptedGenerator> l2(g2, render, adaptive_config());
  LabelResult e = l2.label({"e", kProblem, steps, "42", ""});
  CHECK(e.k_first == 32);
  CHECK_FALSE(e.first_early);
  CHECK(e.k == 32);

  // Whatever is decided, K is the rule's K of the reported MC(s_1), and the rollouts are a
  // prefix of the fixed scheme's (same seeds).
  ScriptedGenerator ga = bernoulli(rates_of(0.3, {0.3, 0.3}, steps));
  ScriptedGenerator gf = bernoulli(rates_of(0.3, {0.3, 0.3}, steps));
  LabelerConfig fixed;
  fixed.seed = 1;
  fixed.keep_rollouts = true;
  Labeler<ScriptedGenerator> la(ga, render, adaptive_config()), lf(gf, render, fixed);
  auto ra = la.label_many(inputs(200, steps));
  auto rf = lf.label_many(inputs(200, steps));
  int early = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    CAPTURE(i);
    CHECK(ra[i].k == KRule{}.k_for(ra[i].mc_first));
    CHECK(ra[i].k_first <= rf[i].k_first);
    int right = 0;
    for (int j = 0; j < ra[i].k_first; ++j) right += rf[i].first_rollouts[size_t(j)] == boxed("42");
    CHECK(ra[i].correct_first == right);
    early += ra[i].first_early;
  }
  CHECK(early > 0);
}

TEST_CASE("adaptive: undecided steps are the fixed-K estimates; decided ones use their first rollouts") {
  const auto steps = make_steps(6);
  auto rates = rates_of(0.9, {0.9, 0.75, 0.7, 0.2, 0.2}, steps);
  ScriptedGenerator ga = bernoulli(rates), gf = bernoulli(rates);
  LabelerConfig fixed;
  fixed.seed = 1;
  fixed.fixed_k = 64;
  fixed.keep_rollouts = true;
  Labeler<ScriptedGenerator> la(ga, render, adaptive_config(64)), lf(gf, render, fixed);
  auto ra = la.label_many(inputs(100, steps));
  auto rf = lf.label_many(inputs(100, steps));
  int early = 0, full = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    CAPTURE(i);
    CHECK(ra[i].mc_first == rf[i].mc_first);  // fixed K: MC(s_1) is not adaptive
    for (size_t t = 0; t + 1 < steps.size(); ++t) {
      const StepResult& a = ra[i].steps[t];
      const StepResult& f = rf[i].steps[t];
      if (!a.estimated || !f.estimated) break;
      CAPTURE(t);
      int right = 0;
      for (int j = 0; j < a.k; ++j) right += f.rollouts[size_t(j)] == boxed("42");
      CHECK(a.correct == right);
      if (a.early) {
        ++early;
        CHECK(a.k < 64);
      } else {
        ++full;
        CHECK(a.k == 64);
        CHECK(a.correct == f.correct);
      }
    }
  }
  CHECK(early > 0);
  CHECK(full > 0);
}

TEST_CASE("adaptive: results do not depend on what else is in flight") {
  const auto steps = make_steps(5);
  auto rates = rates_of(0.5, {0.6, 0.3, 0.9, 0.1}, steps);
  std::vector<std::vector<int>> ks[2];
  std::vector<std::vector<int>> labels[2];
  for (int cap : {1, 16}) {
    ScriptedGenerator gen = bernoulli(rates);
    LabelerConfig cfg = adaptive_config();
    cfg.max_problems_in_flight = cap;
    Labeler<ScriptedGenerator> lab(gen, render, cfg);
    for (const auto& r : lab.label_many(inputs(30, steps))) {
      std::vector<int> k;
      for (const auto& s : r.steps) k.push_back(s.k);
      ks[cap == 16].push_back(k);
      labels[cap == 16].push_back(r.labels);
    }
  }
  CHECK(ks[0] == ks[1]);
  CHECK(labels[0] == labels[1]);
}

TEST_CASE("adaptive: the error bound holds on Bernoulli rollouts with known rates, many seeds") {
  // MC(s_1) = 1 exactly (every rollout right), so step 1 is tested against c = epsilon = 0.8 and
  // its true label is known: rate >= 0.8 -> 1. At the rates on the boundary a decision against
  // the truth is most likely; its share over many seeds must stay within delta (+ 3 sigma).
  const auto steps = make_steps(2);
  const int seeds = 1500;
  const double delta = 0.2;
  for (double rate : {0.8, 0.78, 0.7, 0.9}) {
    CAPTURE(rate);
    ScriptedGenerator gen = bernoulli(rates_of(1.0, {rate}, steps));
    Labeler<ScriptedGenerator> lab(gen, render, adaptive_config(64, delta));
    const bool truth = rate >= 0.8;
    int wrong = 0, early = 0;
    for (const auto& r : lab.label_many(inputs(seeds, steps))) {
      REQUIRE(r.mc_first == 1.0);
      const StepResult& s = r.steps[0];
      if (!s.early) continue;
      ++early;
      wrong += (r.labels[0] == 1) != truth;
    }
    const double share = double(wrong) / seeds;
    MESSAGE("rate " << rate << ": " << early << " of " << seeds << " decided early, " << wrong << " against the truth");
    CHECK(share <= delta + 3 * std::sqrt(delta * (1 - delta) / seeds));
    if (rate == 0.7 || rate == 0.9) CHECK(early > seeds / 10);  // far from 0.8 the test does decide
  }

  // The test can fail: checking every round at level delta (no union bound over the rounds)
  // errs more often than delta on the boundary rate.
  int naive_wrong = 0;
  for (int i = 0; i < seeds; ++i) {
    const uint64_t seed = splitmix64(uint64_t(i) + 99);
    int s = 0;
    for (int n = 1; n <= 56; ++n) {
      s += counter_uniform(seed, uint64_t(n), 0) < 0.8;
      if (n % 8 == 0 && test_threshold(n, s, 0.8, delta) == Decision::Below) {
        ++naive_wrong;
        break;
      }
    }
  }
  MESSAGE("naive per-round level delta: " << naive_wrong << " of " << seeds << " wrong at rate 0.8");
  CHECK(double(naive_wrong) / seeds > delta);
}

TEST_CASE("adaptive: MC(s_1)'s bucket bound on rates at the rule's thresholds") {
  const auto steps = make_steps(2);
  const int seeds = 1000;
  const double delta = 0.2;
  for (double rate : {0.1, 0.9}) {
    CAPTURE(rate);
    ScriptedGenerator gen = bernoulli(rates_of(rate, {1.0}, steps));
    Labeler<ScriptedGenerator> lab(gen, render, adaptive_config(0, delta));
    int wrong = 0;
    for (const auto& r : lab.label_many(inputs(seeds, steps))) {
      // rate 0.1 is in [0.1, 0.9): an early K of 128 is wrong; rate 0.9 is in [0.9, 1]: early 64 or 128.
      if (r.first_early) wrong += rate == 0.1 ? r.k == 128 : r.k != 32;
    }
    CHECK(double(wrong) / seeds <= delta + 3 * std::sqrt(delta * (1 - delta) / seeds));
  }
}

TEST_CASE("adaptive: option errors name the field") {
  ScriptedGenerator gen;
  auto msg = [&](LabelerConfig c) {
    try {
      Labeler<ScriptedGenerator> l(gen, render, c);
    } catch (const ValueError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  LabelerConfig c;
  c.adaptive.round = 0;
  CHECK(msg(c).find("adaptive.round") != std::string::npos);
  c = {};
  c.adaptive.delta = 0.5;
  CHECK(msg(c).find("adaptive.delta") != std::string::npos);
  c.adaptive.delta = 0.0;
  CHECK(msg(c).find("adaptive.delta") != std::string::npos);
}
