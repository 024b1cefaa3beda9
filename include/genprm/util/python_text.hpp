#pragma once
// Python's whitespace rules on UTF-8 text, and the GenPRM reference's code-block extraction
// built on them. Python's `str.isspace()`, `str.strip()` and the `\s` of a str regex (re's
// default Unicode mode) all use one table, Py_UNICODE_ISSPACE:
//   U+0009..U+000D, U+001C..U+001F, U+0020, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028,
//   U+2029, U+202F, U+205F, U+3000
// (unchanged since Python 3.4 / Unicode 6.3, when U+180E left it). Only well-formed UTF-8
// sequences count as whitespace: a byte that is not part of one is never whitespace (Python would
// have seen U+FFFD there, which is not whitespace either).
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace genprm {

/// `chr(cp).isspace()` in Python (and re's `\s` on a str).
constexpr bool py_isspace(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/// Bytes of the Python whitespace character that starts at `s[i]`; 0 when none starts there.
/// (Every such character is 1 to 3 bytes long in UTF-8.)
inline size_t py_space_at(std::string_view s, size_t i) {
  if (i >= s.size()) return 0;
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const auto cont = [&](size_t k) { return k < s.size() && (byte(k) & 0xC0) == 0x80; };
  const unsigned char c = byte(i);
  if (c < 0x80) return py_isspace(c) ? 1 : 0;
  if ((c & 0xE0) == 0xC0 && c >= 0xC2 && cont(i + 1)) {
    const char32_t cp = (char32_t(c & 0x1F) << 6) | (byte(i + 1) & 0x3F);
    return py_isspace(cp) ? 2 : 0;
  }
  if ((c & 0xF0) == 0xE0 && cont(i + 1) && cont(i + 2)) {
    const char32_t cp = (char32_t(c & 0x0F) << 12) | (char32_t(byte(i + 1) & 0x3F) << 6) | (byte(i + 2) & 0x3F);
    return cp >= 0x800 && py_isspace(cp) ? 3 : 0;
  }
  return 0;
}

/// Bytes of the Python whitespace character that ends right before `s[end]`; 0 when none does.
inline size_t py_space_before(std::string_view s, size_t end) {
  for (size_t n = 1; n <= 3 && n <= end; ++n) {
    if (py_space_at(s, end - n) == n) return n;
  }
  return 0;
}

/// Index of the first byte at or after `i` that does not start Python whitespace.
inline size_t py_skip_space(std::string_view s, size_t i) {
  for (size_t n; (n = py_space_at(s, i)) > 0;) i += n;
  return i;
}

/// Index just past the last byte before `end`, not before `begin`, that is not Python whitespace.
inline size_t py_skip_space_back(std::string_view s, size_t begin, size_t end) {
  for (size_t n; end > begin && (n = py_space_before(s, end)) > 0 && end - n >= begin;) end -= n;
  return end;
}

/// Python's `s.strip()` (no argument).
inline std::string py_strip(std::string_view s) {
  const size_t b = py_skip_space(s, 0);
  return std::string(s.substr(b, py_skip_space_back(s, b, s.size()) - b));
}

/// The last ```python block of `text` exactly as the GenPRM reference's CodeExecutor finds it:
///   re.compile(r'```python\s*(.*?)\s*```', re.DOTALL).findall(text)[-1].strip()
/// with Python's whitespace. findall scans left to right without overlaps; a match's lazy group
/// ends where `\s*```` first matches, i.e. at the start of the whitespace run before the first
/// closing fence (the greedy leading `\s*` has eaten the whitespace after `python`). An unclosed
/// block is no match, and no later block can match either, so an earlier closed block wins.
/// nullopt when there is no match (the reference then answers "Code format error: No code found.").
inline std::optional<std::string> last_python_block(const std::string& text) {
  static constexpr std::string_view open = "```python", fence = "```";
  const std::string_view t = text;
  std::optional<std::string> last;
  for (size_t o = t.find(open); o != std::string_view::npos; o = t.find(open, o)) {
    const size_t body = py_skip_space(t, o + open.size());
    const size_t close = t.find(fence, body);  // whitespace holds no backtick: close >= body
    if (close == std::string_view::npos) break;
    last = py_strip(t.substr(body, py_skip_space_back(t, body, close) - body));
    o = close + fence.size();
  }
  return last;
}

}  // namespace genprm
