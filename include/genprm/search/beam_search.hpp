#pragma once
// Step-level beam search with a process reward model (DESIGN.md "Policy test-time scaling"),
// templated on a Generator (engine/request.hpp) and a StepScorer (scorer.hpp). Torch-free.
//
// N = `beams` candidates per iteration, beam width M = `width`, N divisible by M:
//   iteration 1: the prompt is expanded with ONE request of n = N sampled first steps;
//   iteration k > 1: each of the N/M kept beams is expanded with ONE request of n = M sampled
//     next steps (prompt = problem prompt + steps so far joined by `step_separator` + separator,
//     so the expansions of one beam share its prompt and the engine forks its KV; the radix
//     cache computes only the newly appended step of each beam).
//   A step ends at a step delimiter (stop strings `step_delimiters`, default "\n\n" and
//   "\nStep ", i.e. the next `Step k:`), which is not part of the step text.
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
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "genprm/engine/request.hpp"
#include "genprm/math/extract.hpp"
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
  std::vector<std::string> step_delimiters = {"\n\n", "\nStep "};
  std::string step_separator = "\n\n";  ///< joins the steps when a beam is extended
  Aggregation aggregation = Aggregation::Last;
  std::optional<uint64_t> seed;

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
    GENPRM_CHECK_ARG(!step_delimiters.empty(), "beam_search: step_delimiters is empty");
    for (const auto& d : step_delimiters) GENPRM_CHECK_ARG(!d.empty(), "beam_search: an empty step delimiter");
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
};

struct BeamIteration {
  int iteration = 0;
  int requests = 0;                 ///< generation requests made (1, then N/M at most)
  std::vector<Beam> candidates;     ///< in candidate order
  std::vector<std::string> status;  ///< per candidate: "kept", "pruned" or "finished"
};

struct BeamSearchResult {
  Beam best;
  std::vector<Beam> finished;          ///< in the order they were set aside
  std::vector<BeamIteration> iterations;
  int requests = 0;
  long generated_tokens = 0;
  long prompt_tokens = 0;
  long cached_prompt_tokens = 0;       ///< prompt tokens the generator found cached
};

