#pragma once
// Hugging Face config.json -> ModelConfig for Qwen2-architecture decoders (torch-free).
//
// Accepted model_type: "qwen2" (q/k/v projections always carry a bias) and "llama" (same fields;
// bias from "attention_bias", default false). Everything this decoder does not implement is
// rejected with a ValueError naming the file and the field: other model types, rope scaling of
// any kind other than "default", partial rotary, an activation other than silu, MLP bias,
// sliding-window attention that would actually be used by some layer.
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "genprm/util/error.hpp"
#include "genprm/io/json_strict.hpp"
#include "genprm/util/json.hpp"

namespace genprm {

namespace detail {
/// j[key] as int64 when present and not null. Unlike json_get<int64_t>, a float (1.5, 1e91) or an
/// unsigned value beyond int64 is an error, not a truncation (found by fuzz_model_config).
inline std::optional<int64_t> config_int(const Json& j, const std::string& key, const std::string& what) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  GENPRM_CHECK_ARG(it->is_number_integer() &&
                       (!it->is_number_unsigned() ||
                        it->get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())),
                   "{}: field '{}' must be an integer, got {}", what, key, it->dump());
  return it->get<int64_t>();
}
inline int64_t config_int_required(const Json& j, const std::string& key, const std::string& what) {
  auto v = config_int(j, key, what);
  GENPRM_CHECK_ARG(v.has_value(), "{}: missing required field '{}'", what, key);
  return *v;
}
}  // namespace detail

struct ModelConfig {
  std::string model_type = "qwen2";
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // "head_dim" when given, else hidden_size / num_attention_heads
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  bool attention_bias = true;  // qwen2: always true
  std::string torch_dtype;     // "torch_dtype" or "dtype" ("float32", "bfloat16", ...); "" if absent
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;  // "eos_token_id": an int, a list, or null

  /// Reads and validates `config_json_path`; errors name the file.
  static ModelConfig from_file(const std::string& config_json_path) {
    return from_json(read_json_file_strict(config_json_path), config_json_path);
  }

  /// Parses config.json text (strictly: duplicate keys and number overflow are errors) and validates it.
  static ModelConfig from_json_text(const std::string& text, const std::string& what) {
    return from_json(parse_json_strict(text, what), what);
  }

