#pragma once
// Final-answer extraction from a generated solution. Rules, first that fires wins:
//   "boxed" / "fbox": the last `\boxed{...}` / `\fbox{...}` with balanced (unescaped) braces,
//       also `\boxed 5`; a truncated (unclosed) or empty box falls back to the one before it.
//   "final answer" / "the answer is" / "####": whichever of these phrases comes last in the
//       text ("Final Answer: The final answer is $x$", "the answer is x", GSM8K's "#### 42");
//       the answer is the `$...$` / `\(...\)` that follows, else the rest of the sentence.
//   "last number": the last number in the text (integer, decimal, a/b, thousands commas).
// Linear in the input length (the box search never rescans past a failed box).
#include <cctype>
#include <optional>
#include <string>
#include <string_view>

#include "genprm/math/normalize.hpp"

namespace genprm::math {

struct Extraction {
  std::string answer;
  std::string rule;  // "boxed", "fbox", "final answer", "the answer is", "####", "last number"
};

namespace detail {

inline std::size_t rfind_ci(std::string_view text, std::string_view needle) {
  if (needle.size() > text.size()) return std::string_view::npos;
  const char first = needle[0];
  for (std::size_t i = text.size() - needle.size() + 1; i-- > 0;) {
    char c = text[i];
    if (c != first && (c | 0x20) != first) continue;  // needles are lower case
    bool ok = true;
    for (std::size_t k = 0; k < needle.size() && ok; ++k)
      ok = std::tolower(static_cast<unsigned char>(text[i + k])) == needle[k];
    if (ok) return i;
  }
  return std::string_view::npos;
}

/// The last box whose braces close; `limit` bounds the brace scan (never past a failed box).
inline std::optional<Extraction> last_box(std::string_view text) {
  std::size_t limit = text.size();
  std::size_t search_end = text.size();
  constexpr std::size_t npos = std::string_view::npos;
  // Each needle's last position before search_end, searched again only once consumed, so the
  // whole search reads the text at most once per needle.
  std::size_t pb = text.rfind("\\boxed"), pf = text.rfind("\\fbox");
  for (int attempts = 0; attempts < 64; ++attempts) {
    if (pb != npos && pb >= search_end) pb = search_end == 0 ? npos : text.substr(0, search_end).rfind("\\boxed");
    if (pf != npos && pf >= search_end) pf = search_end == 0 ? npos : text.substr(0, search_end).rfind("\\fbox");
    std::size_t p;
    std::string rule;
    if (pb == std::string_view::npos && pf == std::string_view::npos) return std::nullopt;
    if (pf == std::string_view::npos || (pb != std::string_view::npos && pb > pf)) {
      p = pb;
      rule = "boxed";
    } else {
      p = pf;
      rule = "fbox";
    }
    search_end = p;
    std::size_t i = p + (rule == "boxed" ? 6 : 5);
    if (i < text.size() && is_alpha(text[i])) continue;  // \boxedsomething
    std::size_t j = i;
    while (j < text.size() && text[j] == ' ') ++j;
    if (j < text.size() && text[j] == '{') {
      std::string_view window = text.substr(0, limit);
      std::size_t close = j < window.size() ? match_brace(window, j) : std::string_view::npos;
      if (close == std::string_view::npos) {
        limit = p;  // an earlier box cannot close after this unclosed one
        continue;
      }
      std::string_view content = trim(text.substr(j + 1, close - j - 1));
      if (content.empty()) continue;
      return Extraction{std::string(content), rule};
    }
    if (j > i) {  // `\boxed 5`
      std::size_t k = j;
      while (k < text.size() && text[k] != ' ' && text[k] != '$' && text[k] != '\n') ++k;
      std::string_view content = text.substr(j, k - j);
      while (!content.empty() && content.back() == '.') content.remove_suffix(1);
      if (content.empty()) continue;
      return Extraction{std::string(content), rule};
    }
  }
  return std::nullopt;
}

/// The answer right after a phrase: `$...$`, `\(...\)`, `\[...\]`, else up to the sentence end.
inline std::string answer_after(std::string_view rest) {
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == ':' || rest.front() == '\n')) rest.remove_prefix(1);
  auto delimited = [&](std::string_view open, std::string_view close) -> std::optional<std::string> {
    if (rest.substr(0, open.size()) != open) return std::nullopt;
    std::size_t e = rest.find(close, open.size());
    if (e == std::string_view::npos) return std::nullopt;
    return std::string(trim(rest.substr(open.size(), e - open.size())));
  };
  for (auto [o, c] : {std::pair<std::string_view, std::string_view>{"$$", "$$"}, {"$", "$"}, {"\\(", "\\)"},
                      {"\\[", "\\]"}}) {
    if (auto r = delimited(o, c)) return *r;
  }
  std::size_t end = rest.find('\n');
  std::string_view line = rest.substr(0, end);
  for (std::size_t k = 0; k + 1 < line.size(); ++k) {
    if (line[k] == '.' && line[k + 1] == ' ') {
      line = line.substr(0, k);
      break;
    }
  }
  line = trim(line);
  while (!line.empty() && line.back() == '.') line.remove_suffix(1);
  return std::string(trim(line));
}

inline std::optional<Extraction> last_number(std::string_view text) {
  std::optional<Extraction> best;
  for (std::size_t i = 0; i < text.size();) {
    if (!is_digit(text[i])) {
      ++i;
      continue;
    }
    std::size_t start = i;
    if (start > 0 && text[start - 1] == '-') --start;
    std::size_t j = i;
    while (j < text.size() && (is_digit(text[j]) || (text[j] == ',' && j + 3 < text.size() + 0 &&
                                                     j + 1 < text.size() && is_digit(text[j + 1]))))
      ++j;
    if (j + 1 < text.size() && text[j] == '.' && is_digit(text[j + 1])) {
      ++j;
      while (j < text.size() && is_digit(text[j])) ++j;
    }
    if (j + 1 < text.size() && text[j] == '/' && is_digit(text[j + 1])) {
      ++j;
      while (j < text.size() && is_digit(text[j])) ++j;
    }
    std::string num(text.substr(start, j - start));
    std::string cleaned;
    for (char c : num)
      if (c != ',') cleaned.push_back(c);
    best = Extraction{cleaned, "last number"};
    i = j;
  }
  return best;
}

}  // namespace detail

/// The final answer of `solution_text` and the rule that found it; nullopt when nothing did.
inline std::optional<Extraction> extract_answer(std::string_view solution_text) {
  using namespace detail;
  if (auto box = last_box(solution_text)) return box;
  struct Phrase {
    std::string_view needle;
    const char* rule;
  };
  static constexpr Phrase kPhrases[] = {{"final answer is", "final answer"}, {"final answer:", "final answer"},
                                        {"the answer is", "the answer is"},   {"answer is", "the answer is"},
                                        {"####", "####"}};
  std::size_t best_pos = std::string_view::npos;
  const Phrase* best = nullptr;
  for (const Phrase& ph : kPhrases) {
    std::size_t pos = rfind_ci(solution_text, ph.needle);
    if (pos == std::string_view::npos) continue;
    std::size_t end = pos + ph.needle.size();
    if (best_pos == std::string_view::npos || end > best_pos) {
      best_pos = end;
      best = &ph;
    }
  }
  if (best) {
    std::string ans = answer_after(solution_text.substr(best_pos));
    if (!ans.empty()) return Extraction{ans, best->rule};
  }
  return last_number(solution_text);
}

}  // namespace genprm::math
