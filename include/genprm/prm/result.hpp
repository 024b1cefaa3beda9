#pragma once
// Verification results, JSON-serializable. Per solution `value` is the list of step rewards as
// the reference writes it; `first_wrong_step` is the 0-based index of the first step whose
// reward is below the threshold, -1 when none (ProcessBench's label convention).
//
// A result also records what was verified (`problem`, each step's `paragraph`) and the order in
// which its code blocks ran in the solution's sandbox session (CodeRun::order), so that it can be
// handed back as SolutionInput::prior to verify a longer solution incrementally (verifier.hpp).
#include <algorithm>
#include <string>
#include <vector>

#include "genprm/util/error.hpp"
#include "genprm/util/fields.hpp"
#include "genprm/util/json.hpp"

namespace genprm::prm {

struct CodeRun {
  std::string code;    ///< the executed block ("" when none was found)
  std::string output;  ///< the in-band text put between the [Code Output] fences
  bool executed = false;  ///< false: no block found, or mode without execution
  bool ok = true;
  bool timed_out = false;
  bool state_reset = false;  ///< ran in a fresh worker: the session's namespace was lost before it
  long order = -1;  ///< 0-based position among the blocks run in the solution's session; -1: not run
  double seconds = 0.0;

  static auto fields() {
    using C = CodeRun;
    return std::make_tuple(field("code", &C::code), field("output", &C::output), field("executed", &C::executed),
                           field("ok", &C::ok), field("timed_out", &C::timed_out),
                           field("state_reset", &C::state_reset), field("order", &C::order),
                           field("seconds", &C::seconds));
  }
};

struct PathResult {
  double reward = 0.5;
  bool judgement_found = false;  ///< a judgement position existed (else reward is 0.5)
  std::string judgement;         ///< the sampled text inside \boxed{...} (reward = reference: the matched word)
  double p_yes = 0.0, p_no = 0.0;
  /// Non-empty where the read-out could not follow the reference (reward = reference: the
  /// reference would raise here; the reward is then 0.5). Says what happened.
  std::string reward_note;
  std::string text;              ///< the whole verification (assistant turn) text
  std::vector<CodeRun> code;
  int rounds = 0;        ///< stage-2 generations (reference: cur_time)
  int fallbacks = 0;     ///< output fallbacks taken
  int requests = 0;      ///< generation requests made for this path
  long generated_tokens = 0;
  long prompt_tokens = 0;         ///< summed over this path's requests
  long cached_prompt_tokens = 0;  ///< of those, found in the prefix cache
  std::string finish_reason;      ///< of the final generation

  static auto fields() {
    using P = PathResult;
    return std::make_tuple(field("reward", &P::reward), field("judgement_found", &P::judgement_found),
                           field("judgement", &P::judgement), field("p_yes", &P::p_yes), field("p_no", &P::p_no),
                           field("reward_note", &P::reward_note),
                           field("text", &P::text), field("code", &P::code), field("rounds", &P::rounds),
                           field("fallbacks", &P::fallbacks), field("requests", &P::requests),
                           field("generated_tokens", &P::generated_tokens), field("prompt_tokens", &P::prompt_tokens),
                           field("cached_prompt_tokens", &P::cached_prompt_tokens),
                           field("finish_reason", &P::finish_reason));
  }
};

struct StepResult {
  int step = 0;           ///< 1-based
  std::string paragraph;  ///< the step text that was verified (user turn t)
  double reward = 0.5;    ///< mean of the paths' rewards
  /// "path {i}: {note}" for each path with a PathResult::reward_note, joined by "; "; empty when
  /// none: a non-empty note marks a step whose reward the reference could not have computed.
  std::string reward_note;
  std::vector<PathResult> paths;
  long prompt_tokens = 0;  ///< tokens of the step's first prompt
  long cached_prompt_tokens = 0;  ///< of those, found in the prefix cache (earlier steps' KV)
  double seconds = 0.0;    ///< from the step's first request to its last path finishing

  static auto fields() {
    using S = StepResult;
    return std::make_tuple(field("step", &S::step), field("paragraph", &S::paragraph), field("reward", &S::reward),
                           field("reward_note", &S::reward_note),
                           field("paths", &S::paths), field("prompt_tokens", &S::prompt_tokens),
                           field("cached_prompt_tokens", &S::cached_prompt_tokens), field("seconds", &S::seconds));
  }
};

/// Wall-clock seconds of one verification call.
struct VerificationTime {
  double seconds = 0.0;
  double code_seconds = 0.0;    ///< in the sandbox
  double replay_seconds = 0.0;  ///< re-running a prior's blocks (part of code_seconds)

