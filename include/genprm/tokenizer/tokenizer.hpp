#pragma once
// Hugging Face compatible byte-level BPE tokenizer (Qwen2 / Qwen2.5 / Qwen3 /
// DeepSeek-R1-Distill-Qwen tokenizer.json), streaming detokenizer and chat formats.
//
//   auto tok = genprm::Tokenizer::from_pretrained(model_dir);   // tokenizer.json + tokenizer_config.json
//   std::vector<int32_t> ids = tok.encode(text);
//   std::string text2 = tok.decode(ids);
//
// Pipeline (as Hugging Face `tokenizers`): added tokens with normalized=false are split off the
// raw text (leftmost-longest, honouring lstrip/rstrip/single_word); each remaining piece is NFC
// normalized, then tokens with normalized=true are split off; the Qwen2 Split pattern cuts the
// piece into words (pretokenize.hpp); each word's bytes go through BPE (bpe.hpp). ByteLevel is
// implicit: the vocabulary is stored as raw bytes. Added tokens get their ids the way tokenizers
// assigns them on load (the ids written in the file are not used): a token already in the model
// vocabulary keeps that id, others are numbered after the largest added id (or the model size).
//
// Failure contract:
//  - encode(): invalid UTF-8 input is not an error: each maximal ill-formed subsequence becomes
//    U+FFFD before tokenization (what Python's bytes.decode("utf-8", "replace") gives).
//  - decode(): the bytes of all tokens (added ones included, special ones dropped on request) are
//    concatenated and read as UTF-8 with U+FFFD per maximal ill-formed subpart
//    (String::from_utf8_lossy); ids outside the vocabulary are skipped (as Hugging Face does;
//    models pad their embedding beyond the tokenizer's vocabulary).
//  - loading: a malformed tokenizer.json (bad JSON, missing merges, unsupported model,
//    normalizer, pre-tokenizer or decoder) throws genprm::ValueError naming the file.
// Thread safety: a Tokenizer is immutable after loading and may be shared by threads; the word
// cache is per thread.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "genprm/tokenizer/bpe.hpp"
#include "genprm/tokenizer/chat.hpp"
#include "genprm/tokenizer/load_json.hpp"
#include "genprm/tokenizer/pretokenize.hpp"
#include "genprm/tokenizer/unicode.hpp"
#include "genprm/util/error.hpp"
#include "genprm/util/json.hpp"

namespace genprm {

/// The Qwen2 pre-tokenizer pattern, as written in tokenizer.json.
inline constexpr std::string_view kQwen2SplitPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

namespace tok_detail {

/// GPT-2's byte -> printable character map used by the ByteLevel pre-tokenizer and decoder.
inline const std::vector<uint32_t>& byte_to_char() {
  static const std::vector<uint32_t> table = [] {
    std::vector<uint32_t> t(256);
    uint32_t extra = 0;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = printable ? b : 256 + extra++;
    }
    return t;
  }();
  return table;
}

/// Inverse of byte_to_char: code point -> byte, or -1.
inline int char_to_byte(uint32_t cp) {
  static const std::vector<int16_t> inv = [] {
    std::vector<int16_t> v(324, -1);
    const auto& t = byte_to_char();
    for (int b = 0; b < 256; ++b) v[t[b]] = static_cast<int16_t>(b);
    return v;
  }();
  return cp < inv.size() ? inv[cp] : -1;
}

/// Byte-level token string ("Ġhello") -> raw bytes (" hello"); nullopt if some character is not
/// in the byte map (then Hugging Face's decoder keeps the token's UTF-8 as is).
inline std::optional<std::string> byte_level_decode(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  const auto* s = reinterpret_cast<const unsigned char*>(token.data());
  size_t i = 0;
  while (i < token.size()) {
    const size_t len = unicode::utf8_sequence_length(s, i, token.size());
    if (len == 0) return std::nullopt;
    const int b = char_to_byte(unicode::decode_utf8(s, i, len));
    if (b < 0) return std::nullopt;
    out.push_back(static_cast<char>(b));
    i += len;
  }
  return out;
}

/// Added tokens of one kind (normalized or not), matched leftmost-longest.
class AddedMatcher {
 public:
  void add(const AddedToken* t, std::string content) {
    if (content.empty()) return;
    entries_.push_back({t, std::move(content)});
  }
  void finish() {
    for (auto& v : by_first_) v.clear();
    for (size_t k = 0; k < entries_.size(); ++k)
      by_first_[static_cast<unsigned char>(entries_[k].content[0])].push_back(k);
    for (auto& v : by_first_)
      std::stable_sort(v.begin(), v.end(), [&](size_t a, size_t b) {
        return entries_[a].content.size() > entries_[b].content.size();
      });
  }
  bool empty() const { return entries_.empty(); }

