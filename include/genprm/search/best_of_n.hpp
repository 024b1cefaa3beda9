#pragma once
// Best-of-N over many problems (docs/design.md "Policy test-time scaling"), templated on a
// Generator (gen/generator.hpp) and a StepScorer (scorer.hpp) like beam search. Torch-free.
//
// Per problem ONE request of n = `n` full solutions from its prompt (`sampling` as given: its
// max_tokens and seed apply to every problem's request). Each sample is split into steps at the
// beam-search delimiters (math/steps.hpp StepRule::Delimiters, Python `split_solution`), its
// final answer extracted (math::extract_answer), the N step lists scored in ONE score batch, and
// the picks computed (select.hpp pick_candidates): bon_<agg> for every aggregation, majority,
// weighted_<agg>, each graded against the ground truth when one is given, and pass (any
// candidate correct).
//
// No generate-then-score barrier: up to `max_problems_in_flight` problems decode at once; a
// problem whose samples are back gives its slot to the next problem (submitted before it is
// scored) and is scored while the others decode. A synchronous scorer is called per problem at
// once; an asynchronous one (poll()) gets the batches as they come, tagged with the problem's
// id and input position (BatchTag), so a BatchVerifierScorer (batch_scorer.hpp) verifies the
// waiting problems together when the policy has nothing to decode or once
// max_problems_in_flight * n solutions wait. Requests and seeds do not depend on timing, so the
// rows are those of generating everything first and scoring after; only the order of the
// scorer calls and of `on_result` is the completion order.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "genprm/gen/generator.hpp"
#include "genprm/math/extract.hpp"
#include "genprm/math/steps.hpp"
#include "genprm/search/many.hpp"
#include "genprm/search/score.hpp"
#include "genprm/search/scorer.hpp"
#include "genprm/search/select.hpp"
#include "genprm/util/error.hpp"

namespace genprm::search {

struct BestOfNOptions {
  int n = 8;  ///< samples per problem
  SamplingParams sampling = default_sampling();  ///< used as given (max_tokens, seed included)
  std::vector<std::string> step_delimiters = math::default_step_delimiters();  ///< "\n\n", "\nStep "
  Aggregation aggregation = Aggregation::Last;  ///< the pick reported as the prediction
  int max_problems_in_flight = 8;                ///< problems decoding at once

  static SamplingParams default_sampling() {
    SamplingParams p;
    p.temperature = 0.7f;
    p.max_tokens = 2048;
    return p;
  }
  void validate() const {
    GENPRM_CHECK_ARG(n > 0, "best_of_n: n must be positive, got {}", n);
    GENPRM_CHECK_ARG(sampling.max_tokens > 0, "best_of_n: max_tokens must be positive, got {}", sampling.max_tokens);
    GENPRM_CHECK_ARG(max_problems_in_flight > 0, "best_of_n: max_problems_in_flight must be positive, got {}",
                     max_problems_in_flight);
    GENPRM_CHECK_ARG(!step_delimiters.empty(), "best_of_n: step_delimiters is empty");
    for (const auto& d : step_delimiters) GENPRM_CHECK_ARG(!d.empty(), "best_of_n: an empty step delimiter");
  }

  static auto fields() {
    using B = BestOfNOptions;
    return std::make_tuple(field("n", &B::n), field("sampling", &B::sampling),
                           field("step_delimiters", &B::step_delimiters), field("aggregation", &B::aggregation),
                           field("max_problems_in_flight", &B::max_problems_in_flight));
  }
};

/// One problem of a Best-of-N run.
struct BestOfNProblem {
  std::string id;                          ///< names its solutions "<id>:<j>" for a verifier
  std::string problem;                     ///< what the scorer sees
  std::string prompt;                      ///< the rendered policy prompt
  std::optional<std::string> ground_truth;  ///< picks are graded when given
};

struct BestOfNCandidate {
  std::string text;
  std::vector<std::string> steps;  ///< math::split_at_delimiters(text, step_delimiters)
  Answer answer;                   ///< math::extract_answer(text)
  std::string finish_reason;
  long tokens = 0;                 ///< generated tokens
  std::vector<double> rewards;     ///< the scorer's, one per step

