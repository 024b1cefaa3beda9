#pragma once
// Requests and results of text generation: the contract between the engine and every layer
// above it (prm, rpe, search). Torch-free, so test doubles of the Generator concept
// (gen/generator.hpp) need no libtorch.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "genprm/util/fields.hpp"

namespace genprm {

/// How to sample and when to stop. Defaults are plain multinomial sampling at temperature 1.
struct SamplingParams {
  float temperature = 1.0f;         ///< 0 means greedy
  int top_k = 0;                    ///< 0 or negative: disabled
  float top_p = 1.0f;               ///< 1: disabled
  float min_p = 0.0f;               ///< 0: disabled
  float repetition_penalty = 1.0f;  ///< 1: disabled (HF/vLLM semantics over prompt + output)
  int max_tokens = 16;              ///< new tokens at most
  std::vector<std::string> stop;    ///< stop strings, matched on the decoded output text
  std::vector<int32_t> stop_token_ids;
  bool include_stop_str_in_output = false;
  bool ignore_eos = false;
  /// Draws come from (seed, sample index, position) only, never from what else is batched; the
  /// logits can still differ by float rounding between batch layouts (a token on a sampling
  /// boundary may flip), so tokens repeat exactly for the same inputs and layout (tests/python/
  /// test_engine_determinism.py).
  std::optional<uint64_t> seed;
  /// Sample i of the request draws as sample first_sample + i: with the same seed, a request of
  /// n samples starting at m draws what samples m..m+n-1 of one larger request draw (RPE's
  /// adaptive rounds take the fixed K's rollouts in pieces this way).
  int first_sample = 0;
  int logprobs = -1;             ///< -1: none; 0: sampled token only; k > 0: also top-k alternatives
  /// false: log-probabilities of the raw model distribution (log_softmax of the logits, vLLM V1's
  /// default); true: of the processed distribution actually sampled from (after repetition
  /// penalty, temperature, top-k/top-p/min-p; vLLM V0's behaviour). Applies to all logprobs.
  bool processed_logprobs = false;
  /// Token ids whose log-probabilities are recorded at every generated position (GenPRM reads
  /// p(Yes) and p(No) this way, exactly, not from a top-k list).
  std::vector<int32_t> tracked_token_ids;

  static auto fields() {
    using S = SamplingParams;
    return std::make_tuple(field("temperature", &S::temperature), field("top_k", &S::top_k),
                           field("top_p", &S::top_p), field("min_p", &S::min_p),
                           field("repetition_penalty", &S::repetition_penalty),
                           field("max_tokens", &S::max_tokens), field("stop", &S::stop),
                           field("stop_token_ids", &S::stop_token_ids),
                           field("include_stop_str_in_output", &S::include_stop_str_in_output),
                           field("ignore_eos", &S::ignore_eos), field("seed", &S::seed),
                           field("first_sample", &S::first_sample),
                           field("logprobs", &S::logprobs), field("processed_logprobs", &S::processed_logprobs),
                           field("tracked_token_ids", &S::tracked_token_ids));
  }
};

/// Log-probabilities at one generated position (see SamplingParams::processed_logprobs).
struct TokenLogprobs {
  int32_t token = -1;
  float logprob = 0.0f;                          ///< of the sampled token
  std::vector<std::pair<int32_t, float>> top;    ///< top-k alternatives, best first
  std::vector<float> tracked;                    ///< one per SamplingParams::tracked_token_ids

  static auto fields() {
    using T = TokenLogprobs;
    return std::make_tuple(field("token", &T::token), field("logprob", &T::logprob), field("top", &T::top),
                           field("tracked", &T::tracked));
  }
};

struct GenerationRequest {
  /// The prompt as token ids; when empty, `prompt_text` is tokenized by the engine
  /// (without special tokens added: chat templates already contain them).
  std::vector<int32_t> prompt_ids;
  std::string prompt_text;
  SamplingParams params;
  int n = 1;  ///< samples of this prompt; the prompt is computed once and forked
  /// Optional streaming: called with (sample index, new text) as text becomes final.
  std::function<void(int, const std::string&)> on_text;
};

struct SampleOutput {
  std::vector<int32_t> token_ids;  ///< generated tokens (the stop string's tokens included)
  std::string text;                ///< decoded output, cut at the stop string unless included
  std::string finish_reason;       ///< "stop" (stop string, stop token or EOS), "length", "abort"
  std::string stop_reason;         ///< the matched stop string or token id as text; empty else
  std::vector<TokenLogprobs> logprobs;  ///< one per generated token when requested

  static auto fields() {
    using S = SampleOutput;
    return std::make_tuple(field("token_ids", &S::token_ids), field("text", &S::text),
                           field("finish_reason", &S::finish_reason),
                           field("stop_reason", &S::stop_reason, "", kNoneIfEmpty),
                           field("logprobs", &S::logprobs, "", kNoneIfEmpty));
  }
};

struct GenerationOutput {
  uint64_t request_id = 0;
  std::vector<int32_t> prompt_ids;
  size_t cached_prompt_tokens = 0;  ///< prompt tokens found in the prefix cache at admission
  std::vector<SampleOutput> samples;  ///< n of them, in sample order
  std::string error;                  ///< non-empty when the request failed

  static auto fields() {
    using G = GenerationOutput;
    return std::make_tuple(field("request_id", &G::request_id), field("prompt_ids", &G::prompt_ids),
                           field("cached_prompt_tokens", &G::cached_prompt_tokens), field("samples", &G::samples),
                           field("error", &G::error, "", kNoneIfEmpty));
  }
};

using GenerationCallback = std::function<void(GenerationOutput)>;

}  // namespace genprm