  struct Split {
    const AddedToken* token;  // nullptr: plain text
    size_t begin, end;
  };
  /// Hugging Face AddedVocabulary::find_matches over `s`.
  void split(std::string_view s, std::vector<Split>& out) const {
    out.clear();
    size_t start_offset = 0;
    size_t i = 0;
    const size_t n = s.size();
    while (i < n) {
      const auto& cands = by_first_[static_cast<unsigned char>(s[i])];
      const Entry* hit = nullptr;
      for (size_t k : cands) {
        const auto& e = entries_[k];
        if (e.content.size() <= n - i && std::memcmp(s.data() + i, e.content.data(), e.content.size()) == 0) {
          hit = &e;
          break;
        }
      }
      if (hit == nullptr) {
        ++i;
        continue;
      }
      size_t start = i, stop = i + hit->content.size();
      i = stop;  // the automaton resumes after the match itself
      const AddedToken& t = *hit->token;
      if (t.single_word) {
        const bool start_space = start == 0 || !ends_with_word(s.substr(0, start));
        const bool stop_space = stop == n || !starts_with_word(s.substr(stop));
        if (!start_space || !stop_space) continue;
      }
      if (t.lstrip) start = std::max(space_leftmost_at_end(s.substr(0, start)), start_offset);
      if (t.rstrip) stop += space_rightmost_at_start(s.substr(stop));
      if (start_offset < start) out.push_back({nullptr, start_offset, start});
      out.push_back({&t, start, stop});
      start_offset = stop;
    }
    if (start_offset < n) out.push_back({nullptr, start_offset, n});
  }

 private:
  struct Entry {
    const AddedToken* token;
    std::string content;
  };
  static uint32_t last_char(std::string_view s) {
    size_t i = s.size();
    while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) --i;
    if (i == 0) return 0;
    --i;
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t len = unicode::utf8_sequence_length(p, i, s.size());
    return len ? unicode::decode_utf8(p, i, len) : 0xFFFD;
  }
  static uint32_t first_char(std::string_view s, size_t* len_out = nullptr) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t len = unicode::utf8_sequence_length(p, 0, s.size());
    if (len_out) *len_out = len ? len : 1;
    return len ? unicode::decode_utf8(p, 0, len) : 0xFFFD;
  }
  static bool ends_with_word(std::string_view s) { return !s.empty() && unicode::is_word_char(last_char(s)); }
  static bool starts_with_word(std::string_view s) { return !s.empty() && unicode::is_word_char(first_char(s)); }
  static size_t space_leftmost_at_end(std::string_view s) {
    size_t end = s.size();
    while (end > 0) {
      size_t i = end;
      while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) --i;
      if (i == 0) break;
      --i;
      if (!unicode::is_whitespace(first_char(s.substr(i, end - i)))) break;
      end = i;
    }
    return end;
  }
  static size_t space_rightmost_at_start(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
      size_t len = 1;
      const uint32_t cp = first_char(s.substr(i), &len);
      if (!unicode::is_whitespace(cp)) break;
      i += len;
    }
    return i;
  }
  std::vector<Entry> entries_;
  std::vector<size_t> by_first_[256];
};

/// Token string -> id, open addressing over ids; the strings live in `strings` (id_to_token).
class StringIdMap {
 public:
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2 + 16) cap <<= 1;
    slots_.assign(cap, kEmpty);
    mask_ = cap - 1;
  }
  /// Maps strings[id] to id (replacing an earlier id with the same string).
  void insert(const std::vector<std::string>& strings, int32_t id) {
    const std::string& key = strings[size_t(id)];
    const uint64_t h = bpe::hash_bytes(key);
    const uint64_t tag = h >> 32 << 32;
    size_t i = size_t(h) & mask_;
    while (slots_[i] != kEmpty) {
      if ((slots_[i] & kTagMask) == tag && strings[size_t(uint32_t(slots_[i]))] == key) break;
      i = (i + 1) & mask_;
    }
    slots_[i] = tag | uint32_t(id);
  }
  int32_t find(const std::vector<std::string>& strings, std::string_view key) const {
    if (slots_.empty()) return -1;
    const uint64_t h = bpe::hash_bytes(key);
    const uint64_t tag = h >> 32 << 32;
    size_t i = size_t(h) & mask_;
    while (slots_[i] != kEmpty) {
      if ((slots_[i] & kTagMask) == tag && strings[size_t(uint32_t(slots_[i]))] == key) return int32_t(uint32_t(slots_[i]));
      i = (i + 1) & mask_;
    }
    return -1;
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static constexpr uint64_t kTagMask = ~uint64_t{0} << 32;
  std::vector<uint64_t> slots_;  // (hash high 32 bits) << 32 | id
  size_t mask_ = 0;
};

