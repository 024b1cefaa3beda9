// safetensors reader/writer: fixtures load, every rejection of issue 2 point 7 names file and tensor.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "genprm/io/safetensors.hpp"

using genprm::DType;
using genprm::HostTensor;
using genprm::SafetensorsCheckpoint;
using genprm::SafetensorsFile;

namespace {

const std::string kData = GENPRM_TEST_DATA;

std::string temp_dir() {
  static std::string dir = [] {
    char tmpl[] = "/tmp/genprm_test_io_XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    REQUIRE(d != nullptr);
    return std::string(d);
  }();
  return dir;
}

std::string write_bytes(const std::string& name, const std::string& bytes) {
  std::string p = temp_dir() + "/" + name;
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return p;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// An image: 8-byte length, the header text as given, then `data` bytes.
std::string image(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += header;
  out += std::string(data_bytes, '\x01');
  return out;
}

// Runs `fn`, requires a ValueError whose message contains every one of `parts`.
void expect_value_error(const std::function<void()>& fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    FAIL("expected genprm::ValueError");
  } catch (const genprm::ValueError& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    for (const std::string& p : parts) CHECK_MESSAGE(msg.find(p) != std::string::npos, "missing '" << p << "'");
  }
}

void expect_open_error(const std::string& name, const std::string& bytes,
                       std::initializer_list<std::string> parts) {
  const std::string p = write_bytes(name, bytes);
  INFO("file " << name);
  expect_value_error([&] { SafetensorsFile::open(p); }, parts);
  expect_value_error([&] { SafetensorsFile::open(p); }, {p});  // every message names the file
}

HostTensor host(DType d, std::vector<int64_t> shape, uint32_t seed) {
  HostTensor t{d, std::move(shape), {}};
  size_t n = 1;
  for (int64_t s : t.shape) n *= static_cast<size_t>(s);
  t.bytes.resize(n * genprm::dtype_size(d));
  std::mt19937 rng(seed);
  for (auto& b : t.bytes) b = static_cast<uint8_t>(rng());
  if (d == DType::BOOL)
    for (auto& b : t.bytes) b &= 1;
  return t;
}

uint16_t f32_to_bf16_rne(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t lsb = (u >> 16) & 1;
  return static_cast<uint16_t>((u + 0x7fff + lsb) >> 16);
}

}  // namespace

TEST_CASE("dtype names, sizes and parsing") {
  for (DType d : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32, DType::I16,
                  DType::I8, DType::U8, DType::BOOL}) {
    CHECK(genprm::parse_dtype(genprm::dtype_name(d), "x") == d);
  }
  CHECK(genprm::dtype_size(DType::F64) == 8);
  CHECK(genprm::dtype_size(DType::BF16) == 2);
  CHECK(genprm::dtype_size(DType::BOOL) == 1);
  expect_value_error([] { genprm::parse_dtype("F8_E4M3", "f.safetensors: tensor 'w'"); },
                     {"f.safetensors: tensor 'w'", "F8_E4M3"});
}

TEST_CASE("tiny_qwen2_a loads with the expected names, dtypes and shapes") {
  auto ck = SafetensorsCheckpoint::open(kData + "/tiny_qwen2_a");
  CHECK(ck.size() == 27);  // embed + 2 layers x 12 + norm + lm_head
  const auto& e = ck.at("model.embed_tokens.weight");
  CHECK(e.dtype == DType::F32);
  CHECK(e.shape == std::vector<int64_t>{512, 64});
  CHECK(e.nbytes == 512 * 64 * 4);
  CHECK(ck.at("model.layers.1.self_attn.k_proj.weight").shape == std::vector<int64_t>{32, 64});
  CHECK(ck.at("model.layers.0.self_attn.q_proj.bias").shape == std::vector<int64_t>{64});
  CHECK(ck.at("model.layers.0.mlp.down_proj.weight").shape == std::vector<int64_t>{64, 176});
  CHECK(ck.contains("lm_head.weight"));
  CHECK_FALSE(ck.contains("model.layers.2.mlp.up_proj.weight"));
  float w0;
  std::memcpy(&w0, ck.at("model.norm.weight").data, 4);
  CHECK(std::isfinite(w0));
  // Sorted by offset, no overlap, all data within the file.
  SafetensorsFile f = SafetensorsFile::open(kData + "/tiny_qwen2_a/model.safetensors");
  for (size_t i = 1; i < f.tensors().size(); ++i)
    CHECK(f.tensors()[i - 1].data + f.tensors()[i - 1].nbytes <= f.tensors()[i].data);
  expect_value_error([&] { ck.at("model.nope"); }, {"tiny_qwen2_a", "missing tensor 'model.nope'"});
  expect_value_error([&] { f.at("model.nope"); }, {"model.safetensors", "missing tensor 'model.nope'"});
}

