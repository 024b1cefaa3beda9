// The block pool and prefix tree in a CPU-only simulation (no tensors): the "KV" of a slot is the
// (token, prefix hash) written there, so every match can be checked against what was written.
#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "genprm/kv/block_pool.hpp"
#include "genprm/kv/radix_cache.hpp"

using genprm::RadixCache;

namespace {

// A simulated sequence: tokens, computed count, block table, and simulated slot contents.
struct SimKv {
  explicit SimKv(int32_t num_blocks, int32_t bs) : slots(static_cast<size_t>(num_blocks * bs), 0), bs(bs) {}
  std::vector<uint64_t> slots;  // prefix hash of the token written at each slot
  int32_t bs;
  static uint64_t prefix_hash(const std::vector<int32_t>& t, size_t upto) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i <= upto; ++i) h = (h ^ static_cast<uint64_t>(t[i] + 7)) * 1099511628211ull;
    return h;
  }
};

struct SimSeq {
  std::vector<int32_t> tokens;
  std::vector<int32_t> blocks;
  size_t computed = 0;
};

// Writes the K/V of tokens [computed, upto) with copy-on-write, as the engine does.
// Returns false when the cache has no block left.
bool compute(RadixCache& c, SimKv& kv, SimSeq& s, size_t upto) {
  const size_t bs = static_cast<size_t>(c.block_size());
  for (size_t p = s.computed; p < upto; ++p) {
    size_t bi = p / bs;
    if (bi == s.blocks.size()) {
      auto b = c.allocate();
      if (!b) return false;
      s.blocks.push_back(*b);
    } else if (c.needs_copy(s.blocks[bi])) {
      auto b = c.allocate();
      if (!b) return false;
      for (size_t o = 0; o < p % bs; ++o)
        kv.slots[static_cast<size_t>(*b) * bs + o] = kv.slots[static_cast<size_t>(s.blocks[bi]) * bs + o];
      c.release(s.blocks[bi]);
      s.blocks[bi] = *b;
    }
    kv.slots[static_cast<size_t>(s.blocks[bi]) * bs + p % bs] = SimKv::prefix_hash(s.tokens, p);
    s.computed = p + 1;
  }
  return true;
}

void check_content(const SimKv& kv, const SimSeq& s, size_t bs) {
  for (size_t p = 0; p < s.computed; ++p) {
    REQUIRE(kv.slots[static_cast<size_t>(s.blocks[p / bs]) * bs + p % bs] == SimKv::prefix_hash(s.tokens, p));
  }
}

SimSeq admit(RadixCache& c, std::vector<int32_t> tokens) {
  SimSeq s;
  s.tokens = std::move(tokens);
  auto m = c.match(s.tokens.data(), s.tokens.size());
  s.blocks = m.blocks;
  s.computed = m.num_tokens;
  return s;
}

}  // namespace

TEST_CASE("block pool: allocation order, reference counts, budget") {
  genprm::BlockPool pool(3, 4);
  CHECK(pool.take_free() == 0);
  CHECK(pool.take_free() == 1);
  CHECK(pool.take_free() == 2);
  CHECK_FALSE(pool.take_free().has_value());  // nullopt when empty
  pool.incref(1);
  CHECK(pool.decref(1) == 1);
  CHECK_THROWS_AS(pool.put_free(1), genprm::Error);  // still referenced
  CHECK(pool.decref(1) == 0);
  pool.put_free(1);
  CHECK(pool.take_free() == 1);
  CHECK_THROWS_AS(pool.decref(7), genprm::Error);
  CHECK(genprm::BlockPool::blocks_for_budget(1000, 100) == 10);
  CHECK_THROWS_AS(genprm::BlockPool::blocks_for_budget(99, 100), genprm::ValueError);
  CHECK_THROWS_AS(genprm::BlockPool(0, 16), genprm::ValueError);
}

