#pragma once
// Reward of one rationale, two read-outs (VerifierConfig::reward, config.hpp):
//
// exact (read_judgement, the default): from the next-token distribution at the judgement
// position, the generated token that starts right after the last `\boxed{` of the final
// generation. r = p(Yes) / (p(Yes) + p(No)) from the tracked log-probabilities of the `Yes` and
// `No` token ids; 0.5 when there is no such position or both probabilities are zero (as the
// reference). The sampled judgement text (between `\boxed{` and `}`) is recorded, not used.
//
// reference (read_reference_judgement): GenPRM's get_reward_score (genprm_inference.py)
// reproduced bit for bit:
//   m = re.search(r'(Yes|No)\}', generated_text, re.IGNORECASE)   # whole step text, FIRST match
//   decision = m.group(1).capitalize()                                # 'Yes' or 'No'
//   index = last occurrence of that token id in the final generation's token_ids
//   own = logprobs[index][own token]; other = logprobs[index][other token], or, when the other
//   token is not in that position's dict (vLLM's top-20 plus the sampled token), the dict's
//   smallest value; p = math.exp(float32 value); r = p_yes / (p_yes + p_no), 0.5 if that is 0/0.
// No match: 0.5. Where the reference raises (the decision never appears as its token in the final
// generation: ValueError from list.index; a decision that capitalize() does not turn into 'Yes'
// or 'No', e.g. `yeſ}` with U+017F, which the regex matches case-insensitively: get_reward_score
// returns None and the caller's sum() raises), the reward is 0.5 and Judgement::note says why.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "genprm/gen/request.hpp"

namespace genprm::prm {

struct Judgement {
  bool found = false;      ///< a judgement position exists in the final generation
  int position = -1;       ///< index into the final generation's tokens
  std::string sampled;     ///< text between `\boxed{` and the next `}` (may be empty)
  double p_yes = 0.0;      ///< exp(tracked logprob of Yes) at the position
  double p_no = 0.0;
  double reward = 0.5;
  std::string note;        ///< reference read-out: why the reference would have raised ("" else)
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

/// The first match of the reference's `(Yes|No)\}` under re.IGNORECASE in `text`: the matched
/// word as written (without the `}`), nullopt when none. IGNORECASE folds ASCII case, and `s`
/// also matches U+017F LATIN SMALL LETTER LONG S (its only non-ASCII case variant among
/// y, e, s, n, o; checked against CPython's re in tests/python/test_reference_texts.py).
inline std::optional<std::string> first_decision_match(std::string_view text) {
  const auto letter = [&](size_t i, char lower) -> size_t {  // bytes matched at i, 0 if none
    if (i >= text.size()) return 0;
    const char c = text[i];
    if (c == lower || c == lower - ('a' - 'A')) return 1;
    if (lower == 's' && text.compare(i, 2, "\xC5\xBF") == 0) return 2;
    return 0;
  };
  const auto word_at = [&](size_t i, std::string_view word) -> size_t {  // bytes of word + '}'
    size_t at = i;
    for (char lower : word) {
      const size_t n = letter(at, lower);
      if (n == 0) return 0;
      at += n;
    }
    return at < text.size() && text[at] == '}' ? at - i : 0;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    for (std::string_view word : {std::string_view("yes"), std::string_view("no")}) {
      if (const size_t n = word_at(i, word)) return std::string(text.substr(i, n));
    }
  }
  return std::nullopt;
}

/// Python's str.capitalize() of a matched decision word (ASCII letters and U+017F, which
/// lower() leaves as it is).
inline std::string capitalize_decision(const std::string& word) {
  std::string s = word;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) s[i] = static_cast<char>(i == 0 ? std::toupper(c) : std::tolower(c));
  }
  return s;
}

/// The reference's read-out (file comment). `text` is the whole verification text of the path
/// (the reference's generated_text: the assistant-side text from the step's opening through the
/// final generation), `gen` the final generation with top-k log-probabilities (the reference's
/// logprobs=20; its vLLM V0 reports the processed distribution in float32), `yes_id` / `no_id`
/// the reference's tokenizer.encode('Yes')[-1] / ('No')[-1].
inline Judgement read_reference_judgement(const std::string& text, const SampleOutput& gen,
                                          int32_t yes_id, int32_t no_id) {
  Judgement j;
  const std::optional<std::string> word = first_decision_match(text);
  if (!word) return j;  // the reference: "No boxed{Yes/No} found in the output", 0.5
  j.sampled = *word;
  const std::string decision = capitalize_decision(*word);
  if (decision != "Yes" && decision != "No") {
    j.note = fmt::format("the first (Yes|No)}} match '{}}}' capitalizes to '{}', neither 'Yes' nor 'No': "
                         "the reference's get_reward_score returns None and its Maj@N sum raises "
                         "TypeError; reward 0.5", *word, decision);
    return j;
  }
  const bool yes = decision == "Yes";
  const int32_t own = yes ? yes_id : no_id;
  const int32_t other = yes ? no_id : yes_id;
  const auto& ids = gen.token_ids;
  const auto last = std::find(ids.rbegin(), ids.rend(), own);
  if (last == ids.rend()) {
    j.note = fmt::format("the first (Yes|No)}} match is '{}}}' but token {} ('{}') never occurs in the "
                         "final generation: the reference's tokens.index raises ValueError; reward 0.5",
                         *word, own, decision);
    return j;
  }
  const size_t index = static_cast<size_t>(ids.rend() - last) - 1;
  if (index >= gen.logprobs.size()) {
    j.note = fmt::format("no log-probabilities at position {} of the final generation: the "
                         "reference's logprobs[{}] raises IndexError; reward 0.5", index, index);
    return j;
  }
  // vLLM's logprobs dict at the position: the top-k entries and the sampled token (`own`).
  const TokenLogprobs& at = gen.logprobs[index];
  const auto lookup = [&](int32_t id) -> std::optional<float> {
    if (at.token == id) return at.logprob;
    for (const auto& [tid, lp] : at.top)
      if (tid == id) return lp;
    return std::nullopt;
  };
  float smallest = at.logprob;
  for (const auto& entry : at.top) smallest = std::min(smallest, entry.second);
  const float own_lp = lookup(own).value_or(at.logprob);  // at.token == own: always found
  const float other_lp = lookup(other).value_or(smallest);
  const double p_own = std::exp(static_cast<double>(own_lp));  // math.exp of a float32 value
  const double p_other = std::exp(static_cast<double>(other_lp));
  j.found = true;
  j.position = static_cast<int>(index);
  j.p_yes = yes ? p_own : p_other;
  j.p_no = yes ? p_other : p_own;
  const double denominator = j.p_yes + j.p_no;
  j.reward = denominator == 0.0 ? 0.5 : j.p_yes / denominator;
  return j;
}

}  // namespace genprm::prm