TEST_CASE("the bf16 twin holds the float32 weights rounded to nearest even") {
  auto a = SafetensorsCheckpoint::open(kData + "/tiny_qwen2_a");
  auto b = SafetensorsCheckpoint::open(kData + "/tiny_qwen2_a_bf16/model.safetensors");
  CHECK(a.names().size() == b.names().size());
  size_t checked = 0;
  for (const std::string& n : a.names()) {
    const auto& ta = a.at(n);
    const auto& tb = b.at(n);
    REQUIRE(tb.dtype == DType::BF16);
    REQUIRE(ta.shape == tb.shape);
    for (size_t i = 0; i < ta.nbytes / 4; ++i) {
      float f;
      uint16_t h;
      std::memcpy(&f, ta.data + 4 * i, 4);
      std::memcpy(&h, tb.data + 2 * i, 2);
      if (h != f32_to_bf16_rne(f)) {
        FAIL_CHECK(n << "[" << i << "]: " << h << " != " << f32_to_bf16_rne(f));
        break;
      }
      ++checked;
    }
  }
  CHECK(checked > 100000);
}

TEST_CASE("writer round-trips every dtype, aligned, with metadata; copies share the mapping") {
  std::vector<std::pair<std::string, HostTensor>> ts = {
      {"b", host(DType::BOOL, {3, 5}, 1)},   {"u8", host(DType::U8, {7}, 2)},
      {"f16", host(DType::F16, {2, 3}, 3)},  {"bf16", host(DType::BF16, {4, 1, 3}, 4)},
      {"f32", host(DType::F32, {5}, 5)},     {"f64", host(DType::F64, {3, 3}, 6)},
      {"i64", host(DType::I64, {2}, 7)},     {"i32", host(DType::I32, {1, 1}, 8)},
      {"i16", host(DType::I16, {9}, 9)},     {"i8", host(DType::I8, {2, 2}, 10)},
      {"scalar", host(DType::F32, {}, 11)},  {"empty", host(DType::F32, {0, 4}, 12)}};
  const std::string p = temp_dir() + "/all.safetensors";
  genprm::write_safetensors(p, ts, {{"format", "pt"}, {"note", "ü"}});
  SafetensorsFile f = SafetensorsFile::open(p);
  SafetensorsFile copy = f;
  CHECK(f.keep_alive().get() == copy.keep_alive().get());
  CHECK(f.tensors().size() == ts.size());
  CHECK(f.metadata().at("format") == "pt");
  CHECK(f.metadata().at("note") == "ü");
  for (const auto& [name, t] : ts) {
    const auto& info = f.at(name);
    CHECK(info.dtype == t.dtype);
    CHECK(info.shape == t.shape);
    REQUIRE(info.nbytes == t.bytes.size());
    CHECK(std::memcmp(info.data, t.bytes.data(), info.nbytes) == 0);
    CHECK(reinterpret_cast<uintptr_t>(info.data) % genprm::dtype_size(info.dtype) == 0);
  }
  // No gaps: data ends exactly at the end of the file (the PyPI reader requires it).
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  const std::string bytes = read_bytes(p);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  size_t total = 0;
  for (const auto& nt : ts) total += nt.second.bytes.size();
  CHECK(n % 8 == 0);
  CHECK(8 + n + total == static_cast<size_t>(st.st_size));
}

TEST_CASE("writer rejects duplicate names, bad byte counts and reserved names") {
  const std::string p = temp_dir() + "/w.safetensors";
  expect_value_error([&] {
    genprm::write_safetensors(p, {{"a", host(DType::F32, {2}, 1)}, {"a", host(DType::F32, {2}, 2)}});
  }, {p, "duplicate tensor name 'a'"});
  HostTensor bad = host(DType::F32, {2}, 1);
  bad.bytes.pop_back();
  expect_value_error([&] { genprm::write_safetensors(p, {{"t", bad}}); }, {p, "'t'", "needs 8 bytes, got 7"});
  expect_value_error([&] { genprm::write_safetensors(p, {{"__metadata__", host(DType::U8, {1}, 1)}}); },
                     {p, "invalid tensor name"});
}

