#pragma once
// Critic refinement (DESIGN.md "Policy test-time scaling"): the policy writes a solution, the
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
// "\n\n" (empty pieces dropped), as the policy wrote it. An empty solution is never judged correct.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "genprm/engine/request.hpp"
#include "genprm/math/extract.hpp"
#include "genprm/search/beam_search.hpp"
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

  void validate() const {
    GENPRM_CHECK_ARG(max_turns >= 0, "refine: max_turns must be >= 0, got {}", max_turns);
    GENPRM_CHECK_ARG(max_tokens > 0, "refine: max_tokens must be positive, got {}", max_tokens);
    GENPRM_CHECK_ARG(step_separator.size() > 0, "refine: step_separator is empty");
    for (const char* key : {"{problem}", "{solution}", "{feedback}"})
      GENPRM_CHECK_ARG(refine_template.find(key) != std::string::npos, "refine: refine_template lacks {}", key);
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
};

struct RefineResult {
  std::vector<RefineTurn> turns;  ///< turn 0 = the first solution
  bool all_correct = false;       ///< the last turn has every step judged correct
  int requests = 0;
  long generated_tokens = 0;
  const RefineTurn& final_turn() const { return turns.back(); }
};

/// Splits a solution at `sep`, dropping empty (whitespace-only) pieces.
inline std::vector<std::string> split_steps(const std::string& text, const std::string& sep = "\n\n") {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t k = text.find(sep, pos);
    if (k == std::string::npos) k = text.size();
    std::string piece = text.substr(pos, k - pos);
    if (!is_missing(piece)) out.push_back(std::move(piece));
    pos = k + sep.size();
  }
  return out;
}

inline std::string replace_all(std::string s, const std::string& key, const std::string& value) {
  for (size_t k = s.find(key); k != std::string::npos; k = s.find(key, k + value.size())) s.replace(k, key.size(), value);
  return s;
}

template <typename Gen, typename Scorer>
class Refiner {
 public:
  Refiner(Gen& gen, Scorer& scorer, RefineOptions opts) : gen_(gen), scorer_(scorer), opts_(std::move(opts)) {
    opts_.validate();
  }

  /// Refines one problem. `prompt`: the rendered policy prompt of turn 0. `initial`: a solution to
  /// start from instead of generating turn 0 (nullopt: generate it).
  RefineResult run(const std::string& problem, const std::string& prompt,
                   const std::optional<std::string>& initial = std::nullopt) {
    RefineResult res;
    std::string next_prompt = prompt;
    for (int t = 0; t <= opts_.max_turns; ++t) {
      RefineTurn turn;
      turn.prompt = next_prompt;
      if (t == 0 && initial) {
        turn.text = *initial;
        turn.finish_reason = "given";
      } else {
        generate(t, turn, res);
      }
      turn.steps = split_steps(turn.text, opts_.step_separator);
      if (auto e = math::extract_answer(turn.text)) turn.answer = e->answer;
      score(problem, turn);
      const bool ok = !turn.steps.empty() && turn.incorrect.empty();
      if (!ok && t < opts_.max_turns) {
        turn.feedback = feedback(turn);
        std::string user = replace_all(opts_.refine_template, "{feedback}", turn.feedback);
        user = replace_all(user, "{solution}", join(turn.steps));
        user = replace_all(user, "{problem}", problem);
        next_prompt = opts_.render ? opts_.render(user) : user;
      }
      res.turns.push_back(std::move(turn));
      res.all_correct = ok;
      if (ok) break;
    }
    return res;
  }

 private:
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

  void generate(int t, RefineTurn& turn, RefineResult& res) {
    GenerationRequest req;
    req.prompt_text = turn.prompt;
    req.params = opts_.sampling;
    req.params.max_tokens = opts_.max_tokens;
    if (opts_.seed) req.params.seed = detail::request_seed(*opts_.seed, t, 0);
    bool back = false;
    GenerationOutput got;
    gen_.submit(std::move(req), [&](GenerationOutput out) {
      got = std::move(out);
      back = true;
    });
    detail::drive(gen_, scorer_, back, "refine");
    GENPRM_CHECK(got.error.empty(), "refine: generation failed at turn {}: {}", t, got.error);
    GENPRM_CHECK(got.samples.size() == 1, "refine: the generator returned {} samples for n = 1", got.samples.size());
    ++res.requests;
    res.generated_tokens += static_cast<long>(got.samples[0].token_ids.size());
    turn.text = got.samples[0].text;
    turn.finish_reason = got.samples[0].finish_reason;
  }

  void score(const std::string& problem, RefineTurn& turn) {
    if (turn.steps.empty()) {  // nothing to verify: judged incorrect as a whole
      turn.score = 0.0;
      return;
    }
    Solutions sols{turn.steps};
    bool back = false;
    std::vector<StepScores> got;
    scorer_.score(problem, sols, [&](std::vector<StepScores> s) {
      got = std::move(s);
      back = true;
    });
    detail::drive(gen_, scorer_, back, "refine scorer");
    check_scores("refine", sols, got);
    turn.rewards = std::move(got[0].rewards);
    turn.critiques = std::move(got[0].critiques);
    turn.score = aggregate(turn.rewards, opts_.aggregation);
    for (size_t i = 0; i < turn.rewards.size(); ++i)
      if (!(turn.rewards[i] >= opts_.threshold)) turn.incorrect.push_back(static_cast<int>(i));
  }

  Gen& gen_;
  Scorer& scorer_;
  RefineOptions opts_;
};

/// One-call form: Refiner(gen, scorer, opts).run(problem, prompt, initial).
template <typename Gen, typename Scorer>
RefineResult refine(Gen& gen, Scorer& scorer, const std::string& problem, const std::string& prompt,
                    RefineOptions opts = {}, const std::optional<std::string>& initial = std::nullopt) {
  return Refiner<Gen, Scorer>(gen, scorer, std::move(opts)).run(problem, prompt, initial);
}

}  // namespace genprm::search
