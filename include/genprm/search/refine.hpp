#pragma once
// Critic refinement (docs/design.md "Policy test-time scaling"): the policy writes a solution, the
// verifier scores its steps, and the `<analyze>` text of every step judged incorrect (reward <
// threshold) is fed back to the policy, which writes a revised solution; up to `max_turns`
// revisions, stopping early once every step is judged correct. Templated on a Generator and a
// StepScorer (scorer.hpp) like beam search. Torch-free.
//
// Prompts are text: turn 0 uses `prompt` as given; a revision uses render(refine_template) with
// {problem}, {solution} (the previous solution, steps joined by "\n\n") and {feedback} (one
// "Paragraph k: <critique>" block per incorrect step, 1-based, joined by "\n\n"; a scorer without
// critiques yields "Paragraph k: judged incorrect."). `render` turns that user message into a
// policy prompt (the chat template; identity when empty). A solution is split into steps at
// "\n\n" (blank pieces dropped: math/steps.hpp StepRule::Paragraphs), as the policy wrote it.
// An empty solution is never judged correct.
//
// Many problems at once (run_many / run_many_async / refine_many), built like beam search's: each
// problem is a state machine (waiting for its generation, then for its scores); up to
// `max_problems_in_flight` are live and all their requests share the generator's batches. Turn t
// of a problem is requested with seed mix(seed, t, 0), so per problem the turns are those of run().
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "genprm/gen/request.hpp"
#include "genprm/math/extract.hpp"
#include "genprm/math/steps.hpp"
#include "genprm/search/beam_search.hpp"
#include "genprm/search/many.hpp"
#include "genprm/search/score.hpp"
#include "genprm/search/scorer.hpp"
#include "genprm/search/select.hpp"
#include "genprm/util/error.hpp"

namespace genprm::search {

struct RefineOptions {
  int max_turns = 3;         ///< T: revisions at most after the first solution
  int max_tokens = 1024;     ///< new tokens per solution
  double threshold = 0.5;    ///< a step is judged correct when its reward >= threshold
  SamplingParams sampling = BeamSearchOptions::default_sampling();  ///< max_tokens set per turn
  Aggregation aggregation = Aggregation::Min;  ///< score reported per turn
  std::string step_separator = "\n\n";
  std::string refine_template =
      "{problem}\n\nHere is a previous solution, paragraph by paragraph:\n\n{solution}\n\n"
      "A reviewer found errors in these paragraphs:\n\n{feedback}\n\n"
      "Please correct the errors and write a complete revised solution, step by step. "
      "Put your final answer within \\boxed{}.";
  std::function<std::string(const std::string&)> render;  ///< user message -> prompt; identity if empty
  std::optional<uint64_t> seed;
  int max_problems_in_flight = 8;  ///< run_many: problems refined at once

  void validate() const {
    GENPRM_CHECK_ARG(max_problems_in_flight > 0, "refine: max_problems_in_flight must be positive, got {}",
                     max_problems_in_flight);
    GENPRM_CHECK_ARG(max_turns >= 0, "refine: max_turns must be >= 0, got {}", max_turns);
    GENPRM_CHECK_ARG(max_tokens > 0, "refine: max_tokens must be positive, got {}", max_tokens);
    GENPRM_CHECK_ARG(step_separator.size() > 0, "refine: step_separator is empty");
    for (const char* key : {"{problem}", "{solution}", "{feedback}"})
      GENPRM_CHECK_ARG(refine_template.find(key) != std::string::npos, "refine: refine_template lacks {}", key);
  }

  static auto fields() {
    using R = RefineOptions;
    return std::make_tuple(field("max_turns", &R::max_turns), field("max_tokens", &R::max_tokens),
                           field("threshold", &R::threshold), field("sampling", &R::sampling),
                           field("aggregation", &R::aggregation), field("step_separator", &R::step_separator),
                           field("refine_template", &R::refine_template),
                           field("seed", &R::seed), field("max_problems_in_flight", &R::max_problems_in_flight));
  }
};

struct RefineTurn {
  std::string prompt;
  std::string text;                    ///< the policy's solution
  std::vector<std::string> steps;
  std::vector<double> rewards;
  std::vector<std::string> critiques;
  std::vector<int> incorrect;          ///< 0-based steps with reward < threshold
  std::string feedback;                ///< fed to the next turn ("" when none follows)
  double score = 0.0;                  ///< aggregate(rewards)
  Answer answer;
  std::string finish_reason;           ///< of the generation

