#pragma once
// GenPRM verifier configuration. Every default is the reference's (RyanLiu112/GenPRM,
// src/prm_evaluation/genprm_inference.py and prm_evaluate.py); all of them can be changed.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "genprm/util/error.hpp"
#include "genprm/util/fields.hpp"

namespace genprm::prm {

/// Which stages run. The reference's flags: full = --analyze --verify --execute,
/// cot = --analyze, code_no_exec = --analyze --verify, direct = no flag.
enum class VerifyMode { full, cot, code_no_exec, direct };

namespace detail {
/// One spelling of an enum value; `alias` spellings parse but are not the value's name.
template <typename E>
struct Spelling {
  E value;
  const char* text;
  bool alias = false;
};

template <typename E, size_t N>
const char* name_in(const Spelling<E> (&table)[N], E value) {
  for (const auto& s : table)
    if (s.value == value && !s.alias) return s.text;
  return "?";
}

/// ValueError "{what} '{s}' is not one of a, b, c" (the names, without aliases) when unknown.
template <typename E, size_t N>
E parse_in(const Spelling<E> (&table)[N], const std::string& s, const char* what) {
  std::string names;
  for (const auto& sp : table) {
    if (s == sp.text) return sp.value;
    if (!sp.alias) names += (names.empty() ? "" : ", ") + std::string(sp.text);
  }
  throw ValueError(fmt::format("{} '{}' is not one of {}", what, s, names));
}

inline constexpr Spelling<VerifyMode> kModeSpellings[] = {
    {VerifyMode::full, "full"},
    {VerifyMode::cot, "cot"},
    {VerifyMode::code_no_exec, "code-no-exec"},
    {VerifyMode::code_no_exec, "code_no_exec", true},
    {VerifyMode::direct, "direct"},
};
}  // namespace detail

inline const char* mode_name(VerifyMode m) { return detail::name_in(detail::kModeSpellings, m); }
inline VerifyMode parse_mode(const std::string& s) { return detail::parse_in(detail::kModeSpellings, s, "mode"); }

/// How the reward of one rationale is read from its final generation (reward.hpp).
///   exact (default): r = p(Yes) / (p(Yes) + p(No)) from the tracked (exact) log-probabilities at
///     the token after the last `\boxed{` of the final generation.
///   reference: the reference's get_reward_score bit for bit: the decision from the first
///     case-insensitive `(Yes|No)\}` match in the whole step text, the log-probabilities at the
///     last occurrence of that token in the final generation, from the top-`reference_top_logprobs`
///     list (float32, processed as vLLM V0 reports them), the list's smallest value for the other
///     token when it is missing; 0.5 when nothing matches, and 0.5 with PathResult::reward_note
///     where the reference would raise.
enum class RewardMode { exact, reference };

namespace detail {
inline constexpr Spelling<RewardMode> kRewardSpellings[] = {
    {RewardMode::exact, "exact"},
    {RewardMode::reference, "reference"},
};
}  // namespace detail

inline const char* reward_mode_name(RewardMode m) { return detail::name_in(detail::kRewardSpellings, m); }
inline RewardMode parse_reward_mode(const std::string& s) {
  return detail::parse_in(detail::kRewardSpellings, s, "reward");
}

inline const char* enum_name(VerifyMode m) { return mode_name(m); }
inline VerifyMode parse_enum(const std::string& s, VerifyMode*) { return parse_mode(s); }
inline const char* enum_name(RewardMode m) { return reward_mode_name(m); }
inline RewardMode parse_enum(const std::string& s, RewardMode*) { return parse_reward_mode(s); }

inline bool mode_analyzes(VerifyMode m) { return m != VerifyMode::direct; }
inline bool mode_verifies(VerifyMode m) {
  return m == VerifyMode::full || m == VerifyMode::code_no_exec;
}
inline bool mode_executes(VerifyMode m) { return m == VerifyMode::full; }

struct VerifierConfig {
  VerifyMode mode = VerifyMode::full;
  int majority = 1;  ///< N rationales per step (Maj@N); the reward of a step is their mean
  double threshold = 0.5;  ///< a step is judged wrong when its reward < threshold

