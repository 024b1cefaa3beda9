#pragma once
// Grouped-query causal attention, over a contiguous sequence (reference path) and over the paged
// K/V cache of a packed varlen batch (engine path). Plain ATen, the same source on CPU and CUDA:
//   * decode rows (one new token per sequence) are gathered into one padded [S, Lmax] layout and
//     run as ONE batched SDPA with a length mask; the query heads of one KV group ride in the
//     query-length dimension, so K/V are never repeated per head;
//   * prefill chunks (several new tokens) run one SDPA per sequence with a causal mask shifted
//     by the cached prefix (plain is_causal when there is no prefix).
// Every shape comes from host-side vectors (ForwardBatch::query_start / context_lens): no
// host-device synchronisation.
// On CUDA with genprm's kernels (model/cuda_ops.hpp), every row that attends to cached keys
// (decode rows and the rows of chunks over a cached prefix) runs in ONE kernel that reads the
// blocks where they are; chunks without a prefix keep SDPA.
#include <algorithm>
#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

#include "genprm/model/cuda_ops.hpp"
#include "genprm/model/forward_batch.hpp"
#include "genprm/util/error.hpp"

namespace genprm::model {

/// Causal attention of n queries over L = prefix + n keys (query r sits at position prefix + r).
/// q: [n, heads, d]; k, v: [L, kv_heads, d]; heads % kv_heads == 0 -> [n, heads, d].
inline at::Tensor causal_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                   double scale) {
  const int64_t n = q.size(0);
  const int64_t len = k.size(0);
  const at::Tensor qh = q.transpose(0, 1).unsqueeze(0);  // [1, heads, n, d]
  const at::Tensor kh = k.transpose(0, 1).unsqueeze(0);  // [1, kv_heads, L, d]
  const at::Tensor vh = v.transpose(0, 1).unsqueeze(0);
  const bool gqa = q.size(1) != k.size(1);
  at::Tensor out;
  if (len == n) {
    out = at::scaled_dot_product_attention(qh, kh, vh, {}, 0.0, /*is_causal=*/true, scale, gqa);
  } else {
    // mask[r, j] = j <= prefix + r   ([n, L], true = attend)
    const auto idx = at::TensorOptions().dtype(at::kLong).device(q.device());
    const at::Tensor mask = at::arange(len, idx).unsqueeze(0) <= (at::arange(n, idx) + (len - n)).unsqueeze(1);
    out = at::scaled_dot_product_attention(qh, kh, vh, mask, 0.0, false, scale, gqa);
  }
  return out.squeeze(0).transpose(0, 1);  // [n, heads, d]
}

/// One query per sequence over a padded K/V layout.
/// q: [m, heads, d]; k, v: [m, L, kv_heads, d]; valid: [m, L] bool (true = key exists) -> [m, heads, d].
inline at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                   const at::Tensor& valid, double scale) {
  const int64_t m = q.size(0), heads = q.size(1), d = q.size(2);
  const int64_t kv_heads = k.size(2), len = k.size(1);
  const at::Tensor qg = q.reshape({m, kv_heads, heads / kv_heads, d});  // group's heads as query rows
  const at::Tensor kh = k.permute({0, 2, 1, 3});                         // [m, kv_heads, L, d]
  const at::Tensor vh = v.permute({0, 2, 1, 3});
  const at::Tensor out = at::scaled_dot_product_attention(qg, kh, vh, valid.view({m, 1, 1, len}), 0.0, false, scale);
  return out.reshape({m, heads, d});
}

