#pragma once
// Streaming (SAX) read of a tokenizer.json: model.vocab and model.merges (hundreds of thousands
// of entries) go straight into flat vectors; everything else becomes an ordinary Json DOM with
// those two fields set to null. About 4x faster than building the whole DOM.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "genprm/util/error.hpp"
#include "genprm/util/json.hpp"

namespace genprm::tok_detail {

struct TokenizerJson {
  Json rest;                                           // the document, vocab/merges nulled
  bool has_vocab = false, has_merges = false;
  bool vocab_is_object = false, merges_is_array = false;
  std::vector<std::pair<std::string, int64_t>> vocab;  // in file order
  std::vector<std::pair<std::string, std::string>> merges;
  std::string merge_error;                             // first malformed merge, if any
  std::string vocab_error;                             // first malformed vocab entry, if any
};

class TokenizerJsonSax : public nlohmann::json_sax<Json> {
 public:
  TokenizerJsonSax(TokenizerJson& out, std::string path) : out_(out), dom_(out.rest, true), path_(std::move(path)) {}

  bool null() override { return scalar([&] { return dom_.null(); }, "null"); }
  bool boolean(bool v) override { return scalar([&] { return dom_.boolean(v); }, "boolean"); }
  bool number_integer(number_integer_t v) override {
    if (mode_ == kVocab && depth_ == capture_depth_) {
      out_.vocab.emplace_back(std::move(pending_key_), int64_t(v));
      return true;
    }
    return scalar([&] { return dom_.number_integer(v); }, "number");
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (mode_ == kVocab && depth_ == capture_depth_) {
      out_.vocab.emplace_back(std::move(pending_key_), v > uint64_t(INT64_MAX) ? int64_t(-1) : int64_t(v));
      return true;
    }
    return scalar([&] { return dom_.number_unsigned(v); }, "number");
  }
  bool number_float(number_float_t v, const string_t& s) override {
    return scalar([&] { return dom_.number_float(v, s); }, "number");
  }
  bool string(string_t& v) override {
    if (mode_ == kMerges) {
      if (depth_ == capture_depth_) {  // "a b"
        const size_t sp = v.find(' ');
        if (sp == std::string::npos || v.find(' ', sp + 1) != std::string::npos) {
          note_merge_error(fmt::format("merge {} ('{}') must be two tokens separated by one space", out_.merges.size(), v));
          out_.merges.emplace_back(std::string(), std::string());
        } else {
          out_.merges.emplace_back(v.substr(0, sp), v.substr(sp + 1));
        }
        return true;
      }
      if (depth_ == capture_depth_ + 1) {  // ["a", "b"]
        pair_parts_.push_back(std::move(v));
        return true;
      }
      note_merge_error(fmt::format("merge {} is malformed", out_.merges.size()));
      return true;
    }
    return scalar([&] { return dom_.string(v); }, "string");
  }
  bool binary(binary_t& v) override { return dom_.binary(v); }
  bool start_object(std::size_t n) override {
    if (mode_ != kNone) {
      ++depth_;
      if (mode_ == kMerges) note_merge_error(fmt::format("merge {} is malformed", out_.merges.size()));
      if (mode_ == kVocab) note_vocab_error("vocab values must be integer ids");
      return true;
    }
    ++depth_;
    if (depth_ == 3 && keys_.size() >= 3 && keys_[1] == "model" && keys_[2] == "vocab") {
      mode_ = kVocab;
      capture_depth_ = depth_;
      out_.has_vocab = out_.vocab_is_object = true;
      return true;
    }
    keys_.resize(size_t(depth_) + 1);
    return dom_.start_object(n);
  }
  bool key(string_t& k) override {
    if (mode_ == kVocab) {
      if (depth_ == capture_depth_) pending_key_ = std::move(k);
      return true;
    }
    if (mode_ != kNone) return true;
    keys_[size_t(depth_)] = k;
    return dom_.key(k);
  }
  bool end_object() override {
    if (mode_ != kNone) {
      if (depth_ == capture_depth_) {
        mode_ = kNone;
        --depth_;
        return dom_.null();
      }
      --depth_;
      return true;
    }
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t n) override {
    if (mode_ == kMerges) {
      ++depth_;
      if (depth_ == capture_depth_ + 1) pair_parts_.clear();
      else note_merge_error(fmt::format("merge {} is malformed", out_.merges.size()));
      return true;
    }
    if (mode_ == kVocab) {
      ++depth_;
      note_vocab_error("vocab values must be integer ids");
      return true;
    }
    ++depth_;
    if (depth_ == 3 && keys_.size() >= 3 && keys_[1] == "model" && keys_[2] == "merges") {
      mode_ = kMerges;
      capture_depth_ = depth_;
      out_.has_merges = out_.merges_is_array = true;
      return true;
    }
    keys_.resize(size_t(depth_) + 1);
    keys_[size_t(depth_)].clear();
    return dom_.start_array(n);
  }
  bool end_array() override {
    if (mode_ == kMerges) {
      if (depth_ == capture_depth_) {
        mode_ = kNone;
        --depth_;
        return dom_.null();
      }
      if (depth_ == capture_depth_ + 1) {
        if (pair_parts_.size() == 2) {
          out_.merges.emplace_back(std::move(pair_parts_[0]), std::move(pair_parts_[1]));
        } else {
          note_merge_error(fmt::format("merge {} must be a pair [\"a\", \"b\"]", out_.merges.size()));
          out_.merges.emplace_back(std::string(), std::string());
        }
      }
      --depth_;
      return true;
    }
    if (mode_ == kVocab) {
      --depth_;
      return true;
    }
    --depth_;
    return dom_.end_array();
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) override {
    throw ValueError(fmt::format("{}: invalid JSON: {}", path_, ex.what()));
  }

 private:
  enum Mode { kNone, kVocab, kMerges };
  template <typename F>
  bool scalar(F&& f, const char* what) {
    if (mode_ == kVocab) {
      if (depth_ == capture_depth_) note_vocab_error(fmt::format("vocab entry '{}' has a non-integer id ({})", pending_key_, what));
      return true;
    }
    if (mode_ == kMerges) {
      note_merge_error(fmt::format("merge {} is malformed ({})", out_.merges.size(), what));
      return true;
    }
    return f();
  }
  void note_merge_error(std::string msg) {
    if (out_.merge_error.empty()) out_.merge_error = std::move(msg);
  }
  void note_vocab_error(std::string msg) {
    if (out_.vocab_error.empty()) out_.vocab_error = std::move(msg);
  }

  TokenizerJson& out_;
  nlohmann::detail::json_sax_dom_parser<Json> dom_;
  std::string path_;
  std::vector<std::string> keys_ = std::vector<std::string>(1);  // keys_[d]: current key at depth d
  Mode mode_ = kNone;
  int depth_ = 0, capture_depth_ = 0;
  std::string pending_key_;
  std::vector<std::string> pair_parts_;
};

/// Reads `path` as a tokenizer.json. Errors (unreadable file, bad JSON) name the file.
inline TokenizerJson read_tokenizer_json(const std::string& path) {
  const std::string text = read_text_file(path);
  TokenizerJson out;
  TokenizerJsonSax sax(out, path);
  try {
    Json::sax_parse(text, &sax);
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(fmt::format("{}: invalid JSON: {}", path, e.what()));
  }
  return out;
}

}  // namespace genprm::tok_detail
