#pragma once
// Step-level beam search with a process reward model (docs/design.md "Policy test-time scaling"),
// templated on a Generator (engine/request.hpp) and a StepScorer (scorer.hpp). Torch-free.
//
// N = `beams` candidates per iteration, beam width M = `width`, N divisible by M:
//   iteration 1: the prompt is expanded with ONE request of n = N sampled first steps;
//   iteration k > 1: each of the N/M kept beams is expanded with ONE request of n = M sampled
//     next steps (prompt = problem prompt + steps so far joined by `step_separator` + separator,
//     so the expansions of one beam share its prompt and the engine forks its KV; the radix
//     cache computes only the newly appended step of each beam).
//   A step ends at a step delimiter (stop strings `step_delimiters`, default "\n\n" and
//   "\nStep ", i.e. the next `Step k:`: math/steps.hpp StepRule::Delimiters, which splits a whole
//   solution the same way), which is not part of the step text.
//   The scorer scores every candidate (partial solution = its steps) in one batch; score =
//   aggregate(rewards, aggregation). A candidate is finished and set aside when its step ended
//   with EOS / a stop token (reason "eos"), contains a final \boxed{} answer ("answer"), the
//   beam's generated tokens reach max_total_tokens ("budget"), or it has max_steps steps
//   ("max_steps"), first that applies in this order. Of the unfinished candidates the top N/M by
//   score survive; the others are pruned.
//   The search ends when no beam is live. The best finished beam (highest score) wins.
// Candidate order: by parent rank (kept beams in rank order), then sample index. Ties in score
// go to the lower candidate order when pruning, and to the beam finished first (earlier
// iteration, then lower candidate order) when choosing the winner.
// With `seed`, request k of iteration t gets seed mix(seed, t, k): same seed, same search.
//
// Many problems at once (run_many / run_many_async / beam_search_many): each problem is a small
// state machine (waiting for its generations, then for its scores); one loop admits up to
// `max_problems_in_flight` problems, polls the generator (and an asynchronous scorer), and
// advances whichever problem's event came back, so the expansions of all live problems share
// the engine's batches. Per problem the requests, seeds and results are those of run(): the
// one-problem search is the many-problem search with one problem.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "genprm/gen/request.hpp"
#include "genprm/gen/rng.hpp"
#include "genprm/math/extract.hpp"
#include "genprm/math/steps.hpp"
#include "genprm/search/many.hpp"
#include "genprm/search/score.hpp"
#include "genprm/search/scorer.hpp"
#include "genprm/search/select.hpp"
#include "genprm/util/error.hpp"

namespace genprm::search {

struct BeamSearchOptions {
  int beams = 4;               ///< N: candidates scored per iteration
  int width = 2;               ///< M: samples per kept beam; N/M beams survive each iteration
  int max_steps = 40;          ///< steps per solution at most
  int max_step_tokens = 512;   ///< new tokens per step
  long max_total_tokens = 0;   ///< generated tokens per beam at most (0: no limit)
  SamplingParams sampling = default_sampling();  ///< max_tokens and stop are set per step
  std::vector<std::string> step_delimiters = math::default_step_delimiters();  ///< "\n\n", "\nStep "
  std::string step_separator = "\n\n";  ///< joins the steps when a beam is extended
  Aggregation aggregation = Aggregation::Last;
  std::optional<uint64_t> seed;
  int max_problems_in_flight = 8;  ///< run_many: problems searched at once at most

  static SamplingParams default_sampling() {
    SamplingParams p;
    p.temperature = 0.7f;
    p.top_p = 1.0f;
    return p;
  }

  void validate() const {
    GENPRM_CHECK_ARG(beams > 0, "beam_search: beams must be positive, got {}", beams);
    GENPRM_CHECK_ARG(width > 0, "beam_search: width must be positive, got {}", width);
    GENPRM_CHECK_ARG(beams % width == 0, "beam_search: beams ({}) must be divisible by width ({})", beams, width);
    GENPRM_CHECK_ARG(max_steps > 0, "beam_search: max_steps must be positive, got {}", max_steps);
    GENPRM_CHECK_ARG(max_step_tokens > 0, "beam_search: max_step_tokens must be positive, got {}", max_step_tokens);
    GENPRM_CHECK_ARG(max_total_tokens >= 0, "beam_search: max_total_tokens must be >= 0, got {}", max_total_tokens);
    GENPRM_CHECK_ARG(max_problems_in_flight > 0, "beam_search: max_problems_in_flight must be positive, got {}",
                     max_problems_in_flight);
    GENPRM_CHECK_ARG(!step_delimiters.empty(), "beam_search: step_delimiters is empty");
    for (const auto& d : step_delimiters) GENPRM_CHECK_ARG(!d.empty(), "beam_search: an empty step delimiter");
  }

