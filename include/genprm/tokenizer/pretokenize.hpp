#pragma once
// The Qwen2 Split pre-tokenizer, written out by hand (no regex engine). Hugging Face applies it
// with Oniguruma, leftmost-first alternation with backtracking, "Isolated" behaviour:
//
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)          A1 contractions, ASCII case-insensitive (+ U+017F ſ ~ s)
//   |[^\r\n\p{L}\p{N}]?\p{L}+             A2 optional lead character, then letters
//   |\p{N}                                A3 one number character
//   | ?[^\s\p{L}\p{N}]+[\r\n]*            A4 optional space, punctuation/symbols, trailing newlines
//   |\s*[\r\n]+                           A5 whitespace through the last newline of the run
//   |\s+(?!\S)                            A6 whitespace not followed by a non-space
//   |\s+                                  A7 remaining whitespace
//
// Every character is matched by one of the alternatives, so pieces tile the input.
#include <cstdint>
#include <string_view>

#include "genprm/tokenizer/unicode.hpp"

namespace genprm::pretok {

/// Cursor over valid UTF-8 with the pre-tokenizer class of each character.
struct Utf8Cursor {
  const unsigned char* s;
  size_t n;

  struct Char {
    uint32_t cp;
    uint8_t len;  // bytes; 0 at end of text
    uint8_t cls;  // unicode::CharClass
  };

  Char at(size_t i) const {
    if (i >= n) return {0, 0, 0};
    const unsigned char b = s[i];
    if (b < 0x80) return {b, 1, unicode::ascii_classes().cls[b]};
    size_t len = unicode::utf8_sequence_length(s, i, n);
    if (len == 0) return {0xFFFD, 1, unicode::kOther};  // not reached for repaired input
    const uint32_t cp = unicode::decode_utf8(s, i, len);
    return {cp, static_cast<uint8_t>(len), unicode::char_class(cp)};
  }
  /// End of the run of characters whose class is in `mask`, starting at i.
  size_t run(size_t i, uint8_t mask) const {
    while (i < n) {
      const unsigned char b = s[i];
      if (b < 0x80) {
        if (!(unicode::ascii_classes().cls[b] & mask)) break;
        ++i;
        continue;
      }
      Char c = at(i);
      if (!(c.cls & mask)) break;
      i += c.len;
    }
    return i;
  }
};

inline bool ascii_ieq(unsigned char c, char lower) { return (c | 0x20) == static_cast<unsigned char>(lower); }

/// End (exclusive) of the piece that starts at byte i (< text size).
inline size_t next_piece_end(const Utf8Cursor& cur, size_t i) {
  using namespace unicode;
  const Utf8Cursor::Char c0 = cur.at(i);
  const size_t i1 = i + c0.len;
  // A1: contractions.
  if (c0.cp == '\'' && i1 < cur.n) {
    const unsigned char b1 = cur.s[i1];
    if (ascii_ieq(b1, 's') || ascii_ieq(b1, 't') || ascii_ieq(b1, 'm') || ascii_ieq(b1, 'd'))
      return i1 + 1;
    if (b1 == 0xC5 && i1 + 1 < cur.n && cur.s[i1 + 1] == 0xBF) return i1 + 2;  // U+017F folds to s
    if (i1 + 1 < cur.n) {
      const unsigned char b2 = cur.s[i1 + 1];
      if ((ascii_ieq(b1, 'r') && ascii_ieq(b2, 'e')) || (ascii_ieq(b1, 'v') && ascii_ieq(b2, 'e')) ||
          (ascii_ieq(b1, 'l') && ascii_ieq(b2, 'l')))
        return i1 + 2;
    }
  }
  // A2: [^\r\n\p{L}\p{N}]?\p{L}+
  if (c0.cls == kLetter) return cur.run(i1, kLetter);
  if (c0.cls & (kSpace | kOther)) {
    const Utf8Cursor::Char c1 = cur.at(i1);
    if (c1.cls == kLetter) return cur.run(i1 + c1.len, kLetter);
  }
  // A3: \p{N}
  if (c0.cls == kNumber) return i1;
  // A4:  ?[^\s\p{L}\p{N}]+[\r\n]*
  {
    size_t q = std::string_view::npos;
    if (c0.cls == kOther) {
      q = i1;
    } else if (c0.cp == ' ') {
      const Utf8Cursor::Char c1 = cur.at(i1);
      if (c1.cls == kOther) q = i1 + c1.len;
    }
    if (q != std::string_view::npos) return cur.run(cur.run(q, kOther), kNewline);
  }
  // c0 is whitespace here. Run of \s starting at i.
  size_t last_nl_end = 0;
  size_t last_start = i;  // start of the last character in the run
  size_t e = i;
  while (e < cur.n) {
    const Utf8Cursor::Char c = cur.at(e);
    if (!(c.cls & (kSpace | kNewline))) break;
    if (c.cls == kNewline) last_nl_end = e + c.len;
    last_start = e;
    e += c.len;
  }
  // A5: \s*[\r\n]+ : through the last newline of the run.
  if (last_nl_end != 0) return last_nl_end;
  // A6: \s+(?!\S)
  if (e >= cur.n) return e;
  if (last_start > i) return last_start;
  // A7: \s+ (a single whitespace character before a non-space)
  return e;
}

/// Calls f(std::string_view piece) for each pre-tokenizer piece of valid UTF-8 `text`.
template <typename F>
inline void for_each_piece(std::string_view text, F&& f) {
  const Utf8Cursor cur{reinterpret_cast<const unsigned char*>(text.data()), text.size()};
  size_t i = 0;
  while (i < text.size()) {
    const size_t e = next_piece_end(cur, i);
    f(text.substr(i, e - i));
    i = e;
  }
}

}  // namespace genprm::pretok
