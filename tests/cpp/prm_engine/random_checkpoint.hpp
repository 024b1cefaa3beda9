#pragma once
// Writes small Qwen2 checkpoints whose vocabulary covers the R1-Distill tokenizer, with the
// project's writer (io/random_checkpoint.hpp write_random_qwen2_checkpoint), plus the tokenizer
// files of tests/data/r1distill_tokenizer. Used by the prm_engine tests.
//   random:  every weight ~ N(0, 0.02), norms ~ 1 + N(0, 0.02) (a "random GenPRM").
//   unigram: all layer weights zero and a constant embedding, so the next-token distribution is
//            the same at every position: logits = `token_logits` (others -30). Rewards then have
//            a closed form, which checks the tracked log-probabilities end to end.
#include <cmath>
#include <filesystem>
#include <map>
#include <string>

#include <ATen/ATen.h>

#include "genprm/io/model_config.hpp"
#include "genprm/io/random_checkpoint.hpp"

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
  genprm::RandomWeightsOptions o;
  o.seed = seed;
  std::map<std::string, at::Tensor> overrides;
  if (token_logits.empty()) {
    o.norm_stddev = 0.02;
  } else {
    // Layers all zero, norms one. Residual stream = [10, 0, ...] everywhere; final RMSNorm turns
    // it into [sqrt(h), 0, ...].
    o.stddev = 0.0;
    const int64_t h = s.hidden_size;
    at::Tensor emb = at::zeros({s.vocab_size, h}, at::kFloat);
    emb.select(1, 0).fill_(10.0);
    overrides["model.embed_tokens.weight"] = emb;
    at::Tensor head = at::zeros({s.vocab_size, h}, at::kFloat);
    const float scale = 1.0f / std::sqrt(static_cast<float>(h));
    head.select(1, 0).fill_(-30.0f * scale);
    for (const auto& [id, logit] : token_logits) head.index_put_({id, 0}, logit * scale);
    overrides["lm_head.weight"] = head;
  }
  genprm::write_random_qwen2_checkpoint(dir, checkpoint_config(s), o, overrides);
  copy_r1_tokenizer(dir);
  return dir;
}

}  // namespace prmtest