  static auto fields() {
    using B = BestOfNCandidate;
    return std::make_tuple(field("text", &B::text), field("steps", &B::steps), field("answer", &B::answer),
                           field("finish_reason", &B::finish_reason), field("tokens", &B::tokens),
                           field("value", &B::rewards));
  }
};

struct BestOfNPick {
  std::string method;            ///< "bon_last", "weighted_last", ..., "majority"
  std::optional<size_t> index;   ///< the picked candidate; nullopt for a vote without answers
  Answer answer;                 ///< its answer
  std::optional<bool> correct;   ///< graded; nullopt without a ground truth or a pick

  static auto fields() {
    using B = BestOfNPick;
    return std::make_tuple(field("method", &B::method), field("index", &B::index), field("answer", &B::answer),
                           field("correct", &B::correct));
  }
};

struct BestOfNResult {
  std::vector<BestOfNCandidate> candidates;
  /// bon_<agg> and weighted_<agg> for every aggregation (in kAggregations order), then majority.
  std::vector<BestOfNPick> picks;
  std::optional<bool> pass;  ///< some candidate is correct; nullopt without a ground truth
  long prompt_tokens = 0;
  long cached_prompt_tokens = 0;
  long generated_tokens = 0;

  /// The pick named `method`; Error when there is none (a failed problem has no picks).
  const BestOfNPick& pick(const std::string& method) const {
    for (const auto& p : picks)
      if (p.method == method) return p;
    throw Error(fmt::format("best_of_n: no pick '{}'", method));
  }

