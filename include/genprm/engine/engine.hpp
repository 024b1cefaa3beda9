#pragma once
// The engine over the Qwen2 decoder and the project's tokenizer:
//   Qwen2Model model = Qwen2Model::load(dir, device, dtype);
//   Engine engine(model, text_codec(Tokenizer::from_pretrained(dir)), EngineOptions{...});
//   uint64_t id = engine.submit(request, [](GenerationOutput out) { ... });
//   engine.run_until_idle();
// See basic_engine.hpp for the scheduling, request.hpp for requests and results.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "genprm/engine/basic_engine.hpp"
#include "genprm/engine/text_codec.hpp"
#include "genprm/model/device.hpp"
#include "genprm/model/qwen2.hpp"
#include "genprm/tokenizer/tokenizer.hpp"

namespace genprm {

using Engine = BasicEngine<Qwen2Model>;

/// The engine's text interface over a Tokenizer (copied: it shares its immutable state).
inline TextCodec text_codec(const Tokenizer& tok) { return make_text_codec<Tokenizer, StreamDecoder>(tok); }

/// A model directory served: its Qwen2 model, its tokenizer and the engine over them, owned
/// together (the model and tokenizer live as long as the engine that refers to them). The one way
/// GenPRM, the bindings and the tools load a checkpoint. The tokenizer comes from `tokenizer_dir`
/// (default: the model directory) when it has a tokenizer.json; without one, prompts must be
/// token ids (an error with `require_tokenizer` or an explicit `tokenizer_dir`). EOS: the
/// options' ids, else the model config's, else the tokenizer's.
class ServedModel {
 public:
  ServedModel(const std::string& model_dir, const std::string& device, const std::string& dtype, EngineOptions o,
              const std::optional<std::string>& tokenizer_dir = std::nullopt, bool require_tokenizer = false)
      : model_(std::make_unique<Qwen2Model>(Qwen2Model::load(model_dir, parse_device(device), parse_dtype(dtype)))) {
    const std::string tdir = tokenizer_dir.value_or(model_dir);
    TextCodec codec;
    if (std::filesystem::exists(tdir + "/tokenizer.json")) {
      tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_pretrained(tdir));
      codec = text_codec(*tokenizer_);
    } else {
      GENPRM_CHECK_ARG(!tokenizer_dir && !require_tokenizer, "{}: no tokenizer.json", tdir);
    }
    if (o.eos_token_ids.empty())
      for (auto e : model_->config().eos_token_ids) o.eos_token_ids.push_back(static_cast<int32_t>(e));
    if (o.eos_token_ids.empty() && tokenizer_ && tokenizer_->eos_token_id())
      o.eos_token_ids.push_back(*tokenizer_->eos_token_id());
    engine_ = std::make_unique<Engine>(*model_, std::move(codec), std::move(o));
  }

  Engine& engine() { return *engine_; }
  const Engine& engine() const { return *engine_; }
  const Qwen2Model& model() const { return *model_; }
  /// The tokenizer, or nullptr when the model folder has none.
  const Tokenizer* tokenizer() const { return tokenizer_.get(); }

 private:
  std::unique_ptr<Qwen2Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace genprm