/// Layer-independent bookkeeping of one paged forward step: built once per ForwardBatch and used
/// by every layer (so index/mask tensors are made and copied to the device once).
struct PagedAttentionPlan {
  struct Chunk {              ///< a sequence with several new tokens (prefill chunk)
    int64_t row_start = 0;    ///< first of its rows in the packed T
    int64_t num_new = 0;      ///< new tokens (queries)
    int64_t context_len = 0;  ///< cached prefix + new tokens (keys)
    at::Tensor blocks;        ///< [ceil(context_len / block_size)] int64, undefined when no prefix
  };
  int64_t total_tokens = 0;
  int64_t block_size = 0;
  // Decode rows (sequences with exactly one new token).
  int64_t num_decode = 0;
  bool decode_rows_are_all = false;  ///< every row of T is a decode row, in order
  at::Tensor decode_rows;            ///< [m] int64 rows in T (used when !decode_rows_are_all)
  at::Tensor decode_blocks;          ///< [m * nblk] int64 blocks of the padded layout
  int64_t decode_blocks_per_seq = 0;  ///< nblk = ceil(max context / block_size)
  at::Tensor decode_valid;           ///< [m, nblk * block_size] bool
  std::vector<Chunk> chunks;
  // CUDA kernel path (use_kernel): the rows over cached keys, in one call.
  bool use_kernel = false;
  bool kernel_rows_are_all = false;  ///< every row of T, in order
  at::Tensor kernel_rows;     ///< [R] int64 rows in T (when !kernel_rows_are_all)
  at::Tensor kernel_row_seq;  ///< [R] int32 block-table row of each
  at::Tensor kernel_kv_len;   ///< [R] int32 keys each attends to
  at::Tensor kernel_tables;   ///< [S, max_blocks] int32
  int64_t kernel_splits = 1;

  /// Validates the host-side shape information and builds the plan on `device`. `kernel`: use
  /// the CUDA kernel for the rows over cached keys.
  static PagedAttentionPlan build(const ForwardBatch& batch, int64_t block_size, at::Device device,
                                  bool kernel = false) {
    PagedAttentionPlan plan;
    plan.block_size = block_size;
    const auto& qs = batch.query_start;
    const auto& ctx = batch.context_lens;
    GENPRM_CHECK_ARG(!qs.empty() && qs.front() == 0, "forward: query_start must start with 0 (has {} entries)",
                     qs.size());
    const int64_t num_seqs = static_cast<int64_t>(qs.size()) - 1;
    GENPRM_CHECK_ARG(static_cast<int64_t>(ctx.size()) == num_seqs,
                     "forward: context_lens has {} entries, query_start implies {} sequences", ctx.size(), num_seqs);
    plan.total_tokens = qs.back();
    GENPRM_CHECK_ARG(batch.token_ids.dim() == 1 && batch.token_ids.size(0) == plan.total_tokens,
                     "forward: token_ids must be [T] with T = query_start[S] = {}", plan.total_tokens);
    GENPRM_CHECK_ARG(batch.positions.dim() == 1 && batch.positions.size(0) == plan.total_tokens,
                     "forward: positions must be [T] with T = {}", plan.total_tokens);
    GENPRM_CHECK_ARG(batch.slot_mapping.dim() == 1 && batch.slot_mapping.size(0) == plan.total_tokens,
                     "forward: slot_mapping must be [T] with T = {}", plan.total_tokens);
    GENPRM_CHECK_ARG(batch.block_tables.dim() == 2 && batch.block_tables.size(0) == num_seqs,
                     "forward: block_tables must be [S, max_blocks] with S = {}", num_seqs);
    const int64_t max_blocks = batch.block_tables.size(1);
    if (kernel) {
      plan_for_kernel(plan, batch, device, num_seqs, max_blocks);
      return plan;
    }
    const auto idx = at::TensorOptions().dtype(at::kLong).device(device);
    const at::Tensor tables = batch.block_tables.to(idx);
    std::vector<int64_t> dec_seq, dec_row, dec_ctx;
    int64_t max_dec_ctx = 0;
    for (int64_t s = 0; s < num_seqs; ++s) {
      const int64_t n = qs[s + 1] - qs[s];
      const int64_t c = ctx[s];
      check_sequence(s, n, c, max_blocks, block_size);
      if (n == 1) {
        dec_seq.push_back(s);
        dec_row.push_back(qs[s]);
        dec_ctx.push_back(c);
        max_dec_ctx = std::max(max_dec_ctx, c);
      } else {
        Chunk ch;
        ch.row_start = qs[s];
        ch.num_new = n;
        ch.context_len = c;
        if (c > n) ch.blocks = tables.select(0, s).narrow(0, 0, (c + block_size - 1) / block_size);
        plan.chunks.push_back(std::move(ch));
      }
    }
    plan.num_decode = static_cast<int64_t>(dec_seq.size());
    if (plan.num_decode > 0) {
      const int64_t nblk = (max_dec_ctx + block_size - 1) / block_size;
      plan.decode_blocks_per_seq = nblk;
      plan.decode_rows_are_all = plan.num_decode == num_seqs;  // then rows are 0..T-1 in order
      at::Tensor dec_tables = tables;
      if (!plan.decode_rows_are_all) {
        plan.decode_rows = at::tensor(dec_row, at::kLong).to(device, /*non_blocking=*/true);
        dec_tables = tables.index_select(0, at::tensor(dec_seq, at::kLong).to(device, true));
      }
      plan.decode_blocks = dec_tables.narrow(1, 0, nblk).reshape({-1});
      const at::Tensor lens = at::tensor(dec_ctx, at::kLong).to(device, true);
      plan.decode_valid = at::arange(nblk * block_size, idx).unsqueeze(0) < lens.unsqueeze(1);
    }
    return plan;
  }

