#pragma once
// Byte-level BPE over raw bytes: merge table keyed by (left id, right id), the merge loop that
// Hugging Face's BPE model runs (always the lowest-ranked pair, leftmost first), and a per-thread
// word cache (no locks, no allocation once warm).
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <queue>
#include <string>
#include <string_view>
#include <vector>

namespace genprm::bpe {

inline uint64_t hash_bytes(std::string_view s) {
  // 64-bit multiply-mix over 8-byte words; quality is ample for a cache of short words.
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (s.size() * 0xC2B2AE3D27D4EB4Full);
  const char* p = s.data();
  size_t n = s.size();
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
    p += 8;
    n -= 8;
  }
  uint64_t w = 0;
  std::memcpy(&w, p, n);
  h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 33;  // murmur3 fmix64: every output bit depends on every input bit
  h *= 0xFF51AFD7ED558CCDull;
  h ^= h >> 33;
  return h;
}

/// Open-addressing map (left id, right id) -> (rank, merged id).
class MergeTable {
 public:
  struct Merge {
    int32_t rank;
    int32_t id;
  };
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2 + 16) cap <<= 1;
    keys_.assign(cap, kEmpty);
    vals_.assign(cap, Merge{-1, -1});
    mask_ = cap - 1;
  }
  /// Inserts or replaces (tokenizers builds its merge map with a HashMap, so a pair listed twice
  /// keeps its last rank). Returns false when the pair was already present.
  bool insert(int32_t a, int32_t b, Merge m) {
    const uint64_t k = key(a, b);
    size_t i = slot(k);
    while (keys_[i] != kEmpty) {
      if (keys_[i] == k) {
        vals_[i] = m;
        return false;
      }
      i = (i + 1) & mask_;
    }
    keys_[i] = k;
    vals_[i] = m;
    return true;
  }
  /// Rank and id of merging a with b, or rank -1 when there is no such merge.
  Merge find(int32_t a, int32_t b) const {
    const uint64_t k = key(a, b);
    size_t i = slot(k);
    while (true) {
      const uint64_t cur = keys_[i];
      if (cur == k) return vals_[i];
      if (cur == kEmpty) return Merge{-1, -1};
      i = (i + 1) & mask_;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t key(int32_t a, int32_t b) {
    return (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
  }
  size_t slot(uint64_t k) const {
    uint64_t h = k ^ (k >> 29);  // fold the left id into the low bits, then mix (murmur3 finalizer)
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
    return size_t(h) & mask_;
  }
  std::vector<uint64_t> keys_;
  std::vector<Merge> vals_;
  size_t mask_ = 0;
};

/// Runs BPE over one pre-tokenized word (raw bytes) and appends its ids to `out`.
/// `byte_ids[b]` is the id of the single byte b. Ties between equal ranks merge leftmost first,
/// exactly like Hugging Face's priority queue ordered by (rank, position).
/// `small_limit`: longest word handled by the array path (tests pass 0 to force the heap path).
inline void bpe_word(std::string_view word, const int32_t* byte_ids, const MergeTable& merges,
                     std::vector<int32_t>& out, size_t small_limit = 96) {
  const size_t n = word.size();
  if (n == 0) return;
  if (n == 1) {
    out.push_back(byte_ids[static_cast<unsigned char>(word[0])]);
    return;
  }
  if (n <= small_limit && n <= 96) {
    // Small words: arrays of symbols and of the ranks of adjacent pairs; one linear scan per merge.
    int32_t sym[96];
    int32_t rank[96];
    int32_t mid[96];
    size_t m = n;
    for (size_t i = 0; i < n; ++i) sym[i] = byte_ids[static_cast<unsigned char>(word[i])];
    for (size_t i = 0; i + 1 < m; ++i) {
      const auto r = merges.find(sym[i], sym[i + 1]);
      rank[i] = r.rank;
      mid[i] = r.id;
    }
    while (m > 1) {
      size_t best = m;
      int32_t best_rank = INT32_MAX;
      for (size_t i = 0; i + 1 < m; ++i) {
        if (rank[i] >= 0 && rank[i] < best_rank) {
          best_rank = rank[i];
          best = i;
        }
      }
      if (best == m) break;
      sym[best] = mid[best];
      // Remove symbol best+1 and pair best+1.
      for (size_t i = best + 1; i + 1 < m; ++i) {
        sym[i] = sym[i + 1];
        rank[i] = rank[i + 1];
        mid[i] = mid[i + 1];
      }
      --m;
      if (best > 0) {
        const auto r = merges.find(sym[best - 1], sym[best]);
        rank[best - 1] = r.rank;
        mid[best - 1] = r.id;
      }
      if (best + 1 < m) {
        const auto r = merges.find(sym[best], sym[best + 1]);
        rank[best] = r.rank;
        mid[best] = r.id;
      }
    }
    out.insert(out.end(), sym, sym + m);
    return;
  }
  // Long words: doubly linked symbols and a min-heap of candidate merges (rank, position).
  struct Sym {
    int32_t id;
    int32_t prev, next;
    bool alive;
  };
  struct Cand {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<Sym> syms(n);
  for (size_t i = 0; i < n; ++i)
    syms[i] = Sym{byte_ids[static_cast<unsigned char>(word[i])], int32_t(i) - 1,
                  i + 1 < n ? int32_t(i + 1) : -1, true};
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  for (size_t i = 0; i + 1 < n; ++i) {
    const auto r = merges.find(syms[i].id, syms[i + 1].id);
    if (r.rank >= 0) heap.push(Cand{r.rank, int32_t(i), r.id});
  }
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    Sym& left = syms[c.pos];
    if (!left.alive || left.next < 0) continue;
    Sym& right = syms[left.next];
    const auto r = merges.find(left.id, right.id);
    if (r.rank != c.rank || r.id != c.new_id) continue;  // stale candidate
    left.id = c.new_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) syms[right.next].prev = c.pos;
    if (left.prev >= 0) {
      const auto rp = merges.find(syms[left.prev].id, left.id);
      if (rp.rank >= 0) heap.push(Cand{rp.rank, left.prev, rp.id});
    }
    if (left.next >= 0) {
      const auto rn = merges.find(left.id, syms[left.next].id);
      if (rn.rank >= 0) heap.push(Cand{rn.rank, c.pos, rn.id});
    }
  }
  for (int32_t i = 0; i >= 0; i = syms[i].next) out.push_back(syms[i].id);
}

/// Cache word -> ids for one tokenizer, owned by one thread. Cleared when full.
class WordCache {
 public:
  static constexpr size_t kMaxWordBytes = 256;
  static constexpr size_t kSlots = size_t{1} << 15;
  static constexpr size_t kMaxEntries = kSlots / 2;

  explicit WordCache(uint64_t owner = 0) : owner_(owner) { slots_.assign(kSlots, Entry{}); }
  uint64_t owner() const { return owner_; }
  void reset(uint64_t owner) {
    owner_ = owner;
    clear();
  }

  /// Appends the cached ids of `word` to `out` and returns true, or returns false.
  bool lookup(std::string_view word, uint64_t h, std::vector<int32_t>& out) const {
    size_t i = h & (kSlots - 1);
    while (true) {
      const Entry& e = slots_[i];
      if (e.key_len == 0) return false;
      if (e.hash == h && e.key_len == word.size() &&
          std::memcmp(keys_.data() + e.key_off, word.data(), word.size()) == 0) {
        out.insert(out.end(), ids_.begin() + e.val_off, ids_.begin() + e.val_off + e.val_len);
        return true;
      }
      i = (i + 1) & (kSlots - 1);
    }
  }
  void insert(std::string_view word, uint64_t h, const int32_t* ids, size_t n_ids) {
    if (word.empty() || word.size() > kMaxWordBytes) return;
    if (count_ >= kMaxEntries) clear();
    size_t i = h & (kSlots - 1);
    while (slots_[i].key_len != 0) i = (i + 1) & (kSlots - 1);
    Entry& e = slots_[i];
    e.hash = h;
    e.key_off = static_cast<uint32_t>(keys_.size());
    e.key_len = static_cast<uint32_t>(word.size());
    e.val_off = static_cast<uint32_t>(ids_.size());
    e.val_len = static_cast<uint32_t>(n_ids);
    keys_.append(word.data(), word.size());
    ids_.insert(ids_.end(), ids, ids + n_ids);
    ++count_;
  }
  void clear() {
    std::fill(slots_.begin(), slots_.end(), Entry{});
    keys_.clear();
    ids_.clear();
    count_ = 0;
  }

 private:
  struct Entry {
    uint64_t hash = 0;
    uint32_t key_off = 0, key_len = 0, val_off = 0, val_len = 0;
  };
  uint64_t owner_;
  std::vector<Entry> slots_;
  std::string keys_;
  std::vector<int32_t> ids_;
  size_t count_ = 0;
};

/// Unique id of a tokenizer state, so that a thread's cache never serves another tokenizer
/// (even one allocated at the same address later).
inline uint64_t next_state_serial() {
  static std::atomic<uint64_t> counter{0};
  return ++counter;
}

/// The calling thread's cache for tokenizer state `serial` (two most recent states per thread).
inline WordCache& thread_word_cache(uint64_t serial) {
  thread_local WordCache caches[2];
  thread_local unsigned next_victim = 0;
  if (caches[0].owner() == serial) return caches[0];
  if (caches[1].owner() == serial) return caches[1];
  WordCache& c = caches[next_victim];
  next_victim ^= 1u;
  c.reset(serial);
  return c;
}

}  // namespace genprm::bpe
