#pragma once
// PyEngine: what genprm._core.Engine wraps (a Qwen2 model, its tokenizer when the model folder
// has one, and the scheduler, owned together). Shared so that other bindings (rpe, search) can
// take a Python Engine and drive its C++ engine directly.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "genprm/engine/engine.hpp"
#include "genprm/model/device.hpp"

namespace genprm::bindings {

// The model and tokenizer live as long as the engine that refers to them.
class PyEngine {
 public:
  PyEngine(const std::string& model_dir, const std::string& device, const std::string& dtype, EngineOptions o,
           std::optional<std::string> tokenizer_dir)
      : model_(std::make_unique<Qwen2Model>(Qwen2Model::load(model_dir, parse_device(device), parse_dtype(dtype)))) {
    TextCodec codec;
    const std::string tdir = tokenizer_dir.value_or(model_dir);
    if (std::filesystem::exists(tdir + "/tokenizer.json")) {
      Tokenizer tok = Tokenizer::from_pretrained(tdir);
      for (auto e : model_->config().eos_token_ids) o.eos_token_ids.push_back(static_cast<int32_t>(e));
      if (o.eos_token_ids.empty() && tok.eos_token_id()) o.eos_token_ids.push_back(*tok.eos_token_id());
      codec = text_codec(tok);
      tokenizer_ = std::make_unique<Tokenizer>(std::move(tok));
    } else {
      GENPRM_CHECK_ARG(!tokenizer_dir, "Engine: no tokenizer.json in {}", tdir);
    }
    engine_ = std::make_unique<Engine>(*model_, std::move(codec), o);
  }

  Engine& engine() { return *engine_; }
  const Qwen2Model& model() const { return *model_; }
  /// The tokenizer, or nullptr when the model folder has none.
  const Tokenizer* tokenizer() const { return tokenizer_.get(); }
  bool has_tokenizer() const { return tokenizer_ != nullptr; }
  std::string decode(const std::vector<int32_t>& ids) const {
    GENPRM_CHECK_ARG(tokenizer_ != nullptr, "Engine: no tokenizer");
    return tokenizer_->decode(ids);
  }

 private:
  std::unique_ptr<Qwen2Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace genprm::bindings