/// Immutable state shared by all copies of a Tokenizer.
struct TokenizerState {
  uint64_t serial = bpe::next_state_serial();
  std::string path;                         // tokenizer.json
  std::vector<std::string> id_to_token;     // Hugging Face token strings ("" for unused ids)
  std::vector<std::string> id_to_bytes;     // what decode() appends for the id
  std::vector<uint8_t> id_kind;             // 0 unused, 1 model token, 2 added, 3 added special
  StringIdMap token_to_id;                  // model tokens, over id_to_token
  std::unordered_map<std::string, int32_t> added_to_id;  // added tokens by their content as written
  int32_t find_token(std::string_view t) const {
    if (!added_to_id.empty()) {
      auto it = added_to_id.find(std::string(t));
      if (it != added_to_id.end()) return it->second;
    }
    return token_to_id.find(id_to_token, t);
  }
  int32_t byte_ids[256];
  bpe::MergeTable merges;
  bool nfc = false;
  std::vector<std::unique_ptr<AddedToken>> added;
  AddedMatcher added_raw, added_normalized;
  std::vector<int32_t> prefix_ids, suffix_ids;  // TemplateProcessing "single"
  size_t vocab_size = 0;
  std::optional<int32_t> bos_id, eos_id;
  std::string bos_token, eos_token;
  ChatFormat chat;
  std::string chat_template;  // the Jinja source, kept for Python's fallback renderer
};

/// Thread-local scratch buffers reused across calls (no allocation once warm).
struct EncodeScratch {
  std::string repaired, normalized;
  std::vector<AddedMatcher::Split> raw_splits, norm_splits;
};
inline EncodeScratch& encode_scratch() {
  thread_local EncodeScratch s;
  return s;
}

inline void check_type(const Json& node, const char* what, const std::string& path) {
  GENPRM_CHECK_ARG(node.is_object() && node.contains("type") && node["type"].is_string(),
                   "{}: '{}' must be an object with a string 'type'", path, what);
}

/// The components of a normalizer / pre_tokenizer / post_processor: the `list_key` array of a
/// "Sequence" node, else the node itself.
inline std::vector<Json> sequence_parts(const Json& node, const char* what, const char* list_key,
                                        const std::string& path) {
  std::vector<Json> parts;
  if (node["type"] == "Sequence") {
    GENPRM_CHECK_ARG(node.contains(list_key) && node[list_key].is_array(), "{}: Sequence {} without '{}'", path,
                     what, list_key);
    for (const auto& p : node[list_key]) parts.push_back(p);
  } else {
    parts.push_back(node);
  }
  return parts;
}

}  // namespace tok_detail

class Tokenizer {
 public:
  Tokenizer() = default;

  /// Loads a Hugging Face tokenizer.json (byte-level BPE only).
  static Tokenizer from_file(const std::string& tokenizer_json_path) {
    Tokenizer t;
    t.state_ = load_tokenizer_json(tokenizer_json_path);
    return t;
  }

  /// Loads `model_dir`/tokenizer.json and, when present, `model_dir`/tokenizer_config.json
  /// (bos_token, eos_token, chat_template; or a chat_template.jinja file).
  static Tokenizer from_pretrained(const std::string& model_dir) {
    std::string dir = model_dir;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    auto st = load_tokenizer_json(dir + "/tokenizer.json");
    const std::string cfg_path = dir + "/tokenizer_config.json";
    std::ifstream probe(cfg_path);
    std::string tpl;
    if (probe.good()) {
      probe.close();
      const Json cfg = read_json_file(cfg_path);
      GENPRM_CHECK_ARG(cfg.is_object(), "{}: must be a JSON object", cfg_path);
      st->bos_token = special_token_string(cfg, "bos_token", cfg_path);
      st->eos_token = special_token_string(cfg, "eos_token", cfg_path);
      for (auto [name, id] : {std::pair<const std::string*, std::optional<int32_t>*>{&st->bos_token, &st->bos_id},
                              {&st->eos_token, &st->eos_id}}) {
        if (name->empty()) continue;
        const int32_t found = st->find_token(*name);
        GENPRM_CHECK_ARG(found >= 0, "{}: special token '{}' is not in the vocabulary of {}", cfg_path, *name,
                         st->path);
        *id = found;
      }
      auto ct = cfg.find("chat_template");
      if (ct != cfg.end() && ct->is_string()) {
        tpl = ct->get<std::string>();
      } else if (ct != cfg.end() && ct->is_array()) {  // [{"name": "default", "template": ...}, ...]
        for (const auto& e : *ct)
          if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
            tpl = e["template"].get<std::string>();
      }
    }
    std::string tpl_source = cfg_path;
    if (tpl.empty()) {
      std::ifstream jf(dir + "/chat_template.jinja", std::ios::binary);
      if (jf.good()) {
        tpl = read_text_file(dir + "/chat_template.jinja");
        tpl_source = dir + "/chat_template.jinja";
      }
    }
    st->chat_template = tpl;
    st->chat = ChatFormat::detect(tpl, st->bos_token, st->eos_token, tpl_source);
    Tokenizer t;
    t.state_ = std::move(st);
    return t;
  }

