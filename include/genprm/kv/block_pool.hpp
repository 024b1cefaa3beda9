#pragma once
// A pool of fixed-size KV blocks: reference counts and a free list. Pure bookkeeping, no tensors:
// block b owns KV slots [b * block_size, (b + 1) * block_size) of every layer.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "genprm/util/error.hpp"

namespace genprm {

class BlockPool {
 public:
  BlockPool(int32_t num_blocks, int32_t block_size) : block_size_(block_size), refs_(num_blocks, 0) {
    GENPRM_CHECK_ARG(num_blocks > 0, "BlockPool: num_blocks must be positive, got {}", num_blocks);
    GENPRM_CHECK_ARG(block_size > 0, "BlockPool: block_size must be positive, got {}", block_size);
    free_.reserve(static_cast<size_t>(num_blocks));
    // Stack with block 0 on top: allocation order is 0, 1, 2, ... (deterministic).
    for (int32_t b = num_blocks - 1; b >= 0; --b) free_.push_back(b);
  }

  /// Number of blocks that fit in `bytes` when one block costs `bytes_per_block`.
  /// Throws ValueError when not even one block fits.
  static int32_t blocks_for_budget(size_t bytes, size_t bytes_per_block) {
    GENPRM_CHECK_ARG(bytes_per_block > 0, "BlockPool: bytes_per_block must be positive");
    size_t n = bytes / bytes_per_block;
    GENPRM_CHECK_ARG(n >= 1, "BlockPool: a KV memory budget of {} bytes holds no block of {} bytes",
                     bytes, bytes_per_block);
    if (n > static_cast<size_t>(INT32_MAX)) n = static_cast<size_t>(INT32_MAX);
    return static_cast<int32_t>(n);
  }

  int32_t num_blocks() const { return static_cast<int32_t>(refs_.size()); }
  int32_t block_size() const { return block_size_; }
  size_t num_free() const { return free_.size(); }

  /// Takes a block from the free list with reference count 1.
  /// Returns nullopt when the free list is empty (the pool itself never evicts anything).
  std::optional<int32_t> take_free() {
    if (free_.empty()) return std::nullopt;
    int32_t b = free_.back();
    free_.pop_back();
    refs_[static_cast<size_t>(b)] = 1;
    return b;
  }

  /// Returns an unreferenced block to the free list.
  void put_free(int32_t b) {
    check_id(b);
    GENPRM_CHECK(refs_[static_cast<size_t>(b)] == 0, "BlockPool: block {} freed while referenced ({})",
                 b, refs_[static_cast<size_t>(b)]);
    free_.push_back(b);
  }

  void incref(int32_t b) {
    check_id(b);
    ++refs_[static_cast<size_t>(b)];
  }

  /// Drops one reference and returns the new count.
  int32_t decref(int32_t b) {
    check_id(b);
    GENPRM_CHECK(refs_[static_cast<size_t>(b)] > 0, "BlockPool: block {} released more often than taken", b);
    return --refs_[static_cast<size_t>(b)];
  }

  int32_t ref_count(int32_t b) const {
    check_id(b);
    return refs_[static_cast<size_t>(b)];
  }

 private:
  void check_id(int32_t b) const {
    GENPRM_CHECK(b >= 0 && b < num_blocks(), "BlockPool: block id {} outside [0, {})", b, num_blocks());
  }

  int32_t block_size_;
  std::vector<int32_t> refs_;
  std::vector<int32_t> free_;
};

}  // namespace genprm