namespace detail {
inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
inline uint64_t request_seed(uint64_t seed, int iteration, int request) {
  return mix64(seed ^ mix64((static_cast<uint64_t>(iteration) << 32) | static_cast<uint32_t>(request)));
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

template <typename Gen, typename Scorer>
class BeamSearch {
 public:
  BeamSearch(Gen& gen, Scorer& scorer, BeamSearchOptions opts) : gen_(gen), scorer_(scorer), opts_(std::move(opts)) {
    opts_.validate();
  }

  /// Searches one problem. `prompt` is the rendered policy prompt (chat template applied);
  /// `problem` is what the scorer sees.
  BeamSearchResult run(const std::string& problem, const std::string& prompt) {
    BeamSearchResult res;
    const int N = opts_.beams, M = opts_.width, keep = N / M;
    std::vector<Beam> live(1);  // the prompt itself
    for (int it = 1; !live.empty(); ++it) {
      BeamIteration trace;
      trace.iteration = it;
      const int n = it == 1 ? N : M;
      std::vector<std::vector<Beam>> expansions(live.size());
      size_t left = live.size();
      bool all_back = false;
      std::string error;
      for (size_t b = 0; b < live.size(); ++b) {
        GenerationRequest req;
        req.prompt_text = prompt;
        if (!live[b].steps.empty()) req.prompt_text += live[b].text(opts_.step_separator) + opts_.step_separator;
        req.n = n;
        req.params = opts_.sampling;
        req.params.max_tokens = opts_.max_step_tokens;
        req.params.stop = opts_.step_delimiters;
        req.params.include_stop_str_in_output = false;
        if (opts_.seed) req.params.seed = detail::request_seed(*opts_.seed, it, static_cast<int>(b));
        ++trace.requests;
        gen_.submit(std::move(req), [&, b](GenerationOutput out) {
          if (!out.error.empty() && error.empty()) error = out.error;
          res.prompt_tokens += static_cast<long>(out.prompt_ids.size());
          res.cached_prompt_tokens += static_cast<long>(out.cached_prompt_tokens);
          for (auto& s : out.samples) res.generated_tokens += static_cast<long>(s.token_ids.size());
          for (auto& s : out.samples) expansions[b].push_back(extend(live[b], static_cast<int>(b), s));
          if (--left == 0) all_back = true;
        });
      }
      detail::drive(gen_, scorer_, all_back, "beam_search");
      GENPRM_CHECK(error.empty(), "beam_search: generation failed at iteration {}: {}", it, error);
      res.requests += trace.requests;

      for (auto& group : expansions)
        for (auto& c : group) {
          c.iteration = it;
          c.order = static_cast<int>(trace.candidates.size());
          trace.candidates.push_back(std::move(c));
        }
      score_all(problem, trace.candidates);

      std::vector<size_t> open;
      trace.status.assign(trace.candidates.size(), "pruned");
      for (size_t i = 0; i < trace.candidates.size(); ++i) {
        Beam& c = trace.candidates[i];
        if (c.finish_reason.empty() && static_cast<int>(c.steps.size()) >= opts_.max_steps) c.finish_reason = "max_steps";
        if (!c.finish_reason.empty()) {
          c.answer = extract(c);
          trace.status[i] = "finished";
          res.finished.push_back(c);
        } else {
          open.push_back(i);
        }
      }
      std::stable_sort(open.begin(), open.end(), [&](size_t a, size_t b) {
        const double sa = trace.candidates[a].score, sb = trace.candidates[b].score;
        if (std::isnan(sb)) return !std::isnan(sa);
        return sa > sb;  // NaN sa: false, so it stays behind
      });
      if (open.size() > static_cast<size_t>(keep)) open.resize(static_cast<size_t>(keep));
      std::vector<Beam> next;
      for (size_t i : open) {
        trace.status[i] = "kept";
        next.push_back(trace.candidates[i]);
      }
      live = std::move(next);
      res.iterations.push_back(std::move(trace));
    }
    GENPRM_CHECK(!res.finished.empty(), "beam_search: no beam finished");
    std::vector<double> scores;
    for (const auto& b : res.finished) scores.push_back(b.score);
    res.best = res.finished[best_of_n(scores)];
    return res;
  }

  const BeamSearchOptions& options() const { return opts_; }

 private:
  Beam extend(const Beam& parent, int parent_rank, const SampleOutput& s) {
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

  void score_all(const std::string& problem, std::vector<Beam>& cands) {
    Solutions sols;
    for (const auto& c : cands) sols.push_back(c.steps);
    bool back = false;
    std::vector<StepScores> got;
    scorer_.score(problem, sols, [&](std::vector<StepScores> s) {
      got = std::move(s);
      back = true;
    });
    detail::drive(gen_, scorer_, back, "beam_search scorer");
    check_scores("beam_search", sols, got);
    for (size_t i = 0; i < cands.size(); ++i) {
      cands[i].rewards = std::move(got[i].rewards);
      cands[i].critiques = std::move(got[i].critiques);
      cands[i].score = aggregate(cands[i].rewards, opts_.aggregation);
    }
  }

  Gen& gen_;
  Scorer& scorer_;
  BeamSearchOptions opts_;
};

/// One-call form: BeamSearch(gen, scorer, opts).run(problem, prompt).
template <typename Gen, typename Scorer>
BeamSearchResult beam_search(Gen& gen, Scorer& scorer, const std::string& problem, const std::string& prompt,
                             BeamSearchOptions opts = {}) {
  return BeamSearch<Gen, Scorer>(gen, scorer, std::move(opts)).run(problem, prompt);
}

}  // namespace genprm::search
