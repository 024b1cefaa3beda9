#pragma once
// Device side of copy-on-write: copies whole KV blocks of every layer of a KvCacheView.
#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

#include "genprm/model/forward_batch.hpp"

namespace genprm {

/// One block copy decided by the RadixCache (a shared or cached block about to be written).
struct BlockCopy {
  int32_t src = -1;
  int32_t dst = -1;
};

/// Copies K and V of blocks src -> dst in every layer (one gather + scatter per tensor).
/// kv.k[l], kv.v[l]: [num_blocks, block_size, kv_heads, head_dim].
inline void copy_blocks(KvCacheView& kv, const std::vector<BlockCopy>& copies) {
  if (copies.empty() || kv.k.empty()) return;
  std::vector<int64_t> src, dst;
  src.reserve(copies.size());
  dst.reserve(copies.size());
  for (const BlockCopy& c : copies) {
    src.push_back(c.src);
    dst.push_back(c.dst);
  }
  auto opts = at::TensorOptions().dtype(at::kLong);
  at::Device dev = kv.k[0].device();
  at::Tensor src_t = at::tensor(src, opts).to(dev, /*non_blocking=*/true);
  at::Tensor dst_t = at::tensor(dst, opts).to(dev, /*non_blocking=*/true);
  for (size_t l = 0; l < kv.k.size(); ++l) {
    kv.k[l].index_copy_(0, dst_t, kv.k[l].index_select(0, src_t));
    kv.v[l].index_copy_(0, dst_t, kv.v[l].index_select(0, src_t));
  }
}

}  // namespace genprm
