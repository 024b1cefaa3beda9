// Decode steps over static buffers (engine/decode_graphs.hpp), on tests/data/tiny_qwen2_a: the
// fixed-shape forward equals the paged forward row for row (padding rows ignored), and an engine
// whose decode steps run over the buffers gives the Hugging Face greedy golden tokens, falls back
// for the steps that fit no bucket, and reports what it did. On CUDA (GENPRM_TEST_DEVICE=cuda)
// the default mode captures graphs, and the same checks hold for them.
#include <doctest/doctest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine_test_util.hpp"
#include "genprm/engine/engine.hpp"
#include "genprm/model/device.hpp"
#include "genprm/util/json.hpp"

using namespace genprm;
using genprm::test::low_precision;
using genprm::test::tiny;

namespace {

// Static buffers on the CPU; on CUDA the default mode, which captures graphs when genprm has its
// kernels (else static buffers there too).
DecodeGraphMode mode_under_test() {
  if (tiny().device().is_cuda() && cuda_ops::kCompiledIn) return DecodeGraphMode::Auto;
  return DecodeGraphMode::Static;
}

EngineOptions options(DecodeGraphMode mode, int64_t max_batch = 8, int64_t max_context = 256) {
  EngineOptions o;
  o.kv_blocks = 128;
  o.block_size = 8;
  o.max_batch_tokens = 256;
  o.decode_graphs = mode;
  o.graph_max_batch = max_batch;
  o.graph_max_context = max_context;
  return o;
}

at::Tensor i32(const std::vector<int32_t>& v, at::Device d) { return at::tensor(v, at::kInt).to(d); }

}  // namespace

TEST_CASE("forward_decode over fixed-shape inputs equals the paged forward, padding rows aside") {
  const Qwen2Model& m = tiny();
  const at::Device dev = m.device();
  const int64_t bs = 4, W = 6;  // tables wider than any sequence needs: unused entries point anywhere valid
  KvCacheView kv = m.allocate_kv(32, bs);
  // Three sequences, prefilled through the paged forward, then one decode step each.
  const std::vector<std::vector<int32_t>> prompts{{5, 9, 33, 7, 100, 3}, {44, 2}, {8, 8, 8, 200, 17, 19, 301, 4, 9}};
  const std::vector<std::vector<int64_t>> blocks{{3, 10, 4}, {7}, {1, 12, 30}};
  auto slot_of = [&](size_t s, int64_t p) { return blocks[s][static_cast<size_t>(p / bs)] * bs + p % bs; };
  for (size_t s = 0; s < prompts.size(); ++s) {
    ForwardBatch b;
    std::vector<int64_t> tok(prompts[s].begin(), prompts[s].end()), pos, slot;
    for (int64_t p = 0; p < static_cast<int64_t>(tok.size()); ++p) {
      pos.push_back(p);
      slot.push_back(slot_of(s, p));
    }
    b.token_ids = at::tensor(tok, at::kLong);
    b.positions = at::tensor(pos, at::kLong);
    b.slot_mapping = at::tensor(slot, at::kLong);
    b.block_tables = at::tensor(blocks[s], at::kLong).view({1, -1});
    b.logits_indices = at::tensor(std::vector<int64_t>{static_cast<int64_t>(tok.size()) - 1}, at::kLong);
    b.query_start = {0, static_cast<int64_t>(tok.size())};
    b.context_lens = {static_cast<int64_t>(tok.size())};
    m.forward(b, kv);
  }
  // The decode step, once through forward (a copy of the cache) and once through forward_decode
  // with a fourth padding row writing into scratch block 31.
  KvCacheView kv2 = kv;
  for (auto& t : kv2.k) t = t.clone();
  for (auto& t : kv2.v) t = t.clone();
  const std::vector<int32_t> next{71, 72, 73};
  ForwardBatch b;
  std::vector<int64_t> tok, pos, slot, table(3 * 3, 0);
  for (size_t s = 0; s < 3; ++s) {
    const int64_t p = static_cast<int64_t>(prompts[s].size());
    tok.push_back(next[s]);
    pos.push_back(p);
    slot.push_back(slot_of(s, p));
    for (size_t j = 0; j < blocks[s].size(); ++j) table[s * 3 + j] = blocks[s][j];
    b.context_lens.push_back(p + 1);
  }
  b.token_ids = at::tensor(tok, at::kLong);
  b.positions = at::tensor(pos, at::kLong);
  b.slot_mapping = at::tensor(slot, at::kLong);
  b.block_tables = at::tensor(table, at::kLong).view({3, 3});
  b.logits_indices = at::arange(3, at::kLong);
  b.query_start = {0, 1, 2, 3};
  const at::Tensor want = m.forward(b, kv);

  DecodeInputs in;
  in.token_ids = i32({71, 72, 73, 0}, dev);
  in.positions = i32({6, 2, 9, 0}, dev);
  in.slot_mapping = i32({static_cast<int32_t>(slot[0]), static_cast<int32_t>(slot[1]), static_cast<int32_t>(slot[2]),
                         31 * bs},
                        dev);
  in.context_lens = i32({7, 3, 10, 1}, dev);
  std::vector<int32_t> t32(4 * W, 31);
  for (size_t s = 0; s < 3; ++s)
    for (size_t j = 0; j < blocks[s].size(); ++j) t32[s * W + j] = static_cast<int32_t>(blocks[s][j]);
  in.block_tables = i32(t32, dev).view({4, W});
  const at::Tensor got = m.forward_decode(in, kv2);
  REQUIRE(got.size(0) == 4);
  const double tol = low_precision() ? 5e-2 : 1e-4;
  CHECK(at::allclose(got.narrow(0, 0, 3).cpu(), want.cpu(), tol, tol));
  // Same K/V written for the real rows.
  for (size_t l = 0; l < kv.k.size(); ++l) {
    const at::Tensor rows = at::tensor(slot, at::kLong).to(dev);
    CHECK(at::allclose(kv2.k[l].view({-1, kv.k[l].size(2), kv.k[l].size(3)}).index_select(0, rows).cpu(),
                       kv.k[l].view({-1, kv.k[l].size(2), kv.k[l].size(3)}).index_select(0, rows).cpu(), tol, tol));
  }
}

