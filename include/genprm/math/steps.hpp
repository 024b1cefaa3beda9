#pragma once
// Solution step splitting: the one splitter of the project (rpe/steps.hpp, search/refine.hpp and
// the Python package through _core.math.split_steps use it), with the reference's delimiter rules:
//
//  - StepRule::StepHeaders (RPE data generation): the policy answers with the assistant prefix
//    `Step 1: ` forced, and its solution is cut before every `\nStep `. Byte-preserving: step 1 is
//    the text before the first `\nStep `, step k > 1 is `Step ...` up to the next `\nStep ` (the
//    `\n` before a header is the separator), so
//      join_step_headers(split_step_headers(s), t) == s up to the end of step t, byte for byte,
//      join_step_headers(split_step_headers(s)) == s.
//    Text between steps (a blank line: `...\n\nStep 2`) stays at the end of the earlier step.
//    Never empty: a text without the delimiter is one step (possibly empty).
//  - StepRule::Paragraphs (critic refinement, ProcessBench-style paragraph input): cut at "\n\n"
//    (the separator is removed), blank pieces dropped; pieces are not trimmed. May be empty.
//  - StepRule::Delimiters (step-level beam search, whose steps end at a step delimiter, default
//    "\n\n" and "\nStep " = the next `Step k:`): cut at each delimiter in turn; the part of a
//    delimiter after its leading newlines (`Step ` of "\nStep ") starts the next step unless it is
//    blank; every step trimmed, blank steps dropped; a solution without text is one empty step.
//
// Blank and trimmed mean Python's str.isspace()/str.strip() whitespace (ASCII \t\n\v\f\r, \x1c-\x1f,
// space, and U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000 in
// UTF-8), so the Python wrappers return what their pure-Python versions did.
//
// Lives in math/ (torch-free, util only) because it reads solution text like extract.hpp does and
// math is the last layer above prm, rpe, search and eval: each of them may include it.
#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "genprm/util/error.hpp"

namespace genprm::math {

/// RPE: a step starts after this (the separator `\n` followed by the `Step ` header).
inline constexpr std::string_view kStepHeader = "\nStep ";
/// RPE: what join_step_headers puts between two steps (the leading `\n` of kStepHeader).
inline constexpr std::string_view kStepHeaderSeparator = "\n";
/// Refinement / ProcessBench: paragraphs are separated by a blank line.
inline constexpr std::string_view kParagraphBreak = "\n\n";
/// Beam search: a step ends at a blank line or at the next `Step k:`.
inline const std::vector<std::string>& default_step_delimiters() {
  static const std::vector<std::string> d = {std::string(kParagraphBreak), std::string(kStepHeader)};
  return d;
}

enum class StepRule { StepHeaders, Paragraphs, Delimiters };

inline const char* step_rule_name(StepRule r) {
  switch (r) {
    case StepRule::StepHeaders: return "step_headers";
    case StepRule::Paragraphs: return "paragraphs";
    default: return "delimiters";
  }
}

inline StepRule parse_step_rule(std::string_view name) {
  for (StepRule r : {StepRule::StepHeaders, StepRule::Paragraphs, StepRule::Delimiters})
    if (name == step_rule_name(r)) return r;
  throw ValueError(fmt::format("step rule must be step_headers, paragraphs or delimiters, got '{}'", name));
}

namespace steps_detail {

/// Bytes of the Python whitespace character starting at s[i] (0: none there).
inline size_t space_at(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u; };
  const unsigned c = b(0);
  if ((c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20)) return 1;
  if (c == 0xc2) return b(1) == 0x85 || b(1) == 0xa0 ? 2 : 0;
  if (c == 0xe1) return b(1) == 0x9a && b(2) == 0x80 ? 3 : 0;
  if (c == 0xe2 && b(1) == 0x80)
    return b(2) >= 0x80 && (b(2) <= 0x8a || b(2) == 0xa8 || b(2) == 0xa9 || b(2) == 0xaf) ? 3 : 0;
  if (c == 0xe2) return b(1) == 0x81 && b(2) == 0x9f ? 3 : 0;
  if (c == 0xe3) return b(1) == 0x80 && b(2) == 0x80 ? 3 : 0;
  return 0;
}

/// Bytes of the Python whitespace character ending at s[end - 1] (0: none there).
inline size_t space_before(std::string_view s, size_t end) {
  for (size_t n = 1; n <= 3 && n <= end; ++n)
    if (space_at(s, end - n) == n) return n;
  return 0;
}

/// Python's str.split(delim), each piece after the first starting with the last `kept` bytes
/// of the delimiter (they belong to the next piece); appended to `out`.
inline void cut(std::string_view text, std::string_view delim, size_t kept, std::vector<std::string>& out) {
  size_t start = 0;
  for (size_t k = text.find(delim); k != std::string_view::npos; k = text.find(delim, k + delim.size())) {
    out.emplace_back(text.substr(start, k - start));
    start = k + delim.size() - kept;
  }
  out.emplace_back(text.substr(start));
}

}  // namespace steps_detail

