#pragma once
// UTF-8 and Unicode helpers for the tokenizer: decoding, invalid-byte repair, the character
// classes of the Qwen2 pre-tokenizer pattern (from utf8proc categories) and a fast NFC.
//
// Invalid UTF-8 policy (the same for encode, decode and streaming): every maximal ill-formed
// subsequence is replaced by one U+FFFD, as Python's bytes.decode("utf-8", "replace") and
// Rust's String::from_utf8_lossy do (Unicode "substitution of maximal subparts").
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <utf8proc.h>

namespace genprm::unicode {

inline constexpr char kReplacementUtf8[] = "\xEF\xBF\xBD";  // U+FFFD

/// Appends the UTF-8 encoding of `cp` (assumed a valid scalar value) to `out`.
inline void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

/// Length of the well-formed UTF-8 sequence at s[i..n), or 0 if the bytes there are ill-formed.
/// When ill-formed, `*maximal_subpart` (if given) receives the length of the maximal subpart
/// (>= 1) that one U+FFFD replaces; when the sequence is only truncated by the end of input,
/// `*truncated` is set (the subpart then runs to the end).
inline size_t utf8_sequence_length(const unsigned char* s, size_t i, size_t n,
                                   size_t* maximal_subpart = nullptr, bool* truncated = nullptr) {
  const unsigned char b0 = s[i];
  if (truncated) *truncated = false;
  if (b0 < 0x80) return 1;
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    if (maximal_subpart) *maximal_subpart = 1;
    return 0;
  }
  size_t k = 1;
  for (; k < need; ++k) {
    if (i + k >= n) {
      if (maximal_subpart) *maximal_subpart = k;
      if (truncated) *truncated = true;
      return 0;
    }
    const unsigned char b = s[i + k];
    const unsigned char l = (k == 1) ? lo : 0x80, h = (k == 1) ? hi : 0xBF;
    if (b < l || b > h) {
      if (maximal_subpart) *maximal_subpart = k;
      return 0;
    }
  }
  return need;
}

/// Decodes one well-formed sequence at s[i] of length `len` (from utf8_sequence_length).
inline uint32_t decode_utf8(const unsigned char* s, size_t i, size_t len) {
  switch (len) {
    case 1: return s[i];
    case 2: return ((s[i] & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu);
    case 3: return ((s[i] & 0x0Fu) << 12) | ((s[i + 1] & 0x3Fu) << 6) | (s[i + 2] & 0x3Fu);
    default:
      return ((s[i] & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12) | ((s[i + 2] & 0x3Fu) << 6) |
             (s[i + 3] & 0x3Fu);
  }
}

/// Offset of the first ill-formed byte of `text`, or text.size() when it is valid UTF-8.
inline size_t find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    // ASCII fast path, 8 bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, s + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    if (s[i] < 0x80) {
      ++i;
      continue;
    }
    const size_t len = utf8_sequence_length(s, i, n);
    if (len == 0) return i;
    i += len;
  }
  return n;
}

inline bool is_valid_utf8(std::string_view text) { return find_invalid_utf8(text) == text.size(); }

/// Appends `bytes` to `out`, replacing each maximal ill-formed subsequence by U+FFFD
/// (what String::from_utf8_lossy and bytes.decode("utf-8", "replace") produce).
inline void append_utf8_lossy(std::string& out, std::string_view bytes) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0, run = 0;  // [run, i) is valid and not yet copied
  while (i < n) {
    const size_t bad = find_invalid_utf8(bytes.substr(i));
    i += bad;
    if (i >= n) break;
    out.append(bytes.data() + run, i - run);
    size_t sub = 1;
    utf8_sequence_length(s, i, n, &sub);
    out.append(kReplacementUtf8, 3);
    i += sub;
    run = i;
  }
  out.append(bytes.data() + run, n - run);
}

inline std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  append_utf8_lossy(out, bytes);
  return out;
}

// ---- character classes of the pre-tokenizer pattern ------------------------------------------

/// Unicode White_Space: what Oniguruma's \s matches in the Hugging Face Split pre-tokenizer
/// (and Rust's char::is_whitespace, used by added-token lstrip/rstrip).
inline bool is_whitespace(uint32_t cp) {
  if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20;
  switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

/// \p{L}
inline bool is_letter(uint32_t cp) {
  const auto c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
}
/// \p{N}
inline bool is_number(uint32_t cp) {
  const auto c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO;
}
/// A "word" character for single_word added tokens (Rust regex \w: letters, marks, numbers,
/// connector punctuation).
inline bool is_word_char(uint32_t cp) {
  const auto c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_NO) || c == UTF8PROC_CATEGORY_PC;
}

/// Pre-tokenizer classes (bit flags so that a pattern class is one mask test).
enum CharClass : uint8_t {
  kLetter = 1,   // \p{L}
  kNumber = 2,   // \p{N}
  kSpace = 4,    // \s other than \r \n
  kNewline = 8,  // \r or \n (also \s)
  kOther = 16,   // none of the above
};

inline uint8_t char_class(uint32_t cp) {
  if (cp == '\r' || cp == '\n') return kNewline;
  if (is_whitespace(cp)) return kSpace;
  const auto c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  if (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) return kLetter;
  if (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO) return kNumber;
  return kOther;
}