  static auto fields() {
    using T = VerificationTime;
    return std::make_tuple(field("seconds", &T::seconds), field("code_seconds", &T::code_seconds),
                           field("replay_seconds", &T::replay_seconds));
  }
};

/// The verification of one solution. With a prior (SolutionInput::prior), the first
/// `reused_steps` entries of `steps` / `value` are the prior's, copied unchanged; the totals
/// (`seconds`, `code_seconds`, `generated_tokens`, `prompt_tokens`, `cached_prompt_tokens`) count
/// only the work of THIS call (the new steps and the namespace replay), never the prior's: the
/// per-path counters of the reused steps still hold what they cost when they were verified.
struct SolutionResult {
  std::string id;
  std::string problem;        ///< the problem text that was verified
  std::vector<double> value;  ///< step rewards
  int first_wrong_step = -1;
  double threshold = 0.5;
  std::vector<StepResult> steps;
  int reused_steps = 0;          ///< leading steps copied from the prior (0: verified from scratch)
  int replayed_code_blocks = 0;  ///< prior code blocks re-run to rebuild the namespace
  VerificationTime time;
  long generated_tokens = 0;
  long prompt_tokens = 0;
  long cached_prompt_tokens = 0;
  std::string error;  ///< non-empty when the generator reported a failure

  static auto fields() {
    using R = SolutionResult;
    return std::make_tuple(field("id", &R::id), field("problem", &R::problem), field("value", &R::value),
                           field("first_wrong_step", &R::first_wrong_step), field("threshold", &R::threshold),
                           field("steps", &R::steps), field("reused_steps", &R::reused_steps),
                           field("replayed_code_blocks", &R::replayed_code_blocks), field("time", &R::time),
                           field("generated_tokens", &R::generated_tokens), field("prompt_tokens", &R::prompt_tokens),
                           field("cached_prompt_tokens", &R::cached_prompt_tokens), field("error", &R::error));
  }
};

inline int first_below(const std::vector<double>& rewards, double threshold) {
  for (size_t i = 0; i < rewards.size(); ++i) {
    if (rewards[i] < threshold) return static_cast<int>(i);
  }
  return -1;
}

/// StepResult::reward_note of these paths (0-based path numbers).
inline std::string step_reward_note(const std::vector<PathResult>& paths) {
  std::string note;
  for (size_t i = 0; i < paths.size(); ++i) {
    if (paths[i].reward_note.empty()) continue;
    note += fmt::format("{}path {}: {}", note.empty() ? "" : "; ", i, paths[i].reward_note);
  }
  return note;
}

/// The keys a written result needs to serve as a prior (results written before `problem` and
/// each step's `paragraph` existed cannot); the Python side checks dicts against the same lists
/// (SolutionResult.PRIOR_KEYS / PRIOR_STEP_KEYS).
inline constexpr const char* kPriorKeys[] = {"id", "problem", "value", "steps"};
inline constexpr const char* kPriorStepKeys[] = {"paragraph", "reward", "paths"};

/// What to_json(SolutionResult) wrote, read back (e.g. a result handed back as a prior): the
/// prior keys are required, other fields keep their defaults when absent.
inline SolutionResult solution_result_from_json(const Json& j) {
  constexpr const char* what = "verification result";
  GENPRM_CHECK_ARG(j.is_object(), "{}: expected a JSON object", what);
  for (const char* key : kPriorKeys) GENPRM_CHECK_ARG(j.contains(key), "{}: missing '{}'", what, key);
  for (const auto& st : j.at("steps"))
    for (const char* key : kPriorStepKeys)
      GENPRM_CHECK_ARG(st.is_object() && st.contains(key), "{} step: missing '{}'", what, key);
  return struct_from_json<SolutionResult>(j, what);
}

using genprm::to_json;

/// The prior code blocks to re-run, in a fresh session, to rebuild a solution's namespace as the
/// verification that produced `steps` left it: the executed blocks sorted by CodeRun::order (the
/// order they originally ran in the session, which is what shaped the namespace), starting at
/// the last block that ran in a fresh worker (state_reset: the namespace before it was lost), and
/// without blocks that timed out (their partial effects are not reproduced: re-running them would
/// cost the timeout again). Blocks without an order (-1) come after the ordered ones, by step,
/// path and position. Deterministic for a given result.
inline std::vector<const CodeRun*> replay_order(const std::vector<StepResult>& steps) {
  std::vector<const CodeRun*> all;
  for (const auto& st : steps)
    for (const auto& p : st.paths)
      for (const auto& c : p.code)
        if (c.executed) all.push_back(&c);
  std::stable_sort(all.begin(), all.end(), [](const CodeRun* a, const CodeRun* b) {
    if ((a->order < 0) != (b->order < 0)) return a->order >= 0;
    return a->order < b->order;
  });
  size_t start = 0;
  for (size_t i = 0; i < all.size(); ++i)
    if (all[i]->state_reset) start = i;
  std::vector<const CodeRun*> out;
  for (size_t i = start; i < all.size(); ++i)
    if (!all[i]->timed_out) out.push_back(all[i]);
  return out;
}

}  // namespace genprm::prm