  // Prompts (byte-identical to the reference).
  std::string system_prompt =
      "You are a math teacher. Your task is to review and critique the paragraphs in solution "
      "step by step.";
  /// Used in direct mode (neither analyze nor verify), as prm_evaluate.py does.
  std::string direct_system_prompt =
      "You are a math teacher. Your task is to review and critique the paragraphs in solution "
      "directly. Output your judgement in the format of `\\boxed{Yes}` if the paragraph is "
      "correct, or `\\boxed{No}` if the paragraph is incorrect.";
  std::string analyze_template = "<analyze>\nLet's analyze the Paragraph {cur_step} step by step: ";
  std::string verify_template = "<verify>\nLet's use python code to find any potential error:\n```python\n";
  std::string output_template = "<output>\n**Judgement**: $\\boxed";
  std::string analyze_stop = "</analyze>\n";
  std::string code_stop = "\n```\n";
  std::string output_stop = "</output>\n";
  std::string code_output_open = "[Code Output]\n\n```\n";
  std::string code_output_close = "\n```\n";
  std::string no_code_message = "Code format error: No code found.";

  // Sampling (reference: TEMPERATURE 0.6, TOP_P 0.95, TOP_K 20, REPETITION_PENALTY 1.0).
  float temperature = 0.6f;
  float top_p = 0.95f;
  int top_k = 20;
  float repetition_penalty = 1.0f;
  /// The reference sets VLLM_USE_V1=0: vLLM V0 returns log-probabilities of the processed
  /// distribution (after temperature, top-k and top-p), so p(Yes)/(p(Yes)+p(No)) is read there.
  bool processed_logprobs = true;
  /// How the reward is read (RewardMode above). reference makes every stage-2 and fallback
  /// request also return the top `reference_top_logprobs` log-probabilities per token.
  RewardMode reward = RewardMode::exact;
  int reference_top_logprobs = 20;  ///< the reference's SamplingParams(logprobs=20)
  std::optional<uint64_t> seed;  ///< when set, every request gets a seed derived from it and the content verified

  // Budgets.
  int max_tokens = 2048;  ///< per stage request; stage 2 gets max_tokens - tokens(assistant text)
  /// New tokens of the analyze stage; <= 0: max_tokens (the reference). Smaller values let
  /// tests and benchmarks with random weights reach the later stages.
  int analyze_max_tokens = 0;
  int round_limit = 3;    ///< stage-2 generations per path (the reference's time_limit)
  int fallback_tokens = 20;  ///< new tokens of the output fallback
  /// The reference retries the output fallback until it ends with the output stop string (an
  /// endless loop on a model that never does); we stop after this many and read what we have.
  int max_fallbacks = 3;

  // Scheduling.
  /// false (default): a step's N paths start as N requests of the same prompt (the engine
  /// computes it once) and advance on their own from the first token; true: one request with
  /// n = N, so every path waits for the slowest analysis before its next stage.
  bool first_stage_as_one_request = false;
  int max_solutions_in_flight = 32;  ///< verify_many keeps at most this many solutions live
  /// true: step t+1 starts as soon as path 0 of step t is done (it only needs that text);
  /// false: it waits for all N paths of step t.
  bool start_next_step_early = true;
  /// false (default): the N paths of a step run concurrently, their code blocks interleaved in
  /// the solution's one namespace. true: as the reference's Maj@N loop, path k starts when path
  /// k-1 is done, so path k's code sees the variables of paths 1..k-1, and step t+1 starts when
  /// all paths of step t are done (start_next_step_early is then ignored). Solutions still run
  /// concurrently. Not with first_stage_as_one_request.
  bool sequential_paths = false;

  /// Whether step t+1 may start when path 0 of step t is done.
  bool next_step_starts_early() const { return start_next_step_early && !sequential_paths; }

