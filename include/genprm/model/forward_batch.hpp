#pragma once
// The contract between the engine (which owns the paged KV cache and schedules sequences) and the
// model (which computes one forward step over a packed batch). vLLM-style "varlen" layout: the
// new tokens of all sequences are packed into one row dimension T, so prefill chunks and decode
// tokens run in the same step.
#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

namespace genprm {

/// Paged K/V storage of every layer. k[l], v[l]: [num_blocks, block_size, kv_heads, head_dim],
/// on the model's device, in the model's compute dtype. Slot s = block * block_size + offset.
/// Slots never written must hold finite values (Qwen2Model::allocate_kv zero-fills): attention
/// reads whole blocks and masks the slots past each sequence's context length.
struct KvCacheView {
  std::vector<at::Tensor> k;
  std::vector<at::Tensor> v;
  int64_t block_size = 16;
};

/// One forward step over S sequences with T new tokens in all.
struct ForwardBatch {
  at::Tensor token_ids;     ///< [T] int64, new tokens of all sequences, sequence after sequence
  at::Tensor positions;     ///< [T] int64, absolute position of each new token
  at::Tensor slot_mapping;  ///< [T] int64, KV slot where each new token's K/V is written
  at::Tensor block_tables;  ///< [S, max_blocks] int64, physical blocks per sequence (pad: 0)
  at::Tensor logits_indices;  ///< [R] int64, rows of the T packed tokens whose logits are returned
  // Host-side shape information (no device sync needed to read it):
  std::vector<int64_t> query_start;   ///< [S+1] cumulative new-token counts (query_start[S] == T)
  std::vector<int64_t> context_lens;  ///< [S] tokens in cache per sequence after this step
                                      ///<     (cached prefix + new tokens)
};

/// A decode-only step (one new token per row) in fixed-shape int32 tensors on the model's device:
/// every shape is fixed by (B, W) and nothing is read back on the host, so one step can be
/// captured as a CUDA graph and replayed with new values written into the same tensors. Rows past
/// the real batch are padding: they write their K/V into a scratch slot and their logits are
/// ignored.
struct DecodeInputs {
  at::Tensor token_ids;     ///< [B]
  at::Tensor positions;     ///< [B]
  at::Tensor slot_mapping;  ///< [B]
  at::Tensor context_lens;  ///< [B] tokens in cache after this step (>= 1)
  at::Tensor block_tables;  ///< [B, W]
};

}  // namespace genprm