  static auto fields() {
    using R = RefineTurn;
    return std::make_tuple(field("prompt", &R::prompt), field("text", &R::text), field("steps", &R::steps),
                           field("rewards", &R::rewards), field("critiques", &R::critiques),
                           field("incorrect", &R::incorrect), field("feedback", &R::feedback),
                           field("score", &R::score), field("answer", &R::answer),
                           field("finish_reason", &R::finish_reason));
  }
};

struct RefineResult {
  std::vector<RefineTurn> turns;  ///< turn 0 = the first solution
  bool all_correct = false;       ///< the last turn has every step judged correct
  int requests = 0;
  long generated_tokens = 0;
  const RefineTurn& final_turn() const { return turns.back(); }

  static auto fields() {
    using R = RefineResult;
    return std::make_tuple(field("turns", &R::turns), field("all_correct", &R::all_correct),
                           field("requests", &R::requests), field("generated_tokens", &R::generated_tokens));
  }
};

/// Splits a solution at `sep`, dropping blank pieces (math::split_paragraphs).
inline std::vector<std::string> split_steps(const std::string& text, const std::string& sep = "\n\n") {
  return math::split_paragraphs(text, sep);
}

inline std::string replace_all(std::string s, const std::string& key, const std::string& value) {
  for (size_t k = s.find(key); k != std::string::npos; k = s.find(key, k + value.size())) s.replace(k, key.size(), value);
  return s;
}

/// One problem of a many-problem refinement.
struct RefineProblem {
  std::string problem;                  ///< what the scorer sees (and {problem} of the template)
  std::string prompt;                   ///< the rendered policy prompt of turn 0
  std::optional<std::string> initial;   ///< a solution to start from instead of generating turn 0
  std::optional<uint64_t> seed;         ///< overrides RefineOptions::seed for this problem
};

/// The outcome of one problem of run_many: `result` (partial when it failed) or `error`.
using RefineProblemResult = ProblemResult<RefineResult>;

namespace detail {
/// The state of one problem's refinement between events (generation back, scores back).
struct RefineTask : TaskBase {
  std::string problem;
  std::optional<std::string> initial;
  std::optional<uint64_t> seed;
  RefineResult res;
  int t = 0;                  ///< the turn in progress
  RefineTurn turn;            ///< ... and its state
  GenerationOutput out;
};
}  // namespace detail

template <typename Gen, typename Scorer>
class Refiner
    : public detail::ManyProblems<Refiner<Gen, Scorer>, Gen, Scorer, RefineOptions, RefineProblem, RefineResult,
                                  detail::RefineTask> {
  using Base = detail::ManyProblems<Refiner, Gen, Scorer, RefineOptions, RefineProblem, RefineResult,
                                    detail::RefineTask>;
  using Base::gen_;
  using Base::opts_;
  using Base::scorer_;
  using typename Base::ReadyPtr;
  using typename Base::TaskPtr;

 public:
  Refiner(Gen& gen, Scorer& scorer, RefineOptions opts) : Base(gen, scorer, std::move(opts), "refine") {}

  /// Refines one problem. `prompt`: the rendered policy prompt of turn 0. `initial`: a solution to
  /// start from instead of generating turn 0 (nullopt: generate it). A failure is thrown (its own
  /// type). The many-problem refinement with one problem.
  RefineResult run(const std::string& problem, const std::string& prompt,
                   const std::optional<std::string>& initial = std::nullopt) {
    return this->run_problem(RefineProblem{problem, prompt, initial, std::nullopt});
  }

  // Many problems: run_many_async / run_many (search/many.hpp). A synchronous scorer's batch is
  // one problem's solution of one turn.

 private:
  friend Base;

  void start(size_t index, RefineProblem p, const ReadyPtr& ready) {
    auto t = std::make_shared<detail::RefineTask>();
    t->index = index;
    t->problem = std::move(p.problem);
    t->initial = std::move(p.initial);
    t->seed = p.seed ? p.seed : opts_.seed;
    t->turn.prompt = std::move(p.prompt);
    begin_turn(t, ready);
  }


  std::string join(const std::vector<std::string>& steps) const {
    std::string s;
    for (size_t i = 0; i < steps.size(); ++i) s += (i ? opts_.step_separator : "") + steps[i];
    return s;
  }

  std::string feedback(const RefineTurn& turn) const {
    if (turn.steps.empty()) return "No solution was written.";
    std::string f;
    for (int k : turn.incorrect) {
      const std::string critique = turn.critiques.empty() || turn.critiques[static_cast<size_t>(k)].empty()
                                       ? "judged incorrect."
                                       : turn.critiques[static_cast<size_t>(k)];
      f += (f.empty() ? "" : "\n\n") + fmt::format("Paragraph {}: {}", k + 1, critique);
    }
    return f;
  }

  /// Starts turn t->t (its prompt set): the given initial solution, else one policy request.
  void begin_turn(const TaskPtr& t, const ReadyPtr& ready) {
    t->scoring = false;
    if (t->t == 0 && t->initial) {
      t->turn.text = *t->initial;
      t->turn.finish_reason = "given";
      ready->queue.push_back(t);  // advance() scores it
      return;
    }
    try {
      GenerationRequest req;
      req.prompt_text = t->turn.prompt;
      req.params = opts_.sampling;
      req.params.max_tokens = opts_.max_tokens;
      if (t->seed) req.params.seed = detail::request_seed(*t->seed, t->t, 0);
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
  bool advance(const TaskPtr& t, const ReadyPtr& ready, Flight&) {
    if (t->failure) return true;
    try {
      if (!t->scoring) {
        if (!(t->t == 0 && t->initial)) generation_back(*t);
        RefineTurn& turn = t->turn;
        turn.steps = split_steps(turn.text, opts_.step_separator);
        if (auto e = math::extract_answer(turn.text)) turn.answer = e->answer;
        if (turn.steps.empty()) {  // nothing to verify: judged incorrect as a whole
          turn.score = 0.0;
          return end_turn(t, ready);
        }
        t->scoring = true;
        detail::request_scores(scorer_, t, ready, t->problem, Solutions{turn.steps});
        return false;
      }
      scores_back(*t);
      return end_turn(t, ready);
    } catch (...) {
      t->failure = std::current_exception();
      return true;
    }
  }

  void generation_back(detail::RefineTask& t) {
    GenerationOutput got = std::move(t.out);
    t.out = GenerationOutput{};
    GENPRM_CHECK(got.error.empty(), "refine: generation failed at turn {}: {}", t.t, got.error);
    GENPRM_CHECK(got.samples.size() == 1, "refine: the generator returned {} samples for n = 1", got.samples.size());
    ++t.res.requests;
    t.res.generated_tokens += static_cast<long>(got.samples[0].token_ids.size());
    t.turn.text = std::move(got.samples[0].text);
    t.turn.finish_reason = std::move(got.samples[0].finish_reason);
  }

  void scores_back(detail::RefineTask& t) {
    RefineTurn& turn = t.turn;
    Solutions sols{turn.steps};
    check_scores("refine", sols, t.scores);
    turn.rewards = std::move(t.scores[0].rewards);
    turn.critiques = std::move(t.scores[0].critiques);
    t.scores.clear();
    turn.score = aggregate(turn.rewards, opts_.aggregation);
    for (size_t i = 0; i < turn.rewards.size(); ++i)
      if (!(turn.rewards[i] >= opts_.threshold)) turn.incorrect.push_back(static_cast<int>(i));
  }

  /// Closes the scored turn; starts the next one unless done. True when the problem is done.
  bool end_turn(const TaskPtr& t, const ReadyPtr& ready) {
    RefineTurn& turn = t->turn;
    const bool ok = !turn.steps.empty() && turn.incorrect.empty();
    std::string next_prompt;
    const bool more = !ok && t->t < opts_.max_turns;
    if (more) {
      turn.feedback = feedback(turn);
      std::string user = replace_all(opts_.refine_template, "{feedback}", turn.feedback);
      user = replace_all(user, "{solution}", join(turn.steps));
      user = replace_all(user, "{problem}", t->problem);
      next_prompt = opts_.render ? opts_.render(user) : user;
    }
    t->res.turns.push_back(std::move(turn));
    t->res.all_correct = ok;
    if (!more) return true;
    ++t->t;
    t->turn = RefineTurn{};
    t->turn.prompt = std::move(next_prompt);
    begin_turn(t, ready);
    return false;
  }

};

/// One-call form: Refiner(gen, scorer, opts).run(problem, prompt, initial).
template <typename Gen, typename Scorer>
RefineResult refine(Gen& gen, Scorer& scorer, const std::string& problem, const std::string& prompt,
                    RefineOptions opts = {}, const std::optional<std::string>& initial = std::nullopt) {
  return Refiner<Gen, Scorer>(gen, scorer, std::move(opts)).run(problem, prompt, initial);
}

/// Many-problem form: Refiner(gen, scorer, opts).run_many(problems, on_result) (results in input
/// order; `on_result` sees each as it finishes).
template <typename Gen, typename Scorer>
std::vector<RefineProblemResult> refine_many(Gen& gen, Scorer& scorer, std::vector<RefineProblem> problems,
                                             RefineOptions opts = {},
                                             const std::function<void(const RefineProblemResult&)>& on_result = {}) {
  return Refiner<Gen, Scorer>(gen, scorer, std::move(opts)).run_many(std::move(problems), on_result);
}

}  // namespace genprm::search
