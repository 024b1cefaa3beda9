#pragma once
// Code blocks of a rationale, as the reference's CodeExecutor finds them:
//   re.compile(r'```python\s*(.*?)\s*```', re.DOTALL).findall(text)[-1].strip()
// and the in-band text appended after a code stop: "[Code Output]\n\n```\n{output}\n```\n".
#include <optional>
#include <string>

namespace genprm::prm {

namespace detail {
inline bool is_py_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
inline std::string py_strip(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_py_space(s[b])) ++b;
  while (e > b && is_py_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}
}  // namespace detail

/// The last ```python block of `text` with the regex's non-overlapping left-to-right semantics
/// (an unclosed last block is not a match, so an earlier closed block wins, as in the
/// reference); nullopt when there is none.
inline std::optional<std::string> extract_last_python_block(const std::string& text) {
  static const std::string open = "```python";
  static const std::string fence = "```";
  std::optional<std::string> last;
  size_t pos = 0;
  while (true) {
    size_t o = text.find(open, pos);
    if (o == std::string::npos) break;
    size_t body = o + open.size();
    size_t close = text.find(fence, body);
    if (close == std::string::npos) break;  // no closing fence: no further matches either
    // The lazy group ends where "\s*```" first matches: at the start of the whitespace run
    // before the first closing fence; the greedy leading \s* eats the leading whitespace.
    last = detail::py_strip(text.substr(body, close - body));
    pos = close + fence.size();
  }
  return last;
}

}  // namespace genprm::prm