  bool loaded() const { return state_ != nullptr; }
  const std::string& path() const { return s().path; }

  /// Token ids of `text` (UTF-8; invalid bytes become U+FFFD). add_special_tokens applies the
  /// tokenizer.json post-processor template (e.g. a BOS), a no-op for the Qwen tokenizers.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const {
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 4);
    encode_into(text, out, add_special_tokens);
    return out;
  }

  /// Appends the ids of `text` to `out` (reuses the caller's buffer).
  void encode_into(std::string_view text, std::vector<int32_t>& out, bool add_special_tokens = false) const {
    const auto& st = s();
    auto& scratch = tok_detail::encode_scratch();
    if (add_special_tokens) out.insert(out.end(), st.prefix_ids.begin(), st.prefix_ids.end());
    if (!unicode::is_valid_utf8(text)) {
      std::string repaired = unicode::utf8_lossy(text);
      encode_valid(repaired, out, scratch);
    } else {
      encode_valid(text, out, scratch);
    }
    if (add_special_tokens) out.insert(out.end(), st.suffix_ids.begin(), st.suffix_ids.end());
  }

  /// Text of `ids`, as Hugging Face's decode: the bytes of every token (special tokens dropped
  /// when skip_special_tokens; unknown ids skipped) concatenated, then read as UTF-8 with U+FFFD
  /// for each maximal ill-formed subsequence.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const {
    const auto& st = s();
    std::string bytes;
    bytes.reserve(ids.size() * 4);
    for (int32_t id : ids) {
      if (id < 0 || size_t(id) >= st.id_kind.size()) continue;
      const uint8_t kind = st.id_kind[size_t(id)];
      if (kind == 0 || (kind == 3 && skip_special_tokens)) continue;
      bytes += st.id_to_bytes[size_t(id)];
    }
    if (unicode::is_valid_utf8(bytes)) return bytes;
    return unicode::utf8_lossy(bytes);
  }

  /// Id of a token string as it appears in tokenizer.json ("Ġhello", "<|im_end|>").
  std::optional<int32_t> token_to_id(std::string_view token) const {
    const int32_t id = s().find_token(token);
    if (id < 0) return std::nullopt;
    return id;
  }
  /// Token string of `id`; throws ValueError when the id is not in the vocabulary.
  std::string id_to_token(int32_t id) const {
    auto t = try_id_to_token(id);
    GENPRM_CHECK_ARG(t.has_value(), "id_to_token: id {} is not in the vocabulary of {} (size {})", id, s().path,
                     s().vocab_size);
    return *t;
  }
  std::optional<std::string> try_id_to_token(int32_t id) const {
    const auto& st = s();
    if (id < 0 || size_t(id) >= st.id_kind.size() || st.id_kind[size_t(id)] == 0) return std::nullopt;
    return st.id_to_token[size_t(id)];
  }
  /// Raw bytes that `id` contributes to decoded text (may be an incomplete UTF-8 sequence).
  std::string_view token_bytes(int32_t id) const {
    const auto& st = s();
    if (id < 0 || size_t(id) >= st.id_kind.size()) return {};
    return st.id_to_bytes[size_t(id)];
  }
  /// BPE of one pre-tokenized word given as raw bytes (no added tokens, no normalization, no
  /// cache). force_heap_path selects the long-word algorithm for any length (for tests).
  std::vector<int32_t> bpe_word_ids(std::string_view word_bytes, bool force_heap_path = false) const {
    std::vector<int32_t> out;
    bpe::bpe_word(word_bytes, s().byte_ids, s().merges, out, force_heap_path ? 0 : 96);
    return out;
  }
  /// Regular + added tokens (Hugging Face get_vocab_size(with_added_tokens=True)).
  size_t vocab_size() const { return s().vocab_size; }
  std::optional<int32_t> eos_token_id() const { return s().eos_id; }
  std::optional<int32_t> bos_token_id() const { return s().bos_id; }
  const std::string& eos_token() const { return s().eos_token; }
  const std::string& bos_token() const { return s().bos_token; }
  bool is_special(int32_t id) const {
    const auto& st = s();
    return id >= 0 && size_t(id) < st.id_kind.size() && st.id_kind[size_t(id)] == 3;
  }
  bool is_added(int32_t id) const {
    const auto& st = s();
    return id >= 0 && size_t(id) < st.id_kind.size() && st.id_kind[size_t(id)] >= 2;
  }
  const std::vector<std::unique_ptr<AddedToken>>& added_tokens() const { return s().added; }

  /// The chat format detected from tokenizer_config.json (kNone when loaded with from_file).
  const ChatFormat& chat_format() const { return s().chat; }
  /// The Jinja chat template text ("" when none).
  const std::string& chat_template() const { return s().chat_template; }

  /// Renders a conversation in the format of tokenizer_config.json (DeepSeek-R1 or ChatML).
  /// Unknown template families throw ValueError explaining how to pass a pre-rendered prompt.
  std::string apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt = false) const {
    return render_chat(s().chat, messages, add_generation_prompt);
  }
  /// Renders a conversation in an explicitly named format.
  std::string apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                  const ChatFormat& format) const {
    return render_chat(format, messages, add_generation_prompt);
  }

 private:
  const tok_detail::TokenizerState& s() const {
    GENPRM_CHECK(state_ != nullptr, "Tokenizer: used before loading (use from_file or from_pretrained)");
    return *state_;
  }

  void encode_valid(std::string_view text, std::vector<int32_t>& out, tok_detail::EncodeScratch& scratch) const {
    const auto& st = s();
    if (st.added_raw.empty()) {
      encode_normalizable(text, out, scratch);
      return;
    }
    std::vector<tok_detail::AddedMatcher::Split> splits;
    splits.swap(scratch.raw_splits);  // keep the scratch usable by nested calls
    st.added_raw.split(text, splits);
    for (const auto& sp : splits) {
      if (sp.token != nullptr) {
        out.push_back(sp.token->id);
      } else {
        encode_normalizable(text.substr(sp.begin, sp.end - sp.begin), out, scratch);
      }
    }
    splits.swap(scratch.raw_splits);
  }

  void encode_normalizable(std::string_view piece, std::vector<int32_t>& out, tok_detail::EncodeScratch& scratch) const {
    const auto& st = s();
    std::string_view norm = st.nfc ? unicode::nfc(piece, scratch.normalized) : piece;
    if (st.added_normalized.empty()) {
      encode_words(norm, out);
      return;
    }
    st.added_normalized.split(norm, scratch.norm_splits);
    for (const auto& sp : scratch.norm_splits) {
      if (sp.token != nullptr) {
        out.push_back(sp.token->id);
      } else {
        encode_words(norm.substr(sp.begin, sp.end - sp.begin), out);
      }
    }
  }

  void encode_words(std::string_view text, std::vector<int32_t>& out) const {
    const auto& st = s();
    bpe::WordCache& cache = bpe::thread_word_cache(st.serial);
    pretok::for_each_piece(text, [&](std::string_view word) {
      const uint64_t h = bpe::hash_bytes(word);
      if (cache.lookup(word, h, out)) return;
      const size_t before = out.size();
      bpe::bpe_word(word, st.byte_ids, st.merges, out);
      cache.insert(word, h, out.data() + before, out.size() - before);
    });
  }

  static std::string special_token_string(const Json& cfg, const char* key, const std::string& path) {
    auto it = cfg.find(key);
    if (it == cfg.end() || it->is_null()) return {};
    if (it->is_string()) return it->get<std::string>();
    if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
      return (*it)["content"].get<std::string>();
    throw ValueError(fmt::format("{}: '{}' must be a string or an object with 'content'", path, key));
  }

  static std::shared_ptr<tok_detail::TokenizerState> load_tokenizer_json(const std::string& path);

  std::shared_ptr<const tok_detail::TokenizerState> state_;
};

