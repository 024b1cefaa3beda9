// genprm's CUDA kernels (model/cuda_ops.hpp) against the ATen reference of model/, on random
// inputs: paged attention (contexts 1..32k, GQA groups 1-8, head dims 16-256, block sizes, ragged
// rows, split-KV, rows of one sequence with different lengths), residual add + RMSNorm, RoPE +
// K/V write, a CUDA graph replayed over new inputs, and a whole model with the kernels on and off.
// The CUDA cases need a CUDA device and a build with -DGENPRM_CUDA=ON; elsewhere they are skipped
// and only the switch and the stubs are checked.
#include <doctest/doctest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "genprm/io/random_checkpoint.hpp"
#include "genprm/model/attention.hpp"
#include "genprm/model/cuda_ops.hpp"
#include "genprm/model/qwen2.hpp"
#include "genprm/model/rms_norm.hpp"
#include "genprm/model/rope.hpp"

using namespace genprm;

namespace {

bool have_cuda() { return cuda_ops::kCompiledIn && at::hasCUDA(); }

double tolerance(at::ScalarType t) { return t == at::kFloat ? 2e-4 : (t == at::kHalf ? 4e-3 : 3e-2); }

/// Reference: each row's keys gathered from its blocks, softmax(q k^T * scale) v in float32.
at::Tensor reference_attention(const at::Tensor& q, const at::Tensor& kc, const at::Tensor& vc,
                               const std::vector<std::vector<int32_t>>& tables, const std::vector<int32_t>& row_seq,
                               const std::vector<int32_t>& kv_len, double scale) {
  const int64_t R = q.size(0), H = q.size(1), D = q.size(2), KVH = kc.size(2), bs = kc.size(1);
  at::Tensor out = at::zeros({R, H, D}, q.options().dtype(at::kFloat));
  for (int64_t r = 0; r < R; ++r) {
    const int32_t len = kv_len[static_cast<size_t>(r)];
    if (len == 0) continue;
    const auto& t = tables[static_cast<size_t>(row_seq[static_cast<size_t>(r)])];
    std::vector<int64_t> blocks(t.begin(), t.begin() + (len + bs - 1) / bs);
    const at::Tensor idx = at::tensor(blocks, at::kLong).to(q.device());
    const at::Tensor k = kc.index_select(0, idx).view({-1, KVH, D}).narrow(0, 0, len).to(at::kFloat);  // [L, KVH, D]
    const at::Tensor v = vc.index_select(0, idx).view({-1, KVH, D}).narrow(0, 0, len).to(at::kFloat);
    const at::Tensor qr = q[r].to(at::kFloat).view({KVH, H / KVH, D});                              // [KVH, G, D]
    const at::Tensor s = at::matmul(qr, k.permute({1, 2, 0})) * scale;                              // [KVH, G, L]
    out[r] = at::matmul(at::softmax(s, -1), v.permute({1, 0, 2})).reshape({H, D});
  }
  return out;
}

struct AttnCase {
  int64_t heads, kv_heads, head_dim, block_size;
  at::ScalarType dtype;
  std::vector<int32_t> lens;
};

void check_attention(const AttnCase& c, uint64_t seed) {
  const at::Device dev(at::kCUDA);
  std::mt19937_64 rng(seed);
  at::manual_seed(seed);
  const int64_t R = static_cast<int64_t>(c.lens.size());
  int64_t need = 0, max_len = 0;
  for (int32_t l : c.lens) {
    need += (l + c.block_size - 1) / c.block_size;
    max_len = std::max<int64_t>(max_len, l);
  }
  const int64_t num_blocks = need + 3;
  std::vector<int32_t> perm(static_cast<size_t>(num_blocks));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);  // blocks scattered over the cache
  const int64_t W = (max_len + c.block_size - 1) / c.block_size + 1;
  std::vector<std::vector<int32_t>> tables;
  std::vector<int32_t> flat;
  size_t next = 0;
  for (int32_t l : c.lens) {
    std::vector<int32_t> t(static_cast<size_t>(W), perm.back());  // unused entries: any valid block
    for (int64_t b = 0; b < (l + c.block_size - 1) / c.block_size; ++b) t[static_cast<size_t>(b)] = perm[next++];
    flat.insert(flat.end(), t.begin(), t.end());
    tables.push_back(std::move(t));
  }
  const auto opt = at::TensorOptions().dtype(c.dtype).device(dev);
  const at::Tensor kc = at::randn({num_blocks, c.block_size, c.kv_heads, c.head_dim}, opt);
  const at::Tensor vc = at::randn({num_blocks, c.block_size, c.kv_heads, c.head_dim}, opt);
  const at::Tensor q = at::randn({R, c.heads, c.head_dim}, opt);
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  std::vector<int32_t> identity(static_cast<size_t>(R));
  std::iota(identity.begin(), identity.end(), 0);
  const at::Tensor want = reference_attention(q, kc, vc, tables, identity, c.lens, scale).cpu();
  const at::Tensor tab = at::tensor(flat, at::kInt).view({R, W}).to(dev);
  const at::Tensor lens = at::tensor(c.lens, at::kInt).to(dev);
  const int64_t splits = cuda_ops::splits_for(max_len);
  for (int64_t s : {splits, splits + 2}) {  // the fixed split count of a graph may exceed what is needed
    const at::Tensor got = cuda_ops::paged_attention(q, kc, vc, tab, lens, at::Tensor(), scale, s).cpu().to(at::kFloat);
    INFO("heads " << c.heads << " kv_heads " << c.kv_heads << " head_dim " << c.head_dim << " block " << c.block_size
                  << " dtype " << c10::toString(c.dtype) << " splits " << s);
    CHECK(at::allclose(got, want, tolerance(c.dtype), tolerance(c.dtype)));
  }
}

}  // namespace

