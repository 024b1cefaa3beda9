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
  double replay_seconds = 0.0;   ///< sandbox time of those re-runs (part of code_seconds)
  double seconds = 0.0;
  double code_seconds = 0.0;
  long generated_tokens = 0;
  long prompt_tokens = 0;
  long cached_prompt_tokens = 0;
  std::string error;  ///< non-empty when the generator reported a failure
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

inline Json to_json(const CodeRun& c) {
  return Json{{"code", c.code}, {"output", c.output}, {"executed", c.executed}, {"ok", c.ok},
              {"timed_out", c.timed_out}, {"state_reset", c.state_reset}, {"order", c.order},
              {"seconds", c.seconds}};
}

inline Json to_json(const PathResult& p) {
  Json code = Json::array();
  for (const auto& c : p.code) code.push_back(to_json(c));
  return Json{{"reward", p.reward}, {"judgement_found", p.judgement_found},
              {"judgement", p.judgement}, {"p_yes", p.p_yes}, {"p_no", p.p_no},
              {"reward_note", p.reward_note}, {"text", p.text}, {"code", code}, {"rounds", p.rounds},
              {"fallbacks", p.fallbacks}, {"requests", p.requests},
              {"generated_tokens", p.generated_tokens}, {"prompt_tokens", p.prompt_tokens},
              {"cached_prompt_tokens", p.cached_prompt_tokens},
              {"finish_reason", p.finish_reason}};
}

inline Json to_json(const StepResult& s) {
  Json paths = Json::array();
  for (const auto& p : s.paths) paths.push_back(to_json(p));
  return Json{{"step", s.step}, {"paragraph", s.paragraph}, {"reward", s.reward},
              {"reward_note", s.reward_note}, {"paths", paths},
              {"prompt_tokens", s.prompt_tokens}, {"cached_prompt_tokens", s.cached_prompt_tokens},
              {"seconds", s.seconds}};
}

inline Json to_json(const SolutionResult& r) {
  Json steps = Json::array();
  for (const auto& s : r.steps) steps.push_back(to_json(s));
  return Json{{"id", r.id}, {"problem", r.problem}, {"value", r.value},
              {"first_wrong_step", r.first_wrong_step}, {"threshold", r.threshold}, {"steps", steps},
              {"reused_steps", r.reused_steps}, {"replayed_code_blocks", r.replayed_code_blocks},
              {"time", Json{{"seconds", r.seconds}, {"code_seconds", r.code_seconds},
                            {"replay_seconds", r.replay_seconds}}},
              {"generated_tokens", r.generated_tokens}, {"prompt_tokens", r.prompt_tokens},
              {"cached_prompt_tokens", r.cached_prompt_tokens}, {"error", r.error}};
}

namespace detail {
/// j[key] as T; ValueError naming `what` and the key when it is missing or of the wrong type.
template <typename T>
T json_field(const Json& j, const char* key, const char* what) {
  GENPRM_CHECK_ARG(j.is_object() && j.contains(key), "{}: missing '{}'", what, key);
  try {
    return j.at(key).get<T>();
  } catch (const std::exception& e) {
    throw ValueError(fmt::format("{}: '{}' has the wrong type ({})", what, key, e.what()));
  }
}
template <typename T>
T json_field_or(const Json& j, const char* key, T dflt) {
  if (!j.is_object() || !j.contains(key) || j.at(key).is_null()) return dflt;
  return j.at(key).get<T>();
}
}  // namespace detail

