#pragma once
// Random Qwen2 weights under their Hugging Face tensor names, and a checkpoint directory written
// with the project's own writer (save_safetensors + ModelConfig::to_json). For tests and
// benchmarks that need a model of a given shape without downloading one (links torch).
//
//   random_qwen2_weights(cfg, opts):  every matrix and bias ~ N(0, stddev) (the embedding
//       ~ N(0, embed_stddev) when that is set), norms ~ 1 + N(0, norm_stddev); lm_head only when
//       !cfg.tie_word_embeddings, q/k/v biases only when cfg.attention_bias. stddev 0 gives zeros.
//   write_random_qwen2_checkpoint(dir, cfg, opts, overrides):  writes dir/model.safetensors and
//       dir/config.json (dir created); tensors in `overrides` replace (or add to) the random ones,
//       so a caller can craft e.g. the embedding and lm_head of an otherwise random model.
#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "genprm/io/model_config.hpp"
#include "genprm/io/safetensors_torch.hpp"
#include "genprm/util/error.hpp"

namespace genprm {

struct RandomWeightsOptions {
  std::optional<uint64_t> seed;         // at::manual_seed(*seed) first; unset: torch's current state
  double stddev = 0.02;                 // matrices and biases
  std::optional<double> embed_stddev;   // model.embed_tokens.weight; unset: stddev
  double norm_stddev = 0.0;             // RMSNorm weights ~ 1 + N(0, norm_stddev)
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
};

inline std::map<std::string, at::Tensor> random_qwen2_weights(const ModelConfig& c,
                                                              const RandomWeightsOptions& o = {}) {
  GENPRM_CHECK_ARG(c.hidden_size > 0 && c.num_attention_heads > 0 && c.num_key_value_heads > 0,
                   "random_qwen2_weights: config needs hidden_size, num_attention_heads and "
                   "num_key_value_heads > 0");
  if (o.seed) at::manual_seed(*o.seed);
  const auto opts = at::TensorOptions().dtype(o.dtype).device(o.device);
  auto normal = [&](std::vector<int64_t> shape, double sd) {
    return sd == 0.0 ? at::zeros(shape, opts) : at::randn(shape, opts) * sd;
  };
  auto w = [&](std::vector<int64_t> shape) { return normal(std::move(shape), o.stddev); };
  auto norm = [&]() { return o.norm_stddev == 0.0 ? at::ones({c.hidden_size}, opts)
                                                  : 1.0 + at::randn({c.hidden_size}, opts) * o.norm_stddev; };
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  const int64_t hd = c.head_dim > 0 ? c.head_dim : H / c.num_attention_heads;
  const int64_t q = c.num_attention_heads * hd, kv = c.num_key_value_heads * hd;
  std::map<std::string, at::Tensor> t;
  t["model.embed_tokens.weight"] = normal({c.vocab_size, H}, o.embed_stddev.value_or(o.stddev));
  if (!c.tie_word_embeddings) t["lm_head.weight"] = w({c.vocab_size, H});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    // Drawn in this order (weight, bias per projection) so a seed gives the same tensors as the
    // prm_engine tests' former writer.
    t[p + "self_attn.q_proj.weight"] = w({q, H});
    if (c.attention_bias) t[p + "self_attn.q_proj.bias"] = w({q});
    t[p + "self_attn.k_proj.weight"] = w({kv, H});
    if (c.attention_bias) t[p + "self_attn.k_proj.bias"] = w({kv});
    t[p + "self_attn.v_proj.weight"] = w({kv, H});
    if (c.attention_bias) t[p + "self_attn.v_proj.bias"] = w({kv});
    t[p + "self_attn.o_proj.weight"] = w({H, q});
    t[p + "mlp.gate_proj.weight"] = w({I, H});
    t[p + "mlp.up_proj.weight"] = w({I, H});
    t[p + "mlp.down_proj.weight"] = w({H, I});
    t[p + "input_layernorm.weight"] = norm();
    t[p + "post_attention_layernorm.weight"] = norm();
  }
  t["model.norm.weight"] = norm();
  return t;
}

/// Writes `dir`/model.safetensors (random weights, then `overrides` on top) and `dir`/config.json.
/// Returns `dir`.
inline std::string write_random_qwen2_checkpoint(const std::string& dir, const ModelConfig& c,
                                                 const RandomWeightsOptions& o = {},
                                                 const std::map<std::string, at::Tensor>& overrides = {}) {
  std::filesystem::create_directories(dir);
  std::map<std::string, at::Tensor> w = random_qwen2_weights(c, o);
  for (const auto& [name, tensor] : overrides) w[name] = tensor;
  save_safetensors(dir + "/model.safetensors", w, {{"format", "pt"}});
  std::ofstream f(dir + "/config.json");
  f << c.to_json().dump(2) << "\n";
  GENPRM_CHECK(f.good(), "write_random_qwen2_checkpoint: cannot write {}/config.json", dir);
  return dir;
}

}  // namespace genprm