TEST_CASE("cuda_ops: the switch, and what a build without the kernels does") {
  CHECK(!cuda_ops::use_kernels(at::zeros({2})));  // never for CPU tensors
  if (!cuda_ops::kCompiledIn) {
    CHECK(!cuda_ops::kernels_enabled());
    CHECK_THROWS_WITH(cuda_ops::add_rms_norm_(*std::make_unique<at::Tensor>(at::zeros({1, 4})), at::Tensor(),
                                              at::ones({4}), 1e-6),
                      doctest::Contains("built without its CUDA kernels"));
    return;
  }
  const bool before = cuda_ops::kernels_enabled();
  cuda_ops::set_kernels_enabled(false);
  CHECK(!cuda_ops::kernels_enabled());
  cuda_ops::set_kernels_enabled(before);
  CHECK(cuda_ops::paged_attention_supported(12, 2, 128, at::kBFloat16));
  CHECK(!cuda_ops::paged_attention_supported(12, 2, 96, at::kBFloat16));
  CHECK(!cuda_ops::paged_attention_supported(64, 2, 128, at::kFloat));  // group of 32
  CHECK(cuda_ops::splits_for(1) == 1);
  CHECK(cuda_ops::splits_for(cuda_ops::attention_partition() + 1) == 2);
}

TEST_CASE("cuda_ops: paged attention equals the gathered ATen reference" * doctest::skip(!have_cuda())) {
  uint64_t seed = 1;
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16, at::kHalf}) {
    check_attention({12, 2, 128, 16, dt, {1, 15, 16, 17, 255, 256, 257, 1000, 3000}}, seed++);  // R1-1.5B shape
    check_attention({8, 8, 64, 32, dt, {3, 512, 700}}, seed++);                                  // MHA
    check_attention({28, 4, 128, 16, dt, {1, 4097}}, seed++);                                    // group of 7 (7B)
    check_attention({16, 2, 64, 8, dt, {33, 1, 64}}, seed++);                                    // group of 8
    check_attention({4, 2, 16, 4, dt, {5, 9, 100}}, seed++);                                     // tiny test models
    check_attention({8, 4, 32, 16, dt, {31, 32}}, seed++);
    check_attention({8, 2, 256, 16, dt, {300, 2}}, seed++);
  }
  check_attention({12, 2, 128, 16, at::kBFloat16, {32768, 7}}, seed++);  // the longest context
}

