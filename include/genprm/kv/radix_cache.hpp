#pragma once
// The prefix cache: a radix tree over token blocks on top of a BlockPool (SGLang's RadixCache
// with vLLM-style blocks). Pure bookkeeping, no tensors, so it runs in a CPU-only simulation.
//
// Tree: every node but the root stands for one KV block; its key is the block's tokens (block_size
// of them, or fewer for a partial tail, which is always a leaf). The path from the root spells the
// token prefix whose K/V the blocks hold. Matching works at token granularity: the last block of
// a match may be used for only its first j tokens (the writer copies it before writing further).
//
// References: a sequence holds one reference on each block of its block table. The tree holds
// none: a cached block with no reference stays in the tree until evicted. Eviction takes the least
// recently used unreferenced leaf; interior nodes become leaves as their children go.
//
// Write rule (copy-on-write): a block that is shared (reference count > 1) or cached must not be
// written; `needs_copy(b)` says so and the owner copies it into a fresh block first.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "genprm/kv/block_pool.hpp"
#include "genprm/util/error.hpp"

namespace genprm {

/// Result of a prefix lookup: the blocks holding tokens [0, num_tokens) of the query, in order.
/// The last block may hold more tokens than matched (a partial match): copy it before writing.
struct PrefixMatch {
  std::vector<int32_t> blocks;
  size_t num_tokens = 0;
};

struct KvCacheStats {
  int32_t num_blocks = 0;
  int32_t block_size = 0;
  size_t blocks_free = 0;         ///< on the free list
  size_t blocks_cached_idle = 0;  ///< cached in the tree, unreferenced (evictable, in LRU order)
  size_t blocks_in_use = 0;       ///< referenced by at least one sequence
  size_t cached_nodes = 0;        ///< blocks in the tree (referenced or not)
  uint64_t evictions = 0;
};

class RadixCache {
 public:
  RadixCache(int32_t num_blocks, int32_t block_size)
      : pool_(num_blocks, block_size),
        node_of_block_(static_cast<size_t>(num_blocks), nullptr),
        root_(std::make_unique<Node>()) {}

  RadixCache(const RadixCache&) = delete;
  RadixCache& operator=(const RadixCache&) = delete;

  int32_t block_size() const { return pool_.block_size(); }
  int32_t num_blocks() const { return pool_.num_blocks(); }

  /// Longest cached prefix of tokens[0, n). Takes one reference on every returned block and marks
  /// them recently used. Returns an empty match when nothing is cached.
  PrefixMatch match(const int32_t* tokens, size_t n) {
    PrefixMatch m;
    walk(tokens, n, [&](Node* node, size_t used) {
      take(node->block);
      m.blocks.push_back(node->block);
      m.num_tokens += used;
    });
    return m;
  }

  /// Length of the longest cached prefix of tokens[0, n), without taking references.
  size_t match_length(const int32_t* tokens, size_t n) const {
    size_t len = 0;
    const_cast<RadixCache*>(this)->walk(tokens, n, [&](Node*, size_t used) { len += used; });
    return len;
  }

  /// A block with one reference: from the free list, else by evicting the least recently used
  /// unreferenced cached leaf. Returns nullopt when no block is free or evictable; never evicts
  /// a referenced block.
  std::optional<int32_t> allocate() {
    if (auto b = pool_.take_free()) return b;
    if (evictable_.empty()) return std::nullopt;
    Node* victim = node_of_block_[static_cast<size_t>(evictable_.begin()->second)];
    int32_t b = victim->block;
    remove_leaf(victim);
    ++evictions_;
    pool_.incref(b);
    return b;
  }

  /// One more reference on a block (fork: children share the parent's blocks).
  void share(int32_t b) { take(b); }

  /// One reference fewer. An unreferenced block that is not cached returns to the free list; a
  /// cached one stays in the tree, evictable once it is a leaf.
  void release(int32_t b) {
    if (pool_.decref(b) > 0) return;
    if (Node* node = node_of_block_[static_cast<size_t>(b)]) {
      unlist(node);
      node->last_use = ++tick_;
      relist(node);
    } else {
      pool_.put_free(b);
    }
  }

  void release(const std::vector<int32_t>& blocks) {
    for (int32_t b : blocks) release(b);
  }

