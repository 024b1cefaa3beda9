// safetensors <-> ATen: zero-copy when aligned (the tensor keeps the mapping alive), a copy when
// not, dtype mapping, save/load round trip.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "genprm/io/safetensors_torch.hpp"

namespace {

const std::string kData = GENPRM_TEST_DATA;

std::string temp_dir() {
  static std::string dir = [] {
    char tmpl[] = "/tmp/genprm_test_io_torch_XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    REQUIRE(d != nullptr);
    return std::string(d);
  }();
  return dir;
}

}  // namespace

TEST_CASE("tiny_qwen2_a tensors are zero-copy views that keep the mapping alive") {
  std::weak_ptr<const void> mapping;
  at::Tensor embed;
  {
    auto ck = genprm::SafetensorsCheckpoint::open(kData + "/tiny_qwen2_a");
    mapping = ck.keep_alive("model.embed_tokens.weight");
    const auto& info = ck.at("model.embed_tokens.weight");
    embed = genprm::to_tensor(ck, "model.embed_tokens.weight");
    CHECK(embed.data_ptr() == static_cast<const void*>(info.data));  // zero-copy
    CHECK((embed.scalar_type() == at::kFloat));
    CHECK((embed.sizes().vec() == std::vector<int64_t>{512, 64}));
    auto all = genprm::load_tensors(ck);
    CHECK(all.size() == 27);
    CHECK((all.at("model.layers.0.self_attn.q_proj.bias").sizes().vec() == std::vector<int64_t>{64}));
  }
  // The checkpoint is gone; the tensor still holds the mapping.
  CHECK_FALSE(mapping.expired());
  CHECK(std::isfinite(embed.sum().item<float>()));
  embed = at::Tensor();
  CHECK(mapping.expired());
}

TEST_CASE("bf16 twin maps to kBFloat16 and equals the float32 weights rounded") {
  auto a = genprm::SafetensorsCheckpoint::open(kData + "/tiny_qwen2_a");
  auto b = genprm::SafetensorsCheckpoint::open(kData + "/tiny_qwen2_a_bf16");
  for (const std::string& n : a.names()) {
    at::Tensor tb = genprm::to_tensor(b, n);
    REQUIRE((tb.scalar_type() == at::kBFloat16));
    CHECK_MESSAGE(at::equal(genprm::to_tensor(a, n).to(at::kBFloat16), tb), n);
  }
}

TEST_CASE("a misaligned tensor is copied, not aliased") {
  // U8 [1] at offset 0, then F32 [2] at offset 1: misaligned for float.
  std::string header = R"({"u":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"f":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";
  while ((8 + header.size()) % 8 != 0) header += ' ';
  std::string img(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) img[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  img += header;
  img += '\x07';
  const float vals[2] = {1.5f, -2.25f};
  img.append(reinterpret_cast<const char*>(vals), sizeof(vals));
  const std::string p = temp_dir() + "/misaligned.safetensors";
  std::ofstream(p, std::ios::binary).write(img.data(), static_cast<std::streamsize>(img.size()));
  auto f = genprm::SafetensorsFile::open(p);
  const auto& info = f.at("f");
  REQUIRE(reinterpret_cast<uintptr_t>(info.data) % 4 != 0);
  at::Tensor t = genprm::to_tensor(info, f.keep_alive());
  CHECK(t.data_ptr() != static_cast<const void*>(info.data));
  CHECK(t[0].item<float>() == 1.5f);
  CHECK(t[1].item<float>() == -2.25f);
  CHECK(genprm::to_tensor(f.at("u"), f.keep_alive()).item<uint8_t>() == 7);
}

TEST_CASE("save_safetensors round-trips every dtype, including non-contiguous input") {
  std::map<std::string, at::Tensor> ts;
  at::manual_seed(0);
  ts["f32_t"] = at::randn({3, 4}).t();  // non-contiguous
  ts["f64"] = at::randn({2, 2}, at::kDouble);
  ts["f16"] = at::randn({5}).to(at::kHalf);
  ts["bf16"] = at::randn({2, 3}).to(at::kBFloat16);
  ts["i64"] = at::arange(6, at::kLong).reshape({2, 3});
  ts["i32"] = at::arange(4, at::kInt);
  ts["i16"] = at::arange(3, at::kShort);
  ts["i8"] = at::arange(-2, 2, at::kChar);
  ts["u8"] = at::arange(5, at::kByte);
  ts["b"] = at::randn({4}) > 0;
  ts["scalar"] = at::scalar_tensor(3.0);
  const std::string p = temp_dir() + "/roundtrip.safetensors";
  genprm::save_safetensors(p, ts, {{"format", "pt"}});
  auto ck = genprm::SafetensorsCheckpoint::open(p);
  CHECK(ck.metadata().at("format") == "pt");
  for (const auto& [name, t] : ts) {
    at::Tensor r = genprm::to_tensor(ck, name);
    CHECK_MESSAGE((r.scalar_type() == t.scalar_type()), name);
    CHECK_MESSAGE(at::equal(r, t.contiguous()), name);
  }
  CHECK_THROWS_WITH_AS(genprm::save_safetensors(p, {{"c", at::zeros({2}, at::kComplexFloat)}}),
                       doctest::Contains("tensor 'c'"), genprm::ValueError);
}