/// Class table for ASCII (built once).
struct AsciiClasses {
  uint8_t cls[128];
  AsciiClasses() {
    for (uint32_t c = 0; c < 128; ++c) cls[c] = char_class(c);
  }
};
inline const AsciiClasses& ascii_classes() {
  static const AsciiClasses t;
  return t;
}

// ---- NFC ------------------------------------------------------------------------------------

/// Bitmap of code points that NFC may change or that may combine with the preceding character:
/// combining class != 0, characters whose NFC differs from themselves (singletons, exclusions),
/// non-initial characters of canonical decompositions (second halves of composition pairs) and
/// Hangul V/T jamo. A text with none of them is already NFC; otherwise only the runs of such
/// characters (with the character before each run) are normalized.
class NfcQuickCheck {
 public:
  NfcQuickCheck() : bits_(0x110000 / 64, 0) {
    utf8proc_int32_t buf[32];
    for (uint32_t cp = 0x300; cp < 0x110000; ++cp) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      const utf8proc_property_t* p = utf8proc_get_property(static_cast<utf8proc_int32_t>(cp));
      if (p->combining_class != 0) set(cp);
      if (p->decomp_seqindex != UINT16_MAX && p->decomp_type == 0) {  // canonical decomposition
        int last_boundclass = 0;
        const auto n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), buf, 32,
                                               UTF8PROC_DECOMPOSE, &last_boundclass);
        for (utf8proc_ssize_t k = 1; k < n; ++k) set(static_cast<uint32_t>(buf[k]));
        if (n >= 1 && p->comp_exclusion) set(cp);
        if (n == 1) set(cp);  // singleton decomposition: NFC replaces it
        if (n >= 1 && !is_nfc_stable(cp)) set(cp);
      }
    }
    for (uint32_t cp = 0x1161; cp <= 0x1175; ++cp) set(cp);  // Hangul V jamo
    for (uint32_t cp = 0x11A8; cp <= 0x11C2; ++cp) set(cp);  // Hangul T jamo
  }
  bool unsafe(uint32_t cp) const { return cp >= 0x300 && ((bits_[cp >> 6] >> (cp & 63)) & 1u); }

 private:
  void set(uint32_t cp) {
    if (cp < 0x110000) bits_[cp >> 6] |= (uint64_t{1} << (cp & 63));
  }
  static bool is_nfc_stable(uint32_t cp) {
    std::string s;
    append_utf8(s, cp);
    utf8proc_uint8_t* out = nullptr;
    const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                static_cast<utf8proc_ssize_t>(s.size()), &out,
                                static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    const bool same = n >= 0 && std::string_view(reinterpret_cast<char*>(out), size_t(n)) == s;
    std::free(out);
    return same;
  }
  std::vector<uint64_t> bits_;
};

inline const NfcQuickCheck& nfc_quick_check() {
  static const NfcQuickCheck q;
  return q;
}

/// Appends NFC(`text`) (valid UTF-8) to `out` with utf8proc.
inline void append_nfc_utf8proc(std::string& out, std::string_view text) {
  utf8proc_uint8_t* res = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                              static_cast<utf8proc_ssize_t>(text.size()), &res,
                              static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) {  // cannot happen for valid UTF-8; keep the text rather than lose it
    out.append(text);
  } else {
    out.append(reinterpret_cast<const char*>(res), static_cast<size_t>(n));
  }
  std::free(res);
}

/// NFC of valid UTF-8 `text`. Returns a view of `text` itself when it is already NFC (the common
/// case, checked in one pass), else a view of `scratch`, which receives the normalized text.
inline std::string_view nfc(std::string_view text, std::string& scratch) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  const NfcQuickCheck& q = nfc_quick_check();
  size_t i = 0, prev = 0;  // prev: start of the previous character
  size_t copied = 0;       // text[0, copied) has been handled (only when scratch is in use)
  bool dirty = false;
  while (i < n) {
    if (s[i] < 0x80) {
      prev = i++;
      continue;
    }
    const size_t len = utf8_sequence_length(s, i, n);
    const size_t clen = len == 0 ? 1 : len;
    const uint32_t cp = len == 0 ? 0xFFFD : decode_utf8(s, i, len);
    if (!q.unsafe(cp)) {
      prev = i;
      i += clen;
      continue;
    }
    // A run of unsafe characters starting at i, normalized together with the character before.
    const size_t region_start = (i > 0 && prev >= copied) ? prev : i;
    size_t j = i + clen;
    while (j < n) {
      if (s[j] < 0x80) break;
      const size_t l2 = utf8_sequence_length(s, j, n);
      if (l2 == 0) break;
      if (!q.unsafe(decode_utf8(s, j, l2))) break;
      j += l2;
    }
    if (!dirty) {
      scratch.clear();
      scratch.reserve(n + 16);
      dirty = true;
    }
    scratch.append(text.data() + copied, region_start - copied);
    append_nfc_utf8proc(scratch, text.substr(region_start, j - region_start));
    copied = j;
    prev = j;  // the next region may not start before j
    i = j;
  }
  if (!dirty) return text;
  scratch.append(text.data() + copied, n - copied);
  return scratch;
}

}  // namespace genprm::unicode
