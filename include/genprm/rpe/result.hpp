#pragma once
// RPE labelling and sampling results, JSON-serialisable (to_json). Infinite progress ratios
// (the x/0 case of labels.hpp) are written as null.
#include <cmath>
#include <string>
#include <vector>

#include "genprm/rpe/labels.hpp"
#include "genprm/util/json.hpp"

namespace genprm::rpe {

/// One step of a labelled solution.
struct StepResult {
  int step = 0;         ///< 1-based
  int k = 0;            ///< rollouts sampled from the prefix through this step (0: last step, or not run)
  int correct = 0;      ///< rollouts whose final answer equals the ground truth (last step: its own answer, 0/1)
  bool rollout = true;  ///< false for the last step (graded from its own answer)
  bool estimated = true;   ///< false when the step's rollouts were cancelled or not used (after a zero)
  double mc_raw = 0.0;     ///< correct / k before zero propagation (0 when not estimated)
  StepLabels labels;       ///< mc, progress, rpe / hard / difference labels
  long prompt_tokens = 0;         ///< tokens of the step's prompt (chat prompt + prefix)
  long cached_prompt_tokens = 0;  ///< of those, found in the prefix cache at admission
  long generated_tokens = 0;      ///< all K rollouts together
  std::vector<std::string> rollouts;  ///< the completions' texts (LabelerConfig::keep_rollouts)
};

struct LabelResult {
  std::string id;
  double mc_first = 0.0;   ///< MC(s_1): correct_first / k_first
  int k_first = 0;         ///< rollouts from the prompt alone (first batch + top-ups)
  int correct_first = 0;
  int first_requests = 0;  ///< requests of the MC(s_1) estimate (1 + top-ups)
  int k = 0;               ///< K of the step estimates (dynamic rule or fixed)
  double epsilon = 0.8;
  std::vector<StepResult> steps;
  std::vector<int> labels;       ///< RPE labels per step (0/1)
  std::vector<int> hard_labels;  ///< MC > 0 per step
  std::vector<double> mc;        ///< MC(s_t, a_t) after propagation
  int requests = 0;
  long prompt_tokens = 0;         ///< submitted, summed over requests (a request's prompt counted once for its n)
  long cached_prompt_tokens = 0;  ///< of those, found in the prefix cache
  long generated_tokens = 0;
  double seconds = 0.0;
  std::vector<std::string> first_rollouts;  ///< MC(s_1) completions (LabelerConfig::keep_rollouts)
  std::string error;  ///< non-empty when a request failed (labels are then empty)
};

/// One solution sampled with step forcing.
struct SampledSolution {
  std::string text;                ///< the whole assistant text (step prefix + completion)
  std::vector<std::string> steps;  ///< split_steps(text)
  std::string answer;              ///< extracted final answer ("" when none)
  bool has_answer = false;
  bool correct = false;            ///< answer equals the ground truth (false when none was given)
  std::string finish_reason;
  long generated_tokens = 0;
};

struct SampleResult {
  std::string id;
  std::string problem;
  std::string ground_truth;
  std::vector<SampledSolution> solutions;
  long prompt_tokens = 0;
  long cached_prompt_tokens = 0;
  std::string error;
};

inline Json finite_or_null(double x) { return std::isfinite(x) ? Json(x) : Json(nullptr); }

inline Json to_json(const StepResult& s) {
  const StepLabels& l = s.labels;
  Json j{{"step", s.step}, {"k", s.k}, {"correct", s.correct}, {"rollout", s.rollout},
         {"estimated", s.estimated}, {"mc_raw", s.mc_raw}, {"mc", l.mc}, {"mc_prev", l.mc_prev},
         {"propagated", l.propagated}, {"progress", finite_or_null(l.progress)}, {"label", l.label ? 1 : 0},
         {"hard_label", l.hard_label ? 1 : 0}, {"difference", l.difference},
         {"difference_label", l.difference_label ? 1 : 0}, {"prompt_tokens", s.prompt_tokens},
         {"cached_prompt_tokens", s.cached_prompt_tokens}, {"generated_tokens", s.generated_tokens}};
  if (!s.rollouts.empty()) j["rollouts"] = s.rollouts;
  return j;
}

inline Json to_json(const LabelResult& r) {
  Json steps = Json::array();
  for (const auto& s : r.steps) steps.push_back(to_json(s));
  Json j{{"id", r.id}, {"mc_first", r.mc_first}, {"k_first", r.k_first}, {"correct_first", r.correct_first},
         {"first_requests", r.first_requests}, {"k", r.k}, {"epsilon", r.epsilon}, {"steps", steps},
         {"labels", r.labels}, {"hard_labels", r.hard_labels}, {"mc", r.mc}, {"requests", r.requests},
         {"prompt_tokens", r.prompt_tokens}, {"cached_prompt_tokens", r.cached_prompt_tokens},
         {"generated_tokens", r.generated_tokens}, {"seconds", r.seconds}, {"error", r.error}};
  if (!r.first_rollouts.empty()) j["first_rollouts"] = r.first_rollouts;
  return j;
}

inline Json to_json(const SampledSolution& s) {
  return Json{{"text", s.text}, {"steps", s.steps}, {"answer", s.has_answer ? Json(s.answer) : Json(nullptr)},
              {"correct", s.correct}, {"finish_reason", s.finish_reason}, {"generated_tokens", s.generated_tokens}};
}

inline Json to_json(const SampleResult& r) {
  Json sols = Json::array();
  for (const auto& s : r.solutions) sols.push_back(to_json(s));
  return Json{{"id", r.id}, {"problem", r.problem}, {"answer", r.ground_truth}, {"solutions", sols},
              {"prompt_tokens", r.prompt_tokens}, {"cached_prompt_tokens", r.cached_prompt_tokens},
              {"error", r.error}};
}

}  // namespace genprm::rpe