  static auto fields() {
    using B = BeamSearchOptions;
    return std::make_tuple(field("beams", &B::beams), field("width", &B::width), field("max_steps", &B::max_steps),
                           field("max_step_tokens", &B::max_step_tokens),
                           field("max_total_tokens", &B::max_total_tokens), field("sampling", &B::sampling),
                           field("step_delimiters", &B::step_delimiters),
                           field("step_separator", &B::step_separator), field("aggregation", &B::aggregation),
                           field("seed", &B::seed), field("max_problems_in_flight", &B::max_problems_in_flight));
  }
};

struct Beam {
  std::vector<std::string> steps;
  std::vector<double> rewards;     ///< the scorer's rewards for `steps`
  std::vector<std::string> critiques;
  double score = 0.0;              ///< aggregate(rewards)
  long tokens = 0;                 ///< generated tokens over all steps
  std::string finish_reason;       ///< "eos", "answer", "budget", "max_steps"; empty while live
  Answer answer;                   ///< math::extract_answer of the text (finished beams)
  int iteration = 0;               ///< iteration that produced its last step (1-based)
  int order = 0;                   ///< candidate order within that iteration
  int parent = -1;                 ///< rank of the kept beam it extends (-1: the prompt)

  std::string text(const std::string& sep = "\n\n") const {
    std::string t;
    for (size_t i = 0; i < steps.size(); ++i) t += (i ? sep : "") + steps[i];
    return t;
  }

  static auto fields() {
    using B = Beam;
    return std::make_tuple(field("steps", &B::steps), field("rewards", &B::rewards),
                           field("critiques", &B::critiques), field("score", &B::score),
                           field("tokens", &B::tokens), field("finish_reason", &B::finish_reason),
                           field("answer", &B::answer), field("iteration", &B::iteration),
                           field("order", &B::order), field("parent", &B::parent));
  }
};

struct BeamIteration {
  int iteration = 0;
  int requests = 0;                 ///< generation requests made (1, then N/M at most)
  std::vector<Beam> candidates;     ///< in candidate order
  std::vector<std::string> status;  ///< per candidate: "kept", "pruned" or "finished"

  static auto fields() {
    using B = BeamIteration;
    return std::make_tuple(field("iteration", &B::iteration), field("requests", &B::requests),
                           field("candidates", &B::candidates), field("status", &B::status));
  }
};

struct BeamSearchResult {
  Beam best;
  std::vector<Beam> finished;          ///< in the order they were set aside
  std::vector<BeamIteration> iterations;
  int requests = 0;
  long generated_tokens = 0;
  long prompt_tokens = 0;
  long cached_prompt_tokens = 0;       ///< prompt tokens the generator found cached