TEST_CASE("sharded writer: index + shards open as one checkpoint") {
  const std::string dir = temp_dir() + "/sharded";
  ::mkdir(dir.c_str(), 0755);
  std::vector<std::pair<std::string, HostTensor>> ts;
  for (int i = 0; i < 7; ++i) ts.emplace_back("layer." + std::to_string(i), host(DType::F32, {10, 10}, 100 + i));
  ts.emplace_back("big", host(DType::BF16, {40, 30}, 7));  // 2400 bytes > limit: a shard alone
  auto names = genprm::write_sharded_safetensors(dir, ts, 1000);
  // 400-byte tensors, 2 per 1000-byte shard: 4 shards for 7, then one for "big".
  REQUIRE(names.size() == 5);
  CHECK(names[0] == "model-00001-of-00005.safetensors");
  CHECK(names[4] == "model-00005-of-00005.safetensors");
  for (const std::string& open_path : {dir, dir + "/model.safetensors.index.json"}) {
    auto ck = SafetensorsCheckpoint::open(open_path);
    CHECK(ck.files().size() == 5);
    CHECK(ck.size() == ts.size());
    CHECK(ck.metadata().at("total_size") == std::to_string(7 * 400 + 2400));
    for (const auto& [name, t] : ts) {
      REQUIRE(ck.contains(name));
      CHECK(std::memcmp(ck.at(name).data, t.bytes.data(), t.bytes.size()) == 0);
      CHECK(ck.keep_alive(name) != nullptr);
    }
    CHECK(ck.file_of("big").path() == dir + "/model-00005-of-00005.safetensors");
    expect_value_error([&] { ck.at("nope"); }, {"model.safetensors.index.json", "missing tensor 'nope'"});
  }
}

TEST_CASE("rejects a truncated file") {
  expect_open_error("short.safetensors", "abc", {"truncated file"});
  expect_open_error("empty.safetensors", "", {"truncated file"});
  // A real file cut inside its data section: the last tensors fall outside the file.
  const std::string full = read_bytes(kData + "/tiny_qwen2_a/model.safetensors");
  expect_open_error("cut.safetensors", full.substr(0, full.size() - 100), {"out of range", "truncated"});
}

TEST_CASE("rejects a header length beyond the file") {
  std::string img = image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4);
  img[0] = '\xff';
  img[1] = '\xff';
  expect_open_error("hlen.safetensors", img, {"header length 65535", "beyond the end of the file"});
  std::string huge(8, '\xff');
  expect_open_error("hlen2.safetensors", huge + "{}", {"beyond the end of the file"});
}

TEST_CASE("rejects invalid JSON and non-object headers") {
  expect_open_error("json1.safetensors", image(R"({"a": {"dtype": "F32", )", 0), {"invalid JSON"});
  expect_open_error("json2.safetensors", image("[1, 2]", 0), {"invalid JSON", "JSON object"});
  expect_open_error("json3.safetensors", image("{\"a\xff\": 1}", 0), {"invalid JSON"});  // bad UTF-8
  expect_open_error("json4.safetensors", image(R"({"a": 5})", 0), {"tensor 'a'", "must be an object"});
  expect_open_error("json5.safetensors", image(R"({"a": {"dtype": "F32", "shape": [1]}})", 4),
                    {"tensor 'a'", "data_offsets"});
  expect_open_error("json_overflow.safetensors",
                    image(R"({"a":{"dtype":"U8","shape":[1e999],"data_offsets":[0,1]}})", 1),
                    {"invalid JSON header", "overflow"});
  expect_open_error("json6.safetensors", image(R"({"__metadata__": {"k": 3}})", 0),
                    {"__metadata__", "must be a string"});
}

TEST_CASE("rejects an unknown dtype, naming the tensor") {
  expect_open_error("dtype.safetensors",
                    image(R"({"w":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}})", 4),
                    {"tensor 'w'", "unknown or unsupported dtype 'F8_E4M3'"});
}

TEST_CASE("rejects shape x dtype not matching the byte range") {
  expect_open_error("shape.safetensors",
                    image(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 24),
                    {"tensor 'w'", "needs 24 bytes", "hold 20 bytes"});
  expect_open_error("neg.safetensors",
                    image(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4),
                    {"tensor 'w'", "non-negative"});
  expect_open_error("ovf.safetensors",
                    image(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4),
                    {"tensor 'w'", "overflows"});
  expect_open_error("ovf2.safetensors",
                    image(R"({"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}})", 8),
                    {"tensor 'w'", "bytes"});
}

