// libFuzzer target: config.json -> ModelConfig on arbitrary bytes. Every input must either parse
// into a config that satisfies the documented invariants (and round-trips through to_json), or be
// rejected with genprm::ValueError; any other exception type escaping is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "genprm/io/model_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  genprm::ModelConfig c;
  try {
    c = genprm::ModelConfig::from_json_text(text, "fuzz/config.json");
  } catch (const genprm::ValueError&) {
    return 0;
  }
  if (c.num_attention_heads <= 0 || c.num_key_value_heads <= 0 ||
      c.num_attention_heads % c.num_key_value_heads != 0 || c.head_dim <= 0 || c.head_dim % 2 != 0 ||
      c.vocab_size <= 0 || c.hidden_size <= 0 || !(c.rope_theta > 0) || !(c.rms_norm_eps > 0))
    std::abort();
  genprm::ModelConfig r = genprm::ModelConfig::from_json(c.to_json(), "roundtrip");
  if (r.to_json() != c.to_json()) std::abort();
  return 0;
}
