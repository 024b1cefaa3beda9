// util/python_text.hpp: Python's whitespace (str.isspace, str.strip, re's \s) on UTF-8 and the
// GenPRM reference's code-block regex, with every Unicode whitespace class around and inside the
// fence. Expected values are what CPython 3.11 gives (tests/python/test_reference_texts.py runs
// the same cases against the real regex).
#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "genprm/util/python_text.hpp"

namespace {

/// UTF-8 of one code point.
std::string utf8(char32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

/// Every code point for which CPython's str.isspace() is true (and re's \s matches), by class:
/// ASCII controls, the information separators, SPACE, NEL, the Zs spaces, LS and PS.
const std::vector<char32_t> kPythonSpaces = {
    0x09, 0x0A, 0x0B, 0x0C, 0x0D,                  // \t \n \v \f \r
    0x1C, 0x1D, 0x1E, 0x1F,                        // file/group/record/unit separators (B, S)
    0x20,                                          // SPACE
    0x85,                                          // NEXT LINE (B)
    0xA0,                                          // NO-BREAK SPACE (Zs)
    0x1680,                                        // OGHAM SPACE MARK (Zs)
    0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A,  // Zs
    0x2028,                                        // LINE SEPARATOR (Zl)
    0x2029,                                        // PARAGRAPH SEPARATOR (Zp)
    0x202F,                                        // NARROW NO-BREAK SPACE (Zs)
    0x205F,                                        // MEDIUM MATHEMATICAL SPACE (Zs)
    0x3000,                                        // IDEOGRAPHIC SPACE (Zs)
};

/// Look-alikes that Python does NOT treat as whitespace.
const std::vector<char32_t> kNotSpaces = {
    0x00, 0x08, 0x0E, 0x1B, 0x7F, 0x84, 0x86, 0x9F, 0xAD,  // controls, soft hyphen
    0x180E,                                                // MONGOLIAN VOWEL SEPARATOR (Cf since 6.3)
    0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF,                // zero-width characters
    0x2800, 0x3164, 0xFFA0, 0x1F600,                       // blank-looking letters and symbols
};

}  // namespace

TEST_CASE("py_isspace is CPython's table: every code point below U+110000") {
  size_t count = 0;
  for (char32_t cp = 0; cp < 0x110000; ++cp) {
    if (genprm::py_isspace(cp)) ++count;
  }
  CHECK(count == kPythonSpaces.size());
  for (char32_t cp : kPythonSpaces) {
    CAPTURE(static_cast<unsigned>(cp));
    CHECK(genprm::py_isspace(cp));
    CHECK(genprm::py_space_at(utf8(cp), 0) == utf8(cp).size());
    CHECK(genprm::py_space_before(utf8(cp), utf8(cp).size()) == utf8(cp).size());
  }
  for (char32_t cp : kNotSpaces) {
    CAPTURE(static_cast<unsigned>(cp));
    CHECK_FALSE(genprm::py_isspace(cp));
    CHECK(genprm::py_space_at(utf8(cp), 0) == 0);
  }
}

TEST_CASE("py_space_at never reads a malformed sequence as whitespace") {
  const std::vector<std::string> rows = {
      "\xC2",              // NBSP cut short
      "\xE3\x80",          // IDEOGRAPHIC SPACE cut short
      "\xC0\xA0",          // overlong SPACE
      "\xE0\x80\xA0",      // overlong SPACE, 3 bytes
      "\xE0\x82\x85",      // overlong NEL
      "\xA0",              // lone continuation byte
      "\x80\x80",          // continuation bytes
  };
  for (const auto& s : rows) {
    CAPTURE(s);
    CHECK(genprm::py_space_at(s, 0) == 0);
    CHECK(genprm::py_strip(s) == s);
  }
  // The NBSP's continuation byte alone, after a letter, is not a space ending there.
  CHECK(genprm::py_space_before("a\xA0", 2) == 0);
}

TEST_CASE("py_strip strips every Python whitespace class and nothing else") {
  for (char32_t cp : kPythonSpaces) {
    const std::string w = utf8(cp);
    CAPTURE(static_cast<unsigned>(cp));
    CHECK(genprm::py_strip(w + "x = 1" + w) == "x = 1");
    CHECK(genprm::py_strip(w + w + "a" + w + "b" + w + w) == "a" + w + "b");
    CHECK(genprm::py_strip(w) == "");
  }
  for (char32_t cp : kNotSpaces) {
    const std::string w = utf8(cp);
    CAPTURE(static_cast<unsigned>(cp));
    CHECK(genprm::py_strip(" " + w + "x" + w + " ") == w + "x" + w);
  }
  CHECK(genprm::py_strip("") == "");
  CHECK(genprm::py_strip(" \t\n") == "");
}

TEST_CASE("last_python_block: the reference regex with every whitespace class around and inside the fence") {
  for (char32_t cp : kPythonSpaces) {
    const std::string w = utf8(cp);
    CAPTURE(static_cast<unsigned>(cp));
    // after ```python, before the closing fence, both, and doubled
    CHECK(genprm::last_python_block("```python" + w + "print(1)\n```") == "print(1)");
    CHECK(genprm::last_python_block("```python\nprint(1)" + w + "```") == "print(1)");
    CHECK(genprm::last_python_block("```python" + w + "\nprint(1)\n" + w + "```\n") == "print(1)");
    CHECK(genprm::last_python_block("```python" + w + w + "x = 1" + w + w + "```") == "x = 1");
    // inside the code: kept as written (Python reports the syntax error, as in the reference)
    CHECK(genprm::last_python_block("```python\nx =" + w + "1\ny = 2\n```") == "x =" + w + "1\ny = 2");
    // a whitespace-only block is empty; the run before the fence belongs to no block
    CHECK(genprm::last_python_block("```python" + w + "```") == "");
    CHECK(genprm::last_python_block("```python\n" + w + "\n```") == "");
    // whitespace between blocks, and the last block wins
    CHECK(genprm::last_python_block("```python\na\n```" + w + "```python" + w + "b" + w + "```") == "b");
    // ```python followed by whitespace then an unclosed block: the earlier closed one wins
    CHECK(genprm::last_python_block("```python\na\n```\n```python" + w + "b") == "a");
  }
  for (char32_t cp : kNotSpaces) {
    const std::string w = utf8(cp);
    CAPTURE(static_cast<unsigned>(cp));
    CHECK(genprm::last_python_block("```python" + w + "print(1)" + w + "```") == w + "print(1)" + w);
  }
}
