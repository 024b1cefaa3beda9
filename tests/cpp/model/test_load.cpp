// Loading: configuration-driven shapes, weight dtype conversion, sharded checkpoints, errors that
// name the file and tensor; the building blocks against their definitions.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <string>

#include "genprm/io/safetensors_torch.hpp"
#include "genprm/util/fs.hpp"
#include "model_test_util.hpp"

using namespace genprm;
using genprm::test::max_abs_diff;

namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("genprm_model_" + name + "_" + std::to_string(::getpid()));
  remove_tree(p.string());
  fs::create_directories(p);
  return p;
}

void write_config(const fs::path& dir, const ModelConfig& c) {
  std::ofstream(dir / "config.json") << c.to_json().dump(2);
}

// BF16 / sharded F16 checkpoints written by the project's writer, loaded on `dev`.
void check_checkpoint_formats(const at::Device dev) {
  test::backtrace_on_crash();
  const ModelConfig c = test::small_config(80, 32, 2, 4, 2, 0, 10000.0, false);
  const auto w = test::random_weights(c, 11);
  const Qwen2Model ref = Qwen2Model::from_tensors(c, w, dev, at::kFloat);
  const at::Tensor ids = test::ids_tensor({5, 17, 3, 79, 0, 42});
  const at::Tensor want = ref.forward_full(ids).cpu();

  // BF16 weights, float32 compute: equals the in-memory model built from the same rounded weights.
  std::map<std::string, at::Tensor> wb;
  for (const auto& [k, v] : w) wb[k] = v.to(at::kBFloat16);
  const fs::path dir = temp_dir("bf16");
  write_config(dir, c);
  save_safetensors((dir / "model.safetensors").string(), wb);
  const Qwen2Model loaded = Qwen2Model::load(dir.string(), dev, at::kFloat);
  const Qwen2Model rounded = Qwen2Model::from_tensors(c, wb, dev, at::kFloat);
  CHECK(max_abs_diff(loaded.forward_full(ids), rounded.forward_full(ids)) == 0.0);
  const double bf16_vs_f32 = max_abs_diff(loaded.forward_full(ids), want);
  MESSAGE(fmt::format("BF16-stored weights vs F32: max |logit diff| {:.3g}", bf16_vs_f32));
  CHECK(bf16_vs_f32 > 0);
  CHECK(bf16_vs_f32 < 0.2);

  // Sharded F16 checkpoint (index + 3 shards), float32 compute.
  const fs::path sh = temp_dir("sharded");
  write_config(sh, c);
  std::map<std::string, at::Tensor> shard[3];
  Json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", Json::object()}};
  int k = 0;
  for (const auto& [name, v] : w) {
    const int s = k++ % 3;
    shard[s][name] = v.to(at::kHalf);
    index["weight_map"][name] = fmt::format("model-{:05d}-of-00003.safetensors", s + 1);
  }
  for (int s = 0; s < 3; ++s)
    save_safetensors((sh / fmt::format("model-{:05d}-of-00003.safetensors", s + 1)).string(), shard[s]);
  std::ofstream(sh / "model.safetensors.index.json") << index.dump();
  const Qwen2Model sharded = Qwen2Model::load(sh.string(), dev, at::kFloat);
  std::map<std::string, at::Tensor> wh;
  for (const auto& [name, v] : w) wh[name] = v.to(at::kHalf);
  CHECK(max_abs_diff(sharded.forward_full(ids), Qwen2Model::from_tensors(c, wh, dev).forward_full(ids)) == 0.0);

  // float16 compute runs and stays close.
  const Qwen2Model half = Qwen2Model::load(sh.string(), dev, at::kHalf);
  const double half_diff = max_abs_diff(half.forward_full(ids), want);
  MESSAGE(fmt::format("float16 compute vs float32: max |logit diff| {:.3g}", half_diff));
  CHECK(half_diff < 0.2);
  remove_tree(dir.string());
  remove_tree(sh.string());
}

}  // namespace

TEST_CASE("load: checkpoint in BF16 / F16 / sharded gives the in-memory model's logits (CPU)") {
  check_checkpoint_formats(at::kCPU);
}

TEST_CASE("load: checkpoint formats on the test device") {
  check_checkpoint_formats(test::test_device());
}

TEST_CASE("load: tied embeddings ignore a missing lm_head; untied require it") {
  ModelConfig c = test::small_config(50, 16, 1, 2, 1, 0, 10000.0, true);
  auto w = test::random_weights(c, 2);
  const Qwen2Model tied = Qwen2Model::from_tensors(c, w);
  CHECK(tied.forward_full(test::ids_tensor({1, 2})).size(1) == 50);
  c.tie_word_embeddings = false;
  CHECK_THROWS_WITH_AS(Qwen2Model::from_tensors(c, w), doctest::Contains("missing tensor 'lm_head.weight'"),
                       ValueError);
}