inline std::shared_ptr<tok_detail::TokenizerState> Tokenizer::load_tokenizer_json(const std::string& path) {
  using tok_detail::check_type;
  tok_detail::TokenizerJson doc = tok_detail::read_tokenizer_json(path);
  const Json& j = doc.rest;
  GENPRM_CHECK_ARG(j.is_object(), "{}: a tokenizer.json must be a JSON object", path);
  auto st = std::make_shared<tok_detail::TokenizerState>();
  st->path = path;

  // ---- model
  GENPRM_CHECK_ARG(j.contains("model") && j["model"].is_object(), "{}: missing 'model'", path);
  const Json& model = j["model"];
  const std::string mtype = model.value("type", std::string("BPE"));
  GENPRM_CHECK_ARG(mtype == "BPE",
                   "{}: model type '{}' is not supported (genprm implements byte-level BPE only: "
                   "Qwen2/2.5/3, DeepSeek-R1-Distill-Qwen)", path, mtype);
  GENPRM_CHECK_ARG(!model.contains("byte_fallback") || !model["byte_fallback"].is_boolean() ||
                       !model["byte_fallback"].get<bool>(),
                   "{}: BPE with byte_fallback (SentencePiece style) is not supported", path);
  GENPRM_CHECK_ARG(!model.contains("dropout") || model["dropout"].is_null() ||
                       (model["dropout"].is_number() && model["dropout"].get<double>() == 0.0),
                   "{}: BPE dropout is not supported", path);
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    GENPRM_CHECK_ARG(!model.contains(k) || model[k].is_null() || model[k] == "",
                     "{}: BPE '{}' is not supported (byte-level BPE has none)", path, k);
  }
  GENPRM_CHECK_ARG(doc.has_vocab && doc.vocab_is_object, "{}: model.vocab missing or not an object", path);
  GENPRM_CHECK_ARG(doc.has_merges && doc.merges_is_array, "{}: model.merges missing or not an array", path);
  GENPRM_CHECK_ARG(doc.vocab_error.empty(), "{}: {}", path, doc.vocab_error);
  GENPRM_CHECK_ARG(doc.merge_error.empty(), "{}: {}", path, doc.merge_error);
  GENPRM_CHECK_ARG(!model.value("ignore_merges", false), "{}: BPE ignore_merges=true is not supported", path);

  int32_t max_id = -1;
  for (const auto& [tok, id] : doc.vocab) {
    GENPRM_CHECK_ARG(id >= 0 && id < (int64_t(1) << 30), "{}: vocab entry '{}' has id {} out of range", path, tok, id);
    max_id = std::max<int32_t>(max_id, int32_t(id));
  }
  const Json added = j.value("added_tokens", Json::array());
  GENPRM_CHECK_ARG(added.is_array(), "{}: 'added_tokens' must be an array", path);
  for (const auto& a : added)
    GENPRM_CHECK_ARG(a.is_object() && a.contains("content") && a["content"].is_string(),
                     "{}: each added token needs a string 'content'", path);
  const size_t n_ids = size_t(max_id + 1);
  st->id_to_token.assign(n_ids, std::string());
  st->id_to_bytes.assign(n_ids, std::string());
  st->id_kind.assign(n_ids, 0);
  st->token_to_id.reserve(n_ids + added.size());
  for (auto& [tok, id64] : doc.vocab) {
    const size_t id = size_t(id64);
    GENPRM_CHECK_ARG(st->id_kind[id] == 0, "{}: vocab id {} is used twice ('{}' and '{}')", path, id,
                     st->id_to_token[id], tok);
    auto raw = tok_detail::byte_level_decode(tok);
    GENPRM_CHECK_ARG(raw.has_value(),
                     "{}: vocab token '{}' is not byte-level encoded (the ByteLevel pre-tokenizer maps every "
                     "byte to a printable character; this looks like a different kind of BPE)", path, tok);
    st->id_to_bytes[id] = std::move(*raw);
    st->id_to_token[id] = std::move(tok);
    st->id_kind[id] = 1;
    st->token_to_id.insert(st->id_to_token, int32_t(id));
  }
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    unicode::append_utf8(ch, tok_detail::byte_to_char()[size_t(b)]);
    const int32_t id = st->find_token(ch);
    GENPRM_CHECK_ARG(id >= 0 && st->id_kind[size_t(id)] == 1, "{}: vocab lacks the single-byte token for byte 0x{:02X}", path, b);
    st->byte_ids[b] = id;
  }

  // ---- merges ("a b" strings or ["a", "b"] pairs), rank = position
  st->merges.reserve(doc.merges.size());
  std::string joined;
  for (size_t rank = 0; rank < doc.merges.size(); ++rank) {
    const auto& [left, right] = doc.merges[rank];
    joined.assign(left).append(right);
    const int32_t a = st->find_token(left), b = st->find_token(right), c = st->find_token(joined);
    GENPRM_CHECK_ARG(a >= 0 && b >= 0 && c >= 0,
                     "{}: merge {} ('{}' + '{}') uses a token that is not in the vocabulary", path, rank, left, right);
    st->merges.insert(a, b, {int32_t(rank), c});
  }
  const size_t doc_vocab_size = doc.vocab.size();
  doc.vocab.clear();
  doc.vocab.shrink_to_fit();
  doc.merges.clear();
  doc.merges.shrink_to_fit();

  // ---- normalizer: null, NFC, or Sequence of NFC
  if (j.contains("normalizer") && !j["normalizer"].is_null()) {
    const Json& nz = j["normalizer"];
    check_type(nz, "normalizer", path);
    const std::vector<Json> parts = tok_detail::sequence_parts(nz, "normalizer", "normalizers", path);
    for (const auto& p : parts) {
      check_type(p, "normalizer", path);
      const std::string t = p["type"].get<std::string>();
      GENPRM_CHECK_ARG(t == "NFC", "{}: normalizer '{}' is not supported (only NFC)", path, t);
      st->nfc = true;
    }
  }

  // ---- pre-tokenizer: Sequence[Split(Qwen2 pattern, Isolated), ByteLevel(use_regex=false)]
  {
    GENPRM_CHECK_ARG(j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null(), "{}: missing 'pre_tokenizer'", path);
    const Json& pt = j["pre_tokenizer"];
    check_type(pt, "pre_tokenizer", path);
    const std::vector<Json> parts = tok_detail::sequence_parts(pt, "pre_tokenizer", "pretokenizers", path);
    bool split_ok = false, byte_level_ok = false;
    for (const auto& p : parts) {
      check_type(p, "pre_tokenizer", path);
      const std::string t = p["type"].get<std::string>();
      if (t == "Split" && !split_ok && !byte_level_ok) {
        const Json pat = p.value("pattern", Json());
        const std::string re = pat.is_object() && pat.contains("Regex") && pat["Regex"].is_string() ? pat["Regex"].get<std::string>() : "";
        GENPRM_CHECK_ARG(re == kQwen2SplitPattern,
                         "{}: Split pre-tokenizer pattern is not the Qwen2 pattern genprm implements (got {})", path,
                         pat.dump());
        GENPRM_CHECK_ARG(p.value("behavior", std::string()) == "Isolated" && !p.value("invert", false),
                         "{}: Split pre-tokenizer must have behavior 'Isolated' and invert false", path);
        split_ok = true;
      } else if (t == "ByteLevel" && !byte_level_ok) {
        GENPRM_CHECK_ARG(!p.value("add_prefix_space", false), "{}: ByteLevel add_prefix_space=true is not supported", path);
        GENPRM_CHECK_ARG(!p.value("use_regex", true),
                         "{}: ByteLevel pre-tokenizer with use_regex=true (GPT-2 pattern) is not supported", path);
        byte_level_ok = true;
      } else {
        throw ValueError(fmt::format("{}: pre_tokenizer '{}' is not supported (expected Sequence[Split(Qwen2 pattern), ByteLevel])", path, t));
      }
    }
    GENPRM_CHECK_ARG(split_ok && byte_level_ok, "{}: pre_tokenizer must be Sequence[Split(Qwen2 pattern), ByteLevel]", path);
  }

  // ---- decoder: ByteLevel
  {
    GENPRM_CHECK_ARG(j.contains("decoder") && !j["decoder"].is_null(), "{}: missing 'decoder' (expected ByteLevel)", path);
    check_type(j["decoder"], "decoder", path);
    const std::string t = j["decoder"]["type"].get<std::string>();
    GENPRM_CHECK_ARG(t == "ByteLevel", "{}: decoder '{}' is not supported (expected ByteLevel)", path, t);
  }

  // ---- added tokens. Like tokenizers, the ids written in the file are not used: a token already
  // in the model vocabulary keeps its id, a new one takes the next id after the largest added id
  // (or the model vocabulary size).
  const int64_t model_size = int64_t(doc_vocab_size);
  int64_t max_added = -1;
  for (const auto& a : added) {
    auto t = std::make_unique<AddedToken>();
    t->content = a["content"].get<std::string>();
    GENPRM_CHECK_ARG(!t->content.empty() && unicode::is_valid_utf8(t->content),
                     "{}: added token {} has empty or invalid UTF-8 content", path, a.dump());
    t->single_word = a.value("single_word", false);
    t->lstrip = a.value("lstrip", false);
    t->rstrip = a.value("rstrip", false);
    t->special = a.value("special", false);
    t->normalized = a.value("normalized", !t->special);
    const int32_t existing = st->find_token(t->content);
    bool duplicate = false;
    for (const auto& prev : st->added) duplicate = duplicate || prev->content == t->content;
    if (duplicate) continue;  // tokenizers keeps the first definition
    int64_t id = existing;
    if (id < 0) id = (max_added >= 0 && (max_added >= model_size || model_size == 0)) ? max_added + 1 : model_size;
    max_added = std::max(max_added, id);
    GENPRM_CHECK_ARG(id < (int64_t(1) << 30), "{}: too many added tokens", path);
    t->id = int32_t(id);
    if (size_t(id) >= st->id_kind.size()) {
      st->id_to_token.resize(size_t(id) + 1);
      st->id_to_bytes.resize(size_t(id) + 1);
      st->id_kind.resize(size_t(id) + 1, 0);
    }
    // Like tokenizers: id_to_token gives the normalized content of normalized tokens, token_to_id
    // takes the content as written. The ByteLevel decoder maps a token's characters back to bytes
    // when all of them are in the byte map ("<think>", "Ġzz" -> " zz"), else keeps its UTF-8
    // ("<｜User｜>").
    std::string shown = t->content;
    if (t->normalized && st->nfc) {
      std::string scratch;
      shown = std::string(unicode::nfc(t->content, scratch));
    }
    st->id_to_bytes[size_t(id)] = tok_detail::byte_level_decode(shown).value_or(shown);
    st->id_to_token[size_t(id)] = std::move(shown);
    st->id_kind[size_t(id)] = t->special ? 3 : 2;
    st->added_to_id[t->content] = t->id;
    st->added.push_back(std::move(t));
  }
  for (const auto& t : st->added) {
    if (t->normalized) {
      std::string scratch;
      std::string_view nc = st->nfc ? unicode::nfc(t->content, scratch) : std::string_view(t->content);
      st->added_normalized.add(t.get(), std::string(nc));
    } else {
      st->added_raw.add(t.get(), t->content);
    }
  }
  st->added_raw.finish();
  st->added_normalized.finish();
  size_t count = 0;
  for (uint8_t k : st->id_kind) count += k != 0;
  st->vocab_size = count;

  // ---- post-processor: null, ByteLevel, TemplateProcessing, or a Sequence of them
  if (j.contains("post_processor") && !j["post_processor"].is_null()) {
    const Json& pp = j["post_processor"];
    check_type(pp, "post_processor", path);
    const std::vector<Json> parts = tok_detail::sequence_parts(pp, "post_processor", "processors", path);
    for (const auto& p : parts) {
      check_type(p, "post_processor", path);
      const std::string t = p["type"].get<std::string>();
      if (t == "ByteLevel") continue;
      GENPRM_CHECK_ARG(t == "TemplateProcessing", "{}: post_processor '{}' is not supported", path, t);
      GENPRM_CHECK_ARG(p.contains("single") && p["single"].is_array(), "{}: TemplateProcessing without 'single'", path);
      const Json specials = p.value("special_tokens", Json::object());
      bool seen_sequence = false;
      for (const auto& item : p["single"]) {
        if (item.contains("Sequence")) {
          seen_sequence = true;
        } else if (item.contains("SpecialToken")) {
          const std::string name = item["SpecialToken"].value("id", std::string());
          GENPRM_CHECK_ARG(specials.contains(name) && specials[name].contains("ids") && specials[name]["ids"].is_array(),
                           "{}: TemplateProcessing special token '{}' has no ids", path, name);
          for (const auto& id : specials[name]["ids"])
            (seen_sequence ? st->suffix_ids : st->prefix_ids).push_back(id.get<int32_t>());
        } else {
          throw ValueError(fmt::format("{}: TemplateProcessing item {} is not understood", path, item.dump()));
        }
      }
    }
  }
  return st;
}

