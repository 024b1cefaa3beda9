#pragma once
// The engine over the Qwen2 decoder and the project's tokenizer:
//   Qwen2Model model = Qwen2Model::load(dir, device, dtype);
//   Engine engine(model, text_codec(Tokenizer::from_pretrained(dir)), EngineOptions{...});
//   uint64_t id = engine.submit(request, [](GenerationOutput out) { ... });
//   engine.run_until_idle();
// See basic_engine.hpp for the scheduling, request.hpp for requests and results.
#include "genprm/engine/basic_engine.hpp"
#include "genprm/engine/text_codec.hpp"
#include "genprm/model/device.hpp"
#include "genprm/model/qwen2.hpp"
#include "genprm/tokenizer/tokenizer.hpp"

namespace genprm {

using Engine = BasicEngine<Qwen2Model>;

/// The engine's text interface over a Tokenizer (copied: it shares its immutable state).
inline TextCodec text_codec(const Tokenizer& tok) { return make_text_codec<Tokenizer, StreamDecoder>(tok); }

}  // namespace genprm
