// Paged attention equals contiguous attention; a mixed batch gives each sequence its own logits.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "model_test_util.hpp"

using namespace genprm;
using genprm::test::max_abs_diff;

namespace {

struct Shape {
  int64_t vocab, hidden, layers, heads, kv_heads, head_dim;
  double theta;
  bool tied;
};

// Shapes the golden fixture does not cover: MHA, GQA 4:1 and 6:1 (MQA), head_dim != hidden/heads,
// tied lm head, another rope theta, 1 and 3 layers.
const Shape kShapes[] = {
    {97, 32, 1, 2, 2, 0, 10000.0, true},
    {300, 48, 3, 4, 1, 16, 1e6, false},
    {128, 64, 2, 8, 2, 24, 500000.0, true},
    {64, 24, 2, 6, 1, 0, 777.0, false},
};

Qwen2Model make_model(const Shape& s, uint64_t seed) {
  const ModelConfig c =
      test::small_config(s.vocab, s.hidden, s.layers, s.heads, s.kv_heads, s.head_dim, s.theta, s.tied);
  return Qwen2Model::from_tensors(c, test::random_weights(c, seed), test::test_device(), test::test_dtype());
}

}  // namespace

TEST_CASE("paged: chunked prefill + decode over shuffled blocks equals forward_full") {
  std::mt19937_64 rng(42);
  for (const Shape& shape : kShapes) {
    const Qwen2Model model = make_model(shape, rng());
    for (int64_t block_size : {1, 3, 16}) {
      CAPTURE(shape.hidden);
      CAPTURE(block_size);
      test::Pager pager(model, 128, block_size, rng());
      test::Pager::Seq s;
      s.tokens = test::random_tokens(40, shape.vocab, rng);
      // Chunks 7, 1, 12 (prefill over a cached prefix), then decode rows to the end.
      std::vector<at::Tensor> rows;
      for (int64_t n : {7, 1, 12}) rows.push_back(pager.step({&s}, {n}));
      while (s.cached < static_cast<int64_t>(s.tokens.size())) rows.push_back(pager.step({&s}, {1}));
      const at::Tensor paged = at::cat(rows, 0);
      const at::Tensor full = model.forward_full(test::ids_tensor(s.tokens)).cpu();
      CHECK(max_abs_diff(paged, full) <= test::same_math_tolerance(model.dtype(), full));
    }
  }
}

TEST_CASE("paged: a mixed batch (fresh prefill, prefill over a prefix, decode rows) gives each sequence "
          "the logits it gets alone") {
  std::mt19937_64 rng(7);
  for (const Shape& shape : {kShapes[1], kShapes[2]}) {
    const Qwen2Model model = make_model(shape, rng());
    test::Pager pager(model, 256, 4, rng());
    // Five sequences of different lengths.
    std::vector<test::Pager::Seq> seqs(5);
    const int64_t lens[] = {30, 9, 17, 26, 5};
    for (size_t i = 0; i < seqs.size(); ++i) seqs[i].tokens = test::random_tokens(lens[i], shape.vocab, rng);
    std::vector<std::vector<at::Tensor>> got(seqs.size());
    // Step 1: seqs 0, 1, 3 prefill part of their prompt (2 and 4 wait).
    auto out = pager.step({&seqs[0], &seqs[1], &seqs[3]}, {10, 8, 13});
    got[0].push_back(out.narrow(0, 0, 10));
    got[1].push_back(out.narrow(0, 10, 8));
    got[3].push_back(out.narrow(0, 18, 13));
    // Then mixed steps until all are done: each sequence takes a decode row or a chunk.
    int round = 0;
    for (;;) {
      std::vector<test::Pager::Seq*> batch;
      std::vector<int64_t> n;
      std::vector<size_t> which;
      for (size_t i = 0; i < seqs.size(); ++i) {
        const int64_t left = static_cast<int64_t>(seqs[i].tokens.size()) - seqs[i].cached;
        if (left == 0) continue;
        // Alternate decode rows and chunks of 2..5 tokens, depending on the sequence and round.
        const int64_t want = (i + round) % 3 == 0 ? 1 : static_cast<int64_t>(2 + (i + round) % 4);
        batch.push_back(&seqs[i]);
        n.push_back(std::min(left, want));
        which.push_back(i);
      }
      if (batch.empty()) break;
      // Put the batch in a varying order: decode rows before, between and after chunks.
      std::vector<size_t> order(batch.size());
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), rng);
      std::vector<test::Pager::Seq*> b2;
      std::vector<int64_t> n2;
      for (size_t o : order) {
        b2.push_back(batch[o]);
        n2.push_back(n[o]);
      }
      out = pager.step(b2, n2);
      int64_t row = 0;
      for (size_t k = 0; k < order.size(); ++k) {
        got[which[order[k]]].push_back(out.narrow(0, row, n2[k]));
        row += n2[k];
      }
      ++round;
    }
    for (size_t i = 0; i < seqs.size(); ++i) {
      CAPTURE(i);
      const at::Tensor alone = model.forward_full(test::ids_tensor(seqs[i].tokens)).cpu();
      CHECK(max_abs_diff(at::cat(got[i], 0), alone) <= test::same_math_tolerance(model.dtype(), alone));
    }
  }
}

