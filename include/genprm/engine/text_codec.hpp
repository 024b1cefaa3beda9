#pragma once
// The engine's view of a tokenizer: encode a prompt, and a fresh incremental detokenizer per
// sample (text that is final, never splitting a UTF-8 character). Type-erased so the engine's
// scheduling code does not depend on the tokenizer's headers; see engine.hpp for the adaptor
// over genprm::Tokenizer / StreamDecoder.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace genprm {

class IncrementalDetokenizer {
 public:
  virtual ~IncrementalDetokenizer() = default;
  virtual std::string push(int32_t id) = 0;  ///< newly final text
  virtual std::string flush() = 0;           ///< what is left at the end
};

struct TextCodec {
  std::function<std::vector<int32_t>(const std::string&)> encode;  ///< no special tokens added
  std::function<std::unique_ptr<IncrementalDetokenizer>()> new_decoder;
  explicit operator bool() const { return static_cast<bool>(encode) && static_cast<bool>(new_decoder); }
};

/// Adapts any tokenizer with encode(text, add_special) and a stream decoder type constructible
/// from it with push(id) / flush().
template <class Tok, class Decoder>
TextCodec make_text_codec(Tok tok) {
  struct Detok final : IncrementalDetokenizer {
    explicit Detok(std::shared_ptr<const Tok> t) : keep(std::move(t)), dec(*keep) {}
    std::string push(int32_t id) override { return dec.push(id); }
    std::string flush() override { return dec.flush(); }
    std::shared_ptr<const Tok> keep;  // the decoder may refer to the tokenizer
    Decoder dec;
  };
  auto shared = std::make_shared<const Tok>(std::move(tok));
  TextCodec c;
  c.encode = [shared](const std::string& text) { return shared->encode(text, false); };
  c.new_decoder = [shared]() -> std::unique_ptr<IncrementalDetokenizer> { return std::make_unique<Detok>(shared); };
  return c;
}

}  // namespace genprm