 private:
  static void check_sequence(int64_t s, int64_t n, int64_t c, int64_t max_blocks, int64_t block_size) {
    GENPRM_CHECK_ARG(n >= 1, "forward: sequence {} has {} new tokens (query_start must increase)", s, n);
    GENPRM_CHECK_ARG(c >= n, "forward: sequence {} has context_len {} < its {} new tokens", s, c, n);
    GENPRM_CHECK_ARG(c <= max_blocks * block_size,
                     "forward: sequence {} has context_len {} but block_tables holds {} blocks of {} slots", s, c,
                     max_blocks, block_size);
  }

  // The kernel path of build: `plan` has its block size and token count; the block tables cross
  // to the device once, as the kernel's int32.
  static void plan_for_kernel(PagedAttentionPlan& plan, const ForwardBatch& batch, at::Device device, int64_t num_seqs,
                              int64_t max_blocks) {
    const int64_t block_size = plan.block_size;
    plan.use_kernel = true;
    const auto& qs = batch.query_start;
    const auto& ctx = batch.context_lens;
    std::vector<int64_t> rows;
    std::vector<int32_t> row_seq, kv_len;
    int64_t max_len = 0;
    for (int64_t s = 0; s < num_seqs; ++s) {
      const int64_t n = qs[s + 1] - qs[s];
      const int64_t c = ctx[s];
      check_sequence(s, n, c, max_blocks, block_size);
      if (n > 1 && c == n) {  // no cached prefix: SDPA over the chunk's own keys
        Chunk ch;
        ch.row_start = qs[s];
        ch.num_new = n;
        ch.context_len = c;
        plan.chunks.push_back(std::move(ch));
        continue;
      }
      for (int64_t r = 0; r < n; ++r) {  // row r sees the prefix and the chunk up to itself
        rows.push_back(qs[s] + r);
        row_seq.push_back(static_cast<int32_t>(s));
        kv_len.push_back(static_cast<int32_t>(c - n + r + 1));
      }
      max_len = std::max(max_len, c);
    }
    if (rows.empty()) return;
    plan.kernel_rows_are_all = static_cast<int64_t>(rows.size()) == plan.total_tokens;
    if (!plan.kernel_rows_are_all) plan.kernel_rows = at::tensor(rows, at::kLong).to(device, true);
    plan.kernel_row_seq = at::tensor(row_seq, at::kInt).to(device, true);
    plan.kernel_kv_len = at::tensor(kv_len, at::kInt).to(device, true);
    plan.kernel_tables = batch.block_tables.to(at::kInt).to(device, true);
    plan.kernel_splits = cuda_ops::splits_for(max_len);
  }
};