  /// Validates a parsed config; `what` (usually the file path) prefixes every error.
  static ModelConfig from_json(const Json& j, const std::string& what) {
    GENPRM_CHECK_ARG(j.is_object(), "{}: config must be a JSON object", what);
    ModelConfig c;
    c.model_type = json_get<std::string>(j, "model_type", what);
    GENPRM_CHECK_ARG(c.model_type == "qwen2" || c.model_type == "llama",
                     "{}: unsupported model_type '{}' (supported: qwen2, llama)", what, c.model_type);
    const bool qwen2 = c.model_type == "qwen2";

    c.vocab_size = detail::config_int_required(j, "vocab_size", what);
    c.hidden_size = detail::config_int_required(j, "hidden_size", what);
    c.intermediate_size = detail::config_int_required(j, "intermediate_size", what);
    c.num_hidden_layers = detail::config_int_required(j, "num_hidden_layers", what);
    c.num_attention_heads = detail::config_int_required(j, "num_attention_heads", what);
    c.num_key_value_heads = detail::config_int(j, "num_key_value_heads", what).value_or(c.num_attention_heads);
    c.max_position_embeddings =
        detail::config_int(j, "max_position_embeddings", what).value_or(qwen2 ? 32768 : 2048);
    c.rms_norm_eps = json_get_or<double>(j, "rms_norm_eps", 1e-6, what);
    c.tie_word_embeddings = json_get_or<bool>(j, "tie_word_embeddings", false, what);
    c.attention_bias = qwen2 ? true : json_get_or<bool>(j, "attention_bias", false, what);
    GENPRM_CHECK_ARG(!json_get_or<bool>(j, "mlp_bias", false, what),
                     "{}: mlp_bias = true is not supported", what);
    const std::string act = json_get_or<std::string>(j, "hidden_act", "silu", what);
    GENPRM_CHECK_ARG(act == "silu", "{}: unsupported hidden_act '{}' (only silu)", what, act);

    c.torch_dtype = json_get_or<std::string>(j, "torch_dtype", "", what);
    if (c.torch_dtype.empty()) c.torch_dtype = json_get_or<std::string>(j, "dtype", "", what);

    const std::pair<const char*, int64_t> positive[] = {
        {"vocab_size", c.vocab_size},
        {"hidden_size", c.hidden_size},
        {"intermediate_size", c.intermediate_size},
        {"num_hidden_layers", c.num_hidden_layers},
        {"num_attention_heads", c.num_attention_heads},
        {"num_key_value_heads", c.num_key_value_heads},
        {"max_position_embeddings", c.max_position_embeddings}};
    for (const auto& [key, v] : positive)
      GENPRM_CHECK_ARG(v > 0, "{}: '{}' must be positive, got {}", what, key, v);
    GENPRM_CHECK_ARG(c.num_attention_heads % c.num_key_value_heads == 0,
                     "{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", what,
                     c.num_attention_heads, c.num_key_value_heads);
    if (auto hd = detail::config_int(j, "head_dim", what)) {
      c.head_dim = *hd;
    } else {
      GENPRM_CHECK_ARG(c.hidden_size % c.num_attention_heads == 0,
                       "{}: hidden_size {} is not a multiple of num_attention_heads {} (and no head_dim)",
                       what, c.hidden_size, c.num_attention_heads);
      c.head_dim = c.hidden_size / c.num_attention_heads;
    }
    GENPRM_CHECK_ARG(c.head_dim > 0 && c.head_dim % 2 == 0,
                     "{}: head_dim {} must be positive and even (rotary embedding)", what, c.head_dim);
    GENPRM_CHECK_ARG(c.rms_norm_eps > 0 && std::isfinite(c.rms_norm_eps),
                     "{}: rms_norm_eps must be positive and finite", what);

    parse_rope(j, what, &c);
    check_no_sliding_window(j, what, c);

    c.bos_token_id = detail::config_int(j, "bos_token_id", what);
    auto eos = j.find("eos_token_id");
    if (eos != j.end() && !eos->is_null()) {
      if (eos->is_array()) {
        for (const Json& e : *eos)
          c.eos_token_ids.push_back(detail::config_int_required(Json{{"eos_token_id", e}}, "eos_token_id", what));
      } else {
        c.eos_token_ids.push_back(detail::config_int_required(j, "eos_token_id", what));
      }
    }
    return c;
  }