TEST_CASE("cuda_ops: rows of one sequence with their own lengths (prefill over a cached prefix)" *
          doctest::skip(!have_cuda())) {
  const at::Device dev(at::kCUDA);
  at::manual_seed(7);
  const int64_t H = 12, KVH = 2, D = 128, bs = 16, nb = 20;
  const auto opt = at::TensorOptions().dtype(at::kFloat).device(dev);
  const at::Tensor kc = at::randn({nb, bs, KVH, D}, opt), vc = at::randn({nb, bs, KVH, D}, opt);
  const std::vector<std::vector<int32_t>> tables{{4, 9, 2, 17, 0, 0}, {11, 3, 5, 0, 0, 0}};
  // Sequence 0: a prefix of 40 cached keys and 5 new rows (lengths 41..45); sequence 1: one decode row.
  const std::vector<int32_t> row_seq{0, 0, 0, 0, 0, 1}, kv_len{41, 42, 43, 44, 45, 37};
  const at::Tensor q = at::randn({6, H, D}, opt);
  std::vector<int32_t> flat;
  for (const auto& t : tables) flat.insert(flat.end(), t.begin(), t.end());
  const double scale = 1.0 / std::sqrt(128.0);
  const at::Tensor got = cuda_ops::paged_attention(q, kc, vc, at::tensor(flat, at::kInt).view({2, 6}).to(dev),
                                                   at::tensor(kv_len, at::kInt).to(dev),
                                                   at::tensor(row_seq, at::kInt).to(dev), scale, 1);
  CHECK(at::allclose(got.cpu(), reference_attention(q, kc, vc, tables, row_seq, kv_len, scale).cpu(), 2e-4, 2e-4));
}

TEST_CASE("cuda_ops: residual add + RMSNorm and RoPE + K/V write equal the ATen path" * doctest::skip(!have_cuda())) {
  const at::Device dev(at::kCUDA);
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16, at::kHalf}) {
    at::manual_seed(3);
    const auto opt = at::TensorOptions().dtype(dt).device(dev);
    for (int64_t hidden : {64, 1536, 3584}) {
      const at::Tensor x = at::randn({5, hidden}, opt), res = at::randn({5, hidden}, opt);
      const at::Tensor w = 1.0 + 0.1 * at::randn({hidden}, opt);
      at::Tensor r1 = res.clone();
      const at::Tensor got = cuda_ops::add_rms_norm_(r1, x, w, 1e-6);
      const at::Tensor sum = res + x;
      CHECK(at::equal(r1.cpu(), sum.cpu()));  // the add rounds as ATen's does
      CHECK(at::allclose(got.cpu().to(at::kFloat), model::rms_norm(sum, w, 1e-6).cpu().to(at::kFloat),
                         tolerance(dt), tolerance(dt)));
      at::Tensor r2 = res.clone();
      CHECK(at::allclose(cuda_ops::add_rms_norm_(r2, at::Tensor(), w, 1e-6).cpu().to(at::kFloat),
                         model::rms_norm(res, w, 1e-6).cpu().to(at::kFloat), tolerance(dt), tolerance(dt)));
    }
    const int64_t T = 7, nh = 12, nkv = 2, D = 128, bs = 16, nb = 4;
    const model::RotaryEmbedding rope(D, 1e6, dev);
    const at::Tensor qkv = at::randn({T, (nh + 2 * nkv) * D}, opt);
    const at::Tensor pos = at::tensor(std::vector<int64_t>{0, 1, 2, 900, 4000, 31999, 5}, at::kLong).to(dev);
    const at::Tensor slots = at::tensor(std::vector<int64_t>{3, 17, 40, 41, 0, 63, 22}, at::kLong).to(dev);
    at::Tensor kc = at::zeros({nb, bs, nkv, D}, opt), vc = at::zeros({nb, bs, nkv, D}, opt);
    const auto [q, k] = cuda_ops::rope_write_kv(qkv, pos, slots, rope.inv_freq(), kc, vc, nh, nkv);
    const auto [cos, sin] = rope.cos_sin(pos, dt);
    const at::Tensor qk = model::apply_rotary(qkv.narrow(1, 0, (nh + nkv) * D).view({T, nh + nkv, D}), cos, sin);
    const double tol = dt == at::kFloat ? 1e-5 : tolerance(dt);
    CHECK(at::allclose(q.cpu().to(at::kFloat), qk.narrow(1, 0, nh).cpu().to(at::kFloat), tol, tol));
    CHECK(at::allclose(k.cpu().to(at::kFloat), qk.narrow(1, nh, nkv).cpu().to(at::kFloat), tol, tol));
    CHECK(at::allclose(kc.view({-1, nkv, D}).index_select(0, slots).cpu().to(at::kFloat),
                       qk.narrow(1, nh, nkv).cpu().to(at::kFloat), tol, tol));
    CHECK(at::equal(vc.view({-1, nkv, D}).index_select(0, slots).cpu(),
                    qkv.narrow(1, (nh + nkv) * D, nkv * D).reshape({T, nkv, D}).cpu()));
  }
}

