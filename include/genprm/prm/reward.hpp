#pragma once
// Reward of one rationale, read from the next-token distribution at the judgement position:
// the generated token that starts right after the last `\boxed{` of the final generation.
// r = p(Yes) / (p(Yes) + p(No)) from the tracked log-probabilities of the `Yes` and `No` token
// ids; 0.5 when there is no such position or both probabilities are zero (as the reference).
// The sampled judgement text (between `\boxed{` and `}`) is recorded, not used for the reward.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "genprm/gen/request.hpp"

namespace genprm::prm {

struct Judgement {
  bool found = false;      ///< a judgement position exists in the final generation
  int position = -1;       ///< index into the final generation's tokens
  std::string sampled;     ///< text between `\boxed{` and the next `}` (may be empty)
  double p_yes = 0.0;      ///< exp(tracked logprob of Yes) at the position
  double p_no = 0.0;
  double reward = 0.5;
};

/// r = p_yes / (p_yes + p_no) computed from log-probabilities; 0.5 when both are zero.
inline double yes_no_reward(double logp_yes, double logp_no) {
  if (std::isinf(logp_yes) && logp_yes < 0 && std::isinf(logp_no) && logp_no < 0) return 0.5;
  // Stable form of e^y / (e^y + e^n) = 1 / (1 + e^(n - y)).
  double d = logp_no - logp_yes;
  if (std::isnan(d)) return 0.5;
  return 1.0 / (1.0 + std::exp(d));
}

/// Finds the judgement in the final generation. `context` is the assistant-side text that
/// preceded it (the fallback prompt ends with `$\boxed`, so the `{` may be generated).
/// `decode` turns token ids into text (the tokenizer's decode). `yes_slot`/`no_slot` index
/// TokenLogprobs::tracked.
template <typename Decode>
Judgement read_judgement(const std::string& context, const SampleOutput& gen, Decode&& decode,
                         size_t yes_slot = 0, size_t no_slot = 1) {
  Judgement j;
  static const std::string key = "\\boxed{";
  const std::string full = context + gen.text;
  const size_t at = full.rfind(key);
  if (at == std::string::npos) return j;
  const size_t start = at + key.size();
  size_t close = full.find('}', start);
  j.sampled = full.substr(start, close == std::string::npos ? std::string::npos : close - start);
  if (start < context.size()) return j;  // the judgement token is part of the prompt
  const size_t offset = start - context.size();  // in generated text
  const auto& ids = gen.token_ids;
  // Smallest prefix whose decoded text reaches `offset`; decoded prefix length is monotone for
  // byte-level BPE (up to replacement characters of split UTF-8, checked exactly below).
  size_t lo = 0, hi = ids.size();
  auto prefix_len = [&](size_t k) {
    return decode(std::vector<int32_t>(ids.begin(), ids.begin() + static_cast<long>(k))).size();
  };
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (prefix_len(mid) < offset) lo = mid + 1; else hi = mid;
  }
  if (lo >= ids.size()) return j;
  std::string prefix = decode(std::vector<int32_t>(ids.begin(), ids.begin() + static_cast<long>(lo)));
  if (prefix.size() != offset || gen.text.compare(0, offset, prefix) != 0) return j;  // mid-token
  if (lo >= gen.logprobs.size()) return j;
  const auto& tracked = gen.logprobs[lo].tracked;
  if (tracked.size() <= std::max(yes_slot, no_slot)) return j;
  j.found = true;
  j.position = static_cast<int>(lo);
  j.p_yes = std::exp(static_cast<double>(tracked[yes_slot]));
  j.p_no = std::exp(static_cast<double>(tracked[no_slot]));
  j.reward = yes_no_reward(tracked[yes_slot], tracked[no_slot]);
  return j;
}

}  // namespace genprm::prm