/// The CUDA path of paged_attention (plan.use_kernel).
inline at::Tensor kernel_paged_attention(const PagedAttentionPlan& plan, const at::Tensor& q, const at::Tensor& k_new,
                                         const at::Tensor& v_new, const at::Tensor& k_cache,
                                         const at::Tensor& v_cache, double scale) {
  at::Tensor cached;
  if (plan.kernel_row_seq.defined()) {
    const at::Tensor qr = plan.kernel_rows_are_all ? q : q.index_select(0, plan.kernel_rows);
    cached = cuda_ops::paged_attention(qr.contiguous(), k_cache, v_cache, plan.kernel_tables, plan.kernel_kv_len,
                                       plan.kernel_row_seq, scale, plan.kernel_splits);
    if (plan.kernel_rows_are_all) return cached;
  }
  at::Tensor out = at::empty_like(q);
  if (cached.defined()) out.index_copy_(0, plan.kernel_rows, cached);
  for (const auto& ch : plan.chunks) {
    out.narrow(0, ch.row_start, ch.num_new)
        .copy_(causal_attention(q.narrow(0, ch.row_start, ch.num_new), k_new.narrow(0, ch.row_start, ch.num_new),
                                v_new.narrow(0, ch.row_start, ch.num_new), scale));
  }
  return out;
}

/// Attention of the packed new tokens over the paged cache (their own K/V must already be
/// written to it). q: [T, heads, d]; k_new, v_new: [T, kv_heads, d] (the same values as written);
/// k_cache, v_cache: [num_blocks, block_size, kv_heads, d] -> [T, heads, d].
inline at::Tensor paged_attention(const PagedAttentionPlan& plan, const at::Tensor& q, const at::Tensor& k_new,
                                  const at::Tensor& v_new, const at::Tensor& k_cache, const at::Tensor& v_cache,
                                  double scale) {
  const int64_t kv_heads = k_cache.size(2), d = k_cache.size(3);
  if (plan.use_kernel) return kernel_paged_attention(plan, q, k_new, v_new, k_cache, v_cache, scale);
  at::Tensor dec_out;
  if (plan.num_decode > 0) {
    const int64_t m = plan.num_decode;
    const int64_t len = plan.decode_blocks_per_seq * plan.block_size;
    // [m * nblk, block, kv_heads, d] -> [m, nblk * block, kv_heads, d]
    const at::Tensor k = k_cache.index_select(0, plan.decode_blocks).view({m, len, kv_heads, d});
    const at::Tensor v = v_cache.index_select(0, plan.decode_blocks).view({m, len, kv_heads, d});
    const at::Tensor qd = plan.decode_rows_are_all ? q : q.index_select(0, plan.decode_rows);
    dec_out = decode_attention(qd, k, v, plan.decode_valid, scale);
    if (plan.decode_rows_are_all) return dec_out;
  }
  at::Tensor out = at::empty_like(q);
  if (plan.num_decode > 0) out.index_copy_(0, plan.decode_rows, dec_out);
  for (const auto& ch : plan.chunks) {
    const at::Tensor qc = q.narrow(0, ch.row_start, ch.num_new);
    at::Tensor kc, vc;
    if (!ch.blocks.defined()) {  // no cached prefix: the chunk's own keys
      kc = k_new.narrow(0, ch.row_start, ch.num_new);
      vc = v_new.narrow(0, ch.row_start, ch.num_new);
    } else {
      const int64_t slots = ch.blocks.size(0) * plan.block_size;
      kc = k_cache.index_select(0, ch.blocks).view({slots, kv_heads, d}).narrow(0, 0, ch.context_len);
      vc = v_cache.index_select(0, ch.blocks).view({slots, kv_heads, d}).narrow(0, 0, ch.context_len);
    }
    out.narrow(0, ch.row_start, ch.num_new).copy_(causal_attention(qc, kc, vc, scale));
  }
  return out;
}

}  // namespace genprm::model