  static auto fields() {
    using C = VerifierConfig;
    return std::make_tuple(
        field("mode", &C::mode, "full (analyze + code + execution), cot, code-no-exec or direct"),
        field("majority", &C::majority, "rationales per step (Maj@N); a step's reward is their mean"),
        field("threshold", &C::threshold, "a step is judged wrong when its reward is below it"),
        field("reward", &C::reward, "exact (tracked p(Yes), p(No) at the judgement) or reference (its read-out)"),
        field("reference_top_logprobs", &C::reference_top_logprobs),
        field("sequential_paths", &C::sequential_paths,
              "run a step's paths one after another over one namespace, as the reference"),
        field("system_prompt", &C::system_prompt), field("direct_system_prompt", &C::direct_system_prompt),
        field("analyze_template", &C::analyze_template), field("verify_template", &C::verify_template),
        field("output_template", &C::output_template), field("analyze_stop", &C::analyze_stop),
        field("code_stop", &C::code_stop), field("output_stop", &C::output_stop),
        field("code_output_open", &C::code_output_open), field("code_output_close", &C::code_output_close),
        field("no_code_message", &C::no_code_message), field("temperature", &C::temperature),
        field("top_p", &C::top_p), field("top_k", &C::top_k), field("repetition_penalty", &C::repetition_penalty),
        field("processed_logprobs", &C::processed_logprobs,
              "read p(Yes), p(No) from the processed distribution (vLLM V0, as the reference ran)"),
        field("seed", &C::seed, "seeds every request from it and the content verified"),
        field("max_tokens", &C::max_tokens, "new tokens per stage request"),
        field("analyze_max_tokens", &C::analyze_max_tokens, "new tokens of the analyze stage (0: max_tokens)"),
        field("round_limit", &C::round_limit, "code rounds per path"),
        field("fallback_tokens", &C::fallback_tokens), field("max_fallbacks", &C::max_fallbacks),
        field("first_stage_as_one_request", &C::first_stage_as_one_request),
        field("max_solutions_in_flight", &C::max_solutions_in_flight),
        field("start_next_step_early", &C::start_next_step_early));
  }

  int analyze_budget() const { return analyze_max_tokens > 0 ? analyze_max_tokens : max_tokens; }

  std::string analyze_start(int step) const {
    std::string s = analyze_template;
    const std::string key = "{cur_step}";
    for (size_t p = s.find(key); p != std::string::npos; p = s.find(key, p)) {
      s.replace(p, key.size(), std::to_string(step));
    }
    return s;
  }

  void validate() const {
    GENPRM_CHECK_ARG(majority >= 1, "majority must be >= 1, got {}", majority);
    GENPRM_CHECK_ARG(max_tokens >= 1, "max_tokens must be >= 1, got {}", max_tokens);
    GENPRM_CHECK_ARG(round_limit >= 0, "round_limit must be >= 0, got {}", round_limit);
    GENPRM_CHECK_ARG(fallback_tokens >= 1, "fallback_tokens must be >= 1, got {}", fallback_tokens);
    GENPRM_CHECK_ARG(max_fallbacks >= 1, "max_fallbacks must be >= 1, got {}", max_fallbacks);
    GENPRM_CHECK_ARG(max_solutions_in_flight >= 1, "max_solutions_in_flight must be >= 1, got {}",
                     max_solutions_in_flight);
    GENPRM_CHECK_ARG(temperature >= 0.0f, "temperature must be >= 0, got {}", temperature);
    GENPRM_CHECK_ARG(top_p > 0.0f && top_p <= 1.0f, "top_p must be in (0, 1], got {}", top_p);
    GENPRM_CHECK_ARG(reference_top_logprobs >= 1, "reference_top_logprobs must be >= 1, got {}",
                     reference_top_logprobs);
    GENPRM_CHECK_ARG(!(sequential_paths && first_stage_as_one_request),
                     "sequential_paths runs the paths of a step one after another; it cannot be "
                     "combined with first_stage_as_one_request (one request for all N analyses)");
  }
};

}  // namespace genprm::prm