/// Incremental detokenizer: push ids as they are generated, get text chunks that never split a
/// UTF-8 character. The concatenation of all push() results and flush() equals
/// decode(all ids, skip_special_tokens).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special_tokens = false)
      : tok_(tok), skip_special_(skip_special_tokens) {}

  /// Newly final text after `id` (possibly empty while a character is incomplete).
  std::string push(int32_t id) {
    std::string out;
    push_into(id, out);
    return out;
  }
  /// Appends the newly final text after `id` to `out`.
  void push_into(int32_t id, std::string& out) {
    if (skip_special_ && tok_.is_special(id)) return;
    pending_ += tok_.token_bytes(id);
    // Emit everything except a trailing sequence that may still be completed.
    const auto* p = reinterpret_cast<const unsigned char*>(pending_.data());
    const size_t n = pending_.size();
    size_t keep_from = n;
    // A possibly-incomplete sequence starts at most 3 bytes before the end.
    for (size_t back = 1; back <= 3 && back <= n; ++back) {
      const size_t i = n - back;
      if ((p[i] & 0xC0) == 0x80) continue;  // continuation byte: look further back
      bool truncated = false;
      size_t sub = 0;
      if (p[i] >= 0x80 && unicode::utf8_sequence_length(p, i, n, &sub, &truncated) == 0 && truncated) keep_from = i;
      break;
    }
    unicode::append_utf8_lossy(out, std::string_view(pending_).substr(0, keep_from));
    pending_.erase(0, keep_from);
  }
  /// Whatever is left: incomplete bytes become U+FFFD, as in decode().
  std::string flush() {
    std::string out = unicode::utf8_lossy(pending_);
    pending_.clear();
    return out;
  }
  /// Bytes held back because they may start a multi-byte character.
  size_t pending_bytes() const { return pending_.size(); }

 private:
  Tokenizer tok_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace genprm