TEST_CASE("load: wrong shapes, dtypes and missing biases name the tensor") {
  const ModelConfig c = test::small_config(50, 16, 2, 2, 1, 0, 10000.0, false);
  auto w = test::random_weights(c, 3);
  auto bad = w;
  bad["model.layers.1.self_attn.k_proj.weight"] = at::zeros({16, 16});
  CHECK_THROWS_WITH_AS(Qwen2Model::from_tensors(c, bad),
                       doctest::Contains("'model.layers.1.self_attn.k_proj.weight' has shape [16, 16], config.json "
                                         "implies [8, 16]"),
                       ValueError);
  bad = w;
  bad["model.norm.weight"] = at::zeros({16}, at::kLong);
  CHECK_THROWS_WITH_AS(Qwen2Model::from_tensors(c, bad), doctest::Contains("'model.norm.weight' has dtype Long"),
                       ValueError);
  bad = w;
  bad.erase("model.layers.0.self_attn.q_proj.bias");
  CHECK_THROWS_WITH_AS(Qwen2Model::from_tensors(c, bad), doctest::Contains("q_proj.bias"), ValueError);
  CHECK_THROWS_WITH_AS(Qwen2Model::load("/nonexistent/model"), doctest::Contains("/nonexistent/model"), ValueError);
  CHECK_THROWS_AS(Qwen2Model::from_tensors(c, w, at::kCPU, at::kDouble), ValueError);
}

TEST_CASE("ops: RMSNorm, rotary embedding and attention against their definitions") {
  at::manual_seed(0);
  // RMSNorm: x / sqrt(mean(x^2) + eps) * w, statistics in float32 even for bf16 input.
  const at::Tensor x = at::randn({5, 12});
  const at::Tensor w = at::randn({12});
  const at::Tensor want = x / at::sqrt(x.pow(2).mean({-1}, true) + 1e-6) * w;
  CHECK(max_abs_diff(model::rms_norm(x, w, 1e-6), want) < 1e-5);
  CHECK((model::rms_norm(x.to(at::kBFloat16), w.to(at::kBFloat16), 1e-6).scalar_type() == at::kBFloat16));

  // RoPE: pair (i, i + d/2) rotated by angle pos * theta^(-2i/d).
  const int64_t d = 8;
  const double theta = 100.0;
  const model::RotaryEmbedding rope(d, theta, at::kCPU);
  const at::Tensor pos = test::ids_tensor({0, 3, 17});
  const auto [cos, sin] = rope.cos_sin(pos, at::kFloat);
  const at::Tensor q = at::randn({3, 2, d});
  const at::Tensor got = model::apply_rotary(q, cos, sin);
  for (int t = 0; t < 3; ++t)
    for (int h = 0; h < 2; ++h)
      for (int i = 0; i < d / 2; ++i) {
        const double ang = double(pos[t].item<int64_t>()) * std::pow(theta, -2.0 * i / d);
        const double a = q[t][h][i].item<double>(), b = q[t][h][i + d / 2].item<double>();
        CHECK(got[t][h][i].item<double>() == doctest::Approx(a * std::cos(ang) - b * std::sin(ang)).epsilon(1e-4));
        CHECK(got[t][h][i + d / 2].item<double>() ==
              doctest::Approx(b * std::cos(ang) + a * std::sin(ang)).epsilon(1e-4));
      }
  CHECK(max_abs_diff(got[0], q[0]) == 0.0);  // position 0 is the identity

  // Causal GQA attention with a cached prefix against a softmax written out.
  const at::Tensor qq = at::randn({3, 4, 6}), kk = at::randn({5, 2, 6}), vv = at::randn({5, 2, 6});
  const at::Tensor out = model::causal_attention(qq, kk, vv, 0.5);
  for (int r = 0; r < 3; ++r)
    for (int h = 0; h < 4; ++h) {
      const int64_t visible = 2 + r + 1;  // prefix 2
      const at::Tensor kr = kk.narrow(0, 0, visible).select(1, h / 2), vr = vv.narrow(0, 0, visible).select(1, h / 2);
      const at::Tensor p = at::softmax(at::matmul(kr, qq[r][h]) * 0.5, 0);
      CHECK(max_abs_diff(out[r][h], at::matmul(p, vr)) < 1e-5);
    }
}
