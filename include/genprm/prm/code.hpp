#pragma once
// Code blocks of a rationale, as the reference's CodeExecutor finds them:
//   re.compile(r'```python\s*(.*?)\s*```', re.DOTALL).findall(text)[-1].strip()
// with Python's Unicode whitespace (util/python_text.hpp, shared with exec's
// `last_python_block`), and the in-band text appended after a code stop:
// "[Code Output]\n\n```\n{output}\n```\n" (the texts are VerifierConfig's, config.hpp).
#include <optional>
#include <string>

#include "genprm/util/python_text.hpp"

namespace genprm::prm {

/// The last ```python block of `text` (genprm::last_python_block); nullopt when there is none.
inline std::optional<std::string> extract_last_python_block(const std::string& text) {
  return last_python_block(text);
}

}  // namespace genprm::prm