  static auto fields() {
    using B = BeamSearchResult;
    return std::make_tuple(field("best", &B::best), field("finished", &B::finished),
                           field("iterations", &B::iterations), field("requests", &B::requests),
                           field("generated_tokens", &B::generated_tokens),
                           field("prompt_tokens", &B::prompt_tokens),
                           field("cached_prompt_tokens", &B::cached_prompt_tokens));
  }
};

namespace detail {
inline uint64_t request_seed(uint64_t seed, int iteration, int request) {
  return splitmix64(seed ^ splitmix64((static_cast<uint64_t>(iteration) << 32) | static_cast<uint32_t>(request)));
}
inline bool has_final_answer(const std::string& step) {
  auto e = math::extract_answer(step);
  return e && (e->rule == "boxed" || e->rule == "fbox");
}

/// Runs generator and scorer until `*flag` is set; Error if both go idle first.
template <typename Gen, typename Scorer>
void drive(Gen& gen, Scorer& scorer, const bool& flag, const char* what) {
  while (!flag) {
    const bool g = gen.poll();
    const bool s = poll_scorer(scorer);
    GENPRM_CHECK(flag || g || s, "{}: generator and scorer went idle before the results came back", what);
  }
}
}  // namespace detail

/// One problem of a many-problem search.
struct BeamProblem {
  std::string problem;            ///< what the scorer sees
  std::string prompt;             ///< the rendered policy prompt (chat template applied)
  std::optional<uint64_t> seed;   ///< overrides BeamSearchOptions::seed for this problem
};

/// The outcome of one problem of run_many: `result` (partial when it failed) or `error`.
using BeamProblemResult = ProblemResult<BeamSearchResult>;

namespace detail {
/// The state of one problem's search between events (generation back, scores back).
struct BeamTask : TaskBase {
  std::string problem, prompt;
  std::optional<uint64_t> seed;
  BeamSearchResult res;
  std::vector<Beam> live;
  int it = 0;
  BeamIteration trace;
  std::vector<GenerationOutput> outputs;  ///< this iteration's generations, by kept-beam rank
  size_t left = 0;                        ///< requests of this iteration still out
};
}  // namespace detail

template <typename Gen, typename Scorer>
class BeamSearch
    : public detail::ManyProblems<BeamSearch<Gen, Scorer>, Gen, Scorer, BeamSearchOptions, BeamProblem, BeamSearchResult,
                                  detail::BeamTask> {
  using Base = detail::ManyProblems<BeamSearch, Gen, Scorer, BeamSearchOptions, BeamProblem, BeamSearchResult,
                                    detail::BeamTask>;
  using Base::gen_;
  using Base::opts_;
  using Base::scorer_;
  using typename Base::ReadyPtr;
  using typename Base::TaskPtr;

 public:
  BeamSearch(Gen& gen, Scorer& scorer, BeamSearchOptions opts) : Base(gen, scorer, std::move(opts), "beam_search") {}

  /// Searches one problem. `prompt` is the rendered policy prompt (chat template applied);
  /// `problem` is what the scorer sees. A failure is thrown (its own type).
  BeamSearchResult run(const std::string& problem, const std::string& prompt) {
    return this->run_problem(BeamProblem{problem, prompt, std::nullopt});
  }

  // Many problems: run_many_async / run_many (search/many.hpp). A synchronous scorer's batch is
  // one problem's N candidates of one iteration; a problem with no finished beam fails.

 private:
  friend Base;

  void start(size_t index, BeamProblem p, const ReadyPtr& ready) {
    auto t = std::make_shared<detail::BeamTask>();
    t->index = index;
    t->problem = std::move(p.problem);
    t->prompt = std::move(p.prompt);
    t->seed = p.seed ? p.seed : opts_.seed;
    t->live.assign(1, Beam{});  // the prompt itself
    begin_iteration(t, ready);
  }


  /// Submits one request per live beam (iteration 1: the prompt, n = N; later: n = M).
  void begin_iteration(const TaskPtr& t, const ReadyPtr& ready) {
    ++t->it;
    t->trace = BeamIteration{};
    t->trace.iteration = t->it;
    t->scoring = false;
    const int n = t->it == 1 ? opts_.beams : opts_.width;
    t->outputs.assign(t->live.size(), GenerationOutput{});
    t->left = t->live.size();
    for (size_t b = 0; b < t->live.size(); ++b) {
      try {
        GenerationRequest req;
        req.prompt_text = t->prompt;
        if (!t->live[b].steps.empty()) req.prompt_text += t->live[b].text(opts_.step_separator) + opts_.step_separator;
        req.n = n;
        req.params = opts_.sampling;
        req.params.max_tokens = opts_.max_step_tokens;
        req.params.stop = opts_.step_delimiters;
        req.params.include_stop_str_in_output = false;
        if (t->seed) req.params.seed = detail::request_seed(*t->seed, t->it, static_cast<int>(b));
        ++t->trace.requests;
        gen_.submit(std::move(req), [t, ready, b](GenerationOutput out) {
          t->outputs[b] = std::move(out);
          if (--t->left == 0) ready->queue.push_back(t);
        });
      } catch (...) {  // the requests already out still come back: wait for them
        t->failure = std::current_exception();
        t->left -= t->live.size() - b;
        if (t->left == 0) ready->queue.push_back(t);
        return;
      }
    }
  }

  /// Handles the event a problem waited for; true when the problem is finished (or failed).
  template <typename Flight>
  bool advance(const TaskPtr& t, const ReadyPtr& ready, Flight&) {
    if (t->failure) return true;
    try {
      if (!t->scoring) {
        generation_back(*t);
        t->scoring = true;
        Solutions sols;
        for (const auto& c : t->trace.candidates) sols.push_back(c.steps);
        detail::request_scores(scorer_, t, ready, t->problem, std::move(sols));
        return false;
      }
      scores_back(*t);
      if (t->live.empty()) {
        GENPRM_CHECK(!t->res.finished.empty(), "beam_search: no beam finished");
        std::vector<double> scores;
        for (const auto& b : t->res.finished) scores.push_back(b.score);
        t->res.best = t->res.finished[best_of_n(scores)];
        return true;
      }
      begin_iteration(t, ready);
      return false;
    } catch (...) {
      t->failure = std::current_exception();
      return true;
    }
  }

  void generation_back(detail::BeamTask& t) {
    std::string error;
    for (size_t b = 0; b < t.outputs.size(); ++b) {
      GenerationOutput& out = t.outputs[b];
      if (!out.error.empty() && error.empty()) error = out.error;
      t.res.prompt_tokens += static_cast<long>(out.prompt_ids.size());
      t.res.cached_prompt_tokens += static_cast<long>(out.cached_prompt_tokens);
      for (auto& s : out.samples) t.res.generated_tokens += static_cast<long>(s.token_ids.size());
    }
    GENPRM_CHECK(error.empty(), "beam_search: generation failed at iteration {}: {}", t.it, error);
    t.res.requests += t.trace.requests;
    for (size_t b = 0; b < t.outputs.size(); ++b)
      for (const auto& s : t.outputs[b].samples) {
        Beam c = extend(t.live[b], static_cast<int>(b), s);
        c.iteration = t.it;
        c.order = static_cast<int>(t.trace.candidates.size());
        t.trace.candidates.push_back(std::move(c));
      }
    t.outputs.clear();
  }

  void scores_back(detail::BeamTask& t) {
    const int keep = opts_.beams / opts_.width;
    auto& cands = t.trace.candidates;
    Solutions sols;
    for (const auto& c : cands) sols.push_back(c.steps);
    check_scores("beam_search", sols, t.scores);
    for (size_t i = 0; i < cands.size(); ++i) {
      cands[i].rewards = std::move(t.scores[i].rewards);
      cands[i].critiques = std::move(t.scores[i].critiques);
      cands[i].score = aggregate(cands[i].rewards, opts_.aggregation);
    }
    t.scores.clear();

    std::vector<size_t> open;
    t.trace.status.assign(cands.size(), "pruned");
    for (size_t i = 0; i < cands.size(); ++i) {
      Beam& c = cands[i];
      if (c.finish_reason.empty() && static_cast<int>(c.steps.size()) >= opts_.max_steps) c.finish_reason = "max_steps";
      if (!c.finish_reason.empty()) {
        c.answer = extract(c);
        t.trace.status[i] = "finished";
        t.res.finished.push_back(c);
      } else {
        open.push_back(i);
      }
    }
    std::stable_sort(open.begin(), open.end(), [&](size_t a, size_t b) {
      const double sa = cands[a].score, sb = cands[b].score;
      if (std::isnan(sb)) return !std::isnan(sa);
      return sa > sb;  // NaN sa: false, so it stays behind
    });
    if (open.size() > static_cast<size_t>(keep)) open.resize(static_cast<size_t>(keep));
    std::vector<Beam> next;
    for (size_t i : open) {
      t.trace.status[i] = "kept";
      next.push_back(cands[i]);
    }
    t.live = std::move(next);
    t.res.iterations.push_back(std::move(t.trace));
    t.trace = BeamIteration{};
  }

  Beam extend(const Beam& parent, int parent_rank, const SampleOutput& s) const {
    Beam c;
    c.steps = parent.steps;
    c.steps.push_back(s.text);
    c.tokens = parent.tokens + static_cast<long>(s.token_ids.size());
    c.parent = parent.steps.empty() ? -1 : parent_rank;
    bool at_delimiter = false;
    for (const auto& d : opts_.step_delimiters) at_delimiter |= s.stop_reason == d;
    if (s.finish_reason == "stop" && !at_delimiter) {
      c.finish_reason = "eos";
    } else if (detail::has_final_answer(s.text)) {
      c.finish_reason = "answer";
    } else if (opts_.max_total_tokens > 0 && c.tokens >= opts_.max_total_tokens) {
      c.finish_reason = "budget";
    }
    return c;
  }

  Answer extract(const Beam& b) const {
    auto e = math::extract_answer(b.text(opts_.step_separator));
    return e ? Answer(e->answer) : Answer();
  }

};

/// One-call form: BeamSearch(gen, scorer, opts).run(problem, prompt).
template <typename Gen, typename Scorer>
BeamSearchResult beam_search(Gen& gen, Scorer& scorer, const std::string& problem, const std::string& prompt,
                             BeamSearchOptions opts = {}) {
  return BeamSearch<Gen, Scorer>(gen, scorer, std::move(opts)).run(problem, prompt);
}

/// Many-problem form: BeamSearch(gen, scorer, opts).run_many(problems, on_result) (results in
/// input order; `on_result` sees each as it finishes).
template <typename Gen, typename Scorer>
std::vector<BeamProblemResult> beam_search_many(Gen& gen, Scorer& scorer, std::vector<BeamProblem> problems,
                                                BeamSearchOptions opts = {},
                                                const std::function<void(const BeamProblemResult&)>& on_result = {}) {
  return BeamSearch<Gen, Scorer>(gen, scorer, std::move(opts)).run_many(std::move(problems), on_result);
}

}  // namespace genprm::search