TEST_CASE("paged: logits_indices selects rows; only the listed rows come back") {
  const Qwen2Model model = make_model(kShapes[0], 3);
  std::mt19937_64 rng(3);
  const auto tokens = test::random_tokens(11, kShapes[0].vocab, rng);
  KvCacheView kv = model.allocate_kv(8, 4);
  ForwardBatch b;
  b.token_ids = test::ids_tensor(tokens).to(model.device());
  b.positions = at::arange(11, at::kLong).to(model.device());
  b.slot_mapping = (at::arange(11, at::kLong) + 8).to(model.device());  // blocks 2, 3, 4
  b.block_tables = test::ids_tensor({2, 3, 4}).view({1, 3}).to(model.device());
  b.logits_indices = test::ids_tensor({10, 3}).to(model.device());
  b.query_start = {0, 11};
  b.context_lens = {11};
  const at::Tensor out = model.forward(b, kv);
  CHECK_FALSE(out.is_inference());  // callers may update the logits in place (penalties, masks)
  out.mul_(1.0);
  const at::Tensor got = out.cpu();
  REQUIRE(got.sizes() == at::IntArrayRef({2, kShapes[0].vocab}));
  const at::Tensor full = model.forward_full(test::ids_tensor(tokens)).cpu();
  const double tol = test::same_math_tolerance(model.dtype(), full);
  CHECK(max_abs_diff(got[0], full[10]) <= tol);
  CHECK(max_abs_diff(got[1], full[3]) <= tol);
  // Blocks 0, 1 and 5.. were not touched.
  CHECK(kv.k[0].narrow(0, 0, 2).abs().max().item<double>() == 0.0);
  CHECK(kv.k[0].narrow(0, 5, 3).abs().max().item<double>() == 0.0);
  CHECK(kv.k[0].narrow(0, 2, 3).abs().max().item<double>() > 0.0);
  CHECK(model.kv_bytes_per_block(4) ==
        size_t(2 * 1 * 4 * 2 * 16) * c10::elementSize(model.dtype()));
}

TEST_CASE("paged: inconsistent batches and caches are rejected with a message") {
  const Qwen2Model model = make_model(kShapes[0], 5);
  KvCacheView kv = model.allocate_kv(4, 4);
  ForwardBatch b;
  const at::Device dev = model.device();
  b.token_ids = test::ids_tensor({1, 2, 3}).to(dev);
  b.positions = test::ids_tensor({0, 1, 2}).to(dev);
  b.slot_mapping = test::ids_tensor({0, 1, 2}).to(dev);
  b.block_tables = test::ids_tensor({0}).view({1, 1}).to(dev);
  b.logits_indices = test::ids_tensor({2}).to(dev);
  b.query_start = {0, 3};
  b.context_lens = {3};
  CHECK(model.forward(b, kv).size(0) == 1);
  b.context_lens = {2};  // fewer than its new tokens
  CHECK_THROWS_WITH_AS(model.forward(b, kv), doctest::Contains("context_len 2 < its 3 new tokens"), ValueError);
  b.context_lens = {5};  // more than its one block holds
  CHECK_THROWS_WITH_AS(model.forward(b, kv), doctest::Contains("block_tables holds 1 blocks"), ValueError);
  b.context_lens = {3};
  b.query_start = {0, 2};
  CHECK_THROWS_WITH_AS(model.forward(b, kv), doctest::Contains("token_ids must be [T]"), ValueError);
  b.query_start = {0, 3};
  KvCacheView wrong = model.allocate_kv(4, 8);
  wrong.block_size = 4;
  CHECK_THROWS_WITH_AS(model.forward(b, wrong), doctest::Contains("kv layer 0 must be"), ValueError);
  if (dev.is_cpu()) {
    CHECK_THROWS_WITH_AS(model.forward_full(test::ids_tensor({1, 97})), doctest::Contains("[0, 97)"), ValueError);
  }
}
