#pragma once
// Model shapes shared by bench_engine and bench_model:
//   nano     ~50 k parameters: the forward costs next to nothing, so the engine's own host work
//            per step (scheduling, bookkeeping) shows;
//   small    ~33 M parameters (runs on the CPU), tied embeddings;
//   r1-1.5b  DeepSeek-R1-Distill-Qwen-1.5B (for the GPU).
#include <string>

#include "genprm/io/model_config.hpp"
#include "genprm/util/error.hpp"

inline genprm::ModelConfig bench_shape_config(const std::string& shape, const std::string& tool) {
  genprm::ModelConfig c;
  c.model_type = "qwen2";
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 10000.0;
  c.attention_bias = true;
  if (shape == "nano") {
    c.vocab_size = 512;
    c.hidden_size = 64;
    c.intermediate_size = 128;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 16;
    c.tie_word_embeddings = true;
    c.max_position_embeddings = 4096;
  } else if (shape == "small") {
    c.vocab_size = 32000;
    c.hidden_size = 512;
    c.intermediate_size = 1408;
    c.num_hidden_layers = 6;
    c.num_attention_heads = 8;
    c.num_key_value_heads = 2;
    c.head_dim = 64;
    c.tie_word_embeddings = true;
    c.max_position_embeddings = 32768;
  } else if (shape == "r1-1.5b") {
    c.vocab_size = 151936;
    c.hidden_size = 1536;
    c.intermediate_size = 8960;
    c.num_hidden_layers = 28;
    c.num_attention_heads = 12;
    c.num_key_value_heads = 2;
    c.head_dim = 128;
    c.tie_word_embeddings = false;
    c.max_position_embeddings = 131072;
  } else {
    throw genprm::ValueError(tool + ": --shape must be nano, small or r1-1.5b, got " + shape);
  }
  return c;
}
