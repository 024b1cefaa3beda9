#pragma once
// GenPRM prompts, byte-identical to the reference (prm_evaluate.py + util.build_prompt):
// system turn, user turn t = paragraph t (problem + "\n" + paragraph 1 for t = 1), assistant
// turn t = the verification text of paragraph t (the first path's, as the reference keeps it);
// the prompt for step t renders the turns up to user turn t without a generation prompt and
// removes a trailing end-of-sentence token (with its newline, if any). The turns are rendered by
// the tokenizer's chat template (genprm::render_chat: DeepSeek-R1-Distill for GenPRM).
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "genprm/prm/config.hpp"
#include "genprm/prm/result.hpp"
#include "genprm/tokenizer/chat.hpp"
#include "genprm/util/error.hpp"

namespace genprm::prm {

/// A turn of the verifier's conversation: the tokenizer layer's ChatMessage (tokenizer/chat.hpp).
using ChatTurn = ChatMessage;

/// Renders a conversation with the model's chat template, without a generation prompt
/// (make_tokenizer_ops: Tokenizer::apply_chat_template, i.e. genprm::render_chat).
using ChatRenderer = std::function<std::string(const std::vector<ChatTurn>&)>;

/// A solution to verify. `id` is carried into the result untouched.
///
/// `prior` (optional): an already verified result of a PREFIX of `steps` of the same problem
/// (e.g. the partial solution a beam search scored one iteration earlier). The verifier then
/// verifies only the steps after it: it checks the prior (same problem, its paragraphs are the
/// first steps of `steps`, no error; else ValueError naming the id), copies its StepResults and
/// rewards unchanged, takes the first-path texts of its steps as the earlier assistant turns
/// (so the next step's prompt is byte-identical to the one a full run with those texts builds),
/// and, before the first new code block runs, replays the prior's executed code blocks in a fresh
/// sandbox session (replay_order() in result.hpp; outputs discarded) to rebuild the namespace.
struct SolutionInput {
  std::string id;
  std::string problem;
  std::vector<std::string> steps;
  std::shared_ptr<const SolutionResult> prior;
};

/// The steps the reference verifies: a trailing empty step is dropped (prm_evaluate.py).
inline std::vector<std::string> effective_steps(const std::vector<std::string>& steps) {
  std::vector<std::string> out = steps;
  if (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

/// Turns for step `t` (1-based): system, then user 1, assistant 1, ..., user t.
/// `assistant_texts` holds the verification texts of steps 1..t-1 (at least t-1 of them).
inline std::vector<ChatTurn> step_conversation(const VerifierConfig& cfg, const std::string& problem,
                                               const std::vector<std::string>& steps,
                                               const std::vector<std::string>& assistant_texts,
                                               int t) {
  GENPRM_CHECK_ARG(t >= 1 && t <= static_cast<int>(steps.size()),
                   "step {} is out of range: the solution has {} steps", t, steps.size());
  GENPRM_CHECK_ARG(static_cast<int>(assistant_texts.size()) >= t - 1,
                   "step {} needs the verification texts of {} earlier steps, got {}", t, t - 1,
                   assistant_texts.size());
  const bool direct = !mode_analyzes(cfg.mode) && !mode_verifies(cfg.mode);
  std::vector<ChatTurn> turns;
  turns.push_back({"system", direct ? cfg.direct_system_prompt : cfg.system_prompt});
  for (int i = 0; i < t; ++i) {
    std::string user = i == 0 ? problem + "\n" + steps[0] : steps[i];
    turns.push_back({"user", std::move(user)});
    if (i + 1 < t) turns.push_back({"assistant", assistant_texts[i]});
  }
  return turns;
}

/// util.build_prompt: the rendered template with a trailing "{eos}\n" or "{eos}" removed.
inline std::string strip_trailing_eos(std::string prompt, const std::string& eos_token) {
  if (eos_token.empty()) return prompt;
  const std::string eos_nl = eos_token + "\n";
  auto ends_with = [&](const std::string& s) {
    return prompt.size() >= s.size() && prompt.compare(prompt.size() - s.size(), s.size(), s) == 0;
  };
  if (ends_with(eos_nl)) {
    prompt.resize(prompt.size() - eos_nl.size());
  } else if (ends_with(eos_token)) {
    prompt.resize(prompt.size() - eos_token.size());
  }
  return prompt;
}

/// The conversation prompt of step t (everything before the assistant-side text).
inline std::string step_base_prompt(const ChatRenderer& render, const std::string& eos_token,
                                    const VerifierConfig& cfg, const std::string& problem,
                                    const std::vector<std::string>& steps,
                                    const std::vector<std::string>& assistant_texts, int t) {
  return strip_trailing_eos(render(step_conversation(cfg, problem, steps, assistant_texts, t)),
                            eos_token);
}

/// The first prompt the model sees for step t: base prompt + the first stage's opening text
/// (analyze template, or the output template in direct mode).
inline std::string step_prompt(const ChatRenderer& render, const std::string& eos_token,
                               const VerifierConfig& cfg, const std::string& problem,
                               const std::vector<std::string>& steps,
                               const std::vector<std::string>& assistant_texts, int t) {
  std::string base = step_base_prompt(render, eos_token, cfg, problem, steps, assistant_texts, t);
  if (mode_analyzes(cfg.mode)) return base + cfg.analyze_start(t);
  if (mode_verifies(cfg.mode)) return base + cfg.verify_template;
  return base + cfg.output_template;
}

}  // namespace genprm::prm