TEST_CASE("radix cache: full-block prefix reuse, partial match, copy-on-write flag") {
  RadixCache c(8, 4);
  SimKv kv(8, 4);
  SimSeq a = admit(c, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  CHECK(a.computed == 0);
  REQUIRE(compute(c, kv, a, 10));
  c.insert(a.tokens.data(), a.computed, a.blocks, /*include_partial=*/false);
  CHECK(c.is_cached(a.blocks[0]));
  CHECK(c.is_cached(a.blocks[1]));
  CHECK_FALSE(c.is_cached(a.blocks[2]));
  CHECK(c.match_length(a.tokens.data(), a.tokens.size()) == 8);

  // Shares 6 tokens: block 0 fully, block 1 for 2 tokens (partial use of a full cached block).
  SimSeq b = admit(c, {1, 2, 3, 4, 5, 6, 70, 80});
  CHECK(b.computed == 6);
  REQUIRE(b.blocks.size() == 2);
  CHECK(b.blocks[1] == a.blocks[1]);
  CHECK(c.needs_copy(b.blocks[1]));
  REQUIRE(compute(c, kv, b, b.tokens.size()));
  CHECK(b.blocks[1] != a.blocks[1]);  // copied before writing
  check_content(kv, a, 4);
  check_content(kv, b, 4);
  c.check_invariants();

  // The partial tail of a finished sequence is cached too when asked.
  c.insert(a.tokens.data(), a.computed, a.blocks, /*include_partial=*/true);
  CHECK(c.is_cached(a.blocks[2]));
  CHECK(c.match_length(a.tokens.data(), a.tokens.size()) == 10);
  std::vector<int32_t> ext = a.tokens;
  ext.push_back(11);
  CHECK(c.match_length(ext.data(), ext.size()) == 10);
  c.release(a.blocks);
  c.release(b.blocks);
  c.check_invariants();
  auto st = c.stats();
  CHECK(st.blocks_in_use == 0);
  CHECK(st.blocks_free + st.blocks_cached_idle == 8);
}

TEST_CASE("radix cache: LRU eviction takes unreferenced leaves only, nullopt when all referenced") {
  RadixCache c(4, 2);
  SimKv kv(4, 2);
  SimSeq a = admit(c, {1, 2, 3, 4});
  REQUIRE(compute(c, kv, a, 4));
  c.insert(a.tokens.data(), 4, a.blocks, false);
  c.release(a.blocks);  // cached, idle: [1 2] -> [3 4]
  SimSeq b = admit(c, {5, 6, 7, 8});
  REQUIRE(compute(c, kv, b, 4));  // uses the two free blocks
  c.insert(b.tokens.data(), 4, b.blocks, false);
  c.release(b.blocks);
  CHECK(c.stats().blocks_free == 0);
  CHECK(c.stats().blocks_cached_idle == 4);

  // Touch a's prefix again so b's is the least recently used.
  SimSeq a2 = admit(c, {1, 2, 3, 4, 9});
  CHECK(a2.computed == 4);
  auto x = c.allocate();  // evicts b's leaf [7 8]
  REQUIRE(x.has_value());
  CHECK(c.match_length(b.tokens.data(), 4) == 2);
  CHECK(c.match_length(a.tokens.data(), 4) == 4);
  auto y = c.allocate();  // then b's [5 6], now a leaf
  REQUIRE(y.has_value());
  CHECK(c.match_length(b.tokens.data(), 4) == 0);
  CHECK_FALSE(c.allocate().has_value());  // a2 references the other two: never evicted
  CHECK(c.match_length(a.tokens.data(), 4) == 4);
  CHECK(c.stats().evictions == 2);
  c.release(*x);
  c.release(*y);
  c.release(a2.blocks);
  c.check_invariants();
}

TEST_CASE("radix cache: fork shares every block; duplicates collapse onto the cached copy") {
  RadixCache c(16, 4);
  SimKv kv(16, 4);
  SimSeq p = admit(c, {1, 2, 3, 4, 5, 6});
  REQUIRE(compute(c, kv, p, 6));
  std::vector<SimSeq> kids(3, p);
  for (auto& k : kids)
    for (int32_t b : k.blocks) c.share(b);
  CHECK(c.ref_count(p.blocks[1]) == 4);
  c.release(p.blocks);
  for (size_t i = 0; i < kids.size(); ++i) {
    kids[i].tokens.push_back(static_cast<int32_t>(100 + i));
    REQUIRE(compute(c, kv, kids[i], 7));
  }
  // Two children copied the shared partial block, the last one wrote in place.
  CHECK(kids[0].blocks[1] != kids[1].blocks[1]);
  CHECK(kids[0].blocks[0] == kids[2].blocks[0]);
  for (auto& k : kids) check_content(kv, k, 4);

  // Two sequences compute the same 8 tokens independently; inserting the second collapses it.
  SimSeq u{{9, 9, 9, 9, 8, 8, 8, 8}, {}, 0}, v{{9, 9, 9, 9, 8, 8, 8, 8}, {}, 0};
  REQUIRE(compute(c, kv, u, 8));
  REQUIRE(compute(c, kv, v, 8));
  c.insert(u.tokens.data(), 8, u.blocks, false);
  auto v_before = v.blocks;
  c.insert(v.tokens.data(), 8, v.blocks, false);
  CHECK(v.blocks == u.blocks);
  CHECK(c.ref_count(u.blocks[0]) == 2);
  CHECK(c.ref_count(v_before[0]) == 0);
  c.check_invariants();
}

TEST_CASE("radix cache: random simulation keeps contents and bookkeeping consistent") {
  std::mt19937 rng(1234);
  for (int round = 0; round < 4; ++round) {
    const int32_t bs = 1 + static_cast<int32_t>(rng() % 5);
    const int32_t nblocks = 6 + static_cast<int32_t>(rng() % 20);
    RadixCache c(nblocks, bs);
    SimKv kv(nblocks, bs);
    std::vector<std::vector<int32_t>> prefixes;
    for (int i = 0; i < 4; ++i) {
      std::vector<int32_t> t(rng() % 12);
      for (auto& x : t) x = static_cast<int32_t>(rng() % 3);
      prefixes.push_back(t);
    }
    std::vector<SimSeq> live;
    for (int step = 0; step < 400; ++step) {
      int op = static_cast<int>(rng() % 4);
      if (op == 0 || live.empty()) {  // admit a sequence sharing a random prefix
        std::vector<int32_t> t = prefixes[rng() % prefixes.size()];
        size_t extra = 1 + rng() % 10;
        for (size_t i = 0; i < extra; ++i) t.push_back(static_cast<int32_t>(rng() % 3));
        SimSeq s = admit(c, t);
        check_content(kv, s, static_cast<size_t>(bs));
        if (compute(c, kv, s, s.tokens.size())) {
          live.push_back(std::move(s));
        } else {
          c.release(s.blocks);
        }
      } else if (op == 1) {  // grow one token
        SimSeq& s = live[rng() % live.size()];
        s.tokens.push_back(static_cast<int32_t>(rng() % 3));
        if (!compute(c, kv, s, s.tokens.size())) s.tokens.pop_back();
      } else if (op == 2) {  // fork
        SimSeq k = live[rng() % live.size()];
        for (int32_t b : k.blocks) c.share(b);
        live.push_back(k);
      } else {  // finish: cache and release
        size_t i = rng() % live.size();
        SimSeq& s = live[i];
        c.insert(s.tokens.data(), s.computed, s.blocks, rng() % 2 == 0);
        check_content(kv, s, static_cast<size_t>(bs));
        c.release(s.blocks);
        live.erase(live.begin() + static_cast<long>(i));
      }
      for (auto& s : live) check_content(kv, s, static_cast<size_t>(bs));
      c.check_invariants();
    }
    for (auto& s : live) c.release(s.blocks);
    c.check_invariants();
    CHECK(c.stats().blocks_in_use == 0);
  }
}
