#pragma once
// RPE labelling and sampling results; to_json (util/fields.hpp) writes infinite progress ratios
// (the x/0 case of labels.hpp) as null.
#include <optional>
#include <string>
#include <vector>

#include "genprm/rpe/labels.hpp"
#include "genprm/util/fields.hpp"

namespace genprm::rpe {

/// One step of a labelled solution.
struct StepResult {
  int step = 0;         ///< 1-based
  int k = 0;            ///< rollouts used from the prefix through this step (0: last step, or not run)
  int correct = 0;      ///< rollouts whose final answer equals the ground truth (last step: its own answer, 0/1)
  bool rollout = true;  ///< false for the last step (graded from its own answer)
  bool estimated = true;   ///< false when the step's rollouts were cancelled or not used (after a zero)
  double mc_raw = 0.0;     ///< correct / k before zero propagation (0 when not estimated)
  int rounds = 0;          ///< requests the estimate took (1 with a fixed K; adaptive: its rounds)
  bool early = false;      ///< adaptive: stopped before K, its label decided by the sequential test
  StepLabels labels;       ///< mc, progress, rpe / hard / difference labels
  long prompt_tokens = 0;         ///< tokens of the step's prompt (chat prompt + prefix), summed over its requests
  long cached_prompt_tokens = 0;  ///< of those, found in the prefix cache at admission
  long generated_tokens = 0;      ///< all K rollouts together
  std::vector<std::string> rollouts;  ///< the completions' texts (LabelerConfig::keep_rollouts)

  static auto fields() {
    using S = StepResult;
    return std::make_tuple(field("step", &S::step), field("k", &S::k), field("correct", &S::correct),
                           field("rollout", &S::rollout), field("estimated", &S::estimated),
                           field("mc_raw", &S::mc_raw), field("rounds", &S::rounds), field("early", &S::early),
                           field("labels", &S::labels, "", kFlatten),
                           field("prompt_tokens", &S::prompt_tokens),
                           field("cached_prompt_tokens", &S::cached_prompt_tokens),
                           field("generated_tokens", &S::generated_tokens),
                           field("rollouts", &S::rollouts, "", kOmitEmpty));
  }
};

struct LabelResult {
  std::string id;
  double mc_first = 0.0;   ///< MC(s_1): correct_first / k_first
  int k_first = 0;         ///< rollouts from the prompt alone (first batch + top-ups)
  int correct_first = 0;
  int first_requests = 0;  ///< requests of the MC(s_1) estimate (1 + top-ups; adaptive: its rounds)
  bool first_early = false;  ///< adaptive: MC(s_1) stopped before the fixed scheme would, its K decided
  /// share_first: the id of the row whose MC(s_1) this row took (empty: estimated here; its
  /// requests and rollouts are counted in that row)
  std::string first_shared;
  bool first_given = false;  ///< MC(s_1) came with the input (LabelInput::mc_first): no rollouts drawn
  int k = 0;               ///< K of the step estimates (dynamic rule or fixed; adaptive: the most a step takes)
  double epsilon = LabelConfig{}.epsilon;
  std::vector<StepResult> steps;
  std::vector<int> labels;       ///< RPE labels per step (0/1)
  std::vector<int> hard_labels;  ///< MC > 0 per step
  std::vector<double> mc;        ///< MC(s_t, a_t) after propagation
  int requests = 0;
  long rollouts = 0;  ///< rollouts that came back (MC(s_1) and steps; cancelled ones not counted)
  long prompt_tokens = 0;         ///< submitted, summed over requests (a request's prompt counted once for its n)
  long cached_prompt_tokens = 0;  ///< of those, found in the prefix cache
  long generated_tokens = 0;
  double seconds = 0.0;
  std::vector<std::string> first_rollouts;  ///< MC(s_1) completions (LabelerConfig::keep_rollouts)
  std::string error;  ///< non-empty when a request failed (labels are then empty)

  static auto fields() {
    using L = LabelResult;
    return std::make_tuple(field("id", &L::id), field("mc_first", &L::mc_first), field("k_first", &L::k_first),
                           field("correct_first", &L::correct_first), field("first_requests", &L::first_requests),
                           field("first_early", &L::first_early), field("first_shared", &L::first_shared),
                           field("first_given", &L::first_given),
                           field("k", &L::k), field("epsilon", &L::epsilon), field("steps", &L::steps),
                           field("labels", &L::labels), field("hard_labels", &L::hard_labels), field("mc", &L::mc),
                           field("requests", &L::requests), field("rollouts", &L::rollouts),
                           field("prompt_tokens", &L::prompt_tokens),
                           field("cached_prompt_tokens", &L::cached_prompt_tokens),
                           field("generated_tokens", &L::generated_tokens), field("seconds", &L::seconds),
                           field("first_rollouts", &L::first_rollouts, "", kOmitEmpty), field("error", &L::error));
  }
};

/// One solution sampled with step forcing.
struct SampledSolution {
  std::string text;                ///< the whole assistant text (step prefix + completion)
  std::vector<std::string> steps;  ///< split_steps(text)
  std::optional<std::string> answer;  ///< the extracted final answer
  bool correct = false;            ///< answer equals the ground truth (false when none was given)
  std::string finish_reason;
  long generated_tokens = 0;

  static auto fields() {
    using S = SampledSolution;
    return std::make_tuple(field("text", &S::text), field("steps", &S::steps), field("answer", &S::answer),
                           field("correct", &S::correct), field("finish_reason", &S::finish_reason),
                           field("generated_tokens", &S::generated_tokens));
  }
};

struct SampleResult {
  std::string id;
  std::string problem;
  std::string ground_truth;
  std::vector<SampledSolution> solutions;
  /// Share of the solutions that are right (with a ground truth): a row's LabelInput::mc_first,
  /// as the reference's base score
  std::optional<double> pass_rate;
  long prompt_tokens = 0;
  long cached_prompt_tokens = 0;
  std::string error;

  static auto fields() {
    using S = SampleResult;
    return std::make_tuple(field("id", &S::id), field("problem", &S::problem),
                           field("answer", &S::ground_truth), field("solutions", &S::solutions),
                           field("pass_rate", &S::pass_rate),
                           field("prompt_tokens", &S::prompt_tokens),
                           field("cached_prompt_tokens", &S::cached_prompt_tokens), field("error", &S::error));
  }
};

using genprm::to_json;

}  // namespace genprm::rpe
