#pragma once
// Writes small Qwen2 checkpoints whose vocabulary covers the R1-Distill tokenizer, with the
// project's writer (io/safetensors_torch.hpp save_safetensors + ModelConfig::to_json), plus the
// tokenizer files of tests/data/r1distill_tokenizer. Used by the prm_engine tests and by
// benchmarks/bench_genprm.cpp.
//   random:  every weight ~ N(0, 0.02), norms ~ 1 + N(0, 0.02) (a "random GenPRM").
//   unigram: all layer weights zero and a constant embedding, so the next-token distribution is
//            the same at every position: logits = `token_logits` (others -30). Rewards then have
//            a closed form, which checks the tracked log-probabilities end to end.
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <ATen/ATen.h>

#include "genprm/io/model_config.hpp"
#include "genprm/io/safetensors_torch.hpp"

namespace prmtest {

struct CheckpointShape {
  int64_t vocab_size = 151936;  // DeepSeek-R1-Distill-Qwen's padded vocabulary
  int64_t hidden_size = 64;
  int64_t intermediate_size = 128;
  int64_t layers = 2;
  int64_t heads = 4;
  int64_t kv_heads = 2;
  int64_t max_position_embeddings = 32768;
};

inline void copy_r1_tokenizer(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string src = std::string(GENPRM_TEST_DATA) + "/r1distill_tokenizer";
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(src + "/" + f, dir + "/" + f, fs::copy_options::overwrite_existing);
}

inline genprm::ModelConfig checkpoint_config(const CheckpointShape& s) {
  genprm::ModelConfig c;
  c.vocab_size = s.vocab_size;
  c.hidden_size = s.hidden_size;
  c.intermediate_size = s.intermediate_size;
  c.num_hidden_layers = s.layers;
  c.num_attention_heads = s.heads;
  c.num_key_value_heads = s.kv_heads;
  c.head_dim = s.hidden_size / s.heads;
  c.max_position_embeddings = s.max_position_embeddings;
  c.rope_theta = 10000.0;
  c.torch_dtype = "float32";
  c.bos_token_id = 151646;
  c.eos_token_ids = {151643};
  return c;
}

/// Writes config.json, model.safetensors and the tokenizer into `dir` (created).
/// `token_logits` non-empty: the unigram model described above.
inline std::string write_checkpoint(const std::string& dir, const CheckpointShape& s, uint64_t seed,
                                    const std::map<int64_t, float>& token_logits = {}) {
  std::filesystem::create_directories(dir);
  at::manual_seed(seed);
  const bool unigram = !token_logits.empty();
  const int64_t h = s.hidden_size, hd = s.hidden_size / s.heads, q = s.heads * hd, kv = s.kv_heads * hd;
  auto normal = [&](std::initializer_list<int64_t> shape) {
    return unigram ? at::zeros(shape, at::kFloat) : at::randn(shape, at::kFloat) * 0.02;
  };
  auto norm = [&]() { return unigram ? at::ones({h}, at::kFloat) : 1.0 + at::randn({h}, at::kFloat) * 0.02; };
  std::map<std::string, at::Tensor> w;
  if (unigram) {
    // Residual stream = [10, 0, ...] everywhere; final RMSNorm turns it into [sqrt(h), 0, ...].
    at::Tensor emb = at::zeros({s.vocab_size, h}, at::kFloat);
    emb.select(1, 0).fill_(10.0);
    w["model.embed_tokens.weight"] = emb;
    at::Tensor head = at::zeros({s.vocab_size, h}, at::kFloat);
    const float scale = 1.0f / std::sqrt(static_cast<float>(h));
    head.select(1, 0).fill_(-30.0f * scale);
    for (const auto& [id, logit] : token_logits) head.index_put_({id, 0}, logit * scale);
    w["lm_head.weight"] = head;
  } else {
    w["model.embed_tokens.weight"] = normal({s.vocab_size, h});
    w["lm_head.weight"] = normal({s.vocab_size, h});
  }
  for (int64_t i = 0; i < s.layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    w[p + "self_attn.q_proj.weight"] = normal({q, h});
    w[p + "self_attn.q_proj.bias"] = normal({q});
    w[p + "self_attn.k_proj.weight"] = normal({kv, h});
    w[p + "self_attn.k_proj.bias"] = normal({kv});
    w[p + "self_attn.v_proj.weight"] = normal({kv, h});
    w[p + "self_attn.v_proj.bias"] = normal({kv});
    w[p + "self_attn.o_proj.weight"] = normal({h, q});
    w[p + "mlp.gate_proj.weight"] = normal({s.intermediate_size, h});
    w[p + "mlp.up_proj.weight"] = normal({s.intermediate_size, h});
    w[p + "mlp.down_proj.weight"] = normal({h, s.intermediate_size});
    w[p + "input_layernorm.weight"] = norm();
    w[p + "post_attention_layernorm.weight"] = norm();
  }
  w["model.norm.weight"] = norm();
  genprm::save_safetensors(dir + "/model.safetensors", w, {{"format", "pt"}});
  std::ofstream(dir + "/config.json") << checkpoint_config(s).to_json().dump(2) << "\n";
  copy_r1_tokenizer(dir);
  return dir;
}

}  // namespace prmtest
