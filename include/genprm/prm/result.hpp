#pragma once
// Verification results, JSON-serializable. Per solution `value` is the list of step rewards as
// the reference writes it; `first_wrong_step` is the 0-based index of the first step whose
// reward is below the threshold, -1 when none (ProcessBench's label convention).
#include <string>
#include <vector>

#include "genprm/util/json.hpp"

namespace genprm::prm {

struct CodeRun {
  std::string code;    ///< the executed block ("" when none was found)
  std::string output;  ///< the in-band text put between the [Code Output] fences
  bool executed = false;  ///< false: no block found, or mode without execution
  bool ok = true;
  bool timed_out = false;
  double seconds = 0.0;
};

struct PathResult {
  double reward = 0.5;
  bool judgement_found = false;  ///< a judgement position existed (else reward is 0.5)
  std::string judgement;         ///< the sampled text inside \boxed{...}
  double p_yes = 0.0, p_no = 0.0;
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
  double reward = 0.5;    ///< mean of the paths' rewards
  std::vector<PathResult> paths;
  long prompt_tokens = 0;  ///< tokens of the step's first prompt
  long cached_prompt_tokens = 0;  ///< of those, found in the prefix cache (earlier steps' KV)
  double seconds = 0.0;    ///< from the step's first request to its last path finishing
};

struct SolutionResult {
  std::string id;
  std::vector<double> value;  ///< step rewards
  int first_wrong_step = -1;
  double threshold = 0.5;
  std::vector<StepResult> steps;
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

inline Json to_json(const CodeRun& c) {
  return Json{{"code", c.code}, {"output", c.output}, {"executed", c.executed}, {"ok", c.ok},
              {"timed_out", c.timed_out}, {"seconds", c.seconds}};
}

inline Json to_json(const PathResult& p) {
  Json code = Json::array();
  for (const auto& c : p.code) code.push_back(to_json(c));
  return Json{{"reward", p.reward}, {"judgement_found", p.judgement_found},
              {"judgement", p.judgement}, {"p_yes", p.p_yes}, {"p_no", p.p_no},
              {"text", p.text}, {"code", code}, {"rounds", p.rounds},
              {"fallbacks", p.fallbacks}, {"requests", p.requests},
              {"generated_tokens", p.generated_tokens}, {"prompt_tokens", p.prompt_tokens},
              {"cached_prompt_tokens", p.cached_prompt_tokens},
              {"finish_reason", p.finish_reason}};
}

inline Json to_json(const StepResult& s) {
  Json paths = Json::array();
  for (const auto& p : s.paths) paths.push_back(to_json(p));
  return Json{{"step", s.step}, {"reward", s.reward}, {"paths", paths},
              {"prompt_tokens", s.prompt_tokens}, {"cached_prompt_tokens", s.cached_prompt_tokens},
              {"seconds", s.seconds}};
}

inline Json to_json(const SolutionResult& r) {
  Json steps = Json::array();
  for (const auto& s : r.steps) steps.push_back(to_json(s));
  return Json{{"id", r.id}, {"value", r.value}, {"first_wrong_step", r.first_wrong_step},
              {"threshold", r.threshold}, {"steps", steps},
              {"time", Json{{"seconds", r.seconds}, {"code_seconds", r.code_seconds}}},
              {"generated_tokens", r.generated_tokens}, {"prompt_tokens", r.prompt_tokens},
              {"cached_prompt_tokens", r.cached_prompt_tokens}, {"error", r.error}};
}

}  // namespace genprm::prm