  /// HF-style config.json content (round-trips through from_json).
  Json to_json() const {
    Json j = {
        {"architectures", {model_type == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
        {"model_type", model_type},
        {"vocab_size", vocab_size},
        {"hidden_size", hidden_size},
        {"intermediate_size", intermediate_size},
        {"num_hidden_layers", num_hidden_layers},
        {"num_attention_heads", num_attention_heads},
        {"num_key_value_heads", num_key_value_heads},
        {"head_dim", head_dim},
        {"max_position_embeddings", max_position_embeddings},
        {"rms_norm_eps", rms_norm_eps},
        {"rope_theta", rope_theta},
        {"tie_word_embeddings", tie_word_embeddings},
        {"hidden_act", "silu"},
    };
    if (model_type != "qwen2") j["attention_bias"] = attention_bias;
    if (!torch_dtype.empty()) j["torch_dtype"] = torch_dtype;
    j["bos_token_id"] = bos_token_id ? Json(*bos_token_id) : Json(nullptr);
    if (eos_token_ids.empty()) j["eos_token_id"] = nullptr;
    else if (eos_token_ids.size() == 1) j["eos_token_id"] = eos_token_ids[0];
    else j["eos_token_id"] = eos_token_ids;
    return j;
  }

 private:
  static bool is_default_rope(const Json& obj) {
    // {"rope_type": "default"} (or "type"), or neither key.
    for (const char* key : {"rope_type", "type"}) {
      auto it = obj.find(key);
      if (it != obj.end() && !it->is_null()) return it->is_string() && *it == "default";
    }
    return true;
  }

  static void parse_rope(const Json& j, const std::string& what, ModelConfig* c) {
    std::optional<double> top;
    if (j.contains("rope_theta") && !j["rope_theta"].is_null())
      top = json_get<double>(j, "rope_theta", what);
    std::optional<double> nested;
    auto rs = j.find("rope_scaling");
    if (rs != j.end() && !rs->is_null()) {
      GENPRM_CHECK_ARG(rs->is_object() && is_default_rope(*rs),
                       "{}: rope_scaling {} is not supported (only null or default rope)", what, rs->dump());
    }
    auto rp = j.find("rope_parameters");
    if (rp != j.end() && !rp->is_null()) {
      GENPRM_CHECK_ARG(rp->is_object(), "{}: 'rope_parameters' must be an object", what);
      GENPRM_CHECK_ARG(is_default_rope(*rp), "{}: rope_parameters {} use rope scaling, which is not supported",
                       what, rp->dump());
      if (rp->contains("rope_theta")) nested = json_get<double>(*rp, "rope_theta", what + ": rope_parameters");
      double prf = json_get_or<double>(*rp, "partial_rotary_factor", 1.0, what + ": rope_parameters");
      GENPRM_CHECK_ARG(prf == 1.0, "{}: partial_rotary_factor {} is not supported", what, prf);
    }
    GENPRM_CHECK_ARG(!(top && nested) || *top == *nested,
                     "{}: rope_theta {} disagrees with rope_parameters.rope_theta {}", what,
                     top.value_or(0), nested.value_or(0));
    c->rope_theta = nested ? *nested : top ? *top : 10000.0;
    GENPRM_CHECK_ARG(c->rope_theta > 0 && std::isfinite(c->rope_theta),
                     "{}: rope_theta must be positive and finite, got {}", what, c->rope_theta);
    double prf = json_get_or<double>(j, "partial_rotary_factor", 1.0, what);
    GENPRM_CHECK_ARG(prf == 1.0, "{}: partial_rotary_factor {} is not supported", what, prf);
  }

  // HF Qwen2 uses sliding-window attention in layer i only when use_sliding_window is true,
  // sliding_window is set and i >= max_window_layers (or layer_types says so). We only do full
  // attention, so such a config is rejected rather than silently computed differently.
  static void check_no_sliding_window(const Json& j, const std::string& what, const ModelConfig& c) {
    auto lt = j.find("layer_types");
    if (lt != j.end() && !lt->is_null()) {
      GENPRM_CHECK_ARG(lt->is_array(), "{}: 'layer_types' must be a list", what);
      for (size_t i = 0; i < lt->size(); ++i)
        GENPRM_CHECK_ARG((*lt)[i] == "full_attention",
                         "{}: layer_types[{}] = {} is not supported (only full_attention)", what, i,
                         (*lt)[i].dump());
    }
    bool use_sw = json_get_or<bool>(j, "use_sliding_window", false, what);
    bool has_window = j.contains("sliding_window") && !j["sliding_window"].is_null();
    int64_t max_window_layers = detail::config_int(j, "max_window_layers", what).value_or(c.num_hidden_layers);
    GENPRM_CHECK_ARG(!(use_sw && has_window && max_window_layers < c.num_hidden_layers),
                     "{}: sliding-window attention (use_sliding_window with max_window_layers {} < "
                     "num_hidden_layers {}) is not supported",
                     what, max_window_layers, c.num_hidden_layers);
  }
};

}  // namespace genprm