  /// True when block b must be copied before a write: it is shared or cached (immutable).
  bool needs_copy(int32_t b) const {
    return pool_.ref_count(b) > 1 || node_of_block_[static_cast<size_t>(b)] != nullptr;
  }

  bool is_cached(int32_t b) const { return node_of_block_[static_cast<size_t>(b)] != nullptr; }
  int32_t ref_count(int32_t b) const { return pool_.ref_count(b); }

  /// Records the first `n_computed` tokens of a sequence (whose K/V are written) in the tree;
  /// blocks[i] holds tokens [i * block_size, (i + 1) * block_size). Every full block becomes a
  /// node. Where the tree already caches the same prefix in another block, the sequence switches
  /// to the cached block and releases its own copy, so `blocks` may change. With
  /// `include_partial`, a trailing partial block is cached too; the sequence must then copy it
  /// before writing more (needs_copy() becomes true).
  void insert(const int32_t* tokens, size_t n_computed, std::vector<int32_t>& blocks,
              bool include_partial) {
    const size_t bs = static_cast<size_t>(block_size());
    const size_t n_full = n_computed / bs;
    GENPRM_CHECK(blocks.size() >= (n_computed + bs - 1) / bs,
                 "RadixCache::insert: {} tokens need {} blocks, the sequence has {}", n_computed,
                 (n_computed + bs - 1) / bs, blocks.size());
    Node* node = root_.get();
    for (size_t i = 0; i < n_full; ++i) {
      std::vector<int32_t> key(tokens + i * bs, tokens + (i + 1) * bs);
      auto it = node->children.find(key);
      if (it != node->children.end()) {
        Node* child = it->second.get();
        if (child->block != blocks[i]) {  // same tokens computed twice: keep the cached copy
          take(child->block);
          release(blocks[i]);
          blocks[i] = child->block;
        } else {
          touch(child);
        }
        node = child;
        continue;
      }
      GENPRM_CHECK(node_of_block_[static_cast<size_t>(blocks[i])] == nullptr,
                   "RadixCache::insert: block {} is already cached under another prefix", blocks[i]);
      node = add_child(node, std::move(key), blocks[i]);
    }
    const size_t rem = n_computed % bs;
    if (!include_partial || rem == 0) return;
    int32_t b = blocks[n_full];
    if (node_of_block_[static_cast<size_t>(b)] != nullptr) return;
    const int32_t* tail = tokens + n_full * bs;
    for (auto& kv : node->children) {
      if (common_prefix(kv.first, tail, rem) == rem) return;  // a cached block already covers it
    }
    add_child(node, std::vector<int32_t>(tail, tail + rem), b);
  }

  KvCacheStats stats() const {
    KvCacheStats s;
    s.num_blocks = num_blocks();
    s.block_size = block_size();
    s.blocks_free = pool_.num_free();
    for (int32_t b = 0; b < num_blocks(); ++b) {
      bool cached = node_of_block_[static_cast<size_t>(b)] != nullptr;
      if (cached) ++s.cached_nodes;
      if (pool_.ref_count(b) > 0) {
        ++s.blocks_in_use;
      } else if (cached) {
        ++s.blocks_cached_idle;
      }
    }
    s.evictions = evictions_;
    return s;
  }

  /// Blocks obtainable by allocate() right now (free plus evictable, counting the interior nodes
  /// that become evictable as their children go).
  size_t num_available() const {
    KvCacheStats s = stats();
    return s.blocks_free + s.blocks_cached_idle;
  }

  /// Throws genprm::Error when the bookkeeping is inconsistent (used by tests).
  void check_invariants() const {
    size_t free_expected = 0;
    for (int32_t b = 0; b < num_blocks(); ++b) {
      Node* node = node_of_block_[static_cast<size_t>(b)];
      if (node == nullptr && pool_.ref_count(b) == 0) ++free_expected;
      if (node != nullptr) GENPRM_CHECK(node->block == b, "node of block {} holds block {}", b, node->block);
    }
    GENPRM_CHECK(free_expected == pool_.num_free(), "free list holds {} blocks, {} are unreferenced and uncached",
                 pool_.num_free(), free_expected);
    size_t listed = 0;
    check_node(root_.get(), listed);
    GENPRM_CHECK(listed == evictable_.size(), "LRU list holds {} entries, {} leaves are evictable",
                 evictable_.size(), listed);
  }