/// Reads back what to_json(SolutionResult) wrote (e.g. a Python VerificationResult handed back
/// as a prior). `problem` and each step's `paragraph` are required (results written before they
/// existed cannot serve as a prior); other counters default to 0 when absent.
inline SolutionResult solution_result_from_json(const Json& j) {
  constexpr const char* what = "verification result";
  GENPRM_CHECK_ARG(j.is_object(), "{}: expected a JSON object", what);
  SolutionResult r;
  r.id = detail::json_field<std::string>(j, "id", what);
  r.problem = detail::json_field<std::string>(j, "problem", what);
  r.value = detail::json_field<std::vector<double>>(j, "value", what);
  r.first_wrong_step = detail::json_field_or<int>(j, "first_wrong_step", -1);
  r.threshold = detail::json_field_or<double>(j, "threshold", 0.5);
  r.reused_steps = detail::json_field_or<int>(j, "reused_steps", 0);
  r.replayed_code_blocks = detail::json_field_or<int>(j, "replayed_code_blocks", 0);
  if (j.contains("time") && j.at("time").is_object()) {
    r.seconds = detail::json_field_or<double>(j.at("time"), "seconds", 0.0);
    r.code_seconds = detail::json_field_or<double>(j.at("time"), "code_seconds", 0.0);
    r.replay_seconds = detail::json_field_or<double>(j.at("time"), "replay_seconds", 0.0);
  }
  r.generated_tokens = detail::json_field_or<long>(j, "generated_tokens", 0);
  r.prompt_tokens = detail::json_field_or<long>(j, "prompt_tokens", 0);
  r.cached_prompt_tokens = detail::json_field_or<long>(j, "cached_prompt_tokens", 0);
  r.error = detail::json_field_or<std::string>(j, "error", "");
  for (const auto& js : detail::json_field<Json>(j, "steps", what)) {
    StepResult st;
    st.step = detail::json_field<int>(js, "step", "verification result step");
    st.paragraph = detail::json_field<std::string>(js, "paragraph", "verification result step");
    st.reward = detail::json_field<double>(js, "reward", "verification result step");
    st.reward_note = detail::json_field_or<std::string>(js, "reward_note", "");
    st.prompt_tokens = detail::json_field_or<long>(js, "prompt_tokens", 0);
    st.cached_prompt_tokens = detail::json_field_or<long>(js, "cached_prompt_tokens", 0);
    st.seconds = detail::json_field_or<double>(js, "seconds", 0.0);
    for (const auto& jp : detail::json_field<Json>(js, "paths", "verification result step")) {
      PathResult p;
      p.reward = detail::json_field<double>(jp, "reward", "verification result path");
      p.text = detail::json_field<std::string>(jp, "text", "verification result path");
      p.judgement_found = detail::json_field_or<bool>(jp, "judgement_found", false);
      p.judgement = detail::json_field_or<std::string>(jp, "judgement", "");
      p.p_yes = detail::json_field_or<double>(jp, "p_yes", 0.0);
      p.p_no = detail::json_field_or<double>(jp, "p_no", 0.0);
      p.reward_note = detail::json_field_or<std::string>(jp, "reward_note", "");
      p.rounds = detail::json_field_or<int>(jp, "rounds", 0);
      p.fallbacks = detail::json_field_or<int>(jp, "fallbacks", 0);
      p.requests = detail::json_field_or<int>(jp, "requests", 0);
      p.generated_tokens = detail::json_field_or<long>(jp, "generated_tokens", 0);
      p.prompt_tokens = detail::json_field_or<long>(jp, "prompt_tokens", 0);
      p.cached_prompt_tokens = detail::json_field_or<long>(jp, "cached_prompt_tokens", 0);
      p.finish_reason = detail::json_field_or<std::string>(jp, "finish_reason", "");
      if (jp.contains("code")) {
        for (const auto& jc : jp.at("code")) {
          CodeRun c;
          c.code = detail::json_field<std::string>(jc, "code", "verification result code run");
          c.output = detail::json_field_or<std::string>(jc, "output", "");
          c.executed = detail::json_field_or<bool>(jc, "executed", false);
          c.ok = detail::json_field_or<bool>(jc, "ok", true);
          c.timed_out = detail::json_field_or<bool>(jc, "timed_out", false);
          c.state_reset = detail::json_field_or<bool>(jc, "state_reset", false);
          c.order = detail::json_field_or<long>(jc, "order", -1);
          c.seconds = detail::json_field_or<double>(jc, "seconds", 0.0);
          p.code.push_back(std::move(c));
        }
      }
      st.paths.push_back(std::move(p));
    }
    r.steps.push_back(std::move(st));
  }
  return r;
}

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