TEST_CASE("rejects overlapping and out-of-range offsets") {
  expect_open_error(
      "overlap.safetensors",
      image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
      {"'a' [0, 8]", "'b' [4, 12]", "overlap"});
  expect_open_error(
      "range.safetensors", image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 12),
      {"tensor 'a'", "[8, 16] out of range", "12 bytes"});
  expect_open_error(
      "backwards.safetensors", image(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", 12),
      {"tensor 'a'", "end before they begin"});
  // Empty tensors take no room and may share an offset with another tensor.
  const std::string ok = write_bytes(
      "emptyok.safetensors",
      image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})", 8));
  CHECK(SafetensorsFile::open(ok).tensors().size() == 2);
  // ... but an empty tensor between two overlapping ones does not hide the overlap.
  expect_open_error(
      "overlap_empty.safetensors",
      image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[6,10]}})", 10),
      {"'a' [0, 8]", "'b' [6, 10]", "overlap"});
}

TEST_CASE("rejects duplicate names") {
  expect_open_error(
      "dup.safetensors",
      image(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", 2),
      {"duplicate name 'a'"});
}

TEST_CASE("sharded checkpoint: missing shard, tensor absent from its shard, bad index") {
  const std::string dir = temp_dir() + "/broken";
  ::mkdir(dir.c_str(), 0755);
  genprm::write_safetensors(dir + "/part1.safetensors", {{"x", host(DType::F32, {2}, 1)}});
  auto write_index = [&](const std::string& text) {
    std::ofstream(dir + "/model.safetensors.index.json") << text;
  };
  write_index(R"({"weight_map": {"x": "part1.safetensors", "y": "part2.safetensors"}})");
  expect_value_error([&] { SafetensorsCheckpoint::open(dir); },
                     {"model.safetensors.index.json", "shard 'part2.safetensors'", "tensor 'y'", "absent"});
  write_index(R"({"weight_map": {"x": "part1.safetensors", "z": "part1.safetensors"}})");
  expect_value_error([&] { SafetensorsCheckpoint::open(dir); },
                     {"model.safetensors.index.json", "missing tensor 'z'", "part1.safetensors"});
  write_index(R"({"weight_map": {"x": "../part1.safetensors"}})");
  expect_value_error([&] { SafetensorsCheckpoint::open(dir); }, {"relative to the index"});
  write_index(R"({"weight_map": {"x": "part1.safetensors", "x": "part1.safetensors"}})");
  expect_value_error([&] { SafetensorsCheckpoint::open(dir); }, {"duplicate name 'x'"});
  write_index(R"({"metadata": {}})");
  expect_value_error([&] { SafetensorsCheckpoint::open(dir); }, {"weight_map"});
  write_index(R"({"weight_map": )");
  expect_value_error([&] { SafetensorsCheckpoint::open(dir); }, {"model.safetensors.index.json", "invalid JSON"});
  write_index(R"({"weight_map": {"x": "part1.safetensors"}})");
  CHECK(SafetensorsCheckpoint::open(dir).size() == 1);
  // A directory with neither file, and a path that does not exist.
  const std::string none = temp_dir() + "/nothing";
  ::mkdir(none.c_str(), 0755);
  expect_value_error([&] { SafetensorsCheckpoint::open(none); }, {none, "model.safetensors"});
  expect_value_error([&] { SafetensorsCheckpoint::open(none + "/x.safetensors"); }, {"x.safetensors", "cannot open"});
}

TEST_CASE("parse_safetensors on random corruptions of a valid image never crashes") {
  // A light, deterministic stand-in for the fuzzer: every outcome is a parse or a ValueError.
  const std::string full = read_bytes(kData + "/tiny_qwen2_a/model.safetensors");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(full[i]);
  std::string head = full.substr(0, 8 + n);
  std::mt19937 rng(42);
  int ok = 0, rejected = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    std::string img = head + std::string(full.size() - head.size(), '\0');
    for (int k = 0; k < 3; ++k) img[8 + rng() % n] = static_cast<char>(rng());
    try {
      auto h = genprm::parse_safetensors(reinterpret_cast<const uint8_t*>(img.data()), img.size(), "mem");
      ++ok;
      for (const auto& t : h.tensors)
        CHECK(t.data + t.nbytes <= reinterpret_cast<const uint8_t*>(img.data()) + img.size());
    } catch (const genprm::ValueError&) {
      ++rejected;
    }
  }
  CHECK(ok + rejected == 2000);
  CHECK(rejected > 0);
}