 private:
  struct Node {
    std::vector<int32_t> key;  // block_size tokens, or fewer for a partial tail (a leaf)
    int32_t block = -1;
    Node* parent = nullptr;
    std::map<std::vector<int32_t>, std::unique_ptr<Node>> children;
    uint64_t last_use = 0;
  };

  static size_t common_prefix(const std::vector<int32_t>& key, const int32_t* tokens, size_t n) {
    size_t j = 0;
    while (j < key.size() && j < n && key[j] == tokens[j]) ++j;
    return j;
  }

  // Calls visit(node, tokens used of its block) along the longest cached prefix of tokens[0, n).
  template <class Visit>
  void walk(const int32_t* tokens, size_t n, Visit&& visit) {
    const size_t bs = static_cast<size_t>(block_size());
    Node* node = root_.get();
    size_t pos = 0;
    while (pos < n) {
      if (n - pos >= bs) {
        auto it = node->children.find(std::vector<int32_t>(tokens + pos, tokens + pos + bs));
        if (it != node->children.end()) {
          node = it->second.get();
          visit(node, bs);
          pos += bs;
          continue;
        }
      }
      // No full block matches: the child sharing the longest run of tokens, used in part.
      Node* best = nullptr;
      size_t best_len = 0;
      const size_t want = std::min(n - pos, bs);
      for (auto& kv : node->children) {
        size_t j = common_prefix(kv.first, tokens + pos, want);
        if (j > best_len) {
          best_len = j;
          best = kv.second.get();
        }
      }
      if (best != nullptr) visit(best, best_len);
      break;
    }
  }

  bool evictable(const Node* node) const {
    return node != root_.get() && node->children.empty() && pool_.ref_count(node->block) == 0;
  }
  void unlist(Node* node) {
    if (node != root_.get()) evictable_.erase({node->last_use, node->block});
  }
  void relist(Node* node) {
    if (evictable(node)) evictable_.insert({node->last_use, node->block});
  }
  void touch(Node* node) {
    unlist(node);
    node->last_use = ++tick_;
    relist(node);
  }
  void take(int32_t b) {
    Node* node = node_of_block_[static_cast<size_t>(b)];
    if (node != nullptr) unlist(node);
    pool_.incref(b);
    if (node != nullptr) {
      node->last_use = ++tick_;
      relist(node);
    }
  }
  Node* add_child(Node* parent, std::vector<int32_t> key, int32_t block) {
    unlist(parent);  // no longer a leaf
    auto child = std::make_unique<Node>();
    child->key = key;
    child->block = block;
    child->parent = parent;
    child->last_use = ++tick_;
    Node* raw = child.get();
    parent->children.emplace(std::move(key), std::move(child));
    node_of_block_[static_cast<size_t>(block)] = raw;
    relist(raw);
    return raw;
  }
  void remove_leaf(Node* node) {
    unlist(node);
    Node* parent = node->parent;
    node_of_block_[static_cast<size_t>(node->block)] = nullptr;
    parent->children.erase(node->key);  // destroys node
    relist(parent);
  }
  void check_node(const Node* node, size_t& listed) const {
    if (node != root_.get()) {
      GENPRM_CHECK(node_of_block_[static_cast<size_t>(node->block)] == node, "block {} maps to another node",
                   node->block);
      GENPRM_CHECK(node->key.size() == static_cast<size_t>(block_size()) || node->children.empty(),
                   "partial node of block {} has children", node->block);
      bool listed_now = evictable_.count({node->last_use, node->block}) > 0;
      GENPRM_CHECK(listed_now == evictable(node), "block {}: LRU listing {} but evictable {}", node->block,
                   listed_now, evictable(node));
      if (listed_now) ++listed;
    }
    for (auto& kv : node->children) {
      GENPRM_CHECK(kv.second->parent == node, "child of block {} has a wrong parent", kv.second->block);
      check_node(kv.second.get(), listed);
    }
  }

  BlockPool pool_;
  std::vector<Node*> node_of_block_;
  std::unique_ptr<Node> root_;
  std::set<std::pair<uint64_t, int32_t>> evictable_;  // (last use, block) of evictable leaves
  uint64_t tick_ = 0;
  uint64_t evictions_ = 0;
};

}  // namespace genprm