TEST_CASE("engine with decode graphs: the Hugging Face greedy golden, batched; off gives none" *
          doctest::skip(low_precision())) {
  const Json rows = test::golden_rows();
  const std::vector<GenerationRequest> reqs = test::golden_requests(rows);
  for (DecodeGraphMode mode : {mode_under_test(), DecodeGraphMode::Off}) {
    Engine eng(tiny(), {}, options(mode));
    auto outs = eng.generate(reqs);
    const EngineStats st = eng.stats();
    if (mode == DecodeGraphMode::Off) {
      CHECK(st.graph_steps == 0);
      CHECK(st.graph_buckets == 0);
    } else {
      CHECK(st.graph_buckets == 4);  // 1, 2, 4, 8
      CHECK(st.graph_steps >= 20);   // every decode step once the prompts are in
      CHECK(st.graphs_captured == (tiny().device().is_cuda() && cuda_ops::kCompiledIn));
    }
    test::check_golden(rows, outs, std::string("mode ") + enum_name(mode));
    eng.cache().check_invariants();
  }
}

TEST_CASE("engine with decode graphs: batches and contexts beyond the buckets run eagerly, results unchanged") {
  // 5 sequences, buckets up to 2, contexts up to 16 tokens: early steps fit no bucket, the last
  // ones (after the short requests end) do, until the context outgrows the table width.
  std::vector<GenerationRequest> reqs;
  for (int i = 0; i < 5; ++i) {
    GenerationRequest r;
    for (int k = 0; k < 5 + i; ++k) r.prompt_ids.push_back(static_cast<int32_t>((k * 31 + i * 7 + 3) % 500));
    r.params.temperature = 0.8f;
    r.params.seed = 100 + static_cast<uint64_t>(i);
    r.params.max_tokens = i < 3 ? 3 : 14;
    r.params.ignore_eos = true;
    reqs.push_back(r);
  }
  Engine with(tiny(), {}, options(mode_under_test(), 2, 16));
  Engine without(tiny(), {}, options(DecodeGraphMode::Off));
  auto a = with.generate(reqs);
  auto b = without.generate(reqs);
  const EngineStats st = with.stats();
  CHECK(st.graph_buckets == 2);
  CHECK(st.graph_steps > 0);
  CHECK(st.graph_steps < st.decode_steps);
  for (size_t i = 0; i < reqs.size(); ++i) {
    REQUIRE(a[i].samples[0].token_ids.size() == b[i].samples[0].token_ids.size());
    if (low_precision()) continue;  // seeded sampling is exact across batch layouts in float32 only
    CHECK(a[i].samples[0].token_ids == b[i].samples[0].token_ids);
  }
}

TEST_CASE("EngineOptions.decode_graphs: names, and bad values named") {
  CHECK(parse_enum("static", static_cast<DecodeGraphMode*>(nullptr)) == DecodeGraphMode::Static);
  CHECK(std::string(enum_name(DecodeGraphMode::Auto)) == "auto");
  CHECK_THROWS_WITH_AS(parse_enum("on", static_cast<DecodeGraphMode*>(nullptr)),
                       doctest::Contains("decode_graphs 'on' is not valid"), ValueError);
  EngineOptions o = options(DecodeGraphMode::Static, 0);
  CHECK_THROWS_WITH_AS(Engine(tiny(), {}, o), doctest::Contains("graph_max_batch must be >= 1"), ValueError);
}