TEST_CASE("cuda_ops: a captured graph replays over new input values" * doctest::skip(!have_cuda())) {
  const at::Device dev(at::kCUDA);
  at::Tensor in = at::zeros({4, 64}, at::TensorOptions().device(dev));
  at::Tensor out;
  const at::Tensor w = at::ones({64}, at::TensorOptions().device(dev));
  cuda_ops::CudaGraph g;
  g.capture([&] { out = model::rms_norm(in * 2.0 + 1.0, w, 1e-6); }, dev, 1, nullptr);
  in.copy_(at::randn({4, 64}));
  g.replay();
  CHECK(at::allclose(out.cpu(), model::rms_norm(in * 2.0 + 1.0, w, 1e-6).cpu(), 1e-5, 1e-5));
  cuda_ops::CudaGraph g2;  // a second graph sharing the first one's pool
  at::Tensor out2;
  g2.capture([&] { out2 = in.sum(1); }, dev, 1, &g);
  g2.replay();
  CHECK(at::allclose(out2.cpu(), in.sum(1).cpu(), 1e-4, 1e-4));
}

TEST_CASE("cuda_ops: a model with the kernels on equals it with them off" * doctest::skip(!have_cuda())) {
  ModelConfig c;
  c.model_type = "qwen2";
  c.vocab_size = 1000;
  c.hidden_size = 256;
  c.intermediate_size = 512;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 64;
  c.attention_bias = true;
  c.rope_theta = 10000.0;
  c.rms_norm_eps = 1e-6;
  RandomWeightsOptions o;
  o.seed = 5;
  o.stddev = 0.05;
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16}) {
    const Qwen2Model m = Qwen2Model::from_tensors(c, random_qwen2_weights(c, o), at::Device(at::kCUDA), dt);
    std::vector<int64_t> ids(300);
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>((i * 37 + 5) % 1000);
    // Prefill 290 tokens, then a chunk of 8 over that prefix and 2 decode rows, paged.
    auto run = [&](bool kernels) {
      const bool before = cuda_ops::kernels_enabled();
      cuda_ops::set_kernels_enabled(kernels);
      KvCacheView kv = m.allocate_kv(40, 16);
      ForwardBatch a;
      a.token_ids = at::tensor(std::vector<int64_t>(ids.begin(), ids.begin() + 290), at::kLong);
      a.positions = at::arange(290, at::kLong);
      a.slot_mapping = at::arange(290, at::kLong) + 16;  // blocks 1..19
      std::vector<int64_t> t0(19);
      std::iota(t0.begin(), t0.end(), 1);
      a.block_tables = at::tensor(t0, at::kLong).view({1, 19});
      a.logits_indices = at::tensor(std::vector<int64_t>{289}, at::kLong);
      a.query_start = {0, 290};
      a.context_lens = {290};
      at::Tensor l1 = m.forward(a, kv);
      ForwardBatch b;
      b.token_ids = at::tensor(std::vector<int64_t>(ids.begin() + 290, ids.begin() + 300), at::kLong);
      b.positions = at::arange(290, 300, at::kLong);
      b.slot_mapping = at::arange(290, 300, at::kLong) + 16;
      b.block_tables = a.block_tables;
      b.logits_indices = at::arange(10, at::kLong);
      b.query_start = {0, 10};
      b.context_lens = {300};
      at::Tensor l2 = m.forward(b, kv);
      cuda_ops::set_kernels_enabled(before);
      return at::cat({l1, l2}).cpu();
    };
    const at::Tensor on = run(true), off = run(false);
    const double tol = dt == at::kFloat ? 1e-3 : 0.15;
    CHECK(at::allclose(on, off, tol, tol));
    CHECK((on.argmax(1) == off.argmax(1)).to(at::kFloat).mean().item<double>() >= (dt == at::kFloat ? 1.0 : 0.8));
  }
}