/// Python's s.strip(): `s` without leading and trailing whitespace.
inline std::string_view strip_space(std::string_view s) {
  for (size_t n; (n = steps_detail::space_at(s, 0)) > 0;) s.remove_prefix(n);
  for (size_t n; (n = steps_detail::space_before(s, s.size())) > 0;) s.remove_suffix(n);
  return s;
}

/// Python's not s.strip(): empty or whitespace only.
inline bool is_blank(std::string_view s) { return strip_space(s).empty(); }

/// StepRule::StepHeaders: cut before every `\nStep ` (see the header comment).
inline std::vector<std::string> split_step_headers(std::string_view solution) {
  std::vector<std::string> steps;
  steps_detail::cut(solution, kStepHeader, kStepHeader.size() - kStepHeaderSeparator.size(), steps);
  return steps;
}

/// The first `count` steps joined by `\n` (all of them when count < 0). Inverse of split_step_headers.
inline std::string join_step_headers(const std::vector<std::string>& steps, long count = -1) {
  GENPRM_CHECK_ARG(count <= static_cast<long>(steps.size()), "join_steps: count {} > {} steps", count, steps.size());
  const size_t n = count < 0 ? steps.size() : static_cast<size_t>(count);
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += kStepHeaderSeparator;
    out += steps[i];
  }
  return out;
}

/// StepRule::Paragraphs: cut at `sep` (removed), blank pieces dropped.
inline std::vector<std::string> split_paragraphs(std::string_view text, std::string_view sep = kParagraphBreak) {
  GENPRM_CHECK_ARG(!sep.empty(), "split_paragraphs: the separator is empty");
  std::vector<std::string> pieces, out;
  steps_detail::cut(text, sep, 0, pieces);
  for (auto& p : pieces)
    if (!is_blank(p)) out.push_back(std::move(p));
  return out;
}

/// StepRule::Delimiters: the steps of a whole solution as beam search delimits them (see the
/// header comment).
inline std::vector<std::string> split_at_delimiters(std::string_view text,
                                                    const std::vector<std::string>& delimiters = default_step_delimiters()) {
  std::vector<std::string> pieces = {std::string(text)}, next;
  for (const std::string& d : delimiters) {
    GENPRM_CHECK_ARG(!d.empty(), "delimiters: an empty delimiter");
    const std::string_view keep = std::string_view(d).substr(std::min(d.find_first_not_of('\n'), d.size()));
    next.clear();
    for (const auto& p : pieces) steps_detail::cut(p, d, is_blank(keep) ? 0 : keep.size(), next);
    pieces.swap(next);
  }
  std::vector<std::string> steps;
  for (const auto& p : pieces)
    if (std::string_view s = strip_space(p); !s.empty()) steps.emplace_back(s);
  if (steps.empty()) steps.emplace_back();
  return steps;
}

/// The splitter of `rule`. `delimiters`: none for the rule's default; Paragraphs takes one
/// separator, StepHeaders none (its delimiter is fixed so that its split stays byte-preserving).
inline std::vector<std::string> split_steps(std::string_view text, StepRule rule,
                                            const std::optional<std::vector<std::string>>& delimiters = std::nullopt) {
  switch (rule) {
    case StepRule::StepHeaders:
      GENPRM_CHECK_ARG(!delimiters, "split_steps: step_headers always splits on '\\nStep ' (no delimiters)");
      return split_step_headers(text);
    case StepRule::Paragraphs:
      if (!delimiters) return split_paragraphs(text);
      GENPRM_CHECK_ARG(delimiters->size() == 1, "split_steps: paragraphs takes one separator, got {}", delimiters->size());
      return split_paragraphs(text, delimiters->front());
    default:
      return delimiters ? split_at_delimiters(text, *delimiters) : split_at_delimiters(text);
  }
}

}  // namespace genprm::math
