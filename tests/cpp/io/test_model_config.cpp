// config.json -> ModelConfig: the fixture's numbers, rope forms, tied embeddings, rejections.
#include <doctest/doctest.h>

#include <functional>
#include <initializer_list>
#include <string>

#include "genprm/io/model_config.hpp"

using genprm::Json;
using genprm::ModelConfig;

namespace {

Json base() {
  return Json::parse(R"({
    "model_type": "qwen2", "vocab_size": 1000, "hidden_size": 128, "intermediate_size": 256,
    "num_hidden_layers": 3, "num_attention_heads": 8, "num_key_value_heads": 2,
    "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 1000000.0,
    "tie_word_embeddings": true, "torch_dtype": "bfloat16", "bos_token_id": 5,
    "eos_token_id": [7, 8], "rope_scaling": null, "sliding_window": 4096,
    "use_sliding_window": false, "max_window_layers": 3, "hidden_act": "silu"})");
}

void expect_rejected(const Json& j, std::initializer_list<std::string> parts) {
  try {
    ModelConfig::from_json(j, "cfg/config.json");
    FAIL("expected genprm::ValueError for " << j.dump());
  } catch (const genprm::ValueError& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    CHECK(msg.find("cfg/config.json") != std::string::npos);
    for (const auto& p : parts) CHECK_MESSAGE(msg.find(p) != std::string::npos, "missing '" << p << "'");
  }
}

}  // namespace

TEST_CASE("tiny_qwen2_a config parses to the right numbers") {
  ModelConfig c = ModelConfig::from_file(std::string(GENPRM_TEST_DATA) + "/tiny_qwen2_a/config.json");
  CHECK(c.model_type == "qwen2");
  CHECK(c.vocab_size == 512);
  CHECK(c.hidden_size == 64);
  CHECK(c.intermediate_size == 176);
  CHECK(c.num_hidden_layers == 2);
  CHECK(c.num_attention_heads == 4);
  CHECK(c.num_key_value_heads == 2);
  CHECK(c.head_dim == 16);
  CHECK(c.max_position_embeddings == 2048);
  CHECK(c.rms_norm_eps == doctest::Approx(1e-6).epsilon(1e-12));
  CHECK(c.rope_theta == 10000.0);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK(c.attention_bias);
  CHECK(c.torch_dtype == "float32");  // from "dtype"
  REQUIRE(c.bos_token_id.has_value());
  CHECK(*c.bos_token_id == 1);
  CHECK(c.eos_token_ids == std::vector<int64_t>{2});
}

TEST_CASE("fields, defaults and the to_json round trip") {
  ModelConfig c = ModelConfig::from_json(base(), "cfg");
  CHECK(c.head_dim == 16);
  CHECK(c.rope_theta == 1e6);
  CHECK(c.rms_norm_eps == doctest::Approx(1e-5));
  CHECK(c.tie_word_embeddings);
  CHECK(c.torch_dtype == "bfloat16");
  CHECK(c.eos_token_ids == std::vector<int64_t>{7, 8});
  ModelConfig r = ModelConfig::from_json(c.to_json(), "roundtrip");
  CHECK(r.to_json() == c.to_json());
  CHECK(r.eos_token_ids == c.eos_token_ids);

  Json j = base();
  j.erase("num_key_value_heads");
  j.erase("tie_word_embeddings");
  j.erase("bos_token_id");
  j["eos_token_id"] = nullptr;
  j.erase("torch_dtype");
  j["dtype"] = "float16";
  j["head_dim"] = 32;  // explicit head_dim wins over hidden / heads
  c = ModelConfig::from_json(j, "cfg");
  CHECK(c.num_key_value_heads == 8);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK_FALSE(c.bos_token_id.has_value());
  CHECK(c.eos_token_ids.empty());
  CHECK(c.torch_dtype == "float16");
  CHECK(c.head_dim == 32);
}

TEST_CASE("rope_theta: top level, inside rope_parameters, both agreeing, default") {
  Json j = base();
  j.erase("rope_theta");
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 500000.0}};
  CHECK(ModelConfig::from_json(j, "cfg").rope_theta == 500000.0);
  j["rope_theta"] = 500000.0;
  CHECK(ModelConfig::from_json(j, "cfg").rope_theta == 500000.0);
  j["rope_theta"] = 10000.0;
  expect_rejected(j, {"rope_theta 10000", "disagrees", "500000"});
  j.erase("rope_theta");
  j.erase("rope_parameters");
  CHECK(ModelConfig::from_json(j, "cfg").rope_theta == 10000.0);
  j["rope_scaling"] = {{"rope_type", "default"}};
  CHECK_NOTHROW(ModelConfig::from_json(j, "cfg"));
}

