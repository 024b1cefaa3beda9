#pragma once
// Launchers of genprm's CUDA kernels, on raw device pointers: the .cu file includes no ATen (it
// compiles in seconds and with any C++ standard the toolkit supports); src/cuda/ops.cpp checks
// the tensors and calls these.
#include <cstdint>

#include <cuda_runtime_api.h>

namespace genprm::cuda_kernels {

enum class DType { Float32, BFloat16, Float16 };

/// Attention of R query rows over the paged K/V cache, reading the blocks in place.
/// Row r uses block-table row `row_seq[r]` (r itself when row_seq is null) and attends to the
/// first `kv_len[r]` keys of that sequence (0: the output row is zeros).
struct PagedAttentionArgs {
  const void* q = nullptr;        ///< [R, heads, head_dim]
  const void* k_cache = nullptr;  ///< [num_blocks, block_size, kv_heads, head_dim]
  const void* v_cache = nullptr;
  void* out = nullptr;            ///< [R, heads, head_dim]
  const int32_t* block_tables = nullptr;  ///< [num_table_rows, table_width]
  const int32_t* kv_len = nullptr;        ///< [R]
  const int32_t* row_seq = nullptr;       ///< [R] or null
  float* workspace = nullptr;  ///< splits > 1: R * heads * splits * (head_dim + 2) floats
  int rows = 0, heads = 0, kv_heads = 0, head_dim = 0, block_size = 0, table_width = 0;
  int splits = 1;              ///< key partitions per row (split-KV), each kPartition keys
  float scale = 1.0f;
  DType dtype = DType::Float32;
};
constexpr int kPartition = 256;  ///< keys per split
constexpr int kMaxGroup = 16;    ///< query heads per KV head handled by the kernel

/// True when the kernel handles this shape (head_dim 16/32/64/128/256, group size <= kMaxGroup).
bool paged_attention_supported(int heads, int kv_heads, int head_dim);
cudaError_t paged_attention(const PagedAttentionArgs& a, cudaStream_t stream);

/// residual += x (rounded to the dtype), out = weight * rms_norm(residual) as Hugging Face's
/// Qwen2RMSNorm computes it (statistics in float32, normalised value rounded, then scaled).
/// x may be null: out = weight * rms_norm(residual) only.
struct AddRmsNormArgs {
  const void* x = nullptr;  ///< [rows, hidden] or null
  void* residual = nullptr;  ///< [rows, hidden], updated in place
  const void* weight = nullptr;  ///< [hidden]
  void* out = nullptr;       ///< [rows, hidden]
  int rows = 0, hidden = 0;
  float eps = 1e-6f;
  DType dtype = DType::Float32;
};
cudaError_t add_rms_norm(const AddRmsNormArgs& a, cudaStream_t stream);

/// Rotary embedding of q and k (Hugging Face's rotate-half form, cos/sin of float32 angles rounded
/// to the dtype) and the K/V cache write, in one pass over the fused qkv projection.
struct RopeKvArgs {
  const void* qkv = nullptr;      ///< [T, (heads + 2 kv_heads) * head_dim]
  const int64_t* positions = nullptr;  ///< [T]
  const int64_t* slots = nullptr;      ///< [T] KV slot of each token
  const float* inv_freq = nullptr;     ///< [head_dim / 2]
  void* q_out = nullptr;          ///< [T, heads, head_dim]
  void* k_out = nullptr;          ///< [T, kv_heads, head_dim] (rotated keys)
  void* k_cache = nullptr;        ///< [num_slots, kv_heads, head_dim]
  void* v_cache = nullptr;
  int tokens = 0, heads = 0, kv_heads = 0, head_dim = 0;
  DType dtype = DType::Float32;
};
cudaError_t rope_write_kv(const RopeKvArgs& a, cudaStream_t stream);

}  // namespace genprm::cuda_kernels