  static auto fields() {
    using B = BestOfNResult;
    return std::make_tuple(field("candidates", &B::candidates), field("picks", &B::picks), field("pass", &B::pass),
                           field("prompt_tokens", &B::prompt_tokens),
                           field("cached_prompt_tokens", &B::cached_prompt_tokens),
                           field("generated_tokens", &B::generated_tokens));
  }
};

using BestOfNProblemResult = ProblemResult<BestOfNResult>;

/// The picks of candidates whose rewards are set (see the header comment).
inline void pick_best_of_n(BestOfNResult& r, const std::optional<std::string>& truth) {
  std::vector<Answer> answers;
  std::vector<std::vector<double>> rewards;
  for (const auto& c : r.candidates) {
    answers.push_back(c.answer);
    rewards.push_back(c.rewards);
  }
  const Picks p = pick_candidates(group_answers(answers), aggregation_scores(rewards), answers.size());
  auto make = [&](std::string method, std::optional<size_t> i) {
    BestOfNPick k;
    k.method = std::move(method);
    k.index = i;
    if (i) {
      k.answer = answers[*i];
      if (truth) k.correct = answer_correct(k.answer, *truth);
    }
    r.picks.push_back(std::move(k));
  };
  r.picks.clear();
  for (size_t a = 0; a < kAggregationCount; ++a) {
    const std::string name = aggregation_name(kAggregations[a]);
    make("bon_" + name, p.bon[a]);
    make("weighted_" + name, p.weighted[a]);
  }
  make("majority", p.majority);
  if (truth) {
    bool any = false;
    for (const auto& a : answers) any |= answer_correct(a, *truth);
    r.pass = any;
  }
}

namespace detail {
/// One problem between events (generation back, scores back).
struct BestOfNTask : TaskBase {
  std::string id, problem;
  std::optional<std::string> truth;
  BestOfNResult res;
  GenerationOutput out;
};
}  // namespace detail

template <typename Gen, typename Scorer>
class BestOfN
    : public detail::ManyProblems<BestOfN<Gen, Scorer>, Gen, Scorer, BestOfNOptions, BestOfNProblem, BestOfNResult,
                                  detail::BestOfNTask> {
  using Base = detail::ManyProblems<BestOfN, Gen, Scorer, BestOfNOptions, BestOfNProblem, BestOfNResult,
                                    detail::BestOfNTask>;
  using Base::gen_;
  using Base::opts_;
  using Base::scorer_;
  using typename Base::ReadyPtr;
  using typename Base::TaskPtr;

 public:
  BestOfN(Gen& gen, Scorer& scorer, BestOfNOptions opts) : Base(gen, scorer, std::move(opts), "best_of_n") {}

  /// Best-of-N of one problem; a failure is thrown (its own type).
  BestOfNResult run(BestOfNProblem problem) { return this->run_problem(std::move(problem)); }

  // Many problems: run_many_async / run_many (search/many.hpp, and the header comment).

 private:
  friend Base;

  void start(size_t index, BestOfNProblem p, const ReadyPtr& ready) {
    auto t = std::make_shared<detail::BestOfNTask>();
    t->index = index;
    t->id = std::move(p.id);
    t->problem = std::move(p.problem);
    t->truth = std::move(p.ground_truth);
    try {
      GenerationRequest req;
      req.prompt_text = std::move(p.prompt);
      req.n = opts_.n;
      req.params = opts_.sampling;
      gen_.submit(std::move(req), [t, ready](GenerationOutput out) {
        t->out = std::move(out);
        ready->queue.push_back(t);
      });
    } catch (...) {
      t->failure = std::current_exception();
      ready->queue.push_back(t);
    }
  }

  /// Handles the event a problem waited for; true when the problem is finished (or failed).
  template <typename Flight>
  bool advance(const TaskPtr& t, const ReadyPtr& ready, Flight& flight) {
    flight.release(t->index);  // its generation is back: the next problem may decode
    if (t->failure) return true;
    try {
      if (!t->scoring) {
        generation_back(*t);
        t->scoring = true;
        Solutions sols;
        for (const auto& c : t->res.candidates) sols.push_back(c.steps);
        detail::request_scores(scorer_, t, ready, t->problem, std::move(sols), BatchTag{t->id, t->index});
        return false;
      }
      Solutions sols;
      for (const auto& c : t->res.candidates) sols.push_back(c.steps);
      check_scores("best_of_n", sols, t->scores);
      for (size_t i = 0; i < sols.size(); ++i) t->res.candidates[i].rewards = std::move(t->scores[i].rewards);
      t->scores.clear();
      pick_best_of_n(t->res, t->truth);
      return true;
    } catch (...) {
      t->failure = std::current_exception();
      return true;
    }
  }

  void generation_back(detail::BestOfNTask& t) {
    GenerationOutput got = std::move(t.out);
    t.out = GenerationOutput{};
    GENPRM_CHECK(got.error.empty(), "best_of_n: generation failed: {}", got.error);
    GENPRM_CHECK(static_cast<int>(got.samples.size()) == opts_.n, "best_of_n: the generator returned {} samples for n = {}",
                 got.samples.size(), opts_.n);
    t.res.prompt_tokens = static_cast<long>(got.prompt_ids.size());
    t.res.cached_prompt_tokens = static_cast<long>(got.cached_prompt_tokens);
    for (auto& s : got.samples) {
      BestOfNCandidate c;
      c.steps = math::split_at_delimiters(s.text, opts_.step_delimiters);
      if (auto e = math::extract_answer(s.text)) c.answer = e->answer;
      c.finish_reason = std::move(s.finish_reason);
      c.tokens = static_cast<long>(s.token_ids.size());
      c.text = std::move(s.text);
      t.res.generated_tokens += c.tokens;
      t.res.candidates.push_back(std::move(c));
    }
  }

};

/// Many-problem form: BestOfN(gen, scorer, opts).run_many(problems, on_result) (outcomes in input
/// order; `on_result` sees each as it finishes).
template <typename Gen, typename Scorer>
std::vector<BestOfNProblemResult> best_of_n_many(Gen& gen, Scorer& scorer, std::vector<BestOfNProblem> problems,
                                                 BestOfNOptions opts = {},
                                                 const std::function<void(const BestOfNProblemResult&)>& on_result = {}) {
  return BestOfN<Gen, Scorer>(gen, scorer, std::move(opts)).run_many(std::move(problems), on_result);
}

}  // namespace genprm::search