TEST_CASE("rope scaling, unsupported model types and features are rejected naming the file") {
  Json j = base();
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  expect_rejected(j, {"rope_scaling", "linear", "not supported"});
  j = base();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  expect_rejected(j, {"rope_scaling", "yarn"});
  j = base();
  j["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 1e6}};
  expect_rejected(j, {"rope_parameters", "llama3"});
  j = base();
  j["model_type"] = "mistral";
  expect_rejected(j, {"unsupported model_type 'mistral'"});
  j = base();
  j.erase("model_type");
  expect_rejected(j, {"model_type"});
  j = base();
  j["hidden_act"] = "gelu";
  expect_rejected(j, {"hidden_act 'gelu'"});
  j = base();
  j["use_sliding_window"] = true;
  j["max_window_layers"] = 1;
  expect_rejected(j, {"sliding-window"});
  j["max_window_layers"] = 3;  // no layer reaches the window: full attention everywhere
  CHECK_NOTHROW(ModelConfig::from_json(j, "cfg"));
  j = base();
  j["layer_types"] = {"full_attention", "sliding_attention", "full_attention"};
  expect_rejected(j, {"layer_types[1]", "sliding_attention"});
  j = base();
  j["partial_rotary_factor"] = 0.5;
  expect_rejected(j, {"partial_rotary_factor"});
}

TEST_CASE("shape rules: divisibility, positivity, types") {
  Json j = base();
  j["num_key_value_heads"] = 3;
  expect_rejected(j, {"num_attention_heads 8", "num_key_value_heads 3"});
  j = base();
  j["hidden_size"] = 100;
  expect_rejected(j, {"hidden_size 100", "num_attention_heads 8"});
  j["head_dim"] = 16;  // allowed with an explicit head_dim
  CHECK(ModelConfig::from_json(j, "cfg").head_dim == 16);
  j["head_dim"] = 15;
  expect_rejected(j, {"head_dim 15", "even"});
  j = base();
  j["vocab_size"] = 0;
  expect_rejected(j, {"'vocab_size' must be positive"});
  j = base();
  j["hidden_size"] = "big";
  expect_rejected(j, {"'hidden_size' must be an integer", "\"big\""});
  j = base();
  j.erase("intermediate_size");
  expect_rejected(j, {"missing required field 'intermediate_size'"});
  j = base();
  j["eos_token_id"] = {1, "x"};
  expect_rejected(j, {"eos_token_id"});
  // Found by fuzz_model_config: floats and out-of-range integers must not be truncated.
  j = base();
  j["num_hidden_layers"] = 1.5e91;
  expect_rejected(j, {"'num_hidden_layers' must be an integer"});
  j = base();
  j["num_attention_heads"] = 8.0;
  expect_rejected(j, {"'num_attention_heads' must be an integer"});
  j = base();
  j["vocab_size"] = 18446744073709551615ull;
  expect_rejected(j, {"'vocab_size' must be an integer"});
  j = base();
  j["eos_token_id"] = {1, 2.5};
  expect_rejected(j, {"'eos_token_id' must be an integer"});
  j = base();
  j["rope_scaling"] = {{"rope_type", 3}};
  expect_rejected(j, {"rope_scaling"});
  j = base();
  j["rope_theta"] = 1e308 * 10;
  expect_rejected(j, {"rope_theta must be positive and finite"});
  CHECK_THROWS_AS(ModelConfig::from_json(Json::array(), "cfg/config.json"), genprm::ValueError);
}

TEST_CASE("llama-style configs: same fields, attention bias from the config") {
  Json j = base();
  j["model_type"] = "llama";
  ModelConfig c = ModelConfig::from_json(j, "cfg");
  CHECK_FALSE(c.attention_bias);
  j["attention_bias"] = true;
  CHECK(ModelConfig::from_json(j, "cfg").attention_bias);
  j["mlp_bias"] = true;
  expect_rejected(j, {"mlp_bias"});
  CHECK(ModelConfig::from_json(ModelConfig::from_json(base(), "c").to_json(), "c").attention_bias);
}

TEST_CASE("from_file names a missing or malformed file") {
  CHECK_THROWS_WITH_AS(ModelConfig::from_file("/nonexistent/config.json"),
                       "/nonexistent/config.json: cannot open file", genprm::ValueError);
}

TEST_CASE("a DeepSeek-R1-Distill-Qwen-1.5B config (GenPRM-1.5B's family) is accepted as is") {
  // Its sliding_window / max_window_layers are inert: use_sliding_window is false.
  Json j = Json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 1536, "initializer_range": 0.02,
    "intermediate_size": 8960, "max_position_embeddings": 131072, "max_window_layers": 21,
    "model_type": "qwen2", "num_attention_heads": 12, "num_hidden_layers": 28,
    "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 10000, "sliding_window": 4096,
    "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.44.0",
    "use_cache": true, "use_mrope": false, "use_sliding_window": false, "vocab_size": 151936})");
  ModelConfig c = ModelConfig::from_json(j, "r1/config.json");
  CHECK(c.head_dim == 128);
  CHECK(c.rope_theta == 10000.0);  // an integer in the file
  CHECK(c.num_key_value_heads == 2);
  CHECK(c.torch_dtype == "bfloat16");
  CHECK(c.eos_token_ids == std::vector<int64_t>{151643});
  CHECK(c.max_position_embeddings == 131072);
}

TEST_CASE("config text: number overflow and duplicate keys are ValueErrors naming the file") {
  // Found by fuzz_model_config: nlohmann reports "1e999" as out_of_range, not parse_error.
  CHECK_THROWS_WITH_AS(ModelConfig::from_json_text(R"({"model_type": "qwen2", "rope_theta": 200e666})", "c.json"),
                       doctest::Contains("c.json: invalid JSON"), genprm::ValueError);
  CHECK_THROWS_WITH_AS(ModelConfig::from_json_text(R"({"model_type": "qwen2", "model_type": "llama"})", "c.json"),
                       doctest::Contains("c.json: duplicate name 'model_type'"), genprm::ValueError);
  ModelConfig c = ModelConfig::from_json_text(base().dump(), "c.json");
  CHECK(c.hidden_size == 128);
}
